"""What protects the web app's forms and the review page: CSRF tokens, rate limits and editor access."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from typing import TYPE_CHECKING

from publisher.errors import BadToken

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from publisher.site import Site
    from publisher.store import RateLimits, Store

CSRF_COOKIE = "publisher_csrf"
CSRF_FIELD = "csrf_token"
CSRF_PURPOSE = "web-form"
CSRF_MAX_AGE = 6 * 3600            # a form left open longer than this is refused with "reload the page"
ADMIN_COOKIE = "publisher_admin"
ADMIN_PURPOSE = "web-admin"
ADMIN_SESSION_SECONDS = 12 * 3600


# --- CSRF: a signed form token bound to a random cookie (double submit) --------------------------------------


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """The browser's CSRF nonce from its cookie, or a new one (and True: the response must set the cookie)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if len(nonce) >= 32 and nonce.isascii():
        return nonce, False
    return secrets.token_urlsafe(32), True


def csrf_form_token(site: Site, nonce: str) -> str:
    from publisher.tokens import sign

    return sign(CSRF_PURPOSE, {"n": nonce}, site)


def set_csrf_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def csrf_ok(request: Request, site: Site, form_token: str) -> bool:
    """True when the form token is ours, fresh, and matches this browser's cookie, and the Origin (if sent) is us.

    A cross-site page can make a browser post the form, but it can neither read our cookie nor sign a token
    for the nonce in it.
    """
    from publisher.tokens import verify

    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != _own_origin(request):
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_token:
        return False
    try:
        data = verify(CSRF_PURPOSE, form_token, site, max_age=CSRF_MAX_AGE)
    except BadToken:
        return False
    return hmac.compare_digest(str(data.get("n", "")), cookie)


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


# --- rate limits: fixed windows counted in the site database ------------------------------------------------


class RateLimiter:
    """Counts hits per (bucket, client) in fixed windows; clients are stored as keyed hashes, never in clear."""

    def __init__(self, store: Store, secret_key: str) -> None:
        self.limits: RateLimits = store.rate_limits
        self._key = hashlib.sha256(("rate-limit:" + secret_key).encode()).digest()

    def hit(self, bucket: str, client: str, *, limit: int, window_seconds: int, now: float | None = None) -> int:
        """Record one hit; return 0 when it is within the limit, else the seconds until the window ends."""
        moment = int(now if now is not None else time.time())
        window_start = moment - moment % window_seconds
        digest = hmac.new(self._key, client.encode(), hashlib.sha256).hexdigest()
        hits = self.limits.hit(bucket, digest, window_start)
        return 0 if hits <= limit else window_start + window_seconds - moment


def client_address(request: Request) -> str:
    # uvicorn already replaced this with X-Forwarded-For when the proxy is trusted (--forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


# --- the review page: localhost, or the admin token ---------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_token(site: Site) -> str | None:
    value = site.config.get("PUBLISHER_ADMIN_TOKEN")
    return str(value) if value else None


def _token_fingerprint(token: str) -> str:
    # The session cookie carries a fingerprint of the token, so changing the token signs every editor out.
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def admin_session_cookie(site: Site, token: str) -> str:
    from publisher.tokens import sign

    return sign(ADMIN_PURPOSE, {"t": _token_fingerprint(token)}, site)


def review_allowed(request: Request, site: Site, *, local_only: bool) -> bool:
    """May this request see the review page?

    With ``PUBLISHER_ADMIN_TOKEN`` set, a request carrying it (``Authorization: Bearer``, or the session cookie
    from /review/login) may. Without a token, only a loopback client of a server that listens on loopback
    only, addressed by a loopback name, and not through a proxy (a local reverse proxy would make every visitor
    look local).
    """
    token = admin_token(site)
    if token:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            return True
        cookie = request.cookies.get(ADMIN_COOKIE)
        if cookie:
            from publisher.tokens import verify

            try:
                data = verify(ADMIN_PURPOSE, cookie, site, max_age=ADMIN_SESSION_SECONDS)
            except BadToken:
                return False
            return hmac.compare_digest(str(data.get("t", "")), _token_fingerprint(token))
        return False
    proxied = any(name in request.headers for name in ("forwarded", "x-forwarded-for", "x-real-ip"))
    # A page on another site can rebind its own name to 127.0.0.1 (DNS rebinding) and read the review page and
    # its CSRF token as "same origin"; its requests still carry its own name in Host, so only loopback names pass.
    addressed_locally = is_loopback((request.url.hostname or "").strip("[]"))
    return local_only and not proxied and addressed_locally and is_loopback(client_address(request))


def admin_token_matches(site: Site, given: str) -> bool:
    token = admin_token(site)
    return bool(token) and hmac.compare_digest(given.strip().encode(), str(token).encode())
