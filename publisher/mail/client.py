"""A small asyncio SMTP client: greeting, EHLO, STARTTLS or implicit TLS, AUTH PLAIN/LOGIN, and raw pipelined writes.

aiosmtplib cannot pipeline (RFC 2920: it waits for each reply before the next command), which is most of the
time a message takes on a link with latency; this client only connects, logs in and reads replies, and the
sender (``publisher.mail.smtp``) writes MAIL FROM, RCPT TO and DATA in one go and checks each reply in order.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
from dataclasses import dataclass
from typing import cast


class SmtpReplyError(Exception):
    """A reply that ends the setting up of a connection (greeting, EHLO, STARTTLS, AUTH)."""

    def __init__(self, code: int, text: str, stage: str) -> None:
        super().__init__(f"{code} {text} (at {stage})")
        self.code = code
        self.text = text
        self.stage = stage


class ConnectionLost(Exception):
    """The server closed the connection, or did not answer within the timeout."""


@dataclass
class Reply:
    code: int
    text: str

    def ok(self) -> bool:
        return 200 <= self.code < 300


# The longest reply line read (as asyncio's stream limit was): a server sending more is not speaking SMTP.
LINE_LIMIT = 1 << 16
_TIMED_OUT = "no reply: TimeoutError"


# What one read of the socket may take. A buffered protocol reads into this buffer, kept for the connection: a
# plain Protocol gets a new bytes object per read, which asyncio allocates at 256 KiB (above malloc's mmap
# threshold: a mmap and a munmap for every reply, ~16 us each, most of the loop's reading). 16 KiB holds
# hundreds of replies (a longer line is read in several), and 50 connections keep 0.8 MB of them.
READ_BUFFER = 1 << 14


class _SmtpProtocol(asyncio.BufferedProtocol):
    """The bytes of one connection as SMTP replies: each chunk the socket gives is split into lines and whole
    replies at once (bytes.split runs in C), where a StreamReader made a coroutine, a future and a timeout per
    line. The replies wait in order for `SmtpConnection.read_reply`."""

    def __init__(self) -> None:
        self.buffer = memoryview(bytearray(READ_BUFFER))
        self.transport: asyncio.Transport | None = None
        self.partial = b""                                # the start of a line not yet ended
        self.lines: list[str] = []                        # the lines so far of a reply of several
        self.replies: collections.deque[Reply | ConnectionLost] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None   # read_reply waiting for the next reply
        self.drained: asyncio.Future[None] | None = None  # send waiting for the write buffer to empty
        self.gone: str | None = None                      # why the connection ended (after its replies)
        self.broken = False                               # a line that is not SMTP: nothing after it is read
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # a socket's transport (uvloop's is not a subclass)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        if self.partial:
            data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        for raw in complete:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            try:
                code = int(text[:3])
            except ValueError:
                self.replies.append(ConnectionLost(f"not an SMTP reply: {text[:80]!r}"))
                self.broken = True
                break
            self.lines.append(text[4:])
            if text[3:4] != "-":
                self.replies.append(Reply(code, "\n".join(self.lines)))
                self.lines = []
        if len(self.partial) > LINE_LIMIT and not self.broken:
            self.replies.append(ConnectionLost("no reply: a reply line longer than 65,536 bytes"))
            self.broken = True
        if self.replies:
            self._wake()

    def eof_received(self) -> bool | None:
        self._end(None)
        return None          # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _end(self, exc: Exception | None) -> None:
        if self.gone is None:
            self.gone = f"no reply: {exc}" if exc is not None else "the server closed the connection"
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class SmtpConnection:
    """One open SMTP connection: its transport and replies, and what the server offers in its EHLO reply.

    Each wait for a reply has ``timeout`` seconds. One timer per connection checks the deadline of the wait in
    progress and is moved on only when it fires (about once per ``timeout`` on a busy connection), not made
    and cancelled for every reply."""

    def __init__(self, protocol: _SmtpProtocol, timeout: float) -> None:
        assert protocol.transport is not None
        self.protocol = protocol
        self.transport: asyncio.Transport = protocol.transport
        self.timeout = timeout
        self.extensions: dict[str, str] = {}
        self.esmtp = True
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def offers(self, name: str) -> bool:
        return name.lower() in self.extensions

    @property
    def pipelining(self) -> bool:
        return "pipelining" in self.extensions

    async def read_reply(self) -> Reply:
        """The next reply, of one line or several ("250-..." up to "250 ...")."""
        protocol = self.protocol
        while not protocol.replies:
            if protocol.gone is not None:
                raise ConnectionLost(protocol.gone)
            waiter = protocol.waiter = self._loop.create_future()
            self._deadline = deadline = self._loop.time() + self.timeout
            if self._timer is None or self._timer.when() > deadline:    # later: the timeout was shortened
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self._loop.call_at(deadline, self._check_deadline)
            await waiter
        reply = protocol.replies.popleft()
        if isinstance(reply, ConnectionLost):
            protocol.replies.appendleft(reply)      # the connection stays unreadable
            raise ConnectionLost(str(reply))
        return reply

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self.protocol.waiter
        if waiter is None or waiter.done():
            return              # nothing waiting: the next wait sets a timer again
        if self._loop.time() >= self._deadline:
            self.protocol.waiter = None
            waiter.set_exception(ConnectionLost(_TIMED_OUT))
        else:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)

    async def send(self, data: bytes) -> None:
        protocol = self.protocol
        try:
            self.transport.write(data)      # on a lost connection, nothing: the next read says why
        except (OSError, RuntimeError) as error:
            raise ConnectionLost(f"cannot write: {error or type(error).__name__}") from None
        if protocol.paused:       # the buffer is over the transport's high-water mark: wait for it to empty
            drained = protocol.drained = self._loop.create_future()
            try:
                await asyncio.wait_for(drained, self.timeout)
            except TimeoutError:
                raise ConnectionLost("cannot write: TimeoutError") from None
            if protocol.gone is not None:
                raise ConnectionLost(f"cannot write: {protocol.gone}")

    async def command(self, line: str) -> Reply:
        """One command, and its reply."""
        await self.send(line.encode("utf-8") + b"\r\n")
        return await self.read_reply()

    async def ehlo(self, name: str) -> None:
        reply = await self.command(f"EHLO {name}")
        if reply.code != 250:
            # An old server without ESMTP: HELO, and no extensions.
            reply = await self.command(f"HELO {name}")
            if reply.code != 250:
                raise SmtpReplyError(reply.code, reply.text, "HELO")
            self.extensions, self.esmtp = {}, False
            return
        self.extensions = {}
        for line in reply.text.split("\n")[1:]:
            keyword, _, params = line.strip().partition(" ")
            self.extensions[keyword.lower()] = params
        self.esmtp = True

    async def starttls(self, context: ssl.SSLContext, host: str) -> None:
        if not self.offers("starttls"):
            raise SmtpReplyError(502, "the server does not offer STARTTLS", "STARTTLS")
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise SmtpReplyError(reply.code, reply.text, "STARTTLS")
        # Whatever arrived in clear after the 220 is not believed (RFC 3207 section 4.2: STARTTLS injection).
        self.protocol.partial, self.protocol.lines = b"", []
        self.protocol.replies.clear()
        transport = await asyncio.wait_for(
            self._loop.start_tls(self.transport, self.protocol, context, server_hostname=host), self.timeout)
        if transport is None:
            raise ConnectionLost("the connection closed during the TLS handshake")
        self.transport = self.protocol.transport = transport

    async def login(self, username: str, password: str) -> None:
        """AUTH PLAIN, else AUTH LOGIN (whichever the server offers; PLAIN when it names neither)."""
        mechanisms = self.extensions.get("auth", "").upper().split()
        if "PLAIN" in mechanisms or "LOGIN" not in mechanisms:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
            reply = await self.command(f"AUTH PLAIN {token}")
        else:
            reply = await self.command("AUTH LOGIN")
            if reply.code == 334:
                reply = await self.command(base64.b64encode(username.encode()).decode("ascii"))
            if reply.code == 334:
                reply = await self.command(base64.b64encode(password.encode()).decode("ascii"))
        if reply.code != 235:
            raise SmtpReplyError(reply.code, reply.text, "AUTH")

    async def quit(self) -> None:
        try:
            self.transport.write(b"QUIT\r\n")
            await asyncio.wait_for(self.read_reply(), min(self.timeout, 5.0))
        except (ConnectionLost, OSError, RuntimeError, asyncio.TimeoutError):
            pass
        self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.transport.close()
        except (OSError, RuntimeError):
            pass


async def open_connection(host: str, port: int, *, security: str, timeout: float, local_hostname: str,
                          username: str | None, password: str | None,
                          context: ssl.SSLContext | None = None) -> SmtpConnection:
    """An open, greeted and (when ``username`` is given) logged-in connection; `SmtpReplyError`, `ConnectionLost`
    or an OSError (ssl errors included) when that fails. ``context``: the TLS settings (made once per sender:
    loading the trusted certificates takes ~50 ms), ``ssl.create_default_context()`` when not given."""
    if context is None and security != "none":
        context = ssl.create_default_context()
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(_SmtpProtocol, host, port, ssl=context if security == "ssl" else None,
                                   server_hostname=host if security == "ssl" else None),
            timeout)
    except asyncio.TimeoutError:
        raise ConnectionLost(f"no answer within {timeout:g} s") from None
    conn = SmtpConnection(protocol, timeout)
    try:
        greeting = await conn.read_reply()
        if greeting.code != 220:
            raise SmtpReplyError(greeting.code, greeting.text, "the greeting")
        await conn.ehlo(local_hostname)
        if security == "starttls":
            assert context is not None
            await conn.starttls(context, host)
            await conn.ehlo(local_hostname)
        if username:
            await conn.login(username, password or "")
    except BaseException:
        conn.close()
        raise
    return conn


def dot_stuffed(data: bytes) -> bytes:
    """``data`` as the DATA body: a leading dot doubled on every line (RFC 5321 4.5.2), ending in CRLF, then the
    final ".". bytes.replace runs in C: a few microseconds for a 12 KB bulletin, where smtplib's regex took ~60."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


__all__ = ["ConnectionLost", "Reply", "SmtpConnection", "SmtpReplyError", "dot_stuffed", "open_connection"]
