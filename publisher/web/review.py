"""The editor's review page: every rendition of one article, side by side per language, before anything is sent."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from publisher.errors import PublisherError
from publisher.web.guards import (
    ADMIN_COOKIE,
    ADMIN_SESSION_SECONDS,
    CSRF_FIELD,
    RateLimiter,
    admin_session_cookie,
    admin_token,
    admin_token_matches,
    client_address,
    csrf_ok,
    review_allowed,
)
from publisher.web.pages import csrf_refused, form_page, message_page, page_language, render_page
from publisher.web.state import WebState, web_state

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from publisher.article import Article, Story
    from publisher.channels.base import Rendition
    from publisher.site import Site
    from publisher.store import Store

log = logging.getLogger("publisher.web")

EMAIL_WIDTHS = (("Desktop", 600), ("Phone", 375))
LOGIN_ATTEMPTS = 10       # sign-in attempts per client per LOGIN_WINDOW seconds
LOGIN_WINDOW = 15 * 60
LEDGER_SAMPLE_ROWS = 20   # a bulletin has one row per recipient: the page shows counts and a few rows


@dataclass
class GlossaryCheck:
    """The glossary terms of the source that a translation does not render as the glossary says."""

    available: bool
    applies: bool = True          # False for an original: there is nothing to check
    terms_checked: int = 0
    missing: list[str] = field(default_factory=list)


@dataclass
class LedgerLine:
    channel: str
    counts: dict[str, int]
    rows: list[dict[str, Any]]


@dataclass
class LanguageColumn:
    """Everything the review page shows for one language version of the article."""

    lang: str
    article: Article | None
    publishable: bool = False
    publish_note: str = ""
    glossary: GlossaryCheck | None = None
    email: dict[str, Any] | None = None                   # html, text, subject, preheader
    social: list[Rendition] = field(default_factory=list)
    feed_entry: str | None = None
    feed_files: list[str] = field(default_factory=list)
    ledger: list[LedgerLine] = field(default_factory=list)


@dataclass
class Review:
    story: Story
    columns: list[LanguageColumn]
    channel_errors: list[tuple[str, str]]
    channel_titles: dict[str, str]


@dataclass
class Rendered:
    """What rendering a story through every channel gave: kept by ``RenderedCache`` until the files change."""

    names: list[str]
    renditions: list[Rendition]
    errors: list[tuple[str, str]]
    titles: dict[str, str]


class RenderedCache:
    """The renditions of the last stories reviewed, each kept while nothing it was rendered from changed.

    A review renders the story through every channel, the feeds over every published article; the key says
    what that depends on: the content files (``Library.signature``, from the content index's sizes and
    modification times), the site's settings and templates, and the ledger's counts (what is published, which
    the feeds show). The ledger lines of the page are read afresh on every request.
    """

    def __init__(self, size: int = 32) -> None:
        from collections import OrderedDict

        self.size = size
        self.entries: OrderedDict[tuple[str, str], tuple[str, Rendered]] = OrderedDict()
        self.renders = 0   # how many times a story was rendered rather than found (the tests read it)
        self._lock = threading.Lock()

    def get(self, slug: str, key: str, site: Site) -> Rendered | None:
        with self._lock:
            found = self.entries.get((str(site.root), slug))
            if found is None or not key or found[0] != key:
                return None
            self.entries.move_to_end((str(site.root), slug))
            return found[1]

    def put(self, slug: str, key: str, site: Site, rendered: Rendered) -> None:
        if not key:
            return   # a file too recent to tell whether it changes again unnoticed: never kept
        with self._lock:
            self.entries[(str(site.root), slug)] = (key, rendered)
            self.entries.move_to_end((str(site.root), slug))
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


RENDERED = RenderedCache()


def _site_files_signature(site: Site) -> str:
    """Sizes and modification times of the site's settings and own templates (a page renders with them)."""
    from publisher.fsutil import files_signature

    templates = site.root / "templates"
    return files_signature([site.root / "publisher.toml", site.root / ".env",
                            *sorted(templates.rglob("*") if templates.is_dir() else [])])


