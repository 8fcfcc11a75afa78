"""Bluesky through the real atproto client, with its HTTP answered by a PDS in memory under httpx."""

from __future__ import annotations

import base64
import io
import json
import random
import time
from typing import Any

import httpx
import pytest

from publisher.channels.bluesky import BlueskyChannel, record_key, shrink_thumbnail
from publisher.formatters.social import grapheme_length
from publisher.delivery import DeliveryKey
from tests.social.conftest import FakeClock, publish_with, story_of

SLUG = "2024-unpsf-incheon"
DID = "did:plc:unpogtest"
DEFAULT_ACCOUNT = {"BLUESKY_HANDLE": "unpog.bsky.social", "BLUESKY_APP_PASSWORD": "app-password"}
KOREAN_ACCOUNT = {"BLUESKY_KO_HANDLE": "unpog-ko.bsky.social", "BLUESKY_KO_APP_PASSWORD": "app-password"}
BLOB_CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
RECORD_CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
CREATE = "com.atproto.repo.createRecord"

# atproto uploads blobs with httpx's data=<bytes>, which httpx 0.28 warns about: the SDK's habit, not ours
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")


def _jwt(seconds: int) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"exp": int(time.time()) + seconds, "sub": DID, "scope": "com.atproto.access"}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class FakePDS:
    """A Bluesky PDS in memory behind ``httpx.MockTransport``: atproto's real client talks to it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.records: dict[str, dict[str, Any]] = {}  # record key -> the post record
        self.failures: dict[str, list[Any]] = {}  # XRPC method -> responses or exceptions to play first
        self.store_then_fail = False  # a failing createRecord stored the post first (the unknown outcome)
        self.feed_lags = False  # getAuthorFeed does not list the posts yet (the app view is behind)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def calls(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == f"/xrpc/{method}"]

    def created(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.calls(CREATE)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method = request.url.path.rsplit("/", 1)[-1]
        if self.failures.get(method):
            failure = self.failures[method].pop(0)
            if method == CREATE and self.store_then_fail:
                body = json.loads(request.content)
                self.records[body["rkey"]] = body["record"]
            if isinstance(failure, Exception):
                raise failure
            return failure
        if method == "com.atproto.server.createSession":
            login = json.loads(request.content)
            if login["password"] != "app-password":
                return httpx.Response(401, json={"error": "AuthenticationRequired",
                                                 "message": "Invalid identifier or password"})
            return httpx.Response(200, json={"accessJwt": _jwt(3600), "refreshJwt": _jwt(86400), "did": DID,
                                             "handle": login["identifier"]})
        assert request.headers["authorization"].startswith("Bearer "), f"{method} without a session"
        if method == "com.atproto.repo.uploadBlob":
            return httpx.Response(200, json={"blob": {"$type": "blob", "ref": {"$link": BLOB_CID},
                                                      "mimeType": "image/jpeg", "size": len(request.content)}})
        if method == CREATE:
            body = json.loads(request.content)
            if body["rkey"] in self.records:
                return httpx.Response(400, json={"error": "InvalidRequest", "message": "Record already exists"})
            self.records[body["rkey"]] = body["record"]
            return httpx.Response(200, json={"uri": self.uri(body["rkey"]), "cid": RECORD_CID})
        if method == "com.atproto.repo.getRecord":
            rkey = request.url.params["rkey"]
            if rkey not in self.records:
                return httpx.Response(400, json={"error": "RecordNotFound", "message": "Could not locate record"})
            return httpx.Response(200, json={"uri": self.uri(rkey), "cid": RECORD_CID, "value": self.records[rkey]})
        if method == "app.bsky.feed.getAuthorFeed":
            items = [] if self.feed_lags else [self.feed_item(k, v) for k, v in reversed(self.records.items())]
            return httpx.Response(200, json={"feed": items})
        return httpx.Response(501, json={"error": "MethodNotImplemented", "message": method})

    @staticmethod
    def uri(rkey: str) -> str:
        return f"at://{DID}/app.bsky.feed.post/{rkey}"

    def feed_item(self, rkey: str, record: dict[str, Any]) -> dict[str, Any]:
        return {"post": {"uri": self.uri(rkey), "cid": RECORD_CID, "author": {"did": DID, "handle": "unpog"},
                         "record": record, "indexedAt": record["createdAt"]}}


@pytest.fixture
def pds() -> FakePDS:
    return FakePDS()


def channel_for(site: Any, pds: FakePDS, clock: FakeClock | None = None) -> BlueskyChannel:
    channel = BlueskyChannel(site)
    channel.transport = pds.transport
    clock = clock or FakeClock()
    channel.clock, channel.sleep = clock.clock, clock.sleep
    return channel


def key(lang: str = "en", account: str = "default") -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "bluesky", account)


def facet_slices(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, value, the text between the facet's byte offsets) for every facet of a record."""
    encoded = record["text"].encode("utf-8")
    found = []
    for facet in record["facets"]:
        [feature] = facet["features"]
        piece = encoded[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode("utf-8")
        kind = feature["$type"].rsplit("#", 1)[-1]
        found.append((kind, feature.get("uri") or feature.get("tag"), piece))
    return found


def test_korean_post_has_byte_offset_facets_langs_ko_and_a_link_card(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    article = story_of(site, SLUG).get("ko")

    [report] = publish_with(channel_for(site, pds), story_of(site, SLUG), ["ko"])

    [created] = pds.created()
    record = created["record"]
    assert created["repo"] == DID and created["collection"] == "app.bsky.feed.post"
    assert record["langs"] == ["ko"]  # atproto alone would have said "en"
    assert record["text"].startswith(article.title) and article.url in record["text"]
    # Korean text comes before the link: each Hangul syllable is 3 bytes, so character offsets would be wrong
    prefix = record["text"][:record["text"].index(article.url)]
    link = record["facets"][0]
    assert link["index"]["byteStart"] == len(prefix.encode("utf-8")) > len(prefix)
    assert facet_slices(record) == [
        ("link", article.url, article.url),
        ("tag", "유엔공공행정포럼", "#유엔공공행정포럼"),
        ("tag", "공공서비스", "#공공서비스"),
        ("tag", "기후행동", "#기후행동"),
        ("tag", "디지털정부", "#디지털정부"),
    ]
    card = record["embed"]
    assert card["$type"] == "app.bsky.embed.external"
    assert card["external"]["uri"] == article.url and card["external"]["title"] == article.title
    assert card["external"]["description"].startswith("100개국에서 2,000명이 넘는")
    assert card["external"]["thumb"]["ref"]["$link"] == BLOB_CID
    [upload] = pds.calls("com.atproto.repo.uploadBlob")
    assert upload.content == (site.root / "content" / "images" / "unpsf-2024.png").read_bytes()
    [login] = pds.calls("com.atproto.server.createSession")
    assert json.loads(login.content) == {"identifier": "unpog.bsky.social", "password": "app-password"}

    row = site.ledger().get(key("ko"))
    assert row.state == "sent" and row.remote_id == FakePDS.uri(created["rkey"])
    assert row.remote_url == report.where == f"https://bsky.app/profile/unpog.bsky.social/post/{created['rkey']}"
    assert "app-password" not in json.dumps(row.as_dict())


def test_english_post_fits_300_graphemes_and_is_sent_once(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    channel = channel_for(site, pds)
    article = story_of(site, SLUG).get("en")

    publish_with(channel, story_of(site, SLUG), ["en"])
    again = publish_with(channel, story_of(site, SLUG), ["en"])

    [created] = pds.created()
    text = created["record"]["text"]
    assert created["record"]["langs"] == ["en"]
    assert grapheme_length(text) <= 300 and article.url in text
    assert "…" in text  # the summary was shortened at a word, the URL kept whole
    assert ("link", article.url, article.url) in facet_slices(created["record"])
    assert again[0].state == "sent" and again[0].note == "already posted"


def test_long_korean_summary_with_emoji_is_shortened_within_300_graphemes(make_site, write_article, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    summary = " ".join(["인천에서 열린 공공행정 포럼 🇰🇷 소식을 전합니다."] * 30)
    write_article("long-korean", "ko", "아주 긴 한국어 요약 👨‍👩‍👧", summary, tags=["공공 행정", "UNPOG"])

    publish_with(channel_for(site, pds), story_of(site, "long-korean"), ["ko"])

    record = pds.created()[0]["record"]
    assert grapheme_length(record["text"]) <= 300
    kinds = [kind for kind, _, _ in facet_slices(record)]
    # the hashtags are dropped before the summary is cut (issue 15), which then ends with a whole sentence
    assert kinds == ["link"]
    assert "…" not in record["text"] and "소식을 전합니다." in record["text"]
    for kind, value, piece in facet_slices(record):
        assert piece == (value if kind == "link" else f"#{value}")


def test_korean_post_goes_to_the_korean_account(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT, **KOREAN_ACCOUNT)

    publish_with(channel_for(site, pds), story_of(site, SLUG), ["en", "ko"])

    logins = [json.loads(r.content)["identifier"] for r in pds.calls("com.atproto.server.createSession")]
    assert logins == ["unpog.bsky.social", "unpog-ko.bsky.social"]
    assert [c["record"]["langs"] for c in pds.created()] == [["en"], ["ko"]]
    assert site.ledger().get(key("ko", "ko")).remote_url.startswith("https://bsky.app/profile/unpog-ko.bsky.social/")
    assert site.ledger().get(key("ko", "default")) is None


def _noise_png(side: int) -> bytes:
    from PIL import Image

    noise = random.Random(6).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_thumbnail_over_1_mb_is_shrunk_below_the_limit(make_site, write_article, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    big = _noise_png(1200)
    assert len(big) > 1_000_000
    (site.root / "content" / "images" / "big.png").write_bytes(big)
    write_article("big-image", "en", "A big picture", "Summary.", extra="image:\n  src: images/big.png\n  alt: Noise\n")

    publish_with(channel_for(site, pds), story_of(site, "big-image"), ["en"])

    [upload] = pds.calls("com.atproto.repo.uploadBlob")
    assert len(upload.content) <= 1_000_000 and upload.content[:2] == b"\xff\xd8"  # a JPEG now
    assert pds.created()[0]["record"]["embed"]["external"]["thumb"]["size"] == len(upload.content)


def test_an_image_that_cannot_be_shrunk_is_dropped_not_the_post(make_site, write_article, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    (site.root / "content" / "images" / "broken.png").write_bytes(b"not an image" * 100_000)
    write_article("broken-image", "en", "Broken picture", "Summary.",
                  extra="image:\n  src: images/broken.png\n  alt: Nothing\n")

    [report] = publish_with(channel_for(site, pds), story_of(site, "broken-image"), ["en"])

    assert report.state == "sent" and pds.calls("com.atproto.repo.uploadBlob") == []
    assert "thumb" not in pds.created()[0]["record"]["embed"]["external"]
    assert shrink_thumbnail(b"x" * 2_000_000) is None
    assert shrink_thumbnail(b"small") == b"small"


def test_429_waits_for_the_reset_then_posts(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    clock = FakeClock()
    pds.failures[CREATE] = [httpx.Response(429, json={"error": "RateLimitExceeded", "message": "slow down"},
                                           headers={"ratelimit-reset": str(int(clock.now) + 30),
                                                    "ratelimit-remaining": "0"})]

    [report] = publish_with(channel_for(site, pds, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and clock.sleeps == [31.0]
    first, second = pds.created()
    assert first["rkey"] == second["rkey"]  # the same post, retried under the same record key
    assert len(pds.records) == 1


def test_429_beyond_the_bound_stops_the_run_until_the_reset(make_site, pds) -> None:
    from datetime import datetime, timezone

    site = make_site(**DEFAULT_ACCOUNT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    clock = FakeClock()
    pds.failures[CREATE] = [httpx.Response(429, json={"error": "RateLimitExceeded", "message": "daily limit"},
                                           headers={"ratelimit-reset": str(int(clock.now) + 3600)})]

    report, stopped = publish_with(channel_for(site, pds, clock), story_of(site, SLUG), ["en"])

    assert report.state == "pending" and "429" in report.note and clock.sleeps == []
    assert stopped.state == "stopped"   # the worker's retry job is due at the reset Bluesky gave
    assert stopped.retry_at == datetime.fromtimestamp(int(clock.now) + 3600, timezone.utc)
    assert site.ledger().get(key()).state == "pending" and pds.records == {}


@pytest.mark.parametrize("failure", [
    httpx.Response(502, text="Bad Gateway"),
    httpx.Response(500, json={"error": "InternalServerError", "message": "Internal Server Error"}),
    httpx.ReadTimeout("read timed out"),
], ids=["502", "500", "timeout"])
def test_unknown_outcome_is_unconfirmed_and_retry_finds_the_post_in_the_author_feed(make_site, pds, failure) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    pds.failures[CREATE] = [failure]
    pds.store_then_fail = True
    channel = channel_for(site, pds)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed" and "--retry-unconfirmed" in report.note
    [blind] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert blind.state == "unconfirmed" and len(pds.calls(CREATE)) == 1

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "found among recent posts" in retried.note
    assert len(pds.calls(CREATE)) == 1 and len(pds.records) == 1
    [feed] = pds.calls("app.bsky.feed.getAuthorFeed")
    assert feed.url.params["actor"] == DID
    [rkey] = pds.records
    assert site.ledger().get(key()).remote_id == FakePDS.uri(rkey)


def test_retry_finds_a_stored_post_by_its_record_key_while_the_feed_lags(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    pds.failures[CREATE] = [httpx.ReadTimeout("read timed out")]
    pds.store_then_fail = True
    pds.feed_lags = True
    channel = channel_for(site, pds)
    publish_with(channel, story_of(site, SLUG), ["en"])

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent"
    assert len(pds.calls(CREATE)) == 1 and len(pds.records) == 1  # getRecord found it: no second post
    [lookup] = pds.calls("com.atproto.repo.getRecord")
    assert lookup.url.params["rkey"] == pds.created()[0]["rkey"]


def test_retry_posts_once_under_the_same_record_key_when_the_first_never_landed(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    pds.failures[CREATE] = [httpx.ReadTimeout("read timed out")]  # nothing stored
    channel = channel_for(site, pds)
    publish_with(channel, story_of(site, SLUG), ["en"])

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "not found among recent posts" in retried.note
    first, second = pds.created()
    assert first["rkey"] == second["rkey"] and len(pds.records) == 1


def test_a_second_create_under_an_existing_key_is_taken_as_the_post(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    channel = channel_for(site, pds)
    article = story_of(site, SLUG).get("en")
    publish_with(channel, story_of(site, SLUG), ["en"])
    [rkey] = pds.records
    # the ledger lost the outcome (a crash right after the post): the row is failed, the record exists
    site.ledger().mark(key(), "failed", error="crash")

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])

    assert report.state == "sent" and len(pds.records) == 1
    assert site.ledger().get(key()).remote_id == FakePDS.uri(rkey)
    assert article.url in pds.records[rkey]["text"]


def test_force_posts_again_under_a_new_record_key(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    channel = channel_for(site, pds)
    publish_with(channel, story_of(site, SLUG), ["en"])
    [report] = publish_with(channel, story_of(site, SLUG), ["en"], force=True)
    assert report.state == "sent" and len(pds.records) == 2


def test_refused_connection_is_failed_and_a_later_run_posts(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    pds.failures["com.atproto.server.createSession"] = [httpx.ConnectError("connection refused")]
    channel = channel_for(site, pds)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "failed" and "no connection" in report.note
    [later] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert later.state == "sent" and len(pds.records) == 1


def test_wrong_app_password_fails_with_a_message_and_no_post(make_site, pds) -> None:
    site = make_site(BLUESKY_HANDLE="unpog.bsky.social", BLUESKY_APP_PASSWORD="wrong-secret")

    [report] = publish_with(channel_for(site, pds), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "log in to Bluesky" in report.note and "401" in report.note
    assert "wrong-secret" not in report.note and pds.calls(CREATE) == []


def test_upload_timeout_is_failed_not_unconfirmed(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    pds.failures["com.atproto.repo.uploadBlob"] = [httpx.ReadTimeout("read timed out")]

    [report] = publish_with(channel_for(site, pds), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and pds.calls(CREATE) == []


def test_without_settings_the_record_goes_to_the_outbox(make_site) -> None:
    site = make_site()
    channel = BlueskyChannel(site)
    article = story_of(site, SLUG).get("ko")

    [report] = publish_with(channel, story_of(site, SLUG), ["ko"])

    assert report.state == "sent" and report.where == "outbox/bluesky/2024-unpsf-incheon.ko.json"
    payload = json.loads((site.root / report.where).read_text(encoding="utf-8"))
    [record] = payload["records"]
    assert record["langs"] == ["ko"] and record["embed"]["external"]["uri"] == article.url
    assert facet_slices(record)[0] == ("link", article.url, article.url)


def test_preview_shows_graphemes_against_300(make_site) -> None:
    site = make_site()
    [rendition] = BlueskyChannel(site).render(story_of(site, SLUG), ["ko"])
    assert rendition.meta["limit"] == 300
    assert rendition.meta["length"] == grapheme_length(rendition.content) <= 300


def test_record_keys_are_valid_tids_stable_per_row() -> None:
    from datetime import datetime, timezone

    from atproto_client.models.string_formats import TID_RE

    first = datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=timezone.utc)
    one = record_key(first, "a" * 32)
    assert one == record_key(first, "a" * 32) != record_key(first, "b" * 32)
    assert len(one) == 13 and one[0] in "234567abcdefghij"
    assert TID_RE.match(one)  # atproto's own pattern for a record key
    assert record_key(first, "a" * 32) < record_key(first.replace(second=4), "a" * 32)  # sortable by time


def test_command_line_publish_unknown_outcome_status_and_retry(cli, site_dir, pds, monkeypatch) -> None:
    (site_dir / ".env").write_text("".join(f"{k}={v}\n" for k, v in DEFAULT_ACCOUNT.items()), encoding="utf-8")
    monkeypatch.setattr(BlueskyChannel, "transport", pds.transport)  # below atproto, as in every test here
    korean = str(site_dir / "content" / f"{SLUG}.ko.md")
    pds.failures[CREATE] = [httpx.ReadTimeout("read timed out")]
    pds.store_then_fail = True

    first = cli("publish", korean, "--channel", "bluesky", "--lang", "ko", env={"COLUMNS": "200"})
    assert first.exit_code == 1 and "unconfirmed" in first.output
    status = cli("status", env={"COLUMNS": "200"})
    assert "bluesky" in status.output and "unconfirmed" in status.output

    retried = cli("publish", korean, "--channel", "bluesky", "--lang", "ko", "--retry-unconfirmed",
                  env={"COLUMNS": "200"})

    assert retried.exit_code == 0, retried.output
    [rkey] = pds.records
    assert f"bsky.app/profile/unpog.bsky.social/post/{rkey}" in retried.output
    assert len(pds.calls(CREATE)) == 1


def test_a_refused_record_is_failed_with_the_pds_reason(make_site, pds) -> None:
    site = make_site(**DEFAULT_ACCOUNT)
    pds.failures[CREATE] = [httpx.Response(400, json={"error": "InvalidRecord",
                                                      "message": "Invalid app.bsky.feed.post record"})]

    [report] = publish_with(channel_for(site, pds), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "InvalidRecord: Invalid app.bsky.feed.post record" in report.note
    assert pds.records == {} and len(pds.calls("com.atproto.repo.getRecord")) == 1  # checked: not ours either
