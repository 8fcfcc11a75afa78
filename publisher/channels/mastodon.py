"""Mastodon through Mastodon.py: one status per article and language, with an idempotency key and the language set.

The ``Idempotency-Key`` header comes from the delivery (its key and generation), so the same request sent twice
(by a retry after a timeout) makes one status: the instance answers the second with the first. Mastodon keeps
those keys for about an hour, which is why the pipeline's ``unconfirmed`` rule still applies. The length limit
is the instance's ``max_characters`` (asked once per run), or ``MASTODON_MAX_CHARACTERS``, or 500. With
``MASTODON_LONG_TEXT=thread`` a longer post becomes a numbered thread of replies within that limit, which resumes
after its last posted part (``SocialChannel`` records each part), each part with its own idempotency key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from publisher.channels.social import (
    AccountSettings,
    CredentialField,
    OutcomeUnknown,
    PostNotSent,
    RateLimited,
    RemotePost,
    SocialAccount,
    SocialChannel,
    network_failure,
)
from publisher.settings import Setting, parse_positive_int, parse_url

if TYPE_CHECKING:  # Mastodon.py is imported only when a post is made
    from mastodon import Mastodon

    from publisher.article import Article
    from publisher.delivery import Attempt
    from publisher.formatters.social import LengthRule, LongTextMode, PostText

MASTODON_CREDENTIALS = (
    CredentialField("API_BASE_URL", "Address of the Mastodon instance, e.g. https://mastodon.social",
                    secret=False, parse=parse_url),
    CredentialField("ACCESS_TOKEN", "Mastodon access token of the account (scope write:statuses write:media, "
                    "and read:statuses for --retry-unconfirmed)"),
)
RECENT_POSTS_LOOKED_AT = 40
MEDIA_PROCESSING_CHECKS = 10  # a still-processing image is checked this many times, a second apart


class MastodonChannel(SocialChannel):
    """Posts each language version to the Mastodon account of that language."""

    name: ClassVar[str] = "mastodon"
    title: ClassVar[str] = "Mastodon"
    settings = AccountSettings("MASTODON", MASTODON_CREDENTIALS, "Mastodon", (
        Setting("MASTODON_MAX_CHARACTERS", "Longest post the instance accepts. Default: asked from the instance "
                "(its max_characters) when posting, 500 in previews.", parse=parse_positive_int),
        Setting("MASTODON_LONG_TEXT", "What to do with a post over the instance's limit: 'shorten' it, or post "
                "it as a numbered 'thread' of replies (1/3, 2/3, ...).", default="shorten",
                choices=("shorten", "thread")),
    ))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._instance_limits: dict[str, int] = {}  # base URL -> max_characters, learned when connecting

    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import MASTODON_DEFAULT_LIMIT, mastodon_rule

        configured = self.option("MASTODON_MAX_CHARACTERS")
        if configured:
            return mastodon_rule(int(configured))
        learned = self._instance_limits.get(account["API_BASE_URL"]) if account is not None else None
        return mastodon_rule(learned or MASTODON_DEFAULT_LIMIT)

    def long_text_mode(self) -> LongTextMode:
        return "thread" if self.option("MASTODON_LONG_TEXT") == "thread" else "shorten"

    def fallback_description(self) -> str:
        return "JSON files in outbox/mastodon/ (set MASTODON_API_BASE_URL and MASTODON_ACCESS_TOKEN to post)"

    def open_client(self, account: SocialAccount) -> Mastodon:
        from mastodon import Mastodon

        client = Mastodon(
            access_token=account["ACCESS_TOKEN"], api_base_url=account["API_BASE_URL"],
            request_timeout=self.http_timeout,
            ratelimit_method="throw",  # SocialChannel waits, within a bound, with a clock the tests control
            version_check_mode="none", mastodon_version="4.0.0",  # no version probe before every run
        )
        # Mastodon.py picks endpoints by the server's version, and with checks off it keeps 1.0 whatever it is
        # told, so it would use the long-deprecated v1 media upload. Instances older than 4.0 (2022) are rare.
        client.mastodon_major, client.mastodon_minor, client.mastodon_patch = 4, 0, 0
        if not self.option("MASTODON_MAX_CHARACTERS") and account["API_BASE_URL"] not in self._instance_limits:
            self._instance_limits[account["API_BASE_URL"]] = _instance_max_characters(client)
        return client

    def post(self, client: Mastodon, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        media_ids = self._upload_image(client, article) if post.part == 1 else None
        with _mastodon_errors(client, "post to Mastodon"):
            status = client.status_post(
                post.text,
                in_reply_to_id=reply_to.id if reply_to is not None and reply_to.id else None,
                media_ids=media_ids,
                language=article.lang,
                idempotency_key=idempotency_key,
            )
        return RemotePost(str(status["id"]), status.get("url") or status.get("uri"),
                          text=_status_text(status.get("content") or ""))

    def _upload_image(self, client: Mastodon, article: Article) -> list[str] | None:
        import io

        image = self.load_image(article)
        if image is None:
            return None
        # An upload is not a post: whatever fails here, nothing was published, so it is "not sent".
        try:
            with _mastodon_errors(client, "upload the image to Mastodon"):
                media = client.media_post(io.BytesIO(image.data), mime_type=image.media_type,
                                          description=image.alt or None, file_name=image.filename)
                for _ in range(MEDIA_PROCESSING_CHECKS):
                    if media.get("url"):
                        break
                    self.sleep(1.0)
                    media = client.media(media["id"])
        except OutcomeUnknown as exc:
            raise PostNotSent(str(exc)) from None
        if not media.get("url"):
            raise PostNotSent("the instance is still processing the image; run publish again later")
        return [str(media["id"])]

    def recent_posts(self, client: Mastodon, account: SocialAccount) -> list[RemotePost] | None:
        with _mastodon_errors(client, "list recent posts to check"):
            me = client.me()
            statuses = client.account_statuses(me["id"], limit=RECENT_POSTS_LOOKED_AT)
        found = []
        for status in statuses:
            content = status.get("content") or ""
            links = re.findall(r'href="([^"]+)"', content)
            card = status.get("card") or {}
            if card.get("url"):
                links.append(str(card["url"]))
            found.append(RemotePost(str(status["id"]), status.get("url") or status.get("uri"),
                                    _status_text(content), tuple(_unescape(link) for link in links)))
        return found


def _instance_max_characters(client: Mastodon) -> int:
    """The instance's ``configuration.statuses.max_characters`` (v2, else v1), else 500."""
    from mastodon import MastodonError

    from publisher.formatters.social import MASTODON_DEFAULT_LIMIT

    for ask in (client.instance_v2, client.instance_v1):
        try:
            instance = ask()
        except MastodonError:
            continue
        try:
            return int(instance["configuration"]["statuses"]["max_characters"])
        except (KeyError, TypeError, ValueError):
            limit = instance.get("max_toot_chars") if hasattr(instance, "get") else None  # Pleroma, glitch-soc
            if limit:
                return int(limit)
    return MASTODON_DEFAULT_LIMIT


