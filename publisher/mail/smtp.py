"""SMTP: the server settings as one value, and a pool of connections (one worker thread each) that sends one
message per recipient and reports each outcome.

The pool records nothing: the pipeline claims a recipient before `submit()` and records what `next_outcome()`
returns, so every write of a delivery's state happens on the caller's thread (one SQLite writer, whose commits
can carry several outcomes at once). The backoff after a 4xx reply waits through the injected `sleep`.

Outcome rules, per recipient:
  * 2xx after DATA: ``sent``.
  * 4xx (greylisting, rate limits, a busy server): tried again on the same connection after a backoff that
    doubles each time; still 4xx after the last retry: ``failed`` with ``permanent=False`` (a re-run tries again).
  * 5xx: ``failed`` with the server's words and ``permanent=True``; a 5xx to RCPT with 550/551/553 also means the
    address does not exist (``bounced``). The other recipients go on.
  * A lost connection is reopened and the message sent again. If it was lost after the message's final dot
    was sent, the server may have accepted it: the outcome says ``possible_duplicate``.
"""

from __future__ import annotations

import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from publisher.config import Config

# RCPT replies that mean "no such mailbox" rather than "not now" or "not this message".
BOUNCE_CODES = (550, 551, 553)


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect: the SMTP_* settings as one value."""

    host: str
    port: int
    security: str = "starttls"          # "starttls", "ssl" or "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)   # a secret: never in a repr, log or traceback
    timeout: float = 30.0
    local_hostname: str | None = None

    def describe(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> smtplib.SMTP:
        """An open, greeted and (if configured) authenticated connection."""
        context = ssl.create_default_context()
        if self.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context, local_hostname=self.local_hostname
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname)
        try:
            conn.ehlo()
            if self.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password or "")
        except BaseException:
            _close(conn)
            raise
        return conn


@dataclass
class SendJob:
    """One message to one recipient; the pool's `build` turns `payload` into bytes in the worker."""

    key: Any
    sender: str
    recipient: str
    payload: Any = None                           # what `build` needs, e.g. (bulletin language, subscriber)
    context: Any = None                           # whatever the caller wants back with the outcome


@dataclass
class SendOutcome:
    """What became of one job: ``sent`` (2xx after DATA) or ``failed``, with the server's words and code."""

    job: SendJob
    state: str                                    # "sent" or "failed"
    message_id: str | None = None
    error: str | None = None
    code: int | None = None
    permanent: bool = False
    bounced: bool = False
    possible_duplicate: bool = False
    attempts: int = 1


@dataclass
class RetryPolicy:
    """How often a 4xx is tried again, and the first wait (doubling each time)."""

    retries: int = 3
    first_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return self.first_delay * 2.0 ** (attempt - 1)


