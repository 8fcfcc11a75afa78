"""Email bulletins rendered: an alert (one article) or a digest (several), once per language, as a `Bulletin`.

Rendering only (jinja2): the per-recipient parts, the signed unsubscribe and preferences links, are left as
markers that the mail builder (``publisher.mail.message``) fills in at send time from the recipient, with
the MIME structure, the inlined CSS, the bulk-sender headers and DKIM.

The logo (``BULLETIN_LOGO``) is read here too: a file of the site becomes an inline image the HTML names by
``cid:`` (RFC 2392), which the builder attaches in a multipart/related part, so it shows in the mail without
the site being served; an http(s) URL is used as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from publisher.errors import ConfigError

if TYPE_CHECKING:
    from publisher.article import Article
    from publisher.config import Config
    from publisher.site import Site

# Stand-ins for the per-recipient links; plain ASCII so neither autoescaping nor css-inline changes them.
UNSUBSCRIBE_MARKER = "PUBLISHER-UNSUBSCRIBE-URL-4e1b"
PREFERENCES_MARKER = "PUBLISHER-PREFERENCES-URL-4e1b"


# The logo is shown at most this high (CSS pixels) and this wide in the masthead.
LOGO_HEIGHT = 48
LOGO_MAX_WIDTH = 240
# Embedded in every message: a larger file makes every bulletin that much heavier (and spam filters wary).
LOGO_MAX_BYTES = 200_000
# What mail clients show inline; SVG and WebP are not shown by Outlook and many webmails.
_LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif"}


@dataclass(frozen=True)
class InlineImage:
    """An image sent inside the message (multipart/related), named in the HTML by ``cid:<cid>``."""

    cid: str                       # without the angle brackets
    data: bytes
    content_type: str              # image/png, image/jpeg or image/gif
    filename: str


@dataclass(frozen=True)
class Logo:
    """The bulletin's logo as the masthead shows it: ``src`` is the URL or ``cid:...`` of the inline image."""

    src: str
    width: int | None = None
    height: int | None = None
    image: InlineImage | None = None


@dataclass
class Bulletin:
    """One bulletin rendered in one language, with markers where each recipient's own links go."""

    kind: str                      # "alert" or "digest"
    lang: str
    subject: str
    preheader: str
    html: str
    text: str
    articles: list[str] = field(default_factory=list)   # slugs, newest first
    inline_images: list[InlineImage] = field(default_factory=list)   # the logo, when it is a site file


def bulletin_logo(site: Site, config: Config | None = None) -> Logo | None:
    """``BULLETIN_LOGO`` read and checked: None when unset; ``ConfigError`` naming the setting for a URL that is
    not http(s), a file outside the site (the media rules of ``Site.media_path``: no ``..``, no symlink out, no
    hidden or state file), a missing file, or one that is not a PNG, JPEG or GIF of at most 200 KB."""
    config = config if config is not None else site.config
    text = str(config.get("BULLETIN_LOGO") or "").strip()
    if not text:
        return None
    source = config.source("BULLETIN_LOGO")
    try:
        path = site.media_path(text)
    except ValueError as error:
        raise ConfigError("BULLETIN_LOGO", str(error), source) from None
    if path is None:
        if text.lower().startswith(("http://", "https://")):
            return Logo(text, height=LOGO_HEIGHT)
        raise ConfigError("BULLETIN_LOGO", f"file not found: {text} (looked in content/, the site folder and "
                                           "public/)", source)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError("BULLETIN_LOGO", f"{text}: {error.strerror or error}", source) from None
    if len(data) > LOGO_MAX_BYTES:
        raise ConfigError("BULLETIN_LOGO", f"{text} is {len(data) // 1000} KB; every bulletin carries it, so keep "
                                           f"it under {LOGO_MAX_BYTES // 1000} KB", source)
    kind, width, height = _image_size(data)
    if kind not in _LOGO_TYPES:
        raise ConfigError("BULLETIN_LOGO", f"{text}: expected a PNG, JPEG or GIF image (mail clients do not all "
                                           "show other kinds)", source)
    import hashlib

    # The same file gives the same Content-ID: a bulletin re-sent after a crash is the same message.
    cid = f"logo-{hashlib.sha256(data).hexdigest()[:16]}@publisher"
    shown_height = LOGO_HEIGHT
    shown_width = max(1, round(width * LOGO_HEIGHT / height))
    if shown_width > LOGO_MAX_WIDTH:
        shown_width, shown_height = LOGO_MAX_WIDTH, max(1, round(height * LOGO_MAX_WIDTH / width))
    return Logo(f"cid:{cid}", shown_width, shown_height, InlineImage(cid, data, _LOGO_TYPES[kind], path.name))


