"""Every core setting, declared once: its name, default, help text and whether it is a secret.

Channels declare their own settings on their class (``Channel.settings``); ``all_settings()`` returns both.
Values come from, in rising order: the default, the site's ``publisher.toml``, the site's ``.env``, the
environment. Secrets are refused in ``publisher.toml`` and never printed.
"""

from __future__ import annotations

from collections.abc import Callable
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


def parse_url(text: str) -> str:
    value = text.strip().rstrip("/")
    if not (value.startswith("http://") or value.startswith("https://")) or "://" == value[-3:]:
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return value


def parse_timezone(text: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as Asia/Seoul, got {text!r}") from None


def parse_languages(text: str) -> tuple[str, ...]:
    from publisher.article import LANGUAGES

    langs = tuple(part.strip() for part in text.split(",") if part.strip())
    for lang in langs:
        if lang not in LANGUAGES:
            raise ValueError(f"expected languages among {', '.join(LANGUAGES)}, got {lang!r}")
    if not langs:
        raise ValueError("expected at least one language")
    return langs


def parse_database_url(text: str) -> str:
    value = text.strip()
    if not value.startswith("sqlite:///"):
        raise ValueError("only sqlite:///PATH is supported, e.g. sqlite:////var/lib/publisher/site.db")
    return value


# --- core (issue 2) ---------------------------------------------------------------------------------------

SITE_SETTINGS: tuple[Setting, ...] = (
    Setting("PUBLISHER_SITE_DIR", "The site folder (content/, public/, outbox/, .publisher/). Default: the working directory."),
    Setting("PUBLISHER_SITE_URL", "Public address of the site; canonical article URLs are {URL}/{lang}/{slug}/.",
            default="http://localhost:8000", parse=parse_url),
    Setting("PUBLISHER_TIMEZONE", "Time zone for dates written without one.", default="Asia/Seoul", parse=parse_timezone),
    Setting("PUBLISHER_LANGUAGES", "Languages the site publishes in, comma-separated.", default="en,ko", parse=parse_languages),
    Setting("PUBLISHER_DATABASE_URL", "Where the ledger lives. Default: sqlite:///<site>/.publisher/publisher.db.",
            parse=parse_database_url),
    Setting("PUBLISHER_SECRET_KEY", "Key that signs the tokens in links (unsubscribe, confirm, preferences). "
            "Without it a random key is generated once and kept in .publisher/secret_key.", secret=True),
    Setting("SITE_TITLE_EN", "Site name in English (feeds, emails, pages).", default="News"),
    Setting("SITE_TITLE_KO", "Site name in Korean (feeds, emails, pages).", default="소식"),
    Setting("SITE_DESCRIPTION_EN", "One-line site description in English (feeds, pages).", default=""),
    Setting("SITE_DESCRIPTION_KO", "One-line site description in Korean (feeds, pages).", default=""),
)

# --- translation (issue 3) --------------------------------------------------------------------------------

TRANSLATION_SETTINGS: tuple[Setting, ...] = (
    Setting("PUBLISHER_ALLOW_MACHINE_TRANSLATION",
            "Publish machine translations (each rendition then carries a notice). Default: false.",
            default=False, parse=parse_bool),
)

# --- email (issue 4) --------------------------------------------------------------------------------------

EMAIL_SETTINGS: tuple[Setting, ...] = ()

# --- feeds (issue 5) --------------------------------------------------------------------------------------

FEED_SETTINGS: tuple[Setting, ...] = (
    Setting("FEED_MAX_ITEMS", "Most recent articles kept in each RSS, Atom and JSON feed (newest first).",
            default=50, parse=parse_positive_int),
)

# --- social (issue 6) -------------------------------------------------------------------------------------

SOCIAL_SETTINGS: tuple[Setting, ...] = (
    Setting("SOCIAL_RATE_LIMIT_MAX_WAIT", "Longest wait, in seconds, for a social network's rate limit to reset "
            "before retrying a post (429); a longer reset leaves the post failed for a later run.",
            default=900.0, parse=parse_float),
    Setting("SOCIAL_RATE_LIMIT_RETRIES", "How many times one post is retried after a rate limit (429).",
            default=3, parse=parse_int),
)

# --- web (issue 7) ----------------------------------------------------------------------------------------

WEB_SETTINGS: tuple[Setting, ...] = ()

CORE_SETTINGS: tuple[Setting, ...] = (
    SITE_SETTINGS + TRANSLATION_SETTINGS + EMAIL_SETTINGS + FEED_SETTINGS + SOCIAL_SETTINGS + WEB_SETTINGS
)


def all_settings() -> list[Setting]:
    """Core settings, then each registered channel's, each name once."""
    from publisher.channels.registry import get_channel_classes

    seen: dict[str, Setting] = {s.name: s for s in CORE_SETTINGS}
    for cls in get_channel_classes().values():
        for setting in cls.settings:
            seen.setdefault(setting.name, setting)
    return list(seen.values())


def find_setting(name: str) -> Setting | None:
    for setting in CORE_SETTINGS:
        if setting.name == name:
            return setting
    return None
