"""The BOUNCE_* settings, declared once: the email channel lists them (``config check``, ``.env.example``)."""

from __future__ import annotations

from publisher.settings import (Setting, parse_hostname, parse_line, parse_non_negative_float,
                                parse_non_negative_int, parse_port, parse_positive_int)


def parse_bounce_address(text: str) -> str:
    """``local@domain``, ASCII, with no ``+`` in the local part (VERP adds ``+<token>`` there)."""
    value = parse_line(text).strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or not value.isascii() or " " in value or "<" in value:
        raise ValueError(f"expected an address such as bounces@example.org, got {text!r}")
    if "+" in local:
        raise ValueError(f"{text!r}: the local part must not contain '+' (VERP adds +<token> there)")
    parse_hostname(domain)
    return f"{local}@{domain.lower()}"


BOUNCE_ADDRESS = Setting(
    "BOUNCE_ADDRESS", "Envelope sender (Return-Path) of the bulletins, e.g. bounces@example.org: each message's "
    "is bounces+<signed token>@example.org naming its subscriber (VERP), so every bounce names its reader. Its "
    "domain needs SPF for the sending server. Default: the From address, without VERP.",
    parse=parse_bounce_address)
BOUNCE_TOKEN_DAYS = Setting("BOUNCE_TOKEN_DAYS", "Days a VERP token is believed (a bounce or complaint about an "
                            "older message is matched by address only).", default=180, parse=parse_positive_int)
BOUNCE_SOFT_LIMIT = Setting("BOUNCE_SOFT_LIMIT", "Soft bounces (mailbox full, a 4.x.x DSN) within "
                            "BOUNCE_SOFT_DAYS that suppress an address.", default=3, parse=parse_positive_int)
BOUNCE_SOFT_DAYS = Setting("BOUNCE_SOFT_DAYS", "The window, in days, in which BOUNCE_SOFT_LIMIT soft bounces "
                           "suppress an address.", default=30, parse=parse_positive_int)
BOUNCE_GUARD_RATE = Setting("BOUNCE_GUARD_RATE", "Percent of hard bounces (5xx at RCPT TO) in one bulletin run "
                            "that stops the run, the rest left pending (0: never stop).", default=5.0,
                            parse=parse_non_negative_float)
BOUNCE_GUARD_AFTER = Setting("BOUNCE_GUARD_AFTER", "Messages a run sends before BOUNCE_GUARD_RATE is applied.",
                             default=500, parse=parse_non_negative_int)
BOUNCE_MAILDIR = Setting("BOUNCE_MAILDIR", "Maildir where bounce and complaint mail arrives: `publisher bounces "
                         "process` reads it by default, and `publisher worker` every BOUNCE_INTERVAL minutes.",
                         parse=parse_line)
BOUNCE_IMAP_HOST = Setting("BOUNCE_IMAP_HOST", "IMAP server of the bounce mailbox (IMAPS, TLS only).",
                           parse=parse_hostname)
BOUNCE_IMAP_PORT = Setting("BOUNCE_IMAP_PORT", "IMAPS port.", default=993, parse=parse_port)
BOUNCE_IMAP_USER = Setting("BOUNCE_IMAP_USER", "IMAP login name.", parse=parse_line)
BOUNCE_IMAP_PASSWORD = Setting("BOUNCE_IMAP_PASSWORD", "IMAP password.", secret=True)
BOUNCE_IMAP_FOLDER = Setting("BOUNCE_IMAP_FOLDER", "IMAP folder to read.", default="INBOX", parse=parse_line)
BOUNCE_POP3_HOST = Setting("BOUNCE_POP3_HOST", "POP3 server of the bounce mailbox (POP3S, TLS only).",
                           parse=parse_hostname)
BOUNCE_POP3_PORT = Setting("BOUNCE_POP3_PORT", "POP3S port.", default=995, parse=parse_port)
BOUNCE_POP3_USER = Setting("BOUNCE_POP3_USER", "POP3 login name.", parse=parse_line)
BOUNCE_POP3_PASSWORD = Setting("BOUNCE_POP3_PASSWORD", "POP3 password.", secret=True)
BOUNCE_INTERVAL = Setting("BOUNCE_INTERVAL", "Minutes between two runs of bounce processing by `publisher "
                          "worker` when BOUNCE_MAILDIR or BOUNCE_IMAP_HOST is set (0: never).", default=15,
                          parse=parse_non_negative_int)

_MAILBOX_SETTINGS = (BOUNCE_ADDRESS, BOUNCE_TOKEN_DAYS, BOUNCE_SOFT_LIMIT, BOUNCE_SOFT_DAYS, BOUNCE_GUARD_RATE,
                   BOUNCE_GUARD_AFTER, BOUNCE_MAILDIR, BOUNCE_IMAP_HOST, BOUNCE_IMAP_PORT, BOUNCE_IMAP_USER,
                   BOUNCE_IMAP_PASSWORD, BOUNCE_IMAP_FOLDER, BOUNCE_POP3_HOST,
                   BOUNCE_POP3_PORT, BOUNCE_POP3_USER, BOUNCE_POP3_PASSWORD, BOUNCE_INTERVAL)

# --- ESP webhooks in `publisher serve` (each endpoint answers 404 until its secret is set) ----------------------
MAILGUN_WEBHOOK_SIGNING_KEY = Setting("MAILGUN_WEBHOOK_SIGNING_KEY", "Mailgun's HTTP webhook signing key: POST "
                                      "/webhooks/mailgun is verified with it (HMAC-SHA256 over timestamp and "
                                      "token; a timestamp older than 5 minutes is refused).", secret=True)
POSTMARK_WEBHOOK_USER = Setting("POSTMARK_WEBHOOK_USER", "User name of the Basic auth Postmark sends to POST "
                                "/webhooks/postmark (put it in the webhook URL's user part).", parse=parse_line)
POSTMARK_WEBHOOK_PASSWORD = Setting("POSTMARK_WEBHOOK_PASSWORD", "Password of that Basic auth.", secret=True)

SENDGRID_WEBHOOK_PUBLIC_KEY = Setting("SENDGRID_WEBHOOK_PUBLIC_KEY", "The verification key SendGrid shows for its "
                                      "signed Event Webhook (base64, ECDSA P-256): POST /webhooks/sendgrid is "
                                      "verified with it; a timestamp more than 5 minutes off is refused.",
                                      parse=parse_line)

SES_WEBHOOK_TOPIC_ARNS = Setting("SES_WEBHOOK_TOPIC_ARNS", "The Amazon SNS topics (ARNs, comma-separated) whose "
                                 "SES bounce and complaint notifications POST /webhooks/ses accepts; each message's "
                                 "signature is verified against a certificate fetched only from "
                                 "sns.<region>.amazonaws.com.", parse=parse_line)

WEBHOOK_SETTINGS = (MAILGUN_WEBHOOK_SIGNING_KEY, POSTMARK_WEBHOOK_USER, POSTMARK_WEBHOOK_PASSWORD,
                    SENDGRID_WEBHOOK_PUBLIC_KEY, SES_WEBHOOK_TOPIC_ARNS)
BOUNCE_SETTINGS: tuple[Setting, ...] = _MAILBOX_SETTINGS + WEBHOOK_SETTINGS
