"""EMAIL_TRANSPORT=mailgun: one messages.mime call per reader, the real httpx client over httpx.MockTransport."""

from __future__ import annotations

import base64
import email
import itertools
import threading
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import httpx
import pytest

from publisher.channels.email import EmailChannel
from publisher.delivery import DeliveryKey
from publisher.site import Site
from tests.email.conftest import publish, set_settings, story_for

SLUG = "2024-unpsf-incheon"
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


@pytest.fixture
def mailgun_site(site: Site) -> Iterator[Site]:
    wired = set_settings(site, EMAIL_TRANSPORT="mailgun", MAILGUN_DOMAIN="mg.unpog.example",
                         MAILGUN_API_URL="https://api.eu.mailgun.net", MAILGUN_RATE_PER_SECOND="0",
                         SMTP_RETRY_DELAY="0", BULLETIN_FROM="UNPOG News <news@unpog.example>",
                         PUBLISHER_SITE_URL="https://news.unpog.example")
    (wired.root / ".env").write_text("PUBLISHER_SECRET_KEY=test-secret-key-for-signed-links\n"
                                     f"MAILGUN_API_KEY={KEY}\n", encoding="utf-8")
    wired = Site(wired.root)
    yield wired
    wired.close()


class FakeMailgun:
    """messages.mime: parses the multipart form as Mailgun would, and queues the message."""

    def __init__(self, refuse: Callable[[str], httpx.Response | None] = lambda to: None) -> None:
        self.received: dict[str, bytes] = {}
        self.auth: set[str] = set()
        self.refuse = refuse
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url == "https://api.eu.mailgun.net/v3/mg.unpog.example/messages.mime"
        fields = form_fields(request)
        to = fields["to"].decode()
        refused = self.refuse(to)
        if refused is not None:
            return refused
        with self.lock:
            self.auth.add(request.headers["Authorization"])
            self.received[to] = fields["message"]
            number = next(self.ids)
        return httpx.Response(200, json={"id": f"<mg-{number}@mg.unpog.example>", "message": "Queued. Thank you."})


def form_fields(request: httpx.Request) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, byte for byte (a DKIM signature must still verify)."""
    boundary = request.headers["Content-Type"].split("boundary=", 1)[1].encode()
    fields = {}
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, value = chunk[2:].partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        fields[name] = value[:-2]      # the CRLF before the next boundary
    return fields


def add_readers(site: Site, count: int) -> None:
    for i in range(count):
        site.subscribers().add(f"reader{i}@example.org", lang="en")


def test_each_reader_gets_our_own_mime_and_the_ledger_holds_mailgun_ids(mailgun_site: Site) -> None:
    add_readers(mailgun_site, 5)
    fake = FakeMailgun()
    channel = EmailChannel(mailgun_site)
    channel.esp_client = httpx.MockTransport(fake)
    assert channel.destination() == "Mailgun mg.unpog.example API"

    reports = publish(mailgun_site, story_for(mailgun_site, SLUG), ["en"], channel=channel)

    assert [(r.state, r.note) for r in reports] == [("sent", "5 sent")]
    assert sorted(fake.received) == [f"reader{i}@example.org" for i in range(5)]
    assert fake.auth == {"Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()}
    message = email.message_from_bytes(fake.received["reader3@example.org"], policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "reader3@example.org"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ledger = mailgun_site.ledger()
    row = ledger.get(DeliveryKey(SLUG, "en", "email", "reader3@example.org"))
    assert row.detail["message_id"] == message["Message-ID"] and row.detail["provider"] == "Mailgun"
    ids = {ledger.get(DeliveryKey(SLUG, "en", "email", f"reader{i}@example.org")).remote_id for i in range(5)}
    assert ids == {f"<mg-{n}@mg.unpog.example>" for n in range(1, 6)}


def test_a_bad_address_fails_alone_and_a_forbidden_domain_halts(mailgun_site: Site) -> None:
    site = set_settings(mailgun_site, MAILGUN_CONNECTIONS="1")
    add_readers(site, 4)

    def refuse(to: str) -> httpx.Response | None:
        if to == "reader1@example.org":
            return httpx.Response(400, json={"message": "'to' parameter is not a valid address. please check "
                                                        "documentation"})
        if to == "reader2@example.org":
            return httpx.Response(403, json={"message": "Domain mg.unpog.example is not allowed to send: Free "
                                                        "accounts are for test purposes only."})
        return None

    fake = FakeMailgun(refuse)
    channel = EmailChannel(site)
    channel.esp_client = httpx.MockTransport(fake)
    reports = publish(site, story_for(site, SLUG), ["en"], channel=channel)

    stopped = [r for r in reports if r.state == "stopped"]
    assert len(stopped) == 1 and "HTTP 403: Domain mg.unpog.example is not allowed to send" in stopped[0].note
    assert KEY not in " ".join(r.note for r in reports)
    ledger = site.ledger()
    states = {i: ledger.get(DeliveryKey(SLUG, "en", "email", f"reader{i}@example.org")) for i in range(4)}
    assert states[0].state == "sent"
    assert states[1].state == "failed" and states[1].detail["permanent"] is True
    assert "'to' parameter is not a valid address" in (states[1].last_error or "")
    assert states[2].state == "pending" and states[3].state == "pending"
    site.close()


def test_a_dropped_connection_leaves_the_row_unconfirmed(mailgun_site: Site) -> None:
    add_readers(mailgun_site, 1)

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    channel = EmailChannel(mailgun_site)
    channel.esp_client = httpx.MockTransport(drop)
    reports = publish(mailgun_site, story_for(mailgun_site, SLUG), ["en"], channel=channel)
    assert reports[0].state == "unconfirmed"
    assert mailgun_site.ledger().get(DeliveryKey(SLUG, "en", "email", "reader0@example.org")).state == "unconfirmed"


def test_a_connection_refused_is_retried_through_the_backoff(mailgun_site: Site) -> None:
    add_readers(mailgun_site, 1)
    fake = FakeMailgun()
    tries = [0]

    def refuse_twice(request: httpx.Request) -> httpx.Response:
        tries[0] += 1
        if tries[0] <= 2:
            raise httpx.ConnectError("Connection refused", request=request)
        return fake(request)

    channel = EmailChannel(mailgun_site)
    channel.esp_client = httpx.MockTransport(refuse_twice)
    reports = publish(mailgun_site, story_for(mailgun_site, SLUG), ["en"], channel=channel)
    assert [(r.state, r.note) for r in reports] == [("sent", "1 sent")]
    assert tries[0] == 3 and list(fake.received) == ["reader0@example.org"]
