"""The HTML pages of the feeds build: each language's index page and each article version's page.

The pages are rendered from ``templates/feeds/`` (a site's own templates first) over a ``SiteFeeds``, which
says which articles are published and gives each its feed item; links are absolute for ``<link>`` and relative
for ``<a href>``, so ``public/`` can be served anywhere (a preview on localhost too).

Every page carries a language switch (the same article in the other language, else that language's index)
and a sign-up form (``signup``): a GET form that opens ``publisher serve``'s ``/subscribe`` page with the
address and language filled in. The static page cannot hold a per-visitor CSRF token, so it posts nothing:
the served page carries its own token, and the double opt-in, rate limit and enumeration rules stay there.
The build also writes ``favicon.svg`` and ``robots.txt`` (``site_files``), from templates a site may override.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from publisher.formatters.feeds import FILENAMES, FORMAT_NAMES, MEDIA_TYPES, OPML_FILENAME, FeedSpec

if TYPE_CHECKING:
    from markupsafe import Markup

    from publisher.article import Article, Listed
    from publisher.formatters.site_feeds import SiteFeeds
    from publisher.site import Site


@dataclass(frozen=True)
class PageLink:
    """A link from a page: a feed to subscribe to, or the same page in another language."""

    href: str
    title: str
    type: str = "text/html"
    hreflang: str | None = None
    relative: str = ""                # the same target relative to the page, for <a href> when served elsewhere


class IndexRow(NamedTuple):
    """One article as an index page lists it, every field ready to print as HTML, escaped: ``title`` and
    ``summary`` through ``keep_words``, ``theme`` translated (None without one), ``machine`` the "Machine
    translation" label or "", ``date`` as the page's language writes it; ``lang``, ``slug`` and ``datetime``
    (ISO 8601) hold nothing to escape (a slug is ``SLUG_RE``'s letters, digits and hyphens). The packaged
    template prints them as they are (no escape per field: 8 calls of 10,000 rows); a site's own template
    that escapes them gets the same text. A page of 10,000 articles calls no function per article in its
    template (each call through jinja costs ~10 us); a named tuple, not a frozen dataclass, as it is made
    10,000 times, and in this field order (the template unpacks it)."""

    article: Listed                   # the version as listed (``articles`` has the whole Articles)
    lang: Markup | str
    slug: Markup | str
    title: Markup
    datetime: str                     # ISO 8601, for <time datetime>
    date: Markup                      # as readers of the page's language write it
    theme: Markup | None              # None: the article has no theme
    machine: Markup | str
    summary: Markup | str


@dataclass(frozen=True)
class SignUp:
    """How a page offers the bulletin: a form opening ``action`` with ``?email=&lang=``, or a plain link."""

    action: str
    form: bool


def signup(site: Site) -> SignUp | None:
    """``PUBLISHER_SUBSCRIBE_URL`` (default ``{PUBLISHER_SITE_URL}/subscribe``, where ``publisher serve`` runs):
    a form when the address is ``publisher serve``'s ``/subscribe`` (it reads ``email`` and ``lang``), a link
    to any other sign-up page (it would not know those fields), nothing for ``none``."""
    from urllib.parse import urlsplit

    configured = site.config.get("PUBLISHER_SUBSCRIBE_URL")
    if configured == "none":
        return None
    if not configured:
        return SignUp(action=f"{site.url}/subscribe", form=True)
    parts = urlsplit(str(configured))
    return SignUp(action=str(configured), form=parts.path.rstrip("/").endswith("/subscribe") and not parts.query)


def language_switch(feeds: SiteFeeds, lang: str, depth: int, article: Article | None = None) -> list[dict[str, Any]]:
    """One entry per site language, for the switch at the top of a page: the same article in that language
    when it is published, else that language's index. ``depth`` as for ``feed_links``."""
    from publisher.i18n import language_name

    up = "../" * (depth + 1)
    versions = feeds.versions.get(article.slug, {}) if article is not None else {}
    entries = []
    for code in feeds.languages:
        same = code in versions
        href = f"{up}{code}/{article.slug}/" if article is not None and same else f"{up}{code}/"
        entries.append({"lang": code, "name": language_name(code, code), "href": href, "current": code == lang})
    return entries


def site_files(site: Site) -> list[tuple[str, bytes, str]]:
    """``favicon.svg`` and ``robots.txt`` for the top of ``public/``: (path, bytes, media type). Both come from
    ``templates/feeds/`` (a site's own ``templates/feeds/favicon.svg.j2`` or ``robots.txt.j2`` wins)."""
    return [
        ("favicon.svg", render_page(site, "feeds/favicon.svg.j2", lang=site.languages[0],
                                    site_title=site.title(site.languages[0])), "image/svg+xml"),
        ("robots.txt", render_page(site, "feeds/robots.txt.j2", lang=site.languages[0], site_url=site.url),
         "text/plain"),
    ]


def page_context(feeds: SiteFeeds, lang: str, depth: int, article: Article | None = None) -> dict[str, Any]:
    """What the layout of every page needs besides its own content."""
    up = "../" * (depth + 1)
    return {"language_switch": language_switch(feeds, lang, depth, article), "signup": signup(feeds.site),
            "signup_languages": language_switch(feeds, lang, depth), "favicon": f"{up}favicon.svg",
            "home": f"{up}{lang}/", "site_name": feeds.site.title(lang)}


def feed_links(feeds: SiteFeeds, lang: str, depth: int) -> list[PageLink]:
    """Discovery links of a language's feeds; ``depth`` is how many folders below ``public/<lang>/`` the page is."""
    from publisher.i18n import gettext

    spec = feeds.spec(lang)
    up = "../" * depth
    return [PageLink(href=spec.url(fmt), title=f"{spec.title} ({gettext(lang, FORMAT_NAMES[fmt], feeds.site)})",
                     type=MEDIA_TYPES[fmt], relative=f"{up}{FILENAMES[fmt]}") for fmt in spec.formats]


def theme_links(feeds: SiteFeeds, lang: str) -> list[tuple[FeedSpec, list[PageLink]]]:
    """Each theme feed of a language, with a link per format, as the index page lists them."""
    links = []
    for theme in sorted(feeds.themes[lang]):
        spec = feeds.spec(lang, theme)
        links.append((spec, [PageLink(href=spec.url(fmt), title=FORMAT_NAMES[fmt],
                                      type=MEDIA_TYPES[fmt], relative=f"themes/{theme}/{FILENAMES[fmt]}")
                             for fmt in spec.formats]))
    return links


def index_page(feeds: SiteFeeds, lang: str) -> bytes:
    """``public/<lang>/index.html``: every published article of the language, its feeds and the other languages.
    The template gets each article twice over: ``articles`` (the Articles) and ``rows`` (``IndexRow``)."""
    from publisher.i18n import language_name

    site = feeds.site
    languages = [PageLink(href=f"{site.url}/{other}/", title=language_name(other, other), hreflang=other,
                          relative=f"../{other}/") for other in feeds.languages if other != lang]
    articles = feeds.by_lang.get(lang, [])
    return render_page(
        site, "feeds/index.html.j2",
        lang=lang, title=site.title(lang), description=site.description(lang),
        canonical=f"{site.url}/{lang}/", articles=WholeArticles(articles, feeds.full_articles),
        rows=index_rows(articles, lang, site),
        feeds=feed_links(feeds, lang, 0), theme_feeds=theme_links(feeds, lang), languages=languages,
        opml=PageLink(href=f"{site.url}/{OPML_FILENAME}", title="OPML", type=MEDIA_TYPES["opml"],
                      relative=f"../{OPML_FILENAME}"),
        **page_context(feeds, lang, 0),
    )


def index_rows(articles: Sequence[Listed], lang: str, site: Site) -> list[IndexRow]:
    """The rows of a ``lang`` index page: what the template printed per article, escaped, computed once per
    distinct theme and day (an index page has thousands of articles and few of either)."""
    from markupsafe import Markup, escape

    from publisher.article import SLUG_RE
    from publisher.i18n import format_date, gettext, theme_label

    themes: dict[str, Markup] = {}
    days: dict[date, Markup] = {}
    machine = escape(gettext(lang, "Machine translation", site))
    langs: dict[str, Markup] = {}
    # keep_words of a language other than Korean is the text escaped (its function call and import per field
    # were a third of the rows' time); Korean wraps its punctuated words
    words: Callable[[Any], Markup] = escape if lang != "ko" else (lambda text: keep_words(text, "ko"))
    safe_slug = SLUG_RE.match
    make = tuple.__new__   # IndexRow(...) without its Python-level __new__, 10,000 times
    rows: list[IndexRow] = []
    append = rows.append
    for article in articles:
        theme = article.theme
        label = None
        if theme:
            label = themes.get(theme)
            if label is None:
                label = themes[theme] = escape(theme_label(theme, lang, site))
        when = article.date
        day = when.date()
        shown = days.get(day)
        if shown is None:
            shown = days[day] = escape(format_date(day, lang))
        version_lang = article.lang
        shown_lang = langs.get(version_lang)
        if shown_lang is None:
            shown_lang = langs[version_lang] = escape(version_lang)
        slug = article.slug
        summary = article.summary
        append(make(IndexRow, (
            article, shown_lang, slug if safe_slug(slug) else escape(slug), words(article.title),
            when.isoformat(), shown, label, machine if article.translation.status == "machine" else "",
            words(summary) if summary else "")))
    return rows


class WholeArticles(Sequence["Article"]):
    """The index page's ``articles``, for a site's own template: the whole Articles (body, tags, image...),
    made whole only when a template reads them (the packaged one reads ``rows``, which need no body)."""

    def __init__(self, listed: Sequence[Listed], full: Callable[[Sequence[Listed]], list[Article]]) -> None:
        self._listed = listed
        self._full = full
        self._whole: list[Article] | None = None

    def _all(self) -> list[Article]:
        if self._whole is None:
            self._whole = self._full(self._listed)
        return self._whole

    def __len__(self) -> int:
        return len(self._listed)

    @overload
    def __getitem__(self, index: int) -> Article: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Article]: ...

    def __getitem__(self, index: int | slice) -> Article | Sequence[Article]:
        if isinstance(index, slice):
            return self._full(self._listed[index]) if self._whole is None else self._whole[index]
        return self._all()[index] if self._whole is not None else self._full([self._listed[index]])[0]

    def __iter__(self) -> Iterator[Article]:
        return iter(self._all())


