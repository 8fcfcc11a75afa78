"""The in-run guard: too many hard bounces stop a bulletin run, the rest left pending for after the cleaning;
and `publisher status` shows each bulletin's bounce and complaint rates."""

from __future__ import annotations

from typing import Any

import pytest

from publisher.bounces.guard import BounceGuard
from publisher.site import Site
from tests.conftest import set_settings
from tests.email.conftest import SmtpServer, publish, smtp_server, smtp_site, story_for  # noqa: F401 - fixtures

pytestmark = pytest.mark.both_databases

DEAD = [f"dead{n}@example.org" for n in range(6)]
ALIVE = [f"reader{n}@example.org" for n in range(14)]


def test_the_guard_waits_for_its_sample_then_trips_once() -> None:
    guard = BounceGuard(rate=5.0, after=500)
    for _ in range(30):
        guard.count(sent=False, bounced=True)
    assert guard.tripped is None and guard.done == 30       # too few to judge
    for _ in range(469):
        guard.count(sent=True, bounced=False)
    assert guard.tripped is None                              # 30 of 499: not judged before the 500th
    guard.count(sent=True, bounced=False)
    assert guard.tripped is not None and "30 of 500 messages (6.0%)" in guard.tripped
    guard.count(sent=False, bounced=False)                    # a deferral is not the list's fault
    assert guard.done == 500
    assert BounceGuard(rate=0, after=1).tripped is None


def test_a_run_over_the_bounce_rate_stops_with_the_rest_pending(smtp_site: Site, smtp_server: SmtpServer) -> None:
    site = set_settings(smtp_site, BOUNCE_GUARD_RATE="20", BOUNCE_GUARD_AFTER="5")
    for address in DEAD + ALIVE:   # the dead addresses first: an old import gone bad
        site.subscribers().add(address, lang="en")
    smtp_server.handler.refuse_rcpt.update({a: "550 5.1.1 <%s>: no such user" % a for a in DEAD})
    story = story_for(site, "2024-unpsf-incheon")

    reports = publish(site, story, ["en"])

    [stopped] = [r for r in reports if r.state == "stopped"]
    assert "BOUNCE_GUARD_RATE=20%" in stopped.note and "\n" not in stopped.note
    counts = site.ledger().counts(article="2024-unpsf-incheon", channel="email")
    assert counts["pending"] > 0 and counts["in_flight"] == 0
    assert counts["failed"] == sum(1 for a in DEAD if site.subscribers().get(a).status == "bounced")
    assert counts["sent"] + counts["failed"] + counts["pending"] == len(DEAD) + len(ALIVE)

    # The list cleaned (the refused addresses are suppressed), the next run sends to those still waiting.
    site = set_settings(site, BOUNCE_GUARD_RATE="0")
    smtp_server.handler.messages.clear()
    publish(site, story, ["en"])
    after = site.ledger().counts(article="2024-unpsf-incheon", channel="email")
    assert after["pending"] == 0
    assert set(smtp_server.handler.received()) <= set(ALIVE)
    site.close()


def test_status_shows_each_bulletins_bounce_and_complaint_rates(smtp_site: Site, smtp_server: SmtpServer,
                                                                cli: Any) -> None:
    site = smtp_site
    for address in ["gone@example.org", *ALIVE[:3]]:
        site.subscribers().add(address, lang="en")
    smtp_server.handler.refuse_rcpt["gone@example.org"] = "550 5.1.1 no such user"
    publish(site, story_for(site, "2024-unpsf-incheon"), ["en"])
    site.subscribers().complain(ALIVE[0], reason="abuse", article="2024-unpsf-incheon")

    shown = cli("status", env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Email bulletins: bounces and complaints" in shown.output
    [line] = [line for line in shown.output.splitlines() if "2024-unpsf-incheon" in line and "%" in line]
    assert "1 (25.0%)" in line            # 1 hard bounce of 4 messages
    assert "1 (33.33%) (over the limit)" in line   # 1 complaint of 3 delivered
