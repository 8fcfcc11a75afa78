"""Where bounce mail is read: a Maildir on this machine, an IMAP folder or a POP3 mailbox (TLS only).

Each source hands over raw messages and is told, for each, ``done`` (handled: marked read, or removed from a
POP3 server, since the store remembers what was done) or ``keep`` (unclassified: kept for a person, never
deleted; from a Maildir moved to ``.publisher/bounces/unclassified/``, itself a Maildir a mail client opens).
A source that cannot be opened is an ``InputError`` naming it (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from publisher.errors import InputError


class MaildirSource:
    """A Maildir: messages in ``new/`` and those in ``cur/`` not yet marked seen (flag ``S``). A handled
    message moves to ``cur/`` with ``S`` added, as a mail client marks it read."""

    def __init__(self, path: Path, keep_dir: Path) -> None:
        self.path = Path(path)
        self.keep_dir = Path(keep_dir)
        if not (self.path / "new").is_dir() or not (self.path / "cur").is_dir():
            raise InputError(f"--maildir {self.path}", "not a Maildir (no new/ and cur/ folders)")
        self._paths: dict[str, Path] = {}

    def describe(self) -> str:
        return str(self.path)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        try:
            new = sorted(os.listdir(self.path / "new"))
            cur = sorted(os.listdir(self.path / "cur"))
        except OSError as error:
            raise InputError(f"--maildir {self.path}", f"cannot read: {error.strerror or error}") from None
        names = [("new", name) for name in new if not name.startswith(".")]
        names += [("cur", name) for name in cur if not name.startswith(".") and "S" not in _flags(name)]
        for folder, name in names:
            path = self.path / folder / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue   # taken by another reader meanwhile
            except OSError as error:
                raise InputError(str(path), f"cannot read: {error.strerror or error}") from None
            self._paths[name] = path
            yield name, data

    def done(self, key: str) -> None:
        path = self._paths.pop(key)
        base, _, _ = key.partition(":")
        flags = "".join(sorted(set(_flags(key)) | {"S"}))
        _move(path, self.path / "cur" / f"{base}:2,{flags}")

    def keep(self, key: str) -> None:
        path = self._paths.pop(key)
        for sub in ("tmp", "new", "cur"):
            (self.keep_dir / sub).mkdir(parents=True, exist_ok=True)
        _move(path, self.keep_dir / "new" / key.partition(":")[0])

    def close(self) -> None:
        self._paths.clear()


def _flags(name: str) -> str:
    _, _, info = name.partition(":2,")
    return info


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except FileNotFoundError:
        pass   # moved by another reader meanwhile; the store remembers it was handled


class ImapSource:
    """An IMAP folder over TLS (IMAPS on port 993, else STARTTLS, required; the certificate verified): the messages not yet seen, fetched without marking
    them; a handled one is flagged ``\\Seen``, an unclassified one ``\\Flagged`` and left unread for a person."""

    def __init__(self, host: str, port: int, user: str, password: str, folder: str = "INBOX", *,
                 timeout: float = 30.0, ssl_context: Any = None) -> None:
        self.host, self.port, self.user, self.password, self.folder = host, port, user, password, folder
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._imap: Any = None

    def describe(self) -> str:
        return f"imaps://{self.host}:{self.port}/{self.folder}"

    def _open(self) -> Any:
        import imaplib
        import ssl

        context = self.ssl_context or ssl.create_default_context()
        imap: Any = None
        try:
            if self.port == 993:
                imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=self.timeout)
            else:   # any other port: STARTTLS, required (a server without it is refused, nothing sent in clear)
                imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                imap.starttls(ssl_context=context)
        except (OSError, imaplib.IMAP4.error) as error:
            if imap is not None:
                _quietly(imap.shutdown)
            raise InputError("BOUNCE_IMAP_HOST", f"cannot connect to {self.describe()} with TLS: {error}") from None
        try:
            imap.login(self.user, self.password)
            kind, _ = imap.select(_quote(self.folder))
            if kind != "OK":
                raise InputError("BOUNCE_IMAP_FOLDER", f"{self.folder!r}: no such folder on {self.host}")
        except (OSError, imaplib.IMAP4.error) as error:
            _quietly(imap.shutdown)
            # The server's words, never the password.
            raise InputError("BOUNCE_IMAP_USER", f"{self.describe()}: login or select refused: {error}") from None
        return imap

    def messages(self) -> Iterator[tuple[str, bytes]]:
        import imaplib

        self._imap = self._open()
        try:
            kind, data = self._imap.uid("SEARCH", None, "UNSEEN")
            uids = data[0].split() if kind == "OK" and data and data[0] else []
            for uid in uids:
                kind, parts = self._imap.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((part[1] for part in parts or [] if isinstance(part, tuple) and len(part) > 1), None)
                if kind == "OK" and isinstance(raw, bytes):
                    yield uid.decode("ascii"), raw
        except (OSError, imaplib.IMAP4.error) as error:
            raise InputError("BOUNCE_IMAP_HOST", f"{self.describe()}: {error}") from None

    def done(self, key: str) -> None:
        self._imap.uid("STORE", key, "+FLAGS", "(\\Seen)")

    def keep(self, key: str) -> None:
        self._imap.uid("STORE", key, "+FLAGS", "(\\Flagged)")

    def close(self) -> None:
        if self._imap is not None:
            try:
                self._imap.logout()
            except Exception:   # the answers are recorded already; a lost goodbye changes nothing
                pass
            self._imap = None


class Pop3Source:
    """A POP3 mailbox over TLS (POP3S on port 995, else STLS, required; the certificate verified): a handled message is deleted from the server (the
    store remembers what it said), an unclassified one left there for a person."""

    def __init__(self, host: str, port: int, user: str, password: str, *, timeout: float = 30.0,
                 ssl_context: Any = None) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._pop: Any = None

    def describe(self) -> str:
        return f"pop3s://{self.host}:{self.port}"

    def messages(self) -> Iterator[tuple[str, bytes]]:
        import poplib
        import ssl

        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.port == 995:
                self._pop = poplib.POP3_SSL(self.host, self.port, context=context, timeout=self.timeout)
            else:   # any other port: STLS (RFC 2595), required
                self._pop = poplib.POP3(self.host, self.port, timeout=self.timeout)
                self._pop.stls(context=context)
        except (OSError, poplib.error_proto) as error:
            self.close()
            raise InputError("BOUNCE_POP3_HOST", f"cannot connect to {self.describe()} with TLS: {error}") from None
        try:
            self._pop.user(self.user)
            self._pop.pass_(self.password)
            count, _ = self._pop.stat()
        except (OSError, poplib.error_proto) as error:
            raise InputError("BOUNCE_POP3_USER", f"{self.describe()}: login refused: {error}") from None
        try:
            for number in range(1, count + 1):
                _, lines, _ = self._pop.retr(number)
                yield str(number), b"\r\n".join(lines) + b"\r\n"
        except (OSError, poplib.error_proto) as error:
            raise InputError("BOUNCE_POP3_HOST", f"{self.describe()}: {error}") from None

    def done(self, key: str) -> None:
        self._pop.dele(int(key))

    def keep(self, key: str) -> None:
        pass   # left on the server, unread by us again: the store remembers its Message-ID

    def close(self) -> None:
        if self._pop is not None:
            try:
                self._pop.quit()   # QUIT commits the deletions
            except Exception:   # the answers are recorded; the messages are read again and skipped next time
                pass
            self._pop = None


def _quietly(close: Any) -> None:
    """Close a connection that already failed: its own error says nothing more."""
    try:
        close()
    except OSError:
        pass


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_from_config(site: Any, config: Any, kind: str) -> MaildirSource | ImapSource | Pop3Source:
    """The source named by the settings: ``maildir`` (BOUNCE_MAILDIR), ``imap`` or ``pop3``."""
    from publisher.bounces import settings as s

    def need(setting: Any) -> str:
        value = config.get(setting)
        if not value:
            raise InputError(setting.name, f"is not set; --{kind} needs it")
        return str(value)

    if kind == "maildir":
        folder = Path(need(s.BOUNCE_MAILDIR)).expanduser()
        folder = folder if folder.is_absolute() else site.root / folder
        return MaildirSource(folder, site.state_dir / "bounces" / "unclassified")
    if kind == "imap":
        return ImapSource(need(s.BOUNCE_IMAP_HOST), int(config.get(s.BOUNCE_IMAP_PORT)), need(s.BOUNCE_IMAP_USER),
                          need(s.BOUNCE_IMAP_PASSWORD), str(config.get(s.BOUNCE_IMAP_FOLDER)))
    return Pop3Source(need(s.BOUNCE_POP3_HOST), int(config.get(s.BOUNCE_POP3_PORT)), need(s.BOUNCE_POP3_USER),
                      need(s.BOUNCE_POP3_PASSWORD))
