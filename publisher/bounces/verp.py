"""VERP: each bulletin's envelope sender names its subscriber, ``bounces+<token>@example.org``.

The token is ``<id>-<day>-<signature>``: the subscriber's row id and the day the message was made (both in
base 36), and a signature (``publisher.tokens.short_signature``) over them and the subscriber's address. All
of it is lower case, digits and ``-``: a mail server that lower-cases the local part on the way back (some
do, though RFC 5321 says not to) changes nothing. A token is believed only when the signature matches the
address now under that id (a forged token, or a row id reused after an erasure, names nobody) and it is no
older than BOUNCE_TOKEN_DAYS.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.site import Site

PURPOSE = "bounce"
DAY = 86400
_TOKEN = re.compile(r"([0-9a-z]{1,13})-([0-9a-z]{1,6})-([a-z2-7]{12})")


@dataclass(frozen=True)
class VerpToken:
    """What an address's token says (its signature not yet checked against a subscriber)."""

    subscriber_id: int
    day: int
    signature: str


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


class Verp:
    """Makes and reads the VERP addresses of one site (BOUNCE_ADDRESS), on an injectable clock."""

    def __init__(self, site: Site, address: str, *, max_days: int = 180,
                 clock: Callable[[], float] = time.time) -> None:
        self.site = site
        self.local, _, self.domain = address.rpartition("@")
        self.max_days = max_days
        self.clock = clock
        self._prefix = f"{self.local.lower()}+"
        self._key: bytes | None = None          # the signature's key, derived once (one address per reader)
        self._digest: Callable[[bytes, bytes, str], bytes] | None = None   # hmac.digest, once imported
        self._base32: Callable[[bytes], str] | None = None                 # tokens.base32_start, likewise
        self._day: tuple[int, str] = (-1, "")   # the day last used, and its base 36

    @classmethod
    def from_config(cls, site: Site, config: Config | None = None, *,
                    clock: Callable[[], float] = time.time) -> Verp | None:
        """The site's VERP, or None without BOUNCE_ADDRESS."""
        from publisher.bounces.settings import BOUNCE_ADDRESS, BOUNCE_TOKEN_DAYS

        config = config if config is not None else site.config
        address = config.get(BOUNCE_ADDRESS)
        if not address:
            return None
        return cls(site, str(address), max_days=int(config.get(BOUNCE_TOKEN_DAYS)), clock=clock)

    def address(self, subscriber_id: int, email: str) -> str:
        """The envelope sender of a message to this subscriber, made now."""
        day = int(self.clock()) // DAY
        if day != self._day[0]:
            self._day = (day, _base36(day))
        ids = f"{_base36(subscriber_id)}-{self._day[1]}"
        return f"{self.local}+{ids}-{self._sign(ids, email)}@{self.domain}"

    def parse(self, address: str) -> VerpToken | None:
        """The token in an address at BOUNCE_ADDRESS (any case), or None: another address, or no token."""
        text = address.strip().strip("<>").lower()
        local, at, domain = text.rpartition("@")
        if not at or domain != self.domain.lower() or not local.startswith(self._prefix):
            return None
        match = _TOKEN.fullmatch(local[len(self._prefix):])
        if match is None:
            return None
        return VerpToken(int(match[1], 36), int(match[2], 36), match[3])

    def believe(self, token: VerpToken, email: str) -> bool:
        """True when the token was made for ``email`` by this site and is not too old."""
        from publisher.tokens import same_signature

        age_days = int(self.clock()) // DAY - token.day
        if age_days < 0 or age_days > self.max_days:
            return False
        ids = f"{_base36(token.subscriber_id)}-{_base36(token.day)}"
        return same_signature(self._sign(ids, email), token.signature)

    def find(self, text: str) -> list[VerpToken]:
        """Every token in a header's text (an address list, a Received line)."""
        pattern = re.compile(re.escape(self._prefix) + r"[0-9a-z-]+@" + re.escape(self.domain.lower()))
        found = []
        for candidate in pattern.findall(text.lower()):
            token = self.parse(candidate)
            if token is not None and token not in found:
                found.append(token)
        return found

    def _sign(self, ids: str, email: str) -> str:
        """``tokens.short_signature(site, "bounce", "<ids>.<address>")``, with the key kept (and the functions:
        an import statement per reader costs as much as the HMAC)."""
        if self._key is None or self._digest is None or self._base32 is None:
            import hmac

            from publisher.tokens import _short_key, base32_start

            self._key = _short_key(PURPOSE, self.site.secret_key)
            self._digest, self._base32 = hmac.digest, base32_start
        return self._base32(self._digest(self._key, f"{ids}.{email.lower()}".encode("utf-8"), "sha256"))
