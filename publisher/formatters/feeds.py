"""RSS 2.0 and Atom (feedgen), JSON Feed 1.1 and OPML documents built from published articles, as bytes.

Which articles go in which feed is ``publisher.formatters.site_feeds``; the HTML pages are
``publisher.formatters.pages``; the cache of rendered bodies is behind ``publisher.delivery.RenderCache``.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from publisher.errors import ContentError

if TYPE_CHECKING:
    from publisher.article import Article
    from publisher.site import Site

FORMATS = ("rss", "atom", "json")
FILENAMES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
    "opml": "text/x-opml",
    "html": "text/html",
}
FORMAT_NAMES = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
OPML_FILENAME = "feeds.opml"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# An empty feed still needs an "updated" date; a fixed one keeps rebuilds byte-identical (see write_if_changed).
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)


# --- what a feed is ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedSpec:
    """One feed: a language, optionally narrowed to one theme, with its title and where it lives."""

    lang: str
    title: str
    description: str
    base_url: str                     # PUBLISHER_SITE_URL, no trailing slash
    theme: str | None = None          # theme slug; None for the language's main feed
    theme_label: str | None = None    # the theme's name in this feed's language ("디지털정부")

    @property
    def directory(self) -> str:
        """Folder under ``public/``: ``en`` or ``en/themes/digital-government``."""
        return f"{self.lang}/themes/{self.theme}" if self.theme else self.lang

    def path(self, fmt: str) -> str:
        return f"{self.directory}/{FILENAMES[fmt]}"

    def url(self, fmt: str) -> str:
        return f"{self.base_url}/{self.path(fmt)}"

    @property
    def home_url(self) -> str:
        """The HTML page the feed describes: the language's index page."""
        return f"{self.base_url}/{self.lang}/"

    @property
    def formats(self) -> tuple[str, ...]:
        # Theme feeds are RSS and Atom only (issue 5); JSON Feed is per language.
        return ("rss", "atom") if self.theme else FORMATS


@dataclass(frozen=True)
class Enclosure:
    """The article image as a feed enclosure; ``length`` is 0 when the size cannot be known (remote image)."""

    url: str
    length: int
    media_type: str
    copy_from: Path | None = None     # a local image kept outside public/: copied to ``public/<public_path>``
    public_path: str | None = None


@dataclass(frozen=True)
class Category:
    term: str
    label: str


@dataclass(frozen=True)
class FeedItem:
    """Everything a feed says about one article version, computed once and shared by every format and feed."""

    id: str                           # stable: never changes when the article is edited or re-published
    lang: str
    slug: str
    url: str
    title: str
    summary_text: str
    summary_html: str
    content_html: str                 # sanitized body, preceded by the machine-translation notice if any
    author: str | None
    categories: tuple[Category, ...]
    published: datetime
    updated: datetime
    enclosure: Enclosure | None = None
    image_alt: str = ""
    translations: tuple[tuple[str, str], ...] = ()   # (lang, url) of the other versions of the same story
    machine_translated: bool = False
    notice: str | None = None


# --- items from articles -----------------------------------------------------------------------------------


def tag_uri(base_url: str, article: Article) -> str:
    """A tag: URI (RFC 4151) for an article version: the site's host, its first publication date, lang/slug.

    The caller keeps the first one it hands out (see ``FeedsChannel``), so a later edit of the date or a move
    of the site to another host does not make readers see the article as new.
    """
    host = _host(base_url)
    day = article.date.date().isoformat()   # the day as written in the article, in its own time zone
    return f"tag:{host},{day}:{article.lang}/{article.slug}"


@lru_cache(maxsize=16)
def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def image_enclosure(article: Article, site: Site) -> Enclosure | None:
    """The article's image as an enclosure with its real byte length and media type.

    A local image is looked up under ``content/``, then the site folder, then ``public/``; its URL is the site
    URL plus the path as written, and an image found outside ``public/`` is copied there (same path) by the
    build so the URL resolves. A remote image (http/https) is not fetched, since builds are offline: its length is written
    as 0, as the RSS Advisory Board recommends when the size cannot be determined, and its type is guessed
    from the file name.
    """
    image = article.image
    if image is None or not image.src:
        return None
    src = image.src.strip()
    media_type = mimetypes.guess_type(urlsplit(src).path)[0] or "application/octet-stream"
    if src.startswith(("http://", "https://")):
        return Enclosure(url=src, length=0, media_type=media_type)
    try:
        source = site.media_path(src)
    except ValueError:
        raise ContentError(article.path, "image.src", f"must stay inside the site folder: {src}") from None
    if source is None:
        raise ContentError(article.path, "image",
                           f"file not found: {src} (looked in content/, the site folder and public/)")
    url = site.media_url(src)
    if source.is_relative_to(site.public_dir):
        return Enclosure(url=url, length=source.stat().st_size, media_type=media_type)
    return Enclosure(url=url, length=source.stat().st_size, media_type=media_type,
                     copy_from=source, public_path=src.lstrip("/"))


