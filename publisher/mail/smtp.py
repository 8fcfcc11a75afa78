"""SMTP: the server settings as one value, and a pool of connections (one worker thread each) that sends one
message per recipient and reports each outcome.

The pool records nothing: the pipeline claims a recipient before `submit()` and records what `next_outcome()`
returns, so every write of a delivery's state happens on the caller's thread (one SQLite writer, whose commits
can carry several outcomes at once). The backoff after a 4xx reply waits through the injected `sleep`.

Outcome rules, per recipient:
  * 2xx after DATA: ``sent``.
  * 4xx (greylisting, rate limits, a busy server): tried again on the same connection after a backoff that
    doubles each time; still 4xx after the last retry: ``failed`` with ``permanent=False`` (a re-run tries again).
  * 5xx about this recipient (to RCPT, or to DATA for this message): ``failed`` with the server's words and
    ``permanent=True``; a 5xx to RCPT with 550/551/553 also means the address does not exist (``bounced``).
    The other recipients go on.
  * A refusal of the sender rather than the recipient (a 5xx to MAIL FROM; a 4xx/5xx naming the sender, a
    quota or a policy, such as "550 5.4.5 Daily user sending quota exceeded"): every recipient would get the
    same answer, so the pool halts: this outcome and those still in flight are ``pending`` with ``halt`` (the
    run stops, the rest waits for a later run).
  * The circuit breaker: after ``breaker`` failures in a row across all connections (a connection lost or
    refused, a 4xx), the server is taken to be down or throttling: the pool halts the same way, instead of
    running the whole retry ladder for every remaining recipient.
  * A lost connection is reopened and the message sent again. If it was lost after the message's final dot
    was sent, the server may have accepted it: the outcome says ``possible_duplicate``.
"""

from __future__ import annotations

import ipaddress
import queue
import re
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
# Words of a reply about the sender's account or quota: the same answer awaits every recipient.
SENDER_REFUSAL = re.compile(r"quota|limit|too many (?:messages|mails|emails|connections)|sender|from address|"
                            r"authenticat|reputation", re.IGNORECASE)
# Words of a refusal by policy: about the sender or this message when said to MAIL FROM or DATA (the same
# bulletin goes to everyone), about the recipient when said to RCPT ("554 5.7.1 rejected by policy").
POLICY_REFUSAL = re.compile(r"policy|relay|spam|block", re.IGNORECASE)
# Words of a reply about this recipient (a full mailbox's "quota" is the reader's, not ours).
RECIPIENT_REFUSAL = re.compile(r"recipient|mailbox|user unknown|unknown user|no such user|does not exist|"
                               r"account that you tried to reach", re.IGNORECASE)
ENHANCED_STATUS = re.compile(r"\b[245]\.(\d{1,3})\.(\d{1,3})\b")


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

    def refuses_plain_auth(self) -> str | None:
        """Why this server must not be logged in to (a password in clear over the network), or None."""
        if self.security != "none" or not self.username or is_loopback(self.host):
            return None
        return (f"SMTP_SECURITY=none with SMTP_USERNAME set: the password would cross the network to {self.host} "
                "unencrypted, so publisher will not log in; set SMTP_SECURITY=starttls or ssl (a plain login "
                "is allowed only to a loopback host such as 127.0.0.1)")

    def connect(self) -> smtplib.SMTP:
        """An open, greeted and (if configured) authenticated connection. Never sends a password in clear to
        a host other than this machine (``ConfigError`` before connecting)."""
        refusal = self.refuses_plain_auth()
        if refusal is not None:
            from publisher.errors import ConfigError

            raise ConfigError("SMTP_SECURITY", refusal)
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
    """What became of one job: ``sent`` (2xx after DATA), ``failed``, or ``pending`` (not sent because the
    pool halted: ``halt`` set, ``error`` says why), with the server's words and code."""

    job: SendJob
    state: str                                    # "sent", "failed" or "pending"
    message_id: str | None = None
    error: str | None = None
    code: int | None = None
    permanent: bool = False
    bounced: bool = False
    possible_duplicate: bool = False
    attempts: int = 1
    halt: bool = False


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


