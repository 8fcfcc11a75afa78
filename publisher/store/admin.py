"""Looking after a site's database: which migrations it has (``publisher db status``) and copying it into
another database (``publisher db copy``), whichever dialect either side is.

The SQL of both dialects for these jobs lives here, beside the stores it reads: table and column names are
the migrations' own, and values are copied as they are stored (the same text on both sides), so a row reads
back the same from the copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.errors import PublisherError
from publisher.store.interfaces import Store

# What ``db copy`` copies, in this order (ledger_articles before deliveries, whose trigger would number the
# articles again otherwise). The feed cache and the content index are local cache files, rebuilt at no cost.
COPIED_TABLES = ("ledger_articles", "deliveries", "subscribers", "translation_memory", "jobs", "web_rate_limits",
                 "bounce_events", "bounce_messages")
# Tables whose ids a PostgreSQL target must continue after the copy (identity columns).
_ID_TABLES = ("ledger_articles", "deliveries", "subscribers", "jobs", "bounce_events")
_BATCH = 5000


@dataclass
class SchemaStatus:
    """What ``publisher db status`` shows: the dialect, where the database is (no password), the migrations
    applied (version, name, when) and those still to apply (names)."""

    dialect: str
    location: str
    exists: bool
    applied: list[tuple[int, str, str]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def version(self) -> int:
        return max((version for version, _, _ in self.applied), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "database": self.location, "exists": self.exists, "version": self.version,
                "applied": [{"version": v, "name": n, "applied_at": at} for v, n, at in self.applied],
                "pending": self.pending}


def schema_status(url: str | None, *, state_dir: Path) -> SchemaStatus:
    """The migration state of the database at ``url``, read without migrating it (nor creating it)."""
    from publisher.store import dialect

    kind = dialect(url)
    if kind == "sqlite":
        return _sqlite_status(Path(url[len("sqlite:///"):]) if url else state_dir / "publisher.db")
    if kind == "postgresql":
        assert url is not None
        return _postgres_status(url)
    from publisher.errors import ConfigError

    raise ConfigError("PUBLISHER_DATABASE_URL", "expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE")


def _sqlite_status(path: Path) -> SchemaStatus:
    import sqlite3

    from publisher.store.sqlite import migrations, storage_error

    status = SchemaStatus("sqlite", str(path), path.is_file())
    rows: list[Any] = []
    if status.exists:
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone():
                    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
                                        ).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            translated = storage_error(path, exc)
            raise (translated or PublisherError(f"{path}: {exc}")) from None
    status.applied = [(int(v), str(n), str(at)) for v, n, at in rows]
    done = {v for v, _, _ in status.applied}
    status.pending = [name for version, name, _ in migrations() if version not in done]
    return status


def _postgres_status(url: str) -> SchemaStatus:
    from publisher.store.postgres import connect, migrations, redact

    status = SchemaStatus("postgresql", redact(url), True)
    conn = connect(url)
    try:
        row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall() \
            if row is not None and row[0] is not None else []
    finally:
        conn.close()
    status.applied = [(int(v), str(n), str(at)) for v, n, at in rows]
    done = {v for v, _, _ in status.applied}
    status.pending = [name for version, name, _ in migrations() if version not in done]
    return status


# --- copy --------------------------------------------------------------------------------------------------


def _dialect_of(store: Store) -> str:
    from publisher.store.postgres import PostgresStore   # psycopg itself is imported only by its functions

    return "postgresql" if isinstance(store, PostgresStore) else "sqlite"


def _conn(store: Store) -> Any:
    # Both stores expose their migrated connection; the copy needs the driver's own.
    return getattr(store, "connection")


def _columns(store: Store, table: str) -> list[str]:
    conn = _conn(store)
    if _dialect_of(store) == "postgresql":
        rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                            " AND table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
        return [str(row[0]) for row in rows]
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})").fetchall()]


def count_rows(store: Store) -> dict[str, int]:
    """Rows per copied table (0 for a table the database does not have)."""
    conn = _conn(store)
    counts = {}
    for table in COPIED_TABLES:
        counts[table] = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) \
            if _columns(store, table) else 0
    return counts


def _read(store: Store, table: str, columns: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``table`` in batches, in a stable order (the primary key)."""
    conn = _conn(store)
    select = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(_order(table))}"
    if _dialect_of(store) == "postgresql":
        with conn.transaction(), conn.cursor(name=f"copy_{table}") as cursor:   # a server-side cursor
            cursor.execute(select)
            while batch := cursor.fetchmany(_BATCH):
                yield [tuple(row) for row in batch]
        return
    cursor = conn.execute(select)
    while batch := cursor.fetchmany(_BATCH):
        yield [tuple(row) for row in batch]


def _order(table: str) -> tuple[str, ...]:
    if table == "translation_memory":
        return ("model", "source_lang", "target_lang", "source_text")
    if table == "web_rate_limits":
        return ("bucket", "client", "window_start")
    if table == "bounce_messages":
        return ("message_id",)
    return ("id",)


def _write(store: Store, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    conn = _conn(store)
    if _dialect_of(store) == "postgresql":
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)


def _empty(store: Store) -> None:
    conn = _conn(store)
    for table in reversed(COPIED_TABLES):
        if _columns(store, table):
            conn.execute(f"DELETE FROM {table}")


def _continue_ids(store: Store) -> None:
    """A PostgreSQL target's identity columns go on after the ids copied (SQLite's follow MAX(id) itself)."""
    if _dialect_of(store) != "postgresql":
        return
    conn = _conn(store)
    for table in _ID_TABLES:
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                     f" FROM {table}")


@dataclass
class CopyReport:
    """Rows copied per table (the same number is in both databases: the copy checks it before committing)."""

    counts: dict[str, int]


def copy_database(source: Store, target: Store, *, replace: bool = False,
                  progress: Any = None) -> CopyReport:
    """Copy every table of ``COPIED_TABLES`` from ``source`` into ``target``, in one transaction of the target.

    A target that holds rows is refused unless ``replace`` (then they are deleted first, in the same
    transaction). The rows per table are counted on both sides before the commit: any difference rolls the
    whole copy back. A column of the source that the target lacks (a newer source) is an error, not a loss.
    ``progress(table, copied)`` is called after each batch.
    """
    source.migrate()
    target.migrate()
    before = count_rows(target)
    if any(before.values()) and not replace:
        held = ", ".join(f"{table} {n}" for table, n in before.items() if n)
        raise PublisherError(f"the target database is not empty ({held}); copy into an empty database, or pass "
                             "--replace to delete what it holds first")
    expected = count_rows(source)
    with target.transaction():
        if replace:
            _empty(target)
        for table in COPIED_TABLES:
            source_columns = _columns(source, table)
            if not source_columns:
                continue
            target_columns = set(_columns(target, table))
            missing = [column for column in source_columns if column not in target_columns]
            if missing:
                raise PublisherError(f"{table}: the target database has no column {', '.join(missing)}; "
                                     "its migrations are older than the source's")
            copied = 0
            for batch in _read(source, table, source_columns):
                _write(target, table, source_columns, batch)
                copied += len(batch)
                if progress is not None:
                    progress(table, copied)
        _continue_ids(target)
        after = count_rows(target)
        wrong = {table: (expected[table], after[table]) for table in COPIED_TABLES if expected[table] != after[table]}
        if wrong:
            detail = ", ".join(f"{table}: {have} rows in the source, {got} in the target"
                               for table, (have, got) in wrong.items())
            raise PublisherError(f"the copy does not match, nothing was written ({detail})")
    return CopyReport(expected)
