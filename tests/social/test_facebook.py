"""A Facebook Page through the Graph API over the real requests, with HTTP answered by ``responses``."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from publisher.channels.facebook import FacebookChannel
from publisher.errors import ConfigError
from publisher.delivery import DeliveryKey
from tests.social.conftest import FakeClock, publish_with, story_of

SLUG = "2024-unpsf-incheon"
PAGE = {"FACEBOOK_PAGE_ID": "1029384756", "FACEBOOK_PAGE_ACCESS_TOKEN": "page-token-secret"}
KOREAN_PAGE = {"FACEBOOK_KO_PAGE_ID": "5566778899", "FACEBOOK_KO_PAGE_ACCESS_TOKEN": "korean-page-token"}
FEED = "https://graph.facebook.com/v24.0/1029384756/feed"
KOREAN_FEED = "https://graph.facebook.com/v24.0/5566778899/feed"
PHOTOS = "https://graph.facebook.com/v24.0/1029384756/photos"  # the sample article has an image: a photo post
KOREAN_PHOTOS = "https://graph.facebook.com/v24.0/5566778899/photos"


def channel_for(site: Any, clock: FakeClock | None = None) -> FacebookChannel:
    channel = FacebookChannel(site)
    clock = clock or FakeClock()
    channel.clock, channel.sleep = clock.clock, clock.sleep
    return channel


def key(lang: str = "en", account: str = "default") -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "facebook", account)


def form(call: Any) -> dict[str, Any]:
    """A request's form fields, url-encoded or multipart (a file field as (filename, content))."""
    content_type = call.request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return {name: values[0] for name, values in parse_qs(call.request.body).items()}
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    fields: dict[str, Any] = {}
    for part in BytesParser(policy=HTTP).parsebytes(head + call.request.body).iter_parts():
        name, content = part.get_param("name", header="content-disposition"), part.get_payload(decode=True)
        fields[name] = (part.get_filename(), content) if part.get_filename() else content.decode()
    return fields


def posts(http: responses.RequestsMock, url: str = PHOTOS) -> list[Any]:
    return [c for c in http.calls if c.request.method == "POST" and c.request.url == url]


def graph_error(code: int, message: str, status: int = 400, **extra: Any) -> dict[str, Any]:
    return {"json": {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1",
                               **extra}}, "status": status}


def page_feed(*items: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(items), "paging": {}}


def test_an_article_without_an_image_posts_message_and_link_with_the_token_in_a_header(make_site, write_article,
                                                                                        http) -> None:
    write_article("text-only", "en", "A story without a picture", "Summary.", ["Digital Government"])
    site = make_site(**PAGE)
    article = story_of(site, "text-only").get("en")
    http.add(responses.POST, FEED, json={"id": "1029384756_111"})

    [report] = publish_with(channel_for(site), story_of(site, "text-only"), ["en"])

    [call] = posts(http, FEED)
    sent = form(call)
    assert set(sent) == {"message", "link"}  # the token is not in the body ...
    assert sent["link"] == article.url
    assert sent["message"].startswith(article.title) and "#DigitalGovernment" in sent["message"]
    assert call.request.headers["Authorization"] == "Bearer page-token-secret"
    assert "page-token-secret" not in call.request.url  # ... nor in the URL
    assert (report.state, report.where) == ("sent", "https://www.facebook.com/1029384756_111")
    row = site.ledger().get(DeliveryKey("text-only", "en", "facebook", "default"))
    assert (row.state, row.remote_id) == ("sent", "1029384756_111")

    [again] = publish_with(channel_for(site), story_of(site, "text-only"), ["en"])
    assert again.state == "sent" and len(posts(http, FEED)) == 1 and posts(http) == []


def test_an_article_with_an_image_is_a_page_photo_post_with_the_link_in_its_caption(make_site, http) -> None:
    site = make_site(**PAGE)
    article = story_of(site, SLUG).get("en")
    http.add(responses.POST, PHOTOS, json={"id": "5550001", "post_id": "1029384756_116"})

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    [call] = posts(http)
    sent = form(call)
    assert set(sent) == {"caption", "published", "alt_text_custom", "source"}  # no token in the body
    assert sent["caption"].startswith(article.title) and article.url in sent["caption"]
    assert "#DigitalGovernment" in sent["caption"] and sent["published"] == "true"
    assert sent["alt_text_custom"] == article.image.alt
    image = (site.root / "content" / "images" / "unpsf-2024.png").read_bytes()
    assert sent["source"] == ("unpsf-2024.png", image)
    assert call.request.headers["Authorization"] == "Bearer page-token-secret"
    assert "page-token-secret" not in call.request.url
    assert posts(http, FEED) == []  # one request: the photo and its story on the Page's feed
    # The feed story's id, which the Page's feed lists (and a retry finds), not the photo's.
    assert (report.state, report.where) == ("sent", "https://www.facebook.com/1029384756_116")
    assert site.ledger().get(key()).remote_id == "1029384756_116"


