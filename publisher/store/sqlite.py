"""The storage layer on SQLite: one WAL database per site, migrated from ``migrations/sqlite/NNNN_name.sql``."""

from __future__ import annotations

import heapq
import itertools
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.delivery import STATES, Delivery, DeliveryKey, Lease
from publisher.errors import PublisherError, StorageError
from publisher.store.common import delivery_from_row as _delivery
from publisher.store.common import first_detail_per_version, first_of_each_key, job_states, migration_files
from publisher.store.common import job_from_row as _job
from publisher.store.common import moment as _moment
from publisher.store.common import subscriber_from_row as _subscriber
from publisher.store.interfaces import (BULK_CHANNEL, Clock, IndexedFile, IndexEntry, Job, Mark,
                                        format_time, pick_version_details, take_tokens, utc_now)

if TYPE_CHECKING:
    from publisher.subscribers import Subscriber

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "sqlite"
# Rows per multi-row statement: far below SQLite's limit on bound parameters (32766; 999 in old builds).
_CHUNK = 100


# --- errors: what SQLite says about the disk or the file becomes one line naming the database --------------

# SQLite's primary result codes for a cause outside the program, and what to tell the user. Any other code (a
# constraint, an SQL error) is a bug or a rule the caller handles, and goes up unchanged.
_CAUSES: dict[int, str] = {
    sqlite3.SQLITE_FULL: "the disk is full, or the database has reached its size limit; free some space and "
                         "run again",
    sqlite3.SQLITE_READONLY: "the database is read-only; check the permissions of the file and of its folder "
                             "(SQLite writes a -wal and a -shm file beside it)",
    sqlite3.SQLITE_CANTOPEN: "cannot open the database file; check that its folder exists and can be written",
    sqlite3.SQLITE_PERM: "access to the database was refused",
    sqlite3.SQLITE_NOTADB: "not a SQLite database; check PUBLISHER_DATABASE_URL, or move the file away",
    sqlite3.SQLITE_CORRUPT: "the database is damaged; restore it from a backup",
    sqlite3.SQLITE_IOERR: "the disk could not be read or written (I/O error); check the disk",
    sqlite3.SQLITE_BUSY: "another process has held the database for too long; try again when it has finished",
    sqlite3.SQLITE_LOCKED: "another process has held the database for too long; try again when it has finished",
}


def storage_error(path: Path | str, error: sqlite3.Error) -> StorageError | None:
    """``error`` as a ``StorageError`` naming ``path`` when its cause is the disk or the file, else None."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary not in _CAUSES:
        return None
    return StorageError(path, f"{_CAUSES[primary]} ({error})", primary)


def _raise_storage_error(path: Path | str, error: sqlite3.Error) -> None:
    """Raise ``error`` as a ``StorageError`` if it is about the disk or the file; else return (the caller
    re-raises the original)."""
    translated = storage_error(path, error)
    if translated is not None:
        raise translated from error


class _Cursor(sqlite3.Cursor):
    """A cursor whose statements and row fetches raise ``StorageError`` for a disk or file problem."""

    def _path(self) -> Path:
        path: Path = getattr(self.connection, "path", Path("database"))
        return path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.Error as exc:
            _raise_storage_error(self._path(), exc)
            raise
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _Cursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            _raise_storage_error(self._path(), exc)
            raise
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            _raise_storage_error(self._path(), exc)
            raise

    def fetchmany(self, size: int | None = None) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.Error as exc:
            _raise_storage_error(self._path(), exc)
            raise

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            _raise_storage_error(self._path(), exc)
            raise

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            _raise_storage_error(self._path(), exc)
            raise


class _Connection(sqlite3.Connection):
    """A connection that knows its file and raises ``StorageError`` naming it (the store's boundary: no
    ``sqlite3.OperationalError`` about the disk leaves this module)."""

    path: Path

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.path = Path(database)

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    # sqlite3.Connection.execute makes its cursor in C, without calling ``cursor()``: make it here instead.
    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        cursor: _Cursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _Cursor:
        cursor: _Cursor = self.cursor()
        return cursor.executemany(sql, seq_of_parameters)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            _raise_storage_error(self.path, exc)
            raise


def _open(path: Path, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect`` with the translating connection; StorageError if the file cannot be opened."""
    try:
        return sqlite3.connect(path, factory=_Connection, **kwargs)
    except sqlite3.Error as exc:
        _raise_storage_error(path, exc)
        raise


def _rollback(conn: sqlite3.Connection, statement: str = "ROLLBACK") -> None:
    """Undo a failed transaction without hiding why it failed: SQLite has already rolled back by itself after
    some errors (a full disk), and then ROLLBACK fails with "no transaction is active"."""
    if not conn.in_transaction:
        return
    try:
        conn.execute(statement)
    except (sqlite3.Error, StorageError):
        pass


# --- connection and migrations -----------------------------------------------------------------------------


def migrations() -> list[tuple[int, str, Path]]:
    """``(version, name, path)`` of every SQLite migration, in order."""
    return migration_files(MIGRATIONS_DIR)


