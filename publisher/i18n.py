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


def _read_catalogs(root: Path, lang: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    from publisher.errors import ContentError

    messages: dict[str, str] = {}
    folder = root / lang / "LC_MESSAGES"
    if not folder.is_dir():
        return messages
    for po_path in sorted(folder.glob("*.po")):
        try:
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=lang)
        except Exception as exc:  # Babel raises several types for a broken catalog
            raise ContentError(po_path, None, f"invalid gettext catalog: {exc}") from None
        for message in catalog:
            if message.id and message.string and not message.fuzzy and isinstance(message.id, str):
                messages[message.id] = str(message.string)
    return messages


@lru_cache(maxsize=16)
def _packaged(lang: str) -> dict[str, str]:
    return _read_catalogs(locales_dir(), lang)


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
        self._cache: dict[str, dict[str, str]] = {}

    def catalog(self, lang: str) -> dict[str, str]:
        if lang not in self._cache:
            merged = dict(_packaged(lang))
            if self._site_root is not None and self._site_root.is_dir():
                merged.update(_read_catalogs(self._site_root, lang))
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


def format_date(value: datetime, lang: str, format: str = "long") -> str:
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