def review_key(site: Site, story: Story, library_signature: str, conn: Store) -> str:
    """What a story's renditions depend on, as one string; empty (never kept) when the content is unknown."""
    import hashlib

    if not library_signature:
        return ""
    counts = sorted(conn.ledger.counts().items())
    text = json.dumps([story.slug, library_signature, _site_files_signature(site), counts])
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def render_channels(site: Site, story: Story) -> Rendered:
    """The story through every registered channel, every version (machine translations included)."""
    from publisher.channels.registry import channel_names, get_channel

    RENDERED.renders += 1
    errors: list[tuple[str, str]] = []
    titles: dict[str, str] = {}
    renditions: list[Rendition] = []
    try:
        names = channel_names()
    except PublisherError as error:  # a broken plugin: say so, and still show the translation state
        names = []
        errors.append(("registry", str(error)))
    for name in names:
        try:
            channel = get_channel(name, site)
            channel.published = site.ledger()   # a feed shows what was published besides the story
            titles[name] = channel.title
            # Every version, machine translations included (as `publisher preview` does): the editor decides.
            renditions += channel.render(story, story.languages)
        except PublisherError as error:
            errors.append((name, str(error)))
        except Exception as error:  # one broken channel must not hide the others from the editor
            log.exception("channel %s could not render %s", name, story.slug)
            errors.append((name, f"internal error: {type(error).__name__}: {error}"))
    return Rendered(names, renditions, errors, titles)


def build_review(site: Site, story: Story, conn: Store, *, library_signature: str = "") -> Review:
    """Render the story through every registered channel and gather its translation and ledger state.

    The renditions are kept (``RENDERED``) while ``library_signature`` (the content files), the settings and
    the ledger's counts stay the same; without a signature the story is rendered again.
    """
    from publisher.translate.policy import select_versions

    allowed, notes = select_versions(story, site.languages, site)
    columns = {lang: LanguageColumn(lang, story.get(lang)) for lang in site.languages}
    for lang, column in columns.items():
        column.publishable = lang in allowed.versions
        column.publish_note = next((n.note for n in notes if n.lang == lang), "")
        if column.article is not None:
            column.glossary = glossary_check(site, story, column.article)

    key = review_key(site, story, library_signature, conn)
    rendered = RENDERED.get(story.slug, key, site)
    if rendered is None:
        rendered = render_channels(site, story)
        RENDERED.put(story.slug, key, site, rendered)
    names, renditions, errors, titles = rendered.names, rendered.renditions, list(rendered.errors), rendered.titles

    for rendition in renditions:
        if rendition.lang not in columns:
            continue
        column = columns[rendition.lang]
        if rendition.channel == "email":
            email = column.email or {"subject": rendition.meta.get("subject", ""), "html": "", "text": "",
                                     "preheader": rendition.meta.get("preheader", "")}
            for shown in rendition.files:   # the HTML, then the text part and the whole message
                if shown.media_type == "text/html":
                    email["html"] = _text(shown.content)
                elif shown.media_type == "text/plain":
                    email["text"] = _text(shown.content)
            column.email = email
        elif rendition.channel == "feeds":
            column.feed_files.append(rendition.target)
            if rendition.target == f"{rendition.lang}/feed.json" and column.article is not None:
                column.feed_entry = feed_entry(_text(rendition.content), column.article)
        elif "length" in rendition.meta:   # a social post: each thread part shown on its own
            column.social += [replace(rendition, filename=shown.filename, content=shown.content, meta=shown.meta,
                                      extra=[]) for shown in rendition.files]

    ledger = conn.ledger
    for lang, column in columns.items():
        for name in names:
            counts = {state: n for state, n in ledger.counts(article=story.slug, channel=name, lang=lang).items() if n}
            if not counts:
                continue
            rows = [row.as_dict() for _, row in zip(range(LEDGER_SAMPLE_ROWS),
                                                    ledger.rows(article=story.slug, channel=name, lang=lang))]
            column.ledger.append(LedgerLine(name, counts, rows))
    return Review(story, list(columns.values()), errors, titles)


def _text(content: str | bytes) -> str:
    return content.decode("utf-8", "replace") if isinstance(content, bytes) else content


def feed_entry(feed_json: str, article: Article) -> str | None:
    """This article's item in the JSON Feed, pretty-printed (the same data as its RSS and Atom entries)."""
    try:
        items = json.loads(feed_json).get("items", [])
    except (ValueError, AttributeError):
        return None
    for item in items:
        if item.get("url") == article.url:
            return json.dumps(item, ensure_ascii=False, indent=2)
    return None


def glossary_check(site: Site, story: Story, article: Article) -> GlossaryCheck:
    """Which glossary terms of the source a translation misses; "not available" without the glossary module."""
    if not article.translation.is_translation:
        return GlossaryCheck(available=True, applies=False)
    try:
        from publisher.translate.glossary import Glossary
    except ImportError:
        return GlossaryCheck(available=False)
    source = story.get(article.translation.source_lang or "") or story.original
    if source is article:
        return GlossaryCheck(available=True, applies=False)
    glossary = Glossary.load(site)
    source_text = "\n\n".join((source.title, source.summary, source.body))
    translated = "\n\n".join((article.title, article.summary, article.body))
    found = glossary.find(source_text, source.lang, article.lang)
    missing = glossary.missing(source_text, translated, source.lang, article.lang)
    return GlossaryCheck(available=True, terms_checked=len({target for _, _, target in found}),
                         missing=[str(term) for term in missing])


