"""The reader's pages: subscribe (double opt-in), confirm, one-click unsubscribe (RFC 8058) and preferences.

The subscribe form records a *pending* address and mails the same confirmation as ``publisher subscribers add
--pending``; nothing is sent to it until the reader follows the signed link and presses the button there
(a GET never changes anything: mail scanners open every link). The answer to the form is the same
whether the address is new, pending, active or unknown, and the mail goes out after the answer has been sent
(a background task), so its timing tells nothing either.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from publisher.errors import BadToken, InputError, PublisherError
from publisher.web.guards import CSRF_FIELD, RateLimiter, client_address, csrf_ok
from publisher.web.pages import csrf_refused, form_page, message_page, page_language, render_page
from publisher.web.state import WebState, web_state

if TYPE_CHECKING:
    from email.message import EmailMessage

    from starlette.requests import Request
    from starlette.responses import Response

    from publisher.site import Site
    from publisher.store import Store
    from publisher.subscribers import Subscriber

log = logging.getLogger("publisher.web")

ONE_CLICK_BODY = ("List-Unsubscribe", "One-Click")   # RFC 8058 section 3.1
HONEYPOT_FIELD = "website"                           # hidden from people; bots fill every field
SUBSCRIBE_WINDOW = 3600
CONFIRM_MAIL_WINDOW = 24 * 3600


# --- what the forms offer -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Theme:
    slug: str
    name: str      # as written in the articles (English); translated with theme_label()


def site_themes(site: Site) -> list[Theme]:
    """Every theme of the site's articles, by name; rebuilt when a content file changes."""
    signature = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(site.content_dir)
                             if e.is_file())) if site.content_dir.is_dir() else ()
    return list(_themes(str(site.root), signature, site))


@lru_cache(maxsize=4)
def _themes(root: str, signature: tuple[Any, ...], site: Site) -> tuple[Theme, ...]:
    from publisher.i18n import MSGID_LANGUAGE

    found: dict[str, str] = {}
    try:
        articles = site.articles().articles()
    except PublisherError as error:
        # A broken content file must not take the subscribe form down; the editor sees it in the log.
        log.error("themes not offered on the forms: %s", error)
        return ()
    for article in articles:
        if article.theme and article.theme_slug:
            # Theme keys are catalog msgids, written in MSGID_LANGUAGE; a version in it names the theme best.
            if article.lang == MSGID_LANGUAGE or article.theme_slug not in found:
                found[article.theme_slug] = article.theme
    return tuple(sorted((Theme(slug, name) for slug, name in found.items()), key=lambda t: t.name))


def theme_choices(site: Site, lang: str, chosen: list[str]) -> list[dict[str, Any]]:
    from publisher.i18n import theme_label

    return [{"slug": t.slug, "label": theme_label(t.name, lang, site), "checked": t.slug in chosen}
            for t in site_themes(site)]


def language_choices(site: Site, chosen: str) -> list[dict[str, Any]]:
    from publisher.i18n import language_name

    return [{"code": code, "name": language_name(code, code), "checked": code == chosen}
            for code in site.languages]


# --- subscribe ------------------------------------------------------------------------------------------------


def subscribe_form(request: Request) -> Response:
    """The form, in ``?lang=`` (or the browser's language), with ``?email=`` filled in: the sign-up form of the
    public pages is a GET form that opens this page. Nothing is looked up or recorded here, so the address in
    the query tells the visitor nothing; the POST below carries this page's CSRF token as before."""
    site = web_state(request).site
    lang = page_language(request, site)
    email = request.query_params.get("email", "").strip()[:320]
    return form_page(request, site, "subscribe.html.j2", lang, values={"email": email, "name": ""},
                     languages=language_choices(site, lang), themes=theme_choices(site, lang, []), error=None)


