"""EMAIL_TRANSPORT=postmark: bulletins through /email/batch with the real httpx client over httpx.MockTransport."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from publisher.channels.email import EmailChannel
from publisher.delivery import DeliveryKey
from publisher.site import Site
from tests.email.conftest import publish, set_settings, story_for

SLUG = "2024-unpsf-incheon"
TOKEN = "server-token-0a1b2c3d-never-printed"


@pytest.fixture
def postmark_site(site: Site) -> Iterator[Site]:
    wired = set_settings(site, EMAIL_TRANSPORT="postmark", POSTMARK_BATCH_SIZE="3", SMTP_RETRY_DELAY="0",
                         BULLETIN_FROM="UNPOG News <news@unpog.example>",
                         PUBLISHER_SITE_URL="https://news.unpog.example")
    (wired.root / ".env").write_text("PUBLISHER_SECRET_KEY=test-secret-key-for-signed-links\n"
                                     f"POSTMARK_SERVER_TOKEN={TOKEN}\n", encoding="utf-8")
    wired = Site(wired.root)
    yield wired
    wired.close()


class FakePostmark:
    """Postmark's batch endpoint: accepts each message, except the answers ``special`` gives per address."""

    def __init__(self, special: Callable[[str], dict[str, Any] | None] = lambda to: None,
                 status: Callable[[int], int | None] = lambda call: None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.headers: list[httpx.Headers] = []
        self.special = special
        self.status = status
        self.lock = threading.Lock()     # two batch calls may be in flight at once
        self.ids = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url == "https://api.postmarkapp.com/email/batch" and request.method == "POST"
        body = json.loads(request.content)
        with self.lock:
            self.calls.append(body)
            self.headers.append(request.headers)
            call = len(self.calls)
        status = self.status(call)
        if status is not None:
            return httpx.Response(status, json={"ErrorCode": 10 if status == 401 else 0, "Message": "Nope"})
        answers = []
        for message in body:
            answer = self.special(message["To"])
            with self.lock:
                answers.append(answer or {"ErrorCode": 0, "Message": "OK", "To": message["To"],
                                          "MessageID": f"pm-{next(self.ids)}"})
        return httpx.Response(200, json=answers)


def add_readers(site: Site, count: int) -> None:
    for i in range(count):
        site.subscribers().add(f"reader{i}@example.org", name=f"Reader {i}", lang="en")


def channel_for(site: Site, fake: FakePostmark) -> EmailChannel:
    channel = EmailChannel(site)
    channel.esp_client = httpx.MockTransport(fake)
    return channel


def test_bulletins_go_in_batches_and_the_ledger_holds_postmark_ids(postmark_site: Site) -> None:
    add_readers(postmark_site, 7)
    fake = FakePostmark()
    channel = channel_for(postmark_site, fake)
    assert channel.destination() == "Postmark (broadcast stream) API"

    reports = publish(postmark_site, story_for(postmark_site, SLUG), ["en"], channel=channel)

    assert [(r.state, r.note) for r in reports] == [("sent", "7 sent")]
    assert sorted(len(call) for call in fake.calls) == [1, 3, 3]       # POSTMARK_BATCH_SIZE=3
    assert all(h["X-Postmark-Server-Token"] == TOKEN for h in fake.headers)
    message = next(m for call in fake.calls for m in call if "reader0@" in m["To"])
    assert message["From"] == "UNPOG News <news@unpog.example>" and message["To"] == "Reader 0 <reader0@example.org>"
    assert message["MessageStream"] == "broadcast"
    assert message["Subject"].startswith("Empowering Global Public Administration")
    assert "Empowering" in message["HtmlBody"] and "Empowering" in message["TextBody"]
    headers = {h["Name"]: h["Value"] for h in message["Headers"]}
    # RFC 8058 one-click unsubscribe survives; the signed link is this reader's own, in the body too.
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = headers["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://news.unpog.example/") and link in message["HtmlBody"]
    assert "DKIM-Signature" not in headers and "Message-ID" not in headers    # Postmark writes its own

    ledger = postmark_site.ledger()
    ids = {ledger.get(DeliveryKey(SLUG, "en", "email", f"reader{i}@example.org")).remote_id for i in range(7)}
    assert ids == {f"pm-{n}" for n in range(1, 8)}


def test_an_inactive_recipient_is_marked_bounced_and_an_invalid_one_failed(postmark_site: Site) -> None:
    add_readers(postmark_site, 3)

    def special(to: str) -> dict[str, Any] | None:
        if "reader1@" in to:
            return {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as "
                                                 "inactive."}
        if "reader2@" in to:
            return {"ErrorCode": 300, "Message": "Invalid 'To' address."}
        return None

    fake = FakePostmark(special)
    reports = publish(postmark_site, story_for(postmark_site, SLUG), ["en"], channel=channel_for(postmark_site, fake))
    assert reports[0].state == "failed"
    assert "1 sent" in reports[0].note and "1 failed" in reports[0].note and "1 bounced" in reports[0].note
    ledger = postmark_site.ledger()
    assert ledger.get(DeliveryKey(SLUG, "en", "email", "reader1@example.org")).detail["permanent"] is True
    assert postmark_site.subscribers().get("reader1@example.org").status == "bounced"
    assert postmark_site.subscribers().get("reader2@example.org").status == "active"


def test_a_bad_token_halts_the_run_with_everyone_pending(postmark_site: Site) -> None:
    add_readers(postmark_site, 5)
    fake = FakePostmark(status=lambda call: 401)
    reports = publish(postmark_site, story_for(postmark_site, SLUG), ["en"], channel=channel_for(postmark_site, fake))
    stopped = [r for r in reports if r.state == "stopped"]
    assert len(stopped) == 1 and "HTTP 401: 10 Nope" in stopped[0].note and TOKEN not in stopped[0].note
    ledger = postmark_site.ledger()
    assert {ledger.get(DeliveryKey(SLUG, "en", "email", f"reader{i}@example.org")).state for i in range(5)} == \
        {"pending"}


def test_a_429_is_retried_then_sent(postmark_site: Site) -> None:
    add_readers(postmark_site, 2)
    fake = FakePostmark(status=lambda call: 429 if call == 1 else None)
    reports = publish(postmark_site, story_for(postmark_site, SLUG), ["en"], channel=channel_for(postmark_site, fake))
    assert [(r.state, r.note) for r in reports] == [("sent", "2 sent")]
    assert len(fake.calls) == 2


def test_a_read_timeout_leaves_the_whole_batch_unconfirmed(postmark_site: Site) -> None:
    add_readers(postmark_site, 2)

    def no_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    channel = EmailChannel(postmark_site)
    channel.esp_client = httpx.MockTransport(no_answer)
    reports = publish(postmark_site, story_for(postmark_site, SLUG), ["en"], channel=channel)
    assert reports[0].state == "unconfirmed" and "2 unconfirmed" in reports[0].note
    ledger = postmark_site.ledger()
    assert {ledger.get(DeliveryKey(SLUG, "en", "email", f"reader{i}@example.org")).state for i in range(2)} == \
        {"unconfirmed"}
    # The next run sends both again, reported as possible duplicates.
    fake = FakePostmark()
    again = publish(postmark_site, story_for(postmark_site, SLUG), ["en"], channel=channel_for(postmark_site, fake))
    assert again[0].state == "sent" and again[0].possible_duplicates == 2


def test_batch_size_is_at_most_500(cli: Any, site_dir: Any) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + 'EMAIL_TRANSPORT = "postmark"\nPOSTMARK_BATCH_SIZE = 501\n',
                    encoding="utf-8")
    result = cli("config", "check")
    assert result.exit_code == 2
    assert "POSTMARK_BATCH_SIZE (from publisher.toml): expected a whole number from 1 to 500" in result.output
    assert "POSTMARK_SERVER_TOKEN: needed with EMAIL_TRANSPORT=postmark" in result.output


