"""LinkedIn organization posts through the Posts API: commentary in the "little" text format and an article card.

``POST https://api.linkedin.com/rest/posts`` with the ``LinkedIn-Version`` and ``X-Restli-Protocol-Version``
headers, authored by ``LINKEDIN_ORGANIZATION_URN``. The commentary escapes every character the little format
reserves (``| { } @ [ ] ( ) < > # \\ * _ ~``) and writes hashtags as ``{hashtag|\\#|tag}`` templates; the
article is attached as ``content.article`` (its URL, title, summary and image, which LinkedIn does not fetch
itself: it is uploaded through the Images API first, ``initializeUpload`` then a PUT of the bytes, and its
``urn:li:image:...`` goes in the card as ``thumbnail``, with the image's alt text as ``thumbnailAltText``).
LinkedIn answers 201 with the new post's URN in the ``x-restli-id`` header.

The Posts API has no idempotency key. For ``--retry-unconfirmed`` it can list an organization's recent posts
(the ``author`` finder, which needs the ``r_organization_social`` permission): the post is looked for by the
article's URL there. Without that permission LinkedIn answers 403; the channel then treats the listing as
unavailable, so the retry posts again, which is what ``--retry-unconfirmed`` asks for once a person has
checked the Page (as for any platform that cannot list posts). A post LinkedIn refuses as a duplicate (422,
"Content is a duplicate of urn:li:share:...") counts as posted, under the URN LinkedIn names.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from publisher.channels.api_versions import LINKEDIN_VERSION
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
    card_title,
    json_or_none,
    refused,
    retry_after_wait,
    send_request,
)
from publisher.settings import Setting

if TYPE_CHECKING:  # requests is imported only when a post is made
    from collections.abc import Callable, Sequence

    import requests

    from publisher.article import Article
    from publisher.delivery import Attempt
    from publisher.formatters.social import LengthRule, PostText

API_URL = "https://api.linkedin.com/rest"
DEFAULT_LINKEDIN_VERSION = LINKEDIN_VERSION.version  # pinned, with the day it was last checked, in api_versions
RESTLI_PROTOCOL_VERSION = "2.0.0"
COMMENTARY_LIMIT = 3000
RECENT_POSTS_LOOKED_AT = 20

# Every character the little text format reserves; each must be backslash-escaped to stay plain text.
LITTLE_RESERVED = frozenset("|{}@[]()<>#\\*_~")
_HASHTAG = re.compile(r"(?<!\S)[#＃]([^\W_]\w*)")  # noqa: RUF001 - the full-width sign is a hashtag sign too
_HASHTAG_TEMPLATE = re.compile(r"\{hashtag\|\\?[#＃]\|((?:\\.|[^\\}])*)\}")  # noqa: RUF001
_ESCAPED = re.compile(r"\\(.)")
_DUPLICATE = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):\d+)", re.IGNORECASE)


def parse_organization_urn(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"urn:li:organization:\d+", value):
        raise ValueError(f"expected urn:li:organization:<number>, got {text!r}")
    return value


def parse_linkedin_version(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"20\d\d(0[1-9]|1[0-2])", value):
        raise ValueError(f"expected a version as YYYYMM, such as {DEFAULT_LINKEDIN_VERSION}, got {text!r}")
    return value


LINKEDIN_CREDENTIALS = (
    CredentialField("ORGANIZATION_URN", "LinkedIn organization that posts, as urn:li:organization:<id> (the id "
                    "is in the Page's admin address)", secret=False, parse=parse_organization_urn),
    CredentialField("ACCESS_TOKEN", "LinkedIn access token of a Page administrator, with w_organization_social "
                    "(and r_organization_social for --retry-unconfirmed)"),
)


def escape_little_text(text: str) -> str:
    """``text`` as plain little text: every reserved character backslash-escaped."""
    return "".join(f"\\{char}" if char in LITTLE_RESERVED else char for char in text)


def little_commentary(text: str) -> str:
    """A post's plain text as LinkedIn commentary: hashtags as hashtag templates, everything else escaped."""
    parts: list[str] = []
    position = 0
    for match in _HASHTAG.finditer(text):
        parts.append(escape_little_text(text[position:match.start()]))
        parts.append("{hashtag|\\#|" + escape_little_text(match.group(1)) + "}")
        position = match.end()
    parts.append(escape_little_text(text[position:]))
    return "".join(parts)


