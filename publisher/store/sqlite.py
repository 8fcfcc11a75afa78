"""The storage layer on SQLite: one WAL database per site, migrated from ``migrations/sqlite/NNNN_name.sql``."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.delivery import STATES, Delivery, DeliveryKey
from publisher.errors import PublisherError, StorageError
from publisher.store.interfaces import Clock, IndexedFile, Mark, format_time, utc_now

if TYPE_CHECKING:
    from publisher.subscribers import Subscriber

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "sqlite"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
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
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match[1]), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise PublisherError(f"{MIGRATIONS_DIR}: two migrations share a number")
    return found


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

    def feed_cache(self) -> SqliteFeedCache:
        # A file of its own: a cache may be deleted or damaged at no cost, and it keeps bulky HTML out of the
        # database that is backed up.
        return SqliteFeedCache(self.state_dir / "cache" / "feed-bodies.sqlite")

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
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# --- the ledger --------------------------------------------------------------------------------------------


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        key=DeliveryKey(row["article"], row["lang"], row["channel"], row["target"]),
        state=row["state"], remote_id=row["remote_id"], remote_url=row["remote_url"],
        attempts=row["attempts"], last_error=row["last_error"], created_at=row["created_at"],
        updated_at=row["updated_at"], detail=json.loads(row["detail"] or "{}"),
    )


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
        row = self.conn.execute(
            "SELECT * FROM deliveries WHERE article=? AND lang=? AND channel=? AND target=?",
            (key.article, key.lang, key.channel, key.target),
        ).fetchone()
        return _delivery(row) if row else None

    def get_many(self, keys: Iterable[DeliveryKey]) -> dict[DeliveryKey, Delivery]:
        found: dict[DeliveryKey, Delivery] = {}
        for chunk in _chunks(list(keys), 500):
            # A join with the VALUES list, not "IN (VALUES ...)": SQLite only uses the unique index for the join.
            rows = self.conn.execute(
                "WITH k(article, lang, channel, target) AS (VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                + f") SELECT deliveries.* FROM deliveries JOIN k ON {_MATCH_KEY}",
                _key_values(chunk),
            ).fetchall()
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
            self.conn.execute(
                "INSERT INTO deliveries (article, lang, channel, target, state, attempts, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'in_flight', 1, ?, ?) "
                "ON CONFLICT (article, lang, channel, target) DO UPDATE SET "
                "state = 'in_flight', attempts = deliveries.attempts + 1, updated_at = excluded.updated_at",
                (key.article, key.lang, key.channel, key.target, now, now),
            )
        return before

    def begin_many(self, keys: list[DeliveryKey]) -> None:
        with self.store.transaction():
            for chunk in _chunks(keys):
                self.conn.execute(
                    "WITH k(article, lang, channel, target) AS (VALUES "
                    + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                    + ") UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, updated_at = ? "
                    f"FROM k WHERE {_MATCH_KEY}",
                    [*_key_values(chunk), self.store.now()],
                )

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
        self.conn.execute(
            "INSERT INTO deliveries (article, lang, channel, target, state, remote_id, remote_url, last_error,"
            " detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (article, lang, channel, target) DO UPDATE SET state = excluded.state, "
            "remote_id = COALESCE(excluded.remote_id, deliveries.remote_id), "
            "remote_url = COALESCE(excluded.remote_url, deliveries.remote_url), last_error = excluded.last_error, "
            "detail = CASE WHEN ? THEN excluded.detail ELSE deliveries.detail END, updated_at = excluded.updated_at",
            (key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
             Delivery.detail_json(detail), now, now, detail is not None),
        )

    def mark_many(self, marks: Iterable[Mark]) -> None:
        rows = list(marks)
        for row in rows:
            _check_state(row[1])   # all checked before anything is written
        if not rows:
            return
        now = self.store.now()
        with self.store.transaction():
            for chunk in _chunks(rows):
                params: list[Any] = []
                for key, state, remote_id, remote_url, error, detail in chunk:
                    params += [key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
                               None if detail is None else Delivery.detail_json(detail)]
                self.conn.execute(
                    "WITH k(article, lang, channel, target, state, remote_id, remote_url, error, detail) AS (VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
                    + ") UPDATE deliveries SET state = k.state,"
                    " remote_id = COALESCE(k.remote_id, deliveries.remote_id),"
                    " remote_url = COALESCE(k.remote_url, deliveries.remote_url), last_error = k.error,"
                    " detail = COALESCE(k.detail, deliveries.detail), updated_at = ? "
                    f"FROM k WHERE {_MATCH_KEY}",
                    [*params, now],
                )

    def ensure_pending(self, keys: Iterable[DeliveryKey], *, batch_size: int = 5000) -> int:
        added = 0
        batch: list[DeliveryKey] = []

        def flush() -> int:
            if not batch:
                return 0
            now = self.store.now()
            with self.store.transaction():
                cursor = self.conn.executemany(
                    "INSERT INTO deliveries (article, lang, channel, target, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (article, lang, channel, target) DO NOTHING",
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
        where, params = _filter(article, channel, state, lang)
        last_id = 0
        while True:
            rows = self.conn.execute(
                f"SELECT * FROM deliveries WHERE id > ?{where} ORDER BY id LIMIT ?",
                (last_id, *params, batch_size),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _delivery(row)
            last_id = rows[-1]["id"]

    def counts(
        self, article: str | None = None, channel: str | None = None, lang: str | None = None
    ) -> dict[str, int]:
        where, params = _filter(article, channel, None, lang)
        result = {state: 0 for state in STATES}
        for row in self.conn.execute(
            f"SELECT state, COUNT(*) AS n FROM deliveries WHERE 1=1{where} GROUP BY state", params
        ):
            result[row["state"]] = row["n"]
        return result

    def summary(
        self, article: str | None = None, channel: str | None = None
    ) -> dict[tuple[str, str, str], dict[str, int]]:
        where, params = _filter(article, channel, None, None)
        result: dict[tuple[str, str, str], dict[str, int]] = {}
        for row in self.conn.execute(
            f"SELECT article, lang, channel, state, COUNT(*) AS n FROM deliveries WHERE 1=1{where} "
            "GROUP BY article, lang, channel, state ORDER BY article, lang, channel", params
        ):
            result.setdefault((row["article"], row["lang"], row["channel"]), {})[row["state"]] = row["n"]
        return result

    def published(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._first_per_version("channel = ? AND state = 'sent'", channel)

    def first_details(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._first_per_version("channel = ? AND detail NOT IN ('', '{}')", channel)

    def _first_per_version(self, condition: str, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT d.article, d.lang, d.detail FROM deliveries d JOIN ("
            f"SELECT MIN(id) AS id FROM deliveries WHERE {condition} GROUP BY article, lang"
            ") f ON d.id = f.id ORDER BY d.id",
            (channel,),
        )
        return {(row["article"], row["lang"]): json.loads(row["detail"] or "{}") for row in rows}


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
        clauses.append(f" AND state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    return "".join(clauses), params


# --- subscribers -------------------------------------------------------------------------------------------

_SUBSCRIBER_COLUMNS = "email, name, lang, status, themes, created_at, confirmed_at, updated_at"


def _subscriber(row: sqlite3.Row) -> Subscriber:
    from datetime import datetime

    from publisher.subscribers import Subscriber

    return Subscriber(
        email=row["email"], name=row["name"], lang=row["lang"], status=row["status"],
        themes=[theme for theme in row["themes"].split(",") if theme],
        created_at=datetime.fromisoformat(row["created_at"]),
        confirmed_at=datetime.fromisoformat(row["confirmed_at"]) if row["confirmed_at"] else None,
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class SqliteSubscribers:
    """The ``subscribers`` table (``publisher.store.SubscriberStore``); themes are kept comma-separated."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

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

    def update(
        self,
        email_key: str,
        *,
        status: str | None = None,
        lang: str | None = None,
        themes: Sequence[str] | None = None,
        confirm: bool = False,
        unless_status: str | None = None,
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
            where += " AND status != ?"
            params.append(unless_status)
        if only_status is not None:
            where += " AND status = ?"
            params.append(only_status)
        cursor = self.conn.execute(f"UPDATE subscribers SET {', '.join(sets)} WHERE {where}", params)
        return cursor.rowcount > 0

    def delete(self, email_key: str) -> bool:
        cursor = self.conn.execute("DELETE FROM subscribers WHERE email_key = ?", (email_key,))
        return cursor.rowcount > 0

    def iterate(
        self, *, status: str | None = None, lang: str | None = None, theme: str | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Subscriber]:
        where, params = _subscriber_filters(status, lang, theme)
        where += " AND id > ?" if where else " WHERE id > ?"
        query = f"SELECT id, {_SUBSCRIBER_COLUMNS} FROM subscribers{where} ORDER BY id LIMIT ?"
        last_id = 0
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


# --- the rendered-bodies cache of the feeds ----------------------------------------------------------------


class _CacheFile:
    """A SQLite file that only holds a cache: opened on first use; a damaged file is deleted and started again."""

    SCHEMA: tuple[str, ...] = ()

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
    """Rendered bodies in a SQLite file of their own (``publisher.store.FeedCache``)."""

    SCHEMA = ("CREATE TABLE IF NOT EXISTS bodies (key TEXT PRIMARY KEY, html TEXT NOT NULL)",)

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), 900):
            rows = self._connection().execute(
                f"SELECT key, html FROM bodies WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        entries = list(items)
        if not entries:
            return
        with transaction(self._connection()):
            self._connection().executemany("INSERT OR REPLACE INTO bodies VALUES (?, ?)", entries)

    def keep_only(self, keys: Iterable[str]) -> None:
        db = self._connection()
        with transaction(db):
            db.execute("CREATE TEMP TABLE IF NOT EXISTS used (key TEXT PRIMARY KEY)")
            db.execute("DELETE FROM used")
            db.executemany("INSERT OR IGNORE INTO used VALUES (?)", ((key,) for key in keys))
            db.execute("DELETE FROM bodies WHERE key NOT IN (SELECT key FROM used)")


# --- the content index -------------------------------------------------------------------------------------


class SqliteContentIndex(_CacheFile):
    """Parsed content files in a SQLite file of their own (``publisher.store.ContentIndex``)."""

    SCHEMA = ("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
              "mtime_ns INTEGER NOT NULL, context TEXT NOT NULL, fields TEXT NOT NULL, body TEXT NOT NULL)",)

    def get_many(self, paths: Iterable[str]) -> dict[str, IndexedFile]:
        found: dict[str, IndexedFile] = {}
        for chunk in _chunks(list(dict.fromkeys(paths)), 900):
            rows = self._connection().execute(
                "SELECT path, size, mtime_ns, context, fields, body FROM files "
                f"WHERE path IN ({','.join('?' * len(chunk))})", chunk)
            found.update((row[0], IndexedFile(*row)) for row in rows)
        return found

    def put_many(self, entries: Iterable[IndexedFile]) -> None:
        rows = [(e.path, e.size, e.mtime_ns, e.context, e.fields, e.body) for e in entries]
        if not rows:
            return
        db = self._connection()
        with transaction(db):
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)

    def keep_only(self, paths: Iterable[str]) -> None:
        db = self._connection()
        with transaction(db):
            db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (path TEXT PRIMARY KEY)")
            db.execute("DELETE FROM kept")
            db.executemany("INSERT OR IGNORE INTO kept VALUES (?)", ((path,) for path in paths))
            db.execute("DELETE FROM files WHERE path NOT IN (SELECT path FROM kept)")


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
        feed_cache: interfaces.FeedCache = cache
        render_cache: delivery.RenderCache = cache
        content_index: interfaces.ContentIndex = index
        del checked_store, ledger, versions, subscribers, memory, limits, feed_cache, render_cache, content_index
