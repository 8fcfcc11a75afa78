"""Mastodon through the real Mastodon.py, with HTTP answered by ``responses`` under it."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from publisher.channels.mastodon import MastodonChannel
from publisher.channels.social import idempotency_key
from publisher.formatters.social import mastodon_length
from publisher.delivery import DeliveryKey
from tests.social.conftest import MASTODON_BASE, MASTODON_DEFAULT, FakeClock, publish_with, story_of

STATUSES = f"{MASTODON_BASE}/api/v1/statuses"
INSTANCE_V2 = f"{MASTODON_BASE}/api/v2/instance/"
INSTANCE_V1 = f"{MASTODON_BASE}/api/v1/instance/"
MEDIA = f"{MASTODON_BASE}/api/v2/media"
VERIFY = f"{MASTODON_BASE}/api/v1/accounts/verify_credentials"
ACCOUNT_STATUSES = f"{MASTODON_BASE}/api/v1/accounts/77/statuses"
KOREAN_BASE = "https://korea.social.example"
SLUG = "2024-unpsf-incheon"


def instance(max_characters: int = 500) -> dict[str, Any]:
    return {"domain": "mastodon.example", "title": "Example", "version": "4.3.0",
            "configuration": {"statuses": {"max_characters": max_characters, "max_media_attachments": 4}}}


def status(status_id: str, content: str = "<p>posted</p>", base: str = MASTODON_BASE) -> dict[str, Any]:
    return {"id": status_id, "url": f"{base}/@unpog/{status_id}", "uri": f"{base}/users/unpog/statuses/{status_id}",
            "content": content, "created_at": "2025-03-01T00:00:00.000Z", "visibility": "public",
            "language": "en", "account": {"id": "77", "username": "unpog", "acct": "unpog"}, "card": None}


def form(call: Any) -> dict[str, Any]:
    body = call.request.body
    if isinstance(body, bytes):
        body = body.decode()
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return {name: values[0] if len(values) == 1 else values for name, values in parse_qs(body).items()}


def status_calls(http: responses.RequestsMock) -> list[Any]:
    return [c for c in http.calls if c.request.url == STATUSES and c.request.method == "POST"]


@pytest.fixture
def api(http: responses.RequestsMock) -> responses.RequestsMock:
    """The instance under Mastodon.py: its limits and the sample article's image upload are answered."""
    http.add(responses.GET, INSTANCE_V2, json=instance())
    http.add(responses.POST, MEDIA, json={"id": "m1", "type": "image", "url": f"{MASTODON_BASE}/m1.png",
                                          "description": "alt"})
    return http


@pytest.fixture
def clock() -> FakeClock:
    # Mastodon.py drops a rate-limit reset that is not in the future of the real clock, so start from it.
    return FakeClock(now=time.time())


def channel_for(site: Any, clock: FakeClock) -> MastodonChannel:
    channel = MastodonChannel(site)
    channel.clock = clock.clock
    channel.sleep = clock.sleep
    return channel


def key(lang: str = "en", account: str = "default") -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "mastodon", account)


def test_posts_with_idempotency_key_language_and_token(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.add(responses.POST, STATUSES, json=status("111"))

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    [call] = status_calls(api)
    sent = form(call)
    article = story_of(site, SLUG).get("en")
    assert article.url in sent["status"] and "#DigitalGovernment" in sent["status"]
    assert sent["language"] == "en"
    assert sent.get("media_ids[]", sent.get("media_ids")) in ("m1", ["m1"]), sent
    assert call.request.headers["Idempotency-Key"] == idempotency_key(key(), 1)
    assert call.request.headers["Authorization"] == "Bearer token-default"
    assert (report.state, report.where) == ("sent", f"{MASTODON_BASE}/@unpog/111")
    row = site.ledger().get(key())
    assert (row.state, row.remote_id, row.remote_url) == ("sent", "111", f"{MASTODON_BASE}/@unpog/111")

    again = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])
    assert again[0].state == "sent" and len(status_calls(api)) == 1


def test_image_is_uploaded_with_its_alt_text(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.add(responses.POST, STATUSES, json=status("112"))
    publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])
    [upload] = [c for c in api.calls if c.request.url == MEDIA]
    assert b'name="file"' in upload.request.body and b"\x89PNG" in upload.request.body
    alt = story_of(site, SLUG).get("en").image.alt
    assert alt.encode() in upload.request.body
    assert upload.request.headers["Authorization"] == "Bearer token-default"