def connect(
    path: Path, *, check_same_thread: bool = True, clock: Clock | None = None, applied: list[str] | None = None
) -> sqlite3.Connection:
    """Open (creating if needed) and migrate (the names applied are added to ``applied``); WAL so readers never
    block the sender."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path, f"cannot create the database's folder: {exc.strerror or exc}") from None
    conn = _open(path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
    try:
        conn.row_factory = sqlite3.Row
        _enable_wal(conn, path)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        names = migrate(conn, clock=clock)
    except BaseException:
        conn.close()
        raise
    if applied is not None:
        applied += names
    return conn


def _enable_wal(conn: sqlite3.Connection, path: Path, timeout: float = 30.0) -> None:
    """Switch to WAL, waiting for other processes: the switch needs an exclusive lock, and SQLite answers
    "database is locked" at once, without its busy handler, when several processes open a new database together."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except StorageError as exc:
            if exc.code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def migrate(conn: sqlite3.Connection, *, clock: Clock | None = None) -> list[str]:
    """Apply each migration not yet recorded, each in its own transaction; return the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, path in migrations():
        if version in done:
            continue
        script = path.read_text(encoding="utf-8")
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Re-check under the write lock: another process may have migrated meanwhile.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                         (version, name, format_time((clock or utc_now)())))
            conn.execute("COMMIT")
        except StorageError:   # the disk or the file, not the migration: the error names the database
            _rollback(conn)
            raise
        except sqlite3.Error as exc:
            _rollback(conn)
            raise PublisherError(f"{path.name}: migration failed: {exc}") from None
        applied.append(name)
    return applied


def _statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, committed on success and rolled back on any error; inside another, a savepoint.

    Connections are in autocommit mode, where ``with conn:`` groups nothing: each statement would be committed
    on its own. ``BEGIN IMMEDIATE`` takes the write lock at once, so two writers never deadlock on an upgrade.
    """
    if conn.in_transaction:
        name = f"sp{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            _rollback(conn, f"ROLLBACK TO {name}")
            _rollback(conn, f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:   # a full disk can refuse the commit itself; leave no transaction open behind it
        _rollback(conn)
        raise


_savepoints = itertools.count(1)


# --- the store ---------------------------------------------------------------------------------------------


class SqliteStore:
    """A site's storage in one SQLite file, opened and migrated on first use (``open_store``)."""

    def __init__(self, path: Path, *, state_dir: Path, shared: bool = False, clock: Clock | None = None) -> None:
        self.path = path
        self.state_dir = state_dir
        self.shared = shared
        self.clock: Clock = clock or utc_now
        self._connection: sqlite3.Connection | None = None
        self._applied: list[str] = []
        self._ledger = SqliteLedger(self)
        self._subscribers = SqliteSubscribers(self)
        self._memory = SqliteTranslationMemory(self)
        self._rate_limits = SqliteRateLimits(self)
        self._jobs = SqliteJobs(self)
        self._buckets = SqliteTokenBuckets(self)
        self._feed_cache: SqliteFeedCache | None = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The migrated connection (for the store's own modules and for tests that inspect the file)."""
        if self._connection is None:
            self._connection = connect(self.path, check_same_thread=not self.shared, clock=self.clock,
                                       applied=self._applied)
        return self._connection

    def now(self) -> str:
        return format_time(self.clock())

    @property
    def ledger(self) -> SqliteLedger:
        return self._ledger

    @property
    def subscribers(self) -> SqliteSubscribers:
        return self._subscribers

    @property
    def translation_memory(self) -> SqliteTranslationMemory:
        return self._memory

    @property
    def rate_limits(self) -> SqliteRateLimits:
        return self._rate_limits

    @property
    def jobs(self) -> SqliteJobs:
        return self._jobs

    @property
    def token_buckets(self) -> SqliteTokenBuckets:
        return self._buckets

    def feed_cache(self) -> SqliteFeedCache:
        # A file of its own: a cache may be deleted or damaged at no cost, and it keeps bulky HTML out of the
        # database that is backed up. One per store, closed with it (it reopens itself if used after a close).
        if self._feed_cache is None:
            self._feed_cache = SqliteFeedCache(self.state_dir / "cache" / "feed-bodies.sqlite")
        return self._feed_cache

    def transaction(self) -> AbstractContextManager[None]:
        return transaction(self.connection)

    def lock(self, name: str, *, wait: bool) -> AbstractContextManager[None]:
        from publisher.store.locks import file_lock

        return file_lock(self.state_dir / "locks", name, wait=wait)

    def migrate(self) -> list[str]:
        if self._connection is None:
            self.connection  # noqa: B018 - opening migrates
            return list(self._applied)
        return migrate(self._connection, clock=self.clock)

    def close(self) -> None:
        if self._feed_cache is not None:
            self._feed_cache.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# --- the ledger --------------------------------------------------------------------------------------------


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown delivery state {state!r}")


def _key_values(keys: Sequence[DeliveryKey]) -> list[str]:
    return [value for key in keys for value in (key.article, key.lang, key.channel, key.target)]


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


_MATCH_KEY = ("deliveries.article = k.article AND deliveries.lang = k.lang "
              "AND deliveries.channel = k.channel AND deliveries.target = k.target")


class SqliteLedger:
    """The ``deliveries`` table (``publisher.store.Ledger``)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.connection

    def get(self, key: DeliveryKey) -> Delivery | None:
        row = self.conn.execute(*_get_sql(key)).fetchone()
        return _delivery(row) if row else None

    def get_many(self, keys: Iterable[DeliveryKey]) -> dict[DeliveryKey, Delivery]:
        found: dict[DeliveryKey, Delivery] = {}
        for chunk in _chunks(list(keys), 500):
            rows = self.conn.execute(*_get_many_sql(chunk)).fetchall()
            for row in rows:
                delivery = _delivery(row)
                found[delivery.key] = delivery
        return found

    def transaction(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def batch(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def begin(self, key: DeliveryKey) -> Delivery:
        with self.store.transaction():
            before = self.get(key) or Delivery(key)
            now = self.store.now()
            self.conn.execute(*_begin_sql(key, now))
        return before

    def begin_many(self, keys: list[DeliveryKey]) -> None:
        with self.store.transaction():
            for chunk in _chunks(keys):
                self.conn.execute(*_begin_many_sql(chunk, self.store.now()))

    def claim_many(self, claims: Sequence[tuple[DeliveryKey, Delivery | None]], lease: Lease) -> set[DeliveryKey]:
        claimed: set[DeliveryKey] = set()
        if not claims:
            return claimed
        with self.store.transaction():   # BEGIN IMMEDIATE: nobody writes between the compare and the set
            for chunk in _chunks(list(claims)):
                for row in self.conn.execute(*_claim_many_sql(chunk, lease, self.store.now())).fetchall():
                    claimed.add(DeliveryKey(row[0], row[1], row[2], row[3]))
        return claimed

    def claim_queued(self, article: str, channel: str, lease: Lease, now: datetime, limit: int) -> list[Delivery]:
        found: list[Delivery] = []
        ids: list[int] = []
        with self.store.transaction():   # BEGIN IMMEDIATE: two workers never both read the same rows free
            langs = [lang for _, lang in self._groups(article, channel, None)]
            for state in ("in_flight", "pending"):   # leases that ran out first, then pending; each by id
                if len(found) >= limit:
                    break
                # one id-ordered range of (article, channel, lang, state) per language, merged
                rows = sorted((row for lang in langs for row in self.conn.execute(
                    *_queued_sql(article, channel, lang, state, format_time(now), limit - len(found))).fetchall()),
                    key=lambda row: int(row["id"]))[:limit - len(found)]
                ids += [int(row["id"]) for row in rows]
                found += [_delivery(row) for row in rows]
            for chunk in _chunks(ids):
                self.conn.execute(
                    f"UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, worker = ?, lease_until = ?,"
                    f" lease_exclusive = 0, updated_at = ? WHERE id IN ({', '.join('?' * len(chunk))})",
                    [lease.worker, format_time(lease.until), self.store.now(), *chunk])
        return found

    def renew(self, worker: str, until: datetime) -> int:
        cursor = self.conn.execute(*_renew_sql(worker, format_time(until)))
        return max(cursor.rowcount, 0)

    def mark(
        self,
        key: DeliveryKey,
        state: str,
        *,
        remote_id: str | None = None,
        remote_url: str | None = None,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        _check_state(state)
        now = self.store.now()
        self.conn.execute(*_mark_sql(key, state, remote_id, remote_url, error, detail, now))

    def mark_many(self, marks: Iterable[Mark]) -> None:
        rows = list(marks)
        for row in rows:
            _check_state(row[1])   # all checked before anything is written
        if not rows:
            return
        now = self.store.now()
        with self.store.transaction():
            for chunk in _chunks(rows):
                self.conn.execute(*_mark_many_sql(chunk, now))

    def ensure_pending(self, keys: Iterable[DeliveryKey], *, batch_size: int = 5000) -> int:
        added = 0
        batch: list[DeliveryKey] = []

        def flush() -> int:
            if not batch:
                return 0
            now = self.store.now()
            with self.store.transaction():
                cursor = self.conn.executemany(
                    _ENSURE_PENDING_SQL,
                    [(key.article, key.lang, key.channel, key.target, now, now) for key in batch],
                )
            batch.clear()
            return max(cursor.rowcount, 0)

        for key in keys:
            batch.append(key)
            if len(batch) >= batch_size:
                added += flush()
        added += flush()
        return added

    def rows(
        self,
        article: str | None = None,
        channel: str | None = None,
        state: str | Iterable[str] | None = None,
        lang: str | None = None,
        *,
        batch_size: int = 1000,
    ) -> Iterator[Delivery]:
        if article is None and channel is None and state is None and lang is None:
            for _, delivery in self._pages(lambda last_id: _rows_sql(None, None, None, None, last_id, batch_size)):
                yield delivery
            return
        # One stream per state, each paged by id on an index that starts with the state, merged by id: a
        # multi-state filter on one index would sort every page.
        states = list(STATES) if state is None else [state] if isinstance(state, str) else list(dict.fromkeys(state))
        for one in states:
            _check_state(one)

        def stream_of(article: str | None, one: str, channel: str | None,
                      lang: str | None) -> Iterator[tuple[int, Delivery]]:
            return self._pages(lambda last_id: _rows_sql(article, channel, one, lang, last_id, batch_size))

        def stream(one: str, channel: str | None) -> Iterator[tuple[int, Delivery]]:
            return stream_of(article, one, channel, lang)

        if article is not None:
            # No (state, article) index to write on every delivery: an article's rows of a state are one
            # id-ordered range of (article, channel, lang, state) per channel and language, merged.
            groups = self._groups(article, channel, lang)
            streams = [stream_of(article, one, c, g) for one in states for c, g in groups]
        elif channel is None:
            # No (state) index either: a state's rows are one id-ordered range of (state, channel) per
            # channel, merged; the channels found by a few index seeks.
            streams = [stream(one, found) for one in states
                       for (found,) in self.conn.execute(*_channels_sql(one)).fetchall()]
        else:
            streams = [stream(one, channel) for one in states]
        for _, delivery in heapq.merge(*streams, key=lambda pair: pair[0]):
            yield delivery

    def _groups(self, article: str, channel: str | None, lang: str | None) -> list[tuple[str, str]]:
        """The (channel, language) pairs of an article's rows (those given, else found by index seeks)."""
        channels = [channel] if channel is not None else [
            row[0] for row in self.conn.execute(*_article_channels_sql(article)).fetchall()]
        return [(one, found) for one in channels for found in ([lang] if lang is not None else [
            row[0] for row in self.conn.execute(*_article_langs_sql(article, one)).fetchall()])]

    def _pages(self, query: Callable[[int], tuple[str, list[Any]]]) -> Iterator[tuple[int, Delivery]]:
        """Rows in id order, one short query per page (keyset on id), so no read stays open between pages."""
        last_id = 0
        while True:
            rows = self.conn.execute(*query(last_id)).fetchall()
            for row in rows:
                yield row["id"], _delivery(row)
            if not rows:
                return
            last_id = rows[-1]["id"]

    def counts(
        self, article: str | None = None, channel: str | None = None, lang: str | None = None,
        *, states: Iterable[str] | None = None,
    ) -> dict[str, int]:
        # One counted index range per state: no scan of the table, even for the whole ledger.
        wanted = STATES if states is None else tuple(states)
        for state in wanted:
            _check_state(state)
        if article is not None:   # per channel and language of the article, each an exact covered range
            groups = self._groups(article, channel, lang)
            return {state: sum(int(self.conn.execute(*_count_sql(article, c, state, g)).fetchone()[0])
                               for c, g in groups) for state in wanted}
        return {state: int(self.conn.execute(*_count_sql(article, channel, state, lang)).fetchone()[0])
                for state in wanted}

    def articles(self, limit: int | None = None) -> Iterator[str]:
        """Every article of the ledger, the one that appeared last first (at most ``limit``)."""
        yield from (row[0] for row in self.conn.execute(*_articles_sql(limit)))

    def summary(
        self, article: str | None = None, channel: str | None = None
    ) -> dict[tuple[str, str, str], dict[str, int]]:
        if article is not None:
            return self._article_summary(article, channel)
        result: dict[tuple[str, str, str], dict[str, int]] = {}
        for slug in sorted(self.articles()):
            result.update(self._article_summary(slug, channel))
        return result

    def _article_summary(self, article: str, channel: str | None) -> dict[tuple[str, str, str], dict[str, int]]:
        result: dict[tuple[str, str, str], dict[str, int]] = {}
        for row in self.conn.execute(*_summary_sql(article, channel)):
            result.setdefault((article, row["lang"], row["channel"]), {})[row["state"]] = row["n"]
        return dict(sorted(result.items()))

    def published(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._first_per_version(lambda last_id: _published_sql(channel, last_id, 1000))

    def first_details(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._first_per_version(lambda last_id: _details_sql(channel, last_id, 1000))

    def published_versions(self, channel: str) -> set[tuple[str, str]]:
        # plain tuples (no sqlite3.Row per row), so the set is made in one call: 20,000 versions for the feeds
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return set(cursor.execute(*_published_versions_sql(channel)).fetchall())

    def version_details(
        self, channel: str, versions: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        # Each version's few rows through the unique key's prefix (article, lang, channel); the oldest row with
        # a detail and the oldest sent row picked here, in id order, as first_details and published do.
        rows: list[tuple[int, str, str, str, str | None]] = []
        for chunk in _chunks(list(dict.fromkeys(versions)), 300):
            rows += self.conn.execute(*_version_details_sql(channel, chunk)).fetchall()
        return pick_version_details(rows)

    def channel_fingerprint(self, channel: str) -> str:
        rows = self.conn.execute(*_fingerprint_sql(channel)).fetchall()
        return ";".join(f"{row[0]}={row[1]}/{row[2]}" for row in rows)

    def _first_per_version(
        self, query: Callable[[int], tuple[str, list[Any]]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        # In id order, the first row of each version wins: no GROUP BY, so no sort.
        return first_detail_per_version(lambda last_id: self.conn.execute(*query(last_id)).fetchall())

    def query_plans(self) -> dict[str, list[str]]:
        """``EXPLAIN QUERY PLAN`` of every statement the ledger runs, built as the methods build them (with
        sample values), by name: the suite fails when one scans the table or sorts."""
        key = DeliveryKey("article", "en", "channel", "target")
        two = [key, DeliveryKey("other", "ko", "channel", "target")]
        statements: dict[str, tuple[str, list[Any]]] = {
            "get": _get_sql(key),
            "get_many": _get_many_sql(two),
            "begin": _begin_sql(key, "now"),
            "begin_many": _begin_many_sql(two, "now"),
            "mark": _mark_sql(key, "sent", None, None, None, None, "now"),
            "mark_many": _mark_many_sql([(k, "sent", None, None, None, {}) for k in two], "now"),
            "ensure_pending": (_ENSURE_PENDING_SQL, ["a", "en", "c", "t", "now", "now"]),
            "claim_many": _claim_many_sql([(key, None), (two[1], None)], Lease("w", datetime.now().astimezone()),
                                          "now"),
            "renew": _renew_sql("w", "now"),
            "channels": _channels_sql("failed"),
            **{f"claim_queued {state}": _queued_sql("article", "email", "en", state, "now", 100)
               for state in ("in_flight", "pending")},
            "article channels": _article_channels_sql("article"),
            "article langs": _article_langs_sql("article", "channel"),
            "rows": _rows_sql(None, None, None, None, 0, 1000),
            "articles": _articles_sql(20),
            "articles (all)": _articles_sql(None),
            "published": _published_sql("feeds", 0, 1000),
            "first_details": _details_sql("feeds", 0, 1000),
            "published_versions": _published_versions_sql("feeds"),
            "version_details": _version_details_sql("feeds", [("article", "en"), ("other", "ko")]),
            "channel_fingerprint": _fingerprint_sql("feeds"),
        }
        for article, channel, lang in itertools.product(("article", None), ("channel", None), ("en", None)):
            name = f"article={article} channel={channel} lang={lang}"
            # rows of a state with neither article nor channel run once per channel (rows)
            # (and those of an article once per channel and language)
            statements[f"rows {name}"] = _rows_sql(article, channel or "channel", "failed",
                                                   lang if article is None else "en", 0, 1000)
            statements[f"counts {name}"] = _count_sql(article, channel if article is None else "channel", "failed",
                                                      lang if article is None else "en")
            if article is not None:
                statements[f"summary {name}"] = _summary_sql(article, channel)
        return {name: [row[3] for row in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                for name, (sql, params) in statements.items()}


# --- the ledger's statements: built here, so ``query_plans`` explains exactly what the methods run ----------

_COLUMNS = "id, article, lang, channel, target, state, remote_id, remote_url, attempts, last_error, detail, " \
           "created_at, updated_at, worker, lease_until, lease_exclusive"


def _get_sql(key: DeliveryKey) -> tuple[str, list[Any]]:
    return (f"SELECT {_COLUMNS} FROM deliveries WHERE article = ? AND lang = ? AND channel = ? AND target = ?",
            [key.article, key.lang, key.channel, key.target])


def _get_many_sql(keys: Sequence[DeliveryKey]) -> tuple[str, list[Any]]:
    # A join with the VALUES list, not "IN (VALUES ...)": SQLite only uses the unique index for the join.
    return ("WITH k(article, lang, channel, target) AS (VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(keys))
            + f") SELECT {', '.join('deliveries.' + c.strip() for c in _COLUMNS.split(','))} "
            f"FROM deliveries JOIN k ON {_MATCH_KEY}", _key_values(keys))


def _begin_sql(key: DeliveryKey, now: str) -> tuple[str, list[Any]]:
    return ("INSERT INTO deliveries (article, lang, channel, target, state, attempts, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'in_flight', 1, ?, ?) "
            "ON CONFLICT (article, lang, channel, target) DO UPDATE SET "
            "state = 'in_flight', attempts = deliveries.attempts + 1, updated_at = excluded.updated_at",
            [key.article, key.lang, key.channel, key.target, now, now])


def _begin_many_sql(keys: Sequence[DeliveryKey], now: str) -> tuple[str, list[Any]]:
    return ("WITH k(article, lang, channel, target) AS (VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(keys))
            + ") UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, updated_at = ? "
            f"FROM k WHERE {_MATCH_KEY}", [*_key_values(keys), now])


def _claim_many_sql(claims: Sequence[tuple[DeliveryKey, Delivery | None]], lease: Lease,
                    now: str) -> tuple[str, list[Any]]:
    params: list[Any] = []
    for key, row in claims:
        params += [key.article, key.lang, key.channel, key.target, row.state if row else "pending",
                   row.worker if row else None, row.lease_until if row else None]
    return ("WITH k(article, lang, channel, target, state, worker, lease_until) AS (VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(claims))
            + ") UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, worker = ?, lease_until = ?,"
            " lease_exclusive = ?, updated_at = ? FROM k WHERE " + _MATCH_KEY
            + " AND deliveries.state = k.state AND deliveries.worker IS k.worker"
            " AND deliveries.lease_until IS k.lease_until"
            " RETURNING deliveries.article, deliveries.lang, deliveries.channel, deliveries.target",
            [*params, lease.worker, format_time(lease.until), int(lease.exclusive), now])


def _queued_sql(article: str, channel: str, lang: str, state: str, now: str, limit: int) -> tuple[str, list[Any]]:
    """The shared queue's read of one language's rows in one state: in_flight ones whose lease ran out, or
    pending ones; by id."""
    head = f"SELECT {_COLUMNS} FROM deliveries INDEXED BY deliveries_article_summary WHERE article = ?" \
           " AND channel = ? AND lang = ? AND state = ?"
    if state == "in_flight":
        # "id > 0" makes the id part of the index range: with a filter on the rows and few rows in its
        # estimate, SQLite would otherwise sort them rather than read them in id order
        return (head + " AND id > 0 AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?",
                [article, channel, lang, state, now, limit])
    return head + " ORDER BY id LIMIT ?", [article, channel, lang, state, limit]


def _article_channels_sql(article: str) -> tuple[str, list[Any]]:
    """An article's channels: one seek of (article, channel, ...) per channel."""
    return ("WITH RECURSIVE c(v) AS ("
            "SELECT MIN(channel) FROM deliveries INDEXED BY deliveries_article_summary WHERE article = ? UNION ALL "
            "SELECT (SELECT MIN(channel) FROM deliveries INDEXED BY deliveries_article_summary"
            " WHERE article = ? AND channel > c.v) FROM c WHERE c.v IS NOT NULL) "
            "SELECT v FROM c WHERE v IS NOT NULL", [article, article])


def _article_langs_sql(article: str, channel: str) -> tuple[str, list[Any]]:
    """The languages of an article's rows of one channel: one seek of (article, channel, lang, ...) each."""
    return ("WITH RECURSIVE c(v) AS ("
            "SELECT MIN(lang) FROM deliveries INDEXED BY deliveries_article_summary WHERE article = ?"
            " AND channel = ? UNION ALL "
            "SELECT (SELECT MIN(lang) FROM deliveries INDEXED BY deliveries_article_summary"
            " WHERE article = ? AND channel = ? AND lang > c.v) FROM c WHERE c.v IS NOT NULL) "
            "SELECT v FROM c WHERE v IS NOT NULL", [article, channel, article, channel])


def _renew_sql(worker: str, until: str) -> tuple[str, list[Any]]:
    return ("UPDATE deliveries INDEXED BY deliveries_state_channel SET lease_until = ? WHERE state = 'in_flight'"
            " AND worker = ?", [until, worker])


def _mark_sql(key: DeliveryKey, state: str, remote_id: str | None, remote_url: str | None, error: str | None,
              detail: dict[str, Any] | None, now: str) -> tuple[str, list[Any]]:
    return ("INSERT INTO deliveries (article, lang, channel, target, state, remote_id, remote_url, last_error,"
            " detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (article, lang, channel, target) DO UPDATE SET state = excluded.state, "
            "remote_id = COALESCE(excluded.remote_id, deliveries.remote_id), "
            "remote_url = COALESCE(excluded.remote_url, deliveries.remote_url), last_error = excluded.last_error, "
            "detail = CASE WHEN ? THEN excluded.detail ELSE deliveries.detail END, updated_at = excluded.updated_at",
            [key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
             Delivery.detail_json(detail), now, now, detail is not None])


def _mark_many_sql(marks: Sequence[Mark], now: str) -> tuple[str, list[Any]]:
    params: list[Any] = []
    for key, state, remote_id, remote_url, error, detail in marks:
        params += [key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
                   None if detail is None else Delivery.detail_json(detail)]
    return ("WITH k(article, lang, channel, target, state, remote_id, remote_url, error, detail) AS (VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(marks))
            + ") UPDATE deliveries SET state = k.state,"
            " remote_id = COALESCE(k.remote_id, deliveries.remote_id),"
            " remote_url = COALESCE(k.remote_url, deliveries.remote_url), last_error = k.error,"
            " detail = COALESCE(k.detail, deliveries.detail), updated_at = ? "
            f"FROM k WHERE {_MATCH_KEY}", [*params, now])


_ENSURE_PENDING_SQL = ("INSERT INTO deliveries (article, lang, channel, target, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (article, lang, channel, target) DO NOTHING")


def _index_for(article: str | None, channel: str | None) -> str:
    """The index whose equalities serve a query of one state by id: (article, channel, lang, state) for an
    article's rows (asked per channel and language), else (state, channel)."""
    if article is not None:
        return "deliveries_article_summary"
    return "deliveries_state_channel"   # with no channel, its prefix (state) still serves a count


def _rows_sql(article: str | None, channel: str | None, state: str | None, lang: str | None, last_id: int,
              limit: int) -> tuple[str, list[Any]]:
    where, params = _filter(article, channel, state, lang)
    index = "" if state is None else f" INDEXED BY {_index_for(article, channel)}"
    return (f"SELECT {_COLUMNS} FROM deliveries{index} WHERE id > ?{where} ORDER BY id LIMIT ?",
            [last_id, *params, limit])


def _channels_sql(state: str) -> tuple[str, list[Any]]:
    """The channels that have rows in ``state``: one seek of (state, channel) per channel, not a read of the
    state's rows."""
    return ("WITH RECURSIVE c(channel) AS ("
            "SELECT MIN(channel) FROM deliveries INDEXED BY deliveries_state_channel WHERE state = ? UNION ALL "
            "SELECT (SELECT MIN(channel) FROM deliveries INDEXED BY deliveries_state_channel"
            " WHERE state = ? AND channel > c.channel) FROM c WHERE c.channel IS NOT NULL) "
            "SELECT channel FROM c WHERE channel IS NOT NULL", [state, state])


def _count_sql(article: str | None, channel: str | None, state: str, lang: str | None) -> tuple[str, list[Any]]:
    where, params = _filter(article, channel, state, lang)
    return (f"SELECT COUNT(*) FROM deliveries INDEXED BY {_index_for(article, channel)} WHERE 1=1{where}",
            params)


def _articles_sql(limit: int | None) -> tuple[str, list[Any]]:
    if limit is None:
        return "SELECT article FROM ledger_articles ORDER BY id DESC", []
    return "SELECT article FROM ledger_articles ORDER BY id DESC LIMIT ?", [limit]


def _summary_sql(article: str, channel: str | None) -> tuple[str, list[Any]]:
    where, params = _filter(article, channel, None, None)
    return ("SELECT channel, lang, state, COUNT(*) AS n FROM deliveries INDEXED BY deliveries_article_summary "
            f"WHERE 1=1{where} GROUP BY channel, lang, state", params)


def _published_sql(channel: str, last_id: int, limit: int) -> tuple[str, list[Any]]:
    return ("SELECT id, article, lang, detail FROM deliveries INDEXED BY deliveries_state_channel "
            "WHERE state = 'sent' AND channel = ? AND id > ? ORDER BY id LIMIT ?", [channel, last_id, limit])


# The email channel's rows are left out of the two indexes only the per-version channels (feeds) read,
# deliveries_with_detail and deliveries_channel_versions (migration 0090), so the three writes of each email
# row touch neither. A query of another channel repeats the indexes' `channel <> 'email'` word for word, so
# SQLite may use them; one of email itself (which nothing asks) reads without them.
_NOT_BULK = f" AND channel <> '{BULK_CHANNEL}'"


def _per_version(channel: str, index: str) -> tuple[str, str]:
    """``INDEXED BY index`` and the partial index's condition for a query of ``channel``, or neither for email."""
    if channel == BULK_CHANNEL:
        return "", ""
    return f" INDEXED BY {index}", _NOT_BULK


def _details_sql(channel: str, last_id: int, limit: int) -> tuple[str, list[Any]]:
    # The condition repeats the partial index's own WHERE word for word, so SQLite may use it.
    indexed, condition = _per_version(channel, "deliveries_with_detail")
    return (f"SELECT id, article, lang, detail FROM deliveries{indexed} "
            f"WHERE channel = ? AND detail NOT IN ('', '{{}}'){condition} AND id > ? ORDER BY id LIMIT ?",
            [channel, last_id, limit])


def _published_versions_sql(channel: str) -> tuple[str, list[Any]]:
    # (channel, state, article, lang) holds every column: an index range, in index order, so no DISTINCT sort
    indexed, condition = _per_version(channel, "deliveries_channel_versions")
    return (f"SELECT DISTINCT article, lang FROM deliveries{indexed} "
            f"WHERE channel = ? AND state = 'sent'{condition}", [channel])


def _version_details_sql(channel: str, versions: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    # A join with the VALUES list (as get_many): SQLite then probes the unique index per version.
    return ("WITH v(article, lang) AS (VALUES " + ", ".join(["(?, ?)"] * len(versions)) + ") "
            "SELECT deliveries.id, deliveries.article, deliveries.lang, deliveries.state, deliveries.detail "
            "FROM v JOIN deliveries ON deliveries.article = v.article AND deliveries.lang = v.lang "
            "AND deliveries.channel = ?", [value for version in versions for value in version] + [channel])


def _fingerprint_sql(channel: str) -> tuple[str, list[Any]]:
    indexed, condition = _per_version(channel, "deliveries_channel_versions")
    return (f"SELECT state, COUNT(*), MAX(id) FROM deliveries{indexed} "
            f"WHERE channel = ?{condition} GROUP BY state", [channel])


def _filter(
    article: str | None, channel: str | None, state: str | Iterable[str] | None, lang: str | None
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("article", article), ("channel", channel), ("lang", lang)):
        if value is not None:
            clauses.append(f" AND {column} = ?")
            params.append(value)
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        clauses.append(" AND state = ?" if len(states) == 1 else f" AND state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    return "".join(clauses), params


# --- subscribers -------------------------------------------------------------------------------------------

_SUBSCRIBER_COLUMNS = ("id, email, name, lang, status, themes, created_at, confirmed_at, updated_at, status_reason,"
                       " status_at")


class SqliteSubscribers:
    """The ``subscribers`` table (``publisher.store.SubscriberStore``); themes are kept comma-separated."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._import_position = 0   # the list's end when the current import started (``start_import``)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.connection

    def transaction(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def insert(self, *, email: str, email_key: str, name: str | None, lang: str, status: str,
               themes: Sequence[str], confirmed: bool) -> bool:
        now = self.store.now()
        cursor = self.conn.execute(
            "INSERT INTO subscribers"
            " (email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email_key) DO NOTHING",
            (email, email_key, name, lang, status, ",".join(themes), now, now if confirmed else None, now),
        )
        return cursor.rowcount > 0

    def get(self, email_key: str) -> Subscriber | None:
        row = self.conn.execute(
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE email_key = ?", (email_key,)
        ).fetchone()
        return _subscriber(row) if row else None

    def position(self) -> int:
        # Ids only grow while a transaction holds the write lock, so "after" is "inserted later".
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM subscribers").fetchone()[0])

    def start_import(self) -> None:
        # A temporary table: this connection's only, gone when it closes; pages beyond the cache go to a
        # temporary file, so a million addresses do not stay in memory.
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_seen (email_key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.conn.execute("DELETE FROM temp.import_seen")
        self._import_position = self.position()

    def import_batch(self, rows: Sequence[tuple[str, str, str | None, str]], *, status: str,
                     confirmed: bool) -> tuple[int, int, list[int]]:
        # ``first``: within this batch only: its memory is the batch's, not the file's
        first, repeated = first_of_each_key(rows)
        if not first:
            return 0, 0, repeated
        now = self.store.now()
        fresh = [rows[index] for index in first.values()]
        # One statement for the batch; RETURNING names the rows the unique key let in, so the others are the
        # addresses already there (before this import, or added by it from an earlier line).
        added = {row[0] for row in self.conn.execute(
            "INSERT INTO subscribers"
            " (email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, '', ?, ?, ?)"] * len(fresh))
            + " ON CONFLICT (email_key) DO NOTHING RETURNING email_key",
            [value for email, key, name, lang in fresh
             for value in (email, key, name, lang, status, now, now if confirmed else None, now)],
        ).fetchall()}
        taken = [key for key in first if key not in added]
        present = 0
        for chunk in _chunks(taken, 900):
            marks = ",".join("?" * len(chunk))
            before: list[str] = []
            for key, row_id in self.conn.execute(
                f"SELECT email_key, id FROM subscribers WHERE email_key IN ({marks})", chunk
            ):
                if row_id > self._import_position:
                    repeated.append(first[key])   # added by this import, from an earlier line
                else:
                    before.append(key)
            # An address that was on the list before: the first time this import meets it, it is "already
            # present"; the next, a repeat. Only those are noted (a temporary table, on disk past its cache).
            met = {row[0] for row in self.conn.execute(
                f"SELECT email_key FROM temp.import_seen WHERE email_key IN ({','.join('?' * len(before))})",
                before)} if before else set()
            for key in before:
                if key in met:
                    repeated.append(first[key])
                else:
                    present += 1
            self.conn.executemany("INSERT INTO temp.import_seen (email_key) VALUES (?)",
                                  [(key,) for key in before if key not in met])
        return len(added), present, sorted(repeated)

    def update(
        self,
        email_key: str,
        *,
        status: str | None = None,
        lang: str | None = None,
        themes: Sequence[str] | None = None,
        confirm: bool = False,
        unless_status: str | Sequence[str] | None = None,
        only_status: str | None = None,
    ) -> bool:
        now = self.store.now()
        sets, params = ["updated_at = ?"], [now]
        for column, value in (("status", status), ("lang", lang),
                              ("themes", None if themes is None else ",".join(themes)),
                              ("confirmed_at", now if confirm else None)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        where = "email_key = ?"
        params.append(email_key)
        if unless_status is not None:
            excluded = [unless_status] if isinstance(unless_status, str) else list(unless_status)
            where += f" AND status NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
            params.extend(excluded)
        if only_status is not None:
            where += " AND status = ?"
            params.append(only_status)
        cursor = self.conn.execute(f"UPDATE subscribers SET {', '.join(sets)} WHERE {where}", params)
        return cursor.rowcount > 0

    def delete(self, email_key: str) -> bool:
        with self.store.transaction():
            cursor = self.conn.execute("DELETE FROM subscribers WHERE email_key = ?", (email_key,))
            self.conn.execute("DELETE FROM bounce_events WHERE email_key = ?", (email_key,))
        return cursor.rowcount > 0

    def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self.conn.execute(
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        return _subscriber(row) if row else None

    def get_many(self, email_keys: Iterable[str]) -> dict[str, Subscriber]:
        found: dict[str, Subscriber] = {}
        for chunk in _chunks(list(dict.fromkeys(email_keys)), 500):
            rows = self.conn.execute(f"SELECT email_key, {_SUBSCRIBER_COLUMNS} FROM subscribers"
                                     f" WHERE email_key IN ({', '.join('?' * len(chunk))})", list(chunk)).fetchall()
            found.update((row["email_key"], _subscriber(row)) for row in rows)
        return found

    def set_status(self, email_key: str, status: str, reason: str | None, *,
                   unless_status: Sequence[str] = ()) -> bool:
        now = self.store.now()
        where, params = "email_key = ?", [status, reason, now, now, email_key]
        if unless_status:
            where += f" AND status NOT IN ({','.join('?' * len(unless_status))})"
            params.extend(unless_status)
        cursor = self.conn.execute(
            f"UPDATE subscribers SET status = ?, status_reason = ?, status_at = ?, updated_at = ? WHERE {where}",
            params)
        return cursor.rowcount > 0

    def record_event(self, email_key: str, kind: str, *, reason: str | None = None, article: str | None = None,
                     source: str | None = None) -> None:
        self.conn.execute(
            "INSERT INTO bounce_events (email_key, kind, reason, article, source, at) VALUES (?, ?, ?, ?, ?, ?)",
            (email_key, kind, reason, article, source, self.store.now()))

    def count_events(self, email_key: str, kind: str, within: timedelta) -> int:
        # Timestamps are fixed-width UTC text, so comparing them as text compares the times.
        row = self.conn.execute(
            "SELECT count(*) FROM bounce_events WHERE email_key = ? AND kind = ? AND at > ?"
            " AND at > COALESCE((SELECT MAX(at) FROM bounce_events"
            "                    WHERE email_key = ? AND kind = 'unsuppress'), '')",
            (email_key, kind, format_time(self.store.clock() - within), email_key)).fetchone()
        return int(row[0])

    def event_counts(self, articles: Sequence[str]) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for chunk in _chunks(list(articles), 900):
            marks = ",".join("?" * len(chunk))
            for article, kind, n in self.conn.execute(
                f"SELECT article, kind, count(*) FROM bounce_events WHERE article IN ({marks})"
                " GROUP BY article, kind", list(chunk)):
                counts.setdefault(article, {})[kind] = int(n)
        return counts

    def last_bulletin(self, target: str) -> str | None:
        row = self.conn.execute(
            "SELECT article FROM deliveries WHERE target = ? AND channel = 'email' AND state = 'sent'"
            " ORDER BY updated_at DESC, id DESC LIMIT 1", (target,)).fetchone()
        return str(row[0]) if row else None

    def remember_message(self, message_id: str, outcome: str) -> str | None:
        cursor = self.conn.execute(
            "INSERT INTO bounce_messages (message_id, outcome, at) VALUES (?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING", (message_id, outcome, self.store.now()))
        if cursor.rowcount > 0:
            return None
        row = self.conn.execute("SELECT outcome FROM bounce_messages WHERE message_id = ?", (message_id,)).fetchone()
        return str(row[0]) if row else outcome

    def iterate(
        self, *, status: str | None = None, lang: str | None = None, theme: str | None = None,
        batch_size: int = 1000, after: int = 0, through: int | None = None,
    ) -> Iterator[Subscriber]:
        where, params = _subscriber_filters(status, lang, theme)
        if through is not None:
            where += " AND id <= ?" if where else " WHERE id <= ?"
            params = (*params, through)
        where += " AND id > ?" if where else " WHERE id > ?"
        query = f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers{where} ORDER BY id LIMIT ?"
        last_id = after
        while True:
            rows = self.conn.execute(query, (*params, last_id, batch_size)).fetchall()
            for row in rows:
                yield _subscriber(row)
            if len(rows) < batch_size:
                return
            last_id = rows[-1]["id"]

    def count(self, *, status: str | None = None, lang: str | None = None, theme: str | None = None) -> int:
        where, params = _subscriber_filters(status, lang, theme)
        return int(self.conn.execute(f"SELECT count(*) FROM subscribers{where}", params).fetchone()[0])


def _subscriber_filters(status: str | None, lang: str | None, theme: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    params: list[object] = []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if lang is not None:
        clauses.append("lang = ?")
        params.append(lang)
    if theme is not None:
        # No themes chosen means every theme.
        clauses.append("(themes = '' OR instr(',' || themes || ',', ?) > 0)")
        params.append(f",{theme.lower()},")
    return (" WHERE " + " AND ".join(clauses) if clauses else "", tuple(params))


# --- translation memory ------------------------------------------------------------------------------------


class SqliteTranslationMemory:
    """The ``translation_memory`` table (``publisher.store.TranslationMemory``)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.connection

    def lookup(self, model: str, source_lang: str, target_lang: str, sentences: Iterable[str]) -> dict[str, str]:
        unique = list(dict.fromkeys(sentences))
        found: dict[str, str] = {}
        for chunk in _chunks(unique, 900):   # four of the bound parameters are the fixed columns
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                "SELECT source_text, target_text FROM translation_memory "
                f"WHERE model = ? AND source_lang = ? AND target_lang = ? AND source_text IN ({marks})",
                (model, source_lang, target_lang, *chunk),
            )
            found.update((row[0], row[1]) for row in rows)
        if found:
            now = self.store.now()
            with self.store.transaction():
                self.conn.executemany(
                    "UPDATE translation_memory SET hits = hits + 1, used_at = ? "
                    "WHERE model = ? AND source_lang = ? AND target_lang = ? AND source_text = ?",
                    [(now, model, source_lang, target_lang, s) for s in found],
                )
        return found

    def lookup_any_model(self, source_lang: str, target_lang: str, sentences: Iterable[str]) -> dict[str, tuple[str, str]]:
        unique = list(dict.fromkeys(sentences))
        found: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(unique, 900):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                "SELECT source_text, target_text, model FROM translation_memory "
                f"WHERE source_lang = ? AND target_lang = ? AND source_text IN ({marks}) "
                "ORDER BY used_at, model",   # the most recently used entry last, so it wins
                (source_lang, target_lang, *chunk),
            )
            found.update((row[0], (row[1], row[2])) for row in rows)
        return found

    def remember(self, model: str, source_lang: str, target_lang: str, translations: Mapping[str, str]) -> None:
        if not translations:
            return
        now = self.store.now()
        with self.store.transaction():
            self.conn.executemany(
                "INSERT INTO translation_memory (model, source_lang, target_lang, source_text, target_text,"
                " created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (model, source_lang, target_lang, source_text) "
                "DO UPDATE SET target_text = excluded.target_text, used_at = excluded.used_at",
                [(model, source_lang, target_lang, s, t, now, now) for s, t in translations.items()],
            )

    def count(self, model: str | None = None) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM translation_memory WHERE ? IS NULL OR model = ?", (model, model)
        ).fetchone()
        return int(row[0])

    def forget(self, model: str | None = None) -> int:
        with self.store.transaction():
            cursor = self.conn.execute(
                "DELETE FROM translation_memory WHERE ? IS NULL OR model = ?", (model, model)
            )
        return cursor.rowcount


# --- web rate limits ---------------------------------------------------------------------------------------


class SqliteRateLimits:
    """The ``web_rate_limits`` table (``publisher.store.RateLimits``)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def hit(self, bucket: str, client: str, window_start: int) -> int:
        conn = self.store.connection
        # One transaction: another server process counting the same client must not slip between the
        # increment and the read.
        with self.store.transaction():
            conn.execute("DELETE FROM web_rate_limits WHERE bucket = ? AND window_start < ?", (bucket, window_start))
            conn.execute(
                "INSERT INTO web_rate_limits (bucket, client, window_start, hits) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (bucket, client, window_start) DO UPDATE SET hits = hits + 1",
                (bucket, client, window_start),
            )
            row = conn.execute(
                "SELECT hits FROM web_rate_limits WHERE bucket = ? AND client = ? AND window_start = ?",
                (bucket, client, window_start),
            ).fetchone()
        return int(row[0])


# --- shared send rates ------------------------------------------------------------------------------------


class SqliteTokenBuckets:
    """The ``token_buckets`` table (``publisher.store.TokenBuckets``)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def take(self, bucket: str, want: int, *, rate: float, burst: float, now: float) -> tuple[int, float]:
        conn = self.store.connection
        # BEGIN IMMEDIATE: the write lock is held before the row is read, so two processes take turns.
        with self.store.transaction():
            row = conn.execute("SELECT tokens, updated FROM token_buckets WHERE name = ?", (bucket,)).fetchone()
            tokens, updated, granted, wait = take_tokens(row[0] if row else None, row[1] if row else None,
                                                         want=want, rate=rate, burst=burst, now=now)
            conn.execute("INSERT INTO token_buckets (name, tokens, updated) VALUES (?, ?, ?) ON CONFLICT (name)"
                         " DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                         (bucket, tokens, updated))
        return granted, wait


# --- the job queue ----------------------------------------------------------------------------------------


class SqliteJobs:
    """The ``jobs`` table (``publisher.store.Jobs``).

    Timestamps are fixed-width UTC text (``format_time``), so comparing them as text compares the times.
    Every change that depends on what a row holds is one ``BEGIN IMMEDIATE`` transaction: the write lock is
    taken before the row is read, so two workers can never both see a job free and both take it.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.connection

    def schedule(self, kind: str, key: str, payload: Mapping[str, Any], due_at: datetime) -> tuple[Job, bool]:
        now = self.store.now()
        data = json.dumps(dict(payload), sort_keys=True)
        with self.store.transaction():
            row = self.conn.execute("SELECT id FROM jobs WHERE key = ? AND state IN ('pending', 'overdue')",
                                    (key,)).fetchone()
            if row is not None:
                self.conn.execute(
                    "UPDATE jobs SET due_at = ?, payload = ?, kind = ?, state = 'pending', late_ok = 0,"
                    " last_error = NULL, updated_at = ? WHERE id = ?",
                    (format_time(due_at), data, kind, now, row["id"]))
                job_id, moved = int(row["id"]), True
            else:
                cursor = self.conn.execute(
                    "INSERT INTO jobs (kind, key, payload, due_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, key, data, format_time(due_at), now, now))
                job_id, moved = int(cursor.lastrowid or 0), False
        job = self.get(job_id)
        assert job is not None
        return job, moved

    def claim(self, owner: str, now: datetime, lease: timedelta, *, max_late: timedelta | None = None,
              hold: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> Job | None:
        stamp = format_time(now)
        kind_filter = f" AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        kind_values = tuple(kinds or ())
        hold_filter = f" AND kind IN ({','.join('?' * len(hold))})" if hold else ""
        with self.store.transaction():
            if max_late is not None:
                self.conn.execute(
                    "UPDATE jobs SET state = 'overdue', updated_at = ? WHERE state = 'pending' AND late_ok = 0"
                    " AND due_at < ?" + kind_filter + hold_filter,
                    (stamp, format_time(now - max_late), *kind_values, *tuple(hold or ())))
            row = self.conn.execute(
                "SELECT * FROM jobs WHERE ((state = 'pending' AND due_at <= ?)"
                " OR (state = 'running' AND lease_until < ?))" + kind_filter
                + " ORDER BY due_at, id LIMIT 1", (stamp, stamp, *kind_values)).fetchone()
            if row is None:
                return None
            self.conn.execute(
                "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE id = ?", (owner, format_time(now + lease), stamp, row["id"]))
        return self.get(int(row["id"]))

    def renew(self, job_id: int, owner: str, until: datetime) -> bool:
        cursor = self.conn.execute(
            "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?",
            (format_time(until), self.store.now(), job_id, owner))
        return cursor.rowcount == 1

    def finish(self, job_id: int, owner: str, *, error: str | None = None) -> bool:
        cursor = self.conn.execute(
            "UPDATE jobs SET state = ?, last_error = ?, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND state = 'running' AND lease_owner = ?",
            ("failed" if error else "done", error, self.store.now(), job_id, owner))
        return cursor.rowcount == 1

    def finish_shared(self, job_id: int) -> bool:
        cursor = self.conn.execute("UPDATE jobs SET state = 'done', updated_at = ? WHERE id = ? AND state = 'pending'",
                                   (self.store.now(), job_id))
        return cursor.rowcount == 1

    def retry(self, job_id: int, owner: str, due_at: datetime, error: str) -> bool:
        with self.store.transaction():
            job = self.get(job_id)
            if job is None or job.state != "running" or job.lease_owner != owner:
                return False
            waiting = self.conn.execute("SELECT id FROM jobs WHERE key = ? AND state IN ('pending', 'overdue')",
                                        (job.key,)).fetchone()
            if waiting is not None:   # the same thing was scheduled again meanwhile: that job runs it
                self.conn.execute("UPDATE jobs SET state = 'done', last_error = ?, lease_until = NULL,"
                                  " updated_at = ? WHERE id = ?", (error, self.store.now(), job_id))
                return True
            self.conn.execute(
                "UPDATE jobs SET state = 'pending', due_at = ?, last_error = ?, lease_owner = NULL,"
                " lease_until = NULL, late_ok = 1, updated_at = ? WHERE id = ?",
                (format_time(due_at), error, self.store.now(), job_id))
        return True

    def release(self, job_id: int, owner: str) -> bool:
        with self.store.transaction():
            job = self.get(job_id)
            if job is None or job.state != "running" or job.lease_owner != owner:
                return False
            waiting = self.conn.execute("SELECT id FROM jobs WHERE key = ? AND state IN ('pending', 'overdue')",
                                        (job.key,)).fetchone()
            # Given back, it was started: a person should not have to release it again as overdue.
            state = "cancelled" if waiting is not None else "pending"
            self.conn.execute(
                "UPDATE jobs SET state = ?, lease_owner = NULL, lease_until = NULL, attempts = MAX(attempts - 1, 0),"
                " late_ok = 1, updated_at = ? WHERE id = ?", (state, self.store.now(), job_id))
        return True

    def cancel(self, job_id: int) -> Job | None:
        cursor = self.conn.execute(
            "UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE id = ? AND state IN ('pending', 'overdue')",
            (self.store.now(), job_id))
        return self.get(job_id) if cursor.rowcount == 1 else None

    def allow_late(self, job_id: int) -> Job | None:
        cursor = self.conn.execute(
            "UPDATE jobs SET state = 'pending', late_ok = 1, updated_at = ? WHERE id = ?"
            " AND state IN ('pending', 'overdue')", (self.store.now(), job_id))
        return self.get(job_id) if cursor.rowcount == 1 else None

    def get(self, job_id: int) -> Job | None:
        row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def list(self, states: Iterable[str] | None = None, kind: str | None = None) -> list[Job]:
        wanted = job_states(states)
        sql = f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(wanted))})"
        values: list[Any] = list(wanted)
        if kind is not None:
            sql += " AND kind = ?"
            values.append(kind)
        return [_job(row) for row in self.conn.execute(sql + " ORDER BY due_at, id", values)]

    def next_due(self, kinds: Sequence[str] | None = None) -> datetime | None:
        kind_filter = f" AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        values = tuple(kinds or ())
        row = self.conn.execute(
            "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t FROM jobs WHERE state = 'pending'" + kind_filter
            + " UNION ALL SELECT MIN(lease_until) FROM jobs WHERE state = 'running'" + kind_filter + ")",
            values + values).fetchone()
        return _moment(row[0])

    def last_done(self, kind: str) -> Job | None:
        row = self.conn.execute("SELECT * FROM jobs WHERE kind = ? AND state IN ('done', 'failed')"
                                " ORDER BY due_at DESC, id DESC LIMIT 1", (kind,)).fetchone()
        return _job(row) if row is not None else None


# --- the rendered-bodies cache of the feeds ----------------------------------------------------------------


class _CacheFile:
    """A SQLite file that only holds a cache: opened on first use; a damaged file is deleted and started again.

    A subclass with a ``VERSION`` (its format, kept in ``PRAGMA user_version``) drops the tables of a file
    written in another format (``DROP``) and makes them again, so an old cache is discarded, never misread;
    ``PAGE_SIZE`` is then the new file's page size."""

    SCHEMA: tuple[str, ...] = ()
    VERSION: int | None = None
    DROP: tuple[str, ...] = ()
    PAGE_SIZE: int | None = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except StorageError as exc:
                if exc.code not in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
                    raise   # a full or read-only disk: starting again would not help
                self.path.unlink(missing_ok=True)
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = _open(self.path, timeout=30, isolation_level=None)
        try:
            if self.VERSION is not None and db.execute("PRAGMA user_version").fetchone()[0] != self.VERSION:
                for table in self.DROP:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                if self.PAGE_SIZE is not None:
                    # takes effect on a new file, or (rollback journal, not WAL) at the VACUUM that follows
                    db.execute(f"PRAGMA page_size = {int(self.PAGE_SIZE)}")
                    db.execute("VACUUM")
                db.execute(f"PRAGMA user_version = {int(self.VERSION)}")
            for statement in self.SCHEMA:
                db.execute(statement)
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class SqliteFeedCache(_CacheFile):
    """Rendered bodies in a SQLite file of their own (``publisher.store.FeedCache``).

    Format 2 (``PRAGMA user_version``) holds, besides each rendered body and summary text, the XML-safe body
    (``publisher.formatters.site_feeds.BodyRenderer.xml_html``); a file of another format is emptied on open.
    64 KiB pages: a body is a few KiB, so most rows fit in one page and a whole-table read touches fewer pages.

    Once a look-up has read the whole table (it asked for 2,000 keys or more and at least half of the table: a
    feed of every article, or a first build's), the table stays in memory until the next write, and every later
    look-up (the other feeds of the build, a body asked for alone) is answered from it instead of a query each. A
    key is a hash of what its value was rendered from, so another process's writes in the meantime can only add
    keys, which a look-up then misses: the body is rendered again, the same.
    """

    VERSION = 2
    DROP = ("bodies",)
    PAGE_SIZE = 65536
    SCHEMA = ("CREATE TABLE IF NOT EXISTS bodies (key TEXT PRIMARY KEY, html TEXT NOT NULL)",)

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._table: dict[str, str] | None = None   # every row, after a look-up read them all
        self._stored: int | None = None             # the row count, counted once until the next write

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))
        table = self._table
        if table is None and len(wanted) >= 2000:
            # A feed of every article asks for most of the cache: one pass over the table reads a row in 40% of
            # the time of an IN look-up (a search of the key index, then of the table, per key). Not counted for
            # fewer keys (a publish's feeds of 50 entries): count(*) walks a whole index.
            db = self._connection()
            if self._stored is None:
                (self._stored,) = db.execute("SELECT count(*) FROM bodies").fetchone()
            if 2 * len(wanted) >= self._stored:
                table = self._table = dict(db.execute("SELECT key, html FROM bodies").fetchall())
        if table is not None:
            return {key: table[key] for key in wanted if key in table}
        found: dict[str, str] = {}
        for chunk in _chunks(wanted, 900):
            # fetchall: one call for the chunk, not the error-mapping cursor's __next__ per row
            found.update(self._connection().execute(
                f"SELECT key, html FROM bodies WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall())
        return found

    def _forget(self) -> None:
        self._table = self._stored = None

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        entries = list(items)
        if not entries:
            return
        self._forget()
        with transaction(self._connection()):
            self._connection().executemany("INSERT OR REPLACE INTO bodies VALUES (?, ?)", entries)

    def keep_only(self, keys: Iterable[str]) -> None:
        # The stale keys are found in Python and only they are deleted: after a full build they are a handful,
        # while a temporary table of every key kept cost 0.5 s on a site of 20,000 versions.
        kept = set(keys)
        self._forget()
        db = self._connection()
        with transaction(db):
            stale = [(key,) for (key,) in db.execute("SELECT key FROM bodies").fetchall() if key not in kept]
            if stale:
                db.executemany("DELETE FROM bodies WHERE key = ?", stale)

    def close(self) -> None:
        self._forget()
        super().close()


# --- the content index -------------------------------------------------------------------------------------


class SqliteContentIndex(_CacheFile):
    """Parsed content files in a SQLite file of their own (``publisher.store.ContentIndex``).

    Two tables: ``listed`` (what lists a file: its key, size, time and ``IndexEntry`` columns, a few hundred
    bytes a row) and ``parsed`` (its front matter and body). Listing every file (``entries``) reads only the
    first, a tenth of the file, never a body. ``files`` was the one table before: dropped, so such a cache is
    filled again, once."""

    _ENTRY_COLUMNS = "slug, lang, title, date, summary, theme, url, status, source_lang, model"
    SCHEMA = ("DROP TABLE IF EXISTS files",
              "CREATE TABLE IF NOT EXISTS listed (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
              "mtime_ns INTEGER NOT NULL, context TEXT NOT NULL, slug TEXT, lang TEXT, title TEXT, date TEXT, "
              "summary TEXT, theme TEXT, url TEXT, status TEXT, source_lang TEXT, model TEXT)",
              "CREATE TABLE IF NOT EXISTS parsed (path TEXT PRIMARY KEY, fields TEXT NOT NULL, body TEXT NOT NULL)")

    def get_many(self, paths: Iterable[str]) -> dict[str, IndexedFile]:
        found: dict[str, IndexedFile] = {}
        for chunk in _chunks(list(dict.fromkeys(paths)), 900):
            rows = self._connection().execute(
                "SELECT listed.path, size, mtime_ns, context, fields, body FROM listed JOIN parsed USING (path) "
                f"WHERE listed.path IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            found.update((row[0], IndexedFile(*row)) for row in rows)
        return found

    def entries(self) -> dict[str, IndexEntry]:
        rows = self._connection().execute(
            f"SELECT path, size, mtime_ns, context, {self._ENTRY_COLUMNS} FROM listed WHERE slug IS NOT NULL"
        ).fetchall()
        return {row[0]: IndexEntry._make(row) for row in rows}

    def put_many(self, entries: Iterable[IndexedFile]) -> None:
        listed, parsed = [], []
        for e in entries:
            entry = e.entry
            listed.append((e.path, e.size, e.mtime_ns, e.context, *(
                (entry.slug, entry.lang, entry.title, entry.date, entry.summary, entry.theme, entry.url,
                 entry.status, entry.source_lang, entry.model) if entry is not None else (None,) * 10)))
            parsed.append((e.path, e.fields, e.body))
        if not listed:
            return
        db = self._connection()
        with transaction(db):
            db.executemany(f"INSERT OR REPLACE INTO listed VALUES ({', '.join('?' * 14)})", listed)
            db.executemany("INSERT OR REPLACE INTO parsed VALUES (?, ?, ?)", parsed)

    def keep_only(self, paths: Iterable[str]) -> None:
        db = self._connection()
        with transaction(db):
            db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (path TEXT PRIMARY KEY)")
            db.execute("DELETE FROM kept")
            db.executemany("INSERT OR IGNORE INTO kept VALUES (?)", ((path,) for path in paths))
            db.execute("DELETE FROM listed WHERE path NOT IN (SELECT path FROM kept)")
            db.execute("DELETE FROM parsed WHERE path NOT IN (SELECT path FROM kept)")


if TYPE_CHECKING:
    from publisher import delivery
    from publisher.store import interfaces

    def _conforms(store: SqliteStore, cache: SqliteFeedCache, index: SqliteContentIndex) -> None:
        """Never called: mypy checks here that the SQLite classes satisfy the interfaces they implement."""
        checked_store: interfaces.Store = store
        ledger: interfaces.Ledger = store.ledger
        versions: delivery.PublishedVersions = store.ledger
        subscribers: interfaces.SubscriberStore = store.subscribers
        memory: interfaces.TranslationMemory = store.translation_memory
        limits: interfaces.RateLimits = store.rate_limits
        jobs: interfaces.Jobs = store.jobs
        buckets: interfaces.TokenBuckets = store.token_buckets
        rates: delivery.SendRates = store.token_buckets
        feed_cache: interfaces.FeedCache = cache
        render_cache: delivery.RenderCache = cache
        content_index: interfaces.ContentIndex = index
        del checked_store, ledger, versions, subscribers, memory, limits, jobs, buckets, rates, feed_cache, render_cache
        del content_index
