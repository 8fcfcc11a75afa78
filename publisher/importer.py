"""``publisher import``: turn a news page (the UNPOG text export, or an HTML page) into a content file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import ContentError, NotFound

if TYPE_CHECKING:
    import lxml.html

    from publisher.article import Article
    from publisher.site import Site

MONTHS = {name: number for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")), start=1) for name in names}
_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
DATE_PATTERNS = (
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2})" + _ORDINAL + r",?\s+(?P<year>\d{4})", re.I),   # June 28(th), 2024
    re.compile(r"(?P<day>\d{1,2})" + _ORDINAL + r"\s+(?:of\s+)?" + _MONTH + r",?\s+(?P<year>\d{4})", re.I),  # 28(th) June 2024
    re.compile(r"(?P<year>\d{4})\s*년\s*(?P<month>\d{1,2})\s*월\s*(?P<day>\d{1,2})\s*일"),  # 2024년 6월 28일
    # 2024-06-28, 2024/6/28, 2024.06.28 and the Korean "2024. 6. 28."
    re.compile(r"(?P<year>\d{4})(?:[-/]|\.\s?)(?P<month>\d{1,2})(?:[-/]|\.\s?)(?P<day>\d{1,2})\.?"),
)
SITE_LINE = re.compile(r"^\s*(?P<site>[^:\n]{2,40}?)\s*:\s*(?:Theme|테마|주제)\s*[-–:]\s*(?P<theme>.+?)\s*$", re.I)
FOOTER_WORDS = {
    "facebook", "twitter", "x", "youtube", "blog", "rss", "instagram", "linkedin", "flickr", "share", "print",
    "list", "top", "back", "페이스북", "트위터", "유튜브", "블로그", "인스타그램", "링크드인", "공유", "인쇄", "목록",
    "카카오톡", "카카오스토리", "네이버", "밴드",
}
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN = re.compile(r"[A-Za-z]")


SLUG_MAX = 60   # characters: a slug is part of every URL, outbox file and ledger row
# Words a slug cut short should not end on ("...-insights-from-the").
SLUG_TAIL_WORDS = {"a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}
SUMMARY_MAX = 300   # characters of the first paragraph kept as the summary


@dataclass
class ImportedPage:
    title: str
    date: date | None
    paragraphs: list[str]
    theme: str | None = None
    summary: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: The page's own address (``<link rel="canonical">`` or ``og:url``), recorded as ``source_url``.
    source_url: str | None = None
    #: The page's picture (an absolute http(s) URL) and its alt text.
    image: tuple[str, str] | None = None
    #: What the import could not take over, said on stderr (an image without alt text).
    warnings: list[str] = field(default_factory=list)


def detect_language(text: str) -> str:
    """"ko" when Hangul syllables make up a fair share of the letters, else "en"."""
    hangul = len(HANGUL.findall(text))
    latin = len(LATIN.findall(text))
    return "ko" if hangul and hangul * 3 >= latin else "en"


def find_date(text: str) -> tuple[date, re.Match[str]] | None:
    """The first date written in any of the usual English or Korean forms."""
    best: tuple[date, re.Match[str]] | None = None
    for pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            month_text = match["month"]
            month = int(month_text) if month_text.isdigit() else MONTHS[month_text.lower()]
            try:
                found = date(int(match["year"]), month, int(match["day"]))
            except ValueError:
                continue
            if best is None or match.start() < best[1].start():
                best = (found, match)
            break
    return best


def _is_footer(line: str) -> bool:
    words = [w.strip(".,|·•/") for w in line.lower().split()]
    words = [w for w in words if w]
    return bool(words) and all(w in FOOTER_WORDS for w in words)


def _is_dateline(text: str) -> bool:
    """A paragraph that holds nothing but a date ("10 February 2025")."""
    found = find_date(text)
    return found is not None and len(text.strip(" .,|-–")) - (found[1].end() - found[1].start()) <= 3


def _is_breadcrumb(line: str, title: str, site_name: str | None) -> bool:
    match = re.match(r"^(?P<site>[^:]{2,40}?)\s*:\s*(?P<rest>.+)$", line)
    if not match:
        return False
    if site_name and match["site"].strip() == site_name.strip():
        return True
    def squash(text: str) -> str:
        return re.sub(r"\W+", "", text).lower()

    return squash(match["rest"]) == squash(title)


def parse_text_page(text: str, source: Path | str) -> ImportedPage:
    """The text export of a news page: site/theme line, title (with its date), paragraphs, then a footer."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\ufeff", "").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        raise ContentError(source, None, "is empty")

    theme = None
    site_name = None
    match = SITE_LINE.match(lines[0])
    if match:
        theme, site_name = match["theme"], match["site"]
        lines = lines[1:]
    while lines and _is_footer(lines[-1]):  # the social-links footer
        lines.pop()
    if not lines:
        raise ContentError(source, "title", "no title found")

    title_line, body = lines[0], lines[1:]
    found = find_date(title_line)
    when: date | None = None
    title = title_line
    if found and found[1].end() >= len(title_line.rstrip(" .")) - 1 and found[1].start() > 0:
        when = found[0]
        title = title_line[: found[1].start()].rstrip(" -–|,")
    elif body and (found := find_date(body[0])) and found[1].start() == 0 and len(body[0]) <= 40:
        when = found[0]   # a date on a line of its own under the title
        body = body[1:]
    elif body and (found := find_date(body[0][:60])) and found[1].start() == 0:
        when = found[0]   # the first paragraph opens with its dateline ("28 June 2024 – ..."): keep the text
    if not title.strip():
        raise ContentError(source, "title", "no title found before the date")
    # Drop the trailing breadcrumb "UNPOG : <title>" (and any footer lines around it).
    while body and (_is_footer(body[-1]) or _is_breadcrumb(body[-1], title, site_name)):
        body.pop()
    if not body:
        raise ContentError(source, "body", "no paragraphs found after the title")
    return ImportedPage(title=title.strip(), date=when, paragraphs=body, theme=theme)


