"""A site's feeds as a whole: which article versions go in which feed, and every file a build writes.

``SiteFeeds`` decides the entries of each feed (per language, per theme, newest first, at most
``FEED_MAX_ITEMS``) and renders the feed documents (``publisher.formatters.feeds``), the OPML list, the
HTML pages, the favicon and robots.txt (``publisher.formatters.pages``). Rendered bodies are kept between
builds through a ``publisher.delivery.RenderCache`` (``BodyRenderer``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.formatters.feeds import (MEDIA_TYPES, OPML_FILENAME, FeedItem, FeedSpec, feed_entry, image_enclosure,
                                        make_item, plain_summary, render_json_feed, render_opml, render_rss_and_atom,
                                        tag_uri, xml_safe)
from publisher.formatters.pages import article_page, index_page, site_files

if TYPE_CHECKING:
    from publisher.article import Article, Listed
    from publisher.delivery import RenderCache
    from publisher.site import Site


@dataclass(frozen=True)
class OutputFile:
    """One file of a build, its path relative to ``public/`` (POSIX)."""

    path: str
    content: bytes
    media_type: str
    lang: str | None = None
    items: int = 0


# --- rendered bodies, kept between builds ------------------------------------------------------------------


class BodyRenderer:
    """Markdown to sanitized HTML, reusing the bodies a ``RenderCache`` kept from earlier builds.

    Rendering and sanitizing Markdown is most of the cost of a build (about 0.4 ms an article): a site's first
    build renders every body in its feeds and pages, later builds and publishes only new or edited ones.
    Bodies are keyed by a hash of the Markdown and of the renderer (``publisher/markup.py`` and the markdown-it
    and nh3 versions), so a change of the sanitizing rules renders everything again. Without a cache (preview,
    the review page) every body is rendered; nothing is stored.
    """

    def __init__(self, cache: RenderCache | None = None) -> None:
        self.cache = cache
        self.used: set[str] = set()
        self.known: dict[str, str] = {}
        self.new: dict[str, str] = {}
        self._seeds: dict[str, Any] = {}
        # Markdown -> its key, per kind: a feed asks for a body in the prefetch and again for the item, and a
        # text's hash is cached on the str object, so the second look-up costs nothing next to a blake2b.
        self._keys: dict[str, dict[str, str]] = {"html": {}, "text": {}}

    def _key(self, kind: str, markdown: str) -> str:
        keys = self._keys[kind]
        key = keys.get(markdown)
        if key is None:
            seed = self._seeds.get(kind)
            if seed is None:
                import hashlib

                seed = self._seeds[kind] = hashlib.blake2b(renderer_fingerprint(kind).encode("ascii"),
                                                           digest_size=16)
            digest = seed.copy()
            digest.update(markdown.encode("utf-8"))
            key = keys[markdown] = digest.hexdigest()
        return key

    def key(self, markdown: str) -> str:
        """The cache key of ``markdown``'s sanitized HTML."""
        return self._key("html", markdown)

    def text_key(self, markdown: str) -> str:
        """The cache key of the plain text of ``markdown`` (a summary, for JSON Feed and page descriptions)."""
        return self._key("text", markdown)

    def xml_key(self, markdown: str) -> str:
        """The cache key of ``markdown``'s sanitized HTML made XML-safe (``xml_html``): the HTML's key and a
        fingerprint of the feeds module (``xml_safe``)."""
        return self.key(markdown) + self._xml_suffix

    @cached_property
    def _xml_suffix(self) -> str:
        return "x" + renderer_fingerprint("text")[:8]

    def prefetch(self, markdowns: Iterable[str], texts: Iterable[str] = (), xml: Iterable[str] = ()) -> None:
        """Read the cached bodies of ``markdowns``, the plain texts of ``texts`` and the XML-safe bodies of
        ``xml`` (a feed's entries and their summaries) in one look-up, before rendering them."""
        if self.cache is None:
            return
        wanted = ([self.key(text) for text in markdowns] + [self.text_key(text) for text in texts]
                  + [self.xml_key(text) for text in xml])
        keys = [key for key in wanted if key not in self.known]
        if keys:
            self.known.update(self.cache.get_many(keys))

    def _lookup(self, key: str) -> str | None:
        self.used.add(key)
        found = self.known.get(key)
        if found is None and self.cache is not None:
            found = self.cache.get_many([key]).get(key)
            if found is not None:
                self.known[key] = found
        return found

    def __call__(self, markdown: str) -> str:
        key = self.key(markdown)
        html_text = self._lookup(key)
        if html_text is None:
            from publisher.markup import markdown_to_html

            html_text = self.known[key] = self.new[key] = markdown_to_html(markdown)
        return html_text

    def xml_html(self, markdown: str) -> str:
        """``publisher.formatters.feeds.xml_safe`` of ``markdown`` rendered, what a feed carries, kept like the
        bodies so that a warm build does not scan every body again for characters XML forbids.

        Most bodies have none: then the entry holds "" (the XML-safe body is the HTML itself, read from its own
        entry), so the cache does not hold each body twice."""
        key = self.xml_key(markdown)
        safe = self._lookup(key)
        if safe is None:
            html_text = self(markdown)
            safe = xml_safe(html_text)
            self.known[key] = self.new[key] = "" if safe == html_text else safe
            return safe
        if not safe:
            return self(markdown)
        self.used.add(self.key(markdown))   # the HTML too is kept: the article's page shows it
        return safe

    def plain_text(self, markdown: str) -> str:
        """``publisher.formatters.feeds.plain_summary`` of ``markdown`` rendered, kept like the bodies."""
        key = self.text_key(markdown)
        text = self._lookup(key)
        if text is None:
            text = self.known[key] = self.new[key] = plain_summary(self.xml_html(markdown))
        return text

    def save(self, *, prune: bool) -> None:
        """Store the bodies rendered this time; ``prune`` (after a full build) drops those no longer used."""
        if self.cache is None or (not self.new and not prune):
            return
        self.cache.put_many(self.new.items())
        if prune:
            self.cache.keep_only(self.used)
        self.new.clear()


