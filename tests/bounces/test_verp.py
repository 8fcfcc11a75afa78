"""VERP addresses: short, lower case, signed; a forged, altered, expired or orphaned token names nobody."""

from __future__ import annotations

import re

import pytest

from publisher.bounces.verp import DAY, Verp
from publisher.errors import ConfigError
from publisher.site import Site
from tests.conftest import set_settings

pytestmark = pytest.mark.both_databases

NOW = 1_796_000_000.0


def verp(site: Site, now: float = NOW) -> Verp:
    return Verp(site, "bounces@unpog.example", max_days=180, clock=lambda: now)


def test_the_address_is_short_lower_case_and_names_the_subscriber(site: Site) -> None:
    address = verp(site).address(12345, "Kim.MinSu@example.kr")
    assert re.fullmatch(r"bounces\+[0-9a-z]+-[0-9a-z]+-[a-z2-7]{12}@unpog\.example", address), address
    assert len(address.split("@")[0]) <= 40
    token = verp(site).parse(address)
    assert token is not None and token.subscriber_id == 12345
    assert verp(site).believe(token, "kim.minsu@EXAMPLE.kr")   # the address in any case


def test_a_server_folding_the_case_changes_nothing(site: Site) -> None:
    address = verp(site).address(7, "reader@example.org")
    for folded in (address.upper(), f"<{address.upper()}>", address.lower()):
        token = verp(site).parse(folded)
        assert token is not None and verp(site).believe(token, "reader@example.org")


def test_forged_altered_expired_or_reused_tokens_are_not_believed(site: Site) -> None:
    address = verp(site).address(7, "reader@example.org")
    token = verp(site).parse(address)
    assert token is not None
    assert not verp(site).believe(token, "someone-else@example.org")     # id 7 reused after an erasure
    local, domain = address.split("@")
    altered = verp(site).parse(local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain)
    assert altered is not None and not verp(site).believe(altered, "reader@example.org")
    other_id = verp(site).parse(address.replace("bounces+7-", "bounces+8-"))
    assert other_id is not None and not verp(site).believe(other_id, "reader@example.org")
    assert verp(site, NOW + 180 * DAY).believe(token, "reader@example.org")
    assert not verp(site, NOW + 181 * DAY).believe(token, "reader@example.org")   # BOUNCE_TOKEN_DAYS
    (site.root / ".env").write_text("PUBLISHER_SECRET_KEY=another-key-entirely\n", encoding="utf-8")
    other_site = Site(site.root)
    assert not verp(other_site).believe(token, "reader@example.org")           # another site's key
    other_site.close()


@pytest.mark.parametrize("address", ["bounces@unpog.example", "news@unpog.example", "bounces+7-xx@unpog.example",
                                     "bounces+7-1a-abcdefghijkl@elsewhere.example", "other+7-1a-abcdefghijkl@unpog.example"])
def test_other_addresses_hold_no_token(site: Site, address: str) -> None:
    assert verp(site).parse(address) is None


@pytest.mark.parametrize("value", ["bounces+x@unpog.example", "not an address", "bounces@", "böunces@unpog.example"])
def test_a_bad_bounce_address_is_one_line(site: Site, value: str) -> None:
    site = set_settings(site, BOUNCE_ADDRESS=value)
    with pytest.raises(ConfigError) as raised:
        Verp.from_config(site)
    assert "BOUNCE_ADDRESS" in str(raised.value) and "\n" not in str(raised.value)
    site.close()


def test_the_signature_is_the_short_signature_in_base32_as_before(site: Site) -> None:
    """The VERP signature keeps its key and encodes 60 bits by table: the same characters as
    ``base64.b32encode(HMAC-SHA256)[:12]`` lower-cased, so addresses sent before this change are still believed."""
    import base64
    import hashlib
    import hmac
    import os

    from publisher.tokens import base32_start, short_signature

    for _ in range(500):
        data = os.urandom(32)
        assert base32_start(data) == base64.b32encode(data[:10]).decode().lower()[:12]
    assert base32_start(b"\0" * 32, 8) == "aaaaaaaa"     # another length: the general path
    key = hashlib.sha256(f"publisher.bounce\0{site.secret_key}".encode()).digest()
    maker = verp(site)
    for subscriber_id, address in [(1, "a@example.org"), (12345, "Kim.MinSu@example.kr"), (10**9, "x@y.z")]:
        made = maker.address(subscriber_id, address)
        ids = made.split("+", 1)[1].rsplit("-", 1)[0]
        text = f"{ids}.{address.lower()}"
        old = base64.b32encode(hmac.new(key, text.encode(), "sha256").digest()[:10]).decode().lower()[:12]
        assert made == f"bounces+{ids}-{old}@unpog.example"
        assert short_signature(site, "bounce", text) == old