# Characters XML 1.0 cannot carry (C0 controls other than tab and newlines, lone surrogates, U+FFFE/U+FFFF);
# pasted text brings them in (a vertical tab from a word processor) and lxml refuses the whole feed for one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters that XML 1.0 forbids; everything else is kept."""
    # A printable string holds none of them (they are all control, surrogate or unassigned code points), and
    # isprintable() is a quick scan that stops at the first newline of a body: most fields skip the regex.
    return text if text.isprintable() else _NOT_XML.sub("", text)


@lru_cache(maxsize=4096)
def _category(term: str, label: str) -> Category:
    """A theme or tag as a category, made XML-safe once: a site has a few of them and 20,000 entries."""
    return Category(term=xml_safe(term), label=xml_safe(label))


def make_item(
    article: Article,
    *,
    item_id: str,
    translations: Sequence[tuple[str, str]] = (),
    enclosure: Enclosure | None = None,
    notice: str | None = None,
    theme_label: str | None = None,
    render_markdown: Callable[[str], str] | None = None,
    render_xml: Callable[[str], str] | None = None,
    summary_text: Callable[[str], str] | None = None,
) -> FeedItem:
    """Collect what the feeds need from one article version (the body is rendered and sanitized once here).

    ``render_markdown`` turns Markdown into sanitized HTML; default ``publisher.markup.markdown_to_html``
    (``SiteFeeds`` passes its ``BodyRenderer``, backed by the cache that survives between builds).
    ``render_xml`` gives that HTML made XML-safe (default ``xml_safe`` over ``render_markdown``; ``SiteFeeds``
    passes ``BodyRenderer.xml_html``, cached the same way). ``summary_text`` gives a summary's plain text from
    its Markdown (default ``plain_summary`` over ``render_markdown``; ``SiteFeeds`` passes
    ``BodyRenderer.plain_text``, cached the same way).
    """
    render: Callable[[str], str]
    if render_markdown is None:
        from publisher.markup import markdown_to_html

        render = markdown_to_html
    else:
        render = render_markdown
    safe_html: Callable[[str], str] = render_xml or (lambda markdown: xml_safe(render(markdown)))
    categories: list[Category] = []
    if article.theme:
        categories.append(_category(article.theme_slug or article.theme, theme_label or article.theme))
    categories.extend(_category(tag, tag) for tag in article.tags)
    body_html = safe_html(article.body)
    if notice:
        # The notice leads the content so a reader sees it before the translated text, in every format.
        body_html = f'<p><em>{html.escape(notice)}</em></p>\n{body_html}'
    summary_html = safe_html(article.summary) if article.summary else ""
    if not article.summary:
        text = ""
    elif summary_text is None:
        text = plain_summary(summary_html)
    else:
        text = summary_text(article.summary)
    published = article.date
    return FeedItem(
        id=item_id,
        lang=article.lang,
        slug=article.slug,
        url=article.url,
        title=xml_safe(article.title),
        summary_text=text,
        summary_html=summary_html,
        content_html=body_html,
        author=xml_safe(article.author) if article.author else None,
        categories=tuple(categories),
        published=published,
        updated=max(article.updated or published, published),
        enclosure=enclosure,
        image_alt=xml_safe(article.image.alt) if article.image else "",
        translations=tuple(translations),
        machine_translated=article.is_machine_translation,
        notice=notice,
    )


def plain_summary(summary_html: str) -> str:
    """A summary's plain text from its sanitized (and XML-safe) HTML, on one line, so Markdown marks and
    stripped markup never reach JSON readers."""
    from publisher.markup import html_to_text

    return " ".join(html_to_text(summary_html).split())


