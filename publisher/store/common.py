"""What the SQLite and the PostgreSQL stores do alike, apart from their SQL: the migration files of a dialect,
rows read back as value types, and the bookkeeping around a statement (pages by id, the repeats of an import
batch).

Both stores keep the same tables, columns and values (``postgres.py``'s docstring), so a row of either reads the
same way: by column name (``sqlite3.Row`` and psycopg's dict rows both take ``row["column"]``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from publisher.delivery import Delivery, DeliveryKey
from publisher.errors import PublisherError
from publisher.store.interfaces import JOB_STATES, Job

if TYPE_CHECKING:
    from publisher.subscribers import Subscriber

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Row(Protocol):
    """A row read by column name: ``sqlite3.Row`` or a psycopg dict row."""

    def __getitem__(self, column: str, /) -> Any: ...


def migration_files(folder: Path) -> list[tuple[int, str, Path]]:
    """``(version, name, path)`` of every ``NNNN_name.sql`` migration in ``folder``, in order."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match[1]), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise PublisherError(f"{folder}: two migrations share a number")
    return found


def delivery_from_row(row: Row) -> Delivery:
    # A bulletin reads every recipient's row back after adding it: an empty detail is not parsed, and the
    # fields go in by position (Delivery's order).
    detail = row["detail"]
    return Delivery(DeliveryKey(row["article"], row["lang"], row["channel"], row["target"]), row["state"],
                    row["remote_id"], row["remote_url"], row["attempts"], row["last_error"], row["created_at"],
                    row["updated_at"], {} if not detail or detail == "{}" else json.loads(detail), row["worker"],
                    row["lease_until"], bool(row["lease_exclusive"]))


def first_detail_per_version(page: Callable[[int], Sequence[Row]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The detail of each version's first row, in id order, over the pages ``page(last_id)`` gives (rows with
    ``id``, ``article``, ``lang`` and ``detail``, after ``last_id``; an empty page ends). Only the first row's
    detail is decoded."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    last_id = 0
    while True:
        rows = page(last_id)
        for row in rows:
            version = (row["article"], row["lang"])
            if version not in found:
                found[version] = json.loads(row["detail"] or "{}")
        if not rows:
            return found
        last_id = int(rows[-1]["id"])


def subscriber_from_row(row: Row) -> Subscriber:
    # A bulletin reads every subscriber: the class imported once, each column read once, the fields by position
    # (Subscriber's order): ~2.5 us a row, where an import statement and keywords per row took ~6.
    themes, confirmed_at, status_at = row["themes"], row["confirmed_at"], row["status_at"]
    return _subscriber_class()(
        row["email"], row["name"], row["lang"], row["status"],
        [theme for theme in themes.split(",") if theme] if themes else [], _from_iso(row["created_at"]),
        _from_iso(confirmed_at) if confirmed_at else None, _from_iso(row["updated_at"]), row["status_reason"],
        _from_iso(status_at) if status_at else None, int(row["id"]))


_from_iso = datetime.fromisoformat


@functools.cache
def _subscriber_class() -> type[Subscriber]:
    from publisher.subscribers import Subscriber

    return Subscriber


def first_of_each_key(rows: Sequence[tuple[str, str, str | None, str]]) -> tuple[dict[str, int], list[int]]:
    """An import batch's ``(email, email_key, name, lang)`` rows: the index of each key's first row, and the
    indexes of the rows that repeat a key met earlier in the batch."""
    first: dict[str, int] = {}
    repeated: list[int] = []
    for index, (_, key, _, _) in enumerate(rows):
        if key in first:
            repeated.append(index)
        else:
            first[key] = index
    return first, repeated


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def job_states(states: Iterable[str] | None) -> list[str]:
    """The job states asked for (every one for None), each checked."""
    wanted = list(states) if states is not None else list(JOB_STATES)
    for state in wanted:
        if state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
    return wanted


def job_from_row(row: Row) -> Job:
    return Job(id=int(row["id"]), kind=row["kind"], key=row["key"], payload=json.loads(row["payload"] or "{}"),
               due_at=datetime.fromisoformat(row["due_at"]), state=row["state"], lease_owner=row["lease_owner"],
               lease_until=moment(row["lease_until"]), attempts=row["attempts"], last_error=row["last_error"],
               late_ok=bool(row["late_ok"]), created_at=moment(row["created_at"]),
               updated_at=moment(row["updated_at"]))


__all__ = ["Row", "delivery_from_row", "first_detail_per_version", "first_of_each_key",
           "job_from_row", "job_states", "migration_files", "moment", "subscriber_from_row"]
