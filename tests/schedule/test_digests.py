"""Recurring digests: one per firing of ``BULLETIN_DIGEST_SCHEDULE`` (a schedule may fire twice a day), each
holding what was published since the previous firing; a digest planned before firings had ids keeps its per-day
id, so an upgrade never sends it again. A fake clock; the real pipeline, ledger and mail outbox."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from publisher.delivery import DeliveryKey
from publisher.scheduler import DIGEST
from publisher.site import Site
from publisher.worker import JobRun, Worker
from tests.conftest import set_settings

KST = timezone(timedelta(hours=9))


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def digests(runs: list[JobRun]) -> list[JobRun]:
    return [run for run in runs if run.job.kind == DIGEST]


def mails(site: Site) -> list[EmailMessage]:
    """Every message the bulletin wrote to the local mail outbox (no SMTP server is set), oldest first."""
    files = sorted((p for p in (site.outbox_dir / "mail").rglob("*") if p.is_file() and p.parent.name == "new"),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    found = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def test_a_schedule_firing_twice_a_day_sends_two_digests_each_with_what_came_since_the_last(
        site: Site, write_article: Callable[..., Path]) -> None:
    site = set_settings(site, BULLETIN_DIGEST_SCHEDULE="0 9,17 * * *")
    site.subscribers().add("reader@example.org", lang="en")
    write_article("morning-news", "en", title="Morning news", date="2026-12-02T08:00:00+09:00")
    clock = FakeClock(datetime(2026, 12, 2, 8, 30, tzinfo=KST))
    worker = Worker(site, clock=clock, sleep=clock.sleep, poll=3600.0)
    worker.plan_recurring()
    [first_job] = site.store().jobs.list(["pending"], kind=DIGEST)
    assert first_job.due_at == datetime(2026, 12, 2, 9, 0, tzinfo=KST)
    assert first_job.payload == {"since": "2026-12-01T17:00:00+09:00", "firing": "2026-12-02T09:00:00+09:00"}

    clock.now = datetime(2026, 12, 2, 9, 0, 20, tzinfo=KST)
    [morning] = digests(worker.run(once=True))
    assert morning.outcome == "done", morning.note
    write_article("afternoon-news", "en", title="Afternoon news", date="2026-12-02T12:00:00+09:00")
    clock.now = datetime(2026, 12, 2, 17, 0, 5, tzinfo=KST)
    [evening] = digests(worker.run(once=True))
    assert evening.outcome == "done", evening.note

    reader = "reader@example.org"
    ledger = site.ledger()
    for digest_id in ("digest-2026-12-02-0900", "digest-2026-12-02-1700"):
        row = ledger.get(DeliveryKey(digest_id, "en", "email", reader))
        assert row is not None and row.state == "sent", digest_id
    first, second = [m for m in mails(site) if m["To"] == reader]   # and no other message
    assert "Morning news" in text_of(first) and "Afternoon news" not in text_of(first)
    assert "Afternoon news" in text_of(second) and "Morning news" not in text_of(second)
    [following] = site.store().jobs.list(["pending"], kind=DIGEST)
    assert following.due_at == datetime(2026, 12, 3, 9, 0, tzinfo=KST)
    assert following.payload["since"] == "2026-12-02T17:00:00+09:00"
    # the next morning's digest starts on the day the evening one did: a per-day id would take it as sent
    write_article("next-morning", "en", title="Next morning", date="2026-12-03T07:00:00+09:00")
    clock.now = datetime(2026, 12, 3, 9, 0, 1, tzinfo=KST)
    [again] = digests(worker.run(once=True))
    assert again.outcome == "done", again.note
    *_, third = [m for m in mails(site) if m["To"] == reader]
    assert third is not second and "Next morning" in text_of(third) and "Afternoon news" not in text_of(third)
    assert ledger.get(DeliveryKey("digest-2026-12-03-0900", "en", "email", reader)) is not None


def test_a_digest_half_sent_under_its_per_day_id_before_the_upgrade_is_not_sent_again(
        site: Site, write_article: Callable[..., Any]) -> None:
    site = set_settings(site, BULLETIN_DIGEST_SCHEDULE="0 9 * * MON")
    subscribers = site.subscribers()
    for reader in ("first@example.org", "second@example.org"):
        subscribers.add(reader, lang="en")
    write_article("week-one", "en", title="Week one", date="2026-12-03T10:00:00+09:00")
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=KST)
    jobs = site.store().jobs
    # As the worker before firing ids left it: a job whose payload has only "since", killed after one reader
    # got the digest recorded under the per-day id of its "since" (digest-2026-11-30).
    job, _ = jobs.schedule(DIGEST, "digest:0 9 * * MON", {"since": "2026-11-30T09:00:00+09:00"}, monday)
    legacy = "digest-2026-11-30"
    site.ledger().mark(DeliveryKey(legacy, "en", "email", "first@example.org"), "sent", remote_id="<old@id>")
    clock = FakeClock(monday + timedelta(minutes=2))
    worker = Worker(site, clock=clock, sleep=clock.sleep, poll=3600.0)

    [run] = digests(worker.run(once=True))

    assert run.job.id == job.id and run.outcome == "done", run.note
    rows = {r.key.target: r.state for r in site.ledger().rows(article=legacy)}
    assert rows == {"first@example.org": "sent", "second@example.org": "sent"}
    assert [m["To"] for m in mails(site)] == ["second@example.org"]   # the first reader is not sent it again
    assert not [r for r in site.ledger().rows(channel="email") if r.key.article != legacy]
    # the next digest is a firing of its own, a week on; running again now sends nothing
    [following] = jobs.list(["pending"], kind=DIGEST)
    assert following.due_at == monday + timedelta(days=7) and following.payload["firing"].startswith("2026-12-14T09:00")
    assert digests(worker.run(once=True)) == []
    assert len(mails(site)) == 1
