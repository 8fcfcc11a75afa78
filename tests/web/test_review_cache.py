"""The review page keeps what it rendered until the content files, the settings or the ledger change."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

import publisher.article as article_module
from publisher.site import Site
from publisher.web.review import RENDERED

SLUG = "2024-unpsf-incheon"


def age(site: Site, seconds_ago: float = 3600) -> None:
    moment = time.time() - seconds_ago
    for path in site.content_dir.rglob("*"):
        if path.is_file():
            os.utime(path, (moment, moment))


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    RENDERED.entries.clear()
    getattr(article_module, "_PARSED", {}).clear()
    yield
    RENDERED.entries.clear()


def test_a_second_visit_renders_nothing_again(client, site: Site) -> None:
    age(site)
    before = RENDERED.renders
    first = client.get(f"/review/{SLUG}?lang=en")
    second = client.get(f"/review/{SLUG}?lang=en")
    assert first.status_code == second.status_code == 200
    assert RENDERED.renders == before + 1
    assert second.text == first.text


def test_an_edited_file_is_rendered_again(client, site: Site) -> None:
    age(site)
    client.get(f"/review/{SLUG}?lang=en")
    before = RENDERED.renders
    path = site.content_dir / f"{SLUG}.en.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Incheon", "Songdo", 1), encoding="utf-8")
    os.utime(path, (time.time() - 600, time.time() - 600))
    page = client.get(f"/review/{SLUG}?lang=en")
    assert RENDERED.renders == before + 1
    assert "Songdo" in page.text


def test_a_file_written_just_now_is_rendered_on_every_visit(client, site: Site) -> None:
    """Too recent to tell whether it is rewritten again unnoticed (same size, same modification time)."""
    age(site)
    (site.content_dir / f"{SLUG}.en.md").touch()
    before = RENDERED.renders
    client.get(f"/review/{SLUG}?lang=en")
    client.get(f"/review/{SLUG}?lang=en")
    assert RENDERED.renders == before + 2


def test_publishing_another_article_renders_the_feeds_again(client, site: Site, cli) -> None:
    age(site)
    client.get(f"/review/{SLUG}?lang=en")
    before = RENDERED.renders
    assert cli("publish", "--channel", "feeds", str(site.content_dir / "2025-public-service-day.en.md"),
               ).exit_code == 0
    client.get(f"/review/{SLUG}?lang=en")
    assert RENDERED.renders == before + 1
