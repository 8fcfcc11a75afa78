"""X through the real tweepy, with HTTP answered by ``responses`` under it: what is sent, and never twice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest
import requests
import responses

from publisher.article import Image
from publisher.channels.social import idempotency_key
from publisher.channels.x import XChannel
from publisher.errors import ConfigError
from publisher.formatters.social import x_weighted_length
from publisher.delivery import DeliveryKey
from tests.social.conftest import NOW, X_DEFAULT, X_KOREAN, FakeClock, publish_with, story_of

TWEETS = "https://api.twitter.com/2/tweets"
ME = "https://api.twitter.com/2/users/me"
USER_TWEETS = "https://api.twitter.com/2/users/42/tweets"
UPLOAD = "https://api.x.com/2/media/upload"
METADATA = "https://api.x.com/2/media/metadata"
MEDIA_ID = "1880028106020515840"
SLUG = "2024-unpsf-incheon"
DUPLICATE_BODY = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
                  "title": "Forbidden", "status": 403}


def retired_calls(http: responses.RequestsMock) -> list[str]:
    """Calls to the v1.1 API X retired for media (upload.twitter.com, any /1.1/ path): there must be none."""
    return [call.request.url for call in http.calls
            if "upload.twitter.com" in call.request.url or "/1.1/" in call.request.url]


@pytest.fixture
def x_http(http: responses.RequestsMock) -> Iterator[responses.RequestsMock]:
    """The X API under tweepy and requests: the sample article's image upload through v2 is answered (as
    docs.x.com shows it); each test adds its tweets. Any call to the retired v1.1 endpoints fails the test."""
    http.add(responses.POST, UPLOAD, json={"data": {"id": MEDIA_ID, "media_key": f"3_{MEDIA_ID}", "size": 10,
                                                    "expires_after_secs": 86400,
                                                    "image": {"image_type": "image/png", "w": 1, "h": 1}}})
    http.add(responses.POST, METADATA, json={"data": {"id": MEDIA_ID, "associated_metadata": True}})
    yield http
    assert retired_calls(http) == []


def tweet_calls(http: responses.RequestsMock) -> list[Any]:
    return [call for call in http.calls if call.request.url == TWEETS]


def created(tweet_id: str) -> dict[str, Any]:
    return {"json": {"data": {"id": tweet_id, "text": "posted", "edit_history_tweet_ids": [tweet_id]}},
            "status": 201}


def posted_bodies(http: responses.RequestsMock) -> list[dict[str, Any]]:
    return [json.loads(call.request.body) for call in http.calls if call.request.url == TWEETS]


def channel_for(site: Any, clock: FakeClock) -> XChannel:
    channel = XChannel(site)
    channel.clock = clock.clock
    channel.sleep = clock.sleep
    return channel


def key(lang: str = "en", account: str = "default") -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "x", account)


def test_posts_with_oauth1_and_records_the_tweet(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, **created("1001"))
    channel = channel_for(site, fake_clock)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])

    [body] = posted_bodies(x_http)
    article = story_of(site, SLUG).get("en")
    assert article.url in body["text"] and article.title in body["text"]
    assert x_weighted_length(body["text"]) <= 280
    assert "reply" not in body
    auth = tweet_calls(x_http)[0].request.headers["Authorization"]
    assert auth.startswith("OAuth ") and 'oauth_consumer_key="ck-default"' in auth
    assert 'oauth_token="at-default"' in auth and "oauth_signature=" in auth
    assert "cs-default" not in auth and "ats-default" not in auth  # secrets sign, they are never sent
    assert (report.state, report.where) == ("sent", "https://x.com/i/web/status/1001")
    row = site.ledger().get(key())
    assert (row.state, row.remote_id, row.remote_url) == ("sent", "1001", "https://x.com/i/web/status/1001")
    assert row.detail["parts"] == [{"id": "1001", "url": "https://x.com/i/web/status/1001"}]

    [again] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert again.state == "sent" and "already posted" in again.note
    assert len(tweet_calls(x_http)) == 1  # never a second post


def test_each_language_goes_to_its_own_account(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT, **X_KOREAN)
    x_http.add(responses.POST, TWEETS, **created("2001"))
    x_http.add(responses.POST, TWEETS, **created("2002"))

    reports = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en", "ko"])

    assert [r.state for r in reports] == ["sent", "sent"]
    english, korean = tweet_calls(x_http)
    assert 'oauth_consumer_key="ck-default"' in english.request.headers["Authorization"]
    assert 'oauth_consumer_key="ck-korean"' in korean.request.headers["Authorization"]
    korean_text = json.loads(korean.request.body)["text"]
    assert "/ko/2024-unpsf-incheon/" in korean_text and "#유엔공공행정포럼" in korean_text
    assert site.ledger().get(key("ko", "ko")).remote_id == "2002"
    assert site.ledger().get(key("en", "default")).remote_id == "2001"


def test_long_korean_text_is_posted_as_a_thread_of_replies(make_site, write_article, x_http, fake_clock) -> None:
    summary = "유엔거버넌스센터는 공공기관의 역량을 강화하는 여러 방안을 논의했습니다. " * 8
    write_article("long-korean", "ko", "긴 기사", summary.strip(), ["공공행정"])
    site = make_site(**X_DEFAULT, X_LONG_TEXT="thread")
    for tweet_id in ("3001", "3002", "3003", "3004", "3005"):
        x_http.add(responses.POST, TWEETS, **created(tweet_id))

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, "long-korean"), ["ko"])

    bodies = posted_bodies(x_http)
    assert report.state == "sent" and len(bodies) >= 2
    for index, body in enumerate(bodies, start=1):
        assert body["text"].endswith(f" {index}/{len(bodies)}")
        assert x_weighted_length(body["text"]) <= 280
    assert "reply" not in bodies[0]
    assert [b["reply"]["in_reply_to_tweet_id"] for b in bodies[1:]] == [str(3000 + i) for i in range(1, len(bodies))]
    row = site.ledger().get(DeliveryKey("long-korean", "ko", "x", "default"))
    assert [p["id"] for p in row.detail["parts"]] == [str(3000 + i) for i in range(1, len(bodies) + 1)]


def test_a_thread_resumes_after_its_last_posted_part(make_site, write_article, x_http, fake_clock) -> None:
    summary = "The workshop discussed digital transformation and inclusive governance for climate action. " * 6
    write_article("long-english", "en", "A long story", summary.strip())
    site = make_site(**X_DEFAULT, X_LONG_TEXT="thread")
    x_http.add(responses.POST, TWEETS, **created("4001"))
    x_http.add(responses.POST, TWEETS, json={"title": "Service Unavailable"}, status=503)
    channel = channel_for(site, fake_clock)
    row_key = DeliveryKey("long-english", "en", "x", "default")

    [first] = publish_with(channel, story_of(site, "long-english"), ["en"])
    assert first.state == "unconfirmed"
    row = site.ledger().get(row_key)
    assert row.state == "unconfirmed" and row.detail["parts"] == [{"id": "4001", "url": tweet_url("4001")}]
    total = row.detail["total"]
    assert total >= 3

    # Without --retry-unconfirmed nothing is posted: the 503 may have hidden a success.
    calls_before = len(x_http.calls)
    [second] = publish_with(channel, story_of(site, "long-english"), ["en"])
    assert second.state == "unconfirmed" and len(x_http.calls) == calls_before  # not even a lookup

    # With it, the recent posts are searched first; part 2 is not there, so it is posted as a reply to part 1.
    x_http.replace(responses.POST, TWEETS, **created("4002"))
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"data": [{"id": "4001", "text": "part one", "entities": {}}]})
    for tweet_id in range(4003, 4003 + total):
        x_http.add(responses.POST, TWEETS, **created(str(tweet_id)))
    [third] = publish_with(channel, story_of(site, "long-english"), ["en"], retry_unconfirmed=True)

    assert third.state == "sent"
    bodies = posted_bodies(x_http)[2:]
    assert len(bodies) == total - 1  # part 1 was not posted again
    assert bodies[0]["reply"]["in_reply_to_tweet_id"] == "4001"
    assert bodies[0]["text"].endswith(f" 2/{total}")
    row = site.ledger().get(row_key)
    assert row.state == "sent" and len(row.detail["parts"]) == total and row.remote_id == "4001"


def tweet_url(tweet_id: str) -> str:
    return f"https://x.com/i/web/status/{tweet_id}"


def test_429_waits_until_the_reset_then_posts_once(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    reset = int(NOW) + 30
    x_http.add(responses.POST, TWEETS, json={"title": "Too Many Requests"}, status=429,
             headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"})
    x_http.add(responses.POST, TWEETS, **created("5001"))

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent"
    assert fake_clock.sleeps == [31.0]  # until the reset, plus a second of margin
    assert len(posted_bodies(x_http)) == 2
    assert [c.request.url for c in x_http.calls].count(UPLOAD) == 1  # the image is uploaded once, not per try
    assert site.ledger().get(key()).remote_id == "5001"


def test_429_with_a_reset_beyond_the_bound_stops_without_waiting(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    x_http.add(responses.POST, TWEETS, json={"title": "Too Many Requests"}, status=429,
             headers={"x-rate-limit-reset": str(int(NOW) + 3600)})

    report, stopped = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    assert report.state == "pending" and "rate limited" in report.note
    assert stopped.state == "stopped" and stopped.retry_at is not None
    assert stopped.retry_at.timestamp() == int(NOW) + 3600   # x-rate-limit-reset: when the worker retries
    assert fake_clock.sleeps == []
    assert site.ledger().get(key()).state == "pending"  # nothing was posted, so a later run may post


def test_429_retries_are_bounded(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT, SOCIAL_RATE_LIMIT_RETRIES="2")
    x_http.add(responses.POST, TWEETS, json={"title": "Too Many Requests"}, status=429,
             headers={"x-rate-limit-reset": str(int(NOW) + 5)})

    report, stopped = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    assert report.state == "pending" and stopped.state == "stopped"
    assert len(fake_clock.sleeps) == 2 and len(posted_bodies(x_http)) == 3


@pytest.mark.parametrize("failure", [
    {"json": {"title": "Service Unavailable", "detail": "Service Unavailable"}, "status": 503},
    {"body": requests.exceptions.ReadTimeout("read timed out")},
], ids=["503", "timeout"])
def test_unknown_outcome_is_unconfirmed_and_not_retried_blindly(make_site, x_http, fake_clock, failure) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, **failure)
    channel = channel_for(site, fake_clock)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])

    assert report.state == "unconfirmed" and "--retry-unconfirmed" in report.note
    row = site.ledger().get(key())
    assert row.state == "unconfirmed" and row.last_error
    [again] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert again.state == "unconfirmed"
    assert len(posted_bodies(x_http)) == 1


def test_retry_unconfirmed_finds_the_post_by_its_link_and_does_not_post_again(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, body=requests.exceptions.ReadTimeout("read timed out"))
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    article_url = story_of(site, SLUG).get("en").url
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"data": [
        {"id": "6000", "text": "Something else https://t.co/zzz", "entities": {"urls": [
            {"start": 15, "end": 38, "url": "https://t.co/zzz", "expanded_url": "https://example.org/other"}]}},
        {"id": "6001", "text": "Empowering ... https://t.co/abc", "entities": {"urls": [
            {"start": 15, "end": 38, "url": "https://t.co/abc", "expanded_url": article_url}]}},
    ]})

    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "found among recent posts" in report.note
    assert len(posted_bodies(x_http)) == 1  # only the first, timed-out attempt
    lookup = [c for c in x_http.calls if c.request.url.startswith(USER_TWEETS)][0]
    assert "tweet.fields=entities" in lookup.request.url
    assert lookup.request.headers["Authorization"].startswith("OAuth ")
    row = site.ledger().get(key())
    assert (row.state, row.remote_id) == ("sent", "6001")


def test_retry_unconfirmed_posts_when_the_post_is_absent(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, json={"title": "Bad Gateway"}, status=502)
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"meta": {"result_count": 0}})
    x_http.replace(responses.POST, TWEETS, **created("7001"))

    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "not found" in report.note
    assert len(posted_bodies(x_http)) == 2
    assert site.ledger().get(key()).remote_id == "7001"


def test_x_403_duplicate_content_is_recorded_as_already_posted(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, json=DUPLICATE_BODY, status=403)
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"meta": {"result_count": 0}})
    channel = channel_for(site, fake_clock)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])

    assert report.state == "sent" and "duplicate" in report.note
    assert site.ledger().get(key()).state == "sent"
    publish_with(channel, story_of(site, SLUG), ["en"])
    assert len(posted_bodies(x_http)) == 1


def test_other_403_fails_and_may_be_retried(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, json={"detail": "You are not permitted to perform this action.",
                                           "title": "Forbidden", "status": 403}, status=403)
    [report] = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])
    assert report.state == "failed" and "not permitted" in report.note
    assert "ck-default" not in report.note


def multipart_fields(request: Any) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name -> (filename, content)."""
    content_type = request.headers["Content-Type"]
    if isinstance(content_type, bytes):  # requests-oauthlib leaves the headers of a request it signs as bytes
        content_type = content_type.decode()
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    return {part.get_param("name", header="content-disposition"): (part.get_filename(),
                                                                   part.get_payload(decode=True))
            for part in message.iter_parts()}


