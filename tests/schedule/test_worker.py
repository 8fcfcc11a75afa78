"""``publisher worker`` driven by a fake clock: scheduled publishes, the overdue rule, leases, digests and
deferred retries, through the real pipeline and the real site database. Nothing sleeps for real."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from publisher import pipeline
from publisher.channels.memory import MemoryChannel
from publisher.delivery import Attempt, Outcome
from publisher.scheduler import schedule_publish
from publisher.site import Site
from publisher.worker import JobRun, Worker
from tests.databases import open_test_store

pytestmark = pytest.mark.both_databases

SLUG = "2025-public-service-day"
RELEASE = datetime(2026, 12, 2, 0, 0, tzinfo=timezone.utc)   # 09:00 KST


class FakeClock:
    """The time the worker reads; its ``sleep`` moves the time on instead of waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def embargo(site: Site, when: str = "2026-12-02 09:00") -> list[Path]:
    paths = [site.content_dir / f"{SLUG}.{lang}.md" for lang in ("en", "ko")]
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join([lines[0], f"publish_at: {when}\n", *lines[1:]]), encoding="utf-8")
    return paths


def publishes(runs: list[JobRun]) -> list[JobRun]:
    """The runs of scheduled publishes (the daily purge of unconfirmed subscribers runs beside them)."""
    return [run for run in runs if run.job.kind == "publish"]


def feed_text(site: Site) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in site.public_dir.rglob("*.xml"))


def test_the_worker_publishes_an_embargoed_article_at_its_time(site: Site) -> None:
    clock = FakeClock(RELEASE - timedelta(seconds=10))
    pipeline.publish(site, embargo(site), channels=["feeds"], clock=clock)
    assert SLUG not in feed_text(site)
    worker = Worker(site, clock=clock, sleep=clock.sleep, poll=1.0)
    assert publishes(worker.run(once=True)) == []   # not due yet
    runs = publishes(worker.run(until_idle=True))
    assert [(r.job.kind, r.outcome) for r in runs] == [("publish", "done")]
    assert clock.now >= RELEASE and clock.now - RELEASE < timedelta(seconds=1)
    assert sum(clock.slept) == pytest.approx(10, abs=1)
    assert SLUG in feed_text(site)
    assert {r.key.lang for r in site.ledger().rows(article=SLUG, state="sent")} == {"en", "ko"}
    [job] = site.store().jobs.list(kind="publish")
    assert job.state == "done" and job.attempts == 1 and job.lease_owner == worker.owner


def test_an_overdue_job_is_held_until_released(site: Site, cli: Callable[..., Result]) -> None:
    clock = FakeClock(RELEASE - timedelta(minutes=5))
    pipeline.publish(site, embargo(site), channels=["feeds"], clock=clock)
    clock.now = RELEASE + timedelta(hours=3)   # the machine was off
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    assert publishes(worker.run(once=True)) == []
    [job] = site.store().jobs.list(kind="publish")
    assert job.state == "overdue"
    assert SLUG not in feed_text(site)
    listed = cli("schedule", "list", env={"COLUMNS": "200"})
    assert "overdue" in listed.output and f"publisher schedule release {job.id}" in listed.output
    assert f"Overdue: job {job.id}" in cli("status", env={"COLUMNS": "200"}).output
    released = cli("schedule", "release", str(job.id))
    assert released.exit_code == 0
    runs = publishes(worker.run(once=True))
    assert [(r.job.id, r.outcome) for r in runs] == [(job.id, "done")]
    assert SLUG in feed_text(site)


def test_cancel_and_list_json(site: Site, cli: Callable[..., Result]) -> None:
    import json

    job, _ = schedule_publish(site, [f"content/{SLUG}.en.md"], RELEASE, channels=["feeds"], langs=["en"])
    [line] = cli("schedule", "list", "--json").output.splitlines()
    record = json.loads(line)
    assert record["id"] == job.id and record["state"] == "pending" and record["due_at"].startswith("2026-12-02T00:00")
    assert cli("schedule", "cancel", str(job.id)).exit_code == 0
    again = cli("schedule", "cancel", str(job.id))
    assert again.exit_code == 2 and f"job {job.id}" in again.output
    assert cli("schedule", "list", "--json").output == ""


