"""The storage layer on PostgreSQL (psycopg 3 and psycopg_pool), migrated from ``migrations/postgresql/``.

The same tables, columns and values as ``store/sqlite.py``: timestamps are the same ISO text (``format_time``),
details and payloads the same JSON text, and every method returns the same value types, so a site may move
from one database to the other (``publisher db copy``) and the rest of the package never knows which it has.

What differs is concurrency. SQLite serializes writers (``BEGIN IMMEDIATE``); PostgreSQL runs them side by
side, so each change that reads a row before writing it locks that row (``FOR UPDATE``; a worker claiming a
job skips the rows another one holds, ``SKIP LOCKED``), and named locks are advisory locks held on a
connection of their own, released by the server when that connection ends (a killed process holds nothing).

Connections come from a pool per store: the store keeps one for its statements and transactions (in
autocommit mode, like the SQLite store: ``transaction()`` groups writes; nested, it is a savepoint), and each
held lock borrows another. psycopg is imported only when a PostgreSQL store is opened.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.delivery import STATES, Delivery, DeliveryKey, Lease
from publisher.errors import ConnectionLost, DatabaseUnreachable, LockBusy, PublisherError, StorageError
from publisher.settings import redact_database_url, redact_secret_text
from publisher.store.common import delivery_from_row as _delivery
from publisher.store.common import first_detail_per_version, first_of_each_key, job_states, migration_files
from publisher.store.common import job_from_row as _job
from publisher.store.common import moment as _moment
from publisher.store.common import subscriber_from_row as _subscriber
from publisher.store.interfaces import (BULK_CHANNEL, Clock, Job, Mark, format_time, pick_version_details,
                                        take_tokens, utc_now)

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from publisher.store.sqlite import SqliteFeedCache
    from publisher.subscribers import Subscriber

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "postgresql"
# Keys per statement of the bulk helpers (each column goes as one array parameter, so this bounds only the
# size of one statement, not a parameter count).
_CHUNK = 5000
# Connections per store: its own, plus one per lock held at the same time.
POOL_MAX = 8
CONNECT_TIMEOUT = 10   # seconds, unless the URL says otherwise (connect_timeout=)
# SQLSTATE classes that mean the server, the network or the disk, not the statement: 08 connection, 53
# insufficient resources (disk full, out of memory), 57 operator intervention (shutdown), 58 system error.
_OUTSIDE_CLASSES = ("08", "53", "57", "58")
# How long a store waits, by default, for a server that dropped its connection to take connections again
# (PUBLISHER_DATABASE_RECONNECT_SECONDS); the first connection of a store never waits (a wrong URL is one line).
RECONNECT_SECONDS = 60.0


def redact(url: str) -> str:
    """The URL as messages show it: the password replaced by ``***``."""
    return redact_database_url(url)


def _storage_error(url: str, error: BaseException) -> StorageError:
    message = " ".join(str(error).split()) or type(error).__name__
    return StorageError(redact(url), f"PostgreSQL: {redact_secret_text(message, url)}")


def _is_outside(error: BaseException) -> bool:
    """True for an error whose cause is the server, the network or the disk (a ``StorageError``)."""
    import psycopg

    if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)) and not isinstance(
            error, psycopg.errors.QueryCanceled):
        return True
    state = getattr(error, "sqlstate", None)
    return isinstance(state, str) and state[:2] in _OUTSIDE_CLASSES


def _is_lost(error: BaseException) -> bool:
    """True for an error that says the connection is gone or the server is restarting (class 08, 57P01-57P03):
    what a reconnection may cure, unlike a full disk or a statement's own error."""
    import psycopg

    state = getattr(error, "sqlstate", None)
    if isinstance(state, str):
        return state[:2] == "08" or state in ("57P01", "57P02", "57P03")
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)) and not isinstance(
        error, psycopg.errors.QueryCanceled)


@contextmanager
def _translated(url: str) -> Iterator[None]:
    """Run the block, raising what the server or the network says as a ``StorageError`` naming the database
    (its password redacted); errors of the statement itself (a constraint) go up unchanged."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        if _is_outside(exc):
            raise _storage_error(url, exc) from None
        raise


# --- migrations --------------------------------------------------------------------------------------------


def migrations() -> list[tuple[int, str, Path]]:
    """``(version, name, path)`` of every PostgreSQL migration, in order."""
    return migration_files(MIGRATIONS_DIR)


def lock_key(namespace: str, name: str) -> int:
    """The advisory lock number of lock ``name`` in ``namespace`` (the database and schema): a signed 64-bit
    hash, so every name has its own lock and two sites in two schemas of one database never share one."""
    digest = hashlib.blake2b(f"{namespace}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def applied_versions(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """``version -> name`` of the migrations recorded in the database (empty for a new database)."""
    row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return {}
    return {int(v): str(n) for v, n in conn.execute("SELECT version, name FROM schema_migrations")}


def migrate(conn: psycopg.Connection[Any], *, clock: Clock | None = None, url: str = "") -> list[str]:
    """Apply each migration not yet recorded, each in its own transaction; return the names applied.

    An advisory lock held meanwhile makes processes that open a new database together take turns: the second
    sees what the first applied.
    """
    import psycopg

    namespace = _namespace(conn)
    key = lock_key(namespace, "publisher:migrate")
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        done = applied_versions(conn)
        applied = []
        for version, name, path in migrations():
            if version in done:
                continue
            script = path.read_text(encoding="utf-8")
            try:
                with conn.transaction():
                    # No parameters: psycopg sends the script as one simple query, every statement of it.
                    conn.execute(script.encode("utf-8"))
                    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                                 (version, name, format_time((clock or utc_now)())))
            except psycopg.Error as exc:
                if _is_outside(exc):
                    raise _storage_error(url, exc) from None
                raise PublisherError(f"{path.name}: migration failed: {' '.join(str(exc).split())}") from None
            applied.append(name)
        return applied
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _namespace(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_database(), current_schema()").fetchone()
    if row is None or row[1] is None:
        raise PublisherError("PostgreSQL: no schema to create the tables in; check search_path in the URL")
    return f"{row[0]}.{row[1]}"


def _conninfo(url: str) -> str:
    """``url`` with ``connect_timeout`` added unless it has one: an unreachable server is an error in seconds."""
    if "connect_timeout" in url:
        return url
    return url + ("&" if "?" in url else "?") + f"connect_timeout={CONNECT_TIMEOUT}"


def connect(url: str) -> psycopg.Connection[Any]:
    """One connection in autocommit mode (a ``StorageError`` naming the redacted URL if it cannot be made)."""
    import psycopg

    try:
        return psycopg.connect(_conninfo(url), autocommit=True)
    except psycopg.Error as exc:
        raise _storage_error(url, exc) from None


def _unlock(conn: psycopg.Connection[Any], key: int) -> None:
    """Let go of advisory lock ``key``; a session the server already ended (a restart) held nothing any more."""
    import psycopg

    try:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    except psycopg.Error as exc:
        if not _is_lost(exc):
            raise


def _brief(error: BaseException) -> str:
    """The first line of a driver's message, for the line that says why the store gave up."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _reset(conn: psycopg.Connection[Any]) -> None:
    """Before the pool hands a connection on: no lock may outlive its holder's use of it."""
    conn.execute("SELECT pg_advisory_unlock_all()")