def plain_from_little(commentary: str) -> str:
    """Commentary as LinkedIn gives it back, as the plain text it was made from."""
    text = _HASHTAG_TEMPLATE.sub(lambda match: "#" + match.group(1), commentary)
    return _ESCAPED.sub(r"\1", text)


def commentary_length(text: str) -> int:
    """The length LinkedIn checks: the escaped commentary's, so the escapes never push a post over 3,000."""
    return len(little_commentary(text))


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


class LinkedInClient:
    """One LinkedIn organization, as a small client over ``requests``: create posts, list its recent ones."""

    def __init__(self, account: SocialAccount, *, version: str, timeout: float, clock: Callable[[], float],
                 base_url: str = API_URL) -> None:
        import requests

        self.account = account
        self.organization = account["ORGANIZATION_URN"]
        self.clock = clock
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self.uploaded_images: dict[str, str] = {}  # image digest -> urn:li:image:...
        self._session = requests.Session()
        self._session.headers.update({
            "Authorization": f"Bearer {account['ACCESS_TOKEN']}",
            "LinkedIn-Version": version,
            "X-Restli-Protocol-Version": RESTLI_PROTOCOL_VERSION,
        })

    def publish(self, commentary: str, *, url: str, title: str, description: str,
                thumbnail: str | None = None, thumbnail_alt: str | None = None) -> RemotePost:
        """POST /rest/posts: the organization's public post, with the article as its card."""
        payload = post_payload(self.organization, commentary, url=url, title=title, description=description,
                               thumbnail=thumbnail, thumbnail_alt=thumbnail_alt)
        response = self._call("POST", f"{self._base}/posts", "post to LinkedIn", json=payload)
        urn = response.headers.get("x-restli-id") if response is not None else None
        if not urn:
            raise OutcomeUnknown("LinkedIn accepted the post but did not give its id; check the Page")
        return RemotePost(urn, post_url(urn), plain_from_little(commentary), (url,))

    def upload_image(self, data: bytes, name: str) -> str:
        """Upload an image for the article card through the Images API; return its ``urn:li:image:...``.

        LinkedIn does not read the article's page for a picture, so without this the card has none. An
        upload is not a post: whatever fails here leaves nothing published.
        """
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.uploaded_images:  # a retry after a rate limit does not upload again
            return self.uploaded_images[digest]
        action = "upload the image to LinkedIn"
        try:
            started = self._call("POST", f"{self._base}/images?action=initializeUpload", action,
                                 json={"initializeUploadRequest": {"owner": self.organization}})
            assert started is not None
            value = started.json()["value"]
            self._call("PUT", value["uploadUrl"], action, data=data)
        except OutcomeUnknown as exc:
            raise PostNotSent(str(exc)) from None
        except (KeyError, TypeError, ValueError):
            raise PostNotSent(f"could not {action}: LinkedIn's answer had no upload address") from None
        self.uploaded_images[digest] = str(value["image"])
        return self.uploaded_images[digest]

    def recent_posts(self) -> list[RemotePost] | None:
        """The organization's latest posts, or None when the token may not list them (403)."""
        query = (f"author={quote(self.organization, safe='')}&q=author&count={RECENT_POSTS_LOOKED_AT}"
                 f"&sortBy=LAST_MODIFIED")
        # 403: the token lacks r_organization_social, so the listing is not available to it
        response = self._call("GET", f"{self._base}/posts?{query}", "list the organization's recent posts",
                              headers={"X-RestLi-Method": "FINDER"}, unavailable_on=403)
        if response is None:
            return None
        posts = []
        for element in response.json().get("elements", []):
            source = ((element.get("content") or {}).get("article") or {}).get("source")
            urn = str(element.get("id") or "")
            posts.append(RemotePost(urn, post_url(urn), plain_from_little(element.get("commentary") or ""),
                                    (source,) if source else ()))
        return posts

    def _call(self, method: str, url: str, action: str, *, unavailable_on: int | None = None,
              **kwargs: Any) -> requests.Response | None:
        posting = method == "POST"
        response = send_request(self._session, method, url, action, timeout=self._timeout,
                                may_have_posted=posting, **kwargs)
        if response.ok:
            return response
        if response.status_code == unavailable_on:
            return None
        said = f"LinkedIn answered {response.status_code}: {_error_message(response)}"
        if response.status_code == 429:
            # LinkedIn seldom says when its limits reset: wait a bounded default, then try again
            now = self.clock()
            raise RateLimited(said, reset_at=now + retry_after_wait(response.headers, now))
        duplicate_of = _DUPLICATE.search(said) if posting and response.status_code == 422 else None
        if duplicate_of:
            # "Content is a duplicate of urn:li:share:...": LinkedIn already has this post, and says which
            urn = duplicate_of.group(1)
            raise DuplicatePost(said, existing=RemotePost(urn, post_url(urn)))
        raise refused(response.status_code, action, said, may_have_posted=posting)