def test_two_workers_never_hold_one_job(site: Site) -> None:
    schedule_publish(site, [f"content/{SLUG}.en.md"], RELEASE, channels=["feeds"])
    other = open_test_store(site.state_dir)
    try:
        lease = timedelta(seconds=60)
        first = site.store().jobs.claim("one", RELEASE, lease)
        second = other.jobs.claim("two", RELEASE + timedelta(seconds=30), lease)
        assert first is not None and second is None
        # the first worker was killed: once its lease runs out the job is taken over, once
        taken = other.jobs.claim("two", RELEASE + timedelta(seconds=61), lease)
        assert taken is not None and taken.id == first.id and taken.lease_owner == "two" and taken.attempts == 2
        assert site.store().jobs.claim("one", RELEASE + timedelta(seconds=62), lease) is None
        assert not site.store().jobs.finish(first.id, "one")   # no longer its job
        assert other.jobs.finish(first.id, "two")
    finally:
        other.close()


def test_publish_at_schedules_and_rescheduling_moves_the_job(site: Site, cli: Callable[..., Result]) -> None:
    first = cli("publish", f"content/{SLUG}.en.md", "--channel", "feeds", "--lang", "ko", "--at", "2999-12-02 09:00")
    assert first.exit_code == 0, first.output
    assert "Scheduled job" in first.output and "2999-12-02 09:00 KST" in first.output
    moved = cli("publish", f"content/{SLUG}.en.md", "--channel", "feeds", "--lang", "ko",
                "--at", "2999-12-02T10:30:15+09:00")
    assert moved.exit_code == 0 and "Moved job" in moved.output
    [job] = site.store().jobs.list()
    assert job.due_at == datetime(2999, 12, 2, 1, 30, 15, tzinfo=timezone.utc)
    assert job.payload == {"paths": [f"content/{SLUG}.en.md"], "channels": ["feeds"], "langs": ["ko"]}
    assert list(site.ledger().rows()) == []


@pytest.mark.parametrize("value, message", [("2020-01-01 09:00", "in the past"), ("next monday", "expected a time")])
def test_a_bad_or_past_at_is_one_line(cli: Callable[..., Result], value: str, message: str) -> None:
    result = cli("publish", "--channel", "feeds", "--at", value)
    assert result.exit_code == 2 and message in result.output and "--at" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_past_at_with_now_publishes_now(site: Site, cli: Callable[..., Result]) -> None:
    result = cli("publish", f"content/{SLUG}.en.md", "--channel", "feeds", "--at", "2020-01-01 09:00", "--now")
    assert result.exit_code == 0, result.output
    assert SLUG in feed_text(site)


