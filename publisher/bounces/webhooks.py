"""ESP webhooks in ``publisher serve``: bounce and complaint events, each verified before anything changes.

* ``POST /webhooks/mailgun``: HMAC-SHA256 of ``timestamp + token`` under MAILGUN_WEBHOOK_SIGNING_KEY
  (Mailgun's webhook signature); a timestamp more than ``MAX_AGE`` seconds away from now is refused, and each
  token acts once (a replay changes nothing).
* ``POST /webhooks/postmark``: HTTP Basic auth (POSTMARK_WEBHOOK_USER / _PASSWORD, put in the webhook URL);
  each event acts once by its ID.
* ``POST /webhooks/ses``: Amazon SNS notifications of SES bounces and complaints, from the topics in
  SES_WEBHOOK_TOPIC_ARNS only; the SNS signature (version 1 or 2) verified against a certificate fetched only
  from ``https://sns.<region>.amazonaws.com``; a SubscriptionConfirmation confirmed (its SubscribeURL must be
  SNS's too); each message once by its MessageId.
* ``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook, ECDSA P-256 over ``timestamp + body`` checked
  with SENDGRID_WEBHOOK_PUBLIC_KEY (``cryptography``); stale timestamps refused; each ``sg_event_id`` once.

An endpoint whose secret is unset answers 404. A bad signature or password: 403 (401 for a missing Basic auth),
nothing changed. A body that is not JSON or lacks a field: 400. An event type we do not act on: 200 and one
log line (the ESP must not retry it forever). Verified events go through ``BounceProcessor.apply_event``, so
the suppression rules are those of ``publisher bounces process``. Never a 500 for bad input.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from publisher.site import Site

log = logging.getLogger("publisher.bounces")

MAX_AGE = 300   # seconds: Mailgun's timestamp must be this close to now
MAX_BODY = 4 * 1024 * 1024   # bytes a webhook post may hold (the web app's forms: 64 KiB)


@dataclass(frozen=True)
class Event:
    """A verified event: what to do (``hard``, ``soft``, ``complaint``, ``unsubscribe``) to which address."""

    event_id: str
    kind: str
    email: str
    reason: str


class Refused(Exception):
    """The request is refused with this HTTP status and one line (for the log and the answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not JSON") from None


# --- Mailgun -----------------------------------------------------------------------------------------------


def _check_fresh(timestamp: str, now: float) -> None:
    """Refuse a signed post whose timestamp (Unix seconds) is more than ``MAX_AGE`` away from ``now``."""
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        raise Refused(403, "the timestamp is not a number") from None
    if age > MAX_AGE:
        raise Refused(403, f"the timestamp is {age:.0f} s away from now (more than {MAX_AGE}): stale or replayed")


def mailgun_events(body: bytes, key: str, *, now: float) -> list[Event]:
    """The event of a Mailgun webhook body, once its signature is verified (``Refused`` otherwise)."""
    data = _json(body)
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict):
        raise Refused(400, "no signature object")
    timestamp, token, given = (str(signature.get(k, "")) for k in ("timestamp", "token", "signature"))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(expected, given):
        raise Refused(403, "the signature does not verify")
    _check_fresh(timestamp, now)
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise Refused(400, "no event-data object")
    kind = str(event.get("event", ""))
    recipient = str(event.get("recipient", "") or "")
    found_status = event.get("delivery-status")
    status: dict[str, Any] = found_status if isinstance(found_status, dict) else {}
    words = " ".join(str(status.get(k, "")) for k in ("code", "message", "description") if status.get(k))
    reason = f"mailgun: {words or event.get('reason') or kind}"[:200]
    if kind == "failed":
        severity = str(event.get("severity", ""))
        if severity not in ("permanent", "temporary"):
            raise Refused(400, f"a failed event with severity {severity!r}")
        found = Event(f"token:{token}", "hard" if severity == "permanent" else "soft", recipient, reason)
    elif kind == "complained":
        found = Event(f"token:{token}", "complaint", recipient, "spam complaint (mailgun)")
    elif kind == "unsubscribed":
        found = Event(f"token:{token}", "unsubscribe", recipient, "unsubscribed (mailgun)")
    else:
        log.info("mailgun webhook: %r events are not acted on", kind[:40])
        return []
    if "@" not in recipient:
        raise Refused(400, "the event has no recipient")
    return [found]


# --- Postmark ----------------------------------------------------------------------------------------------

