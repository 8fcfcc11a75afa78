"""Issue 11 regressions for the email channel: headers, Message-IDs, sender-level refusals, the circuit breaker
and AUTH over plain text, each against a real aiosmtpd server on this machine."""

from __future__ import annotations

import email
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from typing import Any

import pytest

from publisher.delivery import DeliveryKey
from publisher.site import Site
from tests.email.conftest import (PasswordCheck, RecordingHandler, SmtpServer, free_port, publish, set_settings,
                                 story_for)

SLUG = "2024-unpsf-incheon"


def add_readers(site: Site, count: int, lang: str = "en") -> list[str]:
    subscribers = site.subscribers()
    with site.store().transaction():
        for i in range(count):
            subscribers.add(f"reader{i:02d}@example.org", lang=lang)
    return [f"reader{i:02d}@example.org" for i in range(count)]


def copies(server: SmtpServer, address: str) -> list[Any]:
    """Every message ``address`` received, parsed, in the order they arrived."""
    with server.handler.lock:
        return [email.message_from_bytes(data, policy=policy.default)
                for rcpts, data in server.handler.messages if address in [r.lower() for r in rcpts]]


def raw_headers(server: SmtpServer) -> list[bytes]:
    with server.handler.lock:
        return [data.split(b"\r\n\r\n", 1)[0] for _, data in server.handler.messages]


# --- item 12: a re-sent possible duplicate carries the first copy's Message-ID ---------------------------------


def test_a_copy_resent_after_a_kill_has_the_same_message_id_as_the_first(smtp_site: Site,
                                                                          smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, 2)
    story = story_for(smtp_site, SLUG)
    publish(smtp_site, story, ["en"])
    key = DeliveryKey(SLUG, "en", "email", "reader00@example.org")
    # A kill -9 after the server's 250 and before the mark leaves the row in flight: the next run re-sends it.
    smtp_site.ledger().begin(key)

    reports = publish(smtp_site, story, ["en"])

    first, second = copies(smtp_server, "reader00@example.org")
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].endswith("@unpog.example>")
    row = smtp_site.ledger().get(key)
    assert row.detail["possible_duplicate"] is True and row.remote_id == first["Message-ID"]
    assert reports[0].note == "1 re-sent after an interruption (possible duplicates), 1 already sent"
    # Two deliveries never share one: each recipient's Message-ID is their own.
    other = copies(smtp_server, "reader01@example.org")[0]
    assert other["Message-ID"] != first["Message-ID"]


def test_a_forced_resend_is_a_new_message_with_a_new_message_id(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, 1)
    story = story_for(smtp_site, SLUG)
    publish(smtp_site, story, ["en"])
    publish(smtp_site, story, ["en"], force=True)
    publish(smtp_site, story, ["en"], force=True)

    sent = copies(smtp_server, "reader00@example.org")
    assert len({message["Message-ID"] for message in sent}) == 3


# --- item 5: control and bidi characters never reach a header -------------------------------------------------

UNSAFE = ["\x00", "\x01", "\x7f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
          "\u2069"]


def test_control_and_bidi_characters_in_a_title_never_reach_a_header(smtp_site: Site, smtp_server: SmtpServer,
                                                                    write_article: Any) -> None:
    site = smtp_site   # a site title with such characters is refused as a setting (tests/test_config.py)
    add_readers(site, 1)
    write_article("2024-bidi", "en", title="Evil\x00 \x01title\x7f \u202egnp.exe\u2066 x\u2069",
                  date="2024-06-01", summary="A summary.")
    story = story_for(site, "2024-bidi")

    publish(site, story, ["en"])

    (message,) = copies(smtp_server, "reader00@example.org")
    assert message["Subject"] == "Evil title gnp.exe x"
    assert message["List-Id"].startswith(f"{site.title('en')} <bulletin.")
    for header in raw_headers(smtp_server):
        decoded = str(email.message_from_bytes(header + b"\r\n\r\n", policy=policy.default)["Subject"])
        for char in UNSAFE:
            assert char.encode("utf-8") not in header
            assert char not in decoded
    site.close()


