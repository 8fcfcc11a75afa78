"""Email bulletins rendered: an alert (one article) or a digest (several), once per language, as a `Bulletin`.

Rendering only (jinja2): the per-recipient parts, the signed unsubscribe and preferences links, are left as
markers that the mail builder (``publisher.mail.message``) fills in at send time from the recipient, with
the MIME structure, the inlined CSS, the bulk-sender headers and DKIM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

if TYPE_CHECKING:
    from publisher.article import Article
    from publisher.config import Config
    from publisher.site import Site

# Stand-ins for the per-recipient links; plain ASCII so neither autoescaping nor css-inline changes them.
UNSUBSCRIBE_MARKER = "PUBLISHER-UNSUBSCRIBE-URL-4e1b"
PREFERENCES_MARKER = "PUBLISHER-PREFERENCES-URL-4e1b"


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


class BulletinFormatter:
    """Renders alerts (one article) and digests (several) from the `templates/email/` templates."""

    def __init__(self, site: Site, config: Config | None = None) -> None:
        self.site = site
        self.config = config if config is not None else site.config

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
        intro = ui.gettext(lang, "{count} new articles since {date}.", count=len(items), date=since_text)
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
            "postal_address": self.config.get("BULLETIN_POSTAL_ADDRESS") or "",
            **extra,
        }
        env = self.site.templates
        html_page = env.get_template(f"email/{kind}.html.j2").render(context)   # CSS inlined by the builder
        text = env.get_template(f"email/{kind}.txt.j2").render(context)
        return Bulletin(kind, lang, subject, preheader, html_page, _tidy_text(text), [i["slug"] for i in items])

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
