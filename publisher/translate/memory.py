"""Sentence-level translation memory in the site database, so an edited article only sends its changed sentences."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

# SQLite allows 999 bound parameters in older builds; four are taken by the fixed columns.
_CHUNK = 900


class TranslationMemory:
    """Remembers each sentence a model translated, keyed by model (name, pair, version) and source text."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def lookup(self, model: str, source_lang: str, target_lang: str, sentences: Iterable[str]) -> dict[str, str]:
        """The remembered translation of each sentence that has one; the others are simply absent."""
        unique = list(dict.fromkeys(sentences))
        found: dict[str, str] = {}
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                "SELECT source_text, target_text FROM translation_memory "
                f"WHERE model = ? AND source_lang = ? AND target_lang = ? AND source_text IN ({marks})",
                (model, source_lang, target_lang, *chunk),
            )
            found.update((row[0], row[1]) for row in rows)
        if found:
            self._record_hits(model, source_lang, target_lang, list(found))
        return found

    def remember(self, model: str, source_lang: str, target_lang: str, translations: Mapping[str, str]) -> None:
        """Store new translations in one transaction; a sentence translated again replaces the old entry."""
        if not translations:
            return
        with _transaction(self.connection):
            self.connection.executemany(
                "INSERT INTO translation_memory (model, source_lang, target_lang, source_text, target_text) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model, source_lang, target_lang, source_text) "
                "DO UPDATE SET target_text = excluded.target_text, "
                "used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                [(model, source_lang, target_lang, s, t) for s, t in translations.items()],
            )

    def count(self, model: str | None = None) -> int:
        row = self.connection.execute(
            "SELECT COUNT(*) FROM translation_memory WHERE ? IS NULL OR model = ?", (model, model)
        ).fetchone()
        return int(row[0])

    def forget(self, model: str | None = None) -> int:
        """Drop the memory of one model (or all); returns how many sentences were dropped."""
        with _transaction(self.connection):
            cursor = self.connection.execute(
                "DELETE FROM translation_memory WHERE ? IS NULL OR model = ?", (model, model)
            )
        return cursor.rowcount

    def _record_hits(self, model: str, source_lang: str, target_lang: str, sentences: Sequence[str]) -> None:
        with _transaction(self.connection):
            self.connection.executemany(
                "UPDATE translation_memory SET hits = hits + 1, used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE model = ? AND source_lang = ? AND target_lang = ? AND source_text = ?",
                [(model, source_lang, target_lang, s) for s in sentences],
            )


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT on an autocommit connection (the site database is opened that way)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.own = False

    def __enter__(self) -> None:
        if not self.connection.in_transaction:
            self.connection.execute("BEGIN IMMEDIATE")
            self.own = True

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if self.own:
            self.connection.execute("ROLLBACK" if exc_type else "COMMIT")