def test_an_image_of_10_mb_or_more_is_refused_before_anything_is_sent(make_site, http, write_article) -> None:
    site = make_site(**PAGE)
    (site.root / "content" / "images" / "huge.png").write_bytes(b"\x89PNG" + b"0" * (10 * 1024 * 1024))
    write_article("huge", "en", "Huge", "Summary.", extra="image:\n  src: images/huge.png\n  alt: A big one\n")

    [report] = publish_with(channel_for(site), story_of(site, "huge"), ["en"])

    assert report.state == "failed" and "under 10 MB" in report.note and len(http.calls) == 0


def test_korean_post_goes_to_the_korean_page(make_site, http) -> None:
    site = make_site(**PAGE, **KOREAN_PAGE)
    http.add(responses.POST, PHOTOS, json={"id": "1", "post_id": "1029384756_1"})
    http.add(responses.POST, KOREAN_PHOTOS, json={"id": "2", "post_id": "5566778899_2"})

    publish_with(channel_for(site), story_of(site, SLUG), ["en", "ko"])

    [korean] = posts(http, KOREAN_PHOTOS)
    caption = form(korean)["caption"]
    assert "/ko/2024-unpsf-incheon/" in caption
    assert "유엔 공공행정포럼" in caption and "#기후행동" in caption
    assert form(korean)["alt_text_custom"] == story_of(site, SLUG).get("ko").image.alt
    assert korean.request.headers["Authorization"] == "Bearer korean-page-token"
    assert site.ledger().get(key("ko", "ko")).remote_id == "5566778899_2"


