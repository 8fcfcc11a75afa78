"""The delivery ledger and the versioned schema."""

from __future__ import annotations

import sqlite3

from publisher.db import connect, migrations
from publisher.delivery import DeliveryKey
from publisher.ledger import Ledger
from publisher.site import Site


def test_migrations_are_applied_once_and_recorded(site: Site) -> None:
    conn = site.database()
    recorded = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == [version for version, _, _ in migrations()]
    again = connect(site.database_path)  # a second process opening the same database migrates nothing
    assert [row[0] for row in again.execute("SELECT version FROM schema_migrations ORDER BY version")] == recorded
    again.close()


def test_database_url_setting_points_elsewhere(site: Site, tmp_path) -> None:  # noqa: ANN001
    from publisher.config import Config

    other = Site(site.root, Config.from_mapping({"PUBLISHER_DATABASE_URL": f"sqlite:///{tmp_path}/elsewhere.db"}))
    other.ledger().mark(DeliveryKey("a", "en", "feeds", "x"), "sent")
    assert (tmp_path / "elsewhere.db").exists()
    other.close()


def test_begin_then_mark_records_the_life_of_a_delivery(site: Site) -> None:
    ledger = site.ledger()
    key = DeliveryKey("2024-unpsf-incheon", "ko", "x", "ko-account")
    before = ledger.begin(key)
    assert before.state == "pending" and before.attempts == 0
    row = ledger.get(key)
    assert row.state == "in_flight" and row.attempts == 1
    ledger.mark(key, "unconfirmed", error="timeout after 30 s", detail={"parts": ["1"]})
    before = ledger.begin(key)
    assert before.state == "unconfirmed" and before.detail == {"parts": ["1"]}
    ledger.mark(key, "sent", remote_id="123", remote_url="https://x.com/u/status/123")
    row = ledger.get(key)
    assert (row.state, row.remote_id, row.attempts, row.last_error) == ("sent", "123", 2, None)
    assert row.detail == {"parts": ["1"]}  # kept when not given
    ledger.mark(key, "sent")
    assert ledger.get(key).remote_url == "https://x.com/u/status/123"


def test_ensure_pending_is_idempotent_and_rows_stream_in_batches(site: Site) -> None:
    ledger = site.ledger()
    keys = [DeliveryKey("a", "en", "email", f"r{i}@example.org") for i in range(2500)]
    assert ledger.ensure_pending(keys, batch_size=700) == 2500
    assert ledger.ensure_pending(keys, batch_size=700) == 0
    ledger.mark(keys[5], "sent")
    rows = list(ledger.rows(article="a", channel="email", state="pending", batch_size=300))
    assert len(rows) == 2499 and rows[0].key.target == "r0@example.org"
    assert ledger.counts(article="a")["sent"] == 1


def test_states_are_checked_by_the_schema(site: Site) -> None:
    conn = site.database()
    try:
        conn.execute("INSERT INTO deliveries (article, lang, channel, target, state) VALUES ('a','en','x','t','bogus')")
    except sqlite3.IntegrityError:
        pass
    else:  # pragma: no cover
        raise AssertionError("an unknown state was accepted")
    assert isinstance(site.ledger(), Ledger)


def test_many_processes_opening_a_new_database_at_once(tmp_path) -> None:  # noqa: ANN001
    """The switch to WAL needs an exclusive lock that SQLite refuses at once, busy handler or not."""
    import threading

    for round_number in range(40):
        path = tmp_path / f"new-{round_number}.db"
        errors: list[BaseException] = []

        def open_and_close() -> None:
            try:
                connect(path).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_and_close) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
