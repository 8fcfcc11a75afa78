"""How a rendition credits its translation, in the reader's language (strings in the ``translate`` catalogs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publisher.article import Article
    from publisher.site import Site

STATUS_LABELS = {
    "original": "Original",
    "human": "Translation",
    "machine": "Machine translation",
    "reviewed": "Reviewed machine translation",
}
HUMAN_CREDIT = "Translated from {language}."
REVIEWED_CREDIT = "Translated from {language} by machine and reviewed by an editor."


def status_label(article: Article, site: Site | None = None) -> str:
    """A short label for the version's origin, e.g. "Machine translation" / "기계 번역"."""
    from publisher.i18n import gettext

    return gettext(article.lang, STATUS_LABELS[article.translation.status], site)


def translation_credit(article: Article, site: Site | None = None) -> str | None:
    """The line a translated version carries: the machine notice, a reviewed credit, or a human credit.

    An original carries none. Machine translations use ``publisher.i18n.machine_notice`` (their warning).
    """
    from publisher.i18n import gettext, language_name, machine_notice

    status = article.translation.status
    if status == "original":
        return None
    if status == "machine":
        return machine_notice(article, site)
    source = language_name(article.translation.source_lang or "en", article.lang)
    return gettext(article.lang, REVIEWED_CREDIT if status == "reviewed" else HUMAN_CREDIT, site, language=source)