def parse_html_page(html: str, source: Path | str) -> ImportedPage:
    """A news article page: <h1> (or og:title / <title>), a <time> or published-time meta, <p> paragraphs."""
    import lxml.html

    try:
        doc = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError) as exc:
        raise ContentError(source, None, f"cannot parse HTML: {exc}") from None
    for bad in doc.xpath("//script|//style|//nav|//header|//footer|//aside|//form|//noscript"):
        bad.drop_tree()

    def text_of(node: lxml.html.HtmlElement) -> str:
        return " ".join(node.text_content().split())

    title = ""
    for query in ("//article//h1", "//h1", "//meta[@property='og:title']/@content", "//title"):
        found = doc.xpath(query)
        if found:
            title = found[0] if isinstance(found[0], str) else text_of(found[0])
            title = " ".join(str(title).split())
            if title:
                break
    if not title:
        raise ContentError(source, "title", "no <h1>, og:title or <title> found")

    when: date | None = None
    for query in ("//time/@datetime", "//meta[@property='article:published_time']/@content",
                  "//meta[@name='date']/@content", "//time"):
        for value in doc.xpath(query):
            raw = value if isinstance(value, str) else text_of(value)
            found = find_date(str(raw))
            if found:
                when = found[0]
                break
        if when:
            break

    container = (doc.xpath("//article") or doc.xpath("//main") or doc.xpath("//*[@id='content']")
                 or doc.xpath("//body") or [doc])[0]
    paragraphs = [text_of(p) for p in container.xpath(".//p")]
    paragraphs = [p for p in paragraphs if p and p != title and not _is_footer(p) and not _is_dateline(p)]
    if when is None:
        head = text_of(container)[:400]
        found = find_date(head)
        if found:
            when = found[0]
    theme = None
    for fragment in doc.xpath("//text()"):
        match = re.search(r"(?:Theme|테마|주제)\s*[-–:]\s*([^\n|>]+)", str(fragment))
        if match:
            theme = " ".join(match[1].split())
            break
    if not paragraphs:
        raise ContentError(source, "body", "no <p> paragraphs found")
    summary = ""
    meta_desc = doc.xpath("//meta[@name='description']/@content")
    if meta_desc:
        summary = " ".join(str(meta_desc[0]).split())
    source_url = _first_http_url(doc, ("//link[@rel='canonical']/@href", "//meta[@property='og:url']/@content"),
                                 base=None)
    page = ImportedPage(title=title, date=when, paragraphs=paragraphs, theme=theme, summary=summary,
                        source_url=source_url)
    page.image = _page_image(doc, container, source_url, page.warnings)
    return page