class _Transient(Exception):
    """A 4xx or a lost connection: worth another try."""

    def __init__(self, code: int | None, message: str, lost_connection: bool = False,
                 after_data: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.lost_connection = lost_connection
        self.after_data = after_data


class _Permanent(Exception):
    def __init__(self, code: int, message: str, bounced: bool) -> None:
        super().__init__(message)
        self.code = code
        self.bounced = bounced


@dataclass
class SmtpPool:
    """`connections` worker threads, each with its own reused SMTP connection.

    Use as a context manager. `submit()` never blocks; the caller keeps at most `connections` jobs
    outstanding, so each one starts at once and at most that many recipients are ever in flight.
    `build(job) -> (bytes, Message-ID)` makes each message on the worker's thread.
    """

    server: SmtpServer
    build: Callable[[SendJob], tuple[bytes, str]]
    connections: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep     # the 4xx backoff; tests pass one that only records

    def __post_init__(self) -> None:
        self._jobs: queue.Queue[SendJob | None] = queue.Queue()
        self._outcomes: queue.Queue[SendOutcome | BaseException] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def __enter__(self) -> SmtpPool:
        # Fail fast, on the caller's thread, when the server cannot be reached or refuses our login.
        from publisher.errors import ChannelError

        try:
            probe = self.server.connect()
        except OSError as error:   # smtplib errors are OSErrors too
            raise ChannelError(f"SMTP {self.server.describe()}: cannot connect: {one_line(error)}") from None
        self._threads = [
            threading.Thread(target=self._work, args=(probe if i == 0 else None,), name=f"smtp-{i}", daemon=True)
            for i in range(self.connections)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Jobs still waiting were never started (not in flight): drop them, so an interrupted run stops at once.
        self._stopping.set()
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=self.server.timeout + 5)

    def describe(self) -> str:
        return f"SMTP {self.server.describe()}"

    def submit(self, job: SendJob) -> None:
        self._jobs.put(job)

    def next_outcome(self, timeout: float | None = None) -> SendOutcome | None:
        """The next outcome, or None after `timeout` seconds; re-raises a worker's unexpected error."""
        try:
            item = self._outcomes.get(block=timeout != 0, timeout=timeout or None)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    # -- worker ----------------------------------------------------------------------------

    def _work(self, conn: smtplib.SMTP | None) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None or self._stopping.is_set():
                    break
                data, message_id = self.build(job)
                conn, outcome = self._deliver(conn, job, data, message_id)
                self._outcomes.put(outcome)
        except BaseException as error:  # a bug must surface in the caller, not vanish with the thread
            self._outcomes.put(error)
        finally:
            if conn is not None:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    _close(conn)

    def _deliver(self, conn: smtplib.SMTP | None, job: SendJob, data: bytes,
                 message_id: str) -> tuple[smtplib.SMTP | None, SendOutcome]:
        possible_duplicate = False
        attempt = 0
        while True:
            attempt += 1
            try:
                if conn is None:
                    conn = _reconnect(self.server)
                _transaction(conn, job.sender, job.recipient, data)
                return conn, SendOutcome(job, "sent", message_id=message_id,
                                         possible_duplicate=possible_duplicate, attempts=attempt)
            except _Permanent as refusal:
                return conn, SendOutcome(job, "failed", message_id=message_id, error=str(refusal),
                                         code=refusal.code, permanent=True, bounced=refusal.bounced,
                                         possible_duplicate=possible_duplicate, attempts=attempt)
            except _Transient as problem:
                if problem.lost_connection:
                    if conn is not None:
                        _close(conn)
                    conn = None
                    possible_duplicate = possible_duplicate or problem.after_data
                if attempt > self.retry.retries or self._stopping.is_set():
                    return conn, SendOutcome(job, "failed", message_id=message_id, error=str(problem),
                                             code=problem.code, permanent=False,
                                             possible_duplicate=possible_duplicate, attempts=attempt)
                self.sleep(self.retry.delay(attempt))


def _transaction(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """MAIL, RCPT, DATA for one recipient, by hand so that we know whether the message body left us."""
    stage = "MAIL FROM"
    try:
        options: list[str] = []
        if not (sender + recipient).isascii():
            if not conn.has_extn("smtputf8"):
                raise _Permanent(553, "the server does not accept internationalized addresses (no SMTPUTF8) "
                                      "(at MAIL FROM)", bounced=False)
            options.append("SMTPUTF8")
            conn.command_encoding = "utf-8"
        else:
            conn.command_encoding = "ascii"
        if conn.does_esmtp and conn.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        code, reply = conn.mail(sender, options)
        _check(conn, code, reply, stage, recipient)
        stage = "RCPT TO"
        code, reply = conn.rcpt(recipient)
        _check(conn, code, reply, stage, recipient)
        stage = "DATA"
        code, reply = conn.data(data)   # smtplib sends the body, dot-stuffed, and the final "."
        _check(conn, code, reply, stage, recipient)
    except smtplib.SMTPDataError as error:
        # smtplib raises this when DATA itself (not the body) is refused.
        _check(conn, error.smtp_code, error.smtp_error, stage, recipient)
    except (smtplib.SMTPServerDisconnected, OSError) as error:
        # Lost while DATA was under way: the body may have reached the server in full.
        raise _Transient(None, f"connection lost during {stage}: {error}", lost_connection=True,
                         after_data=stage == "DATA") from None


def _check(conn: smtplib.SMTP, code: int, reply: bytes | str, stage: str, recipient: str) -> None:
    if 200 <= code < 300 or (stage == "DATA" and code == 354):
        return
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"{code} {' '.join(text.split())} (at {stage})"
    try:
        conn.rset()     # leave the connection ready for the next recipient
    except (smtplib.SMTPException, OSError):
        raise _Transient(code, message, lost_connection=True) from None
    if code == 421:     # the server is closing the connection
        raise _Transient(code, message, lost_connection=True)
    if 400 <= code < 500:
        raise _Transient(code, message)
    raise _Permanent(code, message, bounced=stage == "RCPT TO" and code in BOUNCE_CODES)


def _reconnect(server: SmtpServer) -> smtplib.SMTP:
    try:
        return server.connect()
    except smtplib.SMTPResponseException as error:
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        raise _Transient(None, f"cannot reconnect to {server.describe()}: {error.smtp_code} {text}",
                         lost_connection=True) from None
    except (smtplib.SMTPException, OSError) as error:
        raise _Transient(None, f"cannot reconnect to {server.describe()}: {error}", lost_connection=True) from None


def smtp_server(config: Config) -> SmtpServer:
    """The SMTP_* settings as an `SmtpServer`."""
    from publisher.mail.settings import (SMTP_HOST, SMTP_PASSWORD, SMTP_PORT, SMTP_SECURITY, SMTP_TIMEOUT,
                                         SMTP_USERNAME)

    security = str(config.get(SMTP_SECURITY))
    port = config.get(SMTP_PORT) or {"ssl": 465, "starttls": 587, "none": 25}[security]
    return SmtpServer(
        host=str(config.get(SMTP_HOST)),
        port=int(port),
        security=security,
        username=config.get(SMTP_USERNAME) or None,
        password=config.get(SMTP_PASSWORD) or None,
        timeout=float(config.get(SMTP_TIMEOUT)),
    )


def retry_policy(config: Config) -> RetryPolicy:
    """SMTP_RETRIES and SMTP_RETRY_DELAY as a `RetryPolicy`."""
    from publisher.mail.settings import SMTP_RETRIES, SMTP_RETRY_DELAY

    return RetryPolicy(int(config.get(SMTP_RETRIES)), float(config.get(SMTP_RETRY_DELAY)))


def one_line(error: BaseException) -> str:
    """An exception's text on one line (smtplib's replies span several)."""
    return " ".join(str(error).split())


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.close()
    except OSError:
        pass
