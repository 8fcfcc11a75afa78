"""Deferred retries keyed on the platform's time: a 429's reset time (X's ``x-rate-limit-reset``, Mastodon's
``X-RateLimit-Reset``, Bluesky's ``ratelimit-reset``, ``Retry-After``) becomes the retry job's due time, through
the real client libraries with HTTP intercepted under them (``responses``, httpx MockTransport) and a fake clock;
and a hand-typed ``publish`` a channel stops leaves a retry job for the worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import responses
from click.testing import Result

from publisher import pipeline
from publisher.channels.bluesky import BlueskyChannel
from publisher.channels.mastodon import MastodonChannel
from publisher.channels.x import XChannel
from publisher.delivery import DeliveryKey, Outcome
from publisher.scheduler import RetryPolicy, schedule_publish
from publisher.site import Site
from publisher.worker import JobRun, Worker
from tests.social.conftest import MASTODON_BASE, MASTODON_DEFAULT, NOW, X_DEFAULT, http, make_site  # noqa: F401
from tests.social.test_bluesky import CREATE, DEFAULT_ACCOUNT, FakePDS
from tests.social.test_mastodon import STATUSES, api, status  # noqa: F401
from tests.social.test_x import TWEETS, created, x_http  # noqa: F401

SLUG = "2024-unpsf-incheon"
PATH = f"content/{SLUG}.en.md"
TOO_MANY = {"json": {"title": "Too Many Requests"}, "status": 429}


class Clock:
    """One fake time for the worker (an aware datetime) and the channel (Unix seconds); sleeping moves it on."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, timezone.utc)

    def unix(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc)


def publishes(runs: list[JobRun]) -> list[JobRun]:
    return [run for run in runs if run.job.kind == "publish"]


def through(monkeypatch: pytest.MonkeyPatch, channel: Any, clock: Clock) -> None:
    """Runs (the worker's, a hand-typed one) use this channel, on the fake clock."""
    channel.clock, channel.sleep = clock.unix, clock.sleep
    monkeypatch.setattr("publisher.pipeline.channels_for", lambda site, names: [channel])


