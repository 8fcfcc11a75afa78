"""SMTP: the server settings as one value, and an asynchronous sender (one event loop, many connections,
PIPELINING when offered) that sends one message per recipient and reports each outcome.

The sender records nothing: the pipeline claims a recipient before `submit()` and records what `next_outcome()`
returns, so every write of a delivery's state happens on the caller's thread (one SQLite writer, whose commits
can carry several outcomes at once). The backoff after a 4xx reply waits through the injected `sleep`.

With PIPELINING (RFC 2920) a message costs one round trip once the connection is busy: the body and final dot
of one message, then MAIL FROM, RCPT TO and DATA of the next, leave in one write, and the replies are read in
order (the body's, then each command's). Without it each command waits for its reply, as smtplib does.
A row is still marked sent only after the 250 to its final dot.

Outcome rules, per recipient:
  * 2xx after DATA: ``sent``.
  * 4xx (greylisting, rate limits, a busy server): tried again (on whichever connection is free) after a backoff that
    doubles each time; still 4xx after the last retry: ``failed`` with ``permanent=False`` (a re-run tries again).
  * 5xx about this recipient (to RCPT, or to DATA for this message): ``failed`` with the server's words and
    ``permanent=True``; a 5xx to RCPT with 550/551/553 also means the address does not exist (``bounced``).
    The other recipients go on.
  * A refusal of the sender rather than the recipient (a 5xx to MAIL FROM; a 4xx/5xx naming the sender, a
    quota or a policy, such as "550 5.4.5 Daily user sending quota exceeded"): every recipient would get the
    same answer, so the sender halts: this outcome and those still in flight are ``pending`` with ``halt`` (the
    run stops, the rest waits for a later run).
  * The circuit breaker: after ``breaker`` failures in a row across all connections (a connection lost or
    refused, a 4xx), the server is taken to be down or throttling: the sender halts the same way, instead of
    running the whole retry ladder for every remaining recipient. A job that runs out of retries because the
    server refused a new connection halts the sender too (the server is down, not the reader's address), even
    when a success on another connection kept the count of failures in a row below ``breaker``.
  * A lost connection is reopened and the message sent again. If it was lost after the message's final dot
    was sent, the server may have accepted it: the outcome says ``possible_duplicate``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import ipaddress
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from publisher.mail.client import ConnectionLost, Reply, SmtpConnection, SmtpReplyError, dot_stuffed, open_connection

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
    """One message to one recipient; the sender's `build` turns `payload` into bytes on its loop."""

    key: Any
    sender: str
    recipient: str
    payload: Any = None                           # what `build` needs, e.g. (bulletin language, subscriber)
    context: Any = None                           # whatever the caller wants back with the outcome


@dataclass
class SendOutcome:
    """What became of one job: ``sent`` (2xx after DATA), ``failed``, or ``pending`` (not sent because the
    sender halted: ``halt`` set, ``error`` says why), with the server's words and code."""

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
                 after_data: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.lost_connection = lost_connection
        self.after_data = after_data
        self.unreachable = unreachable       # the server refused a new connection: nobody's message is at fault


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
class _InFlight:
    """One job while the sender holds it: its bytes (built once), tries so far, and whether a copy may have
    arrived already (a connection lost after its final dot)."""

    job: SendJob
    data: bytes = b""
    message_id: str = ""
    attempt: int = 0
    possible_duplicate: bool = False


_STOP = object()
_STAGES = ("MAIL FROM", "RCPT TO", "DATA")
_NO_COMMANDS = (b"", b"", b"")      # pipelined: the three went out in one write already