class _SenderRefused(Exception):
    """A refusal of the sender (MAIL FROM, a quota, a policy): no other recipient would fare better."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class SmtpPool:
    """`connections` worker threads, each with its own reused SMTP connection.

    Use as a context manager. `submit()` never blocks; the caller keeps at most `connections` jobs
    outstanding, so each one starts at once and at most that many recipients are ever in flight.
    `build(job) -> (bytes, Message-ID)` makes each message on the worker's thread. `breaker` failures in a
    row (0: never) halt the pool; so does a refusal of the sender (see the module docstring).
    """

    server: SmtpServer
    build: Callable[[SendJob], tuple[bytes, str]]
    connections: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep     # the 4xx backoff; tests pass one that only records
    breaker: int = 5

    def __post_init__(self) -> None:
        self._jobs: queue.Queue[SendJob | None] = queue.Queue()
        self._outcomes: queue.Queue[SendOutcome | BaseException] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._failures = 0                          # in a row, across every connection
        self._halted: str | None = None             # why the pool stopped sending, once it has

    @property
    def halted(self) -> str | None:
        """Why the pool stopped sending (the run's one line), or None while it sends."""
        with self._lock:
            return self._halted

    def _halt(self, reason: str) -> None:
        with self._lock:
            if self._halted is None:
                self._halted = reason

    def _count(self, problem: _Transient | None) -> None:
        """One more failure in a row (``problem``), or a success (None), for the circuit breaker."""
        with self._lock:
            if problem is None:
                self._failures = 0
                return
            self._failures += 1
            tripped = self.breaker > 0 and self._failures >= self.breaker and self._halted is None
            if tripped:
                self._halted = (f"SMTP {self.server.describe()}: {self._failures} failures in a row "
                                f"(last: {problem}); the server looks down or is throttling us")

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
                reason = self.halted
                if reason is not None:   # the pool has halted: this one is not even tried
                    self._outcomes.put(SendOutcome(job, "pending", error=reason, halt=True, attempts=0))
                    continue
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
                self._count(None)
                return conn, SendOutcome(job, "sent", message_id=message_id,
                                         possible_duplicate=possible_duplicate, attempts=attempt)
            except _Permanent as refusal:
                self._count(None)   # the server is up and answering: not a failure in a row
                return conn, SendOutcome(job, "failed", message_id=message_id, error=str(refusal),
                                         code=refusal.code, permanent=True, bounced=refusal.bounced,
                                         possible_duplicate=possible_duplicate, attempts=attempt)
            except _SenderRefused as refusal:
                self._halt(f"SMTP {self.server.describe()} refused the sender: {refusal}")
                return conn, SendOutcome(job, "pending", message_id=message_id, error=self.halted,
                                         code=refusal.code, halt=True, possible_duplicate=possible_duplicate,
                                         attempts=attempt)
            except _Transient as problem:
                if problem.lost_connection:
                    if conn is not None:
                        _close(conn)
                    conn = None
                    possible_duplicate = possible_duplicate or problem.after_data
                self._count(problem)
                reason = self.halted
                if reason is not None:   # halted (here or on another connection): left for a later run
                    return conn, SendOutcome(job, "pending", message_id=message_id, error=reason,
                                             code=problem.code, halt=True,
                                             possible_duplicate=possible_duplicate, attempts=attempt)
                if attempt > self.retry.retries or self._stopping.is_set():
                    return conn, SendOutcome(job, "failed", message_id=message_id, error=str(problem),
                                             code=problem.code, permanent=False,
                                             possible_duplicate=possible_duplicate, attempts=attempt)
                self.sleep(self.retry.delay(attempt))
                reason = self.halted
                if reason is not None:   # halted while this one waited: not tried again
                    return conn, SendOutcome(job, "pending", message_id=message_id, error=reason,
                                             code=problem.code, halt=True,
                                             possible_duplicate=possible_duplicate, attempts=attempt)


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
        if sender_level(code, text, stage, recipient):
            raise _SenderRefused(code, message) from None
        raise _Transient(code, message, lost_connection=True) from None
    if sender_level(code, text, stage, recipient):
        raise _SenderRefused(code, message)
    if code == 421:     # the server is closing the connection
        raise _Transient(code, message, lost_connection=True)
    if 400 <= code < 500:
        raise _Transient(code, message)
    raise _Permanent(code, message, bounced=stage == "RCPT TO" and code in BOUNCE_CODES)


def sender_level(code: int, text: str, stage: str, recipient: str) -> bool:
    """True when a 4xx/5xx reply refuses the sender (its account, quota or policy) rather than this recipient:
    a 5xx to MAIL FROM; an enhanced status X.1.7/X.1.8 (bad sender address); a reply naming the sender, a
    quota or a limit (or, to MAIL FROM or DATA, a policy) and not this recipient or their mailbox (X.1.x,
    X.2.x: addressing, mailbox)."""
    if code < 400:
        return False
    if stage == "MAIL FROM" and code >= 500:
        return True
    enhanced = ENHANCED_STATUS.search(text)
    if enhanced is not None:
        subject, detail = enhanced.groups()
        if subject == "1" and detail in ("7", "8"):
            return True
        if subject in ("1", "2"):
            return False
    if recipient.lower() in text.lower() or RECIPIENT_REFUSAL.search(text):
        return False
    if SENDER_REFUSAL.search(text) is not None:
        return True
    return stage != "RCPT TO" and POLICY_REFUSAL.search(text) is not None


def is_loopback(host: str) -> bool:
    """True for this machine: 127.0.0.0/8, ::1 or localhost (a password may cross that in clear)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _reconnect(server: SmtpServer) -> smtplib.SMTP:
    try:
        return server.connect()
    except smtplib.SMTPResponseException as error:
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        raise _Transient(None, f"cannot reconnect to {server.describe()}: {error.smtp_code} {text}",
                         lost_connection=True) from None
    except (smtplib.SMTPException, OSError) as error:
        raise _Transient(None, f"cannot reconnect to {server.describe()}: {error}", lost_connection=True) from None


def breaker_failures(config: Config) -> int:
    """SMTP_BREAKER_FAILURES: failures in a row that stop a run (0: never)."""
    from publisher.mail.settings import SMTP_BREAKER_FAILURES

    return int(config.get(SMTP_BREAKER_FAILURES))


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