def test_a_site_title_with_bidi_characters_never_reaches_a_header(site: Site) -> None:
    """Refused as a setting before any mail is built; the reader's name and the subject are cleaned."""
    from publisher.errors import ConfigError
    from publisher.mail.message import MessageBuilder, Reader

    with pytest.raises(ConfigError, match="SITE_TITLE_EN"):
        MessageBuilder(set_settings(site, SITE_TITLE_EN="News\\u202d Desk"))
    wired = set_settings(site, SITE_TITLE_EN="News Desk")
    builder = MessageBuilder(wired)
    message = builder.compose(Reader("a@example.org", "Kim\u202e Lee"), subject="Hello\u2067 there\x00",
                              text="t", html="<p>t</p>", lang="en")
    data = builder.serialize(message).decode("utf-8")
    parsed = email.message_from_string(data, policy=policy.default)
    assert parsed["Subject"] == "Hello there"
    assert parsed["From"].addresses[0].display_name == "News Desk"
    assert parsed["To"].addresses[0].display_name == "Kim Lee"
    assert not any(char in data for char in UNSAFE)
    wired.close()


# --- item 3: a refusal of the sender stops the run; the rest waits for a later run ----------------------------


class QuotaHandler(RecordingHandler):
    """Accepts ``allowed`` messages, then answers MAIL FROM as Gmail does once the daily quota is spent."""

    def __init__(self, allowed: int, reply: str = "550 5.4.5 Daily user sending quota exceeded") -> None:
        super().__init__()
        self.allowed, self.reply, self.refused = allowed, reply, 0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            if len(self.messages) >= self.allowed:
                self.refused += 1
                return self.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@contextmanager
def serve(handler: RecordingHandler, pipelining: bool = False) -> Iterator[tuple[Any, int]]:
    from tests.email.conftest import controller as make_controller

    port = free_port()
    controller = make_controller(handler, pipelining=pipelining, port=port)
    controller.start()
    try:
        yield controller, port
    finally:
        try:
            controller.stop()
        except (AssertionError, RuntimeError):   # already stopped by the test
            pass


def states(site: Site) -> Counter[str]:
    return Counter(row[0] for row in site.store().connection.execute(
        "SELECT state FROM deliveries WHERE channel = 'email'"))


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-at-a-time", "pipelining"])
def test_a_sending_quota_at_mail_from_stops_the_run_and_a_later_run_resumes(site: Site, pipelining: bool) -> None:
    handler = QuotaHandler(allowed=4)
    with serve(handler, pipelining) as (_, port):
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_CONNECTIONS="3", BULLETIN_FROM="UNPOG News <news@unpog.example>")
        everyone = add_readers(wired, 12)
        story = story_for(wired, SLUG)

        reports = publish(wired, story, ["en"])

        assert [r.state for r in reports] == ["pending", "stopped"]
        stopped = reports[-1]
        assert stopped.note.startswith("SMTP 127.0.0.1:")
        assert "refused the sender: 550 5.4.5 Daily user sending quota exceeded (at MAIL FROM)" in stopped.note
        assert "left pending" in stopped.note and "\n" not in stopped.note
        # Nobody failed: the quota is not theirs. The handler counts its quota at MAIL FROM, so messages whose
        # MAIL FROM came in (on another connection, or pipelined) before the 4th message's end were accepted too.
        in_flight = 3 * (2 if pipelining else 1)                    # SMTP_CONNECTIONS=3, 2 each with PIPELINING
        found = states(wired)
        assert set(found) == {"sent", "pending"} and found["sent"] + found["pending"] == 12
        assert 4 <= found["sent"] <= 4 + in_flight - 1 and found["sent"] == len(handler.messages)
        assert handler.refused <= in_flight                         # at most the ones in flight were tried
        first = set(handler.received())

        handler.allowed = 100                                       # the quota was reset overnight
        again = publish(wired, story, ["en"])

        assert [r.state for r in again] == ["sent"]
        assert again[0].note == f"{found['pending']} sent, {found['sent']} already sent"
        received = handler.received()
        assert set(received) == set(everyone) and set(received.values()) == {1}
        assert first < set(received)
        wired.close()


