"""A Facebook Page through the Graph API: the post's message and the article's link, or its image, on the Page.

An article with an image becomes a Page photo post: ``POST https://graph.facebook.com/<version>/<page id>/photos``
with the image file as ``source``, the post's text (the link written out in it) as ``caption`` and the image's
alt text as ``alt_text_custom``, in one request that publishes the photo and its feed story together. An article
without one is a link post: ``POST /<page id>/feed`` with ``message`` and ``link``. Either is authorised by a
Page access token (sent as a bearer header, never in a URL). The Graph API has no idempotency key, so the
never-twice rules are ``SocialChannel``'s: a 5xx or a timeout leaves the row unconfirmed, and
``--retry-unconfirmed`` first reads the Page's recent posts (``GET /<page id>/feed``) for the article's URL.
Throttling (HTTP 429, or Graph error codes 4, 17, 32 and 613) waits for the time the usage headers give.
Facebook's "duplicate status message" (error 506) counts as posted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from publisher.channels.api_versions import GRAPH_VERSION
from publisher.channels.social import (
    DEFAULT_RATE_LIMIT_WAIT,
    AccountSettings,
    CredentialField,
    OutcomeUnknown,
    PostNotSent,
    RemotePost,
    SocialAccount,
    SocialChannel,
    graph_answer,
    graph_version,
    send_request,
)
from publisher.settings import Setting

if TYPE_CHECKING:  # requests is imported only when a post is made
    from collections.abc import Callable, Sequence

    import requests

    from publisher.article import Article
    from publisher.channels.social import LocalImage
    from publisher.delivery import Attempt
    from publisher.formatters.social import LengthRule, PostText

GRAPH_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = GRAPH_VERSION.version  # pinned, with the day it was last checked, in api_versions
FACEBOOK_MESSAGE_LIMIT = 63_206  # characters; a Page post is never near it, but nothing longer is sent
FACEBOOK_IMAGE_MAX_BYTES = 10 * 1024 * 1024 - 1  # the Photo reference: a static image under 10 MB
DUPLICATE_STATUS_CODE = 506
RECENT_POSTS_LOOKED_AT = 25


def parse_graph_version(text: str) -> str:
    return graph_version(text, "Graph API", DEFAULT_GRAPH_VERSION)


def parse_page_id(text: str) -> str:
    value = text.strip()
    if not value.isdigit():
        raise ValueError(f"expected the Page's numeric id, got {text!r}")
    return value


FACEBOOK_CREDENTIALS = (
    CredentialField("PAGE_ID", "Id of the Facebook Page (a number, shown under the Page's About > Page "
                    "transparency)", secret=False, parse=parse_page_id),
    CredentialField("PAGE_ACCESS_TOKEN", "Page access token of the Facebook Page, with the pages_manage_posts "
                    "permission (and pages_read_engagement for --retry-unconfirmed)"),
)


def facebook_length(text: str) -> int:
    return len(text)


def post_url(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"


class GraphClient:
    """One Facebook Page, as a small client over ``requests``: publish to its feed, read its recent posts."""

    def __init__(self, account: SocialAccount, *, version: str, timeout: float, clock: Callable[[], float],
                 base_url: str = GRAPH_URL) -> None:
        import requests

        self.account = account
        self.page_id = account["PAGE_ID"]
        self.clock = clock
        self._base = f"{base_url.rstrip('/')}/{version}"
        self._timeout = timeout
        self._session = requests.Session()
        # The Graph API takes the token as an OAuth bearer header: it stays out of URLs, which logs keep.
        self._session.headers["Authorization"] = f"Bearer {account['PAGE_ACCESS_TOKEN']}"

    def publish(self, message: str, link: str) -> RemotePost:
        """POST /<page>/feed: the message, and the link Facebook draws its preview card from."""
        body = self._call("POST", "feed", "post to the Facebook Page", data={"message": message, "link": link})
        post_id = str(body.get("id") or "")
        if not post_id:
            raise OutcomeUnknown("Facebook accepted the post but gave no id; check the Page")
        return RemotePost(post_id, post_url(post_id), message, (link,))

    def publish_photo(self, caption: str, image: LocalImage, link: str) -> RemotePost:
        """POST /<page>/photos: the image, published with the post's text (and so its link) as the caption.

        One request uploads the photo and publishes its story on the Page's feed; Facebook answers with both
        ids, and the story's (``post_id``) is the one the feed lists, so it is the one recorded.
        """
        data = {"caption": caption, "published": "true"}
        if image.alt:
            data["alt_text_custom"] = image.alt
        body = self._call("POST", "photos", "post the photo to the Facebook Page", data=data,
                          files={"source": (image.filename, image.data, image.media_type)})
        post_id = str(body.get("post_id") or body.get("id") or "")
        if not post_id:
            raise OutcomeUnknown("Facebook accepted the photo but gave no id; check the Page")
        return RemotePost(post_id, post_url(post_id), caption, (link,))

    def recent_posts(self) -> list[RemotePost]:
        """The Page's latest posts, with their message and the links they carry."""
        params = {"fields": "id,message,permalink_url,attachments{unshimmed_url,url}",
                  "limit": str(RECENT_POSTS_LOOKED_AT)}
        body = self._call("GET", "feed", "list the Page's recent posts", params=params)
        posts = []
        for item in body.get("data", []):
            links = [attachment.get(field) for attachment in (item.get("attachments") or {}).get("data", [])
                     for field in ("unshimmed_url", "url")]
            post_id = str(item["id"])
            posts.append(RemotePost(post_id, item.get("permalink_url") or post_url(post_id),
                                    item.get("message") or "", tuple(link for link in links if link)))
        return posts

    def _call(self, method: str, edge: str, action: str, **kwargs: Any) -> dict[str, Any]:
        posting = method == "POST"
        response = send_request(self._session, method, f"{self._base}/{self.page_id}/{edge}", action,
                                timeout=self._timeout, may_have_posted=posting, **kwargs)
        # Facebook may have stored a post before failing with a 5xx: only a look at the Page can tell
        return graph_answer(response, "Facebook", action, posting=posting, clock=self.clock,
                            rate_limit_wait=_rate_limit_wait, duplicate_code=DUPLICATE_STATUS_CODE)


