"""Every core setting, declared once: its name, default, help text and whether it is a secret.

Channels declare their own settings on their class (``Channel.settings``);
``publisher.setting_registry`` finds any of them by name.
Values come from, in rising order: the default, the site's ``publisher.toml``, the site's ``.env``, the
environment. Secrets are refused in ``publisher.toml`` and never printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class _NotGiven:
    """Sentinel for "no default": the setting is unset unless someone sets it."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Any = _NotGiven()


@dataclass(frozen=True)
class Setting:
    """One setting: name, help text, default, and how to parse the text given."""

    name: str
    help: str
    default: Any = NOT_GIVEN
    secret: bool = False
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    # How ``config check`` shows a value that is not a secret as a whole but may hold one (a database URL's
    # password); None shows it as it is.
    show: Callable[[str], str] | None = None


# --- parsers: each raises ValueError("expected ...") on bad input -------------------------------------------


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def parse_positive_int(text: str) -> int:
    value = parse_int(text)
    if value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {text!r}")
    return value


def parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def parse_non_negative_int(text: str) -> int:
    value = parse_int(text)
    if value < 0:
        raise ValueError(f"expected a whole number of 0 or more, got {text!r}")
    return value


def parse_non_negative_float(text: str) -> float:
    value = parse_float(text)
    if not 0 <= value < float("inf"):   # also refuses nan, which compares false with everything
        raise ValueError(f"expected a number of 0 or more, got {text!r}")
    return value


def parse_positive_float(text: str) -> float:
    """A duration that must pass: socket and HTTP timeouts refuse 0 and negative values deep in a send."""
    value = parse_float(text)
    if not 0 < value < float("inf"):
        raise ValueError(f"expected a number greater than 0, got {text!r}")
    return value


# Characters that would let a value written into a header or a one-line field start a line of its own (CR,
# LF, NEL, U+2028/9) or show other text than it holds (NUL, other C0/C1 controls, DEL, bidi overrides).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _control_character(text: str) -> str | None:
    """The first control character in ``text``, or None."""
    import unicodedata

    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return char
    return None


def parse_line(text: str) -> str:
    """One line of text (a site title, a description): it ends up in mail headers and one-line fields."""
    char = _control_character(text)
    if char is not None:
        raise ValueError(f"expected one line of text without control characters, got {text!r} "
                         f"(holds U+{ord(char):04X})")
    return text


def parse_url(text: str) -> str:
    from urllib.parse import urlsplit

    value = text.strip().rstrip("/")
    expected = f"expected an http:// or https:// URL, got {text!r}"
    if _control_character(value) is not None or any(char.isspace() for char in value):
        raise ValueError(expected)
    try:
        parts = urlsplit(value)
        _ = parts.port   # a port that is not a number raises ValueError
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not value.startswith(f"{parts.scheme}://"):
        raise ValueError(expected)
    return value


def parse_port(text: str) -> int:
    value = parse_int(text)
    if not 1 <= value <= 65535:
        raise ValueError(f"expected a port number from 1 to 65535, got {text!r}")
    return value


def parse_hostname(text: str) -> str:
    """A DNS name such as ``mail.example.org`` or an IP address (an SMTP host, a DKIM domain or selector):
    nothing that could end an SMTP command or a DKIM-Signature tag."""
    import ipaddress
    import re

    value = text.strip().rstrip(".")
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    label = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    if len(value) > 253 or not re.fullmatch(rf"{label}(\.{label})*", value):
        raise ValueError(f"expected a host name such as mail.example.org, got {text!r}")
    return value


