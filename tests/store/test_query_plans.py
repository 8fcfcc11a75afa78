"""Ledger reads that scale: every statement the ledger runs uses an index that fits it, never a full scan of
``deliveries`` nor a sort (``EXPLAIN QUERY PLAN``), on an empty ledger and on an analysed, filled one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from publisher.delivery import STATES, DeliveryKey
from publisher.store.sqlite import SqliteLedger, SqliteStore


def problems(plans: dict[str, list[str]]) -> list[str]:
    """Each plan step that reads the whole table or sorts, named by its statement."""
    return [f"{name}: {step}" for name, steps in plans.items() for step in steps
            if step.startswith("SCAN deliveries") or "TEMP B-TREE" in step]


def fill(ledger: SqliteLedger) -> None:
    """A ledger of many articles, channels, languages and states, with statistics (ANALYZE), so the planner
    has every reason to prefer a scan if an index did not fit."""
    keys = [DeliveryKey(f"story-{n}", lang, channel, f"target-{t}")
            for n in range(60) for lang in ("en", "ko") for channel in ("email", "feeds", "x")
            for t in range(4 if channel == "email" else 1)]
    ledger.ensure_pending(keys)
    ledger.mark_many([(key, STATES[n % len(STATES)], None, None, None, {"guid": str(n)} if n % 3 else None)
                      for n, key in enumerate(keys)])
    ledger.conn.execute("ANALYZE")


def test_the_plan_check_sees_a_scan_and_a_sort() -> None:
    # the check itself: a real scan and a real sort are caught
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, article TEXT, state TEXT)")
    conn.execute("CREATE INDEX deliveries_state ON deliveries (state)")
    plan = {"scan": [r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM deliveries WHERE article = 'a'")],
            "sort": [r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM deliveries WHERE state IN ('a', 'b') ORDER BY id")]}
    assert [p.split(":")[0] for p in problems(plan)] == ["scan", "sort"]


@pytest.mark.parametrize("filled", [False, True], ids=["empty", "filled"])
def test_every_ledger_query_uses_an_index_without_sorting(tmp_path: Path, filled: bool) -> None:
    store = SqliteStore(tmp_path / "db.sqlite", state_dir=tmp_path)
    if filled:
        fill(store.ledger)
    plans = store.ledger.query_plans()
    assert {"get", "get_many", "begin", "begin_many", "mark", "mark_many", "ensure_pending", "published",
            "first_details", "articles", "published_versions", "version_details", "channel_fingerprint"} <= set(plans)
    assert {name.split()[0] for name in plans} >= {"rows", "counts", "summary"}
    assert problems(plans) == []


def test_every_statement_the_ledger_really_runs_is_planned_without_scan_or_sort(tmp_path: Path) -> None:
    """Not only the statements ``query_plans`` names: every one the methods send, traced as SQLite runs them."""
    store = SqliteStore(tmp_path / "db.sqlite", state_dir=tmp_path)
    ledger = store.ledger
    fill(ledger)
    traced: list[str] = []
    ledger.conn.set_trace_callback(traced.append)
    key = DeliveryKey("story-1", "en", "x", "target-0")
    other = DeliveryKey("story-2", "ko", "email", "target-3")
    ledger.get(key)
    ledger.get_many([key, other])
    ledger.begin(DeliveryKey("new", "en", "x", "t"))
    ledger.begin_many([key, other])
    ledger.mark(key, "sent", remote_id="1", detail={"a": 1})
    ledger.mark_many([(other, "failed", None, None, "boom", None)])
    ledger.ensure_pending([DeliveryKey("newer", "en", "x", "t")])
    for article in ("story-1", None):
        for channel in ("email", None):
            for lang in ("ko", None):
                for state in ("sent", ("failed", "unconfirmed", "in_flight"), None):
                    list(ledger.rows(article=article, channel=channel, state=state, lang=lang, batch_size=3))
                ledger.counts(article=article, channel=channel, lang=lang)
                ledger.counts(article=article, channel=channel, lang=lang, states=("failed", "in_flight"))
            ledger.summary(article=article, channel=channel)
    list(ledger.articles(5))
    ledger.published("feeds")
    ledger.first_details("feeds")
    ledger.published_versions("feeds")
    ledger.version_details("feeds", [("story-1", "en"), ("story-2", "ko"), ("absent", "en")])
    ledger.channel_fingerprint("feeds")
    ledger.conn.set_trace_callback(None)
    statements = list(dict.fromkeys(sql for sql in traced if "deliveries" in sql and "EXPLAIN" not in sql
                                    and not sql.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))))
    assert len(statements) > 20
    plans = {sql: [row[3] for row in ledger.conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements}
    assert problems(plans) == []


def test_rows_of_several_states_come_in_the_order_they_were_made(tmp_path: Path) -> None:
    ledger = SqliteStore(tmp_path / "db.sqlite", state_dir=tmp_path).ledger
    keys = [DeliveryKey("a", "en", "email", f"t{n}") for n in range(25)]
    ledger.ensure_pending(keys)
    ledger.mark_many([(key, ("failed", "sent", "unconfirmed")[n % 3], None, None, None, None)
                      for n, key in enumerate(keys)])
    rows = list(ledger.rows(article="a", state=("unconfirmed", "failed"), batch_size=4))
    assert [r.key.target for r in rows] == [f"t{n}" for n in range(25) if n % 3 != 1]
    assert [r.key.target for r in ledger.rows(channel="email", batch_size=7)] == [f"t{n}" for n in range(25)]
    with pytest.raises(ValueError, match="unknown delivery state"):
        list(ledger.rows(state="lost"))


def test_articles_come_newest_first_including_those_of_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(path, state_dir=tmp_path)
    ledger = store.ledger
    ledger.ensure_pending([DeliveryKey("first", "en", "x", "t"), DeliveryKey("second", "en", "x", "t")])
    ledger.mark(DeliveryKey("first", "ko", "x", "t"), "sent")   # a row of an article already known
    ledger.begin(DeliveryKey("third", "en", "x", "t"))
    assert list(ledger.articles()) == ["third", "second", "first"]
    assert list(ledger.articles(limit=2)) == ["third", "second"]
    # a database from before the list: the migration fills it from the deliveries, in the same order
    conn = store.connection
    conn.execute("DELETE FROM ledger_articles")
    conn.execute("DROP TRIGGER ledger_articles_add")
    conn.execute("DROP TABLE ledger_articles")
    conn.execute("DELETE FROM schema_migrations WHERE name = '0030_ledger_read_indexes'")
    store.close()
    again = SqliteStore(path, state_dir=tmp_path)
    assert "0030_ledger_read_indexes" in again.migrate()
    assert list(again.ledger.articles()) == ["third", "second", "first"]