def test_the_worker_retries_an_x_429_at_its_reset_not_after_the_backoff(make_site: Callable[..., Site],
                                                                        x_http: responses.RequestsMock,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(**X_DEFAULT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    clock = Clock()
    reset = int(NOW) + 40 * 60   # X's 15-minute windows can end well after the 5-minute backoff
    x_http.add(responses.POST, TWEETS, **TOO_MANY, headers={"x-rate-limit-reset": str(reset)})
    x_http.add(responses.POST, TWEETS, **created("1001"))
    through(monkeypatch, XChannel(site), clock)
    schedule_publish(site, [PATH], clock(), channels=["x"], langs=["en"])
    worker = Worker(site, clock=clock, sleep=clock.sleep, poll=60.0)

    [first] = publishes(worker.run(once=True))

    assert first.outcome == "retry" and first.retry_at == at(reset) and clock.slept == []
    [job] = site.store().jobs.list(["pending"], kind="publish")
    assert job.due_at == at(reset)
    assert site.ledger().get(DeliveryKey(SLUG, "en", "x", "default")).state == "pending"
    assert len([c for c in x_http.calls if c.request.url == TWEETS]) == 1   # nothing posted while limited

    [second] = publishes(worker.run(until_idle=True))

    assert second.outcome == "done" and clock.now >= reset and clock.now - reset < 2
    row = site.ledger().get(DeliveryKey(SLUG, "en", "x", "default"))
    assert row is not None and row.state == "sent" and row.remote_id == "1001"
    assert len([c for c in x_http.calls if c.request.url == TWEETS]) == 2


def test_a_retry_after_http_date_sets_the_due_time(make_site: Callable[..., Site], x_http: responses.RequestsMock,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(**X_DEFAULT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    clock = Clock()
    x_http.add(responses.POST, TWEETS, **TOO_MANY, headers={"Retry-After": formatdate(NOW + 1800, usegmt=True)})
    through(monkeypatch, XChannel(site), clock)
    schedule_publish(site, [PATH], clock(), channels=["x"], langs=["en"])

    [run] = publishes(Worker(site, clock=clock, sleep=clock.sleep).run(once=True))

    assert run.outcome == "retry"
    [job] = site.store().jobs.list(["pending"], kind="publish")
    assert job.due_at == at(NOW + 1800)


def test_a_bluesky_ratelimit_reset_sets_the_due_time(make_site: Callable[..., Site],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(**DEFAULT_ACCOUNT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    clock = Clock()
    pds = FakePDS()
    reset = int(NOW) + 3 * 3600   # a daily limit: hours away
    pds.failures[CREATE] = [httpx.Response(429, json={"error": "RateLimitExceeded", "message": "daily limit"},
                                           headers={"ratelimit-reset": str(reset), "ratelimit-remaining": "0"})]
    channel = BlueskyChannel(site)
    channel.transport = pds.transport
    through(monkeypatch, channel, clock)
    schedule_publish(site, [PATH], clock(), channels=["bluesky"], langs=["en"])
    worker = Worker(site, clock=clock, sleep=clock.sleep, poll=600.0)

    [first] = publishes(worker.run(once=True))

    assert first.outcome == "retry" and pds.records == {}
    [job] = site.store().jobs.list(["pending"], kind="publish")
    assert job.due_at == at(reset)
    [second] = publishes(worker.run(until_idle=True))
    assert second.outcome == "done" and len(pds.records) == 1 and clock.now >= reset


def test_a_hand_typed_publish_stopped_by_mastodon_leaves_a_retry_job_at_the_reset(
        make_site: Callable[..., Site], api: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(**MASTODON_DEFAULT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    # Mastodon.py reads X-RateLimit-Reset against the real clock, so this one test's fake time starts at it
    clock = Clock(float(int(time.time())))
    reset = int(clock.now) + 20 * 60
    api.add(responses.POST, STATUSES, json={"error": "Too many requests"}, status=429,
            headers={"X-RateLimit-Reset": at(reset).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                     "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "300"})
    api.add(responses.POST, STATUSES, json=status("115"))
    through(monkeypatch, MastodonChannel(site), clock)

    reports = pipeline.publish(site, [site.root / PATH], channels=["mastodon"], langs=["en"], clock=clock)

    [stopped] = [r for r in reports if r.state == "stopped"]
    [job] = site.store().jobs.list(["pending"], kind="publish")
    assert job.due_at == at(reset) and stopped.retry_at == at(reset)
    assert job.payload == {"paths": sorted([PATH, f"content/{SLUG}.ko.md"]), "channels": ["mastodon"],
                           "langs": ["en"], "retry": True}
    assert f"the worker retries at {at(reset).astimezone(site.timezone):%Y-%m-%d %H:%M}" in stopped.note
    assert f"(job {job.id})" in stopped.note
    [run] = publishes(Worker(site, clock=clock, sleep=clock.sleep, poll=600.0).run(until_idle=True))
    assert run.outcome == "done" and clock.now >= reset
    assert site.ledger().get(DeliveryKey(SLUG, "en", "mastodon", "default")).state == "sent"


def test_publish_typed_twice_keeps_one_retry_job_and_says_when(make_site: Callable[..., Site],
                                                               x_http: responses.RequestsMock,
                                                               cli: Callable[..., Result]) -> None:
    site = make_site(**X_DEFAULT, SOCIAL_RATE_LIMIT_MAX_WAIT="60")
    reset = int(time.time()) + 1800   # the CLI's X channel and run read the real clock
    x_http.add(responses.POST, TWEETS, **TOO_MANY, headers={"x-rate-limit-reset": str(reset)})

    first = cli("publish", PATH, "--channel", "x", "--lang", "en", env={"COLUMNS": "200"})

    assert first.exit_code == 1   # stopped, as before: the office sees it
    shown = at(reset).astimezone(site.timezone)
    assert f"the worker retries at {shown:%Y-%m-%d %H:%M} KST" in first.output
    [job] = site.store().jobs.list(["pending"], kind="publish")
    assert job.due_at == at(reset) and job.payload["channels"] == ["x"]
    assert "retry of a stopped run" in cli("schedule", "list", env={"COLUMNS": "200"}).output

    second = cli("publish", PATH, "--channel", "x", "--lang", "ko", env={"COLUMNS": "200"})

    assert second.exit_code == 1 and f"(job {job.id})" in second.output
    [moved] = site.store().jobs.list(["pending"], kind="publish")   # the same job, not a second one
    assert moved.id == job.id and moved.payload["langs"] == ["en", "ko"]


def test_a_dry_run_or_a_finished_run_leaves_no_retry_job(make_site: Callable[..., Site],
                                                         x_http: responses.RequestsMock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(**X_DEFAULT)
    clock = Clock()
    x_http.add(responses.POST, TWEETS, **created("1001"))
    through(monkeypatch, XChannel(site), clock)
    pipeline.publish(site, [site.root / PATH], channels=["x"], langs=["en"], clock=clock, dry_run=True)
    pipeline.publish(site, [site.root / PATH], channels=["x"], langs=["en"], clock=clock)
    assert site.store().jobs.list(kind="publish") == []


def test_only_the_stories_left_unsent_get_a_retry_job(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.channels.memory import MemoryChannel

    slugs = sorted(site.articles().stories)[:3]
    sent: list[str] = []

    def respond(attempt: Any) -> Outcome | None:
        if attempt.key.article == slugs[1]:
            return Outcome.deferred("memory: quota reached", halt=True,
                                    retry_at=datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc))
        sent.append(attempt.key.article)
        return None

    channel = MemoryChannel(site, respond=respond)
    clock = Clock(datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc).timestamp())
    paths = [site.articles().stories[slug].original.path for slug in slugs]
    reports = pipeline.publish(site, [p for p in paths if p is not None], channels=[channel], langs=["en"],
                               clock=clock)

    assert sent == [slugs[0]] and any(r.state == "stopped" for r in reports)
    jobs = site.store().jobs.list(["pending"], kind="publish")
    assert sorted(job.key for job in jobs) == sorted(f"retry:{slug}|memory" for slug in slugs[1:])
    assert {job.due_at for job in jobs} == {datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)}


def test_the_retry_policy_keeps_a_reset_between_its_least_and_most() -> None:
    policy = RetryPolicy(base=timedelta(minutes=5), least=timedelta(minutes=1), most=timedelta(hours=6))
    now = datetime(2026, 12, 2, 0, 0, tzinfo=timezone.utc)
    assert policy.due(now, now + timedelta(minutes=40), 1) == now + timedelta(minutes=40)
    assert policy.due(now, now - timedelta(minutes=3), 1) == now + timedelta(minutes=1)   # already past
    assert policy.due(now, now + timedelta(days=3), 1) == now + timedelta(hours=6)        # a bogus far reset
    assert policy.due(now, None, 1) == now + timedelta(minutes=5)
    assert policy.due(now, None, 3) == now + timedelta(minutes=20)
    assert policy.due(now, None, 200) == now + timedelta(hours=6)


def test_a_reset_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        Outcome.deferred("x: 429", halt=True, retry_at=datetime(2026, 12, 2, 9, 0))


def test_retry_settings_come_from_the_site(site: Site) -> None:
    from tests.conftest import set_settings

    site = set_settings(site, SCHEDULE_RETRY_MIN_DELAY="2m", SCHEDULE_RETRY_MAX_DELAY="1h")
    policy = RetryPolicy.of(site)
    assert (policy.least, policy.most) == (timedelta(minutes=2), timedelta(hours=1))
    site.close()
