"""Fixtures for the email tests: a real aiosmtpd server on 127.0.0.1 recording what it accepted, and sites using it."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from publisher.site import Site
from tests.conftest import set_settings  # noqa: F401 - re-exported for this folder's tests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps every accepted message and can refuse on demand.

    refuse_rcpt: address -> reply for RCPT (e.g. "550 5.1.1 no such user").
    defer_data: address -> how many times DATA is answered "451 ..." before it is accepted.
    drop_data: address -> how many times the connection is cut after the whole message arrived, before the reply.
    delay: seconds each DATA takes (to kill a sender part-way).
    """

    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    defer_data: dict[str, int] = field(default_factory=dict)
    drop_data: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    deferred: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.lower() in self.refuse_rcpt:
            return self.refuse_rcpt[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                if self.deferred[rcpt.lower()] < self.defer_data.get(rcpt.lower(), 0):
                    self.deferred[rcpt.lower()] += 1
                    return "451 4.7.1 Greylisted, try again later"
                if self.dropped[rcpt.lower()] < self.drop_data.get(rcpt.lower(), 0):
                    # The message arrived but the reply never leaves: the sender cannot know the outcome.
                    self.dropped[rcpt.lower()] += 1
                    server.transport.close()
                    return "250 never seen by the client"
            self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content or b"")))
        return "250 2.0.0 OK queued"

    def received(self) -> Counter[str]:
        """Deliveries per recipient address (lower case)."""
        with self.lock:
            return Counter(rcpt.lower() for rcpts, _ in self.messages for rcpt in rcpts)

    def parsed(self) -> dict[str, EmailMessage]:
        """The last message each recipient got, parsed."""
        with self.lock:
            found = {}
            for rcpts, data in self.messages:
                for rcpt in rcpts:
                    found[rcpt.lower()] = email.message_from_bytes(data, policy=policy.default)
            return found


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    pipelining: bool = False

    @property
    def wire_per_connection(self) -> int:
        """Messages the sender keeps on one connection's wire to this server (SMTP_MESSAGES_PER_CONNECTION's
        default 2 with PIPELINING, else 1)."""
        return 2 if self.pipelining else 1

    @property
    def capacity_per_connection(self) -> int:
        """Recipients the sender holds in flight per connection to this server, so at most in doubt after a
        crash: those on the wire and one claimed ahead, waiting for the connection (SmtpSender.reserve)."""
        return self.wire_per_connection + 1


def pipelining_smtp_class() -> Any:
    """aiosmtpd's SMTP with PIPELINING (RFC 2920) in its EHLO reply. aiosmtpd already reads pipelined commands
    in order and answers each; it only does not say so."""
    from aiosmtpd.smtp import SMTP

    class PipeliningSMTP(SMTP):  # type: ignore[misc]
        async def smtp_EHLO(self, hostname: str) -> None:
            pushed = self.push

            async def push(status: str) -> None:
                if status == "250 HELP":      # the last line of aiosmtpd's EHLO reply
                    await pushed("250-PIPELINING")
                await pushed(status)

            self.push = push
            try:
                await super().smtp_EHLO(hostname)
            finally:
                del self.push

    return PipeliningSMTP


def controller(handler: Any, *, pipelining: bool = False, **options: Any) -> Any:
    """An aiosmtpd Controller on 127.0.0.1 (not started), offering PIPELINING when asked to."""
    from aiosmtpd.controller import Controller

    class PipeliningController(Controller):  # type: ignore[misc]
        def factory(self) -> Any:
            return pipelining_smtp_class()(self.handler, **self.SMTP_kwargs)

    kind = PipeliningController if pipelining else Controller
    return kind(handler, hostname="127.0.0.1", **options)


class PasswordCheck:
    """aiosmtpd authenticator accepting one user name and password."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        ok = (auth_data.login, auth_data.password) == (self.username, self.password)
        return AuthResult(success=ok, handled=False)


@pytest.fixture(params=[{}, {"pipelining": True}], ids=["one-at-a-time", "pipelining"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """A real aiosmtpd SMTP server on 127.0.0.1 (plain), recording every accepted message; every test using it
    runs against a server without PIPELINING and one offering it.

    Parametrize indirectly with {"auth": ("user", "password")} to require a login (over plain text, for tests),
    {"smtputf8": False} for a server that refuses internationalized addresses, {"pipelining": True} to offer
    PIPELINING.
    """
    handler = RecordingHandler()
    port = free_port()
    wanted = getattr(request, "param", {})
    options: dict[str, Any] = {"enable_SMTPUTF8": wanted.get("smtputf8", True)}
    auth = wanted.get("auth")
    if auth:
        options |= {"authenticator": PasswordCheck(*auth), "auth_required": True, "auth_require_tls": False}
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
    pipelining = bool(wanted.get("pipelining", False))
    server = controller(handler, pipelining=pipelining, port=port, **options)
    server.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, pipelining)
    finally:
        server.stop()


@pytest.fixture
def smtp_site(site: Site, smtp_server: SmtpServer) -> Iterator[Site]:
    """The sample site sending through the test server, retrying 4xx quickly."""
    wired = set_settings(site, SMTP_HOST=smtp_server.host, SMTP_PORT=smtp_server.port, SMTP_SECURITY="none",
                         SMTP_RETRY_DELAY="0.01", SMTP_CONNECTIONS="3",
                         BULLETIN_FROM="UNPOG News <news@unpog.example>",
                         PUBLISHER_SITE_URL="https://news.unpog.example")
    # A secret belongs in .env, never in publisher.toml.
    (wired.root / ".env").write_text("PUBLISHER_SECRET_KEY=test-secret-key-for-signed-links\n", encoding="utf-8")
    wired = Site(wired.root)
    yield wired
    wired.close()


def add_subscribers(site: Site, count: int) -> set[str]:
    """``count`` active readers, reader000@example.org on, one in three Korean (the rest English), in one
    transaction; their addresses."""
    subscribers = site.subscribers()
    with site.store().transaction():
        for i in range(count):
            subscribers.add(f"reader{i:03d}@example.org", lang="ko" if i % 3 == 0 else "en")
    return {f"reader{i:03d}@example.org" for i in range(count)}


def story_for(site: Site, slug: str) -> Any:
    from publisher.article import load_stories

    paths = sorted(site.content_dir.glob(f"{slug}.*.md"))
    return load_stories(paths, site)[0]


def publish(site: Site, story: Any, langs: Any = None, *, channel: Any = None, **options: Any) -> Any:
    """Publish ``story`` by email through the pipeline (as ``publisher publish --channel email`` does)."""
    from publisher import pipeline
    from publisher.channels.email import EmailChannel

    channel = channel if channel is not None else EmailChannel(site)
    return pipeline.deliver(site, channel, [(story, list(langs or story.languages))],
                            pipeline.RunOptions(**options))
