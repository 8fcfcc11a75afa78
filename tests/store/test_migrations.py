"""The versioned SQLite schema: applied once, recorded as before the move, and the upgrades of old databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from publisher.site import Site
from publisher.store.sqlite import SqliteStore, migrations
from publisher.subscribers import Subscribers


def test_migrations_are_applied_once_and_recorded(site: Site) -> None:
    conn = site.store().connection
    recorded = [tuple(row) for row in conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")]
    assert recorded == [(version, name) for version, name, _ in migrations()]
    assert recorded[:4] == [(1, "0001_ledger"), (2, "0002_translation_memory"), (3, "0003_subscribers"),
                            (4, "0004_web")]   # the names databases made before the store was split recorded
    again = Site(site.root)   # a second process opening the same database migrates nothing
    assert again.store().migrate() == []
    assert [tuple(row) for row in again.store().connection.execute(
        "SELECT version, name FROM schema_migrations ORDER BY version")] == recorded
    again.close()


def old_database(path: Path) -> None:
    """A database as the releases before this store left it: migrations 0001 to 0004 only."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))")
    for version, name, script in migrations()[:4]:
        conn.executescript(script.read_text(encoding="utf-8"))
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
    conn.execute("INSERT INTO subscribers (email, email_key, name, lang, status, themes, created_at, updated_at)"
                 " VALUES ('Kim@Example.kr', 'kim@example.kr', '김', 'ko', 'unsubscribed', 'governance',"
                 " '2024-01-01T00:00:00+00:00', '2024-02-01T00:00:00+00:00')")
    conn.execute("INSERT INTO deliveries (article, lang, channel, target, state) VALUES ('a', 'en', 'x', 't', 'sent')")
    with pytest.raises(sqlite3.IntegrityError):   # what 0005 removes
        conn.execute("INSERT INTO subscribers (email, email_key, lang, created_at, updated_at)"
                     " VALUES ('a@b.fr', 'a@b.fr', 'fr', 'x', 'x')")
    conn.close()


def test_an_old_database_accepts_any_language_and_keeps_its_rows_and_index(tmp_path: Path) -> None:
    path = tmp_path / "publisher.db"
    old_database(path)
    store = SqliteStore(path, state_dir=tmp_path)
    applied = store.migrate()   # and any later migration (other numbers are other features' own)
    assert applied[:2] == ["0005_subscriber_languages", "0006_timestamps_with_offset"]

    kept = store.subscribers.get("kim@example.kr")
    assert kept is not None
    assert (kept.email, kept.name, kept.lang, kept.status, kept.themes) == (
        "Kim@Example.kr", "김", "ko", "unsubscribed", ["governance"])
    indexes = {row[0] for row in store.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "subscribers_status_id" in indexes
    plan = " ".join(row[3] for row in store.connection.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM subscribers WHERE status = 'active' AND id > 0 ORDER BY id"))
    assert "subscribers_status_id" in plan
    # The schema takes a language the site declares; the list refuses one it does not.
    french = Subscribers(store.subscribers, ["en", "ko", "fr"])
    assert french.add("lecteur@example.fr", lang="fr").lang == "fr"
    with pytest.raises(sqlite3.IntegrityError):   # the email key stays unique after the rebuild
        store.connection.execute("INSERT INTO subscribers (email, email_key, lang, created_at, updated_at)"
                                 " VALUES ('KIM@example.kr', 'kim@example.kr', 'ko', 'x', 'x')")
    # Timestamps SQLite wrote with "Z" now carry the offset, as every new one does.
    row = store.connection.execute("SELECT created_at, updated_at FROM deliveries").fetchone()
    assert row[0].endswith("+00:00") and row[1].endswith("+00:00") and "Z" not in row[0] + row[1]
    applied = [r[0] for r in store.connection.execute("SELECT applied_at FROM schema_migrations")]
    assert all(value.endswith("+00:00") for value in applied)
    store.close()


def test_a_failed_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import publisher.store.sqlite as sqlite_store
    from publisher.errors import PublisherError

    folder = tmp_path / "migrations"
    folder.mkdir()
    for _, _, script in migrations()[:4]:
        (folder / script.name).write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "0005_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n", encoding="utf-8")
    monkeypatch.setattr(sqlite_store, "MIGRATIONS_DIR", folder)
    with pytest.raises(PublisherError, match="0005_broken.sql: migration failed"):
        SqliteStore(tmp_path / "db.sqlite", state_dir=tmp_path).migrate()
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    conn.close()
