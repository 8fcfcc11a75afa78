"""Several senders share one bulletin (issue 14): ``publish --queue`` writes the rows and a send job; workers
(each a Worker with its own Site, store and SMTP connections, on threads) claim batches and send them to a real
aiosmtpd server: every recipient once, each row's worker recorded; an in-process publish meanwhile never sends
beside them; bad flags are one line and exit 2."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from publisher import pipeline
from publisher.site import Site
from publisher.worker import JobRun, Worker
from tests.databases import execute
from tests.email.conftest import SmtpServer, add_subscribers

pytestmark = [pytest.mark.both_databases, pytest.mark.parametrize("smtp_server", [{}], indirect=True)]

SLUG = "2025-public-service-day"
ARTICLE = f"content/{SLUG}.en.md"


def gate(server: SmtpServer) -> threading.Event:
    """Hold every DATA until the event is set: the workers claim, and wait, until the test lets them send."""
    opened = threading.Event()
    original = server.handler.handle_DATA

    async def held(smtp: Any, session: Any, envelope: Any) -> str:
        while not opened.is_set():
            await asyncio.sleep(0.005)
        return await original(smtp, session, envelope)

    server.handler.handle_DATA = held  # type: ignore[method-assign]
    return opened


class WorkerThread(threading.Thread):
    """``publisher worker --until-idle`` on a thread, on a Site (and database connection) of its own."""

    def __init__(self, site: Site, batch_size: int = 5, poll: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.site = Site(site.root)
        self.worker = Worker(self.site, poll=poll, batch_size=batch_size)
        self.runs: list[JobRun] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.runs = self.worker.run(until_idle=True)
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.site.close()

    def finish(self) -> int:
        self.join(timeout=120)
        assert not self.is_alive(), "the worker never finished"
        assert self.error is None, self.error
        return sum(run.sent for run in self.runs)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def holders(site: Site, state: str = "in_flight") -> set[str]:
    rows = execute(site.store(), "SELECT DISTINCT worker FROM deliveries WHERE channel = 'email' AND state = ?",
                   (state,)).fetchall()
    return {row[0] for row in rows if row[0]}


def test_publish_queue_then_two_workers_share_the_bulletin_each_recipient_once(
        smtp_site: Site, smtp_server: SmtpServer, cli: Callable[..., Result], backend: str) -> None:
    everyone = add_subscribers(smtp_site, 60)
    queued = cli("publish", ARTICLE, "--channel", "email", "--queue", "--json")
    assert queued.exit_code == 0, queued.output
    lines = [json.loads(line) for line in queued.stdout.splitlines()]
    assert {(line["lang"], line["state"], line["note"]) for line in lines} == {
        ("en", "queued", "queued for the workers: 40 recipients"),
        ("ko", "queued", "queued for the workers: 20 recipients")}
    assert smtp_server.handler.received() == {}                      # nothing sent by the queueing
    [job] = smtp_site.store().jobs.list(["pending"], kind="send")
    assert job.payload["article"] == SLUG
    assert smtp_site.ledger().counts(SLUG, "email", states=["pending"])["pending"] == 60
    smtp_site.subscribers().unsubscribe("reader007@example.org")    # after the queueing: skipped, with a note

    opened = gate(smtp_server)
    workers = [WorkerThread(smtp_site), WorkerThread(smtp_site)]
    for one in workers:
        one.start()
    wait_for(lambda: len(holders(smtp_site)) == 2, "both workers claim a batch")
    opened.set()
    sent = [one.finish() for one in workers]

    received = smtp_server.handler.received()
    assert set(received) == everyone - {"reader007@example.org"} and set(received.values()) == {1}
    assert all(count > 0 for count in sent) and sum(sent) == 59      # both sent some, together everyone
    rows = list(smtp_site.ledger().rows(article=SLUG, channel="email"))
    by_worker = {one.worker.owner: n for one, n in zip(workers, sent)}
    assert {row.state for row in rows if row.key.target != "reader007@example.org"} == {"sent"}
    for owner, count in by_worker.items():
        assert sum(1 for row in rows if row.state == "sent" and row.worker == owner) == count
    skipped = smtp_site.ledger().get_many([row.key for row in rows if row.key.target == "reader007@example.org"])
    assert [(row.state, row.last_error) for row in skipped.values()] == [
        ("skipped", "not sent: unsubscribed since it was queued")]
    done = smtp_site.store().jobs.get(job.id)
    assert done is not None and done.state == "done"
    assert any(run.outcome == "done" for one in workers for run in one.runs)

    # who sent what: status shows each row's worker, --json and --all carry it
    shown = cli("status", ARTICLE, "--wide")
    assert shown.exit_code == 0 and all(owner in shown.stdout for owner in by_worker), shown.stdout
    as_json = [json.loads(line) for line in cli("status", ARTICLE, "--json").stdout.splitlines()]
    assert {line["worker"] for line in as_json if line["state"] == "sent"} == set(by_worker)
    listed = cli("status", ARTICLE, "--all").stdout.splitlines()
    assert listed[0].split("\t")[-1] == "worker" and {line.split("\t")[-1] for line in listed[1:]} <= set(by_worker)
    # the bulletin's lock is the database's own on PostgreSQL: no lock file anywhere
    assert (smtp_site.state_dir / "locks").exists() == (backend == "sqlite")


def test_a_plain_publish_while_workers_send_a_queued_bulletin_never_sends_twice(
        smtp_site: Site, smtp_server: SmtpServer, cli: Callable[..., Result]) -> None:
    everyone = add_subscribers(smtp_site, 40)
    assert cli("publish", ARTICLE, "--channel", "email", "--queue").exit_code == 0
    opened = gate(smtp_server)
    worker = WorkerThread(smtp_site, batch_size=10)
    worker.start()
    wait_for(lambda: bool(holders(smtp_site)), "the worker claims a batch")
    held_by_worker = {row.key for row in smtp_site.ledger().rows(article=SLUG, state="in_flight")}

    reports: list[Any] = []

    def publish() -> None:   # the in-process run takes what is pending and leaves the worker's rows to it
        other = Site(smtp_site.root)
        try:
            reports.extend(pipeline.publish(other, [other.root / ARTICLE], channels=["email"]))
        finally:
            other.close()

    sender = threading.Thread(target=publish, daemon=True)
    sender.start()
    wait_for(lambda: len(holders(smtp_site)) == 2, "the publish claims rows beside the worker's")
    opened.set()
    sender.join(timeout=120)
    assert not sender.is_alive()
    worker.finish()
    received = smtp_server.handler.received()
    assert set(received) == everyone and set(received.values()) == {1}
    rows = {row.key: row for row in smtp_site.ledger().rows(article=SLUG, channel="email")}
    assert {row.state for row in rows.values()} == {"sent"}
    assert {rows[key].worker for key in held_by_worker} == {worker.worker.owner}   # never taken from it
    lines = [r for r in reports if r.channel == "email"]
    assert {line.state for line in lines} == {"sent"}
    assert any("being sent by another worker" in line.note for line in lines), lines


@pytest.mark.parametrize("args, says", [
    (("--queue",), "--channel email"),
    (("--queue", "--channel", "feeds"), "--channel email"),
    (("--queue", "--channel", "email", "--channel", "x"), "--channel email"),
    (("--queue", "--channel", "email", "--force"), "--force"),
    (("--queue", "--channel", "email", "--at", "2099-01-01 09:00"), "--at"),
])
def test_bad_queue_flags_are_one_line_and_exit_2(smtp_site: Site, cli: Callable[..., Result],
                                                 args: tuple[str, ...], says: str) -> None:
    add_subscribers(smtp_site, 3)
    result = cli("publish", ARTICLE, *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr
    assert "Traceback" not in result.output
    assert not list(smtp_site.ledger().rows()) and not smtp_site.store().jobs.list()


def test_queue_dry_run_says_what_it_would_queue_and_writes_nothing(smtp_site: Site,
                                                                   cli: Callable[..., Result]) -> None:
    add_subscribers(smtp_site, 4)
    result = cli("publish", ARTICLE, "--channel", "email", "--queue", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(text) for text in result.stdout.splitlines()]
    assert {(line["lang"], line["state"], line["note"]) for line in lines} == {
        ("en", "dry-run", "would queue for the workers: 2 recipients"),
        ("ko", "dry-run", "would queue for the workers: 2 recipients")}
    assert not list(smtp_site.ledger().rows()) and not smtp_site.store().jobs.list()


def test_queued_rows_left_in_doubt_are_resent_as_possible_duplicates_and_sent_ones_never(
        smtp_site: Site, smtp_server: SmtpServer, cli: Callable[..., Result]) -> None:
    from publisher.delivery import DeliveryKey

    everyone = add_subscribers(smtp_site, 6)
    ledger = smtp_site.ledger()

    def key(i: int) -> DeliveryKey:
        return DeliveryKey(SLUG, "en", "email", f"reader{i:03d}@example.org")

    ledger.begin(key(1))                      # left in flight by a crash before leases existed
    ledger.mark(key(2), "unconfirmed", error="no answer from the provider")
    ledger.mark(key(4), "sent")
    queued = cli("publish", ARTICLE, "--channel", "email", "--queue", "--json")
    assert queued.exit_code == 0, queued.output
    notes = {line["lang"]: line["note"] for line in map(json.loads, queued.stdout.splitlines())}
    assert notes == {"en": "queued for the workers: 3 recipients; 1 already sent",
                     "ko": "queued for the workers: 2 recipients"}
    worker = WorkerThread(smtp_site)
    worker.start()
    assert worker.finish() == 5
    assert set(smtp_server.handler.received()) == everyone - {"reader004@example.org"}
    rows = ledger.get_many([key(i) for i in (1, 2, 5)])
    assert {i: rows[key(i)].detail.get("possible_duplicate", False) for i in (1, 2, 5)} == {1: True, 2: True, 5: False}
    assert {row.state for row in rows.values()} == {"sent"}


def test_two_worker_processes_share_a_queued_bulletin(smtp_site: Site, smtp_server: SmtpServer,
                                                      cli: Callable[..., Result]) -> None:
    """The real ``publisher worker`` processes, with a short lease and batch from the environment."""
    import os
    import re
    import subprocess
    import sys

    everyone = add_subscribers(smtp_site, 40)
    assert cli("publish", ARTICLE, "--channel", "email", "--queue").exit_code == 0
    opened = gate(smtp_server)
    env = {**os.environ, "COLUMNS": "200", "WORKER_LEASE_SECONDS": "2", "WORKER_BATCH_SIZE": "4",
           "WORKER_POLL_SECONDS": "0.1"}
    workers = [subprocess.Popen([sys.executable, "-m", "publisher", "--site", str(smtp_site.root), "worker",
                                 "--until-idle"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for _ in range(2)]
    try:
        wait_for(lambda: len(holders(smtp_site)) == 2, "both worker processes claim a batch")
    finally:
        opened.set()
    owners = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, out + err
        owners.append(re.search(r"Worker (\S+) watching", err).group(1))   # type: ignore[union-attr]
        assert f"sent by this worker ({owners[-1]})" in err, err
    received = smtp_server.handler.received()
    assert set(received) == everyone and set(received.values()) == {1}
    sent_by = [row.worker for row in smtp_site.ledger().rows(article=SLUG, channel="email")]
    assert set(sent_by) == set(owners)   # each sent some; nobody else did


def test_cancelling_the_queued_job_stops_the_workers_and_leaves_the_rest_pending(
        smtp_site: Site, smtp_server: SmtpServer, cli: Callable[..., Result]) -> None:
    add_subscribers(smtp_site, 30)
    assert cli("publish", ARTICLE, "--channel", "email", "--queue").exit_code == 0
    [job] = smtp_site.store().jobs.list(["pending"], kind="send")
    opened = gate(smtp_server)
    # The worker looks the job up once per poll interval: with 0.05 s, a sender that sends the 30 within one
    # interval of its last look (one message per connection claimed ahead, no wait at each batch) never sees
    # the cancel. Poll 0: it looks at every turn of its loop, so the first outcome after the cancel stops it.
    worker = WorkerThread(smtp_site, batch_size=6, poll=0.0)
    worker.start()
    wait_for(lambda: bool(holders(smtp_site)), "the worker claims a batch")
    assert cli("schedule", "cancel", str(job.id)).exit_code == 0
    opened.set()
    sent = worker.finish()
    assert 0 < sent < 30 and len(smtp_server.handler.received()) == sent
    counts = smtp_site.ledger().counts(SLUG, "email", states=["sent", "pending", "in_flight"])
    assert counts == {"sent": sent, "pending": 30 - sent, "in_flight": 0}
    assert [run.outcome for run in worker.runs if run.job.id == job.id] == ["released"]
