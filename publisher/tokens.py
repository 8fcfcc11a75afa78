"""Signed, optionally expiring tokens for the links in emails and pages (itsdangerous, ``PUBLISHER_SECRET_KEY``)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from publisher.errors import BadToken

if TYPE_CHECKING:
    from itsdangerous import URLSafeTimedSerializer

    from publisher.delivery import Clock
    from publisher.site import Site

PURPOSES = ("confirm", "unsubscribe", "preferences")


def _serializer(site: Site, purpose: str, clock: Clock | None = None) -> URLSafeTimedSerializer:
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    # The purpose is the salt: a token made to unsubscribe cannot be replayed to confirm or change preferences.
    if clock is None:
        return URLSafeTimedSerializer(site.secret_key, salt=f"publisher.{purpose}")
    now: Clock = clock

    class ClockSigner(TimestampSigner):
        """itsdangerous reads the time here, to stamp a token and to measure its age."""

        def get_timestamp(self) -> int:
            return int(now())

    return URLSafeTimedSerializer(site.secret_key, salt=f"publisher.{purpose}", signer=ClockSigner)


def sign(purpose: str, data: dict[str, Any], site: Site, *, clock: Clock | None = None) -> str:
    """A signed token for ``data``, stamped with ``clock()`` (default: now)."""
    return str(_serializer(site, purpose, clock).dumps(data))


def verify(purpose: str, token: str, site: Site, max_age: int | None = None, *,
           clock: Clock | None = None) -> dict[str, Any]:
    """The signed data, or ``BadToken`` for a forged, altered or expired token (older than ``max_age``
    seconds at ``clock()``, default: now)."""
    return verify_stamped(purpose, token, site, max_age, clock=clock)[0]


def verify_stamped(purpose: str, token: str, site: Site, max_age: int | None = None, *,
                   clock: Clock | None = None) -> tuple[dict[str, Any], int]:
    """``verify``, and when the token was made (Unix seconds): a link made before a later change of state
    can be told apart from one made after it."""
    from itsdangerous import BadSignature, SignatureExpired

    try:
        data, stamp = _serializer(site, purpose, clock).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        raise BadToken("this link has expired") from None
    except BadSignature:
        raise BadToken("this link is not valid") from None
    if not isinstance(data, dict):
        raise BadToken("this link is not valid")
    return data, int(stamp.timestamp())


def link_maker(site: Site, purpose: str, *,
               clock: Callable[[], float] | None = None) -> Callable[[dict[str, Any]], str]:
    """``link(site, purpose, ...)`` for many links (a bulletin's two links per reader), byte for byte the
    token itsdangerous makes, which ``verify`` reads.

    itsdangerous costs ~7 us a token in a dozen Python calls, most of them redone for every token: the key
    derived again, the HMAC keyed again, the timestamp encoded again. Here the HMAC is keyed once and copied
    per token, and the timestamp is encoded once a second. The format (``URLSafeTimedSerializer`` with its
    default ``TimestampSigner``): ``payload.timestamp.signature``, each URL-safe base64 without padding; the
    payload is compact JSON in UTF-8 (not run through zlib: itsdangerous keeps the compressed form only when
    shorter, which a small payload never is); the timestamp is the Unix second as big-endian bytes without
    leading zeros; the signature is HMAC-SHA1 over ``payload.timestamp`` under the key SHA1(salt + "signer" +
    secret) ("django-concat"), with the purpose as salt. tests/email/test_tokens.py compares both.
    ``clock``: where the timestamp comes from (default: now)."""
    import base64
    import hashlib
    import hmac
    import json

    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    prefix = f"{site.url}/{purpose}/"
    key = hashlib.sha1(f"publisher.{purpose}".encode() + b"signer" + site.secret_key.encode("utf-8")).digest()
    keyed = hmac.new(key, digestmod=hashlib.sha1)
    now = clock if clock is not None else time.time
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    quoted = json.encoder.encode_basestring     # the string encoder dumps uses with ensure_ascii=False
    encode = base64.urlsafe_b64encode
    stamped = (-1, b"")     # the second last stamped and ``.<its encoding>``, swapped as one (any thread)

    def make(data: dict[str, Any]) -> str:
        nonlocal stamped
        second, cached = int(now()), stamped
        if second != cached[0]:
            cached = stamped = (second, b"." + encode(second.to_bytes(8, "big").lstrip(b"\0")).rstrip(b"="))
        if len(data) == 1 and type(address := data.get("email")) is str:
            # A bulletin's links: '{"email":"..."}' as dumps writes it, without its Python-level walk.
            text = '{"email":' + quoted(address) + "}"
        else:
            text = dumps(data)
        value = encode(text.encode("utf-8")).rstrip(b"=") + cached[1]
        mac = keyed.copy()
        mac.update(value)
        return prefix + (value + b"." + encode(mac.digest()).rstrip(b"=")).decode("ascii")

    return make


def link(site: Site, purpose: str, data: dict[str, Any]) -> str:
    """``{PUBLISHER_SITE_URL}/<purpose>/<token>``."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    return f"{site.url}/{purpose}/{sign(purpose, data, site)}"


def short_signature(site: Site, purpose: str, text: str, length: int = 12) -> str:
    """A short signature of ``text`` that survives a mail server folding case: HMAC-SHA256 under
    ``PUBLISHER_SECRET_KEY`` (the purpose as salt, like the link tokens), in lower-case base32, ``length``
    characters (12: 60 bits). For VERP addresses, whose local part may be lower-cased on the way back."""
    import hmac

    return base32_start(hmac.digest(_short_key(purpose, site.secret_key), text.encode("utf-8"), "sha256"), length)


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE32_PAIRS = [first + second for first in _BASE32 for second in _BASE32]   # 10 bits -> two characters


def base32_start(data: bytes, length: int = 12) -> str:
    """The first ``length`` characters of ``data`` in base32 (RFC 4648), lower case:
    ``base64.b32encode(data).decode().lower()[:length]``, for the 12 of a short signature in six look-ups
    (the module's base32 is Python, ~3 us a call; a VERP address is made for every reader)."""
    if length != 12 or len(data) < 8:
        import base64

        return base64.b32encode(data[:(length + 7) // 8 * 5]).decode("ascii").lower()[:length]
    bits = int.from_bytes(data[:8], "big") >> 4          # the first 60 bits: 12 characters of 5 bits
    pairs = _BASE32_PAIRS
    return (pairs[bits >> 50] + pairs[(bits >> 40) & 1023] + pairs[(bits >> 30) & 1023]
            + pairs[(bits >> 20) & 1023] + pairs[(bits >> 10) & 1023] + pairs[bits & 1023])


@functools.lru_cache(maxsize=16)
def _short_key(purpose: str, secret_key: str) -> bytes:
    """The key of ``short_signature`` for a purpose, derived once (a bulk send signs one VERP address a reader)."""
    import hashlib

    return hashlib.sha256(f"publisher.{purpose}\0{secret_key}".encode()).digest()


def same_signature(expected: str, given: str) -> bool:
    """Compare two signatures in constant time."""
    import hmac

    return hmac.compare_digest(expected.encode("ascii", "replace"), given.encode("ascii", "replace"))