def test_a_quota_named_at_rcpt_stops_the_run_but_a_missing_mailbox_fails_only_its_recipient(site: Site) -> None:
    class Handler(RecordingHandler):
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address == "reader01@example.org":
                return "550 5.1.1 reader01@example.org: no such user here"
            if address == "reader03@example.org":
                return "452 4.3.1 Sender has exceeded the daily sending limit"
            return await super().handle_RCPT(server, session, envelope, address, options)

    handler = Handler()
    with serve(handler) as (_, port):
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_CONNECTIONS="1", BULLETIN_FROM="UNPOG News <news@unpog.example>")
        add_readers(wired, 6)
        reports = publish(wired, story_for(wired, SLUG), ["en"])

        ledger = wired.ledger()
        assert ledger.get(DeliveryKey(SLUG, "en", "email", "reader01@example.org")).state == "failed"
        assert ledger.get(DeliveryKey(SLUG, "en", "email", "reader03@example.org")).state == "pending"
        assert states(wired) == {"sent": 2, "failed": 1, "pending": 3}
        assert reports[-1].state == "stopped" and "exceeded the daily sending limit" in reports[-1].note
        wired.close()


def test_which_replies_refuse_the_sender() -> None:
    from publisher.mail.smtp import sender_level

    rcpt = "reader@example.org"
    assert sender_level(550, "5.4.5 Daily user sending quota exceeded", "MAIL FROM", rcpt)
    assert sender_level(553, "5.7.1 Sender address rejected: not owned by user", "MAIL FROM", rcpt)
    assert sender_level(451, "4.7.0 Sending rate limit exceeded", "DATA", rcpt)
    assert sender_level(550, "5.7.1 Message rejected due to content policy", "DATA", rcpt)
    assert sender_level(550, "5.1.7 Bad sender address", "RCPT TO", rcpt)
    assert not sender_level(550, "5.1.1 reader@example.org: no such user here", "RCPT TO", rcpt)
    assert not sender_level(452, "4.2.2 The email account that you tried to reach is over quota", "RCPT TO", rcpt)
    assert not sender_level(554, "5.7.1 rejected by policy", "RCPT TO", rcpt)     # that recipient's domain
    assert not sender_level(451, "4.7.1 Greylisted, try again later", "DATA", rcpt)
    assert not sender_level(451, "4.3.0 Temporary server error", "MAIL FROM", rcpt)