POSTMARK_HARD = ("HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked", "DMARCPolicy")
POSTMARK_SOFT = ("SoftBounce", "Transient", "DnsError", "AutoResponderRejected")  # not AutoResponder: an OOO


def check_basic_auth(header: str | None, user: str, password: str) -> None:
    """``Refused`` unless the Authorization header is Basic with this user and password."""
    import base64
    import binascii

    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Refused(401, "no Basic authorization")
    try:
        given_user, _, given_password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "a malformed Basic authorization") from None
    same_user = hmac.compare_digest(given_user.encode(), user.encode())
    if not (hmac.compare_digest(given_password.encode(), password.encode()) and same_user):
        raise Refused(403, "wrong user name or password")


def postmark_events(body: bytes) -> list[Event]:
    """The event of a Postmark webhook body (Bounce, SpamComplaint, SubscriptionChange)."""
    data = _json(body)
    if not isinstance(data, dict):
        raise Refused(400, "the body is not a JSON object")
    record = str(data.get("RecordType", ""))
    email = str(data.get("Email", "") or data.get("Recipient", "") or "")
    event_id = str(data.get("ID", "") or data.get("MessageID", "") or "")
    if record in ("Bounce", "SpamComplaint", "SubscriptionChange") and ("@" not in email or not event_id):
        raise Refused(400, f"a {record} event without Email or ID")
    if record == "Bounce":
        bounce = str(data.get("Type", ""))
        reason = f"postmark: {bounce}: {data.get('Description') or data.get('Details') or ''}".strip(": ")[:200]
        if bounce in POSTMARK_HARD:
            return [Event(event_id, "hard", email, reason)]
        if bounce in POSTMARK_SOFT:
            return [Event(event_id, "soft", email, reason)]
        log.info("postmark webhook: %r bounces are not acted on", bounce[:40])
        return []
    if record == "SpamComplaint":
        return [Event(event_id, "complaint", email, "spam complaint (postmark)")]
    if record == "SubscriptionChange" and data.get("SuppressSending") is True:
        return [Event(f"{event_id}:{data.get('ChangedAt', '')}", "unsubscribe", email, "unsubscribed (postmark)")]
    log.info("postmark webhook: %r events are not acted on", record[:40])
    return []


