"""Rendering the web app's pages: the reader's language, the site's templates, and the headers every page carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from publisher.web.guards import CSRF_FIELD, csrf_form_token, csrf_nonce, set_csrf_cookie

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response

    from publisher.site import Site

# Pages hold signed links (unsubscribe, preferences): no-referrer keeps them from leaking to other sites, and
# no-store keeps them out of shared caches. Inline styles only: the email previews are inline-styled HTML.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https: http:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def accepted_languages(header: str) -> list[str]:
    """Primary language codes from an Accept-Language header, most wanted first ("ko-KR,ko;q=0.9" -> ["ko"])."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = tag.strip().split("-")[0].lower()
        if code and code != "*" and quality > 0:
            weighted.append((-quality, position, code))
    return [code for _, _, code in sorted(weighted)]


def page_language(request: Request, site: Site, preferred: str | None = None) -> str:
    """``?lang=`` if the site has it, else ``preferred`` (a subscriber's language), else Accept-Language."""
    languages = site.languages
    asked = request.query_params.get("lang", "")
    if asked in languages:
        return asked
    if preferred in languages:
        return str(preferred)
    for code in accepted_languages(request.headers.get("accept-language", "")):
        if code in languages:
            return code
    return languages[0]


def route_path(request: Request) -> str:
    """The path of the app route that answered, rebuilt from its pattern and parameters; "" (a link to this
    same address) when no route of ours matched.

    Never the raw path: ``//evil.example/x`` (or ``/\\evil.example``) in a link is another site to a browser.
    """
    from starlette.routing import Route, replace_params

    route = request.scope.get("route")
    if not isinstance(route, Route):
        return ""   # a 404, or a file under public/: "?lang=ko" stays on this address and on this site
    path, _ = replace_params(route.path_format, route.param_convertors, dict(request.path_params))
    return path


def render_page(
    request: Request,
    site: Site,
    template: str,
    lang: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``templates/web/<template>`` in ``lang`` with the language switch and the security headers."""
    from starlette.responses import HTMLResponse

    from publisher.formatters.pages import keep_words   # keep_words(text, lang): Korean words kept whole
    from publisher.i18n import language_name

    here = route_path(request)
    switch = [
        {"lang": code, "name": language_name(code, code), "href": f"{here}?lang={code}",
         "current": code == lang}
        for code in site.languages
    ]
    html = site.templates.get_template(f"web/{template}").render(
        lang=lang, site_title=site.title(lang), language_switch=switch, keep_words=keep_words, **context
    )
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def message_page(
    request: Request, site: Site, lang: str, *, status_code: int, title: str, message: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page with a heading and one sentence: errors (400, 403, 404, 429) and simple answers."""
    ui = site.ui
    return render_page(request, site, "message.html.j2", lang, status_code=status_code, headers=headers,
                       title=ui.gettext(lang, title), message=ui.gettext(lang, message))


def form_page(request: Request, site: Site, template: str, lang: str, *, status_code: int = 200,
              **context: Any) -> Response:
    """A page with a form: a CSRF token in the form, its nonce in a cookie."""
    nonce, new_cookie = csrf_nonce(request)
    response = render_page(request, site, template, lang, status_code=status_code,
                           csrf_field=CSRF_FIELD, csrf_token=csrf_form_token(site, nonce), **context)
    if new_cookie:
        set_csrf_cookie(response, request, nonce)
    return response


def csrf_refused(request: Request, site: Site, lang: str) -> Response:
    return message_page(request, site, lang, status_code=403, title="This form has expired",
                        message="Please go back, reload the page and try again.")