def feed_updated(items: Sequence[FeedItem]) -> datetime:
    """The newest change among the items: derived from content, never the clock, so unchanged feeds stay unchanged."""
    return max((item.updated for item in items), default=EMPTY_FEED_DATE)


# --- RSS 2.0 and Atom (feedgen) ----------------------------------------------------------------------------
#
# feedgen builds each document's tree and lxml serializes it (pretty-printed). An item becomes one feedgen
# FeedEntry, built once per build and added to every feed it is in (its language's, its theme's): feedgen's
# add_entry() takes an existing entry, keeps the extensions already registered on it, and rss_entry() /
# atom_entry() read the entry without changing it, so a shared entry writes the same elements in each feed.


@lru_cache(maxsize=1)
def _feedgen_extensions() -> dict[str, tuple[type, type, bool, bool]]:
    """feedgen extensions (namespace -> feed class, entry class, atom?, rss?) that fill what feedgen lacks.

    Made once per process: an entry shared by several feeds is registered with these classes once.
    """
    from feedgen.ext.base import BaseEntryExtension, BaseExtension
    from feedgen.util import xml_elem

    class RssNamespaces(BaseExtension):  # type: ignore[misc]
        def extend_ns(self) -> dict[str, str]:
            return {"dc": DC_NS}

    class RssItemExtras(BaseEntryExtension):  # type: ignore[misc]
        """The item's links and categories, all at once: its <link>, <category>s and <enclosure> where feedgen
        would write them (after the <title>; before the <pubDate>), without FeedEntry.link() and .category(),
        which check and copy every dict given (ensure_format: a tenth of a warm build); hreflang links to
        translations; dc:creator (RSS has no author name without an email address)."""

        def __init__(self) -> None:
            self.link: str | None = None
            self.enclosure: Enclosure | None = None
            self.categories: tuple[Category, ...] = ()
            self.creator: str | None = None
            self.translations: tuple[tuple[str, str], ...] = ()
            self.base: str | None = None

        def extend_rss(self, entry: Any) -> Any:
            if self.base:
                entry.set(XML_BASE, self.base)
            own_link = None
            if self.link:
                own_link = xml_elem("link", entry)
                own_link.text = self.link
                title = entry.find("title")
                if title is not None:
                    title.addnext(own_link)
                else:
                    entry.insert(0, own_link)
            published = entry.find("pubDate")
            later = [xml_elem("category", entry) for _ in self.categories]
            for element, category in zip(later, self.categories):
                element.text = category.label   # feedgen's RSS category: the Atom label
            if self.enclosure is not None:
                later.append(xml_elem("enclosure", entry, url=self.enclosure.url,
                                      length=str(self.enclosure.length), type=self.enclosure.media_type))
            if published is not None:
                for element in later:
                    published.addprevious(element)
            if self.creator:
                xml_elem(f"{{{DC_NS}}}creator", entry).text = self.creator
            # Before the item's own <link>: feedparser takes the last HTML alternate as the item's link.
            for lang, url in self.translations:
                element = xml_elem(f"{{{ATOM_NS}}}link", entry, rel="alternate", type="text/html", hreflang=lang,
                                   href=url)
                if own_link is not None:
                    own_link.addprevious(element)
            return entry

    class AtomNamespaces(BaseExtension):  # type: ignore[misc]
        def extend_ns(self) -> dict[str, str]:
            return {}

    class AtomEntryLinks(BaseEntryExtension):  # type: ignore[misc]
        """Writes the entry's <author> and <category>s where feedgen would (after <updated>; before
        <published>), and its <link> elements, complete and in reading order.

        Not FeedEntry.author(), .category() and .link(): besides their cost (see RssItemExtras), feedgen 1.0's
        FeedEntry.atom_entry() rebinds its loop variable to the new element before reading the link's attributes,
        so every entry <link> would come out with an href only (all "alternate", the enclosure included). The
        order is kept: the article's own page last, since feedparser (like feedgen's RSS) takes the last HTML
        alternate as the entry's link.
        """

        def __init__(self) -> None:
            self.links: list[dict[str, str]] = []
            self.base: str | None = None
            self.author: str | None = None
            self.categories: tuple[Category, ...] = ()

        def extend_atom(self, entry: Any) -> Any:
            if self.base:
                entry.set(XML_BASE, self.base)
            if self.author:
                author = xml_elem("author", entry)
                xml_elem("name", author).text = self.author
                updated = entry.find("updated")
                if updated is not None:
                    updated.addnext(author)
            if self.categories:
                published = entry.find("published")
                for category in self.categories:
                    element = (xml_elem("category", entry, term=category.term, label=category.label)
                               if category.label else xml_elem("category", entry, term=category.term))
                    if published is not None:
                        published.addprevious(element)
            for link in self.links:
                xml_elem("link", entry, **{k: v for k, v in link.items() if v})
            return entry

    return {
        "publisher_rss": (RssNamespaces, RssItemExtras, False, True),
        "publisher_atom": (AtomNamespaces, AtomEntryLinks, True, False),
    }


