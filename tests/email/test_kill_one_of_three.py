"""Three real ``publisher worker`` processes share one queued bulletin (``publish --queue``) to a real aiosmtpd
server; one is killed with SIGKILL mid-bulletin. The other two finish it: nobody is skipped, and the only
recipients who get it twice are among the rows the killed worker had in flight (its claimed batch), each
flagged as a possible duplicate. Short leases and polls come from the environment, so it takes seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from publisher.site import Site
from tests.databases import execute
from tests.email.conftest import SmtpServer, add_subscribers

pytestmark = [pytest.mark.both_databases, pytest.mark.parametrize("smtp_server", [{"pipelining": True}],
                                                                  indirect=True)]

SLUG = "2025-public-service-day"
READERS = 150
BATCH = 10
FAST = {"WORKER_LEASE_SECONDS": "2", "WORKER_POLL_SECONDS": "0.1", "WORKER_BATCH_SIZE": str(BATCH)}


def start_worker(site: Site) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "publisher", "--site", str(site.root), "worker", "--until-idle"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200", **FAST})


def rows(site: Site) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(target, state, worker, detail) of every row of the bulletin, read fresh."""
    found = execute(site.store(), "SELECT target, state, worker, detail FROM deliveries WHERE channel = 'email'"
                                  " AND article = ?", (SLUG,)).fetchall()
    return [(row[0], row[1], row[2] or "", json.loads(row[3] or "{}")) for row in found]


def wait_for(condition: Callable[[], bool], workers: list[subprocess.Popen[str]], what: str) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        for worker in workers:
            assert worker.poll() is None, (worker.stderr.read() if worker.stderr else "")
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def test_kill_9_of_one_of_three_workers_mid_bulletin(smtp_site: Site, smtp_server: SmtpServer) -> None:
    everyone = add_subscribers(smtp_site, READERS)
    queued = subprocess.run([sys.executable, "-m", "publisher", "--site", str(smtp_site.root), "publish",
                             f"content/{SLUG}.en.md", f"content/{SLUG}.ko.md", "--channel", "email", "--queue"],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **FAST})
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert smtp_server.handler.received() == {}            # queued, not sent

    smtp_server.handler.delay = 0.01                        # a bulletin of a few seconds between three workers
    workers = [start_worker(smtp_site) for _ in range(3)]
    victim = workers[1]
    mark = f":{victim.pid}:"

    def victim_is_sending() -> bool:
        mine = [(state, worker) for _, state, worker, _ in rows(smtp_site) if mark in worker]
        return any(state == "sent" for state, _ in mine) and any(state == "in_flight" for state, _ in mine)

    wait_for(victim_is_sending, workers, "the second worker never got a batch in flight")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    in_flight = {target for target, state, worker, _ in rows(smtp_site) if mark in worker and state == "in_flight"}
    # Its claimed batch, and what its connections still had of the batch before (claimed as the last of it went
    # out): SMTP_CONNECTIONS=3 x (2 messages each with PIPELINING + 1 claimed ahead).
    assert 0 < len(in_flight) <= BATCH + 3 * smtp_server.capacity_per_connection
    assert sum(smtp_server.handler.received().values()) < READERS, "the bulletin was over before the kill"

    for worker in (workers[0], workers[2]):
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, out + err
        assert "Traceback" not in err

    received = smtp_server.handler.received()
    assert set(received) == everyone                                         # nobody skipped
    final = {target: (state, worker, detail) for target, state, worker, detail in rows(smtp_site)}
    assert set(final) == everyone and {state for state, _, _ in final.values()} == {"sent"}
    twice = {address for address, count in received.items() if count > 1}
    assert twice <= in_flight and max(received.values()) <= 2   # only what the killed worker had in flight
    for address in in_flight:                   # taken over by a live worker, flagged
        state, worker, detail = final[address]
        assert mark not in worker and detail.get("possible_duplicate"), (address, worker, detail)
    # Every row names the worker that sent it: one of the three (the killed one for what it had marked sent).
    pids = {f":{worker.pid}:" for worker in workers}
    assert all(any(pid in worker for pid in pids) for _, worker, _ in final.values())