def test_a_deferred_delivery_becomes_a_job_due_later(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def respond(attempt: Attempt) -> Outcome | None:
        calls.append(attempt.key.lang)
        return Outcome.deferred("memory: rate limited until later", halt=True) if len(calls) == 1 else None

    channel = MemoryChannel(site, respond=respond)
    monkeypatch.setattr("publisher.pipeline.channels_for", lambda site, names: [channel])
    clock = FakeClock(RELEASE)
    schedule_publish(site, [f"content/{SLUG}.en.md"], RELEASE, channels=["memory"], langs=["en"])
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    [first] = publishes(worker.run(once=True))
    assert first.outcome == "retry" and "rate limited" in first.note
    [job] = site.store().jobs.list(kind="publish")
    assert job.state == "pending" and job.due_at == RELEASE + timedelta(minutes=5)
    runs = publishes(worker.run(until_idle=True))
    assert [r.outcome for r in runs] == ["done"]
    assert calls == ["en", "en"] and channel.delivered_keys() == [f"{SLUG}/en/memory/inbox"]


def test_sigterm_releases_a_job_not_started(site: Site) -> None:
    schedule_publish(site, [f"content/{SLUG}.en.md"], RELEASE, channels=["feeds"])
    clock = FakeClock(RELEASE)
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    job = site.store().jobs.claim(worker.owner, clock(), timedelta(seconds=60))
    assert job is not None
    worker.stop()
    run = worker.run_job(job)
    assert run.outcome == "released"
    [after] = site.store().jobs.list(kind="publish")
    assert after.state == "pending" and after.lease_owner is None and after.attempts == 0


def test_a_bad_digest_schedule_is_one_line(site_dir: Path, cli: Callable[..., Result]) -> None:
    with (site_dir / "publisher.toml").open("a", encoding="utf-8") as out:
        out.write('BULLETIN_DIGEST_SCHEDULE = "0 9 * * FUNDAY"\n')
    for args in (("worker", "--once"), ("config", "check")):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert "BULLETIN_DIGEST_SCHEDULE" in result.output and "cron expression" in result.output


def test_recurring_digest_holds_what_was_published_since_the_last(site: Site, write_article: Any) -> None:
    from tests.conftest import set_settings

    site = set_settings(site, BULLETIN_DIGEST_SCHEDULE="0 9 * * MON")
    site.subscribers().add("reader@example.org", lang="en")
    monday = datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc)   # Monday 09:00 KST
    write_article("week-one", "en", title="Week one", date="2026-12-03T10:00:00+09:00")
    clock = FakeClock(monday - timedelta(days=1))
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    worker.plan_recurring()
    [digest] = site.store().jobs.list(["pending"], kind="digest")
    assert digest.kind == "digest" and digest.due_at == monday
    assert digest.payload["since"].startswith("2026-11-30T09:00")
    clock.now = monday
    [run] = [r for r in worker.run(once=True) if r.job.kind == "digest"]
    assert run.outcome == "done", run.note
    mails = list((site.outbox_dir / "mail").rglob("*.eml")) + [p for p in (site.outbox_dir / "mail").rglob("*")
                                                             if p.is_file() and p.parent.name == "new"]
    assert mails
    [following] = site.store().jobs.list(["pending"], kind="digest")
    assert following.due_at == monday + timedelta(days=7)
    assert following.payload["since"].startswith("2026-12-07T09:00")


