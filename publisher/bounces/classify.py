"""What one bounce-mailbox message says: a bounce (hard or soft), a complaint, a delay, an auto-reply, or nothing
we can tell (``unclassified``, kept for a person).

* DSNs (RFC 3464, ``multipart/report; report-type=delivery-status``) and the older formats of many MTAs are read
  with Mailman's ``flufl.bounce``; for a DSN the per-recipient blocks also give the status code and the
  server's words, so ``5.x.x`` is a hard bounce and ``4.x.x`` (or ``x.2.2``, mailbox full) a soft one, and an
  ``Action: delayed`` notice suppresses nobody.
* Complaints (ARF, RFC 5965, ``report-type=feedback-report``) are read with the standard library: the reader
  from ``Original-Rcpt-To``, else the VERP token of ``Original-Mail-From`` or of the attached original's
  Return-Path, else the original's ``To:`` (many providers redact or omit ``Original-Rcpt-To``).
* Auto-replies (out of office, ``Auto-Submitted``) are recognized and counted, never acted on.

Nothing here touches storage: ``publisher.bounces.process`` decides what a verdict does to an address.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from publisher.bounces.verp import Verp, VerpToken

Kind = Literal["bounce", "complaint", "delayed", "auto_reply", "ignored", "unclassified"]
KINDS: tuple[Kind, ...] = ("bounce", "complaint", "delayed", "auto_reply", "ignored", "unclassified")

# Headers where a bounce's VERP address (its envelope recipient) is found, as MTAs and mail stores write it.
ENVELOPE_HEADERS = ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "x-delivered-to",
                    "x-rcpt-to", "original-recipient", "cc")
# ARF feedback types that are a reader's complaint (RFC 5965 section 7.3); auth-failure (RFC 6591) and
# not-spam are reports about the mail, not a wish to stop getting it.
COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other", "opt-out", "unsubscribe")
NOT_COMPLAINTS = ("auth-failure", "not-spam", "dkim")
OUT_OF_OFFICE = re.compile(
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?repl|autoreply|auto-response|autoresponse|"
    r"vacation|away from (my|the) (office|desk)|abwesenheit|absence|absent|부재|자동\s*응답|자동\s*회신",
    re.IGNORECASE)


@dataclass
class Finding:
    """One failed recipient of a bounce: ``hard`` or ``soft``, the addresses the report names, and why."""

    severity: Literal["hard", "soft"]
    addresses: list[str]
    reason: str


@dataclass
class Verdict:
    """What one message says."""

    kind: Kind
    message_id: str
    findings: list[Finding] = field(default_factory=list)
    tokens: list[VerpToken] = field(default_factory=list)   # VERP tokens found (not yet believed)
    # A complaint's candidates for its reader, best first: Original-Rcpt-To, then the original's To:.
    complainants: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    reason: str = ""                                        # one line: why (a complaint's type, a problem)


def classify(data: bytes, verp: Verp | None = None) -> Verdict:
    """The verdict on one message (its raw bytes). Never raises: a message that cannot be read is
    ``unclassified`` with the reason."""
    import email

    message_id = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        message = email.message_from_bytes(data)   # compat32: the Message class flufl.bounce reads
        found_id = _one_line(str(message.get("Message-ID", "") or "")).strip()
        if found_id:
            message_id = found_id[:500]
        return _classify(message, message_id, verp)
    except Exception as error:   # a malformed message must never stop the run; it is kept for a person
        return Verdict("unclassified", message_id, reason=f"cannot be read ({type(error).__name__}: "
                                                          f"{_one_line(str(error))[:200]})")


def _classify(message: Message, message_id: str, verp: Verp | None) -> Verdict:
    tokens = _tokens(message, ENVELOPE_HEADERS, verp)
    if message.get_content_type() == "multipart/report":
        report = str(message.get_param("report-type", "") or "").lower()
        parts = {part.get_content_type() for part in message.walk()}
        if report == "feedback-report" or "message/feedback-report" in parts:
            return _arf(message, message_id, verp, tokens)
        if report == "delivery-status" or "message/delivery-status" in parts:
            return _dsn(message, message_id, tokens)
    if _looks_like_auto_reply(message, strong=True):
        return Verdict("auto_reply", message_id, tokens=tokens, reason=_subject(message))
    temporary, permanent = _flufl(message)
    if permanent:
        reason = _first_line(message.get("X-Failed-Recipients")) or f"permanent failure: {_subject(message)}"
        return Verdict("bounce", message_id, [Finding("hard", sorted(permanent), reason)], tokens)
    if temporary:
        return Verdict("delayed", message_id, tokens=tokens, reason=_subject(message))
    if _looks_like_auto_reply(message, strong=False):
        return Verdict("auto_reply", message_id, tokens=tokens, reason=_subject(message))
    return Verdict("unclassified", message_id, tokens=tokens,
                   reason=f"not a bounce, complaint or auto-reply we recognize: {_subject(message)}")


# --- DSN ---------------------------------------------------------------------------------------------------


def _dsn(message: Message, message_id: str, tokens: list[VerpToken]) -> Verdict:
    temporary, permanent = _flufl(message)
    findings: list[Finding] = []
    delayed = False
    for block in _recipient_blocks(message):
        action = str(block.get("Action", "")).strip().lower()
        address = _dsn_address(block)
        status = str(block.get("Status", "")).strip().split(" ")[0]
        diagnostic = _one_line(str(block.get("Diagnostic-Code", "") or ""))
        diagnostic = diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic else diagnostic
        if action.startswith("delayed"):
            delayed = True
            continue
        if not action.startswith(("fail", "error")):
            continue   # delivered, relayed, expanded: nothing went wrong
        soft = status.startswith("4") or status[1:].startswith(".2.2")   # x.2.2: mailbox full
        reason = " ".join(part for part in (status, diagnostic[:200]) if part) or "delivery failed"
        findings.append(Finding("soft" if soft else "hard", [address] if address else [], reason))
    if not findings and permanent:   # blocks flufl.bounce could read and we could not
        findings = [Finding("hard", sorted(permanent), "delivery failed (DSN)")]
    if findings:
        return Verdict("bounce", message_id, findings, tokens)
    if delayed or temporary:
        return Verdict("delayed", message_id, tokens=tokens, reason="delivery delayed; the server keeps trying")
    blocks = _recipient_blocks(message)
    if blocks:
        return Verdict("ignored", message_id, tokens=tokens, reason="a DSN that reports no failure")
    return Verdict("unclassified", message_id, tokens=tokens, reason="a delivery report without a recipient block")


def _recipient_blocks(message: Message) -> list[Message]:
    blocks: list[Message] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            # The first block is about the message; each later one is about a recipient.
            blocks += [block for block in payload[1:] if isinstance(block, Message)]
            if payload and isinstance(payload[0], Message) and payload[0].get("Final-Recipient"):
                blocks.insert(0, payload[0])   # a report without the per-message block
    return blocks


def _dsn_address(block: Message) -> str | None:
    for header in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
        value = str(block.get(header, "") or "")
        kind, _, address = value.partition(";")
        if address and kind.strip().lower() in ("rfc822", "") and "@" in address:
            return address.strip().strip("<>")
    return None


def _flufl(message: Message) -> tuple[list[str], list[str]]:
    """flufl.bounce's temporary and permanent failures, as text (a detector that fails counts as none)."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception:   # one odd message must not stop the run; the others still classify it
        return [], []
    return ([a.decode("ascii", "replace") for a in temporary], [a.decode("ascii", "replace") for a in permanent])


