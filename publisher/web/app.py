"""The Starlette application behind ``publisher serve``: reader pages, the review page, and the public/ folder."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from publisher.errors import BadToken, NotFound, PublisherError
from publisher.bounces import webhooks
from publisher.web import review, subscription
from publisher.web.guards import is_loopback
from publisher.web.pages import message_page, page_language
from publisher.web.state import WebState, web_state

if TYPE_CHECKING:
    import uvicorn
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from publisher.site import Site

def feed_media_type(filename: str) -> str | None:
    """The registered type of a feed file the feeds channel writes; Python's mimetypes would say application/xml
    or application/json, and feed readers and browsers want application/rss+xml, atom+xml and feed+json."""
    from publisher.formatters.feeds import FILENAMES, MEDIA_TYPES, OPML_FILENAME

    for fmt, name in (*FILENAMES.items(), ("opml", OPML_FILENAME)):
        if filename.endswith("/" + name):
            return MEDIA_TYPES[fmt]
    return None


class PublicFiles(StaticFiles):
    """``public/`` with ETag and Last-Modified (conditional GETs answer 304) and the registered feed types.

    Nothing whose name starts with a dot is served: the temporary file of a write cut short, a ``.git`` or
    ``.env`` someone left there. The path is checked as decoded, so ``%2e`` is a dot too.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        # scope["path"] is decoded and not yet normalized: "/en/./x" and "/.tmp" both have a dot part.
        if any(part.startswith(".") for part in scope["path"].split("/")):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)

    async def check_config(self) -> None:
        # A fresh site has no public/ until the first publish: its addresses are 404s, not server errors.
        if self.directory is not None and not os.path.exists(self.directory):
            return
        await super().check_config()

    def file_response(
        self, full_path: os.PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        media_type = feed_media_type(str(full_path))
        if media_type is None:
            return super().file_response(full_path, stat_result, scope, status_code)
        from starlette.datastructures import Headers

        from starlette.staticfiles import NotModifiedResponse

        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result,
                                media_type=f"{media_type}; charset=utf-8")
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


# Each kind of response gets the strictest policy it works with. public/ holds static pages whose one
# stylesheet is an inline <style> block, images (local or https) and feeds; no script or frame, and one form
# (the sign-up GET form, to this server's /subscribe or PUBLISHER_SUBSCRIBE_URL: see static_headers).
STATIC_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; media-src 'self' https:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Content-Type-Options": "nosniff",
}


def static_headers(site: Site) -> dict[str, str]:
    """``STATIC_HEADERS``, with the sign-up form's target allowed as a form action (the site's origin when
    ``publisher serve`` runs at ``PUBLISHER_SITE_URL``, the origin of ``PUBLISHER_SUBSCRIBE_URL`` otherwise)."""
    from urllib.parse import urlsplit

    from publisher.formatters.pages import signup

    offer = signup(site)
    if offer is None or not offer.form:
        return {**STATIC_HEADERS,
                "Content-Security-Policy": STATIC_HEADERS["Content-Security-Policy"].replace(
                    "form-action 'self'", "form-action 'none'")}
    parts = urlsplit(offer.action)
    origin = f"{parts.scheme}://{parts.netloc}"
    return {**STATIC_HEADERS, "Content-Security-Policy": STATIC_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {origin}")}


class SecurityHeaders:
    """Every answer without security headers of its own (files under public/, redirects) gets ``STATIC_HEADERS``;
    the app's pages set stricter ones (``publisher.web.pages.PAGE_HEADERS``), which are kept."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in (headers or STATIC_HEADERS).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


LINK_PURPOSES = ("confirm", "unsubscribe", "preferences")
# An itsdangerous token: [.]payload.timestamp.signature, all base64url (a leading dot when zlib-compressed).
SIGNED_TOKEN = re.compile(r"\.?[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]{4,12}\.[A-Za-z0-9_\-]{16,}")
access_log = logging.getLogger("publisher.web.access")


def redacted_path(path: str) -> str:
    """``path`` fit for a log: everything after a link's purpose (``confirm``, ``unsubscribe``, ``preferences``,
    in any case, however many slashes) and anything shaped like a signed token becomes ``<token>``.

    The path is decoded again first (a double-encoded ``%252F`` is still a slash to whoever reads the log).
    """
    from urllib.parse import unquote

    for _ in range(3):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    segments = path.split("/")
    kept: list[str] = []
    for index, segment in enumerate(segments):
        if segment.strip().lower() in LINK_PURPOSES:
            # Whatever follows is the token, or a mangled piece of one.
            kept += [segment, "<token>"] if index < len(segments) - 1 else [segment]
            break
        kept.append(SIGNED_TOKEN.sub("<token>", segment))
    return "/".join(kept)


class AccessLog:
    """One log line per request, with the signed token cut out of the path.

    A token in a link is the key to someone's subscription, so it must not sit in log files; uvicorn's own
    access log (which prints the full path) is turned off by ``publisher serve``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                path = redacted_path(scope["path"])
                client = scope.get("client") or ("-", 0)
                access_log.info('%s "%s %s" %d %.1f ms', client[0], scope["method"], path, status,
                                (time.perf_counter() - started) * 1000)