def _image_size(data: bytes) -> tuple[str, int, int]:
    """The format (Pillow's name) and size of an image, or ``("", 0, 0)`` when Pillow cannot read it."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format or ""), int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError):
        return "", 0, 0


class BulletinFormatter:
    """Renders alerts (one article) and digests (several) from the `templates/email/` templates."""

    def __init__(self, site: Site, config: Config | None = None) -> None:
        self.site = site
        self.config = config if config is not None else site.config
        self.logo = bulletin_logo(site, self.config)

    def alert(self, article: Article, *, original: Article | None = None) -> Bulletin:
        """A bulletin announcing one article, body included."""
        from publisher.markup import html_to_text

        item = self._item(article, original)
        preheader = _shorten(html_to_text(article.summary_html) or item["body_text"], 140)
        return self._render("alert", article.lang, article.title, preheader, [item], {"intro": ""})

    def digest(
        self,
        articles: Sequence[Article],
        lang: str,
        *,
        since: datetime,
        originals: dict[str, Article] | None = None,
    ) -> Bulletin:
        """A bulletin listing several articles (newest first) with their summaries."""
        from publisher.i18n import format_date

        ordered = sorted(articles, key=lambda a: a.date, reverse=True)
        items = [self._item(a, (originals or {}).get(a.slug)) for a in ordered]
        ui = self.site.ui
        since_text = format_date(since, lang)
        subject = ui.gettext(lang, "{site}: news since {date}", site=self.site.title(lang), date=since_text)
        # English needs the singular for one article; the catalogs have no plural forms, so two messages.
        counted = "{count} new article since {date}." if len(items) == 1 else "{count} new articles since {date}."
        intro = ui.gettext(lang, counted, count=len(items), date=since_text)
        preheader = _shorten(" · ".join(a.title for a in ordered), 140)
        return self._render("digest", lang, subject, preheader, items, {"intro": intro})

    # -- internals ---------------------------------------------------------------------------

    def _render(
        self, kind: str, lang: str, subject: str, preheader: str, items: list[dict[str, Any]], extra: dict[str, Any]
    ) -> Bulletin:
        # A header is one line: a title written over two lines in the front matter must not break the Subject.
        subject = " ".join(subject.split())
        context = {
            "lang": lang,
            "subject": subject,
            "preheader": preheader,
            "articles": items,
            "site_name": self.site.title(lang),
            "site_url": f"{self.site.url}/{lang}/",
            "unsubscribe_url": UNSUBSCRIBE_MARKER,
            "preferences_url": PREFERENCES_MARKER,
            # One line per line of the address as written (a quoted value in .env may span lines).
            "postal_lines": postal_lines(self.config),
            "postal_address": ", ".join(postal_lines(self.config)),   # what site templates of before read
            "logo": self.logo,
            # Korean words ending in a bracket or quote ("(AI)과", "것”이라고") kept whole, as on the pages
            "keep_words": lambda html: keep_words(html, lang),
            **extra,
        }
        from publisher.formatters.pages import keep_words

        env = self.site.templates
        html_page = env.get_template(f"email/{kind}.html.j2").render(context)   # CSS inlined by the builder
        text = env.get_template(f"email/{kind}.txt.j2").render(context)
        images = [self.logo.image] if self.logo is not None and self.logo.image is not None else []
        return Bulletin(kind, lang, subject, preheader, html_page, _tidy_text(text), [i["slug"] for i in items],
                        images)

    def _item(self, article: Article, original: Article | None) -> dict[str, Any]:
        from publisher.i18n import machine_notice
        from publisher.markup import html_to_text

        body_html = absolute_links(article.body_html, article.url or self.site.url_for(article.lang, article.slug))
        summary_html = article.summary_html
        image_src = image_alt = ""
        if article.image is not None:
            image_src = self.site.media_url(article.image.src)   # the address the feeds build publishes it at
            image_alt = article.image.alt
        return {
            "slug": article.slug,
            "title": article.title,
            "url": article.url or self.site.url_for(article.lang, article.slug),
            "date": article.date,
            "author": article.author,
            "summary_html": summary_html,
            "summary_text": html_to_text(summary_html),
            "body_html": body_html,
            "body_text": html_to_text(body_html, link_urls=True),
            "image_src": image_src,
            "image_alt": image_alt,
            "machine_translated": article.is_machine_translation,
            "machine_notice": machine_notice(article, self.site) or "",
            "original_url": original.url if original is not None and original is not article else "",
        }


def postal_lines(config: Config) -> list[str]:
    """``BULLETIN_POSTAL_ADDRESS`` as its lines, each with its spacing tidied (none when it is unset)."""
    text = str(config.get("BULLETIN_POSTAL_ADDRESS") or "")
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def absolute_links(html: str, base_url: str) -> str:
    """Sanitized HTML with relative href/src made absolute: a mail client has no page to resolve them against."""
    from publisher.markup import sanitize_html

    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src") and not value.startswith(("#", "mailto:")):
            return urljoin(base_url, value)
        return value

    return sanitize_html(html, attribute_filter=resolve)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, and a final newline."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip() + "\n"
