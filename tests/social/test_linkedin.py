"""LinkedIn organization posts through the Posts API over the real requests, with HTTP answered by ``responses``."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from publisher.channels.linkedin import (
    COMMENTARY_LIMIT,
    LITTLE_RESERVED,
    LinkedInChannel,
    escape_little_text,
    little_commentary,
    plain_from_little,
)
from publisher.errors import ConfigError
from publisher.delivery import DeliveryKey
from tests.social.conftest import NOW, FakeClock, publish_with, story_of

SLUG = "2024-unpsf-incheon"
ORGANIZATION = {"LINKEDIN_ORGANIZATION_URN": "urn:li:organization:2414183",
                "LINKEDIN_ACCESS_TOKEN": "linkedin-token-secret"}
POSTS = "https://api.linkedin.com/rest/posts"
IMAGES = "https://api.linkedin.com/rest/images?action=initializeUpload"
UPLOAD = "https://www.linkedin.com/dms-uploads/sp/D4E10AQ/uploaded-image/0"
IMAGE_URN = "urn:li:image:D4E10AQH4F3V4QHJbWA"


@pytest.fixture
def http(http: responses.RequestsMock) -> responses.RequestsMock:
    """The conftest's ``responses``, with LinkedIn's Images API answering the article's image upload."""
    http.add(responses.POST, IMAGES, json={"value": {"uploadUrlExpiresAt": 1_700_086_400_000,
                                                     "uploadUrl": UPLOAD, "image": IMAGE_URN}})
    http.add(responses.PUT, UPLOAD, status=201, body="")
    return http


def channel_for(site: Any, clock: FakeClock | None = None) -> LinkedInChannel:
    channel = LinkedInChannel(site)
    clock = clock or FakeClock()
    channel.clock, channel.sleep = clock.clock, clock.sleep
    return channel


def key(lang: str = "en", account: str = "default") -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "linkedin", account)


def created(urn: str) -> dict[str, Any]:
    return {"status": 201, "body": "", "headers": {"x-restli-id": urn}}


def post_calls(http: responses.RequestsMock) -> list[Any]:
    return [c for c in http.calls if c.request.method == "POST" and c.request.url == POSTS]


def finder_calls(http: responses.RequestsMock) -> list[Any]:
    return [c for c in http.calls if c.request.method == "GET"]


def test_escaping_covers_every_reserved_character_and_reads_back() -> None:
    text = "| { } @ [ ] ( ) < > # \\ * _ ~"
    escaped = escape_little_text(text)
    assert escaped == "\\| \\{ \\} \\@ \\[ \\] \\( \\) \\< \\> \\# \\\\ \\* \\_ \\~"
    assert set(LITTLE_RESERVED) == set(text.replace(" ", ""))
    assert plain_from_little(escaped) == text


def test_hashtags_become_templates_and_urls_stay_whole() -> None:
    text = "Forum (Incheon) *2024* #공공행정 #UN_POG https://example.org/a_(b)#part"
    commentary = little_commentary(text)
    assert commentary == ("Forum \\(Incheon\\) \\*2024\\* {hashtag|\\#|공공행정} {hashtag|\\#|UN\\_POG} "
                          "https://example.org/a\\_\\(b\\)\\#part")
    assert plain_from_little(commentary) == text


def test_posts_escaped_commentary_with_the_article_card_and_version_headers(make_site, write_article, http) -> None:
    site = make_site(**ORGANIZATION)
    write_article("forum-notes", "en", "Notes [draft] from the forum (day 1)",
                  "Costs < benefits | see {annex_2} @UNPOG", tags=["Public Service", "UNPOG"])
    http.add(responses.POST, POSTS, **created("urn:li:share:7001"))

    [report] = publish_with(channel_for(site), story_of(site, "forum-notes"), ["en"])

    [call] = post_calls(http)
    body = json.loads(call.request.body)
    article = story_of(site, "forum-notes").get("en")
    assert body["author"] == "urn:li:organization:2414183"
    assert body["commentary"] == (
        "Notes \\[draft\\] from the forum \\(day 1\\)\n\n"
        "Costs \\< benefits \\| see \\{annex\\_2\\} \\@UNPOG\n\n"
        f"{escape_little_text(article.url)}\n"
        "{hashtag|\\#|PublicService} {hashtag|\\#|UNPOG}"
    )
    assert body["content"] == {"article": {"source": article.url, "title": article.title,
                                           "description": "Costs < benefits | see {annex_2} @UNPOG"}}
    assert [c for c in http.calls if c.request.url in (IMAGES, UPLOAD)] == []  # no image, no thumbnail
    assert body["visibility"] == "PUBLIC" and body["lifecycleState"] == "PUBLISHED"
    assert body["distribution"]["feedDistribution"] == "MAIN_FEED"
    headers = call.request.headers
    assert headers["LinkedIn-Version"] == "202609" and headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert headers["Authorization"] == "Bearer linkedin-token-secret"
    assert (report.state, report.where) == ("sent", "https://www.linkedin.com/feed/update/urn:li:share:7001/")
    row = site.ledger().get(DeliveryKey("forum-notes", "en", "linkedin", "default"))
    assert (row.state, row.remote_id) == ("sent", "urn:li:share:7001")