# --- the store ---------------------------------------------------------------------------------------------


class PostgresStore:
    """A site's storage in a PostgreSQL database, opened and migrated on first use (``open_store``)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, state_dir: Path, shared: bool = False, clock: Clock | None = None,
                 reconnect: float = RECONNECT_SECONDS) -> None:
        self.url = url
        self.reconnect = reconnect   # seconds to wait for a server that dropped the connection (a restart)
        self.state_dir = state_dir
        # psycopg connections may be used from any thread (each statement holds the connection's lock), so
        # ``shared`` changes nothing here: the caller still serializes transactions, as with SQLite.
        self.shared = shared
        self.clock: Clock = clock or utc_now
        self._pool: ConnectionPool[Any] | None = None
        self._connection: psycopg.Connection[Any] | None = None
        self._namespace = ""
        self._applied: list[str] = []
        self._opening = threading.Lock()
        self._depth = 0   # transactions open on the connection (a dropped connection is replaced only at 0)
        self._reconnected = False   # set once the server dropped a connection: opening again may then wait
        self._ledger = PostgresLedger(self)
        self._subscribers = PostgresSubscribers(self)
        self._memory = PostgresTranslationMemory(self)
        self._rate_limits = PostgresRateLimits(self)
        self._jobs = PostgresJobs(self)
        self._buckets = PostgresTokenBuckets(self)
        self._feed_cache: SqliteFeedCache | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.url)!r})"

    # --- connections -------------------------------------------------------------------------------------

    def _open_pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            import logging

            from psycopg_pool import ConnectionPool, PoolTimeout

            # The pool logs each failed attempt of its own to refill itself while a server restarts; the store
            # says what matters in one line, so those warnings reach no console unless logging is configured.
            pool_log = logging.getLogger("psycopg.pool")
            if not pool_log.handlers:
                pool_log.addHandler(logging.NullHandler())

            # The first connection is made here, directly: a wrong password or an unreachable server is then
            # the server's own message, not the pool's timeout.
            connect(self.url).close()
            pool: ConnectionPool[Any] = ConnectionPool(
                _conninfo(self.url), min_size=1, max_size=POOL_MAX, kwargs={"autocommit": True}, reset=_reset,
                check=ConnectionPool.check_connection, open=False, timeout=30, name="publisher")
            try:
                pool.open(wait=True, timeout=30)
            except PoolTimeout as exc:
                pool.close()
                raise _storage_error(self.url, exc) from None
            self._pool = pool
        return self._pool

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The store's migrated connection (for the store's own classes and for tests that inspect tables).

        A connection the server dropped (a restart) is replaced when no transaction is open on it, waiting up to
        ``reconnect`` seconds for the server to take connections again.
        """
        with self._opening:
            conn = self._connection
            if conn is not None and (conn.closed or conn.broken) and self._pool is not None:
                if self._depth:
                    raise ConnectionLost(redact(self.url), "PostgreSQL: the connection was lost during a "
                                         "transaction; it was rolled back")
                self._reconnect()
                conn = None
            if conn is None:
                conn = self._attach()
                self._connection = conn
            return conn

    def _attach(self) -> psycopg.Connection[Any]:
        """Take the store's connection from the pool, migrated. After a reconnection, one the server drops again
        at once (restarted twice in a row) is replaced the same way, a few times."""
        for again in range(4):
            pool = self._open_pool()
            conn: psycopg.Connection[Any] | None = None
            try:
                with _translated(self.url):
                    conn = pool.getconn()
                    self._namespace = _namespace(conn)
                    self._applied += migrate(conn, clock=self.clock, url=self.url)
                return conn
            except StorageError as exc:
                lost = conn is not None and (conn.broken or conn.closed)
                if not (self._reconnected and lost and again < 3):
                    raise
                self._reconnect(f"again: {exc.cause}")
        raise AssertionError("unreachable")   # the loop returns or raises

    def _reconnect(self, cause: str | None = None) -> None:
        """The server dropped the store's connection (a restart, a failover): drop the pool, whose connections
        are all gone with it, and wait for the server to take a new one, up to ``reconnect`` seconds, trying
        again after 0.1 s, 0.2 s... (at most 2 s apart); then a ``StorageError`` of one line says so. Called
        with the store's lock held and no transaction open."""
        pool, self._pool, self._connection = self._pool, None, None
        self._reconnected = True
        if pool is not None:
            try:
                pool.close(timeout=1)
            except Exception:   # noqa: BLE001 - its connections are gone; nothing to close cleanly
                pass
        deadline = time.monotonic() + self.reconnect
        delay = 0.1
        while True:
            try:
                self._open_pool()
                return
            except StorageError as exc:
                last = exc.cause
            if time.monotonic() + delay > deadline:
                why = f" ({cause})" if cause is not None else ""
                raise DatabaseUnreachable(redact(self.url), f"PostgreSQL: the connection was lost{why} and the "
                                          f"server could not be reached again within {self.reconnect:g} s "
                                          f"(PUBLISHER_DATABASE_RECONNECT_SECONDS): {last}") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run one statement on the store's connection; rows come as dicts by column name.

        Outside a transaction, a statement that met a dropped connection runs again once the store has
        reconnected: the connection was found gone when the statement was sent (the server restarted while
        it was idle), and each statement of the store outside a transaction either reads or sets values.
        Inside one, the transaction is lost: ``ConnectionLost``, for the caller to run it again.
        """
        import psycopg
        from psycopg.rows import dict_row

        conn = self.connection
        try:
            return conn.cursor(row_factory=dict_row).execute(sql, params)
        except psycopg.Error as exc:
            if not _is_lost(exc):
                with _translated(self.url):
                    raise
            if self._depth:
                raise ConnectionLost(redact(self.url), "PostgreSQL: the connection was lost during a "
                                     "transaction; it was rolled back") from None
            with self._opening:
                if self._connection is conn:
                    self._reconnect(_brief(exc))
        with _translated(self.url):
            return self.connection.cursor(row_factory=dict_row).execute(sql, params)

    def now(self) -> str:
        return format_time(self.clock())

    # --- parts -------------------------------------------------------------------------------------------

    @property
    def ledger(self) -> PostgresLedger:
        return self._ledger

    @property
    def subscribers(self) -> PostgresSubscribers:
        return self._subscribers

    @property
    def translation_memory(self) -> PostgresTranslationMemory:
        return self._memory

    @property
    def rate_limits(self) -> PostgresRateLimits:
        return self._rate_limits

    @property
    def jobs(self) -> PostgresJobs:
        return self._jobs

    @property
    def token_buckets(self) -> PostgresTokenBuckets:
        return self._buckets

    def feed_cache(self) -> SqliteFeedCache:
        # A cache file of this machine, as with SQLite: bulky HTML that costs only time to lose stays out of
        # the shared database.
        from publisher.store.sqlite import SqliteFeedCache

        if self._feed_cache is None:
            self._feed_cache = SqliteFeedCache(self.state_dir / "cache" / "feed-bodies.sqlite")
        return self._feed_cache

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn, tx = self._begin()
        self._depth += 1
        try:
            with _translated(self.url):
                try:
                    yield
                except BaseException as exc:
                    if not tx.__exit__(type(exc), exc, exc.__traceback__):   # rolled back
                        raise
                else:
                    tx.__exit__(None, None, None)   # committed
        except StorageError as exc:
            if type(exc) is StorageError and self._depth == 1 and (conn.broken or conn.closed):
                raise ConnectionLost(exc.path, exc.cause) from None   # the server went away mid-transaction
            raise
        finally:
            self._depth -= 1

    def _begin(self) -> tuple[psycopg.Connection[Any], AbstractContextManager[Any]]:
        """Start a transaction (a savepoint inside one). An outermost one whose BEGIN meets a dropped
        connection (the server restarted while the store was idle) starts on a new one: nothing had run yet."""
        import psycopg

        conn = self.connection
        tx = conn.transaction()
        try:
            tx.__enter__()
            return conn, tx
        except psycopg.Error as exc:
            if self._depth or not _is_lost(exc):
                with _translated(self.url):
                    raise
            with self._opening:
                if self._connection is conn:
                    self._reconnect(_brief(exc))
        conn = self.connection
        tx = conn.transaction()
        with _translated(self.url):
            tx.__enter__()
        return conn, tx

    def lock(self, name: str, *, wait: bool) -> AbstractContextManager[None]:
        return self._lock(name, wait=wait)

    @contextmanager
    def _lock(self, name: str, *, wait: bool) -> Iterator[None]:
        """An advisory lock on a pooled connection of its own: held by the server for that session, freed when
        the holder lets go or its connection ends (a killed process); two threads exclude each other too."""
        self.connection  # noqa: B018 - migrated, and the namespace known
        key = lock_key(self._namespace, name)
        pool = self._open_pool()
        with _translated(self.url), pool.connection() as conn:
            if wait:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            else:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if row is None or not row[0]:
                    raise LockBusy(name)
            try:
                yield
            finally:
                if not conn.broken:
                    _unlock(conn, key)

    def migrate(self) -> list[str]:
        if self._connection is None:
            self.connection  # noqa: B018 - opening migrates
            return list(self._applied)
        with _translated(self.url):
            return migrate(self.connection, clock=self.clock, url=self.url)

    def close(self) -> None:
        if self._feed_cache is not None:
            self._feed_cache.close()
        with self._opening:
            if self._pool is not None:
                if self._connection is not None:
                    self._pool.putconn(self._connection)
                    self._connection = None
                self._pool.close()
                self._pool = None


# --- the ledger --------------------------------------------------------------------------------------------

_COLUMNS = ("id, article, lang, channel, target, state, remote_id, remote_url, attempts, last_error, detail, "
            "created_at, updated_at, worker, lease_until, lease_exclusive")
_D_COLUMNS = ", ".join("d." + column.strip() for column in _COLUMNS.split(","))
_KEYS = "unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS k(article, lang, channel, target)"
_MATCH_KEY = "d.article = k.article AND d.lang = k.lang AND d.channel = k.channel AND d.target = k.target"


# The shared queue's claim: the rows of one bulletin in one state (and, for in_flight, whose lease ran out),
# by id, locked as they are read and skipping those another worker has locked; returned as they were before.
_CLAIM_QUEUED = (
    "UPDATE deliveries d SET state = 'in_flight', attempts = d.attempts + 1, worker = %s, lease_until = %s,"
    " lease_exclusive = 0, updated_at = %s"
    " FROM (SELECT id, state, attempts, updated_at, worker, lease_until, lease_exclusive FROM deliveries"
    " WHERE state = %s AND article = %s AND channel = %s{expired} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) old"
    " WHERE d.id = old.id RETURNING d.id, d.article, d.lang, d.channel, d.target, old.state, d.remote_id,"
    " d.remote_url, old.attempts, d.last_error, d.detail, d.created_at, old.updated_at, old.worker,"
    " old.lease_until, old.lease_exclusive")


# The channels that have rows in one state: one seek of (state, channel, id) per channel.
_CHANNELS_OF_STATE = (
    "WITH RECURSIVE c(channel) AS (SELECT MIN(channel) FROM deliveries WHERE state = %s UNION ALL"
    " SELECT (SELECT MIN(channel) FROM deliveries WHERE state = %s AND channel > c.channel) FROM c"
    " WHERE c.channel IS NOT NULL) SELECT channel FROM c WHERE channel IS NOT NULL")


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown delivery state {state!r}")


def _key_arrays(keys: Sequence[DeliveryKey]) -> list[list[str]]:
    return [[key.article for key in keys], [key.lang for key in keys], [key.channel for key in keys],
            [key.target for key in keys]]


def _not_bulk(channel: str) -> str:
    """The condition of the partial indexes deliveries_with_detail and deliveries_channel_versions (migration
    0090: they hold no email row, one per recipient and written three times), for a query of ``channel`` to
    repeat so the planner may use them; nothing for email itself, whose rows they do not hold."""
    return "" if channel == BULK_CHANNEL else f" AND channel <> '{BULK_CHANNEL}'"


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _filter(article: str | None, channel: str | None, state: str | None, lang: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("article", article), ("channel", channel), ("lang", lang), ("state", state)):
        if value is not None:
            clauses.append(f" AND {column} = %s")
            params.append(value)
    return "".join(clauses), params


class PostgresLedger:
    """The ``deliveries`` table (``publisher.store.Ledger``)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def get(self, key: DeliveryKey) -> Delivery | None:
        row = self.store.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE article = %s AND lang = %s AND channel = %s AND target = %s",
            (key.article, key.lang, key.channel, key.target)).fetchone()
        return _delivery(row) if row else None

    def get_many(self, keys: Iterable[DeliveryKey]) -> dict[DeliveryKey, Delivery]:
        found: dict[DeliveryKey, Delivery] = {}
        for chunk in _chunks(list(keys)):
            for row in self.store.execute(f"SELECT {_D_COLUMNS} FROM deliveries d JOIN {_KEYS} ON {_MATCH_KEY}",
                                          _key_arrays(chunk)).fetchall():
                delivery = _delivery(row)
                found[delivery.key] = delivery
        return found

    def transaction(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def batch(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def begin(self, key: DeliveryKey) -> Delivery:
        values = (key.article, key.lang, key.channel, key.target)
        with self.store.transaction():
            # The row locked while it is read: another process beginning it waits, then sees this attempt.
            row = self.store.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE article = %s AND lang = %s AND channel = %s"
                " AND target = %s FOR UPDATE", values).fetchone()
            before = _delivery(row) if row else Delivery(key)
            now = self.store.now()
            self.store.execute(
                "INSERT INTO deliveries AS d (article, lang, channel, target, state, attempts, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, 'in_flight', 1, %s, %s)"
                " ON CONFLICT (article, lang, channel, target) DO UPDATE SET"
                " state = 'in_flight', attempts = d.attempts + 1, updated_at = excluded.updated_at",
                (*values, now, now))
        return before

    def begin_many(self, keys: list[DeliveryKey]) -> None:
        with self.store.transaction():
            for chunk in _chunks(keys):
                self.store.execute(
                    f"UPDATE deliveries d SET state = 'in_flight', attempts = d.attempts + 1, updated_at = %s"
                    f" FROM {_KEYS} WHERE {_MATCH_KEY}", [self.store.now(), *_key_arrays(chunk)])

    def claim_many(self, claims: Sequence[tuple[DeliveryKey, Delivery | None]], lease: Lease) -> set[DeliveryKey]:
        claimed: set[DeliveryKey] = set()
        with self.store.transaction():
            for chunk in _chunks(list(claims)):
                keys = [key for key, _ in chunk]
                # One UPDATE: PostgreSQL checks the WHERE again on each row it locked, so a row another worker
                # claimed (or renewed) since it was read is left alone.
                rows = self.store.execute(
                    "UPDATE deliveries d SET state = 'in_flight', attempts = d.attempts + 1, worker = %s,"
                    " lease_until = %s, lease_exclusive = %s, updated_at = %s"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
                    " %s::text[]) AS k(article, lang, channel, target, state, worker, lease_until)"
                    f" WHERE {_MATCH_KEY} AND d.state = k.state AND d.worker IS NOT DISTINCT FROM k.worker"
                    " AND d.lease_until IS NOT DISTINCT FROM k.lease_until"
                    " RETURNING d.article, d.lang, d.channel, d.target",
                    [lease.worker, format_time(lease.until), int(lease.exclusive), self.store.now(),
                     *_key_arrays(keys), [row.state if row else "pending" for _, row in chunk],
                     [row.worker if row else None for _, row in chunk],
                     [row.lease_until if row else None for _, row in chunk]]).fetchall()
                claimed.update(DeliveryKey(r["article"], r["lang"], r["channel"], r["target"]) for r in rows)
        return claimed

    def claim_queued(self, article: str, channel: str, lease: Lease, now: datetime, limit: int) -> list[Delivery]:
        found: list[Delivery] = []
        stamp = format_time(now)
        with self.store.transaction():
            for state, expired, extra in (("in_flight", " AND (lease_until IS NULL OR lease_until < %s)", [stamp]),
                                          ("pending", "", [])):
                if len(found) >= limit:
                    break
                rows = self.store.execute(
                    _CLAIM_QUEUED.format(expired=expired),
                    [lease.worker, format_time(lease.until), self.store.now(), state, article, channel, *extra,
                     limit - len(found)]).fetchall()
                found += [_delivery(row) for row in sorted(rows, key=lambda row: int(row["id"]))]
        return found

    def renew(self, worker: str, until: datetime) -> int:
        cursor = self.store.execute(
            "UPDATE deliveries SET lease_until = %s WHERE state = 'in_flight' AND worker = %s",
            (format_time(until), worker))
        return max(int(cursor.rowcount), 0)

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
        self.store.execute(
            "INSERT INTO deliveries AS d (article, lang, channel, target, state, remote_id, remote_url, last_error,"
            " detail, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (article, lang, channel, target) DO UPDATE SET state = excluded.state,"
            " remote_id = COALESCE(excluded.remote_id, d.remote_id),"
            " remote_url = COALESCE(excluded.remote_url, d.remote_url), last_error = excluded.last_error,"
            " detail = CASE WHEN %s THEN excluded.detail ELSE d.detail END, updated_at = excluded.updated_at",
            (key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
             Delivery.detail_json(detail), now, now, detail is not None))

    def mark_many(self, marks: Iterable[Mark]) -> None:
        rows = list(marks)
        for row in rows:
            _check_state(row[1])   # all checked before anything is written
        if not rows:
            return
        now = self.store.now()
        with self.store.transaction():
            for chunk in _chunks(rows):
                keys = [mark[0] for mark in chunk]
                self.store.execute(
                    "UPDATE deliveries d SET state = k.state, remote_id = COALESCE(k.remote_id, d.remote_id),"
                    " remote_url = COALESCE(k.remote_url, d.remote_url), last_error = k.error,"
                    " detail = COALESCE(k.detail, d.detail), updated_at = %s"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
                    " %s::text[], %s::text[], %s::text[])"
                    " AS k(article, lang, channel, target, state, remote_id, remote_url, error, detail)"
                    f" WHERE {_MATCH_KEY}",
                    [now, *_key_arrays(keys), [m[1] for m in chunk], [m[2] for m in chunk], [m[3] for m in chunk],
                     [m[4] for m in chunk],
                     [None if m[5] is None else Delivery.detail_json(m[5]) for m in chunk]])

    def ensure_pending(self, keys: Iterable[DeliveryKey], *, batch_size: int = 5000) -> int:
        added = 0
        batch: list[DeliveryKey] = []

        def flush() -> int:
            if not batch:
                return 0
            now = self.store.now()
            with self.store.transaction():
                cursor = self.store.execute(
                    "INSERT INTO deliveries (article, lang, channel, target, created_at, updated_at)"
                    f" SELECT k.article, k.lang, k.channel, k.target, %s, %s FROM {_KEYS}"
                    " ON CONFLICT (article, lang, channel, target) DO NOTHING",
                    [now, now, *_key_arrays(batch)])
            batch.clear()
            return max(int(cursor.rowcount), 0)

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
            for _, delivery in self._pages(None, None, None, None, batch_size):
                yield delivery
            return
        # One stream per state, each paged by id on an index that starts with the state, merged by id.
        states = list(STATES) if state is None else [state] if isinstance(state, str) else list(dict.fromkeys(state))
        for one in states:
            _check_state(one)
        if article is None and channel is None:
            # No (state, id) index to write on every delivery: a state's rows are one id-ordered range of
            # (state, channel, id) per channel, merged; the channels found by a few index seeks.
            streams = [self._pages(article, row["channel"], one, lang, batch_size) for one in states
                       for row in self.store.execute(_CHANNELS_OF_STATE, (one, one)).fetchall()]
        else:
            streams = [self._pages(article, channel, one, lang, batch_size) for one in states]
        for _, delivery in heapq.merge(*streams, key=lambda pair: pair[0]):
            yield delivery

    def _pages(self, article: str | None, channel: str | None, state: str | None, lang: str | None,
               limit: int) -> Iterator[tuple[int, Delivery]]:
        """Rows in id order, one short query per page (keyset on id), so no read stays open between pages."""
        where, params = _filter(article, channel, state, lang)
        last_id = 0
        while True:
            rows = self.store.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id > %s{where} ORDER BY id LIMIT %s",
                                      [last_id, *params, limit]).fetchall()
            for row in rows:
                yield int(row["id"]), _delivery(row)
            if not rows:
                return
            last_id = int(rows[-1]["id"])

    def counts(
        self, article: str | None = None, channel: str | None = None, lang: str | None = None,
        *, states: Iterable[str] | None = None,
    ) -> dict[str, int]:
        wanted = STATES if states is None else tuple(states)
        for state in wanted:
            _check_state(state)
        where, params = _filter(article, channel, None, lang)
        found = {row["state"]: int(row["n"]) for row in self.store.execute(
            f"SELECT state, COUNT(*) AS n FROM deliveries WHERE state = ANY(%s::text[]){where} GROUP BY state",
            [list(wanted), *params])}
        return {state: found.get(state, 0) for state in wanted}

    def articles(self, limit: int | None = None) -> Iterator[str]:
        """Every article of the ledger, the one that appeared last first (at most ``limit``)."""
        if limit is None:
            rows = self.store.execute("SELECT article FROM ledger_articles ORDER BY id DESC").fetchall()
        else:
            rows = self.store.execute("SELECT article FROM ledger_articles ORDER BY id DESC LIMIT %s",
                                      (limit,)).fetchall()
        yield from (row["article"] for row in rows)

    def summary(
        self, article: str | None = None, channel: str | None = None
    ) -> dict[tuple[str, str, str], dict[str, int]]:
        where, params = _filter(article, channel, None, None)
        result: dict[tuple[str, str, str], dict[str, int]] = {}
        for row in self.store.execute(
                f"SELECT article, lang, channel, state, COUNT(*) AS n FROM deliveries WHERE TRUE{where}"
                " GROUP BY article, lang, channel, state", params):
            result.setdefault((row["article"], row["lang"], row["channel"]), {})[row["state"]] = int(row["n"])
        return dict(sorted(result.items()))

    def published(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._first_per_version(
            "SELECT id, article, lang, detail FROM deliveries WHERE state = 'sent' AND channel = %s AND id > %s"
            " ORDER BY id LIMIT %s", channel)

    def first_details(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        # The condition repeats the partial index's own WHERE, so the planner may use it (the index holds no
        # email row: migration 0090; see _not_bulk).
        return self._first_per_version(
            "SELECT id, article, lang, detail FROM deliveries WHERE channel = %s AND detail NOT IN ('', '{}')"
            f"{_not_bulk(channel)} AND id > %s ORDER BY id LIMIT %s", channel)

    def published_versions(self, channel: str) -> set[tuple[str, str]]:
        # an index-only scan of deliveries_channel_versions
        return {(row["article"], row["lang"]) for row in self.store.execute(
            f"SELECT DISTINCT article, lang FROM deliveries WHERE channel = %s AND state = 'sent'{_not_bulk(channel)}",
            (channel,))}

    def version_details(
        self, channel: str, versions: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        # Each version's few rows through the unique key's prefix (article, lang, channel).
        wanted = list(dict.fromkeys(versions))
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(wanted):
            found = self.store.execute(
                "SELECT d.id, d.article, d.lang, d.state, d.detail FROM unnest(%s::text[], %s::text[]) AS"
                " v(article, lang) JOIN deliveries d ON d.article = v.article AND d.lang = v.lang AND d.channel = %s",
                ([article for article, _ in chunk], [lang for _, lang in chunk], channel)).fetchall()
            rows += [(row["id"], row["article"], row["lang"], row["state"], row["detail"]) for row in found]
        return pick_version_details(rows)

    def channel_fingerprint(self, channel: str) -> str:
        rows = self.store.execute("SELECT state, COUNT(*) AS n, MAX(id) AS last FROM deliveries WHERE channel = %s"
                                  f"{_not_bulk(channel)} GROUP BY state ORDER BY state", (channel,)).fetchall()
        return ";".join(f"{row['state']}={row['n']}/{row['last']}" for row in rows)

    def _first_per_version(self, sql: str, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        # In id order, the first row of each version wins.
        return first_detail_per_version(lambda last_id: self.store.execute(sql, (channel, last_id, 1000)).fetchall())


# --- subscribers -------------------------------------------------------------------------------------------

_SUBSCRIBER_COLUMNS = ("id, email, name, lang, status, themes, created_at, confirmed_at, updated_at, status_reason,"
                       " status_at")


def _subscriber_filters(status: str | None, lang: str | None, theme: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if status is not None:
        clauses.append("status = %s")
        params.append(status)
    if lang is not None:
        clauses.append("lang = %s")
        params.append(lang)
    if theme is not None:
        # No themes chosen means every theme.
        clauses.append("(themes = '' OR strpos(',' || themes || ',', %s) > 0)")
        params.append(f",{theme.lower()},")
    return (" WHERE " + " AND ".join(clauses) if clauses else "", params)


class PostgresSubscribers:
    """The ``subscribers`` table (``publisher.store.SubscriberStore``); themes are kept comma-separated."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._import_position = 0   # the list's end when the current import started (``start_import``)

    def transaction(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def insert(self, *, email: str, email_key: str, name: str | None, lang: str, status: str,
               themes: Sequence[str], confirmed: bool) -> bool:
        now = self.store.now()
        cursor = self.store.execute(
            "INSERT INTO subscribers"
            " (email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (email_key) DO NOTHING",
            (email, email_key, name, lang, status, ",".join(themes), now, now if confirmed else None, now))
        return int(cursor.rowcount) > 0

    def get(self, email_key: str) -> Subscriber | None:
        row = self.store.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE email_key = %s",
                                 (email_key,)).fetchone()
        return _subscriber(row) if row else None

    def position(self) -> int:
        return int(self.store.execute("SELECT COALESCE(MAX(id), 0) AS n FROM subscribers").fetchone()["n"])

    def start_import(self) -> None:
        # A temporary table: this connection's only (it stays with the pooled connection, emptied here).
        self.store.execute("CREATE TEMP TABLE IF NOT EXISTS import_seen (email_key TEXT COLLATE \"C\" PRIMARY KEY)")
        self.store.execute("DELETE FROM pg_temp.import_seen")
        self._import_position = self.position()

    def import_batch(self, rows: Sequence[tuple[str, str, str | None, str]], *, status: str,
                     confirmed: bool) -> tuple[int, int, list[int]]:
        first, repeated = first_of_each_key(rows)
        if not first:
            return 0, 0, repeated
        now = self.store.now()
        fresh = [rows[index] for index in first.values()]
        # One statement for the batch, in file order (WITH ORDINALITY); RETURNING names the rows the unique
        # key let in, so the others are the addresses already there.
        added = {row["email_key"] for row in self.store.execute(
            "INSERT INTO subscribers"
            " (email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at)"
            " SELECT r.email, r.email_key, r.name, r.lang, %s, '', %s, %s, %s"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY"
            " AS r(email, email_key, name, lang, n) ORDER BY r.n"
            " ON CONFLICT (email_key) DO NOTHING RETURNING email_key",
            [status, now, now if confirmed else None, now, [r[0] for r in fresh], [r[1] for r in fresh],
             [r[2] for r in fresh], [r[3] for r in fresh]]).fetchall()}
        taken = [key for key in first if key not in added]
        present = 0
        for chunk in _chunks(taken):
            before: list[str] = []
            for row in self.store.execute("SELECT email_key, id FROM subscribers WHERE email_key = ANY(%s::text[])",
                                          [list(chunk)]):
                if row["id"] > self._import_position:
                    repeated.append(first[row["email_key"]])   # added by this import, from an earlier line
                else:
                    before.append(row["email_key"])
            met = {row["email_key"] for row in self.store.execute(
                "SELECT email_key FROM pg_temp.import_seen WHERE email_key = ANY(%s::text[])", [before])} \
                if before else set()
            for key in before:
                if key in met:
                    repeated.append(first[key])
                else:
                    present += 1
            new = [key for key in before if key not in met]
            if new:
                self.store.execute("INSERT INTO pg_temp.import_seen (email_key) SELECT unnest(%s::text[])", [new])
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
        sets: list[str] = ["updated_at = %s"]
        params: list[Any] = [now]
        for column, value in (("status", status), ("lang", lang),
                              ("themes", None if themes is None else ",".join(themes)),
                              ("confirmed_at", now if confirm else None)):
            if value is not None:
                sets.append(f"{column} = %s")
                params.append(value)
        where = "email_key = %s"
        params.append(email_key)
        if unless_status is not None:
            # One array parameter; an empty one excludes nothing, as SQLite's empty list does.
            where += " AND status <> ALL(%s::text[])"
            params.append([unless_status] if isinstance(unless_status, str) else list(unless_status))
        if only_status is not None:
            where += " AND status = %s"
            params.append(only_status)
        cursor = self.store.execute(f"UPDATE subscribers SET {', '.join(sets)} WHERE {where}", params)
        return int(cursor.rowcount) > 0

    def delete(self, email_key: str) -> bool:
        with self.store.transaction():
            cursor = self.store.execute("DELETE FROM subscribers WHERE email_key = %s", (email_key,))
            deleted = int(cursor.rowcount) > 0
            self.store.execute("DELETE FROM bounce_events WHERE email_key = %s", (email_key,))
        return deleted

    def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        row = self.store.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = %s",
                                 (subscriber_id,)).fetchone()
        return _subscriber(row) if row else None

    def get_many(self, email_keys: Iterable[str]) -> dict[str, Subscriber]:
        found: dict[str, Subscriber] = {}
        for chunk in _chunks(list(dict.fromkeys(email_keys))):
            rows = self.store.execute(f"SELECT email_key, {_SUBSCRIBER_COLUMNS} FROM subscribers"
                                      " WHERE email_key = ANY(%s::text[])", (list(chunk),)).fetchall()
            found.update((row["email_key"], _subscriber(row)) for row in rows)
        return found

    def set_status(self, email_key: str, status: str, reason: str | None, *,
                   unless_status: Sequence[str] = ()) -> bool:
        # One UPDATE: PostgreSQL checks the WHERE again on the row it locked, so a status another writer set
        # meanwhile (say 'complained') is not overwritten.
        now = self.store.now()
        cursor = self.store.execute(
            "UPDATE subscribers SET status = %s, status_reason = %s, status_at = %s, updated_at = %s"
            " WHERE email_key = %s AND status <> ALL(%s::text[])",
            (status, reason, now, now, email_key, list(unless_status)))
        return int(cursor.rowcount) > 0

    def record_event(self, email_key: str, kind: str, *, reason: str | None = None, article: str | None = None,
                     source: str | None = None) -> None:
        with self.store.transaction():
            # The address's row is locked until the caller's transaction ends: two bounces of one address
            # (Subscribers.soft_bounce records, counts, then decides) take turns, so the second counts the
            # first, as SQLite's serialized writers do. An address not on the list locks nothing.
            self.store.execute("SELECT 1 FROM subscribers WHERE email_key = %s FOR UPDATE", (email_key,))
            self.store.execute(
                "INSERT INTO bounce_events (email_key, kind, reason, article, source, at)"
                " VALUES (%s, %s, %s, %s, %s, %s)", (email_key, kind, reason, article, source, self.store.now()))

    def count_events(self, email_key: str, kind: str, within: timedelta) -> int:
        # Timestamps are fixed-width UTC text in COLLATE "C", so comparing them as text compares the times.
        row = self.store.execute(
            "SELECT count(*) AS n FROM bounce_events WHERE email_key = %s AND kind = %s AND at > %s"
            " AND at > COALESCE((SELECT MAX(at) FROM bounce_events"
            "                    WHERE email_key = %s AND kind = 'unsuppress'), '')",
            (email_key, kind, format_time(self.store.clock() - within), email_key)).fetchone()
        return int(row["n"])

    def event_counts(self, articles: Sequence[str]) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for chunk in _chunks(list(articles)):
            for row in self.store.execute(
                    "SELECT article, kind, count(*) AS n FROM bounce_events WHERE article = ANY(%s::text[])"
                    " GROUP BY article, kind", [list(chunk)]):
                counts.setdefault(row["article"], {})[row["kind"]] = int(row["n"])
        return counts

    def last_bulletin(self, target: str) -> str | None:
        row = self.store.execute(
            "SELECT article FROM deliveries WHERE target = %s AND channel = 'email' AND state = 'sent'"
            " ORDER BY updated_at DESC, id DESC LIMIT 1", (target,)).fetchone()
        return str(row["article"]) if row else None

    def remember_message(self, message_id: str, outcome: str) -> str | None:
        # ON CONFLICT waits for a concurrent insert of the same id to commit (or roll back), so of two
        # processes handling one message exactly one is told it is new.
        cursor = self.store.execute(
            "INSERT INTO bounce_messages (message_id, outcome, at) VALUES (%s, %s, %s)"
            " ON CONFLICT (message_id) DO NOTHING", (message_id, outcome, self.store.now()))
        if int(cursor.rowcount) > 0:
            return None
        row = self.store.execute("SELECT outcome FROM bounce_messages WHERE message_id = %s",
                                 (message_id,)).fetchone()
        return str(row["outcome"]) if row else outcome

    def iterate(
        self, *, status: str | None = None, lang: str | None = None, theme: str | None = None,
        batch_size: int = 1000, after: int = 0, through: int | None = None,
    ) -> Iterator[Subscriber]:
        where, params = _subscriber_filters(status, lang, theme)
        if through is not None:
            where += " AND id <= %s" if where else " WHERE id <= %s"
            params = [*params, through]
        where += " AND id > %s" if where else " WHERE id > %s"
        query = f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers{where} ORDER BY id LIMIT %s"
        last_id = after
        while True:
            rows = self.store.execute(query, [*params, last_id, batch_size]).fetchall()
            for row in rows:
                yield _subscriber(row)
            if len(rows) < batch_size:
                return
            last_id = int(rows[-1]["id"])

    def count(self, *, status: str | None = None, lang: str | None = None, theme: str | None = None) -> int:
        where, params = _subscriber_filters(status, lang, theme)
        return int(self.store.execute(f"SELECT count(*) AS n FROM subscribers{where}", params).fetchone()["n"])


# --- translation memory ------------------------------------------------------------------------------------


class PostgresTranslationMemory:
    """The ``translation_memory`` table (``publisher.store.TranslationMemory``)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def lookup(self, model: str, source_lang: str, target_lang: str, sentences: Iterable[str]) -> dict[str, str]:
        unique = list(dict.fromkeys(sentences))
        found: dict[str, str] = {}
        for chunk in _chunks(unique):
            rows = self.store.execute(
                "SELECT source_text, target_text FROM translation_memory WHERE model = %s AND source_lang = %s"
                " AND target_lang = %s AND source_text = ANY(%s::text[])",
                (model, source_lang, target_lang, list(chunk)))
            found.update((row["source_text"], row["target_text"]) for row in rows)
        if found:
            with self.store.transaction():
                self.store.execute(
                    "UPDATE translation_memory SET hits = hits + 1, used_at = %s WHERE model = %s"
                    " AND source_lang = %s AND target_lang = %s AND source_text = ANY(%s::text[])",
                    (self.store.now(), model, source_lang, target_lang, list(found)))
        return found

    def lookup_any_model(self, source_lang: str, target_lang: str,
                         sentences: Iterable[str]) -> dict[str, tuple[str, str]]:
        unique = list(dict.fromkeys(sentences))
        found: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(unique):
            rows = self.store.execute(
                "SELECT source_text, target_text, model FROM translation_memory WHERE source_lang = %s"
                " AND target_lang = %s AND source_text = ANY(%s::text[])"
                " ORDER BY used_at, model",   # the most recently used entry last, so it wins
                (source_lang, target_lang, list(chunk)))
            found.update((row["source_text"], (row["target_text"], row["model"])) for row in rows)
        return found

    def remember(self, model: str, source_lang: str, target_lang: str, translations: Mapping[str, str]) -> None:
        if not translations:
            return
        now = self.store.now()
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO translation_memory (model, source_lang, target_lang, source_text, target_text,"
                " created_at, used_at) SELECT %s, %s, %s, t.s, t.t, %s, %s FROM unnest(%s::text[], %s::text[])"
                " AS t(s, t) ON CONFLICT (model, source_lang, target_lang, source_text)"
                " DO UPDATE SET target_text = excluded.target_text, used_at = excluded.used_at",
                (model, source_lang, target_lang, now, now, list(translations), list(translations.values())))

    def count(self, model: str | None = None) -> int:
        row = self.store.execute("SELECT COUNT(*) AS n FROM translation_memory WHERE %s::text IS NULL"
                                 " OR model = %s", (model, model)).fetchone()
        return int(row["n"])

    def forget(self, model: str | None = None) -> int:
        with self.store.transaction():
            cursor = self.store.execute("DELETE FROM translation_memory WHERE %s::text IS NULL OR model = %s",
                                        (model, model))
        return int(cursor.rowcount)


# --- web rate limits ---------------------------------------------------------------------------------------


class PostgresRateLimits:
    """The ``web_rate_limits`` table (``publisher.store.RateLimits``)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def hit(self, bucket: str, client: str, window_start: int) -> int:
        # The increment and the read are one statement: another process counting the same client waits on
        # the row and then adds to what this one wrote.
        with self.store.transaction():
            self.store.execute("DELETE FROM web_rate_limits WHERE bucket = %s AND window_start < %s",
                               (bucket, window_start))
            row = self.store.execute(
                "INSERT INTO web_rate_limits AS w (bucket, client, window_start, hits) VALUES (%s, %s, %s, 1)"
                " ON CONFLICT (bucket, client, window_start) DO UPDATE SET hits = w.hits + 1 RETURNING hits",
                (bucket, client, window_start)).fetchone()
        return int(row["hits"])


# --- shared send rates ------------------------------------------------------------------------------------


class PostgresTokenBuckets:
    """The ``token_buckets`` table (``publisher.store.TokenBuckets``)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def take(self, bucket: str, want: int, *, rate: float, burst: float, now: float) -> tuple[int, float]:
        for _ in range(3):
            try:
                return self._take(bucket, want, rate=rate, burst=burst, now=now)
            except ConnectionLost:   # the server restarted mid-take (rolled back): take again, reconnected
                if self.store._depth:
                    raise
        return self._take(bucket, want, rate=rate, burst=burst, now=now)

    def _take(self, bucket: str, want: int, *, rate: float, burst: float, now: float) -> tuple[int, float]:
        # The row is made if missing, then locked (FOR UPDATE) until the commit: a second worker taking from
        # the same bucket waits for this take and counts from what it left.
        with self.store.transaction():
            self.store.execute("INSERT INTO token_buckets (name, tokens, updated) VALUES (%s, %s, %s)"
                               " ON CONFLICT (name) DO NOTHING", (bucket, max(float(burst), 1.0), now))
            row = self.store.execute("SELECT tokens, updated FROM token_buckets WHERE name = %s FOR UPDATE",
                                     (bucket,)).fetchone()
            tokens, updated, granted, wait = take_tokens(row["tokens"], row["updated"], want=want, rate=rate,
                                                         burst=burst, now=now)
            self.store.execute("UPDATE token_buckets SET tokens = %s, updated = %s WHERE name = %s",
                               (tokens, updated, bucket))
        return granted, wait


# --- the job queue ----------------------------------------------------------------------------------------


def _in(values: Sequence[str] | None) -> tuple[str, list[Any]]:
    """`` AND kind = ANY(...)`` for ``values`` (None or empty: no filter)."""
    return (" AND kind = ANY(%s::text[])", [list(values)]) if values else ("", [])


class PostgresJobs:
    """The ``jobs`` table (``publisher.store.Jobs``).

    A change that depends on what a row holds locks the row first (``FOR UPDATE``): a worker claiming a job
    skips the rows others hold (``SKIP LOCKED``) and takes the next, so two workers never take the same job
    and neither waits for the other.
    """

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def schedule(self, kind: str, key: str, payload: Mapping[str, Any], due_at: datetime) -> tuple[Job, bool]:
        now = self.store.now()
        data = json.dumps(dict(payload), sort_keys=True)
        while True:
            with self.store.transaction():
                row = self.store.execute(
                    "UPDATE jobs SET due_at = %s, payload = %s, kind = %s, state = 'pending', late_ok = 0,"
                    " last_error = NULL, updated_at = %s WHERE key = %s AND state IN ('pending', 'overdue')"
                    " RETURNING id", (format_time(due_at), data, kind, now, key)).fetchone()
                if row is not None:
                    job_id, moved = int(row["id"]), True
                    break
                # Another process may insert the same key meanwhile: the open-key index refuses the second,
                # which then moves the first (the loop).
                row = self.store.execute(
                    "INSERT INTO jobs (kind, key, payload, due_at, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) WHERE state IN ('pending', 'overdue')"
                    " DO NOTHING RETURNING id", (kind, key, data, format_time(due_at), now, now)).fetchone()
                if row is not None:
                    job_id, moved = int(row["id"]), False
                    break
        job = self.get(job_id)
        assert job is not None
        return job, moved

    def claim(self, owner: str, now: datetime, lease: timedelta, *, max_late: timedelta | None = None,
              hold: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> Job | None:
        stamp = format_time(now)
        kind_filter, kind_values = _in(kinds)
        hold_filter, hold_values = _in(hold)
        with self.store.transaction():
            if max_late is not None:
                self.store.execute(
                    "UPDATE jobs SET state = 'overdue', updated_at = %s WHERE state = 'pending' AND late_ok = 0"
                    " AND due_at < %s" + kind_filter + hold_filter,
                    [stamp, format_time(now - max_late), *kind_values, *hold_values])
            row = self.store.execute(
                "SELECT id FROM jobs WHERE ((state = 'pending' AND due_at <= %s)"
                " OR (state = 'running' AND lease_until < %s))" + kind_filter
                + " ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED", [stamp, stamp, *kind_values]).fetchone()
            if row is None:
                return None
            self.store.execute(
                "UPDATE jobs SET state = 'running', lease_owner = %s, lease_until = %s, attempts = attempts + 1,"
                " updated_at = %s WHERE id = %s", (owner, format_time(now + lease), stamp, row["id"]))
        return self.get(int(row["id"]))

    def renew(self, job_id: int, owner: str, until: datetime) -> bool:
        cursor = self.store.execute(
            "UPDATE jobs SET lease_until = %s, updated_at = %s WHERE id = %s AND state = 'running'"
            " AND lease_owner = %s", (format_time(until), self.store.now(), job_id, owner))
        return int(cursor.rowcount) == 1

    def finish(self, job_id: int, owner: str, *, error: str | None = None) -> bool:
        cursor = self.store.execute(
            "UPDATE jobs SET state = %s, last_error = %s, lease_until = NULL, updated_at = %s"
            " WHERE id = %s AND state = 'running' AND lease_owner = %s",
            ("failed" if error else "done", error, self.store.now(), job_id, owner))
        return int(cursor.rowcount) == 1

    def finish_shared(self, job_id: int) -> bool:
        cursor = self.store.execute("UPDATE jobs SET state = 'done', updated_at = %s WHERE id = %s AND state = 'pending'",
                                    (self.store.now(), job_id))
        return int(cursor.rowcount) == 1

    def _held(self, job_id: int, owner: str) -> Job | None:
        """The job, locked for this transaction, if ``owner`` holds it."""
        row = self.store.execute("SELECT * FROM jobs WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
        if row is None or row["state"] != "running" or row["lease_owner"] != owner:
            return None
        return _job(row)

    def _waiting(self, key: str) -> bool:
        return self.store.execute("SELECT id FROM jobs WHERE key = %s AND state IN ('pending', 'overdue')",
                                  (key,)).fetchone() is not None

    def retry(self, job_id: int, owner: str, due_at: datetime, error: str) -> bool:
        with self.store.transaction():
            job = self._held(job_id, owner)
            if job is None:
                return False
            if self._waiting(job.key):   # the same thing was scheduled again meanwhile: that job runs it
                self.store.execute("UPDATE jobs SET state = 'done', last_error = %s, lease_until = NULL,"
                                   " updated_at = %s WHERE id = %s", (error, self.store.now(), job_id))
                return True
            self.store.execute(
                "UPDATE jobs SET state = 'pending', due_at = %s, last_error = %s, lease_owner = NULL,"
                " lease_until = NULL, late_ok = 1, updated_at = %s WHERE id = %s",
                (format_time(due_at), error, self.store.now(), job_id))
        return True

    def release(self, job_id: int, owner: str) -> bool:
        with self.store.transaction():
            job = self._held(job_id, owner)
            if job is None:
                return False
            # Given back, it was started: a person should not have to release it again as overdue.
            state = "cancelled" if self._waiting(job.key) else "pending"
            self.store.execute(
                "UPDATE jobs SET state = %s, lease_owner = NULL, lease_until = NULL,"
                " attempts = GREATEST(attempts - 1, 0), late_ok = 1, updated_at = %s WHERE id = %s",
                (state, self.store.now(), job_id))
        return True

    def cancel(self, job_id: int) -> Job | None:
        cursor = self.store.execute(
            "UPDATE jobs SET state = 'cancelled', updated_at = %s WHERE id = %s AND state IN ('pending', 'overdue')",
            (self.store.now(), job_id))
        return self.get(job_id) if cursor.rowcount == 1 else None

    def allow_late(self, job_id: int) -> Job | None:
        cursor = self.store.execute(
            "UPDATE jobs SET state = 'pending', late_ok = 1, updated_at = %s WHERE id = %s"
            " AND state IN ('pending', 'overdue')", (self.store.now(), job_id))
        return self.get(job_id) if cursor.rowcount == 1 else None

    def get(self, job_id: int) -> Job | None:
        row = self.store.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def list(self, states: Iterable[str] | None = None, kind: str | None = None) -> list[Job]:
        wanted = job_states(states)
        sql = "SELECT * FROM jobs WHERE state = ANY(%s::text[])"
        values: list[Any] = [wanted]
        if kind is not None:
            sql += " AND kind = %s"
            values.append(kind)
        return [_job(row) for row in self.store.execute(sql + " ORDER BY due_at, id", values)]

    def next_due(self, kinds: Sequence[str] | None = None) -> datetime | None:
        kind_filter, values = _in(kinds)
        row = self.store.execute(
            "SELECT MIN(t) AS t FROM (SELECT MIN(due_at) AS t FROM jobs WHERE state = 'pending'" + kind_filter
            + " UNION ALL SELECT MIN(lease_until) FROM jobs WHERE state = 'running'" + kind_filter + ") AS m",
            values + values).fetchone()
        return _moment(row["t"])

    def last_done(self, kind: str) -> Job | None:
        row = self.store.execute("SELECT * FROM jobs WHERE kind = %s AND state IN ('done', 'failed')"
                                 " ORDER BY due_at DESC, id DESC LIMIT 1", (kind,)).fetchone()
        return _job(row) if row is not None else None


if TYPE_CHECKING:
    from publisher import delivery
    from publisher.store import interfaces

    def _conforms(store: PostgresStore) -> None:
        """Never called: mypy checks here that the PostgreSQL classes satisfy the interfaces they implement."""
        checked_store: interfaces.Store = store
        ledger: interfaces.Ledger = store.ledger
        versions: delivery.PublishedVersions = store.ledger
        subscribers: interfaces.SubscriberStore = store.subscribers
        memory: interfaces.TranslationMemory = store.translation_memory
        limits: interfaces.RateLimits = store.rate_limits
        jobs: interfaces.Jobs = store.jobs
        buckets: interfaces.TokenBuckets = store.token_buckets
        rates: delivery.SendRates = store.token_buckets
        del checked_store, ledger, versions, subscribers, memory, limits, jobs, buckets, rates


__all__ = ["PostgresStore", "connect", "lock_key", "migrate", "migrations", "redact"]