def test_page_throttling_waits_for_the_time_facebook_gives(make_site, http) -> None:
    site = make_site(**PAGE)
    clock = FakeClock()
    usage = {"1029384756": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    http.add(responses.POST, PHOTOS, **graph_error(32, "Page request limit reached"),
             headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    http.add(responses.POST, PHOTOS, json={"id": "9", "post_id": "1029384756_112"})

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and clock.sleeps == [121.0]  # 2 minutes, and a second to be safe
    assert len(posts(http)) == 2


def test_429_beyond_the_bound_stops_the_run_and_nothing_is_posted(make_site, http) -> None:
    site = make_site(**PAGE, SOCIAL_RATE_LIMIT_RETRIES="1")
    clock = FakeClock()
    http.add(responses.POST, PHOTOS, status=429, json={}, headers={"Retry-After": "10"})
    http.add(responses.POST, PHOTOS, status=429, json={}, headers={"Retry-After": "10"})

    report, stopped = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    assert report.state == "pending" and "rate limited" in report.note and clock.sleeps == [11.0]
    assert stopped.state == "stopped" and stopped.retry_at is not None
    assert site.ledger().get(key()).state == "pending"


@pytest.mark.parametrize("failure", [
    graph_error(2, "An unexpected error has occurred. Please retry your request later.", status=500,
                is_transient=True),
    {"body": requests.exceptions.ReadTimeout("read timed out")},
], ids=["500", "timeout"])
def test_unknown_outcome_is_unconfirmed_and_retry_finds_the_post_on_the_page(make_site, http, failure) -> None:
    site = make_site(**PAGE)
    article = story_of(site, SLUG).get("en")
    http.add(responses.POST, PHOTOS, **failure)
    channel = channel_for(site)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed"
    [blind] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert blind.state == "unconfirmed" and len(posts(http)) == 1

    http.add(responses.GET, FEED, json=page_feed(
        {"id": "1029384756_900", "message": "An older post", "permalink_url": "https://www.facebook.com/p/900"},
        # a photo post: its caption is the message, the link is in it, the attachment is the photo itself
        {"id": "1029384756_113", "message": f"Posted before the timeout\n\n{article.url}",
         "permalink_url": "https://www.facebook.com/unpog/posts/113",
         "attachments": {"data": [{"url": "https://www.facebook.com/photo.php?fbid=5550001"}]}},
    ))
    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "found among recent posts" in retried.note
    assert len(posts(http)) == 1
    [lookup] = [c for c in http.calls if c.request.method == "GET"]
    assert "attachments" in lookup.request.url and "page-token-secret" not in lookup.request.url
    assert lookup.request.headers["Authorization"] == "Bearer page-token-secret"
    row = site.ledger().get(key())
    assert (row.state, row.remote_id, row.remote_url) == ("sent", "1029384756_113",
                                                           "https://www.facebook.com/unpog/posts/113")


def test_retry_posts_when_the_page_does_not_have_it(make_site, http) -> None:
    site = make_site(**PAGE)
    http.add(responses.POST, PHOTOS, body=requests.exceptions.ReadTimeout("read timed out"))
    channel = channel_for(site)
    publish_with(channel, story_of(site, SLUG), ["en"])
    http.add(responses.GET, FEED, json=page_feed({"id": "1029384756_900", "message": "Another story"}))
    http.add(responses.POST, PHOTOS, json={"id": "9", "post_id": "1029384756_114"})

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "not found among recent posts" in retried.note
    assert len(posts(http)) == 2 and site.ledger().get(key()).remote_id == "1029384756_114"


def test_duplicate_status_counts_as_posted(make_site, http) -> None:
    site = make_site(**PAGE)
    article = story_of(site, SLUG).get("en")
    http.add(responses.POST, PHOTOS, **graph_error(506, "Duplicate status message"))
    http.add(responses.GET, FEED, json=page_feed({"id": "1029384756_115", "message": f"Same text {article.url}"}))

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and site.ledger().get(key()).remote_id == "1029384756_115"
    assert len(posts(http)) == 1


def test_an_expired_token_fails_with_facebooks_reason_and_no_secret(make_site, http) -> None:
    site = make_site(**PAGE)
    http.add(responses.POST, PHOTOS, **graph_error(190, "Error validating access token: Session has expired"))

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "failed"
    assert "Facebook answered 400: Error validating access token" in report.note and "(code 190)" in report.note
    assert "page-token-secret" not in report.note
    assert "page-token-secret" not in json.dumps(site.ledger().get(key()).as_dict())


def test_refused_connection_is_failed_not_unconfirmed(make_site, http) -> None:
    import urllib3

    site = make_site(**PAGE)
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, FEED, urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    http.add(responses.POST, PHOTOS, body=refused)

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "no connection" in report.note


def test_a_page_id_that_is_not_a_number_is_a_one_line_config_error(make_site) -> None:
    site = make_site(FACEBOOK_PAGE_ID="unpog.page", FACEBOOK_PAGE_ACCESS_TOKEN="t")
    with pytest.raises(ConfigError) as error:
        publish_with(channel_for(site), story_of(site, SLUG), ["en"])
    assert str(error.value) == "FACEBOOK_PAGE_ID (from .env): expected the Page's numeric id, got 'unpog.page'"


def test_half_an_account_is_a_config_error_naming_the_missing_setting(make_site) -> None:
    site = make_site(FACEBOOK_KO_PAGE_ID="5566778899")
    with pytest.raises(ConfigError, match="FACEBOOK_KO_PAGE_ACCESS_TOKEN"):
        publish_with(channel_for(site), story_of(site, SLUG), ["ko"])


def test_without_settings_the_request_goes_to_the_outbox(make_site) -> None:
    site = make_site()
    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["ko"])
    payload = json.loads((site.root / report.where).read_text(encoding="utf-8"))
    [request] = payload["requests"]
    article = story_of(site, SLUG).get("ko")
    assert request["path"] == "/<FACEBOOK_PAGE_ID>/photos" and request["data"]["caption"] == payload["posts"][0]["text"]
    assert article.url in request["data"]["caption"] and request["data"]["alt_text_custom"] == article.image.alt


# --- the pinned Graph API version (publisher/channels/api_versions.py) ------------------------------------


def at(day: str) -> FakeClock:
    from datetime import UTC, datetime

    return FakeClock(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("version", "today", "warned"), [
    (None, "2026-10-08", False),       # the default v24.0 (2025-10-08), a year old to the day
    (None, "2026-10-10", True),
    ("v23.0", "2026-10-10", True),     # older than the default, so at least as old
    ("v99.0", "2040-01-01", False),    # newer than the default: its age is not known, so no guess
])
def test_config_check_warns_when_the_graph_version_in_use_is_over_a_year_old(make_site, version, today,
                                                                              warned) -> None:
    from publisher.channels.api_versions import GRAPH_VERSION

    assert FacebookChannel.settings[-1].default == GRAPH_VERSION.version == "v24.0"
    settings = {**PAGE} if version is None else {**PAGE, "FACEBOOK_GRAPH_VERSION": version}
    warnings = channel_for(make_site(**settings), at(today)).warnings()
    if not warned:
        assert warnings == []
    else:
        [warning] = warnings
        assert warning.startswith(f"FACEBOOK_GRAPH_VERSION: Meta's Graph API version {version or 'v24.0'}")
        assert "from 2025-10-08, over a year old" in warning and "about two years" in warning


def test_no_graph_version_warning_when_facebook_is_not_used(make_site) -> None:
    assert channel_for(make_site(), at("2030-01-01")).warnings() == []