def test_korean_post_with_korean_hashtags(make_site, http) -> None:
    site = make_site(**ORGANIZATION, LINKEDIN_API_VERSION="202610")
    http.add(responses.POST, POSTS, **created("urn:li:share:7002"))

    publish_with(channel_for(site), story_of(site, SLUG), ["ko"])

    [call] = post_calls(http)
    commentary = json.loads(call.request.body)["commentary"]
    assert "유엔 공공행정포럼\\(인천\\)" in commentary and "{hashtag|\\#|기후행동}" in commentary
    assert call.request.headers["LinkedIn-Version"] == "202610"


def test_commentary_stays_within_3000_after_escaping(make_site, write_article, http) -> None:
    site = make_site(**ORGANIZATION)
    # 2,750 characters that grow by half when escaped: measured raw they would fit, escaped they would not
    write_article("many-symbols", "en", "Symbols", " ".join(["(a)|[b]{c}"] * 250))
    http.add(responses.POST, POSTS, **created("urn:li:share:7003"))

    publish_with(channel_for(site), story_of(site, "many-symbols"), ["en"])

    commentary = json.loads(post_calls(http)[0].request.body)["commentary"]
    assert len(commentary) <= COMMENTARY_LIMIT and "…" in commentary
    assert story_of(site, "many-symbols").get("en").url in plain_from_little(commentary)


@pytest.mark.parametrize("retry_after", ["45", formatdate(NOW + 45, usegmt=True)], ids=["seconds", "http-date"])
def test_429_waits_for_retry_after_then_posts(make_site, http, retry_after) -> None:
    site = make_site(**ORGANIZATION)
    clock = FakeClock()
    http.add(responses.POST, POSTS, status=429, json={"status": 429, "message": "Resource level throttle"},
             headers={"Retry-After": retry_after})
    http.add(responses.POST, POSTS, **created("urn:li:share:7004"))

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and clock.sleeps == [46.0] and len(post_calls(http)) == 2


@pytest.mark.parametrize("failure", [
    {"status": 503, "json": {"status": 503, "message": "Service unavailable"}},
    {"body": requests.exceptions.ReadTimeout("read timed out")},
], ids=["503", "timeout"])
def test_unknown_outcome_is_unconfirmed_and_retry_finds_the_post_by_its_card(make_site, http, failure) -> None:
    site = make_site(**ORGANIZATION)
    article = story_of(site, SLUG).get("en")
    http.add(responses.POST, POSTS, **failure)
    channel = channel_for(site)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed"
    [blind] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert blind.state == "unconfirmed" and len(post_calls(http)) == 1

    http.add(responses.GET, POSTS, json={"elements": [
        {"id": "urn:li:share:6999", "commentary": "Older", "content": {"article": {"source": "https://else.org/"}}},
        {"id": "urn:li:ugcPost:7005", "commentary": "Some text",
         "content": {"article": {"source": article.url, "title": article.title}}},
    ], "paging": {"start": 0, "count": 20}})
    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "found among recent posts" in retried.note
    assert len(post_calls(http)) == 1
    [finder] = finder_calls(http)
    query = parse_qs(urlsplit(finder.request.url).query)
    assert query["q"] == ["author"] and query["author"] == ["urn:li:organization:2414183"]
    assert "urn%3Ali%3Aorganization%3A2414183" in finder.request.url  # the URN is URL-encoded
    assert finder.request.headers["X-RestLi-Method"] == "FINDER"
    assert finder.request.headers["LinkedIn-Version"] == "202609"
    assert site.ledger().get(key()).remote_id == "urn:li:ugcPost:7005"


def test_retry_without_permission_to_list_posts_again_as_asked(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.add(responses.POST, POSTS, status=502, json={"message": "Bad gateway"})
    channel = channel_for(site)
    publish_with(channel, story_of(site, SLUG), ["en"])
    http.add(responses.GET, POSTS, status=403, json={"status": 403, "message": "Not enough permissions"})
    http.add(responses.POST, POSTS, **created("urn:li:share:7006"))

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "cannot list recent posts" in retried.note
    assert len(post_calls(http)) == 2


def test_unauthorized_is_failed_with_linkedins_message(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.add(responses.POST, POSTS, status=401, json={"status": 401, "serviceErrorCode": 65600,
                                                      "message": "Invalid access token"})

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and report.note == "could not post to LinkedIn: LinkedIn answered 401: Invalid access token"
    assert "linkedin-token-secret" not in json.dumps(site.ledger().get(key()).as_dict())


def test_created_without_an_id_is_unconfirmed(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.add(responses.POST, POSTS, status=201, body="")
    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LINKEDIN_ORGANIZATION_URN", "2414183", "expected urn:li:organization:<number>, got '2414183'"),
    ("LINKEDIN_API_VERSION", "2026-09", "expected a version as YYYYMM, such as 202609, got '2026-09'"),
])
def test_bad_settings_are_one_line_config_errors(make_site, name, value, message) -> None:
    site = make_site(**{**ORGANIZATION, name: value})
    with pytest.raises(ConfigError) as error:
        publish_with(channel_for(site), story_of(site, SLUG), ["en"])
    assert str(error.value) == f"{name} (from .env): {message}"


def test_without_settings_the_request_goes_to_the_outbox(make_site) -> None:
    site = make_site()
    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["ko"])
    payload = json.loads((site.root / report.where).read_text(encoding="utf-8"))
    [request] = payload["requests"]
    assert request["content"]["article"]["source"] == story_of(site, SLUG).get("ko").url
    assert "{hashtag|\\#|공공서비스}" in request["commentary"]