# --- ARF ---------------------------------------------------------------------------------------------------


def _arf(message: Message, message_id: str, verp: Verp | None, tokens: list[VerpToken]) -> Verdict:
    report: Message | None = None
    original: Message | None = None
    import email

    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/feedback-report" and report is None:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                report = payload[0]
            elif isinstance(payload, str):
                report = email.message_from_string(payload)
        elif kind in ("message/rfc822", "message/rfc822-headers", "text/rfc822-headers") and original is None:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                original = payload[0]
            elif isinstance(payload, str):
                original = email.message_from_string(payload.lstrip("\r\n"))
    if report is None or not report.keys():
        return Verdict("unclassified", message_id, tokens=tokens,
                       reason="a feedback report without its message/feedback-report part")
    feedback = str(report.get("Feedback-Type", "") or "").strip().lower()
    if not feedback:
        return Verdict("unclassified", message_id, tokens=tokens, reason="a feedback report without Feedback-Type")
    if feedback in NOT_COMPLAINTS or feedback not in COMPLAINT_TYPES:
        return Verdict("ignored", message_id, tokens=tokens, reason=f"feedback type {feedback}: not a complaint")
    found = list(tokens)
    found += [t for t in _tokens(report, ("original-mail-from",), verp) if t not in found]
    if original is not None:
        found += [t for t in _tokens(original, ("return-path", "sender", "list-unsubscribe"), verp)
                  if t not in found]
    recipients = [_bare(value) for value in report.get_all("Original-Rcpt-To", []) if "@" in str(value)]
    to = _addresses(original.get_all("To", []) if original is not None else [])
    where = _first_line(report.get("Reported-Domain")) or _first_line(report.get("Source")) or \
        _first_line(report.get("User-Agent"))
    reason = f"spam complaint ({feedback})" + (f" via {where}" if where else "")
    return Verdict("complaint", message_id, tokens=found, complainants=recipients, fallback=to, reason=reason[:200])


# --- auto-replies ------------------------------------------------------------------------------------------


def _looks_like_auto_reply(message: Message, *, strong: bool) -> bool:
    """``strong``: headers only auto-responders write, or an out-of-office subject (and no failure report);
    else also ``Auto-Submitted`` alone (which MTAs put on their bounces too, so it is checked last)."""
    if message.get("X-Failed-Recipients"):
        return False
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    precedence = str(message.get("Precedence", "") or "").strip().lower()
    if precedence == "auto_reply" or OUT_OF_OFFICE.search(_subject(message)):
        return True
    if strong:
        return False
    submitted = str(message.get("Auto-Submitted", "") or "").strip().lower()
    return bool(submitted) and not submitted.startswith("no")


# --- helpers -----------------------------------------------------------------------------------------------


def _tokens(message: Message, headers: tuple[str, ...], verp: Verp | None) -> list[VerpToken]:
    if verp is None:
        return []
    found: list[VerpToken] = []
    for header in headers:
        for value in message.get_all(header, []):
            for token in verp.find(str(value)):
                if token not in found:
                    found.append(token)
    return found


def _addresses(values: Sequence[object]) -> list[str]:
    from email.utils import getaddresses

    return [address for _, address in getaddresses([str(v) for v in values]) if "@" in address]


def _bare(value: object) -> str:
    from email.utils import parseaddr

    text = _one_line(str(value)).strip()
    if ";" in text:   # rfc822;reader@example.org, as some write it
        text = text.split(";", 1)[1]
    return parseaddr(text)[1] or text.strip("<> ")


def _subject(message: Message) -> str:
    from email.header import decode_header, make_header

    raw = str(message.get("Subject", "") or "")
    try:
        text = str(make_header(decode_header(raw)))
    except Exception:   # a broken encoded-word: the raw text is good enough for a log line
        text = raw
    return _one_line(text)[:200]


def _first_line(value: object) -> str:
    return _one_line(str(value or "")).strip()[:200]


def _one_line(text: str) -> str:
    return " ".join(text.split())