def test_an_image_post_goes_through_api_v2_only_with_alt_text_and_oauth1(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    article = story_of(site, SLUG).get("en")
    assert article.image is not None  # the sample's images/unpsf-2024.png
    x_http.add(responses.POST, TWEETS, **created("8001"))

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent"
    upload, metadata, tweet = x_http.calls
    assert [call.request.url for call in x_http.calls] == [UPLOAD, METADATA, TWEETS]
    assert all(call.request.url.startswith(("https://api.x.com/2/", "https://api.twitter.com/2/"))
               for call in x_http.calls)
    for call in (upload, metadata, tweet):  # the same OAuth 1.0a user context signs all three
        auth = call.request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth  # requests-oauthlib gives bytes for multipart
        assert auth.startswith("OAuth ") and 'oauth_consumer_key="ck-default"' in auth
        assert 'oauth_token="at-default"' in auth and "oauth_signature=" in auth
        assert "cs-default" not in auth and "ats-default" not in auth
    fields = multipart_fields(upload.request)
    image = (site.root / "content" / "images" / "unpsf-2024.png").read_bytes()
    assert fields["media"] == ("unpsf-2024.png", image)
    assert fields["media_category"] == (None, b"tweet_image") and fields["media_type"] == (None, b"image/png")
    assert json.loads(metadata.request.body) == {"id": MEDIA_ID, "metadata": {"alt_text": {"text": article.image.alt}}}
    assert json.loads(tweet.request.body)["media"] == {"media_ids": [MEDIA_ID]}
    assert site.ledger().get(key()).remote_id == "8001"


def test_the_retired_v1_upload_would_fail_the_test(http) -> None:
    # The guard the x_http fixture applies: a call to upload.twitter.com or a /1.1/ path is caught.
    http.add(responses.POST, "https://upload.twitter.com/1.1/media/upload.json", json={"media_id": 1})
    requests.post("https://upload.twitter.com/1.1/media/upload.json", timeout=5)
    assert retired_calls(http) == ["https://upload.twitter.com/1.1/media/upload.json"]


@pytest.mark.parametrize(("answer", "state", "note"), [
    ({"json": {"title": "Forbidden", "detail": "Your client app is not configured with the appropriate oauth1 "
               "app permissions for this endpoint.", "status": 403}, "status": 403},
     "failed", "image upload failed: 403 Forbidden - Your client app is not configured"),
    ({"json": {"title": "Service Unavailable"}, "status": 503}, "failed", "image upload failed: 503"),
    ({"body": requests.exceptions.ReadTimeout("read timed out")}, "failed", "image upload failed: ReadTimeout"),
], ids=["403", "503", "timeout"])
def test_a_failed_upload_posts_nothing_and_may_be_tried_again(make_site, x_http, fake_clock, answer, state,
                                                              note) -> None:
    site = make_site(**X_DEFAULT)
    x_http.replace(responses.POST, UPLOAD, **answer)

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    # An upload is not a post: nothing was published, so the row is failed (not unconfirmed) and a later
    # run may post.
    assert (report.state, site.ledger().get(key()).state) == (state, state)
    assert report.note.startswith(note) and "ck-default" not in report.note
    assert tweet_calls(x_http) == []


def test_a_rate_limited_upload_waits_for_the_reset_then_uploads_once(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.replace(responses.POST, UPLOAD, json={"title": "Too Many Requests"}, status=429,
                   headers={"x-rate-limit-reset": str(int(NOW) + 10)})
    x_http.add(responses.POST, UPLOAD, json={"data": {"id": MEDIA_ID, "media_key": f"3_{MEDIA_ID}"}})
    x_http.add(responses.POST, TWEETS, **created("8101"))

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and fake_clock.sleeps == [11.0]
    assert [c.request.url for c in x_http.calls] == [UPLOAD, UPLOAD, METADATA, TWEETS]


def test_an_image_path_leading_out_of_the_site_fails_the_post_and_uploads_nothing(make_site, x_http, fake_clock,
                                                                                 write_article) -> None:
    site = make_site(**X_DEFAULT)
    secret = site.root.parent / "outside.png"
    secret.write_bytes(b"\x89PNG not for the public")
    write_article("escape", "en", "Escape", "Summary.")
    story = story_of(site, "escape")
    # The loader refuses such an image (tests/test_hardening_content.py); the channel must refuse it as well,
    # should the article reach it another way.
    article = story.versions["en"]
    story.versions["en"] = article.with_changes(image=Image("../outside.png", "x"))

    [report] = publish_with(channel_for(site, fake_clock), story, ["en"])

    assert report.state == "failed" and report.note == "image ../outside.png: must stay inside the site folder"
    assert len(x_http.calls) == 0                                # no upload, no post
    row = site.ledger().get(DeliveryKey("escape", "en", "x", "default"))
    assert row.state == "failed"                                 # nothing posted: a fixed article may go later


def test_without_settings_posts_go_to_the_json_outbox(make_site, fake_clock) -> None:
    site = make_site()
    channel = channel_for(site, fake_clock)
    assert not channel.is_configured()
    assert "outbox/x/" in channel.fallback_description()

    reports = publish_with(channel, story_of(site, SLUG), ["en", "ko"])

    assert [r.state for r in reports] == ["sent", "sent"]
    payload = json.loads((site.outbox_dir / "x" / f"{SLUG}.ko.json").read_text(encoding="utf-8"))
    assert payload["url"].endswith("/ko/2024-unpsf-incheon/")
    assert all(post["length"] <= post["limit"] == 280 for post in payload["posts"])
    assert "X_API_KEY" in payload["note"]


def test_render_gives_each_post_its_weighted_length_and_limit(make_site, fake_clock) -> None:
    site = make_site(**X_DEFAULT, **X_KOREAN, X_LONG_TEXT="thread")
    renditions = channel_for(site, fake_clock).render(story_of(site, SLUG), ["en", "ko"])
    assert {r.lang for r in renditions} == {"en", "ko"}
    assert len(renditions) == 2  # one per language and account: a thread's later parts are its extra files
    for rendition in renditions:
        for shown in rendition.files:
            assert shown.meta["length"] == x_weighted_length(shown.content) <= shown.meta["limit"] == 280
            assert re.fullmatch(r"post-\d+\.txt", shown.filename)
    assert {r.target for r in renditions if r.lang == "ko"} == {"ko"}


def test_a_half_configured_account_is_a_one_line_error(make_site, fake_clock) -> None:
    site = make_site(X_KO_API_KEY="only-this")
    with pytest.raises(ConfigError, match=r"^X_KO_API_SECRET: is required because X_KO_API_KEY is set"):
        channel_for(site, fake_clock).account_for("ko")


def test_a_timeout_that_is_not_positive_is_a_config_error_before_anything_is_in_flight(make_site, x_http,
                                                                                       fake_clock) -> None:
    # requests refuses a timeout of 0 or less only inside the send, after the row was begun: it would stay in flight
    site = make_site(**X_DEFAULT, SOCIAL_HTTP_TIMEOUT="-1")
    with pytest.raises(ConfigError, match=r"^SOCIAL_HTTP_TIMEOUT \(from \.env\): expected a number greater than 0"):
        publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])
    assert list(site.ledger().rows(channel="x")) == [] and tweet_calls(x_http) == []


