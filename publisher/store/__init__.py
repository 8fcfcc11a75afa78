"""The storage layer: typed interfaces for everything the site keeps, and ``open_store`` for its implementation.

Every SQL statement of the package lives under ``publisher/store/``; the rest of the code sees only the
protocols of ``store/interfaces.py``, which take and return value types (``publisher.delivery``,
``publisher.subscribers``), never a database row. ``store/sqlite.py`` implements them on SQLite, with migrations
in ``store/migrations/sqlite/``; another database is another module with its own migrations folder, chosen by
``open_store`` from the URL.
"""

from __future__ import annotations

from pathlib import Path

from publisher.store.interfaces import (
    Clock,
    ContentIndex,
    FeedCache,
    IndexedFile,
    Ledger,
    Mark,
    RateLimits,
    Store,
    SubscriberStore,
    TranslationMemory,
    format_time,
    utc_now,
)


def open_store(
    url: str | None,
    *,
    state_dir: Path,
    shared: bool = False,
    clock: Clock | None = None,
) -> Store:
    """The store at ``url`` (``PUBLISHER_DATABASE_URL``; None: ``<state_dir>/publisher.db``).

    ``state_dir`` (the site's ``.publisher/``) holds the locks and caches. ``shared``: the connection may be used
    from any thread, one at a time (the web server's pool). ``clock`` returns an aware datetime (tests).
    The database is opened and migrated on first use.
    """
    from publisher.errors import ConfigError

    if url is None or url.startswith("sqlite:///"):
        from publisher.store.sqlite import SqliteStore

        path = Path(url[len("sqlite:///"):]) if url else state_dir / "publisher.db"
        return SqliteStore(path, state_dir=state_dir, shared=shared, clock=clock)
    raise ConfigError("PUBLISHER_DATABASE_URL", "only sqlite:///PATH is supported")


__all__ = [
    "Clock", "ContentIndex", "FeedCache", "IndexedFile", "Ledger", "Mark", "RateLimits", "Store", "SubscriberStore", "TranslationMemory",
    "format_time", "open_store", "utc_now",
]