async def subscribe(request: Request) -> Response:
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool

    state = web_state(request)
    site = state.site
    form = await request.form()
    lang = page_language(request, site, str(form.get("ui_lang", "")))
    if not csrf_ok(request, site, str(form.get(CSRF_FIELD, ""))):
        return csrf_refused(request, site, lang)

    limit = int(site.config.get("PUBLISHER_SUBSCRIBE_RATE_LIMIT"))
    wait = await run_in_threadpool(state.with_database, lambda conn: RateLimiter(conn, site.secret_key).hit(
        "subscribe-client", client_address(request), limit=limit, window_seconds=SUBSCRIBE_WINDOW))
    if wait:
        return message_page(request, site, lang, status_code=429, title="Too many requests",
                            message="Please wait a while before trying again.",
                            headers={"Retry-After": str(wait)})

    values = {"email": str(form.get("email", "")).strip()[:320], "name": str(form.get("name", "")).strip()[:200]}
    known_themes = {t.slug for t in await run_in_threadpool(site_themes, site)}
    themes = [slug for slug in form.getlist("themes") if isinstance(slug, str) and slug in known_themes]
    reader_lang = str(form.get("lang", ""))
    try:
        request_ = SubscribeRequest.validated(values["email"], values["name"], reader_lang, themes, site)
    except InputError as error:
        log.info("subscribe form refused: %s", error.where)
        return form_page(request, site, "subscribe.html.j2", lang, status_code=400, values=values,
                         languages=language_choices(site, reader_lang if reader_lang in site.languages else lang),
                         themes=theme_choices(site, lang, themes), error=_field_message(error))

    answer = render_page(request, site, "subscribe_sent.html.j2", lang, email=request_.email)
    if form.get(HONEYPOT_FIELD):
        return answer  # a bot: the same answer, and nothing sent
    answer.background = BackgroundTask(send_subscribe_mail, state, request_)
    return answer


def _field_message(error: InputError) -> str:
    field = error.where.split(":")[-1].strip()
    return {"email": "Please enter a valid email address.",
            "language": "Please choose a language."}.get(field, "Please check the form.")


@dataclass(frozen=True)
class SubscribeRequest:
    """What the reader asked for in the form, checked."""

    email: str
    name: str | None
    lang: str
    themes: tuple[str, ...]

    @classmethod
    def validated(cls, email: str, name: str, lang: str, themes: list[str], site: Site) -> SubscribeRequest:
        from publisher.subscribers import normalize_email, normalize_lang, normalize_themes

        address = normalize_email(email, where="email")
        language = normalize_lang(lang, where="language", languages=site.languages)
        if language not in site.languages:
            raise InputError("language", f"{lang!r} is not a language of this site")
        return cls(address, name or None, language, tuple(normalize_themes(themes)))


def send_subscribe_mail(state: WebState, wanted: SubscribeRequest) -> None:
    """Runs after the answer: record the request and mail a confirmation link, or, for an address already on
    the list, a note with its preferences link (the preferences of an active subscriber are never changed
    by a form anyone can fill in)."""
    from publisher.mail.send import confirmation_message, send_message
    from publisher.tokens import link

    site = state.site
    per_address = int(site.config.get("PUBLISHER_CONFIRM_MAILS_PER_ADDRESS"))

    def register(conn: Store) -> Subscriber | None:
        limiter = RateLimiter(conn, site.secret_key)
        if limiter.hit("confirm-mail", wanted.email.lower(), limit=per_address, window_seconds=CONFIRM_MAIL_WINDOW):
            return None
        subscribers = state.site.subscribers()
        existing = subscribers.get(wanted.email)
        if existing is None:
            return subscribers.add(wanted.email, name=wanted.name, lang=wanted.lang, status="pending",
                                   themes=wanted.themes)
        if existing.status == "active" or existing.suppressed:
            return existing   # a suppressed address: nothing is sent (below); the answer was the same
        # Pending or unsubscribed: a new request, pending from now (the links of earlier requests no
        # longer confirm it), and nothing is sent to it until the new link is followed.
        return subscribers.request_again(wanted.email, lang=wanted.lang, themes=wanted.themes)

    try:
        subscriber = state.with_database(register)
        if subscriber is None:
            log.info("subscription mail not sent: %d already sent to this address today", per_address)
            return
        if subscriber.suppressed:
            # Bounced or complained: never mailed again, not even a confirmation request (issue 13); only
            # `publisher subscribers unsuppress` brings it back. The page the reader saw was the usual one.
            log.info("subscription mail not sent: the address is on the suppression list (%s)", subscriber.status)
            return
        if subscriber.status == "active":
            message = reader_mail(site, "already_subscribed", subscriber.lang, subscriber.email, subscriber.name,
                                  preferences_url=link(site, "preferences", {"email": subscriber.email}),
                                  unsubscribe_url=link(site, "unsubscribe", {"email": subscriber.email}))
        else:
            message = confirmation_message(site, subscriber)
        send_message(site, message)
    except PublisherError as error:
        # The reader already has their answer; the editor finds the cause in the server log.
        log.error("subscription mail not sent: %s", error)


