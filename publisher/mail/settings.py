"""The SMTP_* settings and those of the other transports (EMAIL_TRANSPORT, SES_*, POSTMARK_*, MAILGUN_*), declared
once: the email channel lists them and transactional mail reads them."""

from __future__ import annotations

from publisher.settings import (Setting, parse_hostname, parse_line, parse_non_negative_float, parse_non_negative_int,
                                parse_port, parse_positive_float, parse_positive_int, parse_url)

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
                           "The most recipients in doubt after a crash is this times (SMTP_MESSAGES_PER_CONNECTION + 1): "
                           "one more per connection is claimed ahead, waiting for it.",
                           default=50, parse=parse_positive_int)
SMTP_MESSAGES_PER_CONNECTION = Setting(
    "SMTP_MESSAGES_PER_CONNECTION", "Messages in flight on one connection when the server offers PIPELINING: 2 "
    "sends the next message's MAIL/RCPT/DATA with the previous message's body (one round trip per message), 1 "
    "waits for each message's final reply. Without PIPELINING it is always 1.", default="2", choices=("1", "2"))
SMTP_RATE_PER_SECOND = Setting("SMTP_RATE_PER_SECOND", "Most messages per second to the SMTP server, for every "
                               "worker together (a token bucket in the site's database, per host and port; 0: as "
                               "fast as the server takes them).", default=0.0, parse=parse_non_negative_float)
SMTP_TIMEOUT = Setting("SMTP_TIMEOUT", "Seconds to wait for the SMTP server to answer.", default=30.0,
                       parse=parse_positive_float)
SMTP_RETRIES = Setting("SMTP_RETRIES", "How many times a message refused with a 4xx reply (or an ESP's throttling "
                       "or 5xx answer) is tried again.",
                       default=3, parse=parse_non_negative_int)
SMTP_RETRY_DELAY = Setting("SMTP_RETRY_DELAY", "Seconds before the first retry after a 4xx reply (or an ESP's "
                           "throttling); doubles each time.",
                           default=5.0, parse=parse_non_negative_float)
SMTP_BREAKER_FAILURES = Setting("SMTP_BREAKER_FAILURES", "Failures in a row, across all connections (a connection "
                                "lost or refused, a 4xx reply), that stop a bulletin run with the rest left pending "
                                "for a later run (0: never stop).", default=5, parse=parse_non_negative_int)

SMTP_SETTINGS = (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_SECURITY, SMTP_CONNECTIONS,
                 SMTP_MESSAGES_PER_CONNECTION, SMTP_RATE_PER_SECOND, SMTP_TIMEOUT, SMTP_RETRIES, SMTP_RETRY_DELAY,
                 SMTP_BREAKER_FAILURES)


def parse_resolver(text: str) -> list[tuple[str, int]]:
    """DNS_RESOLVER: ``IP[:PORT]`` (``[IPv6]:PORT``), several separated by commas."""
    import ipaddress

    servers = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            ipaddress.ip_address(host)
            number = int(port)
        except ValueError:
            raise ValueError(f"expected IP[:PORT] such as 127.0.0.1:5353, got {item!r}") from None
        if not 0 < number < 65536:
            raise ValueError(f"expected a port from 1 to 65535, got {item!r}")
        servers.append((host, number))
    if not servers:
        raise ValueError("expected IP[:PORT]")
    return servers


# --- the transport, and the email service providers' HTTP APIs (publisher/mail/esp.py) -------------------------

EMAIL_TRANSPORT = Setting("EMAIL_TRANSPORT", "How bulletins leave: smtp (SMTP_HOST; without it the Maildir "
                          "outbox/mail/), or an email service provider's HTTP API: ses (Amazon SES v2), postmark "
                          "or mailgun. A provider named here needs its settings (config check names the missing "
                          "one).", default="smtp", choices=("smtp", "ses", "postmark", "mailgun"))
ESP_TIMEOUT = Setting("ESP_TIMEOUT", "Seconds to wait for a provider's API to answer; no answer leaves the "
                      "delivery unconfirmed (the next run sends it again, reported as a possible duplicate). "
                      "4xx-like refusals (throttling) are retried per SMTP_RETRIES and SMTP_RETRY_DELAY.",
                      default=30.0, parse=parse_positive_float)

SES_REGION = Setting("SES_REGION", "Amazon SES region, e.g. eu-west-1 (EMAIL_TRANSPORT=ses).",
                     parse=lambda text: _region(text))
AWS_ACCESS_KEY_ID = Setting("AWS_ACCESS_KEY_ID", "AWS access key of an IAM user allowed ses:SendRawEmail "
                            "(EMAIL_TRANSPORT=ses).", secret=True)
AWS_SECRET_ACCESS_KEY = Setting("AWS_SECRET_ACCESS_KEY", "Its secret key.", secret=True)
AWS_SESSION_TOKEN = Setting("AWS_SESSION_TOKEN", "Session token, for temporary credentials only.", secret=True)
SES_CONFIGURATION_SET = Setting("SES_CONFIGURATION_SET", "SES configuration set to send with (its event "
                                "destinations publish bounces and complaints to SNS).", parse=parse_line)