def article_page(feeds: SiteFeeds, article: Article) -> bytes:
    """``public/<lang>/<slug>/index.html``: the article, linked to its translations with hreflang."""
    from publisher.i18n import language_name

    site = feeds.site
    item = feeds.item(article)
    alternates = [PageLink(href=other.url, title=other.title, hreflang=other.lang,
                           relative=f"../../{other.lang}/{other.slug}/") for other in feeds.translations(article)]
    # x-default: the version the story was written in, the same on every translation's page.
    versions = feeds.versions[article.slug]
    original = next((v for v in versions.values() if not v.translation.is_translation), article)
    image_url = item.enclosure.url if item.enclosure else None
    if image_url and image_url.startswith(f"{site.url}/"):
        # Relative, so the page shows its image wherever public/ is served (a preview on localhost too).
        image_url = "../../" + image_url[len(site.url) + 1:]
    return render_page(
        site, "feeds/article.html.j2",
        lang=article.lang, article=article, item=item, site_title=site.title(article.lang),
        canonical=article.url, x_default=original.url, alternates=alternates, body_html=feeds.bodies(article.body),
        language_names={link.hreflang: language_name(link.hreflang or "", article.lang) for link in alternates},
        feeds=feed_links(feeds, article.lang, 1), image_url=image_url, index_relative="../",
        **page_context(feeds, article.lang, 1, article),
    )