def _http_url(raw: str, base: str | None) -> str | None:
    """``raw`` as an absolute http(s) URL (resolved against ``base``), or None: a ``data:``, ``file:`` or
    ``javascript:`` address, or a relative one with nothing to resolve it against, is not an image we can use."""
    from urllib.parse import urljoin, urlsplit

    raw = raw.strip()
    if not raw:
        return None
    url = urljoin(base, raw) if base else raw
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _first_http_url(doc: lxml.html.HtmlElement, queries: tuple[str, ...], base: str | None) -> str | None:
    for query in queries:
        for value in doc.xpath(query):
            url = _http_url(str(value), base)
            if url:
                return url
    return None


def _page_image(doc: lxml.html.HtmlElement, container: lxml.html.HtmlElement, base: str | None,
                warnings: list[str]) -> tuple[str, str] | None:
    """The article's picture: the first ``<img>`` of the article with an http(s) address, else ``og:image``;
    with its alt text (``alt``, ``og:image:alt``). It is recorded as its URL: the channels that upload images
    fetch it when publishing, under ``publisher.media_fetch``'s rules, which take https only, so an http one
    is left out. So is one without alt text (every channel needs it, and only an editor can write it); each
    with a warning."""
    found: tuple[str, str] | None = None
    for img in container.xpath(".//img[@src]"):
        raw = str(img.get("src")).strip()
        src = _http_url(raw, base)
        if src is None and raw and not base and not re.match(r"^[a-z][a-z0-9+.-]*:", raw, re.I):
            warnings.append(f"image {raw} is a relative address and the page does not give its own "
                            "(<link rel=canonical>): not imported")
        if src:
            found = (src, " ".join((img.get("alt") or "").split()))
            break
    if found is None:
        src = _first_http_url(doc, ("//meta[@property='og:image']/@content",), base)
        if src is None:
            return None
        found = (src, " ".join(str(next(iter(doc.xpath("//meta[@property='og:image:alt']/@content")), "")).split()))
    src, alt = found
    if not src.lower().startswith("https://"):
        warnings.append(f"image {src} is not https (images are fetched over https only): not imported")
        return None
    if not alt:
        warnings.append(f"image {src} has no alt text: not imported (add image: {{src, alt}} by hand)")
        return None
    return src, alt


def _escape_markdown_line(paragraph: str) -> str:
    # A paragraph that happens to start like Markdown syntax ("1. ", "# ", "- ") must stay a paragraph.
    if re.match(r"^(#{1,6}\s|[-+*]\s|\d+[.)]\s|>)", paragraph):
        return "\\" + paragraph
    return paragraph


def slug_for(title: str, when: date | None) -> str:
    """Latin words of the title, cut at a word boundary to at most ``SLUG_MAX`` characters (and not ending on
    "the", "of"...); a Korean title gets ``news-<date>``."""
    from publisher.article import slugify

    words: list[str] = re.findall(r"[a-z0-9]+", title.lower())
    if len(words) >= 2:
        kept: list[str] = []
        for word in words:
            if len("-".join([*kept, word])) > SLUG_MAX:
                break
            kept.append(word)
        if not kept:   # one word longer than the limit
            return words[0][:SLUG_MAX]
        while len(kept) > 1 and kept[-1] in SLUG_TAIL_WORDS:
            kept.pop()
        return "-".join(kept)
    stamp = when.strftime("%Y%m%d") if when else "undated"
    return f"news-{stamp}" if not words else f"{slugify(' '.join(words))}-{stamp}"


