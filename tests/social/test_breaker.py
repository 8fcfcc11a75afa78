"""The social circuit breaker (issue 11 item 4): a platform answering 5xx (or not at all) post after post stops
the run after SOCIAL_BREAKER_FAILURES of them, the rest left pending, instead of trying every remaining post."""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests
import responses
import urllib3

from publisher import pipeline
from publisher.channels.mastodon import MastodonChannel
from publisher.site import Site
from tests.social.conftest import MASTODON_BASE, MASTODON_DEFAULT, FakeClock

STATUSES = f"{MASTODON_BASE}/api/v1/statuses"
INSTANCE_V2 = f"{MASTODON_BASE}/api/v2/instance/"
ARTICLES = 8


def write_articles(write_article: Any, count: int = ARTICLES) -> list[str]:
    slugs = [f"2025-notice-{i}" for i in range(count)]
    for slug in slugs:
        write_article(slug, "en", f"Notice {slug}", "A short notice.")
    return slugs


def publish_all(site: Site, slugs: list[str], clock: FakeClock) -> list[Any]:
    channel = MastodonChannel(site)
    channel.clock, channel.sleep = clock.clock, clock.sleep
    paths = [site.content_dir / f"{slug}.en.md" for slug in slugs]
    return pipeline.publish(site, paths, channels=[channel], langs=["en"])


def posts(http: responses.RequestsMock) -> int:
    return sum(1 for c in http.calls if c.request.url == STATUSES and c.request.method == "POST")


def states(site: Site) -> Counter[str]:
    return Counter(row[0] for row in site.store().connection.execute(
        "SELECT state FROM deliveries WHERE channel = 'mastodon'"))


def test_repeated_5xx_stops_posting_after_the_breaker_with_the_rest_pending(make_site: Any, write_article: Any,
                                                                          http: responses.RequestsMock) -> None:
    site = make_site(**MASTODON_DEFAULT)
    slugs = write_articles(write_article)
    http.add(responses.GET, INSTANCE_V2, json={"configuration": {"statuses": {"max_characters": 500}}})
    http.add(responses.POST, STATUSES, json={"error": "Service Unavailable"}, status=503)

    reports = publish_all(site, slugs, FakeClock())

    assert posts(http) == 5                                        # SOCIAL_BREAKER_FAILURES' default
    assert states(site) == {"unconfirmed": 5, "pending": ARTICLES - 5}
    stopped = [r for r in reports if r.state == "stopped"]
    assert len(stopped) == 1 and stopped[0].channel == "mastodon"
    assert stopped[0].note.startswith("mastodon: 5 posts in a row got a 5xx, no answer or no connection (last: ")
    assert "the platform looks down" in stopped[0].note and "\n" not in stopped[0].note

    # The platform is back: a later run posts the pending ones, and never the unconfirmed ones blindly.
    http.replace(responses.POST, STATUSES, json={"id": "9", "url": f"{MASTODON_BASE}/@unpog/9",
                                                 "uri": "x", "content": "<p>ok</p>", "account": {"id": "77"}})
    again = publish_all(site, slugs, FakeClock())
    assert not [r for r in again if r.state == "stopped"]
    assert states(site) == {"unconfirmed": 5, "sent": ARTICLES - 5}
    assert posts(http) == 5 + ARTICLES - 5


def test_refused_connections_count_too_and_an_answer_resets_the_count(make_site: Any, write_article: Any,
                                                                      http: responses.RequestsMock) -> None:
    site = make_site(**MASTODON_DEFAULT, SOCIAL_BREAKER_FAILURES="3")
    slugs = write_articles(write_article)
    http.add(responses.GET, INSTANCE_V2, json={"configuration": {"statuses": {"max_characters": 500}}})
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, STATUSES, urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    http.add(responses.POST, STATUSES, body=refused)
    http.add(responses.POST, STATUSES, body=refused)
    http.add(responses.POST, STATUSES, json={"error": "Validation failed: Text is too long"}, status=422)
    http.add(responses.POST, STATUSES, body=refused)
    http.add(responses.POST, STATUSES, body=refused)
    http.add(responses.POST, STATUSES, body=refused)

    reports = publish_all(site, slugs, FakeClock())

    assert posts(http) == 6            # 2 refused, a 422 (the platform answered: the count starts again), 3 refused
    assert states(site) == {"failed": 6, "pending": ARTICLES - 6}
    assert [r.state for r in reports if r.state == "stopped"] == ["stopped"]


def test_social_breaker_failures_0_turns_it_off(make_site: Any, write_article: Any,
                                                http: responses.RequestsMock) -> None:
    site = make_site(**MASTODON_DEFAULT, SOCIAL_BREAKER_FAILURES="0")
    slugs = write_articles(write_article)
    http.add(responses.GET, INSTANCE_V2, json={"configuration": {"statuses": {"max_characters": 500}}})
    http.add(responses.POST, STATUSES, json={"error": "Bad gateway"}, status=502)

    publish_all(site, slugs, FakeClock())

    assert posts(http) == ARTICLES and states(site) == {"unconfirmed": ARTICLES}