def test_idempotency_keys_are_stable_per_part_and_new_per_forced_repost() -> None:
    row = DeliveryKey(SLUG, "en", "x", "default")
    assert idempotency_key(row, 1) == idempotency_key(row, 1)
    assert len({idempotency_key(row, 1), idempotency_key(row, 2), idempotency_key(row, 1, 1)}) == 3


def test_force_posts_again(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, **created("9001"))
    x_http.add(responses.POST, TWEETS, **created("9002"))
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    [report] = publish_with(channel, story_of(site, SLUG), ["en"], force=True)
    assert report.state == "sent" and len(posted_bodies(x_http)) == 2
    row = site.ledger().get(key())
    assert row.remote_id == "9002" and row.detail["generation"] == 1


def test_retry_unconfirmed_that_cannot_check_posts_nothing(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, json={"title": "Service Unavailable"}, status=503)
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    x_http.add(responses.GET, ME, json={"title": "Service Unavailable"}, status=503)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "unconfirmed" and "could not check" in report.note
    assert len(posted_bodies(x_http)) == 1
    assert site.ledger().get(key()).state == "unconfirmed"


def test_retry_unconfirmed_without_timeline_access_posts_at_the_users_request(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, json={"title": "Service Unavailable"}, status=503)
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, SLUG), ["en"])
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"title": "Forbidden", "detail": "client-not-enrolled",
                                                 "status": 403}, status=403)
    x_http.replace(responses.POST, TWEETS, **created("9101"))

    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "cannot list recent posts" in report.note
    assert len(posted_bodies(x_http)) == 2


