"""Markdown to sanitized HTML: markdown-it-py renders, nh3 (Ammonia) removes anything that could run or inject."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "figcaption", "figure", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Characters no address may hold: whitespace and controls (a browser drops a tab or newline inside
# "java\tscript:", so they hide a scheme), a backslash (browsers read "/\\evil.example" as "//evil.example")
# and the bidi controls that make an address read differently from what it is.
_NOT_IN_URL = re.compile("[\\x00-\\x20\\x7f-\\x9f\\\\\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # Raw HTML in an article is passed through markdown-it and then cleaned by nh3, so editors can paste a
    # <figure> but never a <script>.
    return MarkdownIt("commonmark", {"html": True, "typographer": False}).enable("table").enable("strikethrough")


def sanitize_html(html: str, *, attribute_filter: Callable[[str, str, str], str | None] | None = None) -> str:
    """Keep structure and links; drop scripts, event handlers, styles and unknown schemes.

    ``attribute_filter(tag, attribute, value)`` may rewrite or drop (None) each kept attribute value.
    """
    import nh3

    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=attribute_filter,
    )


@lru_cache(maxsize=4096)
def markdown_to_html(text: str) -> str:
    """Render Markdown and sanitize the result (cached: feeds and bulletins render the same body many times)."""
    return sanitize_html(_markdown().render(text))


def html_to_text(html: str, *, link_urls: bool = False) -> str:
    """Plain text of sanitized HTML, paragraphs separated by blank lines.

    With ``link_urls`` a link keeps its address, "UNPOG website (https://unpog.org)": a plain-text email part
    has no other way to carry it.
    """
    import html as html_lib
    import re

    text = re.sub(r">\s*\n\s*<", "><", html)  # the line breaks between tags are markup, not text
    if link_urls:
        text = re.sub(r'(?is)<a\b[^>]*?href="([^"]+)"[^>]*>(.*?)</a>',
                      lambda m: m[2] if html_lib.unescape(m[1]) in m[2] else f"{m[2]} ({m[1]})", text)
    text = re.sub(r"(?i)<br\s*/?>", "\n", text)
    text = re.sub(r"(?i)</(p|h[1-6]|blockquote|pre|figure|ul|ol|table)>", "\n\n", text)
    text = re.sub(r"(?i)</(li|tr)>", "\n", text)
    text = re.sub(r"(?i)<li[^>]*>", "- ", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html_lib.unescape(text)
    lines = [line.strip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)

    return "\n".join(out).strip()


def web_url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute ``http(s)`` address with a host that a reader may follow, or None.

    Used for every address an article gives (``url``, ``image.src``): anything else (``javascript:``, ``data:``,
    ``file:``, a protocol-relative ``//host``) would reach an email's ``<a href>``, a page's ``<link>`` or a
    feed's ``<link>``, ``xml:base`` and JSON Feed ``url`` as written.
    """
    from urllib.parse import urlsplit

    if _NOT_IN_URL.search(value):
        return "must not hold spaces, control characters or backslashes"
    try:
        parts = urlsplit(value)
        _ = parts.port   # parsing the port is the check: "https://host:x/" raises
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "expected an http:// or https:// URL"
    if not parts.hostname:
        return "expected a host name after the scheme, as in https://example.org/"
    return None


def site_path_problem(value: str) -> str | None:
    """Why ``value`` is not a path on the site (``/en/news/``, which the site's URL is put before), or None."""
    if not value.startswith("/") or value.startswith("//"):
        return "expected a path that starts with one '/'"
    if _NOT_IN_URL.search(value):
        return "must not hold spaces, control characters or backslashes"
    return None