@dataclass
class SmtpSender:
    """One asyncio event loop, in one background thread, driving up to `connections` SMTP connections.

    Use as a context manager. `submit()` never blocks and `next_outcome()` waits for the next outcome (a caller
    that is full, for a batch of them: see `gather_share`), so the pipeline's synchronous session keeps
    working; the caller keeps at most `capacity` jobs outstanding: `connections` times the messages on one
    connection's wire plus `reserve` (1) waiting for it. On the wire: `depth` (2) when the server offers
    PIPELINING (RFC 2920), where the next message's MAIL FROM, RCPT TO and DATA ride in the same write as the
    previous message's body and every reply is checked in order; 1 without it (each command waits for its
    reply). The reserve is claimed ahead: a connection whose message was just answered finds the next one
    waiting instead of sending a body alone (a round trip more) or standing idle while the pipeline's thread
    marks a batch of outcomes and claims the next. So a crash leaves at most `capacity` in doubt:
    ``connections x (depth + reserve)``, 150 at the defaults (2 x connections without PIPELINING).
    Connections are opened as the jobs need them, so a short list never opens fifty. `build(job) -> (bytes,
    Message-ID)` makes each message on the loop's thread. `breaker` failures in a row (0: never) halt the
    sender; so does a refusal of the sender (see the module docstring).
    """

    server: SmtpServer
    build: Callable[[SendJob], tuple[bytes, str]]
    connections: int = 50
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep     # the 4xx backoff; tests pass one that only records
    breaker: int = 5
    depth: int = 2                                   # messages in flight on one connection with PIPELINING
    reserve: int = 1                                 # messages per connection claimed ahead, waiting for one
    # `build`'s message already as the DATA body (what `dot_stuffed` makes of it), when the builder can make
    # it for less: MessageBuilder stuffs the parts every recipient shares once per bulletin.
    build_data: Callable[[SendJob], tuple[bytes, str]] | None = None
    # A caller that waits because it is full (`next_outcome()` without a timeout) is woken once this share
    # of `capacity` is ready, or `gather_seconds` after the first: each wake-up of the pipeline's thread
    # costs a ledger transaction, which a few outcomes more share. Those still in flight keep every
    # connection busy meanwhile, and the last few of a run are not waited for (see `next_outcome`).
    gather_share: float = 0.25
    gather_seconds: float = 0.05

    def __post_init__(self) -> None:
        self._done: collections.deque[SendOutcome | BaseException] = collections.deque()
        self._ready = threading.Condition(threading.Lock())   # the loop's thread tells the caller's
        self._wanted = 0             # outcomes the caller waits for (0: it is not waiting)
        self._failed = False         # the loop put an unexpected error among the outcomes
        self._outstanding = 0        # submitted, outcome not yet taken (the caller's thread only)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._jobs: asyncio.Queue[_InFlight | object] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._backoffs: dict[asyncio.Task[None], _InFlight] = {}   # the jobs waiting to be tried again
        self._inbox: collections.deque[_InFlight] = collections.deque()   # submitted, not yet on the loop
        self._wake_pending = False
        self._idle = 0
        self._stopping = False
        self._failures = 0                          # in a row, across every connection
        self._halted: str | None = None             # why the sender stopped sending, once it has
        self._pipelining = False
        self._hostname = "localhost"
        self._tls: ssl.SSLContext | None = None
        self.capacity = self._capacity(pipelining=False)

    def _capacity(self, pipelining: bool) -> int:
        """Jobs the caller may keep outstanding: per connection, those on its wire plus the reserve."""
        wire = max(1, self.depth) if pipelining else 1
        return self.connections * (wire + max(0, self.reserve))

    @property
    def halted(self) -> str | None:
        """Why the sender stopped sending (the run's one line), or None while it sends."""
        return self._halted

    def describe(self) -> str:
        return f"SMTP {self.server.describe()}"

    # -- the caller's thread ---------------------------------------------------------------------

    def __enter__(self) -> SmtpSender:
        # Fail fast, on the caller's thread, when the server cannot be reached or refuses our login.
        from publisher.errors import ChannelError

        self._hostname = self.server.local_hostname or socket.getfqdn()
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="smtp-loop", daemon=True)
        self._thread.start()
        try:
            probe = asyncio.run_coroutine_threadsafe(self._open(), loop).result()
        except (OSError, ConnectionLost, SmtpReplyError) as error:
            self._shut_down()
            raise ChannelError(f"SMTP {self.server.describe()}: cannot connect: {one_line(error)}") from None
        except BaseException:
            self._shut_down()
            raise
        self._pipelining = probe.pipelining
        self.capacity = self._capacity(self._pipelining)
        asyncio.run_coroutine_threadsafe(self._start(probe), loop).result()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is None:
            return
        # Jobs still waiting were never started (not in flight): dropped, so an interrupted run stops at once.
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=self.server.timeout + 5)
        except (TimeoutError, concurrent.futures.TimeoutError):
            pass
        self._shut_down()

    def _shut_down(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()

    def submit(self, job: SendJob) -> None:
        assert self._loop is not None, "submit() outside `with`"
        self._inbox.append(_InFlight(job))
        self._outstanding += 1
        # One wake-up of the loop for a burst of submits, not one each (each is a write to its self-pipe).
        if not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._take_inbox)

    def next_outcome(self, timeout: float | None = None) -> SendOutcome | None:
        """The next outcome, or None after `timeout` seconds; re-raises the loop's unexpected error.

        Without a timeout (the caller is full and waits), it returns once a batch has gathered: a
        ``gather_share`` of `capacity`, or as many as are still outstanding if fewer, or whatever came within
        ``gather_seconds`` of the first; the caller then takes the rest with ``timeout=0``."""
        with self._ready:
            if timeout is None:
                # Full: wait for one, then for the batch, also when a few were ready already (a caller that
                # came back after them would otherwise take those few alone).
                if not self._done:
                    self._wanted = 1
                    self._ready.wait_for(self._gathered)
                batch = min(max(1, int(self.capacity * self.gather_share)), self._outstanding)
                if batch > len(self._done) and not self._failed:
                    self._wanted = batch
                    self._ready.wait_for(self._gathered, self.gather_seconds)
                self._wanted = 0
            elif not self._done:
                if timeout == 0:
                    return None
                self._wanted = 1
                self._ready.wait_for(self._gathered, timeout)
                self._wanted = 0
            if not self._done:
                return None
            item = self._done.popleft()
        if isinstance(item, BaseException):
            raise item
        self._outstanding -= 1
        return item

    def _gathered(self) -> bool:
        return len(self._done) >= self._wanted or self._failed

    # -- the loop's thread -----------------------------------------------------------------------

    async def _open(self) -> SmtpConnection:
        refusal = self.server.refuses_plain_auth()
        if refusal is not None:
            from publisher.errors import ConfigError

            raise ConfigError("SMTP_SECURITY", refusal)
        if self._tls is None and self.server.security != "none":
            self._tls = ssl.create_default_context()
        return await open_connection(self.server.host, self.server.port, security=self.server.security,
                                     timeout=self.server.timeout, local_hostname=self._hostname,
                                     username=self.server.username, password=self.server.password,
                                     context=self._tls)

    async def _start(self, probe: SmtpConnection) -> None:
        self._jobs = asyncio.Queue()
        self._spawn(probe)

    def _spawn(self, conn: SmtpConnection | None) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(conn))
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    def _take_inbox(self) -> None:
        self._wake_pending = False     # before taking: a submit after this line wakes the loop again
        while self._inbox:
            self._enqueue(self._inbox.popleft())

    def _enqueue(self, item: _InFlight) -> None:
        assert self._jobs is not None
        if self._halted is not None:          # halted: this one is not even tried
            self._pending(item, self._halted)
            return
        self._jobs.put_nowait(item)
        if self._idle < self._jobs.qsize() and len(self._workers) < self.connections and not self._stopping:
            self._spawn(None)

    async def _stop(self) -> None:
        self._stopping = True
        assert self._jobs is not None
        self._inbox.clear()
        while not self._jobs.empty():
            self._jobs.get_nowait()
        for task in list(self._backoffs):
            task.cancel()
        for _ in range(len(self._workers)):
            self._jobs.put_nowait(_STOP)
        if self._workers:
            await asyncio.wait(list(self._workers), timeout=self.server.timeout + 2)

    def _take_nowait(self) -> _InFlight | None:
        assert self._jobs is not None
        try:
            item = self._jobs.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if item is _STOP:
            self._jobs.put_nowait(item)
            return None
        assert isinstance(item, _InFlight)
        return item

    def _emit(self, outcome: SendOutcome | BaseException) -> None:
        with self._ready:
            self._done.append(outcome)
            if isinstance(outcome, BaseException):
                self._failed = True
            if self._wanted and (len(self._done) >= self._wanted or self._failed):
                self._wanted = 0            # told once: the caller's predicate holds from now on
                self._ready.notify()

    def _pending(self, item: _InFlight, reason: str, code: int | None = None) -> None:
        self._emit(SendOutcome(item.job, "pending", message_id=item.message_id or None, error=reason, code=code,
                               halt=True, possible_duplicate=item.possible_duplicate, attempts=item.attempt))

    def _halt(self, reason: str) -> None:
        if self._halted is not None:
            return
        self._halted = reason
        assert self._jobs is not None
        waiting = []
        while not self._jobs.empty():
            waiting.append(self._jobs.get_nowait())
        for item in waiting:
            if isinstance(item, _InFlight):
                self._pending(item, reason)
            else:
                self._jobs.put_nowait(item)
        # Those waiting out a backoff are not tried again: they are pending now, not after the wait.
        for task, item in list(self._backoffs.items()):
            task.cancel()
            self._pending(item, reason)
        self._backoffs.clear()

    def _count(self, problem: _Transient | None) -> None:
        """One more failure in a row (``problem``), or a success (None), for the circuit breaker."""
        if problem is None:
            self._failures = 0
            return
        self._failures += 1
        if self.breaker > 0 and self._failures >= self.breaker:
            self._server_down(problem)

    def _server_down(self, problem: _Transient) -> None:
        if self._halted is None:
            self._halt(f"SMTP {self.server.describe()}: {self._failures} failures in a row "
                       f"(last: {problem}); the server looks down or is throttling us")

    async def _guarded(self, conn: SmtpConnection | None) -> None:
        try:
            await self._work(conn)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # a bug must surface in the caller, not vanish with the task
            self._emit(error)

    async def _next(self) -> _InFlight | None:
        assert self._jobs is not None
        self._idle += 1
        try:
            item = await self._jobs.get()
        finally:
            self._idle -= 1
        return item if isinstance(item, _InFlight) else None

    async def _work(self, conn: SmtpConnection | None) -> None:
        """One connection: take a job, write its envelope (with the previous message's body when pipelining),
        read each reply in order, until told to stop."""
        carry: _InFlight | None = None      # envelope accepted (354): its body goes out in the next write
        try:
            while True:
                if carry is None:
                    item = await self._next()
                    if item is None:
                        return
                elif conn is not None and conn.pipelining and self.depth > 1 and not self._stopping:
                    item = self._take_nowait()
                else:
                    item = None
                if item is not None and self._halted is not None:
                    self._pending(item, self._halted)
                    item = None
                if item is None and carry is None:
                    continue
                if item is not None and not item.data:
                    if self.build_data is not None:
                        item.data, item.message_id = self.build_data(item.job)
                    else:
                        item.data, item.message_id = self.build(item.job)
                        item.data = dot_stuffed(item.data)
                if conn is None:
                    assert carry is None and item is not None
                    try:
                        conn = await self._reconnect()
                    except _Transient as problem:
                        item.attempt += 1
                        self._problem(item, problem)
                        continue
                envelope = b""
                if item is not None:
                    try:
                        envelope = self._envelope(conn, item)
                    except _Permanent as refusal:
                        item.attempt += 1
                        self._refused(item, refusal)
                        item = None
                if carry is None and item is None:
                    continue
                body_of, carry = carry, None     # the job whose body is in this write
                written: list[_InFlight] = []    # unanswered: lost with the connection if it goes
                live = conn
                try:
                    alive = True
                    if body_of is not None:
                        written.append(body_of)
                        payload = body_of.data
                        if item is not None and conn.pipelining:
                            item.attempt += 1
                            written.append(item)
                            payload += envelope
                        await conn.send(payload)
                        reply = await conn.read_reply()
                        written.remove(body_of)
                        alive = self._final(body_of, reply)
                    if item is not None and alive:
                        if item not in written:
                            item.attempt += 1
                            written.append(item)
                            if conn.pipelining:
                                await conn.send(envelope)
                        status = await self._envelope_replies(conn, item, envelope)
                        written.remove(item)
                        if status == "ready":
                            carry = item
                        alive = status != "closed"
                    elif item is not None:       # written along with a body the server answered with 421
                        written.remove(item)
                        self._problem(item, _Transient(421, "the server closed the connection",
                                                       lost_connection=True))
                    if not alive:
                        conn.close()
                        conn = None
                except ConnectionLost as error:
                    live.close()
                    conn = None
                    for lost in written:
                        after = lost is body_of
                        stage = "DATA" if after else "MAIL FROM"
                        self._problem(lost, _Transient(None, f"connection lost during {stage}: {error}",
                                                       lost_connection=True, after_data=after))
        finally:
            if conn is not None:
                await conn.quit()

    def _envelope(self, conn: SmtpConnection, item: _InFlight) -> bytes:
        """MAIL FROM, RCPT TO and DATA for one job, as one write (the options the server takes)."""
        job = item.job
        options = ""
        if not (job.sender + job.recipient).isascii():
            if not conn.offers("smtputf8"):
                raise _Permanent(553, "the server does not accept internationalized addresses (no SMTPUTF8) "
                                      "(at MAIL FROM)", bounced=False)
            options += " SMTPUTF8"
        if conn.esmtp and conn.offers("size"):
            options += f" SIZE={len(item.data)}"
        return (f"MAIL FROM:<{job.sender}>{options}\r\nRCPT TO:<{job.recipient}>\r\nDATA\r\n").encode("utf-8")

    async def _envelope_replies(self, conn: SmtpConnection, item: _InFlight, envelope: bytes) -> str:
        """The three replies, in order (one command at a time without PIPELINING): "ready" on 354; else the
        job's outcome is handled and the connection reset ("reset") or found closing ("closed")."""
        pipelining = conn.pipelining
        commands = envelope.split(b"\r\n")[:3] if not pipelining else _NO_COMMANDS
        failure: tuple[int, str, str] | None = None
        ready = False
        for stage, command in zip(_STAGES, commands):
            if not pipelining:
                if failure is not None:
                    break
                await conn.send(command + b"\r\n")
            reply = await conn.read_reply()
            if stage == "DATA" and reply.code == 354:
                ready = failure is None
                if failure is not None:
                    # A server that said 354 after refusing MAIL or RCPT: an empty message, which it refuses.
                    await conn.send(b".\r\n")
                    await conn.read_reply()
            elif not reply.ok() and failure is None:
                failure = (reply.code, reply.text, stage)
        if ready:
            return "ready"
        assert failure is not None
        code, text, stage = failure
        self._resolve(item, _classify(code, text, stage, item.job.recipient))
        if code == 421:      # the server is closing the connection
            return "closed"
        try:
            reset = await conn.command("RSET")    # leave the connection ready for the next recipient
        except ConnectionLost:
            return "closed"
        return "reset" if reset.ok() else "closed"

    def _final(self, item: _InFlight, reply: Reply) -> bool:
        """The reply to a message's final dot: sent, or refused as a whole. False when the server is closing."""
        if reply.ok():
            self._count(None)
            self._emit(SendOutcome(item.job, "sent", message_id=item.message_id,
                                   possible_duplicate=item.possible_duplicate, attempts=item.attempt))
            return True
        self._resolve(item, _classify(reply.code, reply.text, "DATA", item.job.recipient))
        return reply.code != 421

    def _resolve(self, item: _InFlight, problem: Exception) -> None:
        if isinstance(problem, _Permanent):
            self._refused(item, problem)
        elif isinstance(problem, _SenderRefused):
            self._halt(f"SMTP {self.server.describe()} refused the sender: {problem}")
            self._pending(item, self._halted or str(problem), problem.code)
        else:
            assert isinstance(problem, _Transient)
            self._problem(item, problem)

    def _refused(self, item: _InFlight, refusal: _Permanent) -> None:
        self._count(None)   # the server is up and answering: not a failure in a row
        self._emit(SendOutcome(item.job, "failed", message_id=item.message_id or None, error=str(refusal),
                               code=refusal.code, permanent=True, bounced=refusal.bounced,
                               possible_duplicate=item.possible_duplicate, attempts=item.attempt))

    def _problem(self, item: _InFlight, problem: _Transient) -> None:
        """A 4xx or a lost connection: the job is tried again after the backoff, unless the sender halted."""
        item.possible_duplicate = item.possible_duplicate or problem.after_data
        self._count(problem)
        if self._halted is not None:   # halted (here or on another connection): left for a later run
            self._pending(item, self._halted, problem.code)
            return
        if item.attempt > self.retry.retries and problem.unreachable and self.breaker > 0:
            # Out of retries because the server cannot be reached: not this reader's fault. The sender halts
            # (even when a success on a connection still open kept the count of failures in a row below the
            # breaker) and the job is left pending for a later run, like every other job not yet sent.
            self._server_down(problem)
            self._pending(item, self._halted or str(problem), problem.code)
            return
        if item.attempt > self.retry.retries or self._stopping:
            self._emit(SendOutcome(item.job, "failed", message_id=item.message_id or None, error=str(problem),
                                   code=problem.code, permanent=False, possible_duplicate=item.possible_duplicate,
                                   attempts=item.attempt))
            return
        task = asyncio.get_running_loop().create_task(self._again(item, problem, self.retry.delay(item.attempt)))
        self._backoffs[task] = item
        task.add_done_callback(lambda done: self._backoffs.pop(done, None))

    async def _again(self, item: _InFlight, problem: _Transient, delay: float) -> None:
        """Wait out the backoff (cancelled by a halt or the end of the session), then queue the job again."""
        if self.sleep is time.sleep:
            await asyncio.sleep(delay)                # cancellable: an interrupted run stops at once
        else:
            await asyncio.to_thread(self.sleep, delay)
        current = asyncio.current_task()
        if current is not None:
            self._backoffs.pop(current, None)
        if self._halted is not None:   # halted while this one waited: not tried again
            self._pending(item, self._halted, problem.code)
            return
        if not self._stopping:
            self._enqueue(item)

    async def _reconnect(self) -> SmtpConnection:
        try:
            return await self._open()
        except SmtpReplyError as error:
            raise _Transient(None, f"cannot reconnect to {self.server.describe()}: {error.code} {error.text}",
                             lost_connection=True, unreachable=True) from None
        except (ConnectionLost, OSError) as error:
            raise _Transient(None, f"cannot reconnect to {self.server.describe()}: {error}",
                             lost_connection=True, unreachable=True) from None


def _classify(code: int, text: str, stage: str, recipient: str) -> Exception:
    """What a refused reply means for this job: `_SenderRefused`, `_Transient` or `_Permanent`."""
    message = f"{code} {' '.join(text.split())} (at {stage})"
    if sender_level(code, text, stage, recipient):
        return _SenderRefused(code, message)
    if code == 421:     # the server is closing the connection
        return _Transient(code, message, lost_connection=True)
    if 400 <= code < 500:
        return _Transient(code, message)
    return _Permanent(code, message, bounced=stage == "RCPT TO" and code in BOUNCE_CODES)


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
