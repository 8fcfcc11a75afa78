"""Issue 13's "done when": a bulletin through a real SMTP server (aiosmtpd) with VERP envelope senders, a DSN
(5.1.1) for one reader and an ARF complaint for another in a Maildir, `publisher bounces process --maildir`;
the next bulletin reaches neither, both show their status, and `publisher status` the rates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from publisher.channels.email import EmailChannel
from publisher.site import Site
from tests.bounces.mail import arf, dsn, write_maildir
from tests.conftest import set_settings
from tests.email.conftest import RecordingHandler, controller, free_port, publish, story_for

pytestmark = pytest.mark.both_databases

READERS = ("reader0@example.org", "reader1@example.org", "gone@example.org", "angry@example.org")


@dataclass
class EnvelopeHandler(RecordingHandler):
    """Records each message's MAIL FROM (the envelope sender) as well."""

    senders: dict[str, str] = field(default_factory=dict)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.senders[rcpt.lower()] = envelope.mail_from
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def server() -> Iterator[tuple[str, int, EnvelopeHandler]]:
    handler = EnvelopeHandler()
    port = free_port()
    running = controller(handler, port=port)
    running.start()
    try:
        yield "127.0.0.1", port, handler
    finally:
        running.stop()


@pytest.fixture
def verp_site(site: Site, server: tuple[str, int, EnvelopeHandler]) -> Iterator[Site]:
    host, port, _ = server
    wired = set_settings(site, SMTP_HOST=host, SMTP_PORT=port, SMTP_SECURITY="none", SMTP_CONNECTIONS="2",
                         BULLETIN_FROM="UNPOG News <news@unpog.example>", BOUNCE_ADDRESS="bounces@unpog.example",
                         PUBLISHER_SITE_URL="https://news.unpog.example")
    (wired.root / ".env").write_text("PUBLISHER_SECRET_KEY=test-secret-key-for-signed-links\n", encoding="utf-8")
    wired = Site(wired.root)
    yield wired
    wired.close()


def test_bounced_and_complaining_readers_get_no_more_bulletins(verp_site: Site, server: tuple[str, int, Any],
                                                               cli: Any, tmp_path: Path) -> None:
    handler: EnvelopeHandler = server[2]
    for address in READERS:
        verp_site.subscribers().add(address, lang="en")
    publish(verp_site, story_for(verp_site, "2024-unpsf-incheon"), ["en"], channel=EmailChannel(verp_site))
    assert set(handler.received()) == set(READERS)

    # Each envelope sender is the bounce address with that reader's own token; From (and DKIM's domain) unchanged.
    senders = handler.senders
    assert len(set(senders.values())) == len(READERS)
    assert all(sender.startswith("bounces+") and sender.endswith("@unpog.example") for sender in senders.values())
    assert handler.parsed()["gone@example.org"]["From"] == "UNPOG News <news@unpog.example>"

    box = tmp_path / "bounce-mail"
    # The remote server reports the reader's old address at a forwarder: only VERP names the subscriber...
    bounce = dsn("gone.old@forwarder.example", to=senders["gone@example.org"], status="5.1.1")
    # ...and the feedback loop redacts Original-Rcpt-To: the attached original's Return-Path and To: remain.
    complaint = arf("angry@example.org", return_path=senders["angry@example.org"])
    write_maildir(box, bounce, complaint)
    processed = cli("bounces", "process", "--maildir", str(box))
    assert processed.exit_code == 0, processed.output
    assert "2 messages read: 1 bounces (1 hard, 0 soft), 1 complaints" in processed.output

    handler.messages.clear()
    publish(verp_site, story_for(verp_site, "2025-public-service-day"), ["en"], channel=EmailChannel(verp_site))
    assert set(handler.received()) == {"reader0@example.org", "reader1@example.org"}

    listed = {row["email"]: row for row in map(json.loads, cli("subscribers", "list", "--json").output.splitlines())}
    assert listed["gone@example.org"]["status"] == "bounced"
    assert listed["gone@example.org"]["status_reason"].startswith("5.1.1 550 5.1.1")
    assert listed["angry@example.org"]["status"] == "complained"
    assert listed["angry@example.org"]["status_reason"] == "spam complaint (abuse) via unpog.example"
    assert listed["reader0@example.org"]["status"] == "active"

    # Both are counted against the bulletin that caused them.
    assert verp_site.store().subscribers.event_counts(["2024-unpsf-incheon"]) == \
        {"2024-unpsf-incheon": {"hard": 1, "complaint": 1}}
