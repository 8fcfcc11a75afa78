"""`publisher worker` reads the bounce mailbox every BOUNCE_INTERVAL minutes when one is configured."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from publisher.site import Site
from publisher.worker import PROCESS_BOUNCES, Worker
from tests.bounces.mail import dsn, write_maildir
from tests.conftest import set_settings
from tests.schedule.test_worker import FakeClock

pytestmark = pytest.mark.both_databases


def test_the_worker_processes_the_bounce_maildir_and_plans_the_next_run(site: Site, tmp_path: Path) -> None:
    box = tmp_path / "bounce-mail"
    write_maildir(box, dsn("gone@example.org"))
    site = set_settings(site, BOUNCE_MAILDIR=str(box), BOUNCE_INTERVAL="10")
    site.subscribers().add("gone@example.org")
    clock = FakeClock(datetime.now(timezone.utc).replace(microsecond=0))
    runs = [r for r in Worker(site, clock=clock, sleep=clock.sleep).run(once=True) if r.job.kind == PROCESS_BOUNCES]
    assert [r.outcome for r in runs] == ["done"]
    assert runs[0].note.startswith("1 messages read: 1 bounces (1 hard, 0 soft)")
    assert site.subscribers().get("gone@example.org").status == "bounced"
    [following] = site.store().jobs.list(["pending"], kind=PROCESS_BOUNCES)
    assert following.due_at == clock() + timedelta(minutes=10)
    site.close()


def test_no_bounce_job_without_a_mailbox(site: Site) -> None:
    clock = FakeClock(datetime.now(timezone.utc))
    Worker(site, clock=clock, sleep=clock.sleep).run(once=True)
    assert site.store().jobs.list(kind=PROCESS_BOUNCES) == []
