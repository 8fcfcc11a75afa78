"""kill -9 the real `publisher bulletin` part-way through, run it again, count deliveries per recipient."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from email import policy

import pytest

from publisher.site import Site
from tests.email.conftest import SmtpServer

pytestmark = pytest.mark.both_databases

SUBSCRIBERS = 120
CONNECTIONS = 3   # smtp_site sets SMTP_CONNECTIONS=3; with PIPELINING each carries 2 messages at once


def run_bulletin(site: Site) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "publisher", "--site", str(site.root), "bulletin", "--since", "2024-01-01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.parametrize("kill_after", [5, 50])
def test_kill_9_then_rerun_reaches_everyone_and_duplicates_at_most_the_in_flight(
    smtp_site: Site, smtp_server: SmtpServer, kill_after: int
) -> None:
    subscribers = smtp_site.subscribers()
    with smtp_site.store().transaction():
        for i in range(SUBSCRIBERS):
            subscribers.add(f"reader{i:03d}@example.org", lang="ko" if i % 3 == 0 else "en")
    everyone = {f"reader{i:03d}@example.org" for i in range(SUBSCRIBERS)}
    in_flight = CONNECTIONS * smtp_server.capacity_per_connection
    handler = smtp_server.handler
    handler.delay = 0.01          # slow enough to stop the sender in the middle

    first = run_bulletin(smtp_site)
    deadline = time.monotonic() + 60
    while sum(handler.received().values()) < kill_after:
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        assert time.monotonic() < deadline, "the sender never got going"
        time.sleep(0.002)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL

    # Ledger first, server second: "sent" is only ever written after the server accepted.
    states = dict(smtp_site.store().connection.execute(
        "SELECT state, count(*) FROM deliveries WHERE channel = 'email' GROUP BY state").fetchall())
    assert states.get("in_flight", 0) <= in_flight
    sent_before = {row[0] for row in smtp_site.store().connection.execute(
        "SELECT target FROM deliveries WHERE state = 'sent'")}
    delivered_before = handler.received()
    assert 0 < sum(delivered_before.values()) < SUBSCRIBERS
    assert sent_before <= set(delivered_before)

    handler.delay = 0.0
    second = run_bulletin(smtp_site)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, out + err

    received = handler.received()
    assert set(received) == everyone                           # nobody skipped
    assert all(received[a] == 1 for a in sent_before)         # nobody marked sent got it again
    twice = {address for address, count in received.items() if count > 1}
    assert max(received.values()) <= 2
    assert len(twice) <= in_flight                             # at most the ones in flight at the kill
    flagged = {row.key.target for row in smtp_site.ledger().rows(channel="email")
               if row.detail.get("possible_duplicate")}
    assert twice <= flagged                                    # every duplicate was reported as possible
    for address in twice:                                      # ...and carries the first copy's Message-ID
        ids = {email.message_from_bytes(data, policy=policy.default)["Message-ID"]
               for rcpts, data in handler.messages if address in rcpts}
        assert len(ids) == 1, (address, ids)
    if flagged:
        assert f"{len(flagged)} subscribers were being sent this digest when an earlier run stopped" in err
    states = dict(smtp_site.store().connection.execute(
        "SELECT state, count(*) FROM deliveries WHERE channel = 'email' GROUP BY state").fetchall())
    assert states == {"sent": SUBSCRIBERS}

    # A third run has nothing left to do.
    third = run_bulletin(smtp_site)
    third.communicate(timeout=120)
    assert third.returncode == 0
    assert handler.received() == received


def test_a_second_run_while_the_first_is_sending_stops_instead_of_sending_twice(smtp_site: Site,
                                                                               smtp_server: SmtpServer) -> None:
    # Without the lock the second run finds the first one's rows pending or in flight and sends them too.
    subscribers = smtp_site.subscribers()
    with smtp_site.store().transaction():
        for i in range(40):
            subscribers.add(f"reader{i:03d}@example.org", lang="en")
    handler = smtp_server.handler
    handler.delay = 0.01

    first = run_bulletin(smtp_site)
    deadline = time.monotonic() + 60
    while sum(handler.received().values()) < 3:
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        assert time.monotonic() < deadline, "the sender never got going"
        time.sleep(0.002)
    handler.delay = 0.5           # the first run crawls (7 s left) while the second one starts and stops
    second = run_bulletin(smtp_site)
    out, err = second.communicate(timeout=60)
    assert first.poll() is None, "the first run ended before the second one was tried"
    handler.delay = 0.0
    assert second.returncode == 2, out + err
    assert err.strip() == ("Error: email: another run is sending digest-2024-01-01 right now; run this again when "
                           "it has finished (it sends only to those still waiting)")

    first.communicate(timeout=120)
    assert first.returncode == 0
    received = handler.received()
    assert len(received) == 40 and set(received.values()) == {1}
