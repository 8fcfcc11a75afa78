"""The SMTP_* settings, declared once: the email channel lists them and transactional mail reads them."""

from __future__ import annotations

from publisher.settings import (Setting, parse_hostname, parse_line, parse_non_negative_float, parse_non_negative_int,
                                parse_port, parse_positive_float, parse_positive_int)

SMTP_HOST = Setting("SMTP_HOST", "SMTP server for bulletins; without it mail goes to the Maildir outbox/mail/.",
                    parse=parse_hostname)
SMTP_PORT = Setting("SMTP_PORT", "SMTP port. Default: 465 with SMTP_SECURITY=ssl, 587 with starttls, 25 with none.",
                    parse=parse_port)
SMTP_USERNAME = Setting("SMTP_USERNAME", "SMTP login name (no login when unset).", parse=parse_line)
SMTP_PASSWORD = Setting("SMTP_PASSWORD", "SMTP password.", secret=True)
SMTP_SECURITY = Setting("SMTP_SECURITY", "How the connection is protected: starttls, ssl or none.",
                        default="starttls", choices=("starttls", "ssl", "none"))
SMTP_CONNECTIONS = Setting("SMTP_CONNECTIONS", "Most SMTP connections open at once (opened as the run needs them; "
                           "50 suits an ESP such as Amazon SES or Postmark; lower it to 2-4 for a strict relay). "
                           "The most recipients in doubt after a crash is this times SMTP_MESSAGES_PER_CONNECTION.",
                           default=50, parse=parse_positive_int)
SMTP_MESSAGES_PER_CONNECTION = Setting(
    "SMTP_MESSAGES_PER_CONNECTION", "Messages in flight on one connection when the server offers PIPELINING: 2 "
    "sends the next message's MAIL/RCPT/DATA with the previous message's body (one round trip per message), 1 "
    "waits for each message's final reply. Without PIPELINING it is always 1.", default="2", choices=("1", "2"))
SMTP_RATE_PER_SECOND = Setting("SMTP_RATE_PER_SECOND", "Most messages per second (0: as fast as the server takes "
                               "them).", default=0.0, parse=parse_non_negative_float)
SMTP_TIMEOUT = Setting("SMTP_TIMEOUT", "Seconds to wait for the SMTP server to answer.", default=30.0,
                       parse=parse_positive_float)
SMTP_RETRIES = Setting("SMTP_RETRIES", "How many times a message refused with a 4xx reply is tried again.",
                       default=3, parse=parse_non_negative_int)
SMTP_RETRY_DELAY = Setting("SMTP_RETRY_DELAY", "Seconds before the first retry after a 4xx reply; doubles each time.",
                           default=5.0, parse=parse_non_negative_float)
SMTP_BREAKER_FAILURES = Setting("SMTP_BREAKER_FAILURES", "Failures in a row, across all connections (a connection "
                                "lost or refused, a 4xx reply), that stop a bulletin run with the rest left pending "
                                "for a later run (0: never stop).", default=5, parse=parse_non_negative_int)

SMTP_SETTINGS = (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_SECURITY, SMTP_CONNECTIONS,
                 SMTP_MESSAGES_PER_CONNECTION, SMTP_RATE_PER_SECOND, SMTP_TIMEOUT, SMTP_RETRIES, SMTP_RETRY_DELAY,
                 SMTP_BREAKER_FAILURES)