# --- SendGrid ----------------------------------------------------------------------------------------------

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def check_sendgrid_signature(body: bytes, public_key: str, signature: str | None, timestamp: str | None, *,
                             now: float) -> None:
    """``Refused`` unless ``signature`` is SendGrid's ECDSA (P-256, SHA-256) signature of ``timestamp + body``
    under ``public_key`` (base64 DER, as SendGrid shows it), made within ``MAX_AGE`` seconds of now."""
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if not signature or not timestamp:
        raise Refused(403, "no signature or timestamp header")
    _check_fresh(timestamp, now)
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        raw_signature = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raise Refused(403, "the signature or SENDGRID_WEBHOOK_PUBLIC_KEY is not valid base64 DER") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Refused(403, "SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    try:
        key.verify(raw_signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused(403, "the signature does not verify") from None


def sendgrid_events(body: bytes) -> list[Event]:
    """The events of a SendGrid Event Webhook body (a JSON array) that we act on."""
    data = _json(body)
    if not isinstance(data, list):
        raise Refused(400, "the body is not a JSON array of events")
    events = []
    for item in data:
        if not isinstance(item, dict):
            raise Refused(400, "an event that is not a JSON object")
        kind, email = str(item.get("event", "")), str(item.get("email", "") or "")
        event_id = str(item.get("sg_event_id", "") or "")
        reason = f"sendgrid: {item.get('status') or ''} {item.get('reason') or kind}".strip()[:200]
        if kind == "bounce":
            action = "soft" if str(item.get("type", "")) == "blocked" else "hard"
        elif kind == "spamreport":
            action, reason = "complaint", "spam complaint (sendgrid)"
        elif kind in ("unsubscribe", "group_unsubscribe"):
            action, reason = "unsubscribe", "unsubscribed (sendgrid)"
        else:
            continue   # delivered, open, click, deferred, dropped...: nothing for the list
        if "@" not in email or not event_id:
            log.warning("sendgrid webhook: a %s event without email or sg_event_id, skipped", kind)
            continue
        events.append(Event(event_id, action, email, reason))
    return events


# --- Amazon SES through SNS --------------------------------------------------------------------------------

SNS_CERT_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
SNS_MAX_AGE = 3600   # seconds: SNS retries a delivery for a while; an older message is refused
SNS_TRANSPORT: Any = None    # an httpx transport for the certificate and SubscribeURL requests (tests: MockTransport)
_certificates: dict[str, Any] = {}


def _sns_url(url: str, what: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "https" or not SNS_CERT_HOST.fullmatch(parts.hostname or "") or parts.port not in (None, 443):
        raise Refused(403, f"the {what} is not an https URL at sns.<region>.amazonaws.com")
    return url


def _sns_get(url: str) -> bytes:
    import httpx

    try:
        with httpx.Client(transport=SNS_TRANSPORT, timeout=10, follow_redirects=False) as http:
            response = http.get(url)
    except httpx.HTTPError as error:
        raise Refused(502, f"cannot reach SNS: {type(error).__name__}") from None
    if response.status_code != 200:
        raise Refused(502, f"SNS answered {response.status_code}")
    return response.content


def _sns_certificate(url: str) -> Any:
    from cryptography import x509

    url = _sns_url(url, "SigningCertURL")
    if not url.endswith(".pem"):
        raise Refused(403, "the SigningCertURL is not a .pem file")
    if url not in _certificates:
        try:
            _certificates[url] = x509.load_pem_x509_certificate(_sns_get(url))
        except ValueError:
            raise Refused(403, "the signing certificate is not a PEM certificate") from None
    return _certificates[url]


def _sns_string_to_sign(message: dict[str, Any]) -> bytes:
    kind = message.get("Type")
    if kind == "Notification":
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message and
                   not (name == "Subject" and message[name] is None))
    return text.encode("utf-8")


def verify_sns(body: bytes, topics: list[str], *, now: float) -> dict[str, Any]:
    """The SNS message of the body once its signature verifies against the certificate at its SigningCertURL
    (fetched only from sns.<region>.amazonaws.com), its topic is one of ``topics`` and it is recent."""
    import base64
    import binascii
    from datetime import datetime

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    message = _json(body)
    if not isinstance(message, dict) or not all(isinstance(message.get(k), str) for k in
                                                ("Type", "MessageId", "TopicArn", "Timestamp", "Signature",
                                                 "SigningCertURL")):
        raise Refused(400, "not an SNS message")
    if message["TopicArn"] not in topics:
        raise Refused(403, "a topic not in SES_WEBHOOK_TOPIC_ARNS")
    version = str(message.get("SignatureVersion", "1"))
    if version not in ("1", "2"):
        raise Refused(403, f"SignatureVersion {version!r}")
    try:
        sent = datetime.fromisoformat(message["Timestamp"].replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise Refused(400, "the Timestamp is not a time") from None
    if abs(now - sent) > SNS_MAX_AGE:
        raise Refused(403, "the message is more than an hour old: stale or replayed")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except binascii.Error:
        raise Refused(403, "the Signature is not base64") from None
    key = _sns_certificate(message["SigningCertURL"]).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused(403, "the signing certificate's key is not RSA")
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()   # noqa: S303 - SignatureVersion 1 is SHA1
    try:
        key.verify(signature, _sns_string_to_sign(message), padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise Refused(403, "the signature does not verify") from None
    return message


def ses_events(message: dict[str, Any]) -> list[Event]:
    """The bounce and complaint events in a verified SNS Notification from SES."""
    notice = _json(str(message.get("Message", "")).encode())
    if not isinstance(notice, dict):
        raise Refused(400, "the SES notification is not a JSON object")
    kind = str(notice.get("notificationType") or notice.get("eventType") or "")
    events = []
    if kind == "Bounce" and isinstance(notice.get("bounce"), dict):
        bounce = notice["bounce"]
        bounce_type = str(bounce.get("bounceType", ""))
        if bounce_type not in ("Permanent", "Transient"):
            log.info("ses webhook: %r bounces are not acted on", bounce_type[:40])
            return []
        for recipient in bounce.get("bouncedRecipients") or []:
            if isinstance(recipient, dict) and "@" in str(recipient.get("emailAddress", "")):
                words = " ".join(str(recipient.get(k)) for k in ("status", "diagnosticCode") if recipient.get(k))
                events.append(Event(f"{message['MessageId']}:{recipient['emailAddress']}",
                                    "hard" if bounce_type == "Permanent" else "soft", str(recipient["emailAddress"]),
                                    f"ses: {words or bounce_type}"[:200]))
    elif kind == "Complaint" and isinstance(notice.get("complaint"), dict):
        complaint = notice["complaint"]
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        if feedback == "not-spam":
            return []
        for recipient in complaint.get("complainedRecipients") or []:
            if isinstance(recipient, dict) and "@" in str(recipient.get("emailAddress", "")):
                events.append(Event(f"{message['MessageId']}:{recipient['emailAddress']}", "complaint",
                                    str(recipient["emailAddress"]), f"spam complaint ({feedback}, ses)"))
    else:
        log.info("ses webhook: %r notifications are not acted on", kind[:40])
    return events


# --- the routes --------------------------------------------------------------------------------------------


def _apply(site: Site, events: list[Event], source: str) -> list[str]:
    from publisher.bounces.process import BounceProcessor

    processor = BounceProcessor(site)
    return [processor.apply_event(e.event_id, e.kind, e.email, e.reason, source=source) for e in events]


async def _handle(request: Request, source: str, secret_name: str,
                  parse: Callable[[bytes, Site], list[Event]]) -> Response:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    from publisher.web.state import web_state

    state = web_state(request)
    site = state.site
    if not site.config.get(secret_name):
        return JSONResponse({"error": "not found"}, status_code=404)
    body = await request.body()
    try:
        if source == "postmark":   # the credentials first: nothing of an unauthenticated body is read
            from publisher.bounces.settings import POSTMARK_WEBHOOK_PASSWORD, POSTMARK_WEBHOOK_USER

            check_basic_auth(request.headers.get("authorization"), str(site.config.get(POSTMARK_WEBHOOK_USER) or ""),
                             str(site.config.get(POSTMARK_WEBHOOK_PASSWORD)))
        if source == "sendgrid":
            from publisher.bounces.settings import SENDGRID_WEBHOOK_PUBLIC_KEY

            check_sendgrid_signature(body, str(site.config.get(SENDGRID_WEBHOOK_PUBLIC_KEY)),
                                     request.headers.get(SENDGRID_SIGNATURE), request.headers.get(SENDGRID_TIMESTAMP),
                                     now=time.time())
        if source == "ses":
            events = _ses(body, site)
        else:
            events = parse(body, site)
    except Refused as refusal:
        log.warning("%s webhook refused (%d): %s", source, refusal.status, refusal)
        return JSONResponse({"error": str(refusal)}, status_code=refusal.status)
    outcomes = await run_in_threadpool(state.with_database, lambda conn: _apply(site, events, source))
    return JSONResponse({"ok": True, "events": outcomes})


async def mailgun(request: Request) -> Response:
    from publisher.bounces.settings import MAILGUN_WEBHOOK_SIGNING_KEY

    def parse(body: bytes, site: Site) -> list[Event]:
        return mailgun_events(body, str(site.config.get(MAILGUN_WEBHOOK_SIGNING_KEY)), now=time.time())

    return await _handle(request, "mailgun", MAILGUN_WEBHOOK_SIGNING_KEY.name, parse)


async def postmark(request: Request) -> Response:
    from publisher.bounces.settings import POSTMARK_WEBHOOK_PASSWORD

    return await _handle(request, "postmark", POSTMARK_WEBHOOK_PASSWORD.name, lambda body, site: postmark_events(body))


async def sendgrid(request: Request) -> Response:
    from publisher.bounces.settings import SENDGRID_WEBHOOK_PUBLIC_KEY

    return await _handle(request, "sendgrid", SENDGRID_WEBHOOK_PUBLIC_KEY.name, lambda body, site: sendgrid_events(body))


def _ses(body: bytes, site: Site) -> list[Event]:
    from publisher.bounces.settings import SES_WEBHOOK_TOPIC_ARNS

    topics = [t.strip() for t in str(site.config.get(SES_WEBHOOK_TOPIC_ARNS) or "").split(",") if t.strip()]
    message = verify_sns(body, topics, now=time.time())
    if message["Type"] == "SubscriptionConfirmation":
        # Verified and for our topic: confirm by visiting SubscribeURL, which must be SNS's own.
        _sns_get(_sns_url(str(message.get("SubscribeURL", "")), "SubscribeURL"))
        log.info("ses webhook: subscribed to %s", message["TopicArn"])
        return []
    if message["Type"] != "Notification":
        log.info("ses webhook: %r messages are not acted on", str(message["Type"])[:40])
        return []
    return ses_events(message)


async def ses(request: Request) -> Response:
    from publisher.bounces.settings import SES_WEBHOOK_TOPIC_ARNS

    return await _handle(request, "ses", SES_WEBHOOK_TOPIC_ARNS.name, lambda body, site: [])

