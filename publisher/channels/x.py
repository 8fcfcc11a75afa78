"""X (Twitter) through tweepy: posts and numbered threads with OAuth 1.0a user context, the image through API v2.

tweepy's ``Client.create_tweet`` posts to ``POST https://api.twitter.com/2/tweets``; a thread part replies to the
one before through ``in_reply_to_tweet_id``. The image goes up through the v2 media endpoints
(``POST https://api.x.com/2/media/upload``, then ``POST /2/media/metadata`` for its alt text), signed with the
same OAuth 1.0a user context; X retired v1.1 ``media/upload`` for self-serve tiers in 2025 and tweepy has no v2
upload yet. X answers a text it has already seen from this account with a 403 "duplicate content", which is
recorded as posted. Everything else about never posting twice lives in ``SocialChannel``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from publisher.channels.social import (
    AccountSettings,
    CredentialField,
    DuplicatePost,
    OutcomeUnknown,
    PostNotSent,
    RateLimited,
    RemotePost,
    SocialAccount,
    SocialChannel,
    json_or_none,
    network_failure,
)
from publisher.settings import Setting

if TYPE_CHECKING:  # tweepy and requests are imported only when a post is made
    import requests

    from publisher.article import Article
    from publisher.channels.social import LocalImage
    from publisher.delivery import Attempt
    from publisher.formatters.social import LengthRule, LongTextMode, PostText

X_CREDENTIALS = (
    CredentialField("API_KEY", "X API key (OAuth 1.0a consumer key) of the app"),
    CredentialField("API_SECRET", "X API key secret (OAuth 1.0a consumer secret) of the app"),
    CredentialField("ACCESS_TOKEN", "X access token of the account (OAuth 1.0a user context, read and write)"),
    CredentialField("ACCESS_TOKEN_SECRET", "X access token secret of the account"),
)
X_IMAGE_MAX_BYTES = 5 * 1024 * 1024  # X refuses larger images in a one-shot upload
X_ALT_TEXT_LIMIT = 1000
MEDIA_UPLOAD_URL = "https://api.x.com/2/media/upload"
MEDIA_METADATA_URL = "https://api.x.com/2/media/metadata"
RECENT_POSTS_LOOKED_AT = 20


class XClient:
    """tweepy's v2 client (posts), and the OAuth 1.0a signer the v2 media upload shares with it."""

    def __init__(self, account: SocialAccount, timeout: float) -> None:
        import tweepy

        self.account = account
        self.timeout = timeout
        self.v2 = tweepy.Client(
            consumer_key=account["API_KEY"], consumer_secret=account["API_SECRET"],
            access_token=account["ACCESS_TOKEN"], access_token_secret=account["ACCESS_TOKEN_SECRET"],
            wait_on_rate_limit=False,  # SocialChannel waits, within a bound, with a clock the tests control
        )
        # tweepy's Client sets no timeout at all: without one a stalled connection would hang the run.
        self.v2.session = _session_with_timeout(timeout)
        self._user_id: str | None = None
        self.uploaded_media: dict[str, str] = {}  # image digest -> media id, so a retry does not upload again

    def oauth1(self) -> Any:
        """The account's OAuth 1.0a user context as requests-oauthlib signs it (what tweepy's Client uses)."""
        from requests_oauthlib import OAuth1

        return OAuth1(self.account["API_KEY"], client_secret=self.account["API_SECRET"],
                      resource_owner_key=self.account["ACCESS_TOKEN"],
                      resource_owner_secret=self.account["ACCESS_TOKEN_SECRET"])

    def user_id(self) -> str:
        if self._user_id is None:
            me = self.v2.get_me(user_auth=True)
            self._user_id = str(me.data["id"])
        return self._user_id


def upload_image_v2(client: XClient, image: LocalImage) -> str:
    """Upload ``image`` in one shot through X API v2 and set its alt text; return the media id.

    Written by hand because tweepy 4.17 only uploads through v1.1 ``media/upload``, which X retired for
    self-serve tiers in 2025 (tweepy#2217). Drop this function for tweepy's own call once tweepy gains a v2
    upload. Raises ``requests.HTTPError`` or another ``requests.RequestException``; the caller maps them.
    """
    session, auth = client.v2.session, client.oauth1()
    # multipart: OAuth 1.0a signs no multipart body, only the URL and the oauth_* parameters
    response = session.post(MEDIA_UPLOAD_URL, auth=auth,
                            files={"media": (image.filename, image.data, image.media_type)},
                            data={"media_category": "tweet_image", "media_type": image.media_type})
    response.raise_for_status()
    media_id = str(response.json()["data"]["id"])
    if image.alt:
        session.post(MEDIA_METADATA_URL, auth=auth, json={
            "id": media_id, "metadata": {"alt_text": {"text": image.alt[:X_ALT_TEXT_LIMIT]}},
        }).raise_for_status()
    return media_id


def _session_with_timeout(timeout: float) -> requests.Session:
    import requests

    class TimeoutSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", timeout)
            return super().request(*args, **kwargs)

    return TimeoutSession()


def tweet_url(tweet_id: str) -> str:
    # x.com/i/web/status/<id> opens any tweet without knowing the account's handle (one API call saved).
    return f"https://x.com/i/web/status/{tweet_id}"