def parse_timezone(text: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as Asia/Seoul, got {text!r}") from None


def parse_languages(text: str) -> tuple[str, ...]:
    """Language codes (ISO 639, optionally with a region: ``en``, ``ko``, ``pt-BR``), each once.

    Any code is accepted here; whether the site can publish in it (UI strings, translation models) is
    checked against the site by ``Site.languages`` and ``publisher config check``.
    """
    import re

    langs = tuple(part.strip() for part in text.split(",") if part.strip())
    for lang in langs:
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", lang):
            raise ValueError(f"expected language codes such as en, ko or fr, got {lang!r}")
    if len(set(langs)) != len(langs):
        raise ValueError(f"expected each language once, got {text.strip()!r}")
    if not langs:
        raise ValueError("expected at least one language")
    return langs


def parse_database_url(text: str) -> str:
    value = text.strip()
    if _control_character(value):
        raise ValueError("expected a URL without control characters")
    if value.startswith("sqlite:///") and value[len("sqlite:///"):]:
        return value
    if value.startswith(("postgresql://", "postgres://")):
        from urllib.parse import urlsplit

        try:
            urlsplit(value).port   # a port that is not a number raises here, before any connection
        except ValueError:
            raise ValueError(f"expected a port number in {redact_database_url(value)}") from None
        return value
    raise ValueError("expected sqlite:///PATH (e.g. sqlite:////var/lib/publisher/site.db) or "
                     "postgresql://USER:PASSWORD@HOST:5432/DATABASE")


_PASSWORD_PARAMETER = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]*)")