def feed_entry(item: FeedItem) -> Any:
    """One item as a feedgen ``FeedEntry`` with our extensions, ready to be added to any number of feeds."""
    from feedgen.entry import FeedEntry

    entry = FeedEntry()
    for namespace, (_, entry_extension, atom, rss) in _feedgen_extensions().items():
        entry.register_extension(namespace, entry_extension, atom=atom, rss=rss)
    entry.id(item.id)
    entry.title(item.title)
    # Order matters: summary() first fills RSS <description>; content() then adds <content:encoded>.
    entry.summary(item.summary_html or item.content_html, type="html")
    entry.content(item.content_html, type="html")
    own = {"href": item.url, "rel": "alternate", "type": "text/html", "hreflang": item.lang}
    others = [{"href": url, "rel": "alternate", "type": "text/html", "hreflang": lang}
              for lang, url in item.translations]
    enclosure = [{"href": item.enclosure.url, "rel": "enclosure", "type": item.enclosure.media_type,
                  "length": str(item.enclosure.length)}] if item.enclosure else []
    # The article's own page last: feedparser's entry link is the last alternate.
    # Our extensions write every link (not FeedEntry.link()): the Atom ones AtomEntryLinks, RSS RssItemExtras.
    entry.publisher_atom.links = [*others, own, *enclosure]
    entry.publisher_rss.link = item.url
    entry.publisher_rss.enclosure = item.enclosure
    entry.publisher_rss.categories = entry.publisher_atom.categories = item.categories
    entry.publisher_atom.author = item.author
    entry.published(item.published)
    entry.updated(item.updated)
    # Relative links and images in a body resolve against the article's page, as on the page itself.
    entry.publisher_rss.base = entry.publisher_atom.base = item.url
    entry.publisher_rss.creator = item.author
    entry.publisher_rss.translations = item.translations
    return entry


def render_rss_and_atom(
    spec: FeedSpec,
    items: Sequence[FeedItem],
    other_languages: Mapping[str, FeedSpec] | None = None,
    *,
    entries: Callable[[FeedItem], Any] = feed_entry,
) -> tuple[bytes, bytes]:
    """The RSS 2.0 and Atom documents of one feed, from one feedgen generator (entries are built once).

    ``items`` must already be newest first and cut to the maximum; ``other_languages`` maps a language to
    the same feed in that language, linked with hreflang. ``entries`` gives an item's feedgen entry
    (``feed_entry``; ``SiteFeeds`` passes one that keeps it for the other feeds the item is in).
    """
    from feedgen.feed import FeedGenerator

    other_languages = other_languages or {}

    fg = FeedGenerator()
    for namespace, (feed_ext, entry_ext, atom, rss) in _feedgen_extensions().items():
        fg.register_extension(namespace, feed_ext, entry_ext, atom=atom, rss=rss)
    fg.id(spec.url("atom"))
    fg.title(spec.title)
    fg.subtitle(spec.description or spec.title)   # RSS requires a description
    fg.language(spec.lang)
    fg.author({"name": spec.title})               # Atom requires an author; entries without one inherit the site
    fg.generator("publisher")
    updated = feed_updated(items)
    fg.updated(updated)
    fg.lastBuildDate(updated)

    def set_links(fmt: str) -> None:
        # Fresh dicts each time (feedgen fills defaults in place). The HTML page comes last because feedgen
        # takes the RSS channel <link> from the last alternate link.
        links = [{"href": other.url(fmt), "rel": "alternate", "type": MEDIA_TYPES[fmt], "hreflang": lang}
                 for lang, other in other_languages.items()]
        links.append({"href": spec.url(fmt), "rel": "self", "type": MEDIA_TYPES[fmt]})
        links.append({"href": spec.home_url, "rel": "alternate", "type": "text/html", "hreflang": spec.lang})
        fg.link(links, replace=True)

    for item in items:
        # An entry made elsewhere keeps its extensions (add_entry's registration raises ImportError, caught).
        fg.add_entry(entries(item), order="append")
    set_links("rss")
    rss = fg.rss_str(pretty=True)
    set_links("atom")
    atom = fg.atom_str(pretty=True)
    return rss, atom