def reader_mail(site: Site, kind: str, lang: str, email: str, name: str | None, **context: Any) -> EmailMessage:
    """A short mail to one reader from ``templates/web/mail/<kind>.{txt,html}.j2`` in their language."""
    from publisher.mail.message import MessageBuilder, Reader

    env = site.templates
    values = {"lang": lang, "site_title": site.title(lang), "site_url": site.url, "name": name, **context}
    subject = env.get_template(f"web/mail/{kind}.subject.j2").render(**values).strip()
    return MessageBuilder(site).compose(Reader(email, name), subject=subject, lang=lang, kind=kind,
                                        text=env.get_template(f"web/mail/{kind}.txt.j2").render(**values),
                                        html=env.get_template(f"web/mail/{kind}.html.j2").render(**values))


# --- the signed links ------------------------------------------------------------------------------------------


def bad_link(request: Request, site: Site, error: BadToken) -> Response:
    lang = page_language(request, site)
    return message_page(request, site, lang, status_code=400, title="This link does not work",
                        message=str(error).capitalize() + ".")


def token_address(request: Request, site: Site, purpose: str, max_age: int | None = None) -> str:
    """The address in the link's signed token; ``BadToken`` if forged, altered, expired or made for another use."""
    from publisher.tokens import verify

    address = verify(purpose, request.path_params["token"], site, max_age=max_age).get("email")
    if not isinstance(address, str) or "@" not in address:
        raise BadToken("this link is not valid")
    return address


def _load_subscriber(state: WebState, address: str) -> Subscriber | None:
    def look_up(conn: Store) -> Subscriber | None:
        return state.site.subscribers().get(address)

    return state.with_database(look_up)


def not_subscribed(request: Request, site: Site, lang: str) -> Response:
    return render_page(request, site, "not_subscribed.html.j2", lang)


# --- confirm --------------------------------------------------------------------------------------------------
# Like unsubscribing, confirming takes a click on the page: link scanners (Safe Links and the like) open every
# link in a mail, and must not confirm a subscription nobody asked for.


def _confirm_link(request: Request, site: Site) -> tuple[str, int]:
    """The address in the confirmation link and when the link was made; ``BadToken`` if it is no good."""
    from publisher.tokens import verify_stamped

    hours = int(site.config.get("PUBLISHER_CONFIRM_LINK_HOURS"))
    data, made = verify_stamped("confirm", request.path_params["token"], site, max_age=hours * 3600)
    address = data.get("email")
    if not isinstance(address, str) or "@" not in address:
        raise BadToken("this link is not valid")
    return address, made


def confirmed_page(request: Request, site: Site, subscriber: Subscriber) -> Response:
    from publisher.tokens import link

    lang = page_language(request, site, subscriber.lang)
    return render_page(request, site, "confirmed.html.j2", lang, email=subscriber.email,
                       preferences_url=link(site, "preferences", {"email": subscriber.email}),
                       unsubscribe_url=link(site, "unsubscribe", {"email": subscriber.email}))


def confirm_page(request: Request) -> Response:
    """GET: a page with a button (nothing changes), or the confirmed page when the address is already active."""
    state = web_state(request)
    site = state.site
    address, made = _confirm_link(request, site)   # BadToken: the app's 400 page
    subscriber = _load_subscriber(state, address)
    answer = _confirm_answer(request, site, subscriber, made)
    if answer is not None or subscriber is None:
        return answer or not_subscribed(request, site, page_language(request, site))
    return render_page(request, site, "confirm.html.j2", page_language(request, site, subscriber.lang),
                       email=subscriber.email, action=request.url.path)


def _confirm_answer(request: Request, site: Site, subscriber: Subscriber | None, made: int) -> Response | None:
    """The page for a confirmation link whose address is not (or no longer) pending, or None: it is."""
    if subscriber is None:
        return not_subscribed(request, site, page_language(request, site))   # erased since the mail was sent
    if subscriber.status == "active":
        return confirmed_page(request, site, subscriber)
    if subscriber.status != "pending":
        # Unsubscribed or bounced after this link was sent: the link does not undo that; the page offers the
        # form, and a new request brings a new link.
        return not_subscribed(request, site, page_language(request, site, subscriber.lang))
    from publisher.subscribers import link_predates_request

    if link_predates_request(subscriber, made):
        return bad_link(request, site, BadToken("this link has expired"))
    return None


