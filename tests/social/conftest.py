"""Fixtures for the social tests: a sample site with account settings in its .env, HTTP intercepted under the
real client libraries (``responses`` under requests), and a clock that never really sleeps."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import responses

from publisher import pipeline
from publisher.article import Story
from publisher.channels.base import Channel
from publisher.delivery import DeliveryReport
from publisher.site import Site

NOW = 1_700_000_000.0  # the fake clock's "now" (Unix time)

X_DEFAULT = {"X_API_KEY": "ck-default", "X_API_SECRET": "cs-default", "X_ACCESS_TOKEN": "at-default",
             "X_ACCESS_TOKEN_SECRET": "ats-default"}
X_KOREAN = {"X_KO_API_KEY": "ck-korean", "X_KO_API_SECRET": "cs-korean", "X_KO_ACCESS_TOKEN": "at-korean",
            "X_KO_ACCESS_TOKEN_SECRET": "ats-korean"}
MASTODON_BASE = "https://mastodon.example"
MASTODON_DEFAULT = {"MASTODON_API_BASE_URL": MASTODON_BASE, "MASTODON_ACCESS_TOKEN": "token-default"}


@pytest.fixture
def make_site(site_dir: Path) -> Iterator[Callable[..., Site]]:
    """``make_site(**settings)``: the sample site with ``settings`` written to its ``.env``."""
    opened: list[Site] = []

    def make(**settings: str) -> Site:
        lines = "".join(f"{name}={value}\n" for name, value in settings.items())
        (site_dir / ".env").write_text(lines, encoding="utf-8")
        site = Site(site_dir)
        opened.append(site)
        return site

    yield make
    for site in opened:
        site.close()


@pytest.fixture
def write_article(site_dir: Path) -> Callable[..., None]:
    """Add ``content/<slug>.<lang>.md`` to the sample site."""

    def write(slug: str, lang: str, title: str, summary: str, tags: list[str] | None = None,
              extra: str = "") -> None:
        tag_line = "[" + ", ".join(tags or []) + "]"
        text = textwrap.dedent(f"""\
            ---
            title: "{title}"
            date: 2025-03-01
            summary: "{summary}"
            tags: {tag_line}
            """) + extra + "---\n\nBody.\n"
        (site_dir / "content" / f"{slug}.{lang}.md").write_text(text, encoding="utf-8")

    return write


def story_of(site: Site, slug: str) -> Story:
    return site.articles().story(slug)


def publish_with(channel: Channel, story: Story, langs: list[str], **options: bool) -> list[DeliveryReport]:
    """Publish ``story`` in ``langs`` through ``channel`` alone, as ``publisher publish`` does: through the
    pipeline, which claims each delivery in the ledger and records its outcome."""
    return pipeline.deliver(channel.site, channel, [(story, langs)], pipeline.RunOptions(**options))


class FakeClock:
    """``channel.clock`` and ``channel.sleep``: time moves only when the channel sleeps."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    """Every HTTP request made through requests is answered here; an unexpected one fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