def post_payload(author: str, commentary: str, *, url: str, title: str, description: str,
                 thumbnail: str | None = None, thumbnail_alt: str | None = None) -> dict[str, Any]:
    """The Posts API body of an organization's public post with an article card."""
    card = {"source": url, "title": title, "description": description}
    if thumbnail:
        card["thumbnail"] = thumbnail
        if thumbnail_alt:  # read out by screen readers in place of the card's picture
            card["thumbnailAltText"] = thumbnail_alt
    return {
        "author": author,
        "commentary": commentary,
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "content": {"article": card},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


def _error_message(response: requests.Response) -> str:
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.reason or "no reason"


class LinkedInChannel(SocialChannel):
    """Posts each language version as the LinkedIn organization of that language."""

    name: ClassVar[str] = "linkedin"
    title: ClassVar[str] = "LinkedIn organization"
    settings = AccountSettings("LINKEDIN", LINKEDIN_CREDENTIALS, "LinkedIn", (
        Setting("LINKEDIN_API_VERSION", "LinkedIn API version (YYYYMM) sent as the LinkedIn-Version header; "
                "LinkedIn retires each version about a year after its release.",
                default=DEFAULT_LINKEDIN_VERSION, parse=parse_linkedin_version),
    ))

    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import LengthRule

        return LengthRule("linkedin", COMMENTARY_LIMIT, commentary_length)

    def warnings(self) -> list[str]:
        """The LinkedIn-Version in use, when over a year old: LinkedIn retires versions about then."""
        from publisher.channels.api_versions import linkedin_release

        return self.version_warnings(LINKEDIN_VERSION, linkedin_release)

    def fallback_description(self) -> str:
        return ("JSON files in outbox/linkedin/ (set LINKEDIN_ORGANIZATION_URN and LINKEDIN_ACCESS_TOKEN to post)")

    def open_client(self, account: SocialAccount) -> LinkedInClient:
        return LinkedInClient(account, version=str(self.option("LINKEDIN_API_VERSION")),
                              timeout=self.http_timeout, clock=self.clock)

    def post(self, client: LinkedInClient, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        image = self.load_image(article)
        thumbnail = client.upload_image(image.data, image.filename) if image is not None else None
        return client.publish(little_commentary(post.text), url=article.url, title=card_title(article),
                              description=_card_description(article), thumbnail=thumbnail,
                              thumbnail_alt=image.alt if image is not None else None)

    def recent_posts(self, client: LinkedInClient, account: SocialAccount) -> list[RemotePost] | None:
        return client.recent_posts()

    def outbox_payload(self, article: Article, posts: Sequence[PostText]) -> dict[str, Any]:
        payload = super().outbox_payload(article, posts)
        payload["requests"] = [
            post_payload("<LINKEDIN_ORGANIZATION_URN>", little_commentary(post.text), url=article.url,
                         title=card_title(article), description=_card_description(article))
            for post in posts
        ]
        return payload


def _card_description(article: Article) -> str:
    from publisher.formatters.social import plain_text

    return plain_text(article.summary_html)