SES_RATE_PER_SECOND = Setting("SES_RATE_PER_SECOND", "Most messages per second to SES: the account's maximum send "
                              "rate (14 for a new production account, 1 in the sandbox; 0: no pacing), for every "
                              "worker together (a token bucket in the site's database, per region).",
                              default=14.0, parse=parse_non_negative_float)
SES_CONNECTIONS = Setting("SES_CONNECTIONS", "SendEmail requests in flight at once (the most deliveries in doubt "
                          "after a crash).", default=10, parse=parse_positive_int)

POSTMARK_SERVER_TOKEN = Setting("POSTMARK_SERVER_TOKEN", "Postmark server API token (EMAIL_TRANSPORT=postmark).",
                                secret=True)
POSTMARK_MESSAGE_STREAM = Setting("POSTMARK_MESSAGE_STREAM", "Postmark message stream for bulletins: a broadcast "
                                  "stream (Postmark's rule for bulk mail), with its unsubscribe handling set to "
                                  "None so the site's own List-Unsubscribe is kept.", default="broadcast",
                                  parse=parse_line)
POSTMARK_TRANSACTIONAL_STREAM = Setting("POSTMARK_TRANSACTIONAL_STREAM", "Postmark message stream for one-off "
                                        "mail (subscription confirmations): a transactional stream.",
                                        default="outbound", parse=parse_line)
POSTMARK_BATCH_SIZE = Setting("POSTMARK_BATCH_SIZE", "Messages per /email/batch call (Postmark takes at most 500).",
                              default=500, parse=lambda text: _at_most(text, 500))
POSTMARK_RATE_PER_SECOND = Setting("POSTMARK_RATE_PER_SECOND", "Most messages per second to Postmark, for every "
                                   "worker together (0: no pacing; Postmark answers 429 when it wants fewer, and "
                                   "that is retried).",
                                   default=0.0, parse=parse_non_negative_float)

MAILGUN_API_KEY = Setting("MAILGUN_API_KEY", "Mailgun API key (EMAIL_TRANSPORT=mailgun).", secret=True)
MAILGUN_DOMAIN = Setting("MAILGUN_DOMAIN", "Mailgun sending domain, e.g. mg.example.org.", parse=parse_hostname)
MAILGUN_API_URL = Setting("MAILGUN_API_URL", "Mailgun API base: https://api.mailgun.net, or "
                          "https://api.eu.mailgun.net for a domain in the EU region.",
                          default="https://api.mailgun.net", parse=parse_url)
MAILGUN_RATE_PER_SECOND = Setting("MAILGUN_RATE_PER_SECOND", "Most messages per second to Mailgun (one "
                                  "messages.mime call each; 0: no pacing), for every worker together.", default=10.0,
                                  parse=parse_non_negative_float)
MAILGUN_CONNECTIONS = Setting("MAILGUN_CONNECTIONS", "messages.mime requests in flight at once.", default=4,
                              parse=parse_positive_int)

ESP_SETTINGS = (EMAIL_TRANSPORT, ESP_TIMEOUT, SES_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
                SES_CONFIGURATION_SET, SES_RATE_PER_SECOND, SES_CONNECTIONS, POSTMARK_SERVER_TOKEN,
                POSTMARK_MESSAGE_STREAM, POSTMARK_TRANSACTIONAL_STREAM, POSTMARK_BATCH_SIZE, POSTMARK_RATE_PER_SECOND, MAILGUN_API_KEY,
                MAILGUN_DOMAIN, MAILGUN_API_URL, MAILGUN_RATE_PER_SECOND, MAILGUN_CONNECTIONS)
# `publisher config check --dns` (publisher/dnscheck.py)
DNS_RESOLVER = Setting("DNS_RESOLVER", "DNS server(s) `config check --dns` asks, as IP[:PORT] separated by commas "
                       "(default: the system's, from /etc/resolv.conf).", parse=parse_resolver)
DNS_TIMEOUT = Setting("DNS_TIMEOUT", "Seconds `config check --dns` waits for each DNS answer.", default=5.0,
                      parse=parse_positive_float)
DNS_SETTINGS = (DNS_RESOLVER, DNS_TIMEOUT)

#: What each provider cannot send without (config check names the first one missing).
ESP_REQUIRED = {
    "ses": ("SES_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "postmark": ("POSTMARK_SERVER_TOKEN",),
    "mailgun": ("MAILGUN_API_KEY", "MAILGUN_DOMAIN"),
}


def _at_most(text: str, most: int) -> int:
    value = parse_positive_int(text)
    if value > most:
        raise ValueError(f"expected a whole number from 1 to {most}, got {text!r}")
    return value


def _region(text: str) -> str:
    """An AWS region name such as eu-west-1 or ap-northeast-2 (it becomes part of the API's host name)."""
    import re

    value = text.strip()
    if not re.fullmatch(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}", value):
        raise ValueError(f"expected an AWS region such as eu-west-1, got {text!r}")
    return value