def test_a_confirmation_goes_through_the_transactional_stream(postmark_site: Site) -> None:
    from publisher.errors import ChannelError
    from publisher.mail.send import confirmation_message, send_message

    subscriber = postmark_site.subscribers().add("new@example.org", lang="en", status="pending")
    fake = FakePostmark()
    where = send_message(postmark_site, confirmation_message(postmark_site, subscriber),
                         esp_client=httpx.MockTransport(fake))
    assert where == "Postmark (outbound stream) pm-1"
    [[sent]] = fake.calls
    assert sent["MessageStream"] == "outbound" and sent["To"] == "new@example.org"
    assert "/confirm" in sent["TextBody"]
    assert not (postmark_site.outbox_dir / "mail").exists()     # not the Maildir

    refusing = FakePostmark(lambda to: {"ErrorCode": 406, "Message": "Inactive recipient"})
    with pytest.raises(ChannelError, match="Postmark 406: Inactive recipient"):
        send_message(postmark_site, confirmation_message(postmark_site, subscriber),
                     esp_client=httpx.MockTransport(refusing))


def test_a_batch_leaves_when_full_or_when_the_caller_waits() -> None:
    from publisher.mail.esp import PostmarkTransport
    from publisher.mail.smtp import SendJob

    fake = FakePostmark()
    raw = (b"From: news@unpog.example\r\nTo: {to}\r\nSubject: hi\r\nList-Unsubscribe: <https://x.example/u>\r\n"
           b"Content-Type: text/plain\r\n\r\nHello.\r\n")
    transport = PostmarkTransport(lambda job: (raw.replace(b"{to}", job.recipient.encode()), f"<{job.key}@x>"),
                                  workers=1, batch_size=3, http=httpx.MockTransport(fake), token=TOKEN)
    assert transport.capacity == 3
    with transport:
        for n in range(3):
            transport.submit(SendJob(n, "news@unpog.example", f"r{n}@example.org"))
        first = [transport.next_outcome() for _ in range(3)]      # the full batch of 3 left at the third submit
        transport.submit(SendJob(3, "news@unpog.example", "r3@example.org"))
        assert transport.next_outcome(timeout=0) is None and len(fake.calls) == 1   # the 4th waits in its batch
        last = transport.next_outcome()                          # waiting sends the open batch
    assert [len(call) for call in fake.calls] == [3, 1]
    assert all(o is not None and o.state == "sent" for o in [*first, last])
    assert fake.calls[0][0]["TextBody"] == "Hello.\n" and "HtmlBody" not in fake.calls[0][0]