def test_korean_post_goes_to_the_korean_account_with_language_ko(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT, MASTODON_KO_API_BASE_URL=KOREAN_BASE, MASTODON_KO_ACCESS_TOKEN="token-ko")
    api.add(responses.GET, f"{KOREAN_BASE}/api/v2/instance/", json=instance(1000))
    api.add(responses.POST, f"{KOREAN_BASE}/api/v2/media", json={"id": "k1", "type": "image", "url": "u"})
    api.add(responses.POST, f"{KOREAN_BASE}/api/v1/statuses", json=status("222", base=KOREAN_BASE))

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["ko"])

    [call] = [c for c in api.calls if c.request.url == f"{KOREAN_BASE}/api/v1/statuses"]
    assert form(call)["language"] == "ko" and "/ko/2024-unpsf-incheon/" in form(call)["status"]
    assert call.request.headers["Authorization"] == "Bearer token-ko"
    assert call.request.headers["Idempotency-Key"] == idempotency_key(key("ko", "ko"), 1)
    assert report.state == "sent" and site.ledger().get(key("ko", "ko")).remote_id == "222"


def test_the_instance_limit_shortens_the_post(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.replace(responses.GET, INSTANCE_V2, json=instance(120))
    api.add(responses.POST, STATUSES, json=status("113"))

    publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    text = form(status_calls(api)[0])["status"]
    assert mastodon_length(text) <= 120
    assert story_of(site, SLUG).get("en").url in text


def test_an_older_instance_limit_comes_from_api_v1(make_site, http, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    http.add(responses.GET, INSTANCE_V2, json={"error": "Not found"}, status=404)
    http.add(responses.GET, INSTANCE_V1, json={"uri": "mastodon.example", "configuration": {
        "statuses": {"max_characters": 100}}})
    http.add(responses.POST, MEDIA, json={"id": "m1", "type": "image", "url": "u"})
    http.add(responses.POST, STATUSES, json=status("114"))
    publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])
    assert mastodon_length(form(status_calls(http)[0])["status"]) <= 100


def test_429_waits_for_the_reset_and_keeps_the_idempotency_key(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    reset = formatdate(clock.now + 20, usegmt=True)
    api.add(responses.POST, STATUSES, json={"error": "Too many requests"}, status=429,
            headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "300"})
    api.add(responses.POST, STATUSES, json=status("115"))

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent"
    assert len(clock.sleeps) == 1 and 15 <= clock.sleeps[0] <= 22
    first, second = status_calls(api)
    assert first.request.headers["Idempotency-Key"] == second.request.headers["Idempotency-Key"]


@pytest.mark.parametrize("failure", [
    {"json": {"error": "Service Unavailable"}, "status": 503},
    {"body": requests.exceptions.ReadTimeout("read timed out")},
], ids=["503", "timeout"])
def test_unknown_outcome_is_unconfirmed_and_not_retried_blindly(make_site, api, clock, failure) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.add(responses.POST, STATUSES, **failure)
    channel = channel_for(site, clock)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed"
    assert site.ledger().get(key()).state == "unconfirmed"
    [again] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert again.state == "unconfirmed" and len(status_calls(api)) == 1


def test_refused_connection_is_failed_not_unconfirmed(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    import urllib3

    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, STATUSES, urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    api.add(responses.POST, STATUSES, body=refused)
    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])
    assert report.state == "failed" and "no connection" in report.note