def bad_token(request: Request, exc: Exception) -> Response:
    """A forged, altered or expired signed link, on any route: the 400 page, and nothing changed."""
    assert isinstance(exc, BadToken)
    return subscription.bad_link(request, web_state(request).site, exc)


def create_app(site: Site, *, review_local_only: bool = True) -> Starlette:
    """The web app for ``site``.

    ``review_local_only`` says the server listens on loopback only, so local visitors may open the review page
    without ``PUBLISHER_ADMIN_TOKEN``; ``publisher serve --host 0.0.0.0`` passes False.
    """
    state = WebState(site, review_local_only=review_local_only)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.close()

    routes = [
        Route("/", home),
        Route("/subscribe", subscription.subscribe_form, methods=["GET"]),
        Route("/subscribe", subscription.subscribe, methods=["POST"]),
        Route("/confirm/{token}", subscription.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", subscription.confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", subscription.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", subscription.unsubscribe, methods=["POST"]),
        Route("/preferences/{token}", subscription.preferences_form, methods=["GET"]),
        Route("/preferences/{token}", subscription.save_preferences, methods=["POST"]),
        Route("/review", review.review_index, methods=["GET"]),
        Route("/review/login", review.login_form, methods=["GET"]),
        Route("/review/login", review.login, methods=["POST"]),
        Route("/review/{slug}", review.review_story, methods=["GET"]),
        Route("/review/{slug}/publish", review.publish_confirm, methods=["GET"]),
        Route("/review/{slug}/publish", review.publish, methods=["POST"]),
        Route("/review/{slug}/schedule", review.schedule, methods=["POST"]),
        # ESP bounce and complaint webhooks (issue 13): verified, each event acted on once
        # (an ESP batches events: a SendGrid post holds hundreds, an SNS message up to 256 KiB)
        *(Route(f"/webhooks/{esp}", getattr(webhooks, esp), methods=["POST"], max_body_size=webhooks.MAX_BODY)
          for esp in ("mailgun", "postmark", "sendgrid", "ses")),
        Mount("/", app=PublicFiles(directory=site.public_dir, html=True, check_dir=False), name="public"),
    ]
    middleware = [Middleware(AccessLog), Middleware(SecurityHeaders, headers=static_headers(site))]
    proxies = tuple(site.config.get("PUBLISHER_FORWARDED_ALLOW_IPS") or ())
    if proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        # First, so the access log and the rate limits see the visitor, not the proxy.
        middleware.insert(0, Middleware(ProxyHeadersMiddleware, trusted_hosts=list(proxies)))
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, NotFound: not_found,
                                        BadToken: bad_token, review.ReviewClosed: review.closed_page,
                                        PublisherError: publisher_error},
                    middleware=middleware,
                    max_body_size=64 * 1024)  # the forms are small; a bigger body is not a subscriber
    app.state.web = state
    return app


def server_config(site: Site, host: str, port: int) -> uvicorn.Config:
    """How ``publisher serve`` runs the app under uvicorn.

    uvicorn's own proxy handling is off: by default it believes X-Forwarded-For from any peer on 127.0.0.1,
    which let one local client pose as any number of visitors. The app trusts only the proxies named in
    ``PUBLISHER_FORWARDED_ALLOW_IPS`` (see ``create_app``). Its access log is off too: it prints the signed
    tokens in the paths, and ``AccessLog`` cuts them out.
    """
    import uvicorn

    return uvicorn.Config(create_app(site, review_local_only=is_loopback(host)), host=host, port=port,
                          log_level="info", access_log=False, server_header=False, proxy_headers=False)


async def home(request: Request) -> Response:
    """``public/index.html`` when the feeds build wrote one, else the index page in the visitor's language."""
    site = web_state(request).site
    index = site.public_dir / "index.html"
    if index.is_file():
        return FileResponse(index)
    return RedirectResponse(f"/{page_language(request, site)}/", status_code=302)


ERROR_TITLES = {404: "Not found", 405: "Not allowed", 413: "Too large"}  # msgids of the web catalog


async def http_error(request: Request, exc: Any) -> Response:
    site = web_state(request).site
    status = int(getattr(exc, "status_code", 500))
    return message_page(request, site, page_language(request, site), status_code=status,
                        title=ERROR_TITLES.get(status, "Something went wrong"),
                        message="There is nothing at this address." if status == 404 else "This request was refused.",
                        headers=dict(getattr(exc, "headers", None) or {}))


async def publisher_error(request: Request, exc: Exception) -> Response:
    """A broken content file or setting: the editor sees its one line (as the command line shows it) on the
    review pages and in the log; a reader gets a plain apology. Never a traceback."""
    site = web_state(request).site
    one_line = " ".join(str(exc).split())
    logging.getLogger("publisher.web").error("%s %s: %s", request.method, redacted_path(request.url.path),
                                             one_line)
    for_editor = request.url.path.startswith("/review")
    return message_page(request, site, page_language(request, site), status_code=500,
                        title="Something went wrong",
                        message=one_line if for_editor else "Please wait a while before trying again.")


async def not_found(request: Request, exc: Exception) -> Response:
    """An article that does not exist (``/review/<slug>``)."""
    site = web_state(request).site
    return message_page(request, site, page_language(request, site), status_code=404, title="Not found",
                        message="There is no article with this name.")
