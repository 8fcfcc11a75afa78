"""Threads through its Graph API over the real requests, answered by a Threads server in memory under ``responses``."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from publisher.channels.threads import ThreadsChannel
from publisher.delivery import DeliveryKey
from publisher.errors import ConfigError
from publisher.formatters.social import THREADS_LIMIT, threads_length
from tests.social.conftest import FakeClock, publish_with, story_of

SLUG = "2024-unpsf-incheon"
BASE = "https://graph.threads.net/v1.0"
ENGLISH = {"THREADS_EN_USER_ID": "1111", "THREADS_EN_ACCESS_TOKEN": "token-en-secret"}
KOREAN = {"THREADS_KO_USER_ID": "2222", "THREADS_KO_ACCESS_TOKEN": "token-ko-secret"}
DEFAULT = {"THREADS_USER_ID": "3333", "THREADS_ACCESS_TOKEN": "token-default-secret"}
LONG_SUMMARY = " ".join(f"Sentence {n} of a long summary about the forum in Incheon." for n in range(1, 25))


class FakeThreads:
    """The Threads API in memory: containers, publishing, the limit endpoint and the account's lists."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.tokens = {"token-en-secret": "1111", "token-ko-secret": "2222", "token-default-secret": "3333"}
        self.containers: dict[str, dict[str, str]] = {}
        self.published: list[dict[str, Any]] = []  # every post made, in order: its id, user, form
        self.listed: dict[str, list[dict[str, Any]]] = {"threads": [], "replies": []}
        self.quota = {"quota_usage": 0, "config": {"quota_total": 250, "quota_duration": 86400},
                      "reply_quota_usage": 0, "reply_config": {"quota_total": 1000, "quota_duration": 86400}}
        self.container_status = "FINISHED"
        self.statuses: list[str] = []  # status answers to give first, one per check
        self.publish_fails_at: dict[int, Any] = {}  # the n-th publish call (from 1) -> its failure
        self.publish_calls = 0
        self.failures: dict[str, list[Any]] = {}  # "create" / "publish" / "limit" -> answers or exceptions first
        self.store_then_fail = False  # a failing publish made the post anyway
        self.requests: list[requests.PreparedRequest] = []
        self._next = 100
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, re.compile(re.escape(BASE) + r"/.*"), callback=self.handle)

    def handle(self, request: requests.PreparedRequest) -> Any:
        self.requests.append(request)
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        if user is None:
            return _error(401, 190, "Invalid OAuth access token.")
        path = urlsplit(request.url).path.removeprefix("/v1.0/")
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        form = {k: v[0] for k, v in parse_qs(request.body or "").items()} if request.method == "POST" else {}
        if path == f"{user}/threads_publishing_limit":
            failure = self._failure("limit")
            if failure is not None:
                return failure
            fields = query["fields"].split(",")
            return 200, {}, json.dumps({"data": [{k: v for k, v in self.quota.items() if k in fields}]})
        if request.method == "POST" and path == f"{user}/threads":
            failure = self._failure("create")
            if failure is not None:
                return failure
            container = self._id()
            self.containers[container] = {**form, "user": user}
            return 200, {}, json.dumps({"id": container})
        if request.method == "POST" and path == f"{user}/threads_publish":
            container = self.containers[form["creation_id"]]
            self.publish_calls += 1
            failure = self.publish_fails_at.pop(self.publish_calls, None) or self._failure("publish", play=False)
            if failure is not None and not self.store_then_fail:
                return _play(failure)
            media = self._id()
            post = {"id": media, "user": user, **container,
                    "permalink": f"https://www.threads.net/@unpog/post/{media}"}
            self.published.append(post)
            self.listed["replies" if "reply_to_id" in container else "threads"].insert(
                0, {"id": media, "text": container.get("text", ""), "permalink": post["permalink"]})
            return _play(failure) if failure is not None else (200, {}, json.dumps({"id": media}))
        if path in ("me/threads", "me/replies"):
            return 200, {}, json.dumps({"data": self.listed[path.removeprefix("me/")], "paging": {}})
        if path in self.containers:
            status = self.statuses.pop(0) if self.statuses else self.container_status
            return 200, {}, json.dumps({"id": path, "status": status,
                                        **({"error_message": "FAILED_DOWNLOADING_IMAGE"}
                                           if status == "ERROR" else {})})
        post = next((p for p in self.published if p["id"] == path), None)
        if post is not None:
            return 200, {}, json.dumps({"id": path, "permalink": post["permalink"]})
        return _error(400, 100, f"Unsupported request: {request.method} {path}")

    def calls(self, method: str, suffix: str) -> list[requests.PreparedRequest]:
        return [r for r in self.requests if r.method == method and urlsplit(r.url).path.endswith(suffix)]

    def _failure(self, step: str, *, play: bool = True) -> Any:
        pending = self.failures.get(step) or []
        if not pending:
            return None
        failure = pending.pop(0)
        return _play(failure) if play else failure

    def _id(self) -> str:
        self._next += 1
        return f"17{self._next:012d}"