def confirm(request: Request) -> Response:
    """POST: a pending address becomes active (a harmless no-op the second time). The token is the only
    credential, and it confirms only the request it was sent for: never an address that left since."""
    state = web_state(request)
    site = state.site
    address, made = _confirm_link(request, site)   # BadToken: the app's 400 page

    def activate(conn: Store) -> Subscriber | None:
        subscribers = state.site.subscribers()
        if subscribers.get(address) is None:
            return None
        return subscribers.confirm(address, link_made=made)

    subscriber = state.with_database(activate)
    # Active now, or one of the reasons it was not activated; still pending with a current link only if a
    # concurrent change (the CLI) raced the update: the link is refused rather than the address guessed at.
    return (_confirm_answer(request, site, subscriber, made)
            or bad_link(request, site, BadToken("this link has expired")))


# --- unsubscribe ----------------------------------------------------------------------------------------------
# No expiry on these links: RFC 8058 links sit in old mails, and leaving a list must always work.


def unsubscribe_page(request: Request) -> Response:
    """GET only shows a button: mail scanners fetch every link, and must not unsubscribe anyone."""
    state = web_state(request)
    site = state.site
    address = token_address(request, site, "unsubscribe")   # BadToken: the app's 400 page
    known = _load_subscriber(state, address)
    lang = page_language(request, site, known.lang if known else None)
    return render_page(request, site, "unsubscribe.html.j2", lang, email=address, action=request.url.path,
                       one_click=ONE_CLICK_BODY)


async def unsubscribe(request: Request) -> Response:
    """RFC 8058 one-click: a POST with ``List-Unsubscribe=One-Click``, no cookie, no CSRF token; idempotent."""
    from starlette.concurrency import run_in_threadpool

    state = web_state(request)
    site = state.site
    address = token_address(request, site, "unsubscribe")   # BadToken: the app's 400 page
    form = await request.form()
    if form.get(ONE_CLICK_BODY[0]) != ONE_CLICK_BODY[1]:
        return message_page(request, site, page_language(request, site), status_code=400,
                            title="This link does not work",
                            message="The request must say List-Unsubscribe=One-Click.")

    def leave(conn: Store) -> str | None:
        subscribers = state.site.subscribers()
        subscribers.unsubscribe(address)   # False when already out or unknown: the same answer
        known = subscribers.get(address)
        return known.lang if known else None

    reader_lang = await run_in_threadpool(state.with_database, leave)
    # The answer in the reader's language: a mail provider's POST carries no Accept-Language.
    lang = page_language(request, site, reader_lang)
    return render_page(request, site, "unsubscribed.html.j2", lang, email=address)


# --- preferences ----------------------------------------------------------------------------------------------


def preferences_page(request: Request, site: Site, subscriber: Subscriber, lang: str, *, saved: bool) -> Response:
    from publisher.tokens import link

    return form_page(request, site, "preferences.html.j2", lang, email=subscriber.email, saved=saved,
                     action=request.url.path, languages=language_choices(site, subscriber.lang),
                     themes=theme_choices(site, lang, subscriber.themes),
                     unsubscribe_url=link(site, "unsubscribe", {"email": subscriber.email}))


def preferences_form(request: Request) -> Response:
    state = web_state(request)
    site = state.site
    address = token_address(request, site, "preferences")   # BadToken: the app's 400 page
    subscriber = _load_subscriber(state, address)
    lang = page_language(request, site, subscriber.lang if subscriber else None)
    if subscriber is None or subscriber.status != "active":
        return not_subscribed(request, site, lang)
    return preferences_page(request, site, subscriber, lang, saved=False)


async def save_preferences(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    state = web_state(request)
    site = state.site
    address = token_address(request, site, "preferences")   # BadToken: the app's 400 page
    form = await request.form()
    lang = page_language(request, site, str(form.get("ui_lang", "")))
    if not csrf_ok(request, site, str(form.get(CSRF_FIELD, ""))):
        return csrf_refused(request, site, lang)
    reader_lang = str(form.get("lang", ""))
    if reader_lang not in site.languages:
        return message_page(request, site, lang, status_code=400, title="Please check the form.",
                            message="Please choose a language.")
    known_themes = {t.slug for t in await run_in_threadpool(site_themes, site)}
    themes = [slug for slug in form.getlist("themes") if isinstance(slug, str) and slug in known_themes]

    def save(conn: Store) -> Subscriber | None:
        subscribers = state.site.subscribers()
        existing = subscribers.get(address)
        if existing is None or existing.status != "active":
            return None   # preferences never re-subscribe anyone
        return subscribers.set_preferences(address, lang=reader_lang, themes=themes)

    subscriber = await run_in_threadpool(state.with_database, save)
    if subscriber is None:
        return not_subscribed(request, site, lang)
    # The answer comes in the language just chosen.
    return preferences_page(request, site, subscriber, subscriber.lang, saved=True)
