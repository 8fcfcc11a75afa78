"""Reading bounce mail: DSNs (flufl.bounce + the DSN's own status), ARF complaints, auto-replies, and bad input."""

from __future__ import annotations

import pytest

from publisher.bounces.classify import classify
from tests.bounces.mail import arf, crlf, dsn, exim_bounce, out_of_office


def test_a_dsn_5_1_1_is_a_hard_bounce_with_the_server_words() -> None:
    verdict = classify(dsn("gone@example.org"))
    assert verdict.kind == "bounce" and verdict.message_id == "<20261201.dsn1@mx.example.org>"
    [finding] = verdict.findings
    assert finding.severity == "hard" and finding.addresses == ["gone@example.org"]
    assert finding.reason.startswith("5.1.1 550 5.1.1 <gone@example.org>: Recipient address rejected")


@pytest.mark.parametrize("status", ["4.2.2", "5.2.2", "4.4.7"])
def test_a_transient_failure_is_a_soft_bounce(status: str) -> None:
    verdict = classify(dsn("full@example.org", status=status, diagnostic=f"smtp; 552 {status} Mailbox full"))
    assert verdict.kind == "bounce" and [f.severity for f in verdict.findings] == ["soft"]


def test_a_delay_notice_suppresses_nobody() -> None:
    verdict = classify(dsn("slow@example.org", action="delayed", status="4.4.1",
                           diagnostic="smtp; 421 4.4.1 Connection timed out"))
    assert verdict.kind == "delayed" and verdict.findings == []


def test_a_bounce_without_a_dsn_is_read_by_flufl_bounce() -> None:
    verdict = classify(exim_bounce("gone@example.org"))
    assert verdict.kind == "bounce"
    assert verdict.findings[0].severity == "hard" and verdict.findings[0].addresses == ["gone@example.org"]


def test_an_arf_complaint_names_its_reader_from_original_rcpt_to_or_the_original() -> None:
    named = classify(arf("Reader <reader@example.org>", rcpt_to="reader@example.org"))
    assert named.kind == "complaint" and named.complainants == ["reader@example.org"]
    assert named.reason == "spam complaint (abuse) via unpog.example"
    redacted = classify(arf("Reader <reader@example.org>"))
    assert redacted.kind == "complaint" and redacted.complainants == [] and redacted.fallback == ["reader@example.org"]


def test_reports_that_are_not_complaints_are_ignored() -> None:
    assert classify(arf("reader@example.org", feedback_type="auth-failure")).kind == "ignored"
    assert classify(arf("reader@example.org", feedback_type="not-spam")).kind == "ignored"


def test_an_out_of_office_reply_is_an_auto_reply() -> None:
    assert classify(out_of_office("reader@example.org")).kind == "auto_reply"
    korean = crlf("From: kim@example.kr\nTo: bounces@unpog.example\nSubject: =?UTF-8?B?67aA7J6sIOykkQ==?=\n"
                  "Auto-Submitted: auto-replied\nMessage-ID: <k@example.kr>\n\n12월 10일까지 부재 중입니다.\n")
    assert classify(korean).kind == "auto_reply"


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\xff\xfe garbage that is not mail at all",
    crlf("Message-ID: <r@x>\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
         "--b\nContent-Type: text/plain\n\nno status part\n--b--\n"),
    crlf("Message-ID: <f@x>\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\n\n"
         "--b\nContent-Type: message/feedback-report\n\nUser-Agent: x\n\n--b--\n"),
    crlf("Message-ID: <q@x>\nSubject: hello\n\nJust a question about the newsletter.\n"),
    crlf("Content-Type: multipart/report; report-type=delivery-status; boundary=\"unclosed\n\n--unclosed\n"),
], ids=["empty", "binary", "dsn-without-status", "arf-without-type", "a-question", "broken-mime"])
def test_what_cannot_be_classified_is_unclassified_never_an_exception(data: bytes) -> None:
    verdict = classify(data)
    assert verdict.kind == "unclassified"
    assert verdict.reason and "\n" not in verdict.reason
    assert verdict.message_id   # the bytes' hash when there is no Message-ID: still handled once