def _play(failure: Any) -> Any:
    """A canned answer as ``responses`` takes it, or the network error it stands for, raised."""
    if isinstance(failure, BaseException):
        raise failure
    return failure


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, str], str]:
    return status, {}, json.dumps({"error": {"message": message, "type": "OAuthException", "code": code,
                                             "fbtrace_id": "AbC"}})


@pytest.fixture
def threads(http: responses.RequestsMock) -> FakeThreads:
    return FakeThreads(http)


def channel_for(site: Any, clock: FakeClock | None = None) -> ThreadsChannel:
    channel = ThreadsChannel(site)
    clock = clock or FakeClock()
    channel.clock, channel.sleep = clock.clock, clock.sleep
    return channel


def key(lang: str = "en", account: str | None = None) -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "threads", account or lang)


def long_article(write_article: Any, lang: str = "en") -> None:
    write_article(SLUG, lang, "A long article", LONG_SUMMARY, tags=["UNPOG", "Incheon"],
                  extra="image:\n  src: images/unpsf-2024.png\n  alt: Participants of the forum\n")


def test_each_language_posts_an_image_container_then_publishes_it_on_its_own_account(make_site, threads) -> None:
    site = make_site(**ENGLISH, **KOREAN)
    story = story_of(site, SLUG)

    reports = publish_with(channel_for(site), story, ["en", "ko"])

    assert [(r.lang, r.state) for r in reports] == [("en", "sent"), ("ko", "sent")]
    english, korean = threads.published
    assert (english["user"], korean["user"]) == ("1111", "2222")
    for post, lang in ((english, "en"), (korean, "ko")):
        article = story.get(lang)
        assert post["media_type"] == "IMAGE"
        assert post["image_url"] == site.media_url("images/unpsf-2024.png")  # Threads fetches it from the site
        assert post["alt_text"] == article.image.alt
        assert post["text"].startswith(article.title) and article.url in post["text"]
        assert threads_length(post["text"]) <= THREADS_LIMIT and "reply_to_id" not in post
    # the limit is read before each post, and the token travels only in the header
    assert len(threads.calls("GET", "/threads_publishing_limit")) == 2
    assert all("secret" not in r.url and "secret" not in (r.body or "") for r in threads.requests)
    row = site.ledger().get(key("ko"))
    assert (row.state, row.remote_id, row.remote_url) == ("sent", korean["id"], korean["permalink"])

    again = publish_with(channel_for(site), story_of(site, SLUG), ["en", "ko"])
    assert [r.state for r in again] == ["sent", "sent"] and len(threads.published) == 2