def test_bulletin_and_publish_exit_1_with_the_stopped_line(site: Site, cli: Any) -> None:
    handler = QuotaHandler(allowed=1)
    with serve(handler) as (_, port):
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_CONNECTIONS="1", BULLETIN_FROM="UNPOG News <news@unpog.example>")
        add_readers(wired, 3)
        wired.close()

        result = cli("bulletin", "--since", "2024-01-01", env={"COLUMNS": "300"})
        assert result.exit_code == 1, result.output
        assert "550 5.4.5 Daily user sending quota exceeded (at MAIL FROM)" in result.output
        lines = [line for line in result.output.splitlines() if "the run stopped" in line]
        assert len(lines) == 1 and lines[0].startswith("email: SMTP 127.0.0.1:")

        handler.allowed = 1 + 2        # enough for the bulletin's two readers left, not for publish's three
        result = cli("bulletin", "--since", "2024-01-01", env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        result = cli("publish", *[str(p) for p in sorted((site.root / "content").glob(f"{SLUG}.*.md"))],
                     "--channel", "email", env={"COLUMNS": "300"})
        assert result.exit_code == 1, result.output
        assert "stopped" in result.output


# --- item 4: the circuit breaker -------------------------------------------------------------------------------


class StopsAfter(RecordingHandler):
    """Accepts ``count`` messages, then the server goes down (its controller stopped, every connection cut)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.controller: Any = None
        self.stopper: threading.Thread | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            if len(self.messages) >= self.count and self.stopper is None:
                self.stopper = threading.Thread(target=self.controller.stop)
                self.stopper.start()
        return reply


class Waits:
    """A fake ``sleep``: records what each SMTP worker thread would have waited, and returns at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_thread: Counter[str] = Counter()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.by_thread[threading.current_thread().name] += seconds

    def longest(self) -> float:
        return max(self.by_thread.values(), default=0.0)


def run_with_fake_sleep(site: Site, story: Any, sleep: Waits) -> list[Any]:
    """The email part of ``publish`` (pipeline.deliver's render, claim, send, mark) with the waits faked."""
    from dataclasses import replace

    from publisher import pipeline
    from publisher.channels.email import EmailChannel

    channel = EmailChannel(site)
    ctx = replace(pipeline.channel_context(site, pipeline.RunOptions()), sleep=sleep)
    results = pipeline.send_all(site, channel, channel.render(story, ["en"]), ctx)
    return channel.report(results, ctx) + pipeline._halted(channel, results)


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-at-a-time", "pipelining"])
def test_a_server_gone_down_mid_run_stops_the_run_within_a_minute_with_the_rest_pending(site: Site,
                                                                                        pipelining: bool) -> None:
    handler = StopsAfter(5)
    with serve(handler, pipelining) as (controller, port):
        handler.controller = controller
        # Default retry ladder (3 retries, 5 s doubling) and breaker (5): only the wiring is set, and 4
        # connections (the default 50 would have all 40 in flight at once, and "the rest" would be nobody).
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_CONNECTIONS="4", BULLETIN_FROM="UNPOG News <news@unpog.example>")
        add_readers(wired, 40)
        story = story_for(wired, SLUG)
        waits = Waits()

        reports = run_with_fake_sleep(wired, story, waits)

        assert handler.stopper is not None
        handler.stopper.join()
        assert waits.longest() < 60              # no worker would have waited a minute (it was 35 s per reader)
        assert reports[-1].state == "stopped"
        assert "failures in a row" in reports[-1].note and "the server looks down" in reports[-1].note
        found = states(wired)
        assert found.get("failed", 0) == 0 and found.get("in_flight", 0) == 0
        in_flight = 4 * (2 if pipelining else 1)
        assert found["pending"] >= 40 - 5 - in_flight    # at most the ones in flight were tried at all
        sent = {row[0] for row in wired.store().connection.execute(
            "SELECT target FROM deliveries WHERE state = 'sent'")}
        assert sent <= set(handler.received())

    # The server is back: the next run sends to everyone still waiting, and to nobody twice who was marked sent.
    back = RecordingHandler()
    from aiosmtpd.controller import Controller

    again = Controller(back, hostname="127.0.0.1", port=port)
    again.start()
    try:
        reports = run_with_fake_sleep(wired, story, Waits())
    finally:
        again.stop()
    assert [r.state for r in reports] == ["sent"]
    assert states(wired) == {"sent": 40}
    assert not set(back.received()) & sent
    wired.close()


def test_the_breaker_counts_4xx_answers_across_connections(smtp_site: Site, smtp_server: SmtpServer) -> None:
    everyone = add_readers(smtp_site, 30)
    smtp_server.handler.defer_data = {address: 100 for address in everyone}   # "451" to every DATA, for ever
    waits = Waits()

    reports = run_with_fake_sleep(smtp_site, story_for(smtp_site, SLUG), waits)

    assert reports[-1].state == "stopped"
    assert "451 4.7.1 Greylisted, try again later (at DATA)" in reports[-1].note
    in_flight = 3 * smtp_server.wire_per_connection             # SMTP_CONNECTIONS=3, 2 each with PIPELINING
    assert sum(smtp_server.handler.deferred.values()) < 5 + in_flight   # the breaker's 5, and what was in flight
    # One recipient may have run its whole ladder (4 tries) before the 5th failure in a row: failed, not for
    # good (a later run tries again); nobody else did.
    found = states(smtp_site)
    assert found.get("failed", 0) <= 1 and found["pending"] >= 29
    assert all(not row[0] for row in smtp_site.store().connection.execute(
        "SELECT json_extract(detail, '$.permanent') FROM deliveries WHERE state = 'failed'"))


def test_smtp_breaker_failures_0_turns_the_breaker_off(smtp_site: Site, smtp_server: SmtpServer) -> None:
    site = set_settings(smtp_site, SMTP_BREAKER_FAILURES="0", SMTP_CONNECTIONS="1", SMTP_RETRIES="1")
    everyone = add_readers(site, 8)
    smtp_server.handler.defer_data = {address: 100 for address in everyone}

    reports = run_with_fake_sleep(site, story_for(site, SLUG), Waits())

    assert [r.state for r in reports] == ["failed"]
    assert states(site) == {"failed": 8}
    site.close()