# --- routes ---------------------------------------------------------------------------------------------------


class ReviewClosed(Exception):
    """The visitor may not see the review pages; the app answers with ``closed_page``."""


def open_review(request: Request) -> tuple[WebState, Site, str]:
    """The state, site and page language of a review route, or ``ReviewClosed`` for a visitor not let in."""
    state = web_state(request)
    site = state.site
    if not review_allowed(request, site, local_only=state.review_local_only):
        raise ReviewClosed
    return state, site, page_language(request, site)


def closed_page(request: Request, exc: Exception) -> Response:
    """A sign-in redirect when an admin token is set, else a 403 page saying how to open the review."""
    from starlette.responses import RedirectResponse

    site = web_state(request).site
    lang = page_language(request, site)
    if admin_token(site):
        return RedirectResponse(f"/review/login?next={request.url.path}", status_code=303)
    return message_page(request, site, lang, status_code=403, title="The review page is closed",
                        message="It opens on 127.0.0.1 only; to open it elsewhere set PUBLISHER_ADMIN_TOKEN.")


def review_index(request: Request) -> Response:
    state, site, lang = open_review(request)   # ReviewClosed: the app's login redirect or 403 page

    def gather(conn: Store) -> list[dict[str, Any]]:
        from publisher.channels.registry import channel_names

        ledger = conn.ledger
        try:
            names = channel_names()
        except PublisherError:
            names = []   # the story page says which plugin is broken
        stories = sorted(site.articles().stories.values(), key=lambda s: (s.original.date, s.slug), reverse=True)
        # Counted in SQL: a bulletin has one ledger row per recipient.
        return [{"story": story, "article": story.get(lang) or story.original,
                 "sent": {name: sent for name in names
                          if (sent := ledger.counts(article=story.slug, channel=name)["sent"])}}
                for story in stories]

    return render_page(request, site, "review_index.html.j2", lang, stories=state.with_database(gather),
                       languages=site.languages)


def review_story(request: Request) -> Response:
    state, site, lang = open_review(request)   # ReviewClosed: the app's login redirect or 403 page
    library = site.articles()
    story = library.story(request.path_params["slug"])   # NotFound: the app's 404 page
    review = state.with_database(lambda conn: build_review(site, story, conn, library_signature=library.signature))
    return render_page(request, site, "review.html.j2", lang, review=review, email_widths=EMAIL_WIDTHS,
                       headers={"Content-Security-Policy": REVIEW_POLICY})


# --- publishing from the review page: a confirmation step, then the same pipeline as `publisher publish` ---------


def publish_confirm(request: Request) -> Response:
    """GET: what publishing this article would do (channels, destinations, languages), and a button."""
    from publisher.channels.registry import channel_names, get_channel
    from publisher.translate.policy import select_versions
    state, site, lang = open_review(request)   # ReviewClosed: the app's login redirect or 403 page
    story = site.articles().story(request.path_params["slug"])   # NotFound: the app's 404 page
    allowed, notes = select_versions(story, site.languages, site)
    channels = [{"title": channel.title, "destination": channel.destination()}
                for channel in (get_channel(name, site) for name in channel_names())]
    return form_page(request, site, "review_publish.html.j2", lang, story=story, channels=channels,
                     languages=list(allowed.versions), notes=notes, reports=None,
                     action=f"/review/{story.slug}/publish", schedule=state.with_database(
                         lambda conn: story_schedule(site, story, conn)))


def story_schedule(site: Site, story: Story, conn: Store) -> dict[str, Any]:
    """The article's schedule for the review page: each version's ``publish_at`` and the publish jobs waiting
    for it, as the office reads times (the site's zone)."""
    from publisher.scheduler import show_time, site_path

    files = {site_path(site, a.path) for a in story.versions.values() if a.path is not None}
    jobs = [job for job in conn.jobs.list(["pending", "running", "overdue"], kind="publish")
            if files & set(job.payload.get("paths") or [])]
    return {"embargo": {lang: show_time(a.publish_at, site.timezone) for lang, a in story.versions.items()
                        if a.publish_at is not None},
            "jobs": [{"id": job.id, "due": show_time(job.due_at, site.timezone), "state": job.state}
                     for job in jobs]}