def test_retry_unconfirmed_finds_a_thread_part_by_its_text(make_site, write_article, x_http, fake_clock) -> None:
    summary = "The workshop discussed digital transformation and inclusive governance for climate action. " * 6
    write_article("long-english", "en", "A long story", summary.strip())
    site = make_site(**X_DEFAULT, X_LONG_TEXT="thread")
    x_http.add(responses.POST, TWEETS, **created("4101"))
    x_http.add(responses.POST, TWEETS, body=requests.exceptions.ReadTimeout("read timed out"))
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, "long-english"), ["en"])
    bodies = posted_bodies(x_http)
    second_text = bodies[1]["text"]
    total = int(second_text.rsplit("/", 1)[1])
    # The timed-out part 2 did land: X gives its text back (spacing may differ, URLs become t.co links).
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"data": [
        {"id": "4102", "text": "  ".join(second_text.split()), "entities": {}},
        {"id": "4101", "text": bodies[0]["text"], "entities": {}},
    ]})
    x_http.replace(responses.POST, TWEETS, **created("4103"))
    for tweet_id in range(4104, 4104 + total):
        x_http.add(responses.POST, TWEETS, **created(str(tweet_id)))

    [report] = publish_with(channel, story_of(site, "long-english"), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "found among recent posts" in report.note
    resumed = posted_bodies(x_http)[2:]
    assert len(resumed) == total - 2
    assert resumed[0]["reply"]["in_reply_to_tweet_id"] == "4102"
    assert resumed[0]["text"].endswith(f" 3/{total}")


def test_a_row_left_in_flight_by_a_crash_is_treated_as_unconfirmed(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    site.ledger().begin(key())  # the process died after this, during the remote call

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, SLUG), ["en"])

    assert report.state == "unconfirmed"
    assert posted_bodies(x_http) == []


