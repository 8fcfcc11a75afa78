"""`publisher bounces process --maildir`: each message acted on once, the unclassified kept, bad input counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.bounces.process import process
from publisher.bounces.sources import MaildirSource
from publisher.bounces.verp import Verp
from publisher.site import Site
from tests.bounces.mail import arf, crlf, dsn, exim_bounce, out_of_office, write_maildir
from tests.conftest import set_settings

pytestmark = pytest.mark.both_databases


def source(site: Site, folder: Path) -> MaildirSource:
    return MaildirSource(folder, site.state_dir / "bounces" / "unclassified")


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_bounces_and_complaints_act_once_and_the_rest_suppresses_nobody(site: Site, tmp_path: Path) -> None:
    subscribers = site.subscribers()
    for address in ("gone@example.org", "angry@example.org", "away@example.org", "slow@example.org",
                    "exim@example.org"):
        subscribers.add(address)
    box = tmp_path / "bounces"
    write_maildir(box, dsn("gone@example.org"), arf("angry@example.org", rcpt_to="angry@example.org"),
                  out_of_office("away@example.org"),
                  dsn("slow@example.org", action="delayed", status="4.4.1", message_id="<d2@mx>"),
                  exim_bounce("exim@example.org"), crlf("Message-ID: <q@x>\nSubject: a question\n\nHello?\n"),
                  dsn("gone@example.org"))   # the same report delivered twice

    tally = process(site, source(site, box))

    assert (tally.kinds["bounce"], tally.kinds["complaint"], tally.kinds["auto_reply"], tally.kinds["delayed"],
            tally.kinds["unclassified"], tally.duplicates) == (2, 1, 1, 1, 1, 1)
    assert tally.suppressed == 3 and tally.hard == 2
    status = {s.email: s.status for s in subscribers.iter_all()}
    assert status == {"gone@example.org": "bounced", "angry@example.org": "complained", "away@example.org": "active",
                      "slow@example.org": "active", "exim@example.org": "bounced"}
    assert subscribers.get("angry@example.org").status_reason == "spam complaint (abuse) via unpog.example"
    # Handled messages are marked read; the unclassified one is kept, moved, and named in one line.
    assert files(box / "new") == []
    assert all(name.endswith(":2,S") for name in files(box / "cur")) and len(files(box / "cur")) == 6
    assert len(files(site.state_dir / "bounces" / "unclassified" / "new")) == 1
    [note] = [n for n in tally.notes if "unclassified" in n]
    assert "a question" in note and "\n" not in note

    # The same message delivered again later changes nothing, even after the address came back.
    subscribers.unsuppress("gone@example.org", reason="mailbox restored")
    write_maildir(box, dsn("gone@example.org"))
    again = process(site, source(site, box))
    assert again.duplicates == 1 and subscribers.get("gone@example.org").status == "active"


def test_a_soft_bounce_counts_and_suppresses_at_the_limit(site: Site, tmp_path: Path) -> None:
    site = set_settings(site, BOUNCE_SOFT_LIMIT="2", BOUNCE_SOFT_DAYS="30")
    site.subscribers().add("full@example.org")
    box = tmp_path / "bounces"
    write_maildir(box, dsn("full@example.org", status="4.2.2", message_id="<s1@mx>",
                           diagnostic="smtp; 452 4.2.2 Mailbox full"))
    assert process(site, source(site, box)).soft == 1
    assert site.subscribers().get("full@example.org").status == "active"
    write_maildir(box, dsn("full@example.org", status="4.2.2", message_id="<s2@mx>",
                           diagnostic="smtp; 452 4.2.2 Mailbox full"))
    assert process(site, source(site, box)).suppressed == 1
    full = site.subscribers().get("full@example.org")
    assert full.status == "suppressed" and full.status_reason.startswith("2 soft bounces in 30 days; last: 4.2.2")
    site.close()


def test_verp_names_the_reader_when_the_report_does_not(site: Site, tmp_path: Path) -> None:
    site = set_settings(site, BOUNCE_ADDRESS="bounces@unpog.example")
    subscribers = site.subscribers()
    reader = subscribers.add("reader@example.org")
    verp = Verp.from_config(site)
    assert verp is not None and reader.id is not None
    envelope = verp.address(reader.id, reader.email)
    box = tmp_path / "bounces"
    # Forwarded mail: the report names the address it was forwarded to, only the VERP address names the reader.
    write_maildir(box, dsn("reader.forward@elsewhere.example", to=envelope),
                  arf("undisclosed-recipients:;", return_path=envelope, message_id="<fbl-2@x>"))
    tally = process(site, source(site, box))
    assert (tally.unknown, tally.untrusted, tally.hard, tally.kinds["complaint"]) == (0, 0, 1, 1)
    assert subscribers.get("reader@example.org").status == "complained"   # the complaint outranks the bounce
    site.close()


def test_a_forged_token_or_one_for_an_erased_subscriber_changes_nothing(site: Site, tmp_path: Path) -> None:
    site = set_settings(site, BOUNCE_ADDRESS="bounces@unpog.example")
    subscribers = site.subscribers()
    erased = subscribers.add("erased@example.org")
    kept = subscribers.add("kept@example.org")
    verp = Verp.from_config(site)
    assert verp is not None and erased.id is not None and kept.id is not None
    for_erased = verp.address(erased.id, erased.email)
    subscribers.remove("erased@example.org")
    forged = verp.address(kept.id, kept.email).split("@")[0][:-12] + "zzzzzzzzzzzz@unpog.example"
    box = tmp_path / "bounces"
    write_maildir(box, dsn("someone@elsewhere.example", to=for_erased, message_id="<e1@mx>"),
                  dsn("someone@elsewhere.example", to=forged, message_id="<e2@mx>"))
    tally = process(site, source(site, box))
    assert (tally.untrusted, tally.unknown, tally.suppressed) == (2, 2, 0)
    assert subscribers.get("kept@example.org").status == "active"
    assert all("\n" not in note for note in tally.notes)
    site.close()


def test_the_command_prints_counts_and_refuses_bad_sources(cli, site_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("subscribers", "add", "gone@example.org").exit_code == 0
    box = tmp_path / "bounces"
    write_maildir(box, dsn("gone@example.org"), b"\x00 not mail")
    result = cli("bounces", "process", "--maildir", str(box))
    assert result.exit_code == 0, result.output
    assert "2 messages read: 1 bounces (1 hard, 0 soft)" in result.output
    assert "1 unclassified (kept)" in result.output and "1 addresses suppressed" in result.output

    missing = cli("bounces", "process", "--maildir", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "not a Maildir" in missing.output and "Traceback" not in missing.output
    both = cli("bounces", "process", "--maildir", str(box), "--pop3")
    assert both.exit_code == 2 and "give one of" in both.output
    unset = cli("bounces", "process")
    assert unset.exit_code == 2 and "no bounce mailbox" in unset.output
    imap = cli("bounces", "process", "--imap")
    assert imap.exit_code == 2 and "BOUNCE_IMAP_HOST: is not set" in imap.output