def test_a_duplicate_refusal_counts_as_posted_under_the_urn_linkedin_names(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.add(responses.POST, POSTS, status=422, json={
        "status": 422, "message": "Content is a duplicate of urn:li:share:7010", "code": "DUPLICATE_POST"})

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and report.where == "https://www.linkedin.com/feed/update/urn:li:share:7010/"
    assert site.ledger().get(key()).remote_id == "urn:li:share:7010" and len(post_calls(http)) == 1


def test_another_422_is_failed(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.add(responses.POST, POSTS, status=422, json={"status": 422, "message": "/commentary: too long"})
    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])
    assert report.state == "failed" and "/commentary: too long" in report.note


def test_the_articles_image_is_uploaded_as_the_cards_thumbnail(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.add(responses.POST, POSTS, **created("urn:li:share:7011"))

    publish_with(channel_for(site), story_of(site, SLUG), ["ko"])

    [start] = [c for c in http.calls if c.request.url == IMAGES]
    assert json.loads(start.request.body) == {"initializeUploadRequest": {"owner": "urn:li:organization:2414183"}}
    assert start.request.headers["LinkedIn-Version"] == "202609"
    [upload] = [c for c in http.calls if c.request.url == UPLOAD]
    assert upload.request.body == (site.root / "content" / "images" / "unpsf-2024.png").read_bytes()
    assert upload.request.headers["Authorization"] == "Bearer linkedin-token-secret"
    card = json.loads(post_calls(http)[0].request.body)["content"]["article"]
    assert card["thumbnail"] == IMAGE_URN and card["title"].startswith("세계 공공행정의 역량 강화")
    assert card["thumbnailAltText"] == story_of(site, SLUG).get("ko").image.alt  # the picture's alt text
    # the order of the Images API flow: initialize, PUT the bytes, then the post that names the image's URN
    assert [(c.request.method, c.request.url) for c in http.calls] == [("POST", IMAGES), ("PUT", UPLOAD),
                                                                       ("POST", POSTS)]


def test_a_failed_image_upload_posts_nothing_and_is_failed(make_site, http) -> None:
    site = make_site(**ORGANIZATION)
    http.replace(responses.PUT, UPLOAD, status=500, body="upstream error")

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "upload the image to LinkedIn" in report.note
    assert post_calls(http) == []


# --- the pinned LinkedIn-Version (publisher/channels/api_versions.py) -------------------------------------


def at(day: str) -> FakeClock:
    from datetime import UTC, datetime

    return FakeClock(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def test_the_default_version_is_pinned_in_one_place_with_the_day_it_was_checked() -> None:
    from publisher.channels import api_versions

    assert LinkedInChannel.settings[-1].default == api_versions.LINKEDIN_VERSION.version == "202609"
    import time

    for pinned in api_versions.PINNED:  # each says when it was last checked, never a day to come
        assert pinned.released <= pinned.checked <= api_versions.today(time.time)


@pytest.mark.parametrize(("version", "today", "warned"), [
    ("202609", "2027-09-01", False),   # exactly a year: still fine
    ("202609", "2027-09-03", True),    # a year and two days
    ("202501", "2025-06-30", False),
    ("202501", "2026-02-01", True),
])
def test_config_check_warns_when_the_linkedin_version_in_use_is_over_a_year_old(make_site, version, today,
                                                                                 warned) -> None:
    settings = {**ORGANIZATION} if version == "202609" else {**ORGANIZATION, "LINKEDIN_API_VERSION": version}
    channel = channel_for(make_site(**settings), at(today))
    warnings = channel.warnings()
    if not warned:
        assert warnings == []
    else:
        [warning] = warnings
        assert warning.startswith(f"LINKEDIN_API_VERSION: LinkedIn version {version}")
        assert "over a year old" in warning and f"{version[:4]}-{version[4:]}-01" in warning


def test_no_version_warning_for_linkedin_when_it_is_not_used_or_its_version_is_bad(make_site) -> None:
    assert channel_for(make_site(), at("2030-01-01")).warnings() == []
    bad = channel_for(make_site(**ORGANIZATION, LINKEDIN_API_VERSION="2026-09"), at("2030-01-01"))
    assert bad.warnings() == [] and bad.check()  # the bad value is check()'s error, not a warning


def test_publisher_config_check_prints_the_version_warning(cli) -> None:
    result = cli("config", "check", env={**ORGANIZATION, "LINKEDIN_API_VERSION": "202401"})
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Warning: LINKEDIN_API_VERSION")]
    assert "LinkedIn version 202401 is from 2024-01-01, over a year old" in line
