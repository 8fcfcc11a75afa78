"""The exception tree; ``str(error)`` is the one line the command line shows.

    PublisherError                 any error a user can act on (exit code 2, no traceback)
    ├── ContentError (ValueError)  an article file: "content/x.en.md: title: is required"
    ├── ConfigError (ValueError)   a setting: "SMTP_PORT (from .env): expected a whole number"
    ├── InputError (ValueError)    other input, e.g. a CSV row: "subscribers.csv:7: email: not a valid address"
    ├── NotFound (LookupError)     a file, article or channel that does not exist
    ├── ChannelError               a channel that cannot be loaded or used
    ├── TranslationUnavailable     no model for a language pair, with the command that installs one
    ├── BadToken (ValueError)      a forged, altered or expired signed link
    ├── LockBusy                   a lock asked for without waiting is held by another run
    └── StorageError               the database cannot be read or written: "site.db: the disk is full ..."
        ├── ConnectionLost         the server dropped the connection mid-transaction (rolled back; run it again)
        └── DatabaseUnreachable    ...and did not come back within PUBLISHER_DATABASE_RECONNECT_SECONDS
"""

from __future__ import annotations

from pathlib import Path


class PublisherError(Exception):
    """An error a user can act on; its message is one line."""


class ContentError(PublisherError, ValueError):
    """An article file is invalid."""

    def __init__(self, path: Path | str | None, field: str | None, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        where = [str(path)] if path is not None else []
        if field:
            where.append(field)
        super().__init__(": ".join([*where, message]))


class ConfigError(PublisherError, ValueError):
    """A setting is missing or invalid."""

    def __init__(self, name: str, message: str, source: str | None = None) -> None:
        self.name = name
        self.source = source
        origin = f" (from {source})" if source and source != "default" else ""
        super().__init__(f"{name}{origin}: {message}")


class InputError(PublisherError, ValueError):
    """Input other than an article or a setting (a CSV row, a form field) is invalid."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


class NotFound(PublisherError, LookupError):
    """A file, article or channel does not exist."""


class ChannelError(PublisherError):
    """A channel cannot be loaded or used."""


class TranslationUnavailable(PublisherError):
    """No translation model is installed for a language pair."""


class BadToken(PublisherError, ValueError):
    """A signed token is forged, altered or expired."""


class LockBusy(PublisherError):
    """A named lock (``Store.lock(name, wait=False)``) is held by another process or thread."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"{name}: another run holds this lock right now; try again when it has finished")


class StorageError(PublisherError):
    """The database cannot be read or written for a reason outside the program: the disk is full, the file or
    its folder is read-only, the file is not a database or is damaged, another process holds it too long.

    ``path`` is the database file, ``code`` SQLite's primary result code (``sqlite3.SQLITE_FULL``...) when the
    error came from SQLite.
    """

    def __init__(self, path: Path | str, cause: str, code: int | None = None) -> None:
        self.path = path
        self.cause = cause
        self.code = code
        super().__init__(f"{path}: {cause}")


class ConnectionLost(StorageError):
    """The database server dropped the connection in the middle of a transaction (a restart, a failover): the
    transaction was rolled back, and the store reconnects at its next statement. A caller whose transaction is
    safe to run again (the pipeline's claims and marks, a worker's job) runs it again."""


class DatabaseUnreachable(StorageError):
    """The database server dropped the connection and did not take a new one within
    PUBLISHER_DATABASE_RECONNECT_SECONDS: the run stops (a worker too), leaving the rest to a later run."""
