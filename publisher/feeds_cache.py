"""The rendered-bodies cache of the feeds build, in SQLite (``.publisher/cache/feed-bodies.sqlite``).

It implements ``publisher.delivery.RenderCache``: the pipeline creates it and hands it to the channel in the
``ChannelContext``; the feeds code never sees SQL. It is only a cache: a missing or damaged file is rebuilt.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

#: Keys per statement: well under SQLite's limit on bound parameters.
CHUNK = 500


class RenderedBodies:
    """Sanitized HTML of article bodies kept between builds, keyed by a fingerprint of the Markdown and of the
    renderer (computed by the feeds code, so a change of the sanitizing rules misses every entry).

    SQLite, so a publish reads only the bodies it needs. Nothing is opened until the first call, so a run that
    never builds feeds never creates the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError:
                self.path.unlink(missing_ok=True)   # damaged: it is only a cache
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS bodies (key TEXT PRIMARY KEY, html TEXT NOT NULL)")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached bodies among ``keys`` (missing ones are left out)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        if not wanted:
            return found
        db = self._connection()
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            found.update(db.execute(f"SELECT key, html FROM bodies WHERE key IN ({marks})", chunk).fetchall())
        return found

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Store ``(key, html)`` pairs, replacing any body stored under the same key."""
        rows = list(items)
        if not rows:
            return
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO bodies VALUES (?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def keep_only(self, keys: Iterable[str]) -> None:
        """Drop every body whose key is not in ``keys`` (after a full build: those no page or feed uses)."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS used (key TEXT PRIMARY KEY)")
            db.execute("DELETE FROM used")
            db.executemany("INSERT OR IGNORE INTO used VALUES (?)", ((key,) for key in keys))
            db.execute("DELETE FROM bodies WHERE key NOT IN (SELECT key FROM used)")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


__all__ = ["RenderedBodies"]
