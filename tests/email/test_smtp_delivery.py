"""Delivery through a real aiosmtpd server on 127.0.0.1: routing, exclusions, 4xx/5xx replies, the ledger rule."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from publisher.channels.email import EmailChannel
from publisher.errors import ChannelError
from publisher.delivery import DeliveryKey
from publisher.mail.send import send_message
from publisher.site import Site
from tests.email.conftest import (RecordingHandler, SmtpServer, controller, free_port, publish, set_settings,
                                  story_for)


def add_readers(site: Site, english: int = 3, korean: int = 2) -> None:
    subscribers = site.subscribers()
    for i in range(english):
        subscribers.add(f"reader{i}@example.org", name=f"Reader {i}", lang="en")
    for i in range(korean):
        subscribers.add(f"kim{i}@example.kr", name=f"김독자{i}", lang="ko")


def test_each_subscriber_gets_the_bulletin_in_their_language_once(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site)
    story = story_for(smtp_site, "2024-unpsf-incheon")
    channel = EmailChannel(smtp_site)
    assert channel.is_configured()

    reports = publish(smtp_site, story, channel=channel)

    assert {(r.lang, r.state, r.note) for r in reports} == {("en", "sent", "3 sent"), ("ko", "sent", "2 sent")}
    assert smtp_server.handler.received() == {
        "reader0@example.org": 1, "reader1@example.org": 1, "reader2@example.org": 1,
        "kim0@example.kr": 1, "kim1@example.kr": 1,
    }
    messages = smtp_server.handler.parsed()
    assert messages["kim0@example.kr"]["Content-Language"] == "ko"
    assert messages["kim0@example.kr"]["Subject"].startswith("세계 공공행정의 역량 강화")
    assert messages["kim0@example.kr"]["To"].addresses[0].display_name == "김독자0"
    assert messages["reader0@example.org"]["Subject"].startswith("Empowering Global Public Administration")
    # Each message carries its own recipient's unsubscribe link.
    assert messages["reader0@example.org"]["List-Unsubscribe"] != messages["reader1@example.org"]["List-Unsubscribe"]

    ledger = smtp_site.ledger()
    row = ledger.get(DeliveryKey("2024-unpsf-incheon", "ko", "email", "kim0@example.kr"))
    assert row.state == "sent" and row.remote_id == messages["kim0@example.kr"]["Message-ID"]

    # Running again sends nothing: every row is sent.
    again = publish(smtp_site, story, channel=channel)
    assert {r.note for r in again} == {"3 already sent", "2 already sent"}
    assert sum(smtp_server.handler.received().values()) == 5


def test_unsubscribed_bounced_and_pending_addresses_get_nothing(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site)
    subscribers = smtp_site.subscribers()
    subscribers.unsubscribe("reader0@example.org")
    subscribers.mark_bounced("kim0@example.kr")
    subscribers.add("waiting@example.org", status="pending")
    story = story_for(smtp_site, "2024-unpsf-incheon")

    publish(smtp_site, story)

    assert set(smtp_server.handler.received()) == {"reader1@example.org", "reader2@example.org", "kim1@example.kr"}


def test_missing_language_is_skipped_with_the_reason_in_the_ledger(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=1, korean=1)
    story = story_for(smtp_site, "2024-sdg16-knowledge-forum")      # English only
    assert story.languages == ["en"]

    reports = publish(smtp_site, story)

    assert set(smtp_server.handler.received()) == {"reader0@example.org"}
    assert {(r.lang, r.state) for r in reports} == {("en", "sent"), ("ko", "skipped")}
    row = smtp_site.ledger().get(DeliveryKey("2024-sdg16-knowledge-forum", "ko", "email", "kim0@example.kr"))
    assert row.state == "skipped" and row.last_error == "no ko version (BULLETIN_FALLBACK=skip)"


def test_fallback_original_sends_the_original_language(smtp_site: Site, smtp_server: SmtpServer) -> None:
    site = set_settings(smtp_site, BULLETIN_FALLBACK="original")
    add_readers(site, english=1, korean=1)
    story = story_for(site, "2024-sdg16-knowledge-forum")

    reports = publish(site, story)

    assert smtp_server.handler.received() == {"reader0@example.org": 1, "kim0@example.kr": 1}
    assert smtp_server.handler.parsed()["kim0@example.kr"]["Content-Language"] == "en"
    assert {(r.lang, r.state) for r in reports} == {("en", "sent"), ("ko", "sent")}
    site.close()


def test_451_is_retried_and_550_fails_only_that_recipient(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=4, korean=1)
    handler = smtp_server.handler
    handler.defer_data = {"reader1@example.org": 2, "kim0@example.kr": 1}   # greylisting: accepted on retry
    handler.refuse_rcpt = {"reader2@example.org": "550 5.1.1 reader2@example.org: no such user here"}
    story = story_for(smtp_site, "2024-unpsf-incheon")

    reports = publish(smtp_site, story)

    assert handler.received() == {"reader0@example.org": 1, "reader1@example.org": 1, "reader3@example.org": 1,
                                  "kim0@example.kr": 1}
    assert handler.deferred == {"reader1@example.org": 2, "kim0@example.kr": 1}
    ledger = smtp_site.ledger()
    failed = ledger.get(DeliveryKey("2024-unpsf-incheon", "en", "email", "reader2@example.org"))
    assert failed.state == "failed"
    assert failed.last_error == "550 5.1.1 reader2@example.org: no such user here (at RCPT TO)"
    assert failed.detail["permanent"] is True
    assert smtp_site.subscribers().get("reader2@example.org").status == "bounced"
    retried = ledger.get(DeliveryKey("2024-unpsf-incheon", "en", "email", "reader1@example.org"))
    assert retried.state == "sent" and retried.detail["attempts"] == 3
    english = next(r for r in reports if r.lang == "en")
    assert english.state == "failed"
    assert english.note.startswith("3 sent, 1 bounced (address marked bounced); 550 5.1.1")


def test_a_4xx_that_never_clears_fails_for_now_and_the_next_run_retries(smtp_site: Site,
                                                                       smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=2, korean=0)
    handler = smtp_server.handler
    handler.defer_data = {"reader0@example.org": 4}     # more than SMTP_RETRIES (3) + 1 tries
    story = story_for(smtp_site, "2024-unpsf-incheon")
    channel = EmailChannel(smtp_site)

    first = publish(smtp_site, story, channel=channel)
    row = smtp_site.ledger().get(DeliveryKey("2024-unpsf-incheon", "en", "email", "reader0@example.org"))
    assert first[0].state == "failed"
    assert row.state == "failed" and row.detail["permanent"] is False and row.last_error.startswith("451 4.7.1")
    assert handler.received() == {"reader1@example.org": 1}

    second = publish(smtp_site, story, channel=channel)
    assert second[0].note == "1 sent, 1 already sent"
    assert handler.received() == {"reader0@example.org": 1, "reader1@example.org": 1}


def test_a_row_left_in_flight_is_resent_and_reported_as_a_possible_duplicate(smtp_site: Site,
                                                                             smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=2, korean=0)
    ledger = smtp_site.ledger()
    in_doubt = DeliveryKey("2024-unpsf-incheon", "en", "email", "reader1@example.org")
    ledger.begin(in_doubt)              # what a crash in the middle of an SMTP transaction leaves behind
    story = story_for(smtp_site, "2024-unpsf-incheon")

    reports = publish(smtp_site, story)

    assert smtp_server.handler.received() == {"reader0@example.org": 1, "reader1@example.org": 1}
    assert reports[0].note == "1 sent, 1 re-sent after an interruption (possible duplicates)"
    row = ledger.get(in_doubt)
    assert row.state == "sent" and row.detail["possible_duplicate"] is True and row.attempts == 2


def test_permanent_failures_are_not_retried_unless_forced(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=1, korean=0)
    smtp_server.handler.refuse_rcpt = {"reader0@example.org": "554 5.7.1 rejected by policy"}
    story = story_for(smtp_site, "2024-unpsf-incheon")
    channel = EmailChannel(smtp_site)
    publish(smtp_site, story, channel=channel)
    smtp_server.handler.refuse_rcpt = {}

    again = publish(smtp_site, story, channel=channel)
    assert again[0].note == "1 failed before (5xx), not retried"
    assert smtp_site.subscribers().get("reader0@example.org").status == "active"   # 554 is not a bounce
    forced = publish(smtp_site, story, channel=channel, force=True)
    assert forced[0].note == "1 sent"
    assert smtp_server.handler.received() == {"reader0@example.org": 1}


def test_theme_followers_only(smtp_site: Site, smtp_server: SmtpServer) -> None:
    subscribers = smtp_site.subscribers()
    subscribers.add("all@example.org")
    subscribers.add("capacity@example.org", themes=["capacity-development"])
    subscribers.add("other@example.org", themes=["digital-government"])
    story = story_for(smtp_site, "2024-unpsf-incheon")       # theme: Capacity Development

    publish(smtp_site, story)

    assert set(smtp_server.handler.received()) == {"all@example.org", "capacity@example.org"}


def test_without_smtp_host_mail_goes_to_the_maildir(site: Site) -> None:
    add_readers(site, english=2, korean=1)
    story = story_for(site, "2024-unpsf-incheon")
    channel = EmailChannel(site)
    assert not channel.is_configured()

    reports = publish(site, story, channel=channel)

    assert all(r.where == "subscribers (local: Maildir at outbox/mail/)" for r in reports)
    files = sorted((site.outbox_dir / "mail" / "new").iterdir())
    assert len(files) == 3
    recipients = {email.message_from_bytes(f.read_bytes(), policy=policy.default)["To"].addresses[0].addr_spec
                  for f in files}
    assert recipients == {"reader0@example.org", "reader1@example.org", "kim0@example.kr"}
    assert not list((site.outbox_dir / "mail" / "tmp").iterdir())      # nothing half-written


def test_send_message_over_smtp_and_to_the_maildir(smtp_site: Site, smtp_server: SmtpServer, site: Site) -> None:
    message = EmailMessage()
    message["To"] = "new@example.org"
    message["Subject"] = "구독 확인"
    message.set_content("확인해 주세요.")

    assert send_message(smtp_site, message) == f"smtp://127.0.0.1:{smtp_server.port}"
    received = smtp_server.handler.parsed()["new@example.org"]
    assert received["Subject"] == "구독 확인" and received["Message-ID"] and received["Date"]
    assert received["From"].addresses[0].addr_spec == "news@unpog.example"

    local = Site(smtp_site.root.parent / "local")
    local.root.mkdir()
    where = send_message(local, message)
    assert where.startswith(str(local.root / "outbox" / "mail" / "new"))


def test_unreachable_server_is_one_line_and_sends_nothing(site: Site) -> None:
    down = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_SECURITY="none",
                        SMTP_TIMEOUT="2")
    add_readers(down, english=1, korean=0)
    story = story_for(down, "2024-unpsf-incheon")
    with pytest.raises(ChannelError, match=r"^SMTP 127.0.0.1:\d+: cannot connect: "):
        publish(down, story)
    row = down.ledger().get(DeliveryKey("2024-unpsf-incheon", "en", "email", "reader0@example.org"))
    assert row is None or row.state == "pending"
    down.close()


def test_a_connection_cut_after_the_message_is_reopened_and_reported(smtp_site: Site,
                                                                    smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=3, korean=0)
    smtp_server.handler.drop_data = {"reader1@example.org": 1}
    story = story_for(smtp_site, "2024-unpsf-incheon")

    reports = publish(smtp_site, story)

    assert smtp_server.handler.received() == {f"reader{i}@example.org": 1 for i in range(3)}
    assert smtp_server.handler.dropped == {"reader1@example.org": 1}
    assert reports[0].note == "2 sent, 1 re-sent after an interruption (possible duplicates)"
    row = smtp_site.ledger().get(DeliveryKey("2024-unpsf-incheon", "en", "email", "reader1@example.org"))
    assert row.state == "sent" and row.detail["possible_duplicate"] is True


@pytest.mark.parametrize("smtp_server", [{"auth": ("bulletin", "s3cret-pass")},
                                         {"auth": ("bulletin", "s3cret-pass"), "pipelining": True}], indirect=True)
def test_login_with_smtp_username_and_password(smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=1, korean=0)
    story = story_for(smtp_site, "2024-unpsf-incheon")
    site = set_settings(smtp_site, SMTP_USERNAME="bulletin")
    (site.root / ".env").write_text("SMTP_PASSWORD=wrong\n", encoding="utf-8")
    site = Site(site.root)
    with pytest.raises(ChannelError) as refused:
        publish(site, story)
    assert "535" in str(refused.value) and "wrong" not in str(refused.value)    # the secret is never shown
    assert smtp_server.handler.received() == {}

    (site.root / ".env").write_text("SMTP_PASSWORD=s3cret-pass\n", encoding="utf-8")
    site = Site(site.root)
    reports = publish(site, story)
    assert reports[0].note == "1 sent"
    assert smtp_server.handler.received() == {"reader0@example.org": 1}
    site.close()


def test_rate_limit_paces_the_sending(smtp_site: Site, smtp_server: SmtpServer) -> None:
    from publisher.channels.base import ChannelContext
    from publisher.delivery import Attempt

    site = set_settings(smtp_site, SMTP_RATE_PER_SECOND="20")
    add_readers(site, english=6, korean=0)
    story = story_for(site, "2024-unpsf-incheon")
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:   # time passes only when the sender waits
        waits.append(seconds)
        now[0] += seconds

    channel = EmailChannel(site)
    ctx = ChannelContext(audience=site.subscribers(), clock=lambda: now[0], sleep=sleep)
    renditions = channel.render(story, ["en"])
    attempts = [Attempt(p.key, p.rendition, p.recipient) for p in channel.deliveries(renditions, ctx)]
    with channel.open(renditions, ctx) as sender:
        for attempt in attempts:
            sender.submit(attempt)
            sender.collect(wait=True)
    assert now[0] - 1000.0 >= 5 / 20 - 1e-9              # 6 messages at 20/s: 5 gaps of 50 ms at least
    assert len(waits) == 5 and all(w <= 1 / 20 + 1e-9 for w in waits)
    assert sum(smtp_server.handler.received().values()) == 6
    site.close()


def test_pacing_never_waits_longer_than_one_interval_when_the_clock_is_set_back(site: Site) -> None:
    from publisher.channels.base import ChannelContext
    from publisher.delivery import Attempt

    paced = set_settings(site, SMTP_RATE_PER_SECOND="10")
    add_readers(paced, english=3, korean=0)
    story = story_for(paced, "2024-unpsf-incheon")
    now = [5000.0]
    waits: list[float] = []
    channel = EmailChannel(paced)
    ctx = ChannelContext(audience=paced.subscribers(), clock=lambda: now[0], sleep=waits.append)
    renditions = channel.render(story, ["en"])
    with channel.open(renditions, ctx) as sender:    # the Maildir: no SMTP_HOST
        for planned in channel.deliveries(renditions, ctx):
            sender.submit(Attempt(planned.key, planned.rendition, planned.recipient))
            sender.collect(wait=True)
            now[0] = 1000.0                          # the wall clock is set back an hour after the first message
    # Each wait is at most one interval (0.1 s), not the hour the clock went back.
    assert waits == pytest.approx([0.1, 0.1])
    assert len(list((paced.outbox_dir / "mail" / "new").iterdir())) == 3
    paced.close()


def test_4xx_backoff_doubles_through_the_injected_sleep(smtp_site: Site, smtp_server: SmtpServer) -> None:
    from publisher.mail.smtp import RetryPolicy, SendJob, SmtpSender, smtp_server as server_of

    smtp_server.handler.defer_data = {"reader@example.org": 3}
    waits: list[float] = []
    message = (b"From: news@unpog.example\r\nTo: reader@example.org\r\nSubject: hi\r\n\r\nHello.\r\n")
    pool = SmtpSender(server_of(smtp_site.config), lambda job: (message, "<id@unpog.example>"), 1,
                      RetryPolicy(retries=3, first_delay=5.0), sleep=waits.append)
    with pool:
        pool.submit(SendJob("key", "news@unpog.example", "reader@example.org"))
        outcome = pool.next_outcome()
    assert outcome is not None and outcome.state == "sent" and outcome.attempts == 4
    assert waits == [5.0, 10.0, 20.0]                    # no real waiting: the test takes no 35 s
    assert smtp_server.handler.received() == {"reader@example.org": 1}


def test_progress_bar_shows_count_and_rate(smtp_site: Site, smtp_server: SmtpServer) -> None:
    import io

    from rich.console import Console

    add_readers(smtp_site, english=3, korean=2)
    out = io.StringIO()
    story = story_for(smtp_site, "2024-unpsf-incheon")
    publish(smtp_site, story, console=Console(file=out, width=120))
    shown = out.getvalue()
    assert f"SMTP 127.0.0.1:{smtp_server.port}" in shown and "5/5" in shown


@pytest.mark.parametrize("smtp_server", [{"smtputf8": False}, {"smtputf8": False, "pipelining": True}],
                         indirect=True)
def test_an_internationalized_address_fails_alone_when_the_server_lacks_smtputf8(smtp_site: Site,
                                                                                smtp_server: SmtpServer) -> None:
    add_readers(smtp_site, english=1, korean=1)
    smtp_site.subscribers().add("김민수@example.kr", lang="ko")       # valid (RFC 6531), needs SMTPUTF8
    story = story_for(smtp_site, "2024-unpsf-incheon")

    reports = publish(smtp_site, story)

    assert smtp_server.handler.received() == {"reader0@example.org": 1, "kim0@example.kr": 1}
    korean = next(r for r in reports if r.lang == "ko")
    assert korean.state == "failed" and "no SMTPUTF8" in korean.note
    row = smtp_site.ledger().get(DeliveryKey("2024-unpsf-incheon", "ko", "email", "김민수@example.kr"))
    assert row.state == "failed" and row.detail["permanent"] is True


def test_an_internationalized_address_is_delivered_with_smtputf8(smtp_site: Site, smtp_server: SmtpServer) -> None:
    smtp_site.subscribers().add("김민수@example.kr", name="김민수", lang="ko")
    story = story_for(smtp_site, "2024-unpsf-incheon")

    reports = publish(smtp_site, story)

    assert [r.note for r in reports] == ["1 sent"]
    [(recipients, data)] = smtp_server.handler.messages
    assert recipients == ["김민수@example.kr"]
    # RFC 6532: the address itself is UTF-8 in the header; the display name stays an encoded-word.
    message = email.message_from_string(data.decode("utf-8"), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "김민수@example.kr"
    assert message["To"].addresses[0].display_name == "김민수"


def test_config_check_reports_bad_email_settings(cli, site: Site) -> None:
    set_settings(site, SMTP_HOST="mail.example.org", SMTP_PORT="not-a-port", DKIM_DOMAIN="unpog.example",
                 BULLETIN_FROM="News <news@@unpog.example>")
    result = cli("config", "check")
    assert result.exit_code == 2
    assert "SMTP_PORT (from publisher.toml): expected a whole number, got 'not-a-port'" in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert errors == [
        "Error: SMTP_PORT (from publisher.toml): expected a whole number, got 'not-a-port'",
        "Error: BULLETIN_FROM (from publisher.toml): expected an address such as 'News <news@example.org>', "
        "got 'News <news@@unpog.example>'",
        "Error: 2 invalid setting(s)",
    ]

    set_settings(site, SMTP_PORT="2525", BULLETIN_FROM="News <news@unpog.example>")
    result = cli("config", "check")
    assert result.exit_code == 2
    assert "DKIM_SELECTOR: DKIM signing needs DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY_FILE" in result.output



def test_config_check_refuses_durations_and_counts_smtplib_cannot_use(cli, site: Site) -> None:
    # A timeout of 0 or less fails inside smtplib with a traceback; negative retries or delays make no sense.
    set_settings(site, SMTP_HOST="mail.example.org", SMTP_TIMEOUT="-1", SMTP_RETRIES="-2", SMTP_RETRY_DELAY="nan",
                 SMTP_RATE_PER_SECOND="-5")
    result = cli("config", "check")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert errors == [
        "Error: SMTP_RATE_PER_SECOND (from publisher.toml): expected a number of 0 or more, got '-5'",
        "Error: SMTP_TIMEOUT (from publisher.toml): expected a number greater than 0, got '-1'",
        "Error: SMTP_RETRIES (from publisher.toml): expected a whole number of 0 or more, got '-2'",
        "Error: SMTP_RETRY_DELAY (from publisher.toml): expected a number of 0 or more, got 'nan'",
        "Error: 4 invalid setting(s)",
    ]


def test_the_smtp_password_never_appears_in_the_server_value_a_traceback_would_show(site: Site) -> None:
    from publisher.mail.smtp import smtp_server

    configured = set_settings(site, SMTP_HOST="mail.example.org", SMTP_USERNAME="news")
    (configured.root / ".env").write_text("SMTP_PASSWORD=hunter2-smtp-secret\n", encoding="utf-8")
    configured.close()
    reopened = Site(configured.root)
    server = smtp_server(reopened.config)
    reopened.close()
    assert server.password == "hunter2-smtp-secret"
    assert "hunter2" not in repr(server) and "mail.example.org" in repr(server)


def test_a_name_with_line_breaks_cannot_write_headers_or_a_body_of_its_own(smtp_site: Site, smtp_server: SmtpServer,
                                                                            tmp_path) -> None:
    # A quoted CSV cell may hold line breaks; written as-is into To: it would add headers, or with a blank line
    # start the body of a DKIM-signed bulletin from the office's own domain.
    sheet = tmp_path / "list.csv"
    sheet.write_bytes(b'email,name,language\r\nevil@example.org,"Evil\r\nBcc: victim@example.org\r\n\r\n'
                      b'<a href=https://phish.example>Pay</a>",en\r\n')
    assert smtp_site.subscribers().import_csv(sheet).added == 1
    assert smtp_site.subscribers().get("evil@example.org").name == \
        "Evil Bcc: victim@example.org <a href=https://phish.example>Pay</a>"
    story = story_for(smtp_site, "2024-unpsf-incheon")

    publish(smtp_site, story, ["en"])

    [(recipients, data)] = smtp_server.handler.messages
    assert recipients == ["evil@example.org"]
    message = email.message_from_bytes(data, policy=policy.default)
    assert message["Bcc"] is None and "phish" not in message.get_body(("html",)).get_content()
    assert message["To"].addresses[0].addr_spec == "evil@example.org"
    assert message["List-Unsubscribe"] and message.is_multipart()
    # Rows stored before names were cleaned are made safe where the header is written, too.
    from publisher.mail.message import to_header

    assert to_header("Evil\r\nBcc: v@example.org", "e@example.org") == '"Evil Bcc: v@example.org" <e@example.org>'
    assert "\n" not in to_header("김\r\n\r\n<b>", "e@example.org")


class WriteWatcher(RecordingHandler):
    """Notes, at each MAIL FROM and at each message's end, what the client had already written behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.behind_mail: list[bytes] = []
        self.behind_data: list[bytes] = []

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.behind_mail.append(bytes(server._reader._buffer))   # read by aiosmtpd, not yet handled
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.behind_data.append(bytes(server._reader._buffer))
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-at-a-time"])
def test_with_pipelining_mail_rcpt_and_data_leave_in_one_write_with_the_previous_body(site: Site,
                                                                                     pipelining: bool) -> None:
    handler = WriteWatcher()
    port = free_port()
    server = controller(handler, pipelining=pipelining, port=port)
    server.start()
    try:
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="none",
                             SMTP_CONNECTIONS="1", BULLETIN_FROM="UNPOG News <news@unpog.example>",
                             PUBLISHER_SITE_URL="https://news.unpog.example")
        add_readers(wired, english=6, korean=0)
        reports = publish(wired, story_for(wired, "2024-unpsf-incheon"), ["en"])
    finally:
        server.stop()
    assert [r.note for r in reports] == ["6 sent"]
    assert len(handler.behind_mail) == 6
    envelope_in_one_write = [b"RCPT TO:<" in behind and b"DATA\r\n" in behind for behind in handler.behind_mail]
    next_mail_with_body = [b"MAIL FROM:<" in behind for behind in handler.behind_data]
    if pipelining:
        assert all(envelope_in_one_write)
        assert any(next_mail_with_body)     # the next message's envelope followed a body in the same write
    else:
        assert not any(envelope_in_one_write) and not any(next_mail_with_body)
    wired.close()


def test_lines_starting_with_a_dot_arrive_as_written(smtp_site: Site, smtp_server: SmtpServer) -> None:
    # The sender sends the builder's DATA body, stuffed once per bulletin for the shared parts: the server
    # un-stuffs it, and every line starting with a dot must read as written (none lost, none doubled).
    (smtp_site.root / "content" / "dots.en.md").write_text(
        '---\ntitle: "Dots"\ndate: 2025-01-02\nsummary: "s"\n---\n\n.NET and .org start this line.\n\n'
        "..two dots here\n\n.\n\nThe end.\n", encoding="utf-8")
    smtp_site.subscribers().add("reader@example.org", name="Reader", lang="en")
    reports = publish(smtp_site, story_for(smtp_site, "dots"), channel=EmailChannel(smtp_site))
    assert [(r.state, r.note) for r in reports] == [("sent", "1 sent")]
    message = smtp_server.handler.parsed()["reader@example.org"]
    text = message.get_body(("plain",)).get_content()
    lines = text.splitlines()
    assert ".NET and .org start this line." in lines and "..two dots here" in lines and "." in lines
    html = message.get_body(("html",)).get_content()
    assert ".NET and .org start this line." in html and "..two dots here" in html and "...two" not in html