def test_a_long_article_becomes_a_reply_chain_with_the_image_on_the_first_part(make_site, write_article,
                                                                              threads) -> None:
    long_article(write_article)
    site = make_site(**DEFAULT)

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "sent"
    first, *replies = threads.published
    assert replies, "a summary over 500 characters must become a thread"
    assert first["media_type"] == "IMAGE" and all(p["media_type"] == "TEXT" for p in replies)
    assert [p["reply_to_id"] for p in replies] == [p["id"] for p in threads.published[:-1]]
    assert all(threads_length(p["text"]) <= THREADS_LIMIT for p in threads.published)
    assert threads.published[-1]["text"].endswith(f"{len(threads.published)}/{len(threads.published)}")
    assert "reply_quota_usage" in threads.calls("GET", "/threads_publishing_limit")[0].url
    row = site.ledger().get(key("en", "default"))
    assert [p["id"] for p in row.detail["parts"]] == [p["id"] for p in threads.published]


def test_an_exhausted_quota_defers_the_post_and_halts_the_run(make_site, threads) -> None:
    site = make_site(**DEFAULT)
    threads.quota["quota_usage"] = 250

    reports = publish_with(channel_for(site), story_of(site, SLUG), ["en", "ko"])

    assert not threads.calls("POST", "/threads") and not threads.published
    assert reports[0].state == "pending" and "250 of 250 posts" in reports[0].note
    stopped = reports[-1]
    assert stopped.state == "stopped" and "left pending" in stopped.note
    assert site.ledger().get(key("en", "default")).state == "pending"
    assert site.ledger().get(key("ko", "default")) is None or site.ledger().get(key("ko", "default")).state == "pending"

    threads.quota["quota_usage"] = 12  # a day later
    later = publish_with(channel_for(site), story_of(site, SLUG), ["en", "ko"])
    assert [r.state for r in later] == ["sent", "sent"] and len(threads.published) == 2


def test_a_thread_waits_when_the_reply_quota_cannot_hold_its_replies(make_site, write_article, threads) -> None:
    long_article(write_article)
    site = make_site(**DEFAULT)
    threads.quota["reply_quota_usage"] = 999

    [report, stopped] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "pending" and "of 1000 replies" in report.note and stopped.state == "stopped"
    assert not threads.published


@pytest.mark.parametrize("failure", [
    _error(500, 2, "An unexpected error has occurred. Please retry your request later."),
    requests.exceptions.ReadTimeout("read timed out"),
], ids=["500", "timeout"])
def test_an_unknown_publish_is_unconfirmed_and_a_retry_finds_it_among_recent_threads(make_site, threads,
                                                                                     failure) -> None:
    site = make_site(**ENGLISH)
    threads.failures["publish"] = [failure]
    threads.store_then_fail = True  # Threads made the post before failing to say so
    channel = channel_for(site)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed" and len(threads.published) == 1
    [blind] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert blind.state == "unconfirmed" and len(threads.calls("POST", "/threads_publish")) == 1

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and "found among recent posts" in retried.note
    assert len(threads.published) == 1 and len(threads.calls("POST", "/threads_publish")) == 1
    [listing] = threads.calls("GET", "/me/threads")
    assert parse_qs(urlsplit(listing.url).query)["fields"] == ["id,text,permalink"]
    row = site.ledger().get(key())
    assert (row.state, row.remote_id) == ("sent", threads.published[0]["id"])