def test_a_run_that_loses_the_race_to_another_run_does_not_post(make_site, x_http, fake_clock) -> None:
    site = make_site(**X_DEFAULT)
    x_http.add(responses.POST, TWEETS, json={"title": "Service Unavailable"}, status=503)
    channel = channel_for(site, fake_clock)
    publish_with(channel, story_of(site, SLUG), ["en"])  # unconfirmed: --retry-unconfirmed looks first
    ledger = site.ledger()

    def other_run_finishes_first(request):  # between our ledger read and our claim, another run posts
        ledger.begin(key())
        ledger.mark(key(), "sent", remote_id="555", remote_url=tweet_url("555"))
        return 200, {}, json.dumps({"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})

    x_http.add_callback(responses.GET, ME, callback=other_run_finishes_first)
    x_http.add(responses.GET, USER_TWEETS, json={"meta": {"result_count": 0}})
    x_http.replace(responses.POST, TWEETS, **created("556"))
    [report] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert report.state == "sent" and "another run" in report.note
    assert len(posted_bodies(x_http)) == 1  # only the first run's; none beside the other run's post
    row = ledger.get(key())
    assert (row.state, row.remote_id) == ("sent", "555")
    assert report.where == tweet_url("555")


def test_a_duplicate_thread_part_that_cannot_be_found_leaves_the_thread_unconfirmed(
        make_site, write_article, x_http, fake_clock) -> None:
    summary = "The workshop discussed digital transformation and inclusive governance for climate action. " * 6
    write_article("long-english", "en", "A long story", summary.strip())
    site = make_site(**X_DEFAULT, X_LONG_TEXT="thread")
    x_http.add(responses.POST, TWEETS, json=DUPLICATE_BODY, status=403)
    x_http.add(responses.GET, ME, json={"data": {"id": "42", "name": "UNPOG", "username": "unpog"}})
    x_http.add(responses.GET, USER_TWEETS, json={"meta": {"result_count": 0}})

    [report] = publish_with(channel_for(site, fake_clock), story_of(site, "long-english"), ["en"])

    # Part 2 would have to reply to part 1, whose id X did not give: stop rather than post a broken thread.
    assert report.state == "unconfirmed" and "duplicate" in report.note
    assert len(posted_bodies(x_http)) == 1


def test_a_thread_is_one_rendition_with_its_later_parts_as_extra_files(make_site, write_article, fake_clock) -> None:
    summary = "The workshop discussed digital transformation and inclusive governance for climate action. " * 6
    write_article("long-english", "en", "A long story", summary.strip())
    site = make_site(**X_DEFAULT, X_LONG_TEXT="thread")

    [rendition] = channel_for(site, fake_clock).render(story_of(site, "long-english"), ["en"])

    files = rendition.files
    assert len(files) >= 3 and [f.filename for f in files] == [f"post-{n}.txt" for n in range(1, len(files) + 1)]
    assert [f.meta["part"] for f in files] == list(range(1, len(files) + 1))
    assert {f.meta["parts"] for f in files} == {len(files)} and {f.meta["account"] for f in files} == {"default"}
    assert (rendition.target, rendition.filename, rendition.content) == ("default", "post-1.txt", files[0].content)


def test_per_language_accounts_follow_the_sites_languages(make_site, fake_clock) -> None:
    from publisher.channels.social import account_settings
    from publisher.channels.x import X_CREDENTIALS

    helps = {setting.name: setting.help for setting in XChannel.settings}
    assert "for the Korean X account (posts in Korean)" in helps["X_KO_API_KEY"]
    assert "for the English X account" in helps["X_EN_API_KEY"] and "X_API_KEY" in helps
    [japanese] = [s for s in account_settings("X", X_CREDENTIALS, "X", ["ja"]) if s.name == "X_JA_API_KEY"]
    assert "for the Japanese X account" in japanese.help and japanese.secret
    # A site that publishes in English only has no Korean account: a Korean post would use the default one.
    site = make_site(**X_DEFAULT, **X_KOREAN, PUBLISHER_LANGUAGES="en")
    channel = channel_for(site, fake_clock)
    assert channel.account_for("ko").label == "default"
    assert [account.label for account in channel.accounts()] == ["default"]
