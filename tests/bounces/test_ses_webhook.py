"""POST /webhooks/ses: SNS messages verified against a certificate fetched only from sns.<region>.amazonaws.com
(HTTP intercepted below httpx with MockTransport), the subscription confirmed, forged messages refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from publisher.bounces import webhooks
from publisher.site import Site
from tests.web.conftest import make_client

pytestmark = pytest.mark.both_databases

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
SUBSCRIBE_URL = ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC +
                 "&Token=2336412f37fb687f5d51e6e2425c464de12884c4")


@pytest.fixture
def aws() -> Iterator[tuple[Any, list[str]]]:
    """A signing key with its certificate served at CERT_URL, and every URL requested."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    requested: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if str(request.url) == CERT_URL:
            return httpx.Response(200, content=cert.public_bytes(Encoding.PEM))
        if str(request.url).startswith("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"):
            return httpx.Response(200, content=b"<ConfirmSubscriptionResponse/>")
        return httpx.Response(404)

    webhooks.SNS_TRANSPORT = httpx.MockTransport(answer)
    webhooks._certificates.clear()
    yield key, requested
    webhooks.SNS_TRANSPORT = None
    webhooks._certificates.clear()


def signed(key: Any, message: dict[str, Any], version: str = "2") -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
    text = webhooks._sns_string_to_sign(message)
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()
    message["Signature"] = base64.b64encode(key.sign(text, padding.PKCS1v15(), digest)).decode()
    return json.dumps(message).encode()


def notification(notice: dict[str, Any], message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324") -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC, "Message": json.dumps(notice),
            "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")}


BOUNCE = {"notificationType": "Bounce", "bounce": {
    "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-12-01T10:00:00.000Z",
    "bouncedRecipients": [{"emailAddress": "gone@example.org", "action": "failed", "status": "5.1.1",
                           "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
    "mail": {"messageId": "0000014a-f4d4-4f89-93cb-4d5e-example", "destination": ["gone@example.org"]}}
COMPLAINT = {"notificationType": "Complaint", "complaint": {
    "complainedRecipients": [{"emailAddress": "angry@example.org"}], "complaintFeedbackType": "abuse"},
    "mail": {"messageId": "0000014a-second"}}


@pytest.fixture
def ses_site(site: Site) -> Iterator[Site]:
    (site.root / ".env").write_text(f"SES_WEBHOOK_TOPIC_ARNS={TOPIC}\n", encoding="utf-8")
    opened = Site(site.root)
    for address in ("gone@example.org", "angry@example.org"):
        opened.subscribers().add(address)
    yield opened
    opened.close()


def status(site: Site, address: str) -> str:
    return site.subscribers().get(address).status


def test_ses_notifications_verified_by_sns_signature(ses_site: Site, aws: tuple[Any, list[str]]) -> None:
    key, requested = aws
    from cryptography.hazmat.primitives.asymmetric import rsa

    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with make_client(ses_site) as client:
        forged = client.post("/webhooks/ses", content=signed(impostor, notification(BOUNCE)))
        assert forged.status_code == 403 and status(ses_site, "gone@example.org") == "active"
        elsewhere = json.loads(signed(key, notification(BOUNCE)))
        elsewhere["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem"
        assert client.post("/webhooks/ses", content=json.dumps(elsewhere)).status_code == 403
        other_topic = {**notification(BOUNCE), "TopicArn": "arn:aws:sns:us-east-1:999999999999:someone-else"}
        assert client.post("/webhooks/ses", content=signed(key, other_topic)).status_code == 403
        old = {**notification(BOUNCE), "Timestamp": "2020-01-01T00:00:00.000Z"}
        assert client.post("/webhooks/ses", content=signed(key, old)).status_code == 403
        assert status(ses_site, "gone@example.org") == "active"

        answer = client.post("/webhooks/ses", content=signed(key, notification(BOUNCE)))
        assert answer.status_code == 200 and answer.json()["events"] == ["done"]
        gone = ses_site.subscribers().get("gone@example.org")
        assert gone.status == "bounced" and gone.status_reason == "ses: 5.1.1 smtp; 550 5.1.1 user unknown"
        again = client.post("/webhooks/ses", content=signed(key, notification(BOUNCE)))
        assert again.json()["events"] == ["duplicate"]
        complaint = client.post("/webhooks/ses", content=signed(key, notification(COMPLAINT, "m2"), version="1"))
        assert complaint.json()["events"] == ["done"] and status(ses_site, "angry@example.org") == "complained"
        assert client.post("/webhooks/ses", content=b"not json").status_code == 400
    assert set(requested) == {CERT_URL}   # fetched once, from SNS only


def test_a_verified_subscription_confirmation_is_confirmed(ses_site: Site, aws: tuple[Any, list[str]]) -> None:
    key, requested = aws
    confirmation = {"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                    "Token": "2336412f37fb687f5d51e6e2425c464de12884c4", "TopicArn": TOPIC,
                    "Message": "You have chosen to subscribe to the topic " + TOPIC, "SubscribeURL": SUBSCRIBE_URL,
                    "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    with make_client(ses_site) as client:
        lure = {**confirmation, "SubscribeURL": "https://attacker.example/?Action=ConfirmSubscription"}
        assert client.post("/webhooks/ses", content=signed(key, lure)).status_code == 403
        assert client.post("/webhooks/ses", content=signed(key, confirmation)).status_code == 200
    assert requested == [CERT_URL, SUBSCRIBE_URL]
