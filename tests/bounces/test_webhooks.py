"""ESP webhooks: a signed Mailgun event suppresses an address, a forged, stale or replayed one changes nothing;
Postmark with Basic auth; bad bodies are a 4xx, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from publisher.site import Site
from tests.web.conftest import make_client

pytestmark = pytest.mark.both_databases

KEY = "key-mailgun-webhook-signing-test"


@pytest.fixture
def hooked(site: Site) -> Site:
    (site.root / ".env").write_text(f"MAILGUN_WEBHOOK_SIGNING_KEY={KEY}\nPOSTMARK_WEBHOOK_USER=postmark\n"
                                    "POSTMARK_WEBHOOK_PASSWORD=pm-secret\n", encoding="utf-8")
    opened = Site(site.root)
    for address in ("gone@example.org", "angry@example.org", "full@example.org", "left@example.org"):
        opened.subscribers().add(address)
    return opened


def mailgun_body(event: dict[str, Any], *, token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
                 timestamp: float | None = None, key: str = KEY) -> bytes:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": stamp, "token": token, "signature": signature},
                       "event-data": event}).encode()


PERMANENT = {"event": "failed", "severity": "permanent", "recipient": "gone@example.org", "reason": "bounce",
             "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not "
                                 "exist", "description": ""}, "id": "G9Bn5sl1TC6MKBXA_r4IvA"}


def status(site: Site, address: str) -> str:
    return site.subscribers().get(address).status


def test_a_signed_mailgun_event_suppresses_and_a_forged_one_changes_nothing(hooked: Site) -> None:
    with make_client(hooked) as client:
        forged = client.post("/webhooks/mailgun", content=mailgun_body(PERMANENT, key="not-the-key"))
        assert forged.status_code == 403 and status(hooked, "gone@example.org") == "active"
        stale = client.post("/webhooks/mailgun", content=mailgun_body(PERMANENT, timestamp=time.time() - 3600))
        assert stale.status_code == 403 and status(hooked, "gone@example.org") == "active"

        signed = client.post("/webhooks/mailgun", content=mailgun_body(PERMANENT))
        assert signed.status_code == 200 and signed.json()["events"] == ["done"]
        gone = hooked.subscribers().get("gone@example.org")
        assert gone.status == "bounced" and gone.status_reason.startswith("mailgun: 550 5.1.1 The email account")

        hooked.subscribers().unsuppress("gone@example.org", reason="test")
        replayed = client.post("/webhooks/mailgun", content=mailgun_body(PERMANENT))   # the same token again
        assert replayed.json()["events"] == ["duplicate"] and status(hooked, "gone@example.org") == "active"

        complaint = {"event": "complained", "recipient": "angry@example.org"}
        assert client.post("/webhooks/mailgun", content=mailgun_body(complaint, token="t2")).status_code == 200
        assert status(hooked, "angry@example.org") == "complained"
        other = {"event": "opened", "recipient": "full@example.org"}
        answer = client.post("/webhooks/mailgun", content=mailgun_body(other, token="t3"))
        assert answer.status_code == 200 and answer.json()["events"] == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"signature": "x"}',
                                  json.dumps({"signature": {"timestamp": "x", "token": "t", "signature": "s"}}).encode()])
def test_bad_mailgun_bodies_are_a_4xx(hooked: Site, body: bytes) -> None:
    with make_client(hooked) as client:
        answer = client.post("/webhooks/mailgun", content=body)
    assert 400 <= answer.status_code < 500


def test_an_endpoint_without_its_secret_is_not_there(site: Site) -> None:
    with make_client(site) as client:
        assert client.post("/webhooks/mailgun", content=mailgun_body(PERMANENT)).status_code == 404
        assert client.post("/webhooks/postmark", content=b"{}").status_code == 404


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark_events_need_the_basic_auth(hooked: Site) -> None:
    bounce = json.dumps({"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce",
                         "Email": "gone@example.org", "Description": "The server was unable to deliver your message"
                         " (ex: unknown user, mailbox not found)."}).encode()
    with make_client(hooked) as client:
        assert client.post("/webhooks/postmark", content=bounce).status_code == 401
        assert client.post("/webhooks/postmark", content=bounce, headers=basic("postmark", "guess")).status_code == 403
        assert status(hooked, "gone@example.org") == "active"
        assert client.post("/webhooks/postmark", content=bounce,
                           headers=basic("postmark", "pm-secret")).json()["events"] == ["done"]
        assert status(hooked, "gone@example.org") == "bounced"
        soft = json.dumps({"RecordType": "Bounce", "ID": 2, "Type": "SoftBounce", "Email": "full@example.org"})
        client.post("/webhooks/postmark", content=soft.encode(), headers=basic("postmark", "pm-secret"))
        assert status(hooked, "full@example.org") == "active"     # one soft bounce of BOUNCE_SOFT_LIMIT=3
        ooo = json.dumps({"RecordType": "Bounce", "ID": 3, "Type": "AutoResponder", "Email": "left@example.org"})
        assert client.post("/webhooks/postmark", content=ooo.encode(),
                           headers=basic("postmark", "pm-secret")).json()["events"] == []
        spam = json.dumps({"RecordType": "SpamComplaint", "ID": 4, "Email": "angry@example.org"})
        client.post("/webhooks/postmark", content=spam.encode(), headers=basic("postmark", "pm-secret"))
        assert status(hooked, "angry@example.org") == "complained"
        bad = client.post("/webhooks/postmark", content=b"{not json", headers=basic("postmark", "pm-secret"))
        assert bad.status_code == 400


def sendgrid_key() -> tuple[Any, str]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode()


def sendgrid_headers(private: Any, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp, "Content-Type": "application/json"}


def test_sendgrid_signed_events_act_and_forged_or_stale_ones_do_not(hooked: Site) -> None:
    private, public = sendgrid_key()
    (hooked.root / ".env").write_text(f"SENDGRID_WEBHOOK_PUBLIC_KEY={public}\n", encoding="utf-8")
    site = Site(hooked.root)
    body = json.dumps([
        {"email": "gone@example.org", "timestamp": 1764583200, "event": "bounce", "type": "bounce",
         "status": "5.1.1", "reason": "550 5.1.1 unknown user", "sg_event_id": "ZHJvcC0xMjM0NTY"},
        {"email": "angry@example.org", "timestamp": 1764583201, "event": "spamreport", "sg_event_id": "c3BhbS0x"},
        {"email": "full@example.org", "timestamp": 1764583202, "event": "delivered", "sg_event_id": "ZGVsLTE"},
    ]).encode()
    other_private, _ = sendgrid_key()
    with make_client(site) as client:
        forged = client.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(other_private, body))
        assert forged.status_code == 403
        altered = client.post("/webhooks/sendgrid", content=body.replace(b"gone@", b"full@"),
                              headers=sendgrid_headers(private, body))
        assert altered.status_code == 403
        stale = client.post("/webhooks/sendgrid", content=body,
                            headers=sendgrid_headers(private, body, time.time() - 3600))
        assert stale.status_code == 403
        assert client.post("/webhooks/sendgrid", content=body).status_code == 403   # unsigned
        assert [status(site, a) for a in ("gone@example.org", "angry@example.org")] == ["active", "active"]

        signed = client.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(private, body))
        assert signed.status_code == 200 and signed.json()["events"] == ["done", "done"]
        assert [status(site, a) for a in ("gone@example.org", "angry@example.org", "full@example.org")] == \
            ["bounced", "complained", "active"]
        again = client.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(private, body))
        assert again.json()["events"] == ["duplicate", "duplicate"]
        batch = json.dumps([{"email": f"r{n}@example.org", "event": "delivered", "sg_event_id": f"id{n}"}
                            for n in range(2000)]).encode()   # a batch bigger than the forms' 64 KiB limit
        assert len(batch) > 64 * 1024
        assert client.post("/webhooks/sendgrid", content=batch,
                           headers=sendgrid_headers(private, batch)).status_code == 200
        not_json = b"{oops"
        assert client.post("/webhooks/sendgrid", content=not_json,
                           headers=sendgrid_headers(private, not_json)).status_code == 400
    site.close()