def render_page(site: Site, template: str, **context: Any) -> bytes:
    """A page from ``templates/feeds/`` (a site's own templates first), as UTF-8 bytes."""
    lang = context.get("lang", "")
    context.setdefault("keep_words", lambda html: keep_words(html, lang))
    return site.templates.get_template(template).render(**context).encode("utf-8")


# A Korean word (eojeol) with punctuation in it: "(UNPOG)는", "것”이라고", "아시아·태평양". keep-all stops the
# browser from breaking between two syllables, but not after a closing bracket or quote, so the particle would
# start the next line. Such a word, when short, is kept on one line (<span class="nobr">).
_TAG_OR_TEXT = re.compile(r"(<[^>]*>)")
# Possessive (Python 3.11): each look-ahead scans the word once and never backtracks (a run of non-Hangul, then
# Hangul; a run of word characters, then punctuation), and a word longer than 24 is not retried shorter (the
# next character would be no space either): the same matches in half the time of the backtracking pattern.
_PUNCTUATED_HANGUL = re.compile(
    r"(?<!\S)(?=[^\s<>\uac00-\ud7a3]*+[\uac00-\ud7a3])(?=\w*+[^\s<>\w])[^\s<>]{2,24}+(?!\S)")
_PUNCTUATION = re.compile(r"[^\s\w]")   # a text without any has no word to wrap
_VERBATIM = ("pre", "code", "script", "style", "textarea")


def _nobr(word: re.Match[str]) -> str:
    # a function, not the template r'...\g<0>...': re.sub parses a template at each call (in Python)
    return f'<span class="nobr">{word[0]}</span>'


def keep_words(html_text: Any, lang: str) -> Markup:
    """``html_text`` (HTML, or plain text to escape) with each short punctuated Korean word wrapped in
    ``<span class="nobr">``, so no line break falls inside it. Only for Korean; tags and the text of
    ``pre``/``code`` are left as they are."""
    from markupsafe import Markup, escape

    if lang != "ko":   # nothing to wrap: the text as HTML (index pages call this twice per article)
        return html_text if isinstance(html_text, Markup) else escape(html_text)
    source = str(html_text) if isinstance(html_text, Markup) else str(escape(html_text))
    if "<" not in source:   # no tag (plain text, as index pages' titles and summaries): one run of text
        if _PUNCTUATION.search(source) is None:   # no punctuation, no word to wrap
            return Markup(source)
        return Markup(_PUNCTUATED_HANGUL.sub(_nobr, source))
    parts = _TAG_OR_TEXT.split(source)
    verbatim = 0
    for index, part in enumerate(parts):
        if index % 2:    # a tag
            name = part.strip("</>").split(None, 1)[0].lower() if part.strip("</>") else ""
            if name in _VERBATIM and not part.endswith("/>"):
                verbatim += -1 if part.startswith("</") else 1
            continue
        if verbatim <= 0 and part:
            parts[index] = _PUNCTUATED_HANGUL.sub(_nobr, part)
    return Markup("".join(parts))


__all__ = ["PageLink", "SignUp", "article_page", "feed_links", "index_page", "keep_words", "language_switch",
           "page_context", "render_page", "signup", "site_files", "theme_links"]