def test_a_job_outside_its_send_window_waits_for_the_next_opening(site: Site, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    from tests.conftest import set_settings

    site = set_settings(site, SCHEDULE_SEND_WINDOWS="memory=08:00-22:00")
    channel = MemoryChannel(site)
    monkeypatch.setattr("publisher.pipeline.channels_for", lambda site, names: [channel])
    late = datetime(2026, 12, 2, 14, 30, tzinfo=timezone.utc)   # 23:30 KST
    schedule_publish(site, [f"content/{SLUG}.en.md"], late, channels=["memory"], langs=["en"])
    clock = FakeClock(late)
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    [first] = publishes(worker.run(once=True))
    assert first.outcome == "done" and "waits for its send window (2026-12-03 08:00 KST)" in first.note
    assert channel.delivered_keys() == []
    [waiting] = site.store().jobs.list(["pending"], kind="publish")
    assert waiting.due_at == datetime(2026, 12, 2, 23, 0, tzinfo=timezone.utc)   # 08:00 KST
    runs = publishes(worker.run(until_idle=True))
    assert [r.outcome for r in runs] == ["done"] and channel.delivered_keys() == [f"{SLUG}/en/memory/inbox"]
    assert clock.now - waiting.due_at < timedelta(seconds=3)


def test_a_bad_send_window_is_one_line(site_dir: Path, cli: Callable[..., Result]) -> None:
    with (site_dir / "publisher.toml").open("a", encoding="utf-8") as out:
        out.write('SCHEDULE_SEND_WINDOWS = "x=8h-22h"\n')
    result = cli("config", "check")
    assert result.exit_code == 2 and "SCHEDULE_SEND_WINDOWS" in result.output


def test_max_late_0_never_holds_a_job(site: Site) -> None:
    from tests.conftest import set_settings

    site = set_settings(site, SCHEDULE_MAX_LATE="0")
    schedule_publish(site, [f"content/{SLUG}.en.md"], RELEASE, channels=["feeds"], langs=["en"])
    clock = FakeClock(RELEASE + timedelta(days=2))
    assert [r.outcome for r in publishes(Worker(site, clock=clock, sleep=clock.sleep).run(once=True))] == ["done"]


def test_the_periodic_retry_unconfirmed_resolves_a_post_left_in_doubt(site: Site,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import set_settings

    answers = [Outcome.unconfirmed("timeout", detail={"arrived": True})]
    channel = MemoryChannel(site, respond=lambda attempt: answers.pop() if answers else None)
    pipeline.publish(site, [site.content_dir / f"{SLUG}.en.md"], channels=[channel], langs=["en"])
    [row] = site.ledger().rows(article=SLUG, channel="memory")
    assert row.state == "unconfirmed"
    site = set_settings(site, SCHEDULE_RETRY_UNCONFIRMED_EVERY="1h")
    monkeypatch.setattr("publisher.pipeline.channels_for", lambda site, names: [channel])
    clock = FakeClock(RELEASE)
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    [run] = [r for r in worker.run(once=True) if r.job.kind == "retry_unconfirmed"]
    assert run.outcome == "done", run.note
    [row] = site.ledger().rows(article=SLUG, channel="memory")
    assert row.state == "sent" and len(channel.delivered) == 1   # found, not posted again
    [following] = site.store().jobs.list(["pending"], kind="retry_unconfirmed")
    assert following.due_at == RELEASE + timedelta(hours=1)


def test_the_worker_purges_subscribers_whose_confirmation_link_expired(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("old@example.org", lang="en", status="pending")
    subscribers.add("active@example.org", lang="en")
    clock = FakeClock(datetime.now(timezone.utc) + timedelta(hours=73))   # PUBLISHER_CONFIRM_LINK_HOURS=72
    site.store().clock = clock   # type: ignore[attr-defined] # the store's timestamps: "fresh" asks at the worker's now
    subscribers.add("fresh@example.org", lang="en", status="pending")
    [run] = Worker(site, clock=clock, sleep=clock.sleep).run(once=True)
    assert run.job.kind == "purge_pending" and run.note == "1 unconfirmed subscriber(s) removed"
    assert {s.email for s in site.subscribers().iter_all()} == {"active@example.org", "fresh@example.org"}


def test_a_failing_recurring_job_waits_its_period_instead_of_running_again_at_once(site: Site,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    from tests.conftest import set_settings

    channel = MemoryChannel(site, respond=lambda attempt: Outcome.unconfirmed("timeout"))
    pipeline.publish(site, [site.content_dir / f"{SLUG}.en.md"], channels=[channel], langs=["en"])
    site = set_settings(site, SCHEDULE_RETRY_UNCONFIRMED_EVERY="1h")
    monkeypatch.setattr("publisher.pipeline.channels_for", lambda site, names: [MemoryChannel(site, listable=False,
                        respond=lambda attempt: Outcome.unconfirmed("timeout again"))])
    clock = FakeClock(RELEASE)
    runs = [r for r in Worker(site, clock=clock, sleep=clock.sleep).run(once=True) if r.job.kind == "retry_unconfirmed"]
    assert [r.outcome for r in runs] == ["failed"]
    [following] = site.store().jobs.list(["pending"], kind="retry_unconfirmed")
    assert following.due_at == RELEASE + timedelta(hours=1)


def test_housekeeping_runs_late_without_being_held(site: Site) -> None:
    clock = FakeClock(RELEASE)
    worker = Worker(site, clock=clock, sleep=clock.sleep)
    worker.run(once=True)   # the first purge
    clock.now += timedelta(days=3)   # the machine was off
    runs = worker.run(once=True)
    assert [(r.job.kind, r.outcome) for r in runs] == [("purge_pending", "done")]
    assert site.store().jobs.list(["overdue"]) == []