def test_a_retry_posts_when_recent_threads_do_not_have_it(make_site, threads) -> None:
    site = make_site(**ENGLISH)
    threads.failures["publish"] = [_error(503, 2, "Service temporarily unavailable")]

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed" and not threads.published
    [retried] = publish_with(channel_for(site), story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and len(threads.published) == 1


def test_a_thread_that_failed_at_a_reply_resumes_after_looking_among_the_replies(make_site, write_article,
                                                                                 threads) -> None:
    long_article(write_article)
    site = make_site(**DEFAULT)
    threads.publish_fails_at[2] = requests.exceptions.ReadTimeout("read timed out")  # the first reply
    channel = channel_for(site)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed" and len(threads.published) == 1
    assert len(site.ledger().get(key("en", "default")).detail["parts"]) == 1

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent"
    assert threads.calls("GET", "/me/replies") and not threads.calls("GET", "/me/threads")
    first, *replies = threads.published
    assert replies and replies[0]["reply_to_id"] == first["id"]
    assert threads.publish_calls == len(threads.published) + 1  # the timed-out reply, then the rest


def test_a_container_that_fails_to_prepare_is_failed_and_nothing_is_published(make_site, threads) -> None:
    site = make_site(**ENGLISH)
    threads.container_status = "ERROR"

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "FAILED_DOWNLOADING_IMAGE" in report.note
    assert not threads.calls("POST", "/threads_publish")
    assert site.ledger().get(key()).state == "failed"


def test_a_container_still_in_progress_is_checked_again_with_the_channel_clock(make_site, threads) -> None:
    site = make_site(**ENGLISH)
    clock = FakeClock()
    threads.statuses = ["IN_PROGRESS", "IN_PROGRESS"]

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and clock.sleeps == [3.0, 3.0] and len(threads.published) == 1


def test_throttling_waits_for_retry_after_then_posts(make_site, threads) -> None:
    site = make_site(**ENGLISH)
    clock = FakeClock()
    threads.failures["create"] = [(429, {"Retry-After": "20"}, json.dumps({"error": {"message": "Too many calls",
                                                                                     "code": 4}}))]

    [report] = publish_with(channel_for(site, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and clock.sleeps == [21.0] and len(threads.published) == 1


def test_a_refused_token_fails_with_the_reason_and_no_secret(make_site, threads) -> None:
    site = make_site(THREADS_EN_USER_ID="1111", THREADS_EN_ACCESS_TOKEN="expired-secret")

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "Invalid OAuth access token" in report.note
    assert "secret" not in report.note and not threads.published


def test_without_settings_each_language_goes_to_the_outbox(make_site, threads) -> None:
    site = make_site()
    channel = channel_for(site)
    assert not channel.is_configured()

    reports = publish_with(channel, story_of(site, SLUG), ["en", "ko"])

    assert [(r.state, r.where) for r in reports] == [("sent", "outbox/threads/2024-unpsf-incheon.en.json"),
                                                     ("sent", "outbox/threads/2024-unpsf-incheon.ko.json")]
    written = json.loads((site.outbox_dir / "threads" / f"{SLUG}.ko.json").read_text(encoding="utf-8"))
    assert written["posts"][0]["limit"] == THREADS_LIMIT
    assert written["requests"][0]["data"]["media_type"] == "IMAGE"
    assert "THREADS_USER_ID" in written["note"] and not threads.requests


def test_a_user_id_that_is_not_a_number_is_a_one_line_config_error(make_site) -> None:
    site = make_site(THREADS_USER_ID="@unpog", THREADS_ACCESS_TOKEN="t")
    with pytest.raises(ConfigError, match="THREADS_USER_ID"):
        ThreadsChannel(site).render(story_of(site, SLUG), ["en"])


def test_threads_counts_an_emoji_as_its_utf8_bytes() -> None:
    assert threads_length("공공행정") == 4
    assert threads_length("👍") == 4 and threads_length("🇰🇷") == 8


def test_a_remote_image_is_given_to_threads_by_its_own_url_not_downloaded(make_site, write_article,
                                                                          threads) -> None:
    write_article(SLUG, "en", "Remote image", "A short summary.",
                  extra="image:\n  src: https://cdn.example.org/forum.png\n  alt: The forum\n")
    site = make_site(**ENGLISH)

    [report] = publish_with(channel_for(site), story_of(site, SLUG), ["en"])

    [post] = threads.published
    assert report.state == "sent" and post["image_url"] == "https://cdn.example.org/forum.png"
    assert not (site.state_dir / "media").exists()  # Threads fetches it; nothing here does