def redact_database_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: in the user part of a URL
    (``postgresql://user:secret@host/db``), as a ``password=`` query parameter, or in a libpq ``key=value``
    string. What ``config check``, logs and error messages show instead of the URL itself."""
    from urllib.parse import urlsplit, urlunsplit

    redacted = url
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            redacted = urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
    return _PASSWORD_PARAMETER.sub(lambda match: match[1] + "***", redacted)


def redact_secret_text(text: str, url: str) -> str:
    """``text`` (an error message from a database driver) with ``url`` and its password removed: the URL as
    ``redact_database_url`` shows it, and the password wherever else it appears, raw or percent-decoded."""
    from urllib.parse import unquote, urlsplit

    secrets: set[str] = set()
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        secrets |= {password, unquote(password)}
    for match in _PASSWORD_PARAMETER.finditer(url):
        value = match[2].strip("'")
        if value:
            secrets |= {value, unquote(value)}
    text = text.replace(url, redact_database_url(url))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --- core (issue 2) ---------------------------------------------------------------------------------------

SITE_SETTINGS: tuple[Setting, ...] = (
    Setting("PUBLISHER_SITE_DIR", "The site folder (content/, public/, outbox/, .publisher/). Default: the working directory."),
    Setting("PUBLISHER_SITE_URL", "Public address of the site; canonical article URLs are {URL}/{lang}/{slug}/.",
            default="http://localhost:8000", parse=parse_url),
    Setting("PUBLISHER_TIMEZONE", "Time zone for dates written without one.", default="Asia/Seoul", parse=parse_timezone),
    Setting("PUBLISHER_LANGUAGES", "Languages the site publishes in, comma-separated.", default="en,ko", parse=parse_languages),
    Setting("PUBLISHER_DATABASE_URL", "Where the site's database lives: sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE (shared by several machines; pip install "
            "'publisher[postgres]'). Default: sqlite:///<site>/.publisher/publisher.db.",
            parse=parse_database_url, show=redact_database_url),
    Setting("PUBLISHER_DATABASE_RECONNECT_SECONDS", "How long a command or worker waits for a PostgreSQL server "
            "that dropped its connection (a restart, a failover) to take connections again, then stops with one "
            "line; the run resumes where it was when the server is back in time.", default=60.0,
            parse=parse_non_negative_float),
    Setting("PUBLISHER_SECRET_KEY", "Key that signs the tokens in links (unsubscribe, confirm, preferences). "
            "Without it a random key is generated once and kept in .publisher/secret_key.", secret=True),
    Setting("PUBLISHER_DEBUG", "Show the full traceback of an internal error instead of one line.",
            default=False, parse=parse_bool),
    Setting("SITE_TITLE_EN", "Site name in English (feeds, emails, pages).", default="News", parse=parse_line),
    Setting("SITE_TITLE_KO", "Site name in Korean (feeds, emails, pages).", default="소식", parse=parse_line),
    Setting("SITE_DESCRIPTION_EN", "One-line site description in English (feeds, pages).", default="",
            parse=parse_line),
    Setting("SITE_DESCRIPTION_KO", "One-line site description in Korean (feeds, pages).", default="",
            parse=parse_line),
)

# Per-language site texts beyond the declared English and Korean ones (SITE_TITLE_FR for a site in French).
LANGUAGE_TEXT_PREFIXES = {"SITE_TITLE_": "Site name in {lang} (feeds, emails, pages).",
                          "SITE_DESCRIPTION_": "One-line site description in {lang} (feeds, pages).",
                          "BULLETIN_FROM_NAME_": "Sender name of the bulletins and mails in {lang}."}


def language_text_setting(name: str) -> Setting | None:
    """The setting ``SITE_TITLE_<LANG>`` or ``SITE_DESCRIPTION_<LANG>`` for a language not declared above."""
    for prefix, help_text in LANGUAGE_TEXT_PREFIXES.items():
        lang = name[len(prefix):]
        if name.startswith(prefix) and lang:
            return Setting(name, help_text.format(lang=lang), default="", parse=parse_line)
    return None


def site_settings(languages: Sequence[str]) -> tuple[Setting, ...]:
    """The settings every channel of a site reads (URL, languages, titles...), with each language's texts:
    what a run checks before it writes anything."""
    declared = {setting.name for setting in (*SITE_SETTINGS, *EMAIL_SETTINGS)}
    extra: list[Setting] = []
    for lang in languages:
        for prefix in LANGUAGE_TEXT_PREFIXES:
            setting = language_text_setting(f"{prefix}{lang.upper()}")
            if setting is not None and setting.name not in declared:
                extra.append(setting)
    return SITE_SETTINGS + tuple(extra)


# --- translation (issue 3) --------------------------------------------------------------------------------

def parse_threads(text: str) -> int:
    """``auto`` (0: chosen from the cores and the load, see publisher.translate.threads) or a whole number >= 1."""
    value = text.strip().lower()
    if value in ("", "auto"):
        return 0
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"expected auto or a whole number of at least 1, got {text!r}")
    return number


TRANSLATION_SETTINGS: tuple[Setting, ...] = (
    Setting("PUBLISHER_ALLOW_MACHINE_TRANSLATION",
            "Publish machine translations (each rendition then carries a notice). Default: false.",
            default=False, parse=parse_bool),
    Setting("ARGOS_PACKAGES_DIR",
            "Folder of installed Argos Translate models (the variable Argos Translate itself reads). "
            "Default: Argos's own ~/.local/share/argos-translate/packages, so models installed with argospm "
            "are found too."),
    Setting("ARGOS_PACKAGE_INDEX",
            "Address of the Argos package index that `publisher models install FROM TO` downloads from. "
            "Default: Argos Translate's own index."),
    Setting("PUBLISHER_TRANSLATION_BEAM_SIZE",
            "Beam size of the translation search: larger is slower and usually a little better; 1 is greedy. "
            "Default 2 (CTranslate2's; argostranslate uses 4): compare on your own sentences with "
            "`publisher models evaluate --beam-size 2 --beam-size 4`.",
            default=2, parse=parse_positive_int),
    Setting("PUBLISHER_TRANSLATION_MAX_TOKENS",
            "Longest translation of one sentence, in model tokens: bounds the time a runaway sentence takes.",
            default=256, parse=parse_positive_int),
    Setting("PUBLISHER_TRANSLATION_THREADS",
            "CPU threads one translation uses: 'auto' takes the cores no other process keeps busy when the model "
            "loads (1 on a busy machine), or a number (more threads than free cores slows it down).",
            default="auto", parse=parse_threads),
    Setting("PUBLISHER_MODEL_DOWNLOAD_TIMEOUT",
            "Seconds `publisher models install FROM TO` waits for the package index before giving up (offline).",
            default=20.0, parse=parse_positive_float),
    Setting("TRANSLATION_MODEL_EN_KO",
            "Model that translates English into Korean: 'argos' (the installed Argos package) or the name of a "
            "model installed with `publisher models install --dir` (`publisher models list`). Default: argos."),
    Setting("TRANSLATION_MODEL_KO_EN",
            "Model that translates Korean into English, as TRANSLATION_MODEL_EN_KO (one NLLB model can serve "
            "both). Default: argos."),
    Setting("PUBLISHER_MODELS_DIR",
            "Folder `publisher models install --dir` copies OPUS-MT and NLLB models into (relative to the site). "
            "Default: <site>/.publisher/models."),
)

# --- email (issue 4) --------------------------------------------------------------------------------------

def parse_mailbox(text: str) -> str:
    """`Name <addr@example.org>` or `addr@example.org`: one address, parsed as the mail header will be.

    Python's lenient ``parseaddr`` reads ``News <news@exa mple.org>`` as news@example.org and a line break as
    the end of the value, so the text is parsed as a ``From:`` header, refused on any defect but an obsolete
    form, and its address checked as a subscriber's is (email-validator, offline).
    """
    from email.errors import ObsoleteHeaderDefect
    from email.policy import default as policy

    from email_validator import EmailNotValidError, validate_email

    value = text.strip()
    expected = f"expected an address such as 'News <news@example.org>', got {text!r}"
    if _control_character(value) is not None:
        raise ValueError(f"{expected} (holds a control character)")
    try:
        header = policy.header_factory("From", value)
        addresses = header.addresses
    except (ValueError, IndexError, AttributeError):   # the header parser gives up on some malformed forms
        raise ValueError(expected) from None
    if len(addresses) != 1 or any(not isinstance(defect, ObsoleteHeaderDefect) for defect in header.defects):
        raise ValueError(expected)
    address = addresses[0].addr_spec
    try:
        validate_email(address, check_deliverability=False)   # deliverability needs DNS; the tool works offline
    except EmailNotValidError as error:
        raise ValueError(f"{expected} ({error})") from None
    return value


EMAIL_SETTINGS: tuple[Setting, ...] = (
    Setting("BULLETIN_FROM", "Sender of the bulletins, e.g. 'UNPOG News <news@unpog.org>'. "
            "Default: <site title> <news@<site host>>.", parse=parse_mailbox),
    Setting("BULLETIN_REPLY_TO", "Where replies to a bulletin go (Reply-To). Default: the sender.",
            parse=parse_mailbox),
    Setting("BULLETIN_FALLBACK", "What a subscriber gets when an article has no version in their language: "
            "'skip' (nothing; the ledger says why) or 'original' (the original language).",
            default="skip", choices=("skip", "original")),
    Setting("BULLETIN_POSTAL_ADDRESS", "Postal address shown at the foot of every bulletin and its "
            "text part (anti-spam laws require one in bulk mail); a line break in the value starts a new line.",
            default=""),
    Setting("BULLETIN_FROM_NAME_EN", "Sender name of the English bulletins and mails. Default: SITE_TITLE_EN, "
            "then BULLETIN_FROM's name.", default="", parse=parse_line),
    Setting("BULLETIN_FROM_NAME_KO", "Sender name of the Korean bulletins and mails, e.g. 유엔거버넌스센터. "
            "Default: SITE_TITLE_KO, then BULLETIN_FROM's name.", default="", parse=parse_line),
    Setting("BULLETIN_LOGO", "Logo at the top of every bulletin: an image file in the site (e.g. "
            "content/images/logo.png), embedded in each mail so it shows without the site being served, or an "
            "https:// URL used as it is. Default: none (the site title only).", default=""),
    Setting("DKIM_DOMAIN", "Domain that signs the bulletins with DKIM (d=); set with DKIM_SELECTOR and "
            "DKIM_PRIVATE_KEY_FILE to sign.",
            parse=parse_hostname),
    Setting("DKIM_SELECTOR", "DKIM selector (s=): the DNS name <selector>._domainkey.<domain> holds the public key.",
            parse=parse_hostname),
    Setting("DKIM_PRIVATE_KEY_FILE", "PEM file with the DKIM private key (RSA); keep the file itself private."),
)

# --- feeds (issue 5) --------------------------------------------------------------------------------------

FEED_SETTINGS: tuple[Setting, ...] = (
    Setting("FEED_MAX_ITEMS", "Most recent articles kept in each RSS, Atom and JSON feed (newest first).",
            default=50, parse=parse_positive_int),
)

# --- social (issue 6) -------------------------------------------------------------------------------------

SOCIAL_SETTINGS: tuple[Setting, ...] = (
    Setting("SOCIAL_RATE_LIMIT_MAX_WAIT", "Longest wait, in seconds, for a social network's rate limit to reset "
            "before retrying a post (429); a longer reset leaves the post failed for a later run.",
            default=900.0, parse=parse_non_negative_float),
    Setting("SOCIAL_RATE_LIMIT_RETRIES", "How many times one post is retried after a rate limit (429).",
            default=3, parse=parse_non_negative_int),
    Setting("SOCIAL_HTTP_TIMEOUT", "Seconds to wait for a social network's answer; a post whose answer does not "
            "come in time is recorded as unconfirmed, never posted again blindly.", default=30.0,
            parse=parse_positive_float),
    Setting("SOCIAL_BREAKER_FAILURES", "Posts in a row to one social network that got a 5xx, no answer or no "
            "connection before the run stops posting there, the rest left pending for a later run (0: never).",
            default=5, parse=parse_non_negative_int),
)

# --- web (issue 7) ----------------------------------------------------------------------------------------

def parse_proxy_addresses(text: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``), or ``*`` for any peer; empty for none."""
    import ipaddress

    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if items == ("*",):
        return items
    parsed: list[str] = []
    for item in items:
        try:
            # Written as uvicorn reads them: it takes "10.0.0.1/8" for a name, which no peer ever matches.
            parsed.append(str(ipaddress.ip_network(item, strict=False)) if "/" in item
                          else str(ipaddress.ip_address(item)))
        except ValueError:
            raise ValueError(f"expected IP addresses or networks separated by commas (or * alone), "
                             f"got {item!r}") from None
    return tuple(parsed)


def parse_subscribe_url(text: str) -> str:
    """An http(s) address, or ``none`` (the public pages then carry no sign-up form or link)."""
    if text.strip().lower() == "none":
        return "none"
    return parse_url(text)


WEB_SETTINGS: tuple[Setting, ...] = (
    Setting("PUBLISHER_SUBSCRIBE_URL", "Where the sign-up form on the public pages (public/) sends readers: "
            "`publisher serve`'s /subscribe page, which opens with the address filled in. Default: "
            "{PUBLISHER_SITE_URL}/subscribe. Set it when public/ is hosted apart from `publisher serve`; an "
            "address whose path does not end in /subscribe (another service's sign-up page) is shown as a "
            "plain link; `none` shows nothing.", parse=parse_subscribe_url),
    Setting("PUBLISHER_ADMIN_TOKEN", "Token that opens the review page (/review) when `publisher serve` listens "
            "beyond localhost: sent as 'Authorization: Bearer <token>' or typed in at /review/login. Without it "
            "the review page answers only on 127.0.0.1.", secret=True),
    Setting("PUBLISHER_SUBSCRIBE_RATE_LIMIT", "Most subscribe requests one client (IP address) may make per hour.",
            default=10, parse=parse_positive_int),
    Setting("PUBLISHER_CONFIRM_MAILS_PER_ADDRESS", "Most confirmation mails sent to one address per day, whoever "
            "asks: the subscribe form cannot be used to flood someone's inbox.", default=3, parse=parse_positive_int),
    Setting("PUBLISHER_CONFIRM_LINK_HOURS", "Hours a subscription confirmation link stays valid.",
            default=72, parse=parse_positive_int),
    Setting("PUBLISHER_FORWARDED_ALLOW_IPS", "Addresses of the reverse proxies in front of `publisher serve` "
            "(comma-separated IPs or networks, as uvicorn's --forwarded-allow-ips): only from these are "
            "X-Forwarded-For and X-Forwarded-Proto believed. Empty: no proxy is trusted, and rate limits count "
            "the connecting address.", default=(), parse=parse_proxy_addresses),
)

# --- scheduling and the worker (issue 12) ------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> Any:
    """``90s``, ``30m``, ``1h``, ``2d`` or a number of seconds, as a ``timedelta``."""
    from datetime import timedelta

    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], 0) if value else 0
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"expected a duration like 90s, 30m, 1h or 2d, got {text!r}") from None
    if seconds < 0:
        raise ValueError(f"expected a duration of 0 or more, got {text!r}")
    return timedelta(seconds=seconds)


