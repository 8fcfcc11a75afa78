"""When a rate-limited HTTP API takes requests again: ``Retry-After`` in either of its forms, and reset times."""

from __future__ import annotations

from collections.abc import Mapping


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 section 10.2.3), or None when absent or unreadable.

    Both forms are accepted: delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2026 07:28:00 GMT"``),
    the latter measured from ``now`` (Unix time, from the caller's clock). A time already past waits 0 seconds.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:   # an HTTP-date is always GMT; a date written without a zone is taken as such
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(when.timestamp() - now, 0.0)


def reset_in(value: str | None, now: float) -> float | None:
    """Seconds until a reset given as Unix time (X's ``x-rate-limit-reset``, ``ratelimit-reset``), or None."""
    if value is None or not value.strip():
        return None
    try:
        return max(float(value.strip()) - now, 0.0)
    except ValueError:
        return None


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from a 429's headers: ``Retry-After`` first, else ``x-rate-limit-reset``; None if neither.

    ``headers`` should be case-insensitive (requests' and httpx's are).
    """
    wait = retry_after(headers.get("Retry-After"), now)
    return wait if wait is not None else reset_in(headers.get("x-rate-limit-reset"), now)


__all__ = ["rate_limit_wait", "reset_in", "retry_after"]