def import_file(site: Site, source: Path, *, force: bool = False, slug: str | None = None,
                when: date | None = None) -> Path:
    """Parse ``source`` and write ``content/<slug>.<lang>.md``; refuse to overwrite without ``force``."""
    from publisher.article import SLUG_RE, Article, Image, article_path, write_article

    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ContentError(source, None, "is a folder, not a page") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ContentError(source, None, "is not UTF-8 text") from None
    looks_html = source.suffix.lower() in {".html", ".htm"} or re.match(r"\s*(<!doctype|<html)", text, re.I)
    page = parse_html_page(text, source) if looks_html else parse_text_page(text, source)

    published = when or page.date
    if published is None:
        raise ContentError(source, "date", "no date found in the page; give one with --date YYYY-MM-DD")
    lang = detect_language(page.title + " " + " ".join(page.paragraphs[:3]))
    if not force and not slug:   # an explicit slug or --force: the editor knows it is another story
        same = find_duplicate(site, page, published)
        if same is not None:
            existing, why = same
            shown = _shown_path(existing, site)
            raise ContentError(source, None, f"the same story is already {shown} ({why}); nothing written "
                                             "(--slug S imports it as another story; --force imports it anyway)")
    slug = slug or slug_for(page.title, published)
    if not SLUG_RE.match(slug):
        raise ContentError(source, "slug", f"{slug!r} must be lower-case letters, digits and hyphens")
    path = article_path(site, slug, lang)
    article = Article(
        slug=slug, lang=lang, title=page.title,
        date=datetime.combine(published, time(0, 0), tzinfo=site.timezone),
        body="\n\n".join(_escape_markdown_line(p) for p in page.paragraphs) + "\n",
        summary=page.summary or summary_from(page.paragraphs), theme=page.theme, path=path,
        url=site.url_for(lang, slug),
        image=Image(*page.image) if page.image else None,
        extra={"source_url": page.source_url} if page.source_url else {},
    )
    for warning in page.warnings:
        warn(f"{source}: {warning}")
    return write_article(article, path, force=force)


def warn(message: str) -> None:
    """A line on stderr: what the import left for the editor (stdout holds only the path written)."""
    import sys

    print(f"Warning: {message}", file=sys.stderr)


def _shown_path(article: Article, site: Site) -> str:
    if article.path is None:
        return article.slug
    try:
        return str(article.path.relative_to(site.root))
    except ValueError:
        return str(article.path)


def _squash(text: str) -> str:
    """A title as compared: case, punctuation and spacing left out ("UNPSF: 2024" == "unpsf 2024")."""
    return re.sub(r"\W+", "", text).casefold()


def find_duplicate(site: Site, page: ImportedPage, published: date) -> tuple[Article, str] | None:
    """An article of the site that is this page: the same source URL, or the same title on the same date.

    It reads the site's library (``site.articles()``: unchanged files come from the content index, so a large
    site is not parsed again)."""
    title = _squash(page.title)
    by_title: Article | None = None
    try:
        library = site.articles()
    except ContentError as exc:   # another file is broken: say why the import cares
        raise ContentError(None, None, f"cannot check whether the page is already a story: {exc} "
                                       "(--slug S or --force imports it without the check)") from None
    for story in library.stories.values():
        for article in story.versions.values():
            if page.source_url and article.extra.get("source_url") == page.source_url:
                return article, f"source_url {page.source_url}"
            if by_title is None and _squash(article.title) == title \
                    and article.date.astimezone(site.timezone).date() == published:
                by_title = article
    if by_title is not None:
        return by_title, f"same title and date, {published.isoformat()}"
    return None


def summary_from(paragraphs: list[str]) -> str:
    """The first paragraph, without its dateline ("28 June 2024 – "), cut after a sentence (or else a word)
    within ``SUMMARY_MAX`` characters."""
    first = next((p for p in paragraphs if len(p.split()) > 3), paragraphs[0] if paragraphs else "")
    found = find_date(first[:60])
    if found is not None and found[1].start() == 0:
        rest = first[found[1].end():].lstrip(" \xa0")
        if rest[:1] in ("–", "-", "—", ":", "|"):
            first = rest[1:].lstrip(" \xa0")
    first = " ".join(first.split())
    if len(first) <= SUMMARY_MAX:
        return first
    head = first[:SUMMARY_MAX + 1]
    ends = [m.end() for m in re.finditer(r"[.!?。](?=\s)", head)]
    if ends and ends[-1] >= SUMMARY_MAX // 3:
        return head[: ends[-1]]
    head = head[:SUMMARY_MAX]
    return head.rsplit(" ", 1)[0].rstrip(",;:") + "…"