async def schedule(request: Request) -> Response:
    """POST: schedule this article's publish for the worker at the time given (site time zone), or move it."""
    from publisher.errors import InputError
    from publisher.scheduler import parse_when, schedule_publish, show_time, site_path, wall_clock

    state, site, lang = open_review(request)   # ReviewClosed: the app's login redirect or 403 page
    form = await request.form()
    if not csrf_ok(request, site, str(form.get(CSRF_FIELD, ""))):
        return csrf_refused(request, site, lang)
    story = site.articles().story(request.path_params["slug"])   # NotFound: the app's 404 page
    try:
        when = parse_when(str(form.get("at", "")), site.timezone, "at")
    except InputError:
        return message_page(request, site, lang, status_code=400, title="Not scheduled",
                            message="Please give a date and time like 2026-12-02 09:00.")
    if when <= wall_clock():
        return message_page(request, site, lang, status_code=400, title="Not scheduled",
                            message="Please give a time in the future.")
    paths = [site_path(site, a.path) for a in story.versions.values() if a.path is not None]
    state.with_database(lambda conn: schedule_publish(site, paths, when))
    return message_page(request, site, lang, status_code=200, title="Scheduled",
                        message=show_time(when, site.timezone))


async def publish(request: Request) -> Response:
    """POST, after the confirmation: publish through every channel, as ``publisher publish <files>`` does."""
    from starlette.concurrency import run_in_threadpool

    state, site, lang = open_review(request)   # ReviewClosed: the app's login redirect or 403 page
    form = await request.form()
    if not csrf_ok(request, site, str(form.get(CSRF_FIELD, ""))):
        return csrf_refused(request, site, lang)
    story = site.articles().story(request.path_params["slug"])   # NotFound: the app's 404 page
    # One publish at a time: a second click while the first runs must not race it through the ledger.
    if not state.publishing.acquire(blocking=False):
        return message_page(request, site, lang, status_code=409, title="Already publishing",
                            message="Another publish is running; wait for it to finish.")
    try:
        reports = await run_in_threadpool(publish_story, site, story)
    finally:
        state.publishing.release()
    return render_page(request, site, "review_publish.html.j2", lang, story=story, reports=reports)


def publish_story(site: Site, story: Story) -> list[Any]:
    """Run the pipeline on a Site of its own: its own database connection, so unsubscribes are not held up."""
    from publisher.pipeline import publish as run_publish
    from publisher.site import Site as SiteFolder

    worker = SiteFolder(site.root, site.config)
    try:
        return run_publish(worker, [a.path for a in story.versions.values() if a.path is not None])
    finally:
        worker.close()


# The email previews are srcdoc iframes, which inherit the page's policy: they may show remote images and
# inline styles, never run a script (the iframes are sandboxed too).
REVIEW_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https: http:; "
                 "frame-src 'self' about:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


async def login_form(request: Request) -> Response:
    site = web_state(request).site
    lang = page_language(request, site)
    return form_page(request, site, "review_login.html.j2", lang, error=False,
                     next_path=_safe_next(request.query_params.get("next", "")))


async def login(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import RedirectResponse

    state = web_state(request)
    site = state.site
    lang = page_language(request, site)
    form = await request.form()
    if not csrf_ok(request, site, str(form.get(CSRF_FIELD, ""))):
        return csrf_refused(request, site, lang)
    # Without a limit the form would let anyone on the network guess the admin token as fast as they can post.
    wait = await run_in_threadpool(state.with_database, lambda conn: RateLimiter(conn, site.secret_key).hit(
        "review-login", client_address(request), limit=LOGIN_ATTEMPTS, window_seconds=LOGIN_WINDOW))
    if wait:
        return message_page(request, site, lang, status_code=429, title="Too many requests",
                            message="Please wait a while before trying again.", headers={"Retry-After": str(wait)})
    next_path = _safe_next(str(form.get("next", "")))
    token = admin_token(site)
    if token is None:
        return message_page(request, site, lang, status_code=403, title="The review page is closed",
                            message="It opens on 127.0.0.1 only; to open it elsewhere set PUBLISHER_ADMIN_TOKEN.")
    if not admin_token_matches(site, str(form.get("token", ""))):
        return form_page(request, site, "review_login.html.j2", lang, status_code=403, error=True,
                         next_path=next_path)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(ADMIN_COOKIE, admin_session_cookie(site, token), max_age=ADMIN_SESSION_SECONDS,
                        httponly=True, samesite="strict", path="/review", secure=request.url.scheme == "https")
    return response


def _safe_next(path: str) -> str:
    # Only our own review pages: an open redirect after sign-in would be a phishing tool.
    return path if path.startswith("/review") and "//" not in path and "\\" not in path else "/review"