@lru_cache(maxsize=2)
def renderer_fingerprint(kind: str = "html") -> str:
    """What the rendered HTML depends on besides the Markdown: the markup module and its two libraries; for a
    summary's plain text (``kind="text"``), also the feeds module (``xml_safe``, ``plain_summary``)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    import publisher.formatters.feeds
    import publisher.markup

    digest = hashlib.blake2b(Path(publisher.markup.__file__).read_bytes(), digest_size=16)
    if kind == "text":
        digest.update(b"text\0" + Path(publisher.formatters.feeds.__file__).read_bytes())
    for package in ("markdown-it-py", "nh3"):
        try:
            digest.update(version(package).encode())
        except PackageNotFoundError:
            pass
    return digest.hexdigest()


# --- a whole site: every feed, the OPML list and the pages ----------------------------------------------


class SiteFeeds:
    """Renders a site's feeds, OPML list, index pages and article pages from its published article versions.

    ``published`` holds every version that may appear (the pipeline's machine-translation rule already
    applied): whole ``Article``s, or listings of them (``publisher.article.Listed``: an index entry without
    its body) that ``full`` makes whole when one is rendered in full (``full_articles``, e.g.
    ``Catalog.full``); ``item_id`` gives each version its stable feed id. Items are made lazily, so a site with
    10,000 articles renders only the bodies that land in a feed or on a page being rebuilt.
    """

    def __init__(
        self,
        site: Site,
        published: Iterable[Listed],
        *,
        item_id: Callable[[Article], str] | None = None,
        max_items: int | None = None,
        cache: RenderCache | None = None,
        prefetch_ids: Callable[[list[tuple[str, str]]], None] | None = None,
        full_articles: Callable[[Sequence[Listed]], list[Article]] | None = None,
    ) -> None:
        self.site = site
        self.full_articles = full_articles or _already_whole
        self._whole: dict[tuple[str, str], Article] = {}
        # read the ids of the versions about to become items at once (``item_id`` is asked one by one)
        self.prefetch_ids = prefetch_ids
        self.languages: tuple[str, ...] = tuple(site.languages)
        self.max_items = max_items if max_items is not None else int(site.config.get("FEED_MAX_ITEMS"))
        base_url = site.url   # a property read from the settings: once, not once per article
        self.item_id: Callable[[Article], str] = item_id or (lambda article: tag_uri(base_url, article))
        self.versions: dict[str, dict[str, Listed]] = {}
        self.by_lang: dict[str, list[Listed]] = {lang: [] for lang in self.languages}
        # theme slug -> theme as written (the English key that the catalogs translate), per language
        self.themes: dict[str, dict[str, str]] = {lang: {} for lang in self.languages}
        for article in published:
            if article.lang not in self.by_lang:
                continue
            self.versions.setdefault(article.slug, {})[article.lang] = article
            self.by_lang[article.lang].append(article)
            if article.theme and article.theme_slug:
                self.themes[article.lang].setdefault(article.theme_slug, article.theme)
        for articles in self.by_lang.values():
            # the instant as a number: the same order as the aware datetimes, without a UTC offset per compare
            articles.sort(key=lambda a: (a.date.timestamp(), a.slug), reverse=True)
        self._items: dict[tuple[str, str], FeedItem] = {}
        self._entries: dict[tuple[str, str], Any] = {}   # feedgen FeedEntry objects, shared by the feeds
        self._labels: dict[tuple[str, str], str] = {}
        self.bodies = BodyRenderer(cache)

    # --- feeds ---------------------------------------------------------------------------------------------

    def spec(self, lang: str, theme: str | None = None) -> FeedSpec:
        from publisher.i18n import theme_label

        title, description = self.site.title(lang), self.site.description(lang)
        if theme is None:
            return FeedSpec(lang=lang, title=title, description=description, base_url=self.site.url)
        label = theme_label(self.themes[lang][theme], lang, self.site)
        return FeedSpec(lang=lang, title=f"{title}: {label}", description=description or label,
                        base_url=self.site.url, theme=theme, theme_label=label)

    def specs(self) -> list[FeedSpec]:
        """Every feed of the site: per language, then per theme of that language (sorted for stable output)."""
        return [spec for lang in self.languages
                for spec in [self.spec(lang)] + [self.spec(lang, theme) for theme in sorted(self.themes[lang])]]

    def full(self, article: Listed) -> Article:
        """The whole Article of a version (its body, tags, image...)."""
        key = (article.slug, article.lang)
        if key not in self._whole:
            self._make_whole([article])
        return self._whole[key]

    def _make_whole(self, versions: Iterable[Listed]) -> None:
        wanted = [v for v in versions if (v.slug, v.lang) not in self._whole]
        if wanted:
            for listed, article in zip(wanted, self.full_articles(wanted)):
                self._whole[(listed.slug, listed.lang)] = article

    def translations(self, article: Listed) -> list[Listed]:
        """The other published versions of the same story, in site language order."""
        versions = self.versions.get(article.slug, {})
        return [versions[lang] for lang in self.languages if lang != article.lang and lang in versions]

    def item(self, listed: Listed) -> FeedItem:
        key = (listed.slug, listed.lang)
        item = self._items.get(key)
        if item is None:
            from publisher.i18n import machine_notice

            article = self.full(listed)
            item = self._items[key] = make_item(
                article,
                item_id=self.item_id(article),
                translations=[(other.lang, other.url) for other in self.translations(article)],
                enclosure=image_enclosure(article, self.site) if article.image else None,
                notice=machine_notice(article, self.site),
                theme_label=self._theme_label(article.theme, article.lang) if article.theme else None,
                render_markdown=self.bodies,
                render_xml=self.bodies.xml_html,
                summary_text=self.bodies.plain_text,
            )
        return item

    def _theme_label(self, theme: str, lang: str) -> str:
        """``publisher.i18n.theme_label``, asked once per theme and language rather than once per article."""
        label = self._labels.get((theme, lang))
        if label is None:
            from publisher.i18n import theme_label

            label = self._labels[(theme, lang)] = theme_label(theme, lang, self.site)
        return label

    def feed_entry(self, item: FeedItem) -> Any:
        """An item's feedgen entry, built once for every feed it is in (its language's, its theme's)."""
        key = (item.slug, item.lang)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = feed_entry(item)
        return entry

    def _prefetch(self, listed: Iterable[Listed]) -> None:
        """The articles about to become items made whole, and their bodies (and summaries' plain texts) read
        from the cache, each in one look-up."""
        pending = [v for v in listed if (v.slug, v.lang) not in self._items]
        self._make_whole(pending)
        texts: list[str] = []
        summaries: list[str] = []
        keys: list[tuple[str, str]] = []
        for article in (self._whole[(v.slug, v.lang)] for v in pending):
            keys.append((article.slug, article.lang))
            texts.append(article.body)
            if article.summary:
                texts.append(article.summary)
                summaries.append(article.summary)
        self.bodies.prefetch(texts, summaries, texts)
        if self.prefetch_ids is not None and keys:
            self.prefetch_ids(keys)

    def entries(self, spec: FeedSpec) -> list[Listed]:
        """The versions in a feed, newest first, at most ``max_items``."""
        articles = self.by_lang.get(spec.lang, [])
        if spec.theme:
            articles = [a for a in articles if a.theme_slug == spec.theme]
        return articles[: self.max_items]

    def feed_files(self, spec: FeedSpec) -> list[OutputFile]:
        entries = self.entries(spec)
        self._prefetch(entries)
        items = [self.item(article) for article in entries]
        others = {lang: self.spec(lang, spec.theme) for lang in self.languages
                  if lang != spec.lang and (spec.theme is None or spec.theme in self.themes[lang])}
        rss, atom = render_rss_and_atom(spec, items, others, entries=self.feed_entry)
        files = [OutputFile(spec.path("rss"), rss, MEDIA_TYPES["rss"], spec.lang, len(items)),
                 OutputFile(spec.path("atom"), atom, MEDIA_TYPES["atom"], spec.lang, len(items))]
        if "json" in spec.formats:
            files.append(OutputFile(spec.path("json"), render_json_feed(spec, items), MEDIA_TYPES["json"],
                                    spec.lang, len(items)))
        return files

    def opml_file(self) -> OutputFile:
        title = " / ".join(dict.fromkeys(self.site.title(lang) for lang in self.languages))
        return OutputFile(OPML_FILENAME, render_opml(title, self.specs()), MEDIA_TYPES["opml"])

    # --- pages ---------------------------------------------------------------------------------------------

    def index_file(self, lang: str) -> OutputFile:
        return OutputFile(f"{lang}/index.html", index_page(self, lang), MEDIA_TYPES["html"], lang,
                          len(self.by_lang.get(lang, [])))

    def article_file(self, article: Listed) -> OutputFile:
        return OutputFile(f"{article.lang}/{article.slug}/index.html", article_page(self, self.full(article)),
                          MEDIA_TYPES["html"], article.lang)

    # --- everything ----------------------------------------------------------------------------------------

    def render(
        self,
        *,
        langs: Iterable[str] | None = None,
        themes: Iterable[str] | None = None,
        pages: Iterable[tuple[str, str]] | None = None,
    ) -> list[OutputFile]:
        """The files to write: the feeds and index pages of ``langs`` (default all) and, of their themes, only
        ``themes`` (default all); article pages for ``pages`` ((slug, lang) pairs; default every version);
        the OPML list, ``favicon.svg`` and ``robots.txt`` always."""
        chosen_langs = [lang for lang in self.languages if langs is None or lang in set(langs)]
        chosen_themes = None if themes is None else set(themes)
        files: list[OutputFile] = []
        for lang in chosen_langs:
            files.extend(self.feed_files(self.spec(lang)))
            for theme in sorted(self.themes[lang]):
                if chosen_themes is None or theme in chosen_themes:
                    files.extend(self.feed_files(self.spec(lang, theme)))
            files.append(self.index_file(lang))
        if pages is None:
            wanted = [article for lang in chosen_langs for article in self.by_lang[lang]]
        else:
            wanted = [self.versions[slug][lang] for slug, lang in pages
                      if lang in self.versions.get(slug, {})]
        self._prefetch(wanted)
        files.extend(self.article_file(article) for article in wanted)
        files.extend(self.image_files())
        files.append(self.opml_file())
        files.extend(OutputFile(path, content, media_type) for path, content, media_type in site_files(self.site))
        return files

    def keep_rendered_bodies(self, *, full_build: bool) -> None:
        """Save the rendered-body cache after the files were written (a full build also drops stale bodies)."""
        self.bodies.save(prune=full_build)

    def image_files(self) -> list[OutputFile]:
        """Copies under ``public/`` of the local images that the rendered items link to from elsewhere."""
        copies: dict[str, OutputFile] = {}
        for item in self._items.values():
            enclosure = item.enclosure
            if enclosure and enclosure.copy_from and enclosure.public_path:
                copies[enclosure.public_path] = OutputFile(
                    enclosure.public_path, enclosure.copy_from.read_bytes(), enclosure.media_type, item.lang)
        return [copies[path] for path in sorted(copies)]


def _already_whole(versions: Sequence[Listed]) -> list[Article]:
    """Without ``full_articles``, every version given must be a whole Article."""
    from publisher.article import Article

    whole = [v for v in versions if isinstance(v, Article)]
    if len(whole) != len(versions):
        raise TypeError("SiteFeeds was given listings without a way to make them whole (full_articles)")
    return whole


__all__ = ["BodyRenderer", "OutputFile", "SiteFeeds", "renderer_fingerprint"]
