"""Bounce mail as MTAs and feedback loops write it: a Postfix DSN (RFC 3464), an ARF complaint (RFC 5965) as
Yahoo/Microsoft send it (often without Original-Rcpt-To), an Exim bounce without a DSN, an out-of-office reply.
Bytes with CRLF line ends, as they arrive in a Maildir."""

from __future__ import annotations

import mailbox
from pathlib import Path


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def dsn(recipient: str, *, to: str = "bounces@unpog.example", status: str = "5.1.1",
        action: str = "failed", diagnostic: str | None = None, message_id: str = "<20261201.dsn1@mx.example.org>",
        original_message_id: str = "<abc123@unpog.example>") -> bytes:
    """A Postfix-style non-delivery report for ``recipient``, sent to ``to`` (the envelope sender: VERP)."""
    diagnostic = diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown in " \
                               "virtual mailbox table"
    return crlf(f"""Return-Path: <>
Delivered-To: {to}
Received: by mx.example.org (Postfix) id 4XyZ1; Tue,  1 Dec 2026 10:00:02 +0000 (UTC)
Date: Tue,  1 Dec 2026 10:00:02 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4XyZ1.1764583202/mx.example.org"
Content-Transfer-Encoding: 8bit
Message-Id: {message_id}

This is a MIME-encapsulated message.

--4XyZ1.1764583202/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{recipient}>: host mail.example.org[192.0.2.25] said: {diagnostic.split(';', 1)[-1].strip()}

--4XyZ1.1764583202/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 4XyZ1
X-Postfix-Sender: rfc822; {to}
Arrival-Date: Tue,  1 Dec 2026 10:00:01 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.org
Diagnostic-Code: {diagnostic}

--4XyZ1.1764583202/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <{to}>
From: UNPOG News <news@unpog.example>
To: {recipient}
Subject: News from UNPOG
Message-ID: {original_message_id}

--4XyZ1.1764583202/mx.example.org--
""")


def arf(original_to: str, *, rcpt_to: str | None = None, return_path: str = "news@unpog.example",
        feedback_type: str = "abuse", message_id: str = "<fbl-1@feedback.example.net>",
        original_message_id: str = "<abc123@unpog.example>") -> bytes:
    """An ARF abuse report with the original attached; ``rcpt_to``: its Original-Rcpt-To (None: redacted out,
    as many providers do)."""
    rcpt_line = f"Original-Rcpt-To: {rcpt_to}\n" if rcpt_to else ""
    return crlf(f"""Return-Path: <fbl@feedback.example.net>
Date: Tue, 01 Dec 2026 12:00:00 +0000
From: Feedback Loop <fbl@feedback.example.net>
To: abuse@unpog.example
Subject: FW: News from UNPOG
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Tue, 01 Dec 2026 10:00:00 +0000.
For more information about this format please see
https://www.rfc-editor.org/rfc/rfc5965.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{return_path}>
{rcpt_line}Arrival-Date: Tue, 01 Dec 2026 10:00:00 +0000
Reported-Domain: unpog.example
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

Return-Path: <{return_path}>
From: UNPOG News <news@unpog.example>
To: {original_to}
Subject: News from UNPOG
Message-ID: {original_message_id}
Date: Tue, 01 Dec 2026 09:59:00 +0000
Content-Type: text/plain; charset=utf-8

The bulletin's text.

--part1_13d.2e68ed54_boundary--
""")


def exim_bounce(recipient: str, *, message_id: str = "<E1abc@mx.example.org>") -> bytes:
    """An Exim bounce without a DSN part (flufl.bounce's Exim detector reads X-Failed-Recipients)."""
    return crlf(f"""Return-Path: <>
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: bounces@unpog.example
Subject: Mail delivery failed: returning message to sender
Message-Id: {message_id}
X-Failed-Recipients: {recipient}
Auto-Submitted: auto-replied
Date: Tue, 01 Dec 2026 10:00:00 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 User unknown
""")


def out_of_office(sender: str, *, message_id: str = "<ooo-1@example.org>") -> bytes:
    return crlf(f"""From: {sender}
To: bounces@unpog.example
Subject: Automatic reply: News from UNPOG
Auto-Submitted: auto-replied
X-Autoreply: yes
Message-ID: {message_id}
Date: Tue, 01 Dec 2026 10:00:00 +0000

I am out of the office until 10 December with limited access to email.
""")


def write_maildir(folder: Path, *messages: bytes) -> mailbox.Maildir:
    """A Maildir holding these messages in new/, as a mail server delivers them."""
    box = mailbox.Maildir(folder, create=True)
    for data in messages:
        box.add(data)
    return box