# --- JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) -------------------------------------------------


def json_feed_document(spec: FeedSpec, items: Sequence[FeedItem]) -> dict[str, Any]:
    """The JSON Feed 1.1 object: ``version``, ``title`` and ``items`` are required; each item needs ``id`` and content."""
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": spec.title,
        "home_page_url": spec.home_url,
        "feed_url": spec.url("json"),
        "language": spec.lang,
    }
    if spec.description:
        document["description"] = spec.description
    document["authors"] = [{"name": spec.title, "url": spec.home_url}]
    document["items"] = [json_feed_item(item) for item in items]
    return document


def json_feed_item(item: FeedItem) -> dict[str, Any]:
    """One item of the JSON Feed (``json_feed_document``'s ``items``)."""
    entry: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "title": item.title,
        "content_html": item.content_html,
    }
    if item.summary_text:
        entry["summary"] = item.summary_text
    if item.enclosure and item.enclosure.media_type.startswith("image/"):
        entry["image"] = item.enclosure.url
    entry["date_published"] = item.published.isoformat()
    entry["date_modified"] = item.updated.isoformat()
    if item.author:
        entry["authors"] = [{"name": item.author}]
    if item.categories:
        entry["tags"] = [c.label for c in item.categories]
    entry["language"] = item.lang
    if item.enclosure:
        attachment: dict[str, Any] = {"url": item.enclosure.url, "mime_type": item.enclosure.media_type}
        if item.image_alt:
            attachment["title"] = item.image_alt
        if item.enclosure.length:
            attachment["size_in_bytes"] = item.enclosure.length
        entry["attachments"] = [attachment]
    # Custom keys start with an underscore (JSON Feed 1.1 "Extensions").
    extension: dict[str, Any] = {"machine_translation": item.machine_translated}
    if item.translations:
        extension["translations"] = [{"language": lang, "url": url} for lang, url in item.translations]
    entry["_publisher"] = extension
    return entry


def render_json_feed(spec: FeedSpec, items: Sequence[FeedItem]) -> bytes:
    """The JSON Feed file: UTF-8, Korean kept readable (no \\u escapes), stable key order; exactly
    ``json.dumps(json_feed_document(spec, items))`` with these options.

    Compact on purpose: ``indent`` makes json fall back to its pure-Python encoder, half the speed. Each item is
    encoded as soon as it is made (JSON is written part by part the same way), so its dicts die young: holding
    20,000 items' dicts until one dumps() made the garbage collector walk them again and again.
    """
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    head = encode(json_feed_document(spec, []))
    assert head.endswith("[]}")   # "items" is the document's last key
    body = ",".join([encode(json_feed_item(item)) for item in items])
    return f"{head[:-2]}{body}]}}\n".encode("utf-8")


# --- OPML --------------------------------------------------------------------------------------------------


def render_opml(title: str, specs: Sequence[FeedSpec]) -> bytes:
    """An OPML 2.0 subscription list of every feed, grouped by language (readers import it in one step).

    No dateCreated: the list only changes when the feeds do, so an unchanged build leaves the file alone.
    """
    from xml.etree import ElementTree as ET

    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    by_lang: dict[str, list[FeedSpec]] = {}
    for spec in specs:
        by_lang.setdefault(spec.lang, []).append(spec)
    for lang, lang_specs in by_lang.items():
        group = ET.SubElement(body, "outline", text=lang_specs[0].title, language=lang)
        for spec in lang_specs:
            for fmt in spec.formats:
                if fmt == "json":
                    continue  # OPML's type attribute only knows rss (which readers also use for Atom)
                name = f"{spec.title} ({FORMAT_NAMES[fmt]})"
                ET.SubElement(group, "outline", type="rss", text=name, title=name, xmlUrl=spec.url(fmt),
                              htmlUrl=spec.home_url, language=lang, version="RSS2" if fmt == "rss" else "ATOM")
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + document + b"\n"
