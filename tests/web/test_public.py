"""public/ through the server: feeds with their registered types, conditional GETs, index pages, error pages."""

from __future__ import annotations

import feedparser
import pytest

from publisher.site import Site
from tests.web.conftest import heading, make_client


@pytest.fixture
def built_site(site: Site) -> Site:
    from publisher.pipeline import build_feeds

    build_feeds(site, include_unpublished=True)
    return site


@pytest.mark.parametrize(("path", "media_type", "version"), [
    ("/en/rss.xml", "application/rss+xml", "rss20"),
    ("/ko/atom.xml", "application/atom+xml", "atom10"),
    ("/ko/feed.json", "application/feed+json", None),
])
def test_feeds_are_served_with_their_registered_types(built_site: Site, path: str, media_type: str, version) -> None:
    with make_client(built_site, client=("203.0.113.7", 50000)) as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert response.content == (built_site.public_dir / path.lstrip("/")).read_bytes()
    if version:
        parsed = feedparser.parse(response.content, response_headers=dict(response.headers))
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == version
        assert parsed.entries
    else:
        assert response.json()["version"] == "https://jsonfeed.org/version/1.1"


def test_conditional_get_answers_304(built_site: Site) -> None:
    with make_client(built_site) as client:
        first = client.get("/ko/rss.xml")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert client.get("/ko/rss.xml", headers={"If-None-Match": etag}).status_code == 304
        assert client.get("/ko/rss.xml", headers={"If-Modified-Since": modified}).status_code == 304
        assert client.get("/ko/rss.xml", headers={"If-None-Match": '"stale"'}).status_code == 200


def test_index_pages_and_home(built_site: Site) -> None:
    with make_client(built_site) as client:
        korean = client.get("/ko/")
        assert korean.status_code == 200 and korean.headers["content-type"].startswith("text/html")
        assert '<html lang="ko"' in korean.text
        home = client.get("/", headers={"Accept-Language": "ko"}, follow_redirects=False)
        assert home.status_code == 302 and home.headers["location"] == "/ko/"


def test_unknown_addresses_get_a_page_in_the_visitors_language(built_site: Site) -> None:
    with make_client(built_site) as client:
        missing = client.get("/ko/no-such-article/", headers={"Accept-Language": "ko"})
        assert missing.status_code == 404 and heading(missing.text) == "페이지를 찾을 수 없습니다"
        traversal = client.get("/../publisher.toml")
        assert traversal.status_code == 404
        assert client.delete("/subscribe").status_code == 405


def test_pages_carry_the_security_headers(client) -> None:
    response = client.get("/subscribe")
    assert response.headers["referrer-policy"] == "no-referrer"          # signed links never leak
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]   # default-src 'none': no script
    assert response.headers["cache-control"] == "no-store"


def test_an_oversized_form_is_refused(client) -> None:
    response = client.post("/subscribe", content=b"email=" + b"a" * 200_000,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


def test_the_opml_list_has_its_type(built_site: Site) -> None:
    with make_client(built_site) as client:
        response = client.get("/feeds.opml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/x-opml; charset=utf-8"


def test_before_the_first_publish_unknown_addresses_are_404_not_500(site: Site) -> None:
    assert not site.public_dir.exists()
    with make_client(site) as client:
        missing = client.get("/en/rss.xml")
        assert missing.status_code == 404 and heading(missing.text) == "Not found"
        assert client.put("/subscribe").status_code == 405
        assert client.get("/subscribe").status_code == 200