class GoesAwayAfterOne(RecordingHandler):
    """Serves the first session one message, then answers its next MAIL FROM with 421 (closing); every later
    session is refused at EHLO and HELO with 421: the server can no longer be reached."""

    def __init__(self) -> None:
        super().__init__()
        self.first: Any = None
        self.refused_sessions = 0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        with self.lock:
            if self.first is None:
                self.first = session
                session.host_name = hostname       # what aiosmtpd does itself when there is no hook
                return responses
            self.refused_sessions += 1
        return ["421 4.3.2 Service not available"]

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        return "421 4.3.2 Service not available"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            if self.messages:
                return "421 4.3.2 Shutting down"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-at-a-time", "pipelining"])
def test_a_reader_out_of_retries_because_the_server_is_unreachable_is_pending_not_failed(site: Site,
                                                                                         pipelining: bool) -> None:
    # The breaker set far away (as when a success on another connection resets the count of failures in a
    # row): the first reader whose retries run out on a refused connection stops the run, and nobody is marked
    # failed for a server that went away (CI once saw one reader "failed" that way).
    handler = GoesAwayAfterOne()
    with serve(handler, pipelining) as (_, port):
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_CONNECTIONS="1", SMTP_RETRIES="3", SMTP_BREAKER_FAILURES="100",
                             BULLETIN_FROM="UNPOG News <news@unpog.example>")
        add_readers(wired, 6)

        reports = run_with_fake_sleep(wired, story_for(wired, SLUG), Waits())

        assert reports[-1].state == "stopped"
        assert "cannot reconnect" in reports[-1].note and "the server looks down" in reports[-1].note
        found = states(wired)
        assert found == {"sent": 1, "pending": 5}
        assert handler.refused_sessions >= 3       # the reader's three retries each met a refused connection
        wired.close()


# --- item 13: no password in clear to a host other than this machine -------------------------------------------


class CountingPasswordCheck(PasswordCheck):
    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return super().__call__(*args)


def test_smtp_security_none_refuses_auth_to_a_host_that_is_not_loopback(site: Site, cli: Any) -> None:
    import warnings

    import pytest
    from aiosmtpd.controller import Controller

    from publisher.errors import ConfigError
    from publisher.mail.message import MessageBuilder, Reader
    from publisher.mail.send import send_message

    handler, check = RecordingHandler(), CountingPasswordCheck("news", "s3cret-pw")
    port = free_port()
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=check, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        # 0.0.0.0 reaches this machine's server on Linux, but is not a loopback address: the rule is the host's.
        wired = set_settings(site, SMTP_HOST="0.0.0.0", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_USERNAME="news", BULLETIN_FROM="UNPOG News <news@unpog.example>")
        (wired.root / ".env").write_text("SMTP_PASSWORD=s3cret-pw\n", encoding="utf-8")
        add_readers(wired, 2)
        with pytest.raises(ConfigError) as refused:
            publish(wired, story_for(wired, SLUG), ["en"])
        message = str(refused.value)
        assert message.startswith("SMTP_SECURITY: SMTP_SECURITY=none with SMTP_USERNAME set: the password would "
                                  "cross the network to 0.0.0.0 unencrypted")
        assert "\n" not in message and "s3cret-pw" not in message
        with pytest.raises(ConfigError):
            builder = MessageBuilder(wired)
            send_message(wired, builder.compose(Reader("a@example.org"), subject="s", text="t",
                                                html="<p>t</p>", lang="en"))
        assert check.calls == 0 and handler.messages == []
        assert states(wired).get("sent", 0) == 0

        result = cli("config", "check")
        warning = [line for line in result.output.splitlines() if line.startswith("Warning: SMTP_SECURITY=none")]
        assert len(warning) == 1 and "unencrypted" in warning[0]

        # To this machine by its loopback name the login is allowed (a local relay), and config check is quiet.
        loopback = set_settings(wired, SMTP_HOST="127.0.0.1")
        assert [r.state for r in publish(loopback, story_for(loopback, SLUG), ["en"])] == ["sent"]
        assert check.calls >= 1 and len(handler.messages) == 2
        assert "Warning: SMTP_SECURITY" not in cli("config", "check").output
        loopback.close()
    finally:
        controller.stop()


def test_loopback_hosts() -> None:
    from publisher.mail.smtp import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST."))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.0.2.2", "smtp.example.org", "localhost.example.org",
                                            "::ffff:127.0.0.1x"))