def _rate_limit_wait(response: requests.Response, now: float) -> float:
    """Seconds until Facebook takes posts again: Retry-After, else the usage headers' estimate (minutes)."""
    from publisher.http_retry import retry_after

    wait = retry_after(response.headers.get("Retry-After"), now)
    if wait is not None:
        return wait
    minutes: list[float] = []
    for header in ("X-Business-Use-Case-Usage", "X-Page-Usage", "X-App-Usage"):
        try:
            minutes += _regain_minutes(json.loads(response.headers.get(header) or "null"))
        except ValueError:
            continue
    return max(minutes) * 60.0 if minutes else DEFAULT_RATE_LIMIT_WAIT


def _regain_minutes(usage: Any) -> list[float]:
    """Every ``estimated_time_to_regain_access`` (minutes) in a usage header, however deeply nested."""
    if isinstance(usage, dict):
        found = []
        for name, value in usage.items():
            if name == "estimated_time_to_regain_access" and isinstance(value, int | float):
                found.append(float(value))
            else:
                found += _regain_minutes(value)
        return found
    if isinstance(usage, list):
        return [minutes for value in usage for minutes in _regain_minutes(value)]
    return []


class FacebookChannel(SocialChannel):
    """Posts each language version to the Facebook Page of that language."""

    name: ClassVar[str] = "facebook"
    title: ClassVar[str] = "Facebook Page"
    settings = AccountSettings("FACEBOOK", FACEBOOK_CREDENTIALS, "Facebook Page", (
        Setting("FACEBOOK_GRAPH_VERSION", "Graph API version to call, e.g. v24.0 (Meta retires each version "
                "about two years after its release).", default=DEFAULT_GRAPH_VERSION, parse=parse_graph_version),
    ))

    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import LengthRule

        return LengthRule("facebook", FACEBOOK_MESSAGE_LIMIT, facebook_length)

    def warnings(self) -> list[str]:
        """The Graph API version in use, when over a year old (Meta keeps each about two)."""
        from publisher.channels.api_versions import graph_release

        return self.version_warnings(GRAPH_VERSION, graph_release)

    def fallback_description(self) -> str:
        return "JSON files in outbox/facebook/ (set FACEBOOK_PAGE_ID and FACEBOOK_PAGE_ACCESS_TOKEN to post)"

    def open_client(self, account: SocialAccount) -> GraphClient:
        return GraphClient(account, version=str(self.option("FACEBOOK_GRAPH_VERSION")),
                           timeout=self.http_timeout, clock=self.clock)

    def post(self, client: GraphClient, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        image = self.load_image(article)
        if image is None:
            return client.publish(post.text, article.url)
        if len(image.data) > FACEBOOK_IMAGE_MAX_BYTES:
            raise PostNotSent(f"image {image.filename} is 10 MB or more; Facebook takes photos under 10 MB")
        return client.publish_photo(post.text, image, article.url)

    def recent_posts(self, client: GraphClient, account: SocialAccount) -> list[RemotePost] | None:
        return client.recent_posts()

    def outbox_payload(self, article: Article, posts: Sequence[PostText]) -> dict[str, Any]:
        payload = super().outbox_payload(article, posts)
        if article.image is not None:
            image = article.image
            payload["requests"] = [{"method": "POST", "path": "/<FACEBOOK_PAGE_ID>/photos",
                                    "data": {"caption": post.text, "published": "true",
                                             "alt_text_custom": image.alt, "source": f"<the file {image.src}>"}}
                                   for post in posts]
        else:
            payload["requests"] = [{"method": "POST", "path": "/<FACEBOOK_PAGE_ID>/feed",
                                    "data": {"message": post.text, "link": article.url}} for post in posts]
        return payload
