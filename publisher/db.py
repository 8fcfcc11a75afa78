"""The site database: SQLite with versioned migrations from ``publisher/migrations/NNNN_name.sql``."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from publisher.errors import PublisherError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match[1]), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise PublisherError(f"{MIGRATIONS_DIR}: two migrations share a number")
    return found


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) and migrate; WAL so readers never block the sender."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
    except (OSError, sqlite3.Error) as exc:
        raise PublisherError(f"{path}: cannot open the database: {exc}") from None
    conn.row_factory = sqlite3.Row
    _enable_wal(conn, path)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, committed on success and rolled back on any error.

    ``connect`` opens connections in autocommit mode, where ``with conn:`` groups nothing: each statement
    would be committed on its own.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _enable_wal(conn: sqlite3.Connection, path: Path, timeout: float = 30.0) -> None:
    """Switch to WAL, waiting for other processes: the switch needs an exclusive lock, and SQLite answers
    "database is locked" at once, without its busy handler, when several processes open a new database together."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise PublisherError(f"{path}: cannot open the database: {exc}") from None
            time.sleep(0.01)


def migrate(conn: sqlite3.Connection) -> list[str]:
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
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
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