class _mastodon_errors:  # noqa: N801 - used as a ``with`` block, like contextlib's helpers
    """Turns Mastodon.py's errors into ``RateLimited``, ``OutcomeUnknown`` or ``PostNotSent``."""

    def __init__(self, client: Mastodon, action: str) -> None:
        self.client = client
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None:
            return False
        from mastodon import MastodonAPIError, MastodonError, MastodonNetworkError, MastodonRatelimitError
        from mastodon import MastodonServerError

        if isinstance(exc, MastodonRatelimitError):
            reset = getattr(self.client, "ratelimit_reset", None)
            raise RateLimited("Mastodon answered 429", reset_at=float(reset) if reset else None) from None
        if isinstance(exc, MastodonServerError):
            raise OutcomeUnknown(f"could not {self.action}: {_reason(exc)}") from None
        if isinstance(exc, MastodonNetworkError):
            raise network_failure(exc, self.action) from None
        if isinstance(exc, MastodonAPIError):
            raise PostNotSent(f"could not {self.action}: {_reason(exc)}") from None
        if isinstance(exc, MastodonError):
            raise PostNotSent(f"could not {self.action}: {exc}") from None
        return False


def _reason(exc: BaseException) -> str:
    # MastodonAPIError's args: (message, status code, reason, error text from the instance)
    parts = [str(arg) for arg in exc.args[1:] if arg]
    return " ".join(parts) or str(exc)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _status_text(content: str) -> str:
    """A status's HTML as plain text, paragraphs and line breaks as spaces."""
    from publisher.formatters.social import plain_text

    return plain_text(re.sub(r"<(?:br\s*/?|/p)>", " ", content))
