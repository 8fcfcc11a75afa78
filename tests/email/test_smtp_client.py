"""The SMTP client's reply reading (publisher/mail/client.py) against a real socket server that writes replies in
the chunks a test chooses, and the sender's batched wake-up of the caller (SmtpSender.next_outcome) against aiosmtpd."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from publisher.mail.client import ConnectionLost, SmtpConnection, open_connection
from publisher.site import Site
from tests.email.conftest import SmtpServer


class ScriptedServer:
    """A TCP server on 127.0.0.1 that answers each line it reads with the next entry of ``script`` (bytes
    written as they are: a reply split over several writes, several replies in one, or nothing at all)."""

    def __init__(self, greeting: list[bytes], script: list[list[bytes]]) -> None:
        self.greeting, self.script = greeting, script
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for chunk in self.greeting:
            writer.write(chunk)
            await writer.drain()
        for answer in self.script:
            if not await reader.readline():
                return
            for chunk in answer:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0)     # each chunk its own write: the client sees them apart
        await reader.read()               # then silence until the client goes

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0),
                                                  self.loop).result()
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def cancel_all() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def run_client(server: ScriptedServer, body: Callable[[SmtpConnection], Any], timeout: float = 5.0) -> Any:
    async def main() -> Any:
        conn = await open_connection("127.0.0.1", server.port, security="none", timeout=timeout,
                                     local_hostname="client.example", username=None, password=None)
        try:
            return await body(conn)
        finally:
            conn.close()

    return asyncio.run(main())


EHLO = [b"250-sink.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"]


def test_replies_split_over_writes_and_several_in_one_write_are_read_in_order() -> None:
    script = [EHLO,
              [b"25", b"0 2.1.0 ok\r", b"\n250 2.1.5 ok\r\n354 go ahead\r\n"],    # split, then three in one
              [b"250-first line\r\n250-", b"second\r\n250 last\r\n"]]             # a reply of three lines
    with ScriptedServer([b"220 sink.example ESMTP\r\n"], script) as server:
        async def body(conn: SmtpConnection) -> Any:
            assert conn.pipelining and conn.offers("size") and conn.extensions["size"] == "1000"
            await conn.send(b"MAIL FROM:<a@example.org>\r\n")
            replies = [await conn.read_reply() for _ in range(3)]
            multi = await conn.command("NOOP")
            return replies, multi

        replies, multi = run_client(server, body)
    assert [(r.code, r.text) for r in replies] == [(250, "2.1.0 ok"), (250, "2.1.5 ok"), (354, "go ahead")]
    assert (multi.code, multi.text) == (250, "first line\nsecond\nlast")


def test_a_line_that_is_not_smtp_ends_the_connection_after_the_replies_before_it() -> None:
    with ScriptedServer([b"220 sink.example\r\n"], [EHLO, [b"250 ok\r\nHTTP/1.1 400 Bad Request\r\n"]]) as server:
        async def body(conn: SmtpConnection) -> Any:
            first = await conn.command("NOOP")
            with pytest.raises(ConnectionLost, match="not an SMTP reply: 'HTTP/1.1 400"):
                await conn.read_reply()
            with pytest.raises(ConnectionLost, match="not an SMTP reply"):   # and stays unreadable
                await conn.read_reply()
            return first

        assert run_client(server, body).code == 250


def test_a_server_that_closes_gives_its_last_replies_then_connection_lost() -> None:
    class Closing(ScriptedServer):
        async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 sink.example\r\n")
            await reader.readline()
            writer.write(b"250 sink.example\r\n")
            await reader.readline()
            writer.write(b"421 4.3.2 shutting down\r\n")
            writer.close()

    with Closing([], []) as server:
        async def body(conn: SmtpConnection) -> Any:
            reply = await conn.command("MAIL FROM:<a@example.org>")
            with pytest.raises(ConnectionLost, match="the server closed the connection"):
                await conn.read_reply()
            return reply

        assert run_client(server, body).code == 421


def test_a_server_that_says_nothing_times_out_with_one_line() -> None:
    with ScriptedServer([b"220 sink.example\r\n"], [EHLO, []]) as server:
        async def body(conn: SmtpConnection) -> float:
            conn.timeout = 0.05
            started = time.monotonic()
            for _ in range(2):       # each wait has its own deadline, on the connection's one timer
                with pytest.raises(ConnectionLost, match=r"^no reply: TimeoutError$"):
                    await conn.command("NOOP")
            return time.monotonic() - started

        assert run_client(server, body) < 5.0


# --- the sender wakes the caller once per batch of outcomes ------------------------------------------------


@pytest.fixture
def sender_of(smtp_site: Site) -> Iterator[Callable[..., Any]]:
    from publisher.mail.smtp import SmtpSender, smtp_server

    message = b"From: news@unpog.example\r\nTo: r@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"

    def make(**options: Any) -> SmtpSender:
        return SmtpSender(smtp_server(smtp_site.config), lambda job: (message, f"<{job.key}@unpog.example>"),
                          **options)

    yield make


def test_a_full_caller_is_woken_once_a_share_of_capacity_is_ready(sender_of: Callable[..., Any],
                                                                 smtp_server: SmtpServer) -> None:
    from publisher.mail.smtp import SendJob

    # 4 connections: capacity 4 (8 with PIPELINING); a share of 0.5 is 2 (4) outcomes per wake-up. The wait
    # for the batch is bounded by gather_seconds, set long here so that only the count can end it.
    with sender_of(connections=4, gather_share=0.5, gather_seconds=60.0) as sender:
        for i in range(sender.capacity):
            sender.submit(SendJob(f"k{i}", "news@unpog.example", f"reader{i}@example.org"))
        first = sender.next_outcome()
        batch = [first]
        while (more := sender.next_outcome(timeout=0)) is not None:
            batch.append(more)
        assert len(batch) >= sender.capacity // 2
        rest = sender.capacity - len(batch)
        started = time.monotonic()
        while rest:                    # fewer outstanding than a share: not waited for beyond them
            assert sender.next_outcome() is not None
            rest -= 1
            while rest and sender.next_outcome(timeout=0) is not None:
                rest -= 1
        assert time.monotonic() - started < 30.0
        assert sender.next_outcome(timeout=0) is None
    assert smtp_server.handler.received() == {f"reader{i}@example.org": 1 for i in range(sender.capacity)}


def test_a_server_that_stops_reading_makes_a_write_wait_then_time_out() -> None:
    """A write the socket cannot take waits for the transport's buffer to drain (pause_writing), within the
    timeout; a server that never reads again ends in one line, not a hang or an ever-growing buffer."""
    class Deaf(ScriptedServer):
        async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 sink.example\r\n")
            await reader.readline()
            writer.write(b"250 sink.example\r\n")
            await asyncio.sleep(3600)           # then reads nothing

    with Deaf([], []) as server:
        async def body(conn: SmtpConnection) -> bool:
            conn.timeout = 0.2
            chunk = b"x" * (1 << 20)
            with pytest.raises(ConnectionLost, match=r"^cannot write: TimeoutError$"):
                for _ in range(256):             # far more than the socket buffers hold
                    await conn.send(chunk)
            return conn.protocol.paused

        assert run_client(server, body) is True
