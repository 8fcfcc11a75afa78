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