class XChannel(SocialChannel):
    """Posts each language version to the X account of that language."""

    name: ClassVar[str] = "x"
    title: ClassVar[str] = "X (Twitter)"
    settings = AccountSettings("X", X_CREDENTIALS, "X", (
        Setting("X_LONG_TEXT", "What to do with a post over 280 weighted characters (Hangul counts 2): "
                "'shorten' it (at the last whole sentence that fits), or post it as a numbered 'thread' "
                "(1/3, 2/3, ...).",
                default="shorten", choices=("shorten", "thread")),
    ))

    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import X_RULE

        return X_RULE

    def long_text_mode(self) -> LongTextMode:
        return "thread" if self.option("X_LONG_TEXT") == "thread" else "shorten"

    def fallback_description(self) -> str:
        return "JSON files in outbox/x/ (set X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET to post)"

    def open_client(self, account: SocialAccount) -> XClient:
        return XClient(account, self.http_timeout)

    def post(self, client: XClient, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        # X has no idempotency key; the delivery record and the duplicate-content rule stand in for it.
        import tweepy

        media_ids = self._upload_image(client, article) if post.part == 1 else None
        try:
            response = client.v2.create_tweet(
                text=post.text,
                in_reply_to_tweet_id=reply_to.id if reply_to is not None and reply_to.id else None,
                media_ids=media_ids,
                user_auth=True,
            )
        except tweepy.TooManyRequests as exc:
            raise RateLimited(_reason(exc), reset_at=self._reset_at(exc)) from None
        except tweepy.Forbidden as exc:
            if any("duplicate" in message.lower() for message in exc.api_messages):
                raise DuplicatePost("X refused the text as a duplicate of an earlier post") from None
            raise PostNotSent(_reason(exc)) from None
        except tweepy.TwitterServerError as exc:
            raise OutcomeUnknown(f"X answered {_reason(exc)}") from None
        except tweepy.HTTPException as exc:
            raise PostNotSent(_reason(exc)) from None
        except Exception as exc:  # requests' network errors: timeout, dropped connection
            if _is_network_error(exc):
                raise network_failure(exc, "post to X") from None
            raise
        tweet_id = str(response.data["id"])
        return RemotePost(tweet_id, tweet_url(tweet_id), text=str(response.data.get("text", post.text)))

    def _upload_image(self, client: XClient, article: Article) -> list[str] | None:
        import requests

        image = self.load_image(article)
        if image is None:
            return None
        if image.digest in client.uploaded_media:
            return [client.uploaded_media[image.digest]]
        if len(image.data) > X_IMAGE_MAX_BYTES:
            raise PostNotSent(f"image {image.filename} is over 5 MB, the most X takes")
        # An upload is not a post: whatever fails here, nothing was published, so it may be tried again later.
        try:
            media_id = upload_image_v2(client, image)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 429:
                raise RateLimited(f"image upload: {_http_reason(exc.response)}",
                                  reset_at=self._reset_at(exc)) from None
            raise PostNotSent(f"image upload failed: {_http_reason(exc.response)}") from None
        except (requests.RequestException, KeyError, TypeError, ValueError) as exc:
            raise PostNotSent(f"image upload failed: {type(exc).__name__}") from None
        client.uploaded_media[image.digest] = media_id
        return [media_id]

    def _reset_at(self, exc: Any) -> float | None:
        """When X takes posts again (Unix time), from the 429's headers; None when it did not say."""
        from publisher.http_retry import rate_limit_wait

        now = self.clock()
        wait = rate_limit_wait(getattr(exc.response, "headers", None) or {}, now)
        return None if wait is None else now + wait

    def recent_posts(self, client: XClient, account: SocialAccount) -> list[RemotePost] | None:
        import tweepy

        try:
            response = client.v2.get_users_tweets(
                client.user_id(), max_results=RECENT_POSTS_LOOKED_AT, tweet_fields=["entities"], user_auth=True,
            )
        except tweepy.Forbidden:
            # The free API tier cannot read timelines. Posting again is still safe: X refuses the same text
            # from the same account with its 403 "duplicate content", which counts as posted.
            return None
        except tweepy.TwitterServerError as exc:
            raise OutcomeUnknown(f"could not list recent posts to check: {_reason(exc)}") from None
        except tweepy.HTTPException as exc:
            raise PostNotSent(f"could not list recent posts to check: {_reason(exc)}") from None
        except Exception as exc:
            if _is_network_error(exc):
                raise OutcomeUnknown("could not list recent posts to check: no answer") from None
            raise
        found = []
        for tweet in response.data or []:
            data = tweet.data if hasattr(tweet, "data") else tweet
            urls = (data.get("entities") or {}).get("urls") or []
            links = tuple(str(u.get("unwound_url") or u.get("expanded_url") or "") for u in urls)
            found.append(RemotePost(str(data["id"]), tweet_url(str(data["id"])), str(data.get("text", "")), links))
        return found


def _reason(exc: Exception) -> str:
    """tweepy's message on one line ("403 Forbidden - ..."), never with request headers or tokens."""
    return " - ".join(line for line in str(exc).splitlines() if line.strip())


def _http_reason(response: requests.Response | None) -> str:
    """X's answer on one line ("403 Forbidden - ..."), from its JSON problem details when it gave them."""
    if response is None:
        return "no answer"
    body = json_or_none(response)
    detail = (body.get("detail") or body.get("title")) if isinstance(body, dict) else None
    said = f"{response.status_code} {response.reason or ''}".strip()
    return f"{said} - {detail}" if detail else said


def _is_network_error(exc: Exception) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.RequestException)