def parse_duration_or_off(text: str) -> Any:
    """A duration, or None for an empty value or 0 (off)."""
    if not text.strip():
        return None
    value = parse_duration(text)
    return value if value else None


def parse_cron(text: str) -> str:
    """A cron expression (``0 9 * * MON``), checked by croniter; empty for none."""
    value = " ".join(text.split())
    if not value:
        return ""
    from croniter import croniter

    if not croniter.is_valid(value):
        raise ValueError(f"expected a cron expression like '0 9 * * MON' (minute hour day month weekday), "
                         f"got {text!r}")
    return value


def parse_send_windows(text: str) -> dict[str, tuple[Any, Any]]:
    """``x=08:00-22:00, mastodon=08:00-22:00``: per channel, the daily hours a job may send (site time zone);
    a window may cross midnight (``22:00-06:00``)."""
    from datetime import time

    windows: dict[str, tuple[Any, Any]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, hours = item.partition("=")
        start, _, end = hours.partition("-")
        try:
            opens, closes = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
        except ValueError:
            raise ValueError(f"expected channel=HH:MM-HH:MM separated by commas, e.g. x=08:00-22:00, "
                             f"got {item!r}") from None
        if not name.strip() or opens == closes:
            raise ValueError(f"expected channel=HH:MM-HH:MM with two different times, got {item!r}")
        windows[name.strip()] = (opens, closes)
    return windows


SCHEDULE_SETTINGS: tuple[Setting, ...] = (
    Setting("SCHEDULE_MAX_LATE", "A job more than this past due when the worker sees it (the machine was off) is "
            "held as overdue, not sent, until `publisher schedule release ID` (e.g. 1h, 30m; 0: never hold).",
            default="1h", parse=parse_duration),
    Setting("BULLETIN_DIGEST_SCHEDULE", "When `publisher worker` sends the digest of what was published since the "
            "last one: a cron expression in PUBLISHER_TIMEZONE, e.g. '0 9 * * MON'. Empty: no recurring digest.",
            default="", parse=parse_cron),
    Setting("SCHEDULE_RETRY_DELAY", "How long a deferred delivery (a rate limit, a platform down, an SMTP quota) "
            "waits before the worker tries again when the platform did not say when; doubled on each try, at most "
            "SCHEDULE_RETRY_MAX_DELAY.", default="5m", parse=parse_duration),
    Setting("SCHEDULE_RETRY_MIN_DELAY", "The least a retry job waits, even when a 429's reset time (Retry-After, "
            "x-rate-limit-reset...) is sooner or already past.", default="1m", parse=parse_duration),
    Setting("SCHEDULE_RETRY_MAX_DELAY", "The most a retry job waits: a later reset time, or a longer backoff, is cut "
            "to this (the job then simply tries again).", default="6h", parse=parse_duration),
    Setting("SCHEDULE_RETRY_UNCONFIRMED_EVERY", "How often the worker resolves deliveries whose outcome was unknown "
            "(publish --retry-unconfirmed), e.g. 1h. Empty: never on its own.", default="", parse=parse_duration_or_off),
    Setting("SCHEDULE_SEND_WINDOWS", "Hours each channel's scheduled jobs may send, in PUBLISHER_TIMEZONE, e.g. "
            "'x=08:00-22:00, mastodon=08:00-22:00'; a job due outside its window waits for the next opening. "
            "Empty: any time.", default={}, parse=parse_send_windows),
    Setting("SCHEDULE_PURGE_PENDING_EVERY", "How often the worker deletes subscribers who never confirmed within "
            "PUBLISHER_CONFIRM_LINK_HOURS, e.g. 1d. Empty: never.", default="1d", parse=parse_duration_or_off),
)

# Issue 14: several workers share a bulletin (publish --queue); each claims rows under a lease it renews.
WORKER_SETTINGS: tuple[Setting, ...] = (
    Setting("WORKER_LEASE_SECONDS", "Seconds a claim on deliveries (and on a job) holds without renewal; a worker "
            "renews it every third of that while it sends, and a killed worker's rows are re-sent by another after "
            "it runs out. Keep it above SMTP_TIMEOUT and ESP_TIMEOUT (the longest a worker waits for one answer).",
            default=60.0, parse=parse_positive_float),
    Setting("WORKER_BATCH_SIZE", "Recipients a worker claims at once from a queued bulletin (publish --queue); "
            "a killed worker leaves at most that many to be re-sent as possible duplicates.",
            default=200, parse=parse_positive_int),
    Setting("WORKER_POLL_SECONDS", "Seconds between a worker's looks for jobs and queued bulletins other "
            "processes added (`publisher worker --poll` overrides it).", default=2.0, parse=parse_positive_float),
)

CORE_SETTINGS: tuple[Setting, ...] = (
    SITE_SETTINGS + TRANSLATION_SETTINGS + EMAIL_SETTINGS + FEED_SETTINGS + SOCIAL_SETTINGS + WEB_SETTINGS
    + SCHEDULE_SETTINGS + WORKER_SETTINGS
)

