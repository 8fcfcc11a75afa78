"""PostgreSQL restarted under a real ``publisher worker`` sending a bulletin to a real aiosmtpd server: the worker
reconnects and finishes the job, nobody is skipped, and a duplicate is only ever a row flagged as a possible
one; a server that stays away stops the worker with one line, and the next worker finishes. PostgreSQL only
(the server of .ci/postgres.sh, which says how to restart it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from publisher.site import Site
from tests.databases import restart_server, server_stopped, server_url
from tests.email.conftest import SmtpServer, add_subscribers

SLUG = "2025-public-service-day"
READERS = 240

pytestmark = [pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
              pytest.mark.parametrize("smtp_server", [{"pipelining": True}], indirect=True)]


def start_worker(site: Site, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--site", str(site.root), "worker", "--poll", "0.2", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})})


def bulletin_job(site: Site) -> Any:
    from publisher.scheduler import schedule_publish

    add_subscribers(site, READERS)
    due = datetime.now(timezone.utc) + timedelta(seconds=1)
    job, _ = schedule_publish(site, [f"content/{SLUG}.en.md", f"content/{SLUG}.ko.md"], due, channels=["email"])
    return job


def wait_for(condition: Any, worker: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.poll() is None, (worker.stderr.read() if worker.stderr else "")
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def ledger_rows(site: Site) -> dict[str, tuple[str, dict[str, Any]]]:
    """address -> (state, detail) of the bulletin's rows, read with a connection of the test's own."""
    import psycopg

    url = os.environ["PUBLISHER_DATABASE_URL"]
    with psycopg.connect(url) as conn:
        return {target: (state, json.loads(detail or "{}")) for target, state, detail in conn.execute(
            "SELECT target, state, detail FROM deliveries WHERE channel = 'email' AND article = %s", (SLUG,))}


def check_everyone_once_or_flagged(site: Site, smtp_server: SmtpServer) -> set[str]:
    received = smtp_server.handler.received()
    everyone = {f"reader{i:03d}@example.org" for i in range(READERS)}
    assert set(received) == everyone                                     # nobody skipped
    rows = ledger_rows(site)
    assert {state for state, _ in rows.values()} == {"sent"} and set(rows) == everyone
    twice = {address for address, count in received.items() if count > 1}
    # A copy sent twice is one a run had in flight when it lost its connection: flagged in its row.
    assert all(rows[address][1].get("possible_duplicate") for address in twice), twice
    assert max(received.values()) <= 2
    return twice


def test_a_postgresql_restart_mid_bulletin_is_survived_by_the_worker(backend: str, smtp_site: Site,
                                                                       smtp_server: SmtpServer) -> None:
    job = bulletin_job(smtp_site)
    smtp_server.handler.delay = 0.01    # a bulletin of a few seconds: the restart lands in its middle
    worker = start_worker(smtp_site, "--until-idle", "--lease", "5")
    wait_for(lambda: sum(smtp_server.handler.received().values()) >= 40, worker, "the worker never got going")
    restart_server("fast")              # every connection dropped; back within about a second
    sent_at_restart = sum(smtp_server.handler.received().values())
    assert sent_at_restart < READERS, "the bulletin was over before the restart: make it longer"
    restart_server("immediate")         # and once more, as a crash would
    out, err = worker.communicate(timeout=180)
    assert worker.returncode == 0, out + err
    assert "Traceback" not in err and "error connecting" not in err   # the pool's own retries stay quiet
    twice = check_everyone_once_or_flagged(smtp_site, smtp_server)
    # At most what was in flight at each of the two losses: SMTP_CONNECTIONS x (2 messages (PIPELINING) + 1
    # claimed ahead).
    assert len(twice) <= 2 * 3 * smtp_server.capacity_per_connection
    done = smtp_site.store().jobs.get(job.id)
    assert done is not None and done.state == "done" and done.attempts == 1   # the same claim, resumed


def test_a_database_that_stays_away_stops_the_worker_with_one_line(backend: str, smtp_site: Site,
                                                                    smtp_server: SmtpServer) -> None:
    job = bulletin_job(smtp_site)
    smtp_server.handler.delay = 0.01
    worker = start_worker(smtp_site, "--until-idle", "--lease", "2",
                          env={"PUBLISHER_DATABASE_RECONNECT_SECONDS": "1"})
    wait_for(lambda: sum(smtp_server.handler.received().values()) >= 40, worker, "the worker never got going")
    with server_stopped("fast"):
        out, err = worker.communicate(timeout=60)   # it gives up while the server is down
    assert worker.returncode == 2, out + err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: postgresql://postgres:***@127.0.0.1:"), err
    assert "could not be reached again within 1 s (PUBLISHER_DATABASE_RECONNECT_SECONDS)" in last
    password = server_url().split(":")[2].split("@")[0]
    assert password not in out + err
    assert sum(smtp_server.handler.received().values()) < READERS

    # The job is still the stopped worker's until its lease runs out; then the next worker takes it over.
    second = start_worker(smtp_site, "--until-idle", "--lease", "2")
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, out + err
    check_everyone_once_or_flagged(smtp_site, smtp_server)
    done = smtp_site.store().jobs.get(job.id)
    assert done is not None and done.state == "done" and done.attempts == 2
