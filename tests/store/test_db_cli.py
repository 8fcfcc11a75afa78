"""``publisher db status / migrate / copy``: a site's migrations on either database, and moving a SQLite site
into PostgreSQL with nothing lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import Result

from publisher.delivery import DeliveryKey
from publisher.site import Site
from publisher.store import open_store
from publisher.store.postgres import migrations as postgres_migrations
from publisher.store.sqlite import migrations as sqlite_migrations


def test_status_reads_without_creating_and_migrate_applies_on_sqlite(cli: Callable[..., Result],
                                                                    site_dir: Path) -> None:
    result = cli("db", "status")
    assert result.exit_code == 0, result.output
    assert "dialect: sqlite" in result.output and "(not created yet)" in result.output
    assert "pending: " + ", ".join(name for _, name, _ in sqlite_migrations()) in result.output
    assert not (site_dir / ".publisher" / "publisher.db").exists()
    migrated = cli("db", "migrate")
    assert migrated.exit_code == 0 and "applied 0001_ledger" in migrated.output
    state = json.loads(cli("db", "status", "--json").output)
    assert state["dialect"] == "sqlite" and state["pending"] == []
    assert state["version"] == max(v for v, _, _ in sqlite_migrations())
    assert "already up to date" in cli("db", "migrate").output


def test_status_and_migrate_on_postgresql_never_show_the_password(cli: Callable[..., Result],
                                                                  postgres_url: str) -> None:
    from urllib.parse import urlsplit

    password = urlsplit(postgres_url).password
    assert password
    env = {"PUBLISHER_DATABASE_URL": postgres_url}
    before = json.loads(cli("db", "status", "--json", env=env).output)
    assert before["dialect"] == "postgresql" and before["version"] == 0
    assert before["pending"] == [name for _, name, _ in postgres_migrations()]
    assert password not in before["database"] and ":***@" in before["database"]
    migrated = cli("db", "migrate", env=env)
    assert migrated.exit_code == 0 and password not in migrated.output
    assert f"postgresql database at version {max(v for v, _, _ in postgres_migrations())}" in migrated.output
    after = cli("db", "status", env=env)
    assert "pending: none" in after.output and password not in after.output


def fill(site: Site) -> None:
    """A bit of everything the copy must carry: ledger rows in several states, subscribers (one bounced, with its
    bounce history), memory, jobs."""
    ledger = site.ledger()
    ledger.ensure_pending([DeliveryKey("digest", "en", "email", f"r{i}@example.org") for i in range(30)])
    ledger.mark(DeliveryKey("digest", "en", "email", "r0@example.org"), "sent", remote_id="<m0@x>",
                detail={"message_id": "<m0@x>"})
    ledger.mark(DeliveryKey("story", "ko", "feeds", "ko/feed.xml"), "sent", detail={"guid": "urn:1"})
    ledger.mark(DeliveryKey("story", "en", "x", "default"), "unconfirmed", error="timeout")
    subscribers = site.subscribers()
    subscribers.add("reader@example.org", name="Reader", lang="ko")
    subscribers.add("other@example.org", lang="en")
    subscribers.add("gone@example.org", lang="en")
    assert subscribers.mark_bounced("gone@example.org", reason="5.1.1 user unknown", article="digest")
    assert subscribers.store.remember_message("<dsn-1@mx.example.org>", "hard") is None
    site.store().translation_memory.remember("argos:en-ko@1", "en", "ko", {"Hello.": "안녕하세요."})
    jobs = site.store().jobs
    jobs.schedule("publish", "publish:story", {"article": "story"},
                  datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc))
    jobs.schedule("digest", "digest:weekly", {}, datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc))
    claimed = jobs.claim("host:1:a", datetime(2026, 12, 4, 9, 1, tzinfo=timezone.utc), timedelta(seconds=60))
    assert claimed is not None
    site.store().rate_limits.hit("subscribe", "hash", 600)


def test_copy_moves_everything_into_postgresql_and_refuses_a_full_target(
        site: Site, cli: Callable[..., Result], postgres_url: str, tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    fill(site)
    source = site.store()
    result = cli("db", "copy", "--to", postgres_url)
    assert result.exit_code == 0, result.output
    assert urlsplit(postgres_url).password not in result.output
    assert "deliveries: 32 rows" in result.output and "subscribers: 3 rows" in result.output
    assert "bounce_events: 1 rows" in result.output and "bounce_messages: 1 rows" in result.output

    target = open_store(postgres_url, state_dir=tmp_path)
    assert list(target.ledger.rows()) == list(source.ledger.rows())            # every value as it was
    assert list(target.ledger.articles()) == list(source.ledger.articles())
    assert target.ledger.summary() == source.ledger.summary()
    assert list(target.subscribers.iterate()) == list(source.subscribers.iterate())
    assert target.jobs.list() == source.jobs.list()
    assert target.translation_memory.lookup_any_model("en", "ko", ["Hello."]) == {
        "Hello.": ("안녕하세요.", "argos:en-ko@1")}
    assert target.rate_limits.hit("subscribe", "hash", 600) == 2
    gone = target.subscribers.get("gone@example.org")
    assert gone is not None and gone.status == "bounced" and gone.status_reason == "5.1.1 user unknown"
    assert target.subscribers.event_counts(["digest"]) == source.subscribers.event_counts(["digest"]) == {
        "digest": {"hard": 1}}
    assert target.subscribers.remember_message("<dsn-1@mx.example.org>", "soft") == "hard"   # already handled
    target.subscribers.record_event("gone@example.org", "soft")   # the events' ids go on after the copied one
    assert target.subscribers.count_events("gone@example.org", "soft", timedelta(days=1)) == 1
    # New rows continue after the copied ids.
    assert target.subscribers.insert(email="new@example.org", email_key="new@example.org", name=None, lang="en",
                                     status="active", themes=(), confirmed=True)
    assert target.subscribers.position() == source.subscribers.position() + 1
    job, moved = target.jobs.schedule("publish", "publish:new", {}, datetime(2026, 12, 5, tzinfo=timezone.utc))
    assert not moved and job.id > max(j.id for j in source.jobs.list())
    target.close()

    again = cli("db", "copy", "--to", postgres_url)
    assert again.exit_code == 2
    assert again.output.startswith("Error: the target database is not empty (") and "--replace" in again.output
    replaced = cli("db", "copy", "--to", postgres_url, "--replace")
    assert replaced.exit_code == 0, replaced.output
    check = open_store(postgres_url, state_dir=tmp_path)
    assert check.subscribers.count() == 3 and len(check.jobs.list()) == 2
    check.close()


def test_copy_back_from_postgresql_into_a_new_sqlite_file(cli: Callable[..., Result], site_dir: Path,
                                                          postgres_url: str, tmp_path: Path) -> None:
    env = {"PUBLISHER_DATABASE_URL": postgres_url}
    from publisher.config import Config

    site = Site(site_dir, Config.from_mapping({"PUBLISHER_DATABASE_URL": postgres_url}))
    fill(site)
    rows = list(site.ledger().rows())
    site.close()
    result = cli("db", "copy", "--to", f"sqlite:///{tmp_path}/moved.db", env=env)
    assert result.exit_code == 0, result.output
    moved = open_store(f"sqlite:///{tmp_path}/moved.db", state_dir=tmp_path)
    assert list(moved.ledger.rows()) == rows
    moved.close()


def test_a_bad_target_is_one_line(cli: Callable[..., Result]) -> None:
    result = cli("db", "copy", "--to", "mysql://u:secret@h/d")
    assert result.exit_code == 2 and result.output.startswith("Error: --to: expected sqlite:///PATH")
    assert "secret" not in result.output
