"""Bluesky through atproto: rich-text facets with UTF-8 byte offsets, the post's language, a link card.

A post is an ``app.bsky.feed.post`` record. Its link and hashtag facets are found by atproto's own detector
(a port of the official TypeScript one) in the exact text sent, so their byte offsets hold for Korean text
too. ``langs`` is the article's language: atproto would otherwise say ``en``. The link card
(``app.bsky.embed.external``) carries the article's title, summary and image, the image uploaded as a blob of
at most 1,000,000 bytes (shrunk if larger, dropped if it cannot be).

Never a duplicate: on top of ``SocialChannel``'s rules, the record key is chosen here, before the post, from
the delivery's row (the time the row was first tried, plus a hash of the row's idempotency key). A retry
therefore asks for that exact record (``getRecord``) before posting, and a second ``createRecord`` under the
same key cannot make a second post even when the app view has not yet listed the first one.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timezone
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
    card_title,
    network_failure,
    refused,
)
from publisher.settings import Setting, parse_url

if TYPE_CHECKING:  # atproto and httpx are imported only when a post is made
    from collections.abc import Callable, Sequence

    import httpx

    from publisher.article import Article
    from publisher.delivery import Attempt
    from publisher.formatters.social import LengthRule, PostText

BLUESKY_CREDENTIALS = (
    CredentialField("HANDLE", "Bluesky handle of the account, e.g. unpog.bsky.social", secret=False),
    CredentialField("APP_PASSWORD", "Bluesky app password of the account (Settings > Privacy and security > "
                    "App passwords; not the account's own password)"),
)
DEFAULT_SERVICE_URL = "https://bsky.social"
THUMBNAIL_MAX_BYTES = 1_000_000
CARD_DESCRIPTION_LIMIT = 300  # graphemes; the card shows two or three lines of it
RECENT_POSTS_LOOKED_AT = 50

# base32-sortable: the alphabet of AT Protocol timestamp identifiers (TIDs), which post record keys are
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


# --- pieces with no network ----------------------------------------------------------------------------------


def record_key(first_tried: datetime, idempotency_key: str) -> str:
    """The TID a post is stored under: the row's first try (microseconds) and 10 bits of its idempotency key.

    The same delivery row always gives the same key; a ``--force`` re-post has another idempotency key, so
    another record key.
    """
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:4], "big")
    micros = int(first_tried.timestamp()) * 1_000_000 + first_tried.microsecond
    # the row's time is kept to the millisecond: the key's hash fills the microseconds below it
    micros = micros - micros % 1000 + (digest >> 10) % 1000
    value = ((micros & ((1 << 53) - 1)) << 10) | (digest & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def post_facets(text: str) -> list[Any]:
    """Link and hashtag facets of ``text``, with UTF-8 byte offsets, as the Bluesky app would find them.

    Mentions are left out on purpose: resolving a handle is a network call, and a news post has none.
    """
    from atproto_client.utils.facet_detection import detect_facets

    return list(detect_facets(text))


def shrink_thumbnail(data: bytes, limit: int = THUMBNAIL_MAX_BYTES) -> bytes | None:
    """``data`` if it fits ``limit`` bytes, else a smaller JPEG of it, else None (the card goes without).

    Bluesky refuses a larger blob, and a card without a picture is better than no post.
    """
    if len(data) <= limit:
        return data
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    longest = 2000  # a card is shown at most about 1000 px wide; halve from twice that
    while longest >= 250:
        candidate = image.copy()
        candidate.thumbnail((longest, longest))
        for quality in (85, 70):
            buffer = io.BytesIO()
            candidate.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= limit:
                return buffer.getvalue()
        longest //= 2
    return None


def post_web_url(handle: str, uri: str) -> str:
    """The bsky.app address of a post, from its at:// URI."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


def _card_description(article: Article) -> str:
    from publisher.formatters.social import grapheme_length, plain_text, shorten_to_fit

    summary = plain_text(article.summary_html)
    return shorten_to_fit(summary, lambda text: grapheme_length(text) <= CARD_DESCRIPTION_LIMIT)


def _links_of(record: Any) -> tuple[str, ...]:
    """Every URL a post record carries: its link facets and its link card."""
    links = []
    for facet in getattr(record, "facets", None) or []:
        links += [feature.uri for feature in facet.features if getattr(feature, "uri", None)]
    external = getattr(getattr(record, "embed", None), "external", None)
    if external is not None:
        links.append(external.uri)
    return tuple(links)


