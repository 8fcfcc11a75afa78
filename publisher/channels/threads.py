"""Threads (Meta) through its Graph API over requests: a media container, then ``threads_publish``; long posts as replies.

Each post is made in two calls: ``POST /{user-id}/threads`` creates a media container (``media_type`` TEXT, or
IMAGE with the image's public ``image_url`` and its ``alt_text``: Threads fetches the image itself, so it must be
on the public site), then ``POST /{user-id}/threads_publish`` with ``creation_id`` publishes it. The container's
``status`` is checked in between (an image takes Threads a few seconds). A container that is never published is no
post, so only a failed ``threads_publish`` can leave a post unconfirmed.

- 500 characters a post, an emoji counted as its UTF-8 bytes (``formatters.social.THREADS_RULE``); a longer text
  becomes a reply chain (``reply_to_id``), resumed after its last posted part like an X thread.
- Quotas: 250 posts and 1,000 replies per account in 24 hours. ``GET /{user-id}/threads_publishing_limit`` is
  read before each delivery; when what the thread needs would pass ``config.quota_total`` (or
  ``reply_config.quota_total``) the delivery is deferred and the run halts, every delivery left pending.
- Unconfirmed: ``publish --retry-unconfirmed`` first looks among the account's recent threads (``GET /me/threads``,
  fields ``id,text,permalink``; ``/me/replies`` for a thread's later parts) for the article's URL or text.
- The token goes in an ``Authorization: Bearer`` header (Meta's Graph hosts accept it), never in a URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from publisher.channels.social import (
    AccountSettings,
    CredentialField,
    OutcomeUnknown,
    PostNotSent,
    RemotePost,
    SocialAccount,
    SocialChannel,
    SocialPayload,
    SocialPostError,
    graph_answer,
    graph_version,
    retry_after_wait,
    send_request,
)
from publisher.delivery import Outcome
from publisher.settings import Setting

if TYPE_CHECKING:  # requests is imported only when a post is made
    from collections.abc import Callable, Sequence

    from publisher.article import Article
    from publisher.channels.base import ChannelContext
    from publisher.delivery import Attempt, Found
    from publisher.formatters.social import LengthRule, LongTextMode, PostText

GRAPH_URL = "https://graph.threads.net"
DEFAULT_API_VERSION = "v1.0"  # the only Threads API version in the docs read on 2026-12-01
DEFAULT_POST_QUOTA = 250  # posts per 24 hours, when the limit endpoint does not say
DEFAULT_REPLY_QUOTA = 1000  # replies per 24 hours
RECENT_POSTS_LOOKED_AT = 25
CONTAINER_CHECKS = 10  # a container still IN_PROGRESS is checked this many times ...
CONTAINER_CHECK_WAIT = 3.0  # ... this many seconds apart


def parse_user_id(text: str) -> str:
    value = text.strip()
    if not value.isdigit():
        raise ValueError(f"expected the Threads user id (a number, as GET /me answers), got {text!r}")
    return value


def parse_api_version(text: str) -> str:
    return graph_version(text, "Threads API", DEFAULT_API_VERSION)


THREADS_CREDENTIALS = (
    CredentialField("USER_ID", "Threads user id of the account (a number: GET https://graph.threads.net/v1.0/me "
                    "answers it)", secret=False, parse=parse_user_id),
    CredentialField("ACCESS_TOKEN", "Threads access token of the account, with the threads_basic and "
                    "threads_content_publish permissions (threads_manage_replies for long posts, "
                    "threads_read_replies for --retry-unconfirmed of their later parts)"),
)


class ThreadsClient:
    """One Threads account, as a small client over ``requests``."""

    def __init__(self, account: SocialAccount, *, version: str, timeout: float, clock: Callable[[], float],
                 sleep: Callable[[float], None], base_url: str = GRAPH_URL) -> None:
        import requests

        self.account = account
        self.user_id = account["USER_ID"]
        self.clock, self.sleep = clock, sleep
        self._base = f"{base_url.rstrip('/')}/{version}"
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {account['ACCESS_TOKEN']}"

    # --- publishing ------------------------------------------------------------------------------------
    def create_container(self, params: dict[str, str]) -> str:
        """``POST /{user-id}/threads``: a media container (not yet a post); its id."""
        body = self._call("POST", f"{self.user_id}/threads", "create the Threads post", data=params)
        container = str(body.get("id") or "")
        if not container:
            raise PostNotSent("Threads created no media container (no id in its answer)")
        return container

    def wait_until_ready(self, container: str) -> None:
        """Until the container is FINISHED (an image is being fetched); ERROR or EXPIRED posts nothing."""
        for check in range(CONTAINER_CHECKS):
            body = self._call("GET", container, "check the Threads media container",
                              params={"fields": "status,error_message"})
            status = str(body.get("status") or "FINISHED")
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                reason = body.get("error_message") or status.lower()
                raise PostNotSent(f"Threads could not prepare the post: {reason}")
            if check < CONTAINER_CHECKS - 1:
                self.sleep(CONTAINER_CHECK_WAIT)
        raise PostNotSent(f"Threads was still preparing the post after {CONTAINER_CHECKS} checks; try again later")

    def publish(self, container: str) -> str:
        """``POST /{user-id}/threads_publish``: the post's id. The one call that may leave a post unconfirmed."""
        body = self._call("POST", f"{self.user_id}/threads_publish", "publish the Threads post",
                          data={"creation_id": container}, posting=True)
        media_id = str(body.get("id") or "")
        if not media_id:
            raise OutcomeUnknown("Threads answered the publish without an id; check the account")
        return media_id

    def permalink(self, media_id: str) -> str | None:
        """The post's address; None when Threads does not give it (the post is made all the same)."""
        try:
            body = self._call("GET", media_id, "read the post's address", params={"fields": "permalink"})
        except SocialPostError:
            return None
        return str(body["permalink"]) if body.get("permalink") else None

    # --- reading ---------------------------------------------------------------------------------------
    def publishing_limit(self, *, replies: bool = False) -> dict[str, Any]:
        """``GET /{user-id}/threads_publishing_limit``: posts (and ``replies``) used in the last 24 hours.

        The reply fields are asked for only when needed: they need the threads_manage_replies permission."""
        fields = "quota_usage,config" + (",reply_quota_usage,reply_config" if replies else "")
        body = self._call("GET", f"{self.user_id}/threads_publishing_limit", "read the Threads publishing limit",
                          params={"fields": fields})
        data = body.get("data") or [{}]
        return dict(data[0]) if isinstance(data, list) and data and isinstance(data[0], dict) else {}

    def recent(self, edge: str = "threads") -> list[RemotePost]:
        """The account's latest threads (``edge`` "threads") or replies ("replies"), with their text."""
        body = self._call("GET", f"me/{edge}", f"list the account's recent {edge}",
                          params={"fields": "id,text,permalink", "limit": str(RECENT_POSTS_LOOKED_AT)})
        return [RemotePost(str(item["id"]), item.get("permalink"), item.get("text") or "")
                for item in body.get("data", []) if item.get("id")]

    # --- the call --------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, action: str, *, posting: bool = False, **kwargs: Any) -> dict[str, Any]:
        # only threads_publish can have made a post
        response = send_request(self._session, method, f"{self._base}/{path}", action, timeout=self._timeout,
                                may_have_posted=posting, **kwargs)
        return graph_answer(response, "Threads", action, posting=posting, clock=self.clock,
                            rate_limit_wait=lambda answer, now: retry_after_wait(answer.headers, now))


