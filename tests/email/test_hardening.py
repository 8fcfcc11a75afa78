"""Issue 11 regressions for the email channel: headers, Message-IDs, sender-level refusals, the circuit breaker
and AUTH over plain text, each against a real aiosmtpd server on this machine."""

from __future__ import annotations

import email
from email import policy
from typing import Any

from publisher.delivery import DeliveryKey
from publisher.site import Site
from tests.email.conftest import SmtpServer, publish, set_settings, story_for

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

    first, second = copies(smtp_server, "reader00@example.org")
    assert first["Message-ID"] != second["Message-ID"]


# --- item 5: control and bidi characters never reach a header -------------------------------------------------

UNSAFE = ["\x00", "\x01", "\x7f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
          "\u2069"]


def test_control_and_bidi_characters_in_a_title_never_reach_a_header(smtp_site: Site, smtp_server: SmtpServer,
                                                                    write_article: Any) -> None:
    site = set_settings(smtp_site, SITE_TITLE_EN="UNPOG\\u202e News\\u2066")
    add_readers(site, 1)
    write_article("2024-bidi", "en", title="Evil\x00 \x01title\x7f \u202egnp.exe\u2066 x\u2069",
                  date="2024-06-01", summary="A summary.")
    story = story_for(site, "2024-bidi")

    publish(site, story, ["en"])

    (message,) = copies(smtp_server, "reader00@example.org")
    assert message["Subject"] == "Evil title gnp.exe x"
    assert message["List-Id"].startswith("UNPOG News <bulletin.")
    for header in raw_headers(smtp_server):
        decoded = str(email.message_from_bytes(header + b"\r\n\r\n", policy=policy.default)["Subject"])
        for char in UNSAFE:
            assert char.encode("utf-8") not in header
            assert char not in decoded
    site.close()


def test_a_sender_name_from_the_site_title_is_cleaned_too(site: Site) -> None:
    from publisher.mail.message import MessageBuilder, Reader

    wired = set_settings(site, SITE_TITLE_EN="News\\u202d Desk")
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