def test_retry_unconfirmed_finds_the_status_by_its_link(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.add(responses.POST, STATUSES, body=requests.exceptions.ReadTimeout("read timed out"))
    channel = channel_for(site, clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    url = story_of(site, SLUG).get("en").url
    api.add(responses.GET, VERIFY, json={"id": "77", "username": "unpog", "acct": "unpog"})
    api.add(responses.GET, ACCOUNT_STATUSES, json=[
        status("300", "<p>Another story</p>"),
        status("301", f'<p>Empowering ...</p><p><a href="{url}" rel="nofollow noopener" target="_blank">'
                      f'<span class="invisible">http://</span><span>localhost:8000/en/…</span></a></p>'),
    ])

    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "found among recent posts" in report.note
    assert len(status_calls(api)) == 1
    lookup = [c for c in api.calls if c.request.url.startswith(ACCOUNT_STATUSES)][0]
    assert lookup.request.headers["Authorization"] == "Bearer token-default"
    assert site.ledger().get(key()).remote_id == "301"


def test_retry_unconfirmed_posts_with_the_same_idempotency_key_when_absent(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.add(responses.POST, STATUSES, json={"error": "Bad gateway"}, status=502)
    channel = channel_for(site, clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    api.add(responses.GET, VERIFY, json={"id": "77", "username": "unpog", "acct": "unpog"})
    api.add(responses.GET, ACCOUNT_STATUSES, json=[status("300", "<p>Another story</p>")])
    api.replace(responses.POST, STATUSES, json=status("302"))

    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "not found" in report.note
    first, second = status_calls(api)
    # The same key: should the first attempt have landed after all, the instance returns it instead of a copy.
    assert first.request.headers["Idempotency-Key"] == second.request.headers["Idempotency-Key"]
    assert site.ledger().get(key()).remote_id == "302"


def test_validation_error_fails_with_the_instance_message(make_site, api, clock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    api.add(responses.POST, STATUSES, json={"error": "Validation failed: Text character limit of 500 exceeded"},
            status=422)
    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])
    assert report.state == "failed" and "character limit" in report.note
    assert "token-default" not in report.note


def test_without_settings_posts_go_to_the_json_outbox(make_site, clock) -> None:
    site = make_site()
    reports = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])
    assert reports[0].state == "sent"
    payload = json.loads((site.outbox_dir / "mastodon" / f"{SLUG}.en.json").read_text(encoding="utf-8"))
    assert payload["posts"][0]["limit"] == 500 and payload["posts"][0]["length"] <= 500


def test_render_shows_length_against_the_configured_limit(make_site, clock) -> None:
    site = make_site(**MASTODON_DEFAULT, MASTODON_MAX_CHARACTERS="200")
    [rendition] = channel_for(site, clock).render(story_of(site, SLUG), ["ko"])
    assert rendition.meta["limit"] == 200
    assert rendition.meta["length"] == mastodon_length(rendition.content) <= 200


def test_a_bad_instance_address_is_a_one_line_error_naming_the_setting(make_site, clock) -> None:
    from publisher.errors import ConfigError

    site = make_site(MASTODON_API_BASE_URL="mastodon.example", MASTODON_ACCESS_TOKEN="t")
    channel = channel_for(site, clock)
    assert channel.check() == [
        "MASTODON_API_BASE_URL (from .env): expected an http:// or https:// URL, got 'mastodon.example'"]
    with pytest.raises(ConfigError, match=r"^MASTODON_API_BASE_URL \(from \.env\): expected an http"):
        publish_with(channel, story_of(site, SLUG), ["en"])


# --- threads (MASTODON_LONG_TEXT=thread) -------------------------------------------------------------------

LONG_SUMMARY = "The workshop discussed digital transformation and inclusive governance for climate action. " * 16


def long_article(write_article: Any) -> DeliveryKey:
    write_article("long-english", "en", "A long story", LONG_SUMMARY.strip(), ["Public administration"])
    return DeliveryKey("long-english", "en", "mastodon", "default")


def test_a_long_article_becomes_a_numbered_thread_within_the_instances_limit(make_site, write_article, api,
                                                                               clock) -> None:
    row_key = long_article(write_article)
    site = make_site(**MASTODON_DEFAULT, MASTODON_LONG_TEXT="thread")
    api.replace(responses.GET, INSTANCE_V2, json=instance(300))  # the instance's max_characters, not 500
    for number in range(1, 10):
        api.add(responses.POST, STATUSES, json=status(f"50{number}"))

    [report] = publish_with(channel_for(site, clock), story_of(site, "long-english"), ["en"])

    calls = status_calls(api)
    sent = [form(call) for call in calls]
    assert report.state == "sent" and len(sent) >= 4
    for number, body in enumerate(sent, start=1):
        assert body["status"].endswith(f" {number}/{len(sent)}") and mastodon_length(body["status"]) <= 300
        assert body["language"] == "en"
        assert calls[number - 1].request.headers["Idempotency-Key"] == idempotency_key(row_key, number)
    assert "in_reply_to_id" not in sent[0]
    assert [body["in_reply_to_id"] for body in sent[1:]] == [f"50{n}" for n in range(1, len(sent))]
    row = site.ledger().get(row_key)
    assert [part["id"] for part in row.detail["parts"]] == [f"50{n}" for n in range(1, len(sent) + 1)]
    assert row.remote_id == "501"


def test_a_mastodon_thread_resumes_after_a_failure_at_part_3(make_site, write_article, api, clock) -> None:
    row_key = long_article(write_article)
    site = make_site(**MASTODON_DEFAULT, MASTODON_LONG_TEXT="thread")
    api.add(responses.POST, STATUSES, json=status("601"))
    api.add(responses.POST, STATUSES, json=status("602"))
    api.add(responses.POST, STATUSES, json={"error": "Service Unavailable"}, status=503)
    channel = channel_for(site, clock)

    [first] = publish_with(channel, story_of(site, "long-english"), ["en"])

    assert first.state == "unconfirmed"
    row = site.ledger().get(row_key)
    assert [part["id"] for part in row.detail["parts"]] == ["601", "602"]
    total = row.detail["total"]
    assert total >= 4
    third_try = status_calls(api)[2]
    assert form(third_try)["status"].endswith(f" 3/{total}") and form(third_try)["in_reply_to_id"] == "602"

    # Without --retry-unconfirmed nothing is posted: the 503 may have hidden a success.
    [second] = publish_with(channel, story_of(site, "long-english"), ["en"])
    assert second.state == "unconfirmed" and len(status_calls(api)) == 3

    # With it, part 3 is looked for among the account's statuses; absent, it is posted as a reply to part 2,
    # under the same idempotency key (had the first try landed, the instance would answer with it), and the
    # rest of the thread follows. Parts 1 and 2 are not posted again.
    api.add(responses.GET, VERIFY, json={"id": "77", "username": "unpog", "acct": "unpog"})
    api.add(responses.GET, ACCOUNT_STATUSES, json=[status("602", "<p>part two</p>"), status("601", "<p>one</p>")])
    api.replace(responses.POST, STATUSES, json=status("603"))
    for number in range(4, total + 1):
        api.add(responses.POST, STATUSES, json=status(f"60{number}"))

    [third] = publish_with(channel, story_of(site, "long-english"), ["en"], retry_unconfirmed=True)

    assert third.state == "sent"
    resumed = status_calls(api)[3:]
    assert len(resumed) == total - 2
    assert form(resumed[0])["status"] == form(third_try)["status"]
    assert form(resumed[0])["in_reply_to_id"] == "602"
    assert resumed[0].request.headers["Idempotency-Key"] == third_try.request.headers["Idempotency-Key"]
    assert resumed[0].request.headers["Idempotency-Key"] == idempotency_key(row_key, 3)
    assert [form(call)["in_reply_to_id"] for call in resumed[1:]] == [f"60{n}" for n in range(3, total)]
    row = site.ledger().get(row_key)
    assert row.state == "sent" and row.remote_id == "601"
    assert [part["id"] for part in row.detail["parts"]] == [f"60{n}" for n in range(1, total + 1)]


def test_a_thread_refused_at_part_3_resumes_there_on_the_next_run(make_site, write_article, api, clock) -> None:
    row_key = long_article(write_article)
    site = make_site(**MASTODON_DEFAULT, MASTODON_LONG_TEXT="thread")
    api.add(responses.POST, STATUSES, json=status("701"))
    api.add(responses.POST, STATUSES, json=status("702"))
    api.add(responses.POST, STATUSES, json={"error": "Validation failed: Text character limit"}, status=422)
    channel = channel_for(site, clock)

    [first] = publish_with(channel, story_of(site, "long-english"), ["en"])
    assert first.state == "failed"  # refused: nothing was posted at part 3, so a later run may post it

    total = site.ledger().get(row_key).detail["total"]
    api.replace(responses.POST, STATUSES, json=status("703"))
    for number in range(4, total + 1):
        api.add(responses.POST, STATUSES, json=status(f"70{number}"))
    [second] = publish_with(channel, story_of(site, "long-english"), ["en"])

    assert second.state == "sent"
    resumed = status_calls(api)[3:]
    assert form(resumed[0])["status"].endswith(f" 3/{total}") and form(resumed[0])["in_reply_to_id"] == "702"
    assert len(resumed) == total - 2


def test_shorten_stays_the_default_and_thread_is_the_only_other_choice(make_site, write_article, clock) -> None:
    long_article(write_article)
    site = make_site(**MASTODON_DEFAULT)
    [rendition] = channel_for(site, clock).render(story_of(site, "long-english"), ["en"])
    assert len(rendition.files) == 1 and rendition.files[0].meta["parts"] == 1  # shortened, as before
    site = make_site(**MASTODON_DEFAULT, MASTODON_LONG_TEXT="threads")
    assert any("MASTODON_LONG_TEXT" in problem for problem in channel_for(site, clock).check())
