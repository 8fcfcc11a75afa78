"""The suppression list (issue 13, item 4): who is never mailed again, and the one way back."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.site import Site
from publisher.store.sqlite import SqliteStore
from tests.databases import open_test_store

pytestmark = pytest.mark.both_databases


def test_a_hard_bounce_suppresses_at_once_with_its_reason(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("gone@example.org")
    assert subscribers.mark_bounced("gone@example.org", reason="5.1.1 user unknown", article="a-story")
    gone = subscribers.get("gone@example.org")
    assert gone.status == "bounced" and gone.suppressed
    assert gone.status_reason == "5.1.1 user unknown" and gone.status_at is not None
    assert [s.email for s in subscribers.iter_active()] == []
    assert not subscribers.mark_bounced("gone@example.org", reason="again")   # no change the second time


def test_soft_bounces_suppress_after_the_limit_within_the_window(site_dir: Path) -> None:
    now = [datetime(2026, 12, 1, tzinfo=timezone.utc)]
    store = open_test_store(site_dir / ".publisher", clock=lambda: now[0])
    from publisher.subscribers import Subscribers

    subscribers = Subscribers(store.subscribers, ["en", "ko"])
    subscribers.add("full@example.org")
    assert not subscribers.soft_bounce("full@example.org", reason="4.2.2 mailbox full", limit=3, days=30)
    now[0] += timedelta(days=40)   # the first one has left the window
    assert not subscribers.soft_bounce("full@example.org", reason="4.2.2 mailbox full", limit=3, days=30)
    now[0] += timedelta(days=1)
    assert not subscribers.soft_bounce("full@example.org", reason="4.2.2 mailbox full", limit=3, days=30)
    assert subscribers.get("full@example.org").status == "active"
    now[0] += timedelta(days=1)
    assert subscribers.soft_bounce("full@example.org", reason="4.2.2 mailbox full", limit=3, days=30)
    full = subscribers.get("full@example.org")
    assert full.status == "suppressed"
    assert full.status_reason == "3 soft bounces in 30 days; last: 4.2.2 mailbox full"

    # Back on the list by decision: the soft bounces before it no longer count.
    assert subscribers.unsuppress("full@example.org", reason="mailbox emptied").status == "active"
    assert not subscribers.soft_bounce("full@example.org", reason="4.2.2 mailbox full", limit=3, days=30)
    assert subscribers.get("full@example.org").status == "active"
    store.close()


def test_a_complaint_unsubscribes_and_suppresses_and_outranks_a_bounce(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("angry@example.org")
    assert subscribers.complain("angry@example.org", reason="abuse report (ARF) from example.org")
    assert subscribers.get("angry@example.org").status == "complained"
    assert not subscribers.mark_bounced("angry@example.org", reason="5.1.1")   # stays complained
    assert not subscribers.unsubscribe("angry@example.org")                   # stays suppressed
    assert subscribers.get("angry@example.org").status == "complained"


def test_neither_add_nor_import_nor_a_new_request_brings_back_a_suppressed_address(site: Site, tmp_path: Path) -> None:
    subscribers = site.subscribers()
    subscribers.add("Gone@example.org")
    subscribers.mark_bounced("gone@example.org", reason="5.1.1 user unknown")

    assert subscribers.add("GONE@example.org", status="active").status == "bounced"
    rows = tmp_path / "list.csv"
    rows.write_text("email,name\ngone@EXAMPLE.org,Gone\nnew@example.org,New\n", encoding="utf-8")
    report = subscribers.import_csv(rows)
    assert (report.added, report.already_present) == (1, 1)
    assert subscribers.get("gone@example.org").status == "bounced"
    assert subscribers.request_again("gone@example.org").status == "bounced"
    assert subscribers.confirm("gone@example.org").status == "bounced"


def test_unsuppress_needs_a_reason_and_a_suppressed_address(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("reader@example.org")
    with pytest.raises(InputError, match="is active, not suppressed"):
        subscribers.unsuppress("reader@example.org", reason="why not")
    subscribers.suppress("reader@example.org", reason="the ESP suppressed it")
    with pytest.raises(InputError, match="--reason: is empty"):
        subscribers.unsuppress("reader@example.org", reason="  ")
    back = subscribers.unsuppress("reader@example.org", reason="asked by phone, 2026-12-02")
    assert back.status == "active" and back.status_reason == "unsuppressed: asked by phone, 2026-12-02"


def test_erasing_an_address_erases_its_bounce_history(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("gone@example.org")
    subscribers.mark_bounced("gone@example.org", reason="5.1.1", article="a-story")
    assert site.store().subscribers.event_counts(["a-story"]) == {"a-story": {"hard": 1}}
    assert subscribers.remove("gone@example.org")
    assert site.store().subscribers.event_counts(["a-story"]) == {}


def test_the_commands_show_export_and_undo_the_suppression(cli, site_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("subscribers", "add", "gone@example.org").exit_code == 0
    assert cli("subscribers", "add", "reader@example.org").exit_code == 0
    suppressed = cli("subscribers", "suppress", "gone@example.org", "--reason", "ESP suppression list")
    assert suppressed.exit_code == 0, suppressed.output
    assert "gone@example.org: suppressed (ESP suppression list)." in suppressed.output

    again = cli("subscribers", "add", "gone@example.org")
    assert again.exit_code == 0 and "is on the suppression list (suppressed: ESP suppression list)" in again.output

    listed = cli("subscribers", "list", "--json")
    rows = {row["email"]: row for row in map(json.loads, listed.output.splitlines())}
    assert rows["gone@example.org"]["status"] == "suppressed"
    assert rows["gone@example.org"]["status_reason"] == "ESP suppression list"
    table = cli("subscribers", "list", "--status", "suppressed", env={"COLUMNS": "200"})
    assert "ESP suppression list" in table.output and "reader@example.org" not in table.output

    exported = cli("subscribers", "export", "--suppressed")
    lines = list(csv.reader(io.StringIO(exported.output)))
    assert lines[0] == ["email", "status", "reason", "since"]
    assert [line[:3] for line in lines[1:]] == [["gone@example.org", "suppressed", "ESP suppression list"]]
    assert cli("subscribers", "export", "--suppressed", "--status", "active").exit_code == 2

    refused = cli("subscribers", "unsuppress", "gone@example.org")
    assert refused.exit_code == 2 and "--reason" in refused.output
    back = cli("subscribers", "unsuppress", "gone@example.org", "--reason", "confirmed by phone")
    assert back.exit_code == 0 and "gone@example.org is active again" in back.output
    assert cli("subscribers", "unsuppress", "reader@example.org", "--reason", "x").exit_code == 2


@pytest.mark.sqlite_only   # the SQLite rebuild of the table; PostgreSQL's ALTER is the test below
def test_an_old_database_keeps_its_bounced_addresses_through_the_rebuild(site_dir: Path) -> None:
    import sqlite3

    from publisher.store import sqlite as store_sqlite

    path = site_dir / ".publisher" / "old.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL)")
    for version, name, script in store_sqlite.migrations():
        if version >= 40:
            break
        for statement in store_sqlite._statements(script.read_text(encoding="utf-8")):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00.000+00:00')", (version, name))
    conn.execute("INSERT INTO subscribers (email, email_key, lang, status, created_at, updated_at)"
                 " VALUES ('b@example.org', 'b@example.org', 'en', 'bounced', '2026-01-01T00:00:00.000+00:00',"
                 " '2026-01-02T00:00:00.000+00:00')")
    conn.close()
    store = SqliteStore(path, state_dir=path.parent)
    bounced = store.subscribers.get("b@example.org")
    assert bounced is not None and bounced.status == "bounced"
    assert bounced.status_reason == "refused at RCPT TO"
    assert bounced.status_at == datetime(2026, 1, 2, tzinfo=timezone.utc)
    store.close()


@pytest.mark.sqlite_only   # needs no site database: it makes its own schema on the test server
def test_an_old_postgresql_database_keeps_its_bounced_addresses_through_the_alter(postgres_url: str,
                                                                                  tmp_path: Path) -> None:
    import psycopg

    from publisher.store import open_store
    from publisher.store import postgres as store_postgres

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at TEXT NOT NULL)")
        for version, name, script in store_postgres.migrations():
            if version >= 40:
                break
            conn.execute(script.read_text(encoding="utf-8").encode("utf-8"))
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, '2026-01-01T00:00:00.000+00:00')",
                         (version, name))
        conn.execute("INSERT INTO subscribers (email, email_key, lang, status, created_at, updated_at) VALUES"
                     " ('b@example.org', 'b@example.org', 'en', 'bounced', '2026-01-01T00:00:00.000+00:00',"
                     " '2026-01-02T00:00:00.000+00:00'), ('a@example.org', 'a@example.org', 'en', 'active',"
                     " '2026-01-01T00:00:00.000+00:00', '2026-01-01T00:00:00.000+00:00')")
    store = open_store(postgres_url, state_dir=tmp_path)
    applied = store.migrate()   # 0040, then any later migration
    assert applied[0] == "0040_suppression" and all(name > "0040" for name in applied)
    bounced = store.subscribers.get("b@example.org")
    assert bounced is not None and bounced.status == "bounced"
    assert bounced.status_reason == "refused at RCPT TO"
    assert bounced.status_at == datetime(2026, 1, 2, tzinfo=timezone.utc)
    active = store.subscribers.get("a@example.org")
    assert active is not None and active.status_reason is None and active.status_at is None
    # The new statuses pass the altered CHECK; anything else still does not.
    assert store.subscribers.set_status("a@example.org", "complained", "spam complaint")
    with pytest.raises(psycopg.errors.CheckViolation, match="subscribers_status_check"):
        store.subscribers.set_status("a@example.org", "gone", None)
    store.close()


@pytest.mark.sqlite_only   # needs no site database: two stores share a schema of the test server
def test_two_soft_bounces_of_one_address_at_once_on_postgresql_count_each_other(postgres_url: str,
                                                                                tmp_path: Path) -> None:
    import threading
    import time

    import psycopg

    from publisher.store import open_store
    from publisher.subscribers import Subscribers

    first, second = open_store(postgres_url, state_dir=tmp_path), open_store(postgres_url, state_dir=tmp_path)
    Subscribers(first.subscribers, ["en"]).add("full@example.org")
    outcome: list[bool | BaseException] = []

    def bounce_again() -> None:
        try:
            outcome.append(Subscribers(second.subscribers, ["en"]).soft_bounce(
                "full@example.org", reason="4.2.2 mailbox full", limit=2, days=30))
        except BaseException as exc:   # noqa: BLE001 - reported by the assertion below
            outcome.append(exc)

    with first.transaction():   # the first bounce, recorded and not yet committed
        first.subscribers.record_event("full@example.org", "soft", reason="4.2.2 mailbox full")
        assert first.subscribers.count_events("full@example.org", "soft", timedelta(days=30)) == 1
        other = threading.Thread(target=bounce_again)
        other.start()
        # The second waits for the row the first locked (not yet counting without it).
        with psycopg.connect(postgres_url, autocommit=True) as watch:
            deadline = time.monotonic() + 30
            while not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                    " AND query LIKE '%%FOR UPDATE%%'").fetchone()[0]:
                assert time.monotonic() < deadline and other.is_alive(), outcome
                time.sleep(0.01)   # waiting for the other thread to block, not for time to pass
        assert outcome == []
    other.join(timeout=30)
    assert outcome == [True]   # it counted the first: 2 soft bounces, the limit
    full = first.subscribers.get("full@example.org")
    assert full is not None and full.status == "suppressed"
    first.close()
    second.close()
