"""Signed links: a confirm link expires after its hours, measured with an injected clock, never with wall time."""

from __future__ import annotations

import pytest

from publisher import tokens
from publisher.errors import BadToken
from publisher.site import Site

HOUR = 3600.0


def test_a_token_expires_after_max_age_on_the_injected_clock(site: Site) -> None:
    made_at = 1_750_000_000.0
    token = tokens.sign("confirm", {"email": "reader@example.org"}, site, clock=lambda: made_at)

    def at(hours: float) -> dict[str, object]:
        return tokens.verify("confirm", token, site, max_age=int(72 * HOUR), clock=lambda: made_at + hours * HOUR)

    assert at(71.9) == {"email": "reader@example.org"}
    with pytest.raises(BadToken, match="^this link has expired$"):
        at(72.1)
    # Without max_age (unsubscribe links) a token never expires.
    assert tokens.verify("confirm", token, site, clock=lambda: made_at + 10_000 * HOUR) == {
        "email": "reader@example.org"}


def test_links_made_in_bulk_verify_like_single_ones_and_keep_their_purpose(site: Site) -> None:
    make = tokens.link_maker(site, "unsubscribe")
    url = make({"email": "reader@example.org"})
    assert url.startswith(f"{site.url}/unsubscribe/")
    token = url.rsplit("/", 1)[1]
    assert tokens.verify("unsubscribe", token, site) == {"email": "reader@example.org"}
    with pytest.raises(BadToken):
        tokens.verify("preferences", token, site)


@pytest.mark.parametrize("purpose", ["unsubscribe", "preferences", "confirm"])
def test_bulk_links_are_byte_for_byte_the_tokens_itsdangerous_makes(site: Site, purpose: str) -> None:
    # link_maker signs with hmac directly; every token must be the one itsdangerous makes for the same data
    # at the same second, so links already mailed and links mailed now are read by the same `verify`.
    from itsdangerous import TimestampSigner
    from itsdangerous.encoding import base64_encode
    from itsdangerous.serializer import Serializer
    from itsdangerous.url_safe import URLSafeTimedSerializer

    payloads: list[dict[str, object]] = [
        {"email": "reader@example.org"}, {"email": "독자@例え.jp"}, {"email": "a+b.c@x.example", "lang": "ko"},
        {"email": "x" * 300 + "@example.org"}, {}, {"n": 1, "list": [1, "ü"], "none": None},
        {"email": 'odd"quote\\back\x01\u2028@example.org'}, {"email": 5}]
    for made_at in (0.0, 1.0, 255.9, 256.0, 1_750_000_000.0, 1_750_000_000.99, 4_102_444_800.0):
        class At(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(made_at)

        serializer = URLSafeTimedSerializer(site.secret_key, salt=f"publisher.{purpose}", signer=At)
        make = tokens.link_maker(site, purpose, clock=lambda: made_at)
        for data in payloads:
            token = make(data).removeprefix(f"{site.url}/{purpose}/")
            made = serializer.dumps(data)
            if made.startswith("."):
                # itsdangerous compressed this one (the long address): the same token but for the zlib step.
                json = Serializer.dump_payload(serializer, data)  # type: ignore[arg-type]
                made = serializer.make_signer(serializer.salt).sign(base64_encode(json)).decode("ascii")
            assert token == made
            assert tokens.verify_stamped(purpose, token, site, clock=lambda: made_at + 1) == (data, int(made_at))


def test_a_link_made_before_the_change_still_verifies(site: Site) -> None:
    # A token minted by the itsdangerous path (as every link mailed before bulk signing was): still valid, and a
    # bulk link for the same data at the same second is the same string.
    made_at = 1_700_000_000.0
    old = tokens.sign("unsubscribe", {"email": "reader@example.org"}, site, clock=lambda: made_at)
    assert tokens.verify("unsubscribe", old, site) == {"email": "reader@example.org"}
    new = tokens.link_maker(site, "unsubscribe", clock=lambda: made_at)({"email": "reader@example.org"})
    assert new == f"{site.url}/unsubscribe/{old}"


def test_a_bulk_link_altered_is_refused(site: Site) -> None:
    make = tokens.link_maker(site, "unsubscribe", clock=lambda: 1_750_000_000.0)
    payload, stamp, signature = make({"email": "reader@example.org"}).rsplit("/", 1)[1].split(".")
    other = make({"email": "other@example.org"}).rsplit("/", 1)[1].split(".")[0]
    changed = ("B" if signature[0] == "A" else "A") + signature[1:]
    for bad in (f"{other}.{stamp}.{signature}", f"{payload}.{stamp}.{changed}", f"{payload}.{stamp}x.{signature}"):
        with pytest.raises(BadToken):
            tokens.verify("unsubscribe", bad, site)


def test_bulk_links_stamp_the_clock_of_each_link(site: Site) -> None:
    now = [1_750_000_000.0]
    make = tokens.link_maker(site, "preferences", clock=lambda: now[0])
    first = make({"email": "reader@example.org"}).rsplit("/", 1)[1]
    now[0] += 3600
    later = make({"email": "reader@example.org"}).rsplit("/", 1)[1]
    assert tokens.verify_stamped("preferences", first, site)[1] == 1_750_000_000
    assert tokens.verify_stamped("preferences", later, site)[1] == 1_750_003_600


def test_short_signatures_are_the_lower_case_base32_of_the_hmac(site: Site) -> None:
    # The VERP tokens already in the world were made as the whole HMAC-SHA256 in base32, cut: the shortcut
    # (encode only the bytes needed, the key derived once) must give the same characters at every length.
    import base64
    import hashlib
    import hmac

    for purpose in ("bounce", "other"):
        key = hashlib.sha256(f"publisher.{purpose}\0{site.secret_key}".encode()).digest()
        for text in ("1-4mx-reader@example.org", "독자@예시.kr", "", "x" * 500):
            whole = base64.b32encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode().lower()
            for length in (1, 7, 8, 9, 12, 16, 17, 52):
                assert tokens.short_signature(site, purpose, text, length) == whole[:length]
