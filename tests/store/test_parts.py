"""The other parts of the store: subscriber languages from the site, the feed cache, the translation memory."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.site import Site
from publisher.store import format_time
from publisher.store.sqlite import SqliteFeedCache
from tests.conftest import set_settings
from tests.databases import open_test_store

pytestmark = pytest.mark.both_databases


def test_subscribers_read_the_languages_the_site_declares(site: Site, tmp_path: Path) -> None:
    korean_only = set_settings(site, PUBLISHER_LANGUAGES="ko")
    subscribers = korean_only.subscribers()
    assert subscribers.add("a@example.org").lang == "ko"          # no language given: the site's first
    with pytest.raises(InputError, match=r"^b@example.org: language: 'en' is not one of ko$"):
        subscribers.add("b@example.org", lang="en")
    with pytest.raises(InputError, match="language: 'en' is not one of ko"):
        subscribers.set_preferences("a@example.org", lang="en")
    sheet = tmp_path / "list.csv"
    sheet.write_text("email,name,language\nc@example.org,C,ko\nd@example.org,D,en\n", encoding="utf-8")
    report = subscribers.import_csv(sheet)
    assert report.added == 1 and report.rejected == ["list.csv:3: language: 'en' is not one of ko"]
    korean_only.close()


def test_subscriber_times_are_written_in_the_one_format(tmp_path: Path) -> None:
    from publisher.subscribers import Subscribers

    moment = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)
    store = open_test_store(tmp_path, clock=lambda: moment)
    subscribers = Subscribers(store.subscribers, ["en"])
    added = subscribers.add("reader@example.org")
    assert added.created_at == moment and added.confirmed_at == moment
    connection = store.connection  # type: ignore[attr-defined]   # the store's own, to read the raw text
    row = connection.execute("SELECT created_at, confirmed_at, updated_at FROM subscribers").fetchone()
    assert tuple(row) == ("2026-12-01T10:00:00.123+00:00",) * 3
    assert format_time(moment) == "2026-12-01T10:00:00.123+00:00"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 12, 1))   # a time without a zone is refused, never guessed
    store.close()


@pytest.mark.sqlite_only   # a local cache file on either database
def test_the_feed_cache_keeps_puts_prunes_and_survives_damage(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "feed-bodies.sqlite"
    cache = SqliteFeedCache(path)
    assert cache.get_many(["a"]) == {}
    cache.put_many([("a", "<p>A</p>"), ("b", "<p>B</p>")])
    cache.put_many([("a", "<p>A2</p>")])
    assert cache.get_many(["a", "b", "c"]) == {"a": "<p>A2</p>", "b": "<p>B</p>"}
    cache.keep_only(["b"])
    assert cache.get_many(["a", "b"]) == {"b": "<p>B</p>"}
    cache.close()
    path.write_bytes(b"not a database" * 100)
    again = SqliteFeedCache(path)
    assert again.get_many(["b"]) == {}      # a damaged cache starts again, it is only a cache
    again.put_many([("b", "<p>B</p>")])
    assert again.get_many(["b"]) == {"b": "<p>B</p>"}
    # Asked for most of what it holds (a feed of every article), it reads the table in one pass: the same answer.
    again.put_many((f"k{n}", f"<p>{n}</p>") for n in range(3000))
    asked = [f"k{n}" for n in range(0, 3000, 3)] + [f"k{n}" for n in range(1, 3000, 3)] + ["missing", "k5"]
    assert again.get_many(asked) == {key: f"<p>{key[1:]}</p>" for key in asked if key != "missing"}
    again.keep_only(["b", "k7"])
    assert again.get_many(["b", "k7", "k8"]) == {"b": "<p>B</p>", "k7": "<p>7</p>"}
    again.close()


@pytest.mark.sqlite_only   # a local cache file on either database
def test_a_feed_cache_of_another_format_is_emptied_and_made_with_64_kib_pages(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "feed-bodies.sqlite"
    with sqlite3.connect(path) as db:   # format 1: no user_version, 4 KiB pages
        db.execute("CREATE TABLE bodies (key TEXT PRIMARY KEY, html TEXT NOT NULL)")
        db.execute("INSERT INTO bodies VALUES ('a', '<p>old</p>')")
    db.close()
    cache = SqliteFeedCache(path)
    assert cache.get_many(["a"]) == {}                 # discarded, not misread
    cache.put_many([("a", "<p>A</p>")])
    cache.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SqliteFeedCache.VERSION,)
    assert db.execute("PRAGMA page_size").fetchone() == (65536,)
    db.close()
    again = SqliteFeedCache(path)                      # the current format is kept as it is
    assert again.get_many(["a"]) == {"a": "<p>A</p>"}
    again.close()


@pytest.mark.sqlite_only
def test_the_feed_cache_table_read_whole_is_kept_until_the_next_write(tmp_path: Path) -> None:
    cache = SqliteFeedCache(tmp_path / "feed-bodies.sqlite")
    cache.put_many((f"k{n}", f"<p>{n}</p>") for n in range(3000))
    asked = [f"k{n}" for n in range(8, 3000)] + ["missing"]   # 2,000 keys or more, half the table: read whole
    assert cache.get_many(asked) == {key: f"<p>{key[1:]}</p>" for key in asked[:-1]}
    cache._connection().execute("DELETE FROM bodies WHERE key = 'k7'")   # behind its back
    assert cache.get_many(["k7"]) == {"k7": "<p>7</p>"}   # answered from the table read once, not a query
    cache.put_many([("new", "<p>new</p>")])              # a write: the table is read again when next asked
    assert cache.get_many(["k7", "new", "k8"]) == {"new": "<p>new</p>", "k8": "<p>8</p>"}
    cache.keep_only(["k1"])
    assert cache.get_many(["k1", "k8", "new"]) == {"k1": "<p>1</p>"}
    cache.close()


def test_the_translation_memory_remembers_counts_hits_and_forgets(site: Site) -> None:
    memory = site.store().translation_memory
    memory.remember("argos:en-ko@1", "en", "ko", {"Hello.": "안녕하세요.", "Bye.": "안녕."})
    memory.remember("argos:en-ko@1", "en", "ko", {"Bye.": "잘 가요."})
    assert memory.lookup("argos:en-ko@1", "en", "ko", ["Hello.", "Bye.", "New."]) == {
        "Hello.": "안녕하세요.", "Bye.": "잘 가요."}
    assert memory.lookup("argos:en-ko@2", "en", "ko", ["Hello."]) == {}
    hits = dict(site.store().connection.execute(  # type: ignore[attr-defined]
        "SELECT source_text, hits FROM translation_memory").fetchall())
    assert hits == {"Hello.": 1, "Bye.": 1}
    assert memory.count() == 2 and memory.count("other") == 0
    assert memory.forget("argos:en-ko@1") == 2 and memory.count() == 0


def test_rate_limits_count_per_window_and_drop_old_windows(site: Site) -> None:
    limits = site.store().rate_limits
    assert [limits.hit("subscribe", "c1", 600) for _ in range(3)] == [1, 2, 3]
    assert limits.hit("subscribe", "c2", 600) == 1
    assert limits.hit("subscribe", "c1", 1200) == 1
    windows = {row[0] for row in site.store().connection.execute(  # type: ignore[attr-defined]
        "SELECT window_start FROM web_rate_limits")}
    assert windows == {1200}
