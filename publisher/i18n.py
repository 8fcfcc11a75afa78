"""UI strings in each language from gettext catalogs (``locales/<lang>/LC_MESSAGES/<domain>.po``), and dates.

Every ``.po`` file of a language is read (one domain per area: core, email, feeds, social, web, translate);
a site's own ``locales/`` overrides the packaged strings message by message. The msgid is the English text.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from publisher.resources import locales_dir

if TYPE_CHECKING:
    from babel import Locale

    from publisher.article import Article
    from publisher.site import Site


def _read_catalogs(root: Path, lang: str, cache: Path | None = None) -> dict[str, str]:
    """The messages of every ``root/<lang>/LC_MESSAGES/*.po``; with ``cache`` (a site's ``.publisher/cache``),
    each file's messages are kept there and read back while its size and modification time are unchanged."""
    messages: dict[str, str] = {}
    folder = root / lang / "LC_MESSAGES"
    if not folder.is_dir():
        return messages
    for po_path in sorted(folder.glob("*.po")):
        messages.update(_po_messages(po_path, lang, cache))
    return messages


# What a cached catalog holds; another value (a change to the rule below) makes every entry stale.
_PO_CACHE_FORMAT = "po-messages 1: id -> string, not fuzzy, not plural"


def _po_messages(po_path: Path, lang: str, cache: Path | None) -> dict[str, str]:
    # Parsing the catalogs with Babel (and importing its .po reader) is a twentieth of publishing one article
    # into a large site; the messages are kept as JSON, keyed by the file's path, size and modification time
    # (not kept while the file is recent enough to change again within the same mtime, as the content index).
    import json
    import os
    import time

    entry: Path | None = None
    stamp: list[object] = []
    if cache is not None:
        import hashlib

        try:
            stat = po_path.stat()
        except OSError:
            stat = None
        if stat is not None:
            import babel

            stamp = [_PO_CACHE_FORMAT, babel.__version__, lang, str(po_path), stat.st_size, stat.st_mtime_ns]
            name = hashlib.blake2b(f"{po_path}|{lang}".encode("utf-8", "surrogateescape"), digest_size=12)
            entry = cache / "ui-strings" / f"{name.hexdigest()}.json"
            try:
                kept = json.loads(entry.read_text(encoding="utf-8"))
                if kept.get("stamp") == stamp and isinstance(kept.get("messages"), dict):
                    return dict(kept["messages"])
            except (OSError, ValueError, AttributeError):
                pass   # no entry, or one that does not read: the file is parsed
            if stat.st_mtime_ns >= time.time_ns() - 2_000_000_000:
                entry = None   # too recent to trust its mtime
    messages = _parse_po(po_path, lang)
    if entry is not None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            partial = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps({"stamp": stamp, "messages": messages}, ensure_ascii=False),
                               encoding="utf-8")
            os.replace(partial, entry)
        except OSError:
            pass   # a cache that cannot be written costs time next run, nothing else
    return messages


def _parse_po(po_path: Path, lang: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    from publisher.errors import ContentError

    try:
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
    except Exception as exc:  # Babel raises several types for a broken catalog
        raise ContentError(po_path, None, f"invalid gettext catalog: {exc}") from None
    messages: dict[str, str] = {}
    for message in catalog:
        if message.id and message.string and not message.fuzzy and isinstance(message.id, str):
            messages[message.id] = str(message.string)
    return messages


@lru_cache(maxsize=16)
def _packaged(lang: str, cache: Path | None = None) -> dict[str, str]:
    return _read_catalogs(locales_dir(), lang, cache)


def _languages_in(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {folder.name for folder in root.iterdir() if any((folder / "LC_MESSAGES").glob("*.po"))}


@lru_cache(maxsize=1)
def _packaged_languages() -> frozenset[str]:
    return frozenset(_languages_in(locales_dir()))


def catalog_languages(site: Site | None = None) -> tuple[str, ...]:
    """Languages that have UI strings (``locales/<lang>/LC_MESSAGES/*.po``), packaged or the site's own."""
    found = set(_packaged_languages())
    if site is not None:
        found |= _languages_in(site.locales_dir)
    return tuple(sorted(found))


class UIStrings:
    """Translated UI strings for one site: the site's catalogs first, then the packaged ones."""

    def __init__(self, site: Site | None = None) -> None:
        self._site_root = site.locales_dir if site is not None else None
        self._parsed_cache = site.state_dir / "cache" if site is not None else None
        self._cache: dict[str, dict[str, str]] = {}

    def catalog(self, lang: str) -> dict[str, str]:
        if lang not in self._cache:
            merged = dict(_packaged(lang, self._parsed_cache))
            if self._site_root is not None and self._site_root.is_dir():
                merged.update(_read_catalogs(self._site_root, lang, self._parsed_cache))
            self._cache[lang] = merged
        return self._cache[lang]

    def gettext(self, lang: str, msgid: str, **values: Any) -> str:
        text = self.catalog(lang).get(msgid, msgid)
        return text.format(**values) if values else text


_default_ui: UIStrings | None = None


def _ui(site: Site | None) -> UIStrings:
    global _default_ui
    if site is not None:
        return site.ui
    if _default_ui is None:
        _default_ui = UIStrings()
    return _default_ui


def gettext(lang: str, msgid: str, site: Site | None = None, **values: Any) -> str:
    return _ui(site).gettext(lang, msgid, **values)


def language_name(code: str, in_lang: str) -> str:
    """"Korean" in English, "한국어" in Korean."""
    from babel import Locale

    return str(Locale.parse(in_lang).languages.get(code, code))


# The date conventions a bare language code stands for; the others are Babel's own ("ko" -> ko_KR).
# English dates are written the British way ("28 June 2024"), as the UN system writes them.
MSGID_LANGUAGE = "en"   # the language msgids (and theme keys) are written in: the catalogs translate from it
DATE_LOCALES = {"en": "en_GB"}


def _date_locale(lang: str) -> str:
    return DATE_LOCALES.get(lang, lang.replace("-", "_"))


def format_date(value: date, lang: str, format: str = "long") -> str:
    """A date as readers of ``lang`` write it: "28 June 2024" / "2024년 6월 28일"."""
    return _format_day(value.date() if isinstance(value, datetime) else value, lang, format)


@lru_cache(maxsize=4096)
def _format_day(day: date, lang: str, format: str) -> str:
    # Babel formats a datetime by its date alone; an index page of 10,000 articles has far fewer days than
    # articles, and each Babel call costs ~100 us. What babel.dates.format_date does, with the pattern looked
    # up and parsed once per language and format (more than half of each call).
    return str(_date_pattern(lang, format).apply(day, _babel_locale(lang)))


@lru_cache(maxsize=64)
def _date_pattern(lang: str, format: str) -> Any:
    from babel.dates import get_date_format, parse_pattern

    named = _NAMED_DATE_FORMATS.get(format)
    return parse_pattern(get_date_format(named, locale=_babel_locale(lang)) if named is not None else format)


_NAMED_DATE_FORMATS: dict[str, Literal["full", "long", "medium", "short"]] = {
    "full": "full", "long": "long", "medium": "medium", "short": "short"}


@lru_cache(maxsize=64)
def _babel_locale(lang: str) -> Locale:
    # Parsed once: given a name, Babel parses it again on every call (two thirds of formatting a date).
    from babel import Locale

    return Locale.parse(_date_locale(lang))


def format_datetime(value: datetime, lang: str, format: str = "medium") -> str:
    from babel.dates import format_datetime as babel_format_datetime

    return str(babel_format_datetime(value, format=format, locale=_date_locale(lang), tzinfo=value.tzinfo))


MACHINE_NOTICE = "This text was translated from {language} by machine and may contain errors."


def machine_notice(article: Article, site: Site | None = None) -> str | None:
    """The short notice that every rendition of a machine translation carries, in the article's language."""
    if not article.is_machine_translation:
        return None
    source = article.translation.source_lang or "en"
    return gettext(article.lang, MACHINE_NOTICE, site, language=language_name(source, article.lang))


def theme_label(theme: str, lang: str, site: Site | None = None) -> str:
    """A theme's display name; theme keys are English ("Capacity Development") and translated by the catalogs."""
    return gettext(lang, theme, site)