# --- the client ------------------------------------------------------------------------------------------


class BlueskyClient:
    """One Bluesky account: atproto's ``Client`` over httpx, logged in on first use.

    ``transport`` is the httpx transport under atproto's request layer: None for the network, an
    ``httpx.MockTransport`` in the tests.
    """

    def __init__(self, account: SocialAccount, *, service_url: str, timeout: float,
                 transport: httpx.BaseTransport | None, clock: Callable[[], float]) -> None:
        from atproto import Client
        from atproto_client.request import Request

        options: dict[str, Any] = {"timeout": timeout}
        if transport is not None:
            options["transport"] = transport
        self.account = account
        self.handle = account["HANDLE"]
        self.clock = clock
        self.atproto = Client(service_url, request=Request(**options))
        self._did: str | None = None

    def did(self) -> str:
        """The account's DID, logging in first if needed (a failed login posted nothing)."""
        if self._did is None:
            with _atproto_errors(self.clock, "log in to Bluesky", may_have_posted=False):
                # no profile fetch: one request less, and a PDS without app.bsky still works
                self.atproto.login(self.handle, self.account["APP_PASSWORD"], fetch_bsky_profile=False)
            session = self.atproto._session  # the SDK keeps the DID on its session only
            if session is None:  # pragma: no cover - login() sets it or raises
                raise PostNotSent("could not log in to Bluesky: it gave no session")
            self._did = session.did
        return self._did

    def upload_thumbnail(self, data: bytes) -> Any:
        """Upload an image as a blob; return its reference for the card's ``thumb``."""
        self.did()
        with _atproto_errors(self.clock, "upload the image to Bluesky", may_have_posted=False):
            return self.atproto.upload_blob(data).blob

    def create_post(self, record: Any, rkey: str) -> RemotePost:
        repo = self.did()
        with _atproto_errors(self.clock, "post to Bluesky", may_have_posted=True):
            created = self.atproto.app.bsky.feed.post.create(repo, record, rkey=rkey)
        return RemotePost(created.uri, post_web_url(self.handle, created.uri), record.text, _links_of(record))

    def get_post(self, rkey: str) -> RemotePost | None:
        """The account's post stored under ``rkey``, or None."""
        from atproto_client.exceptions import BadRequestError

        repo = self.did()
        try:
            with _atproto_errors(self.clock, "look for the post on Bluesky", may_have_posted=False,
                                 passthrough=BadRequestError):
                found = self.atproto.app.bsky.feed.post.get(repo, rkey)
        except BadRequestError as exc:
            if getattr(getattr(exc.response, "content", None), "error", None) == "RecordNotFound":
                return None
            raise PostNotSent(f"could not look for the post on Bluesky: {exc}") from None
        return RemotePost(found.uri, post_web_url(self.handle, found.uri), found.value.text, _links_of(found.value))

    def recent_posts(self) -> list[RemotePost]:
        repo = self.did()
        with _atproto_errors(self.clock, "list recent posts on Bluesky", may_have_posted=False):
            feed = self.atproto.get_author_feed(repo, filter="posts_no_replies", limit=RECENT_POSTS_LOOKED_AT)
        posts = []
        for item in feed.feed:
            if item.post.author.did != repo:  # a repost of someone else's post
                continue
            record = item.post.record
            posts.append(RemotePost(item.post.uri, post_web_url(self.handle, item.post.uri),
                                    getattr(record, "text", "") or "", _links_of(record)))
        return posts


class _atproto_errors:  # noqa: N801 - used as a ``with`` block, like contextlib's helpers
    """Turns atproto's errors into ``RateLimited``, ``OutcomeUnknown`` or ``PostNotSent``.

    Only a call that may have stored a post (``may_have_posted``) can leave it unconfirmed; a failed login,
    upload or lookup made no post.
    """

    def __init__(self, clock: Callable[[], float], action: str, *, may_have_posted: bool,
                 passthrough: type[BaseException] | None = None) -> None:
        self.clock = clock
        self.action = action
        self.may_have_posted = may_have_posted
        self.passthrough = passthrough

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or (self.passthrough is not None and isinstance(exc, self.passthrough)):
            return False
        from atproto_client.exceptions import RateLimitExceededError, RequestErrorBase
        from atproto_core.exceptions import AtProtocolError

        if isinstance(exc, RateLimitExceededError):
            raise RateLimited(f"Bluesky answered 429 to: {self.action}", reset_at=self._reset_at(exc)) from None
        if isinstance(exc, RequestErrorBase):
            status = exc.response.status_code if exc.response is not None else None
            if status is None:  # the transport failed: did the request leave?
                raise network_failure(exc, self.action, may_have_posted=self.may_have_posted) from None
            raise refused(status, self.action, f"Bluesky answered {exc}",
                          may_have_posted=self.may_have_posted) from None
        if isinstance(exc, AtProtocolError):
            raise PostNotSent(f"could not {self.action}: {exc}") from None
        return False

    def _reset_at(self, exc: Any) -> float | None:
        if exc.retry_after is not None:
            return self.clock() + float(exc.retry_after)
        return float(exc.reset_at.timestamp()) if exc.reset_at is not None else None


