"""The real ``publisher worker`` process against a real aiosmtpd server: an embargoed article goes out at its
time, and a ``kill -9`` of the worker mid-bulletin, then a restart, loses and skips nothing."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from publisher import pipeline
from publisher.site import Site
from tests.email.conftest import SmtpServer, add_subscribers

pytestmark = pytest.mark.both_databases

SLUG = "2025-public-service-day"
CONNECTIONS = 3   # smtp_site sets SMTP_CONNECTIONS=3


def start_worker(site: Site, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--site", str(site.root), "worker", "--poll", "0.2", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )


def embargo(site: Site, moment: datetime) -> list:
    paths = [site.content_dir / f"{SLUG}.{lang}.md" for lang in ("en", "ko")]
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join([lines[0], f"publish_at: {moment.isoformat()}\n", *lines[1:]]), encoding="utf-8")
    return paths


def test_the_worker_sends_an_embargoed_article_to_everyone_at_its_time(smtp_site: Site,
                                                                       smtp_server: SmtpServer) -> None:
    everyone = add_subscribers(smtp_site, 12)
    release = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
    reports = pipeline.publish(smtp_site, embargo(smtp_site, release), channels=["email", "feeds"])
    assert {r.state for r in reports if r.article == SLUG} == {"scheduled"}
    assert smtp_server.handler.received() == {}

    worker = start_worker(smtp_site, "--until-idle")
    out, err = worker.communicate(timeout=90)
    finished = datetime.now(timezone.utc)
    assert worker.returncode == 0, out + err
    received = smtp_server.handler.received()
    assert set(received) == everyone and set(received.values()) == {1}
    languages = {address: message["Content-Language"] for address, message in smtp_server.handler.parsed().items()}
    assert {languages[f"reader{i:03d}@example.org"] for i in range(0, 12, 3)} == {"ko"}
    assert {languages[f"reader{i:03d}@example.org"] for i in range(1, 12, 3)} == {"en"}
    assert finished >= release and finished - release < timedelta(seconds=30)
    assert SLUG in (smtp_site.public_dir / "en" / "rss.xml").read_text(encoding="utf-8")
    assert SLUG in (smtp_site.public_dir / "ko" / "rss.xml").read_text(encoding="utf-8")


def test_kill_9_of_the_worker_mid_bulletin_then_a_restart_loses_and_skips_nothing(smtp_site: Site,
                                                                                  smtp_server: SmtpServer) -> None:
    from publisher.scheduler import schedule_publish

    subscribers = 90
    everyone = add_subscribers(smtp_site, subscribers)
    due = datetime.now(timezone.utc) + timedelta(seconds=2)
    job, _ = schedule_publish(smtp_site, [f"content/{SLUG}.en.md", f"content/{SLUG}.ko.md"], due,
                              channels=["email"])
    handler = smtp_server.handler
    handler.delay = 0.01          # slow enough to stop the worker in the middle

    first = start_worker(smtp_site, "--lease", "2")
    deadline = time.monotonic() + 60
    while sum(handler.received().values()) < 20:
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        assert time.monotonic() < deadline, "the worker never got going"
        time.sleep(0.002)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    delivered_before = handler.received()
    assert 0 < sum(delivered_before.values()) < subscribers
    held = smtp_site.store().jobs.get(job.id)
    assert held is not None and held.state == "running"   # its lease runs out: the next worker takes it over

    handler.delay = 0.0
    second = start_worker(smtp_site, "--until-idle", "--lease", "2")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, out + err

    received = handler.received()
    assert set(received) == everyone                              # nobody skipped
    twice = {address for address, count in received.items() if count > 1}
    # At most those in flight at the kill: every connection's messages claimed and not yet marked (two each
    # with PIPELINING, SMTP_MESSAGES_PER_CONNECTION, and one claimed ahead), whose final dot the server may
    # have answered.
    in_flight = CONNECTIONS * smtp_server.capacity_per_connection
    assert max(received.values()) <= 2 and len(twice) <= in_flight
    done = smtp_site.store().jobs.get(job.id)
    assert done is not None and done.state == "done" and done.attempts == 2   # run again, not lost, not twice
    assert len(smtp_site.store().jobs.list(kind="publish")) == 1
    states = dict(smtp_site.store().connection.execute(
        "SELECT state, count(*) FROM deliveries WHERE channel = 'email' GROUP BY state").fetchall())
    assert states == {"sent": subscribers}


def test_sigterm_lets_the_job_in_hand_finish_and_exits_0(smtp_site: Site, smtp_server: SmtpServer) -> None:
    from publisher.scheduler import schedule_publish

    everyone = add_subscribers(smtp_site, 30)
    due = datetime.now(timezone.utc) + timedelta(seconds=1)
    job, _ = schedule_publish(smtp_site, [f"content/{SLUG}.en.md"], due, channels=["email"], langs=["en"])
    smtp_server.handler.delay = 0.02
    worker = start_worker(smtp_site)
    deadline = time.monotonic() + 60
    while not smtp_server.handler.received():
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, out + err
    rows = list(smtp_site.ledger().rows(channel="email"))
    assert {row.state for row in rows} <= {"sent", "skipped"}   # the job in hand was finished, not cut off
    assert set(smtp_server.handler.received()) == {row.key.target for row in rows if row.state == "sent"}
    assert len(smtp_server.handler.received()) >= 20 and set(smtp_server.handler.received()) <= everyone
    finished = smtp_site.store().jobs.get(job.id)
    assert finished is not None and finished.state == "done"


def test_two_workers_started_by_mistake_run_each_job_once(smtp_site: Site, smtp_server: SmtpServer) -> None:
    from collections import Counter

    from publisher.scheduler import schedule_publish

    subscribers = smtp_site.subscribers()
    with smtp_site.store().transaction():
        for i in range(10):
            subscribers.add(f"reader{i:03d}@example.org", lang="en")
    due = datetime.now(timezone.utc) + timedelta(seconds=2)
    slugs = ["2024-unpsf-incheon", "2025-public-service-day", "2024-sdg16-knowledge-forum"]
    jobs = [schedule_publish(smtp_site, [f"content/{slug}.en.md"], due, channels=["email"], langs=["en"])[0]
            for slug in slugs]
    smtp_server.handler.delay = 0.01
    workers = [start_worker(smtp_site, "--until-idle") for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, out + err
    received = smtp_server.handler.received()
    assert set(received.values()) == {3} and len(received) == 10   # each article once to each reader
    subjects = Counter(str(email.message_from_bytes(data)["Subject"]) for _, data in smtp_server.handler.messages)
    assert len(subjects) == 3 and set(subjects.values()) == {10}
    for job in jobs:
        done = smtp_site.store().jobs.get(job.id)
        assert done is not None and done.state == "done" and done.attempts == 1
