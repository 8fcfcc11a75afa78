"""The one timestamp format of machine output: ISO 8601 to the second, with its offset (2024-06-28T09:00:00+00:00)."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(moment: datetime) -> str:
    """``moment`` as ``YYYY-MM-DDTHH:MM:SS+HH:MM``; a naive datetime is refused (its offset would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: machine output needs the offset")
    return moment.isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    """A stored timestamp (``...Z`` from SQLite's strftime, or ``...+00:00``) as an aware datetime; UTC if naive."""
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def iso_text(text: str | None) -> str | None:
    """A stored timestamp in the one format; None stays None."""
    return iso(parse_iso(text)) if text else None