# --- the channel -----------------------------------------------------------------------------------------


class BlueskyChannel(SocialChannel):
    """Posts each language version to the Bluesky account of that language, with a link card."""

    name: ClassVar[str] = "bluesky"
    title: ClassVar[str] = "Bluesky"
    settings = AccountSettings("BLUESKY", BLUESKY_CREDENTIALS, "Bluesky", (
        Setting("BLUESKY_SERVICE_URL", "Address of the account's PDS (its server). Accounts on Bluesky's own "
                "servers use the default.", default=DEFAULT_SERVICE_URL, parse=parse_url),
    ))
    #: httpx transport under atproto; the tests put an ``httpx.MockTransport`` here
    transport: httpx.BaseTransport | None = None

    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import BLUESKY_RULE

        return BLUESKY_RULE

    def fallback_description(self) -> str:
        return "JSON files in outbox/bluesky/ (set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD to post)"

    def open_client(self, account: SocialAccount) -> BlueskyClient:
        return BlueskyClient(account, service_url=str(self.option("BLUESKY_SERVICE_URL")),
                             timeout=self.http_timeout, transport=self.transport, clock=self.clock)

    def post(self, client: BlueskyClient, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        rkey, retrying = self._record_key(attempt, idempotency_key)
        if retrying:  # an earlier try may have stored it, even if no listing shows it yet
            existing = client.get_post(rkey)
            if existing is not None:
                return existing
        record = self.post_record(article, post, client=client)
        try:
            return client.create_post(record, rkey)
        except PostNotSent:
            # a record under this key already exists when an earlier try did land: that is our post
            existing = client.get_post(rkey)
            if existing is not None:
                return existing
            raise

    def recent_posts(self, client: BlueskyClient, account: SocialAccount) -> list[RemotePost] | None:
        return client.recent_posts()

    def post_record(self, article: Article, post: PostText, *, client: BlueskyClient | None = None) -> Any:
        """The ``app.bsky.feed.post`` record for ``post``; with no client the card has no uploaded image."""
        from atproto import models

        return models.AppBskyFeedPost.Record(
            created_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            text=post.text,
            facets=post_facets(post.text) or None,
            langs=[article.lang],  # atproto would say "en" for a Korean post
            embed=self._link_card(article, client) if post.part == 1 else None,
        )

    def _link_card(self, article: Article, client: BlueskyClient | None) -> Any:
        from atproto import models

        thumb = None
        image = self.load_image(article) if client is not None else None   # the outbox uploads nothing
        if image is not None and client is not None:
            small = shrink_thumbnail(image.data)
            if small is not None:
                thumb = client.upload_thumbnail(small)
        return models.AppBskyEmbedExternal.Main(external=models.AppBskyEmbedExternal.External(
            uri=article.url, title=card_title(article), description=_card_description(article), thumb=thumb,
        ))

    def _record_key(self, attempt: Attempt, idempotency_key: str) -> tuple[str, bool]:
        """The post's record key, from the delivery's row as it was before this try, and whether an earlier try
        of that row may have stored it."""
        row = attempt.previous
        first_tried = datetime.now(timezone.utc)
        if row is not None and row.created_at:
            first_tried = datetime.fromisoformat(row.created_at.replace("Z", "+00:00"))
        retrying = row is not None and row.attempts >= 1
        return record_key(first_tried, idempotency_key), retrying

    def outbox_payload(self, article: Article, posts: Sequence[PostText]) -> dict[str, Any]:
        payload = super().outbox_payload(article, posts)
        payload["records"] = [self.post_record(article, post).model_dump(by_alias=True, exclude_none=True)
                              for post in posts]
        return payload
