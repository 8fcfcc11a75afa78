"""The storage layer: typed interfaces for everything the site keeps, and ``open_store`` for its implementation.

Every SQL statement of the package lives under ``publisher/store/``; the rest of the code sees only the
protocols of ``store/interfaces.py``, which take and return value types (``publisher.delivery``,
``publisher.subscribers``), never a database row. ``store/sqlite.py`` implements them on SQLite, with migrations
in ``store/migrations/sqlite/``; another database is another module with its own migrations folder, chosen by
``open_store`` from the URL: ``store/postgres.py`` for ``postgresql://`` and ``postgres://`` URLs, with its
migrations in ``store/migrations/postgresql/``.
"""

from __future__ import annotations

from pathlib import Path

from publisher.store.interfaces import (
    Clock,
    ContentIndex,
    FeedCache,
    IndexEntry,
    IndexedFile,
    Job,
    Jobs,
    Ledger,
    Mark,
    RateLimits,
    Store,
    SubscriberStore,
    TokenBuckets,
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
    reconnect: float | None = None,
) -> Store:
    """The store at ``url`` (``PUBLISHER_DATABASE_URL``; None: ``<state_dir>/publisher.db``).

    ``state_dir`` (the site's ``.publisher/``) holds the locks and caches. ``shared``: the connection may be used
    from any thread, one at a time (the web server's pool). ``clock`` returns an aware datetime (tests).
    The database is opened and migrated on first use. ``reconnect``: how long a PostgreSQL store waits for a
    server that dropped its connection (``PUBLISHER_DATABASE_RECONNECT_SECONDS``; None: its default).
    """
    from publisher.errors import ConfigError

    if url is None or url.startswith("sqlite:///"):
        from publisher.store.sqlite import SqliteStore

        path = Path(url[len("sqlite:///"):]) if url else state_dir / "publisher.db"
        return SqliteStore(path, state_dir=state_dir, shared=shared, clock=clock)
    if dialect(url) == "postgresql":
        try:
            import psycopg  # noqa: F401 - imported here only to say what to install when it is missing
            import psycopg_pool  # noqa: F401

            from publisher.store.postgres import PostgresStore
        except ModuleNotFoundError:
            raise ConfigError("PUBLISHER_DATABASE_URL", "a PostgreSQL database needs psycopg and psycopg_pool: "
                              "pip install 'publisher[postgres]'") from None
        if reconnect is None:
            return PostgresStore(url, state_dir=state_dir, shared=shared, clock=clock)
        return PostgresStore(url, state_dir=state_dir, shared=shared, clock=clock, reconnect=reconnect)
    raise ConfigError("PUBLISHER_DATABASE_URL", "expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE")


def dialect(url: str | None) -> str:
    """``sqlite`` or ``postgresql``: which implementation ``open_store`` picks for ``url`` (None: SQLite)."""
    if url is None or url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    return "unknown"


def open_content_index(state_dir: Path) -> ContentIndex:
    """The content index of the site whose state folder is ``state_dir`` (a new handle: close it when done).

    A cache file of its own, ``<state_dir>/cache/content-index.sqlite``, whatever ``PUBLISHER_DATABASE_URL``
    says: it holds every body, and it describes the files of this folder (paths, sizes, modification times),
    which a database shared by several machines must not. It opens no connection to the site's database, so
    any thread may load the library (the web server's requests) without touching the store.
    """
    from publisher.store.sqlite import SqliteContentIndex

    return SqliteContentIndex(state_dir / "cache" / "content-index.sqlite")


__all__ = [
    "Clock", "ContentIndex", "FeedCache", "IndexEntry", "IndexedFile", "Job", "Jobs", "Ledger", "Mark", "RateLimits",
    "Store", "TokenBuckets",
    "SubscriberStore", "TranslationMemory", "dialect", "format_time", "open_content_index", "open_store", "utc_now",
]
