"""The delivery ledger: one row per (article, language, channel, target), the only place delivery state changes.

States: ``pending`` (known, not tried), ``in_flight`` (the remote call has started), ``sent`` (the remote side
accepted), ``failed`` (it refused; safe to try again), ``unconfirmed`` (the outcome is unknown: a timeout or a
5xx after the request left; never retried blindly), ``skipped`` (deliberately not sent, e.g. no version in the
reader's language; the reason is in ``last_error``).

A channel calls ``begin()`` before the remote call and ``mark(key, "sent")`` only after the remote side
accepted, so a crash can leave at most the rows that were in flight in doubt, never skip a row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from publisher.delivery import STATES, Delivery, DeliveryKey

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        key=DeliveryKey(row["article"], row["lang"], row["channel"], row["target"]),
        state=row["state"], remote_id=row["remote_id"], remote_url=row["remote_url"],
        attempts=row["attempts"], last_error=row["last_error"], created_at=row["created_at"],
        updated_at=row["updated_at"], detail=json.loads(row["detail"] or "{}"),
    )


class Ledger:
    """Delivery rows in the site database. Every write is its own committed transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, key: DeliveryKey) -> Delivery | None:
        row = self.conn.execute(
            "SELECT * FROM deliveries WHERE article=? AND lang=? AND channel=? AND target=?",
            (key.article, key.lang, key.channel, key.target),
        ).fetchone()
        return _delivery(row) if row else None

    def get_many(self, keys: Iterable[DeliveryKey]) -> dict[DeliveryKey, Delivery]:
        """The rows of ``keys`` that exist, with one query per 500 keys (a bulk sender checks a batch at once)."""
        found: dict[DeliveryKey, Delivery] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self.conn.execute(
                "SELECT d.* FROM deliveries d JOIN (SELECT ? AS a, ? AS l, ? AS c, ? AS t"
                + " UNION ALL SELECT ?, ?, ?, ?" * (len(chunk) - 1)
                + ") k ON d.article = k.a AND d.lang = k.l AND d.channel = k.c AND d.target = k.t",
                [value for key in chunk for value in (key.article, key.lang, key.channel, key.target)],
            ).fetchall()
            for row in rows:
                delivery = _delivery(row)
                found[delivery.key] = delivery
        return found

    def transaction(self) -> Any:
        """One transaction around several writes (see ``batch``)."""
        return self.batch()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group several ``begin``/``mark`` calls in one transaction and one commit (a bulk sender's outcomes)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def begin(self, key: DeliveryKey) -> Delivery:
        """Mark ``key`` in flight (attempts + 1) and return the row as it was before (state ``pending`` if new).

        Inside ``batch()`` the change is committed with the batch; otherwise at once.
        """
        if self.conn.in_transaction:
            return self._begin(key)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            before = self._begin(key)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return before

    def _begin(self, key: DeliveryKey) -> Delivery:
        before = self.get(key) or Delivery(key)
        self.conn.execute(
            f"INSERT INTO deliveries (article, lang, channel, target, state, attempts) "
            f"VALUES (?, ?, ?, ?, 'in_flight', 1) "
            f"ON CONFLICT (article, lang, channel, target) DO UPDATE SET "
            f"state='in_flight', attempts=attempts+1, updated_at={_NOW}",
            (key.article, key.lang, key.channel, key.target),
        )
        return before

    def begin_many(self, keys: list[DeliveryKey]) -> None:
        """``begin`` for several rows that exist (``ensure_pending``) in one statement; for bulk senders."""
        if not keys:
            return
        # A join with the VALUES list, not "IN (VALUES ...)": SQLite only uses the unique index for the join.
        self.conn.execute(
            "WITH k(article, lang, channel, target) AS (VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(keys))
            + f") UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, updated_at = {_NOW} FROM k "
            "WHERE deliveries.article = k.article AND deliveries.lang = k.lang "
            "AND deliveries.channel = k.channel AND deliveries.target = k.target",
            [value for key in keys for value in (key.article, key.lang, key.channel, key.target)],
        )

    def mark_many(self, marks: list[tuple[Any, ...]]) -> None:
        """``mark`` for several rows that exist, in one statement: ``(key, state, remote_id, remote_url, error,
        detail)`` each (``detail`` None keeps the row's)."""
        if not marks:
            return
        params: list[Any] = []
        for mark in marks:
            key, state, remote_id, remote_url, error, detail = mark
            if state not in STATES:
                raise ValueError(f"unknown delivery state {state!r}")
            params += [key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
                       None if detail is None else json.dumps(detail, ensure_ascii=False)]
        self.conn.execute(
            "WITH m(article, lang, channel, target, state, remote_id, remote_url, error, detail) AS (VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(marks))
            + f") UPDATE deliveries SET state = m.state, remote_id = COALESCE(m.remote_id, deliveries.remote_id), "
            f"remote_url = COALESCE(m.remote_url, deliveries.remote_url), "
            f"last_error = m.error, detail = COALESCE(m.detail, deliveries.detail), updated_at = {_NOW} FROM m "
            "WHERE deliveries.article = m.article AND deliveries.lang = m.lang "
            "AND deliveries.channel = m.channel AND deliveries.target = m.target",
            params,
        )

    def published(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``(slug, lang)`` -> detail of a ``sent`` row of ``channel``."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.rows(channel=channel, state="sent"):
            found.setdefault((row.key.article, row.key.lang), row.detail)
        return found

    def first_details(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``(slug, lang)`` -> the detail of the oldest row of ``channel`` that has one, in any state."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.rows(channel=channel):
            if row.detail:
                found.setdefault((row.key.article, row.key.lang), row.detail)
        return found

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
        """Record the outcome; ``remote_id``/``remote_url``/``detail`` are kept when not given."""
        if state not in STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        self.conn.execute(
            f"INSERT INTO deliveries (article, lang, channel, target, state, remote_id, remote_url, last_error, detail)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (article, lang, channel, target) DO UPDATE SET state=excluded.state, "
            f"remote_id=COALESCE(excluded.remote_id, remote_id), remote_url=COALESCE(excluded.remote_url, remote_url), "
            f"last_error=excluded.last_error, "
            f"detail=CASE WHEN ? THEN excluded.detail ELSE detail END, updated_at={_NOW}",
            (key.article, key.lang, key.channel, key.target, state, remote_id, remote_url, error,
             json.dumps(detail or {}, ensure_ascii=False), detail is not None),
        )

    def ensure_pending(self, keys: Iterable[DeliveryKey], *, batch_size: int = 5000) -> int:
        """Insert rows for keys not yet in the ledger (state pending), in batches; return how many were new."""
        added = 0
        batch: list[tuple[str, str, str, str]] = []

        def flush() -> int:
            if not batch:
                return 0
            before = self.conn.total_changes
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT OR IGNORE INTO deliveries (article, lang, channel, target) VALUES (?, ?, ?, ?)", batch
            )
            self.conn.execute("COMMIT")
            count = self.conn.total_changes - before
            batch.clear()
            return count

        for key in keys:
            batch.append((key.article, key.lang, key.channel, key.target))
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
        """Rows in id order, fetched in batches so a list of a million recipients streams in flat memory."""
        where, params = self._filter(article, channel, state, lang)
        last_id = 0
        while True:
            cursor = self.conn.execute(
                f"SELECT * FROM deliveries WHERE id > ?{where} ORDER BY id LIMIT ?",
                (last_id, *params, batch_size),
            )
            rows = cursor.fetchall()
            if not rows:
                return
            for row in rows:
                yield _delivery(row)
            last_id = rows[-1]["id"]

    def counts(
        self, article: str | None = None, channel: str | None = None, lang: str | None = None
    ) -> dict[str, int]:
        where, params = self._filter(article, channel, None, lang)
        result = {state: 0 for state in STATES}
        for row in self.conn.execute(
            f"SELECT state, COUNT(*) AS n FROM deliveries WHERE 1=1{where} GROUP BY state", params
        ):
            result[row["state"]] = row["n"]
        return result

    @staticmethod
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
