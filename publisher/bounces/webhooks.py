"""ESP webhooks in ``publisher serve``: bounce and complaint events, each verified before anything changes.

* ``POST /webhooks/mailgun``: HMAC-SHA256 of ``timestamp + token`` under MAILGUN_WEBHOOK_SIGNING_KEY
  (Mailgun's webhook signature); a timestamp more than ``MAX_AGE`` seconds away from now is refused, and each
  token acts once (a replay changes nothing).
* ``POST /webhooks/postmark``: HTTP Basic auth (POSTMARK_WEBHOOK_USER / _PASSWORD, put in the webhook URL);
  each event acts once by its ID.
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
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        raise Refused(403, "the timestamp is not a number") from None
    if age > MAX_AGE:
        raise Refused(403, f"the timestamp is {age:.0f} s away from now (more than {MAX_AGE}): stale or replayed")
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
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        raise Refused(403, "the timestamp is not a number") from None
    if age > MAX_AGE:
        raise Refused(403, f"the timestamp is {age:.0f} s away from now (more than {MAX_AGE}): stale or replayed")
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