class ThreadsChannel(SocialChannel):
    """Posts each language version to the Threads account of that language, long ones as a reply chain."""

    name: ClassVar[str] = "threads"
    title: ClassVar[str] = "Threads"
    settings = AccountSettings("THREADS", THREADS_CREDENTIALS, "Threads", (
        Setting("THREADS_API_VERSION", "Threads API version to call.", default=DEFAULT_API_VERSION,
                parse=parse_api_version),
    ))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._looking_for_reply = False

    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import THREADS_RULE

        return THREADS_RULE

    def long_text_mode(self) -> LongTextMode:
        return "thread"  # a reply chain reads as one post on Threads; a shortened summary would lose the rest

    def fallback_description(self) -> str:
        return "JSON files in outbox/threads/ (set THREADS_USER_ID and THREADS_ACCESS_TOKEN to post)"

    def open_client(self, account: SocialAccount) -> ThreadsClient:
        return ThreadsClient(account, version=str(self.option("THREADS_API_VERSION")), timeout=self.http_timeout,
                             clock=self.clock, sleep=self.sleep)

    def send(self, attempt: Attempt, ctx: ChannelContext) -> Outcome:
        """The publishing limit first: a thread that would pass it waits, and so does the rest of the run."""
        payload = attempt.rendition.payload
        if isinstance(payload, SocialPayload) and payload.account is not None:
            posts = self.format_posts(payload.article, payload.account)
            done = len(attempt.progress.get("parts", []))
            try:
                over = self._over_quota(self.client_for(payload.account), payload.account, len(posts), done)
            except SocialPostError as exc:
                return Outcome.failed(str(exc), note=f"{exc}; nothing posted")
            if over:
                return Outcome.deferred(over, halt=True)
        return super().send(attempt, ctx)

    def post(self, client: ThreadsClient, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        params = self.container_params(article, post, reply_to)
        container = client.create_container(params)
        client.wait_until_ready(container)
        media_id = client.publish(container)
        links = (article.url,) if article.url in post.text else ()
        return RemotePost(media_id, client.permalink(media_id), post.text, links)

    def find_existing(self, attempt: Attempt, ctx: ChannelContext) -> Found | None:
        # a thread's later parts are replies, which Threads lists apart from the account's threads
        self._looking_for_reply = bool(attempt.progress.get("parts"))
        try:
            return super().find_existing(attempt, ctx)
        finally:
            self._looking_for_reply = False

    def recent_posts(self, client: ThreadsClient, account: SocialAccount) -> list[RemotePost] | None:
        return client.recent("replies" if self._looking_for_reply else "threads")

    def container_params(self, article: Article, post: PostText, reply_to: RemotePost | None) -> dict[str, str]:
        """The ``POST /{user-id}/threads`` form of one post: the image (its public URL) on the first part only."""
        params = {"media_type": "TEXT", "text": post.text}
        if post.part == 1 and article.image is not None:
            params.update(media_type="IMAGE", image_url=self.site.media_url(article.image.src),
                          alt_text=article.image.alt)
        if reply_to is not None and reply_to.id:
            params["reply_to_id"] = reply_to.id
        return params

    def outbox_payload(self, article: Article, posts: Sequence[PostText]) -> dict[str, Any]:
        payload = super().outbox_payload(article, posts)
        payload["requests"] = [
            {"method": "POST", "path": "/<THREADS_USER_ID>/threads",
             "data": {**self.container_params(article, post, None),
                      **({"reply_to_id": f"<id of part {post.part - 1}>"} if post.part > 1 else {})}}
            for post in posts]
        return payload

    def _over_quota(self, client: ThreadsClient, account: SocialAccount, parts: int, done: int) -> str:
        """Why this thread must wait for the quota (empty if it fits): part 1 is a post, the rest replies."""
        if done >= parts:
            return ""
        posts_needed = 1 if done == 0 else 0
        replies_needed = parts - max(done, 1)
        limit = client.publishing_limit(replies=replies_needed > 0)
        for used_key, config_key, default, needed, what in (
                ("quota_usage", "config", DEFAULT_POST_QUOTA, posts_needed, "posts"),
                ("reply_quota_usage", "reply_config", DEFAULT_REPLY_QUOTA, replies_needed, "replies")):
            if not needed:
                continue
            used = int(limit.get(used_key) or 0)
            total = int((limit.get(config_key) or {}).get("quota_total") or default)
            if used + needed > total:
                return (f"Threads quota reached for the {account.label} account: {used} of {total} {what} "
                        f"in 24 hours used, this post needs {needed} more")
        return ""
