"""The discovery pages: per-language index and per-article pages, read as HTML and in Debian's headless chromium."""

from __future__ import annotations

import functools
import threading
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest

from publisher.article import load_library
from publisher.site import Site
from tests.conftest import set_settings


class LinkCollector(HTMLParser):
    """Every <link> and <a> of a page, with its attributes, and the <html lang>."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.anchors: list[dict[str, str]] = []
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "link":
            self.links.append(values)
        elif tag == "a":
            self.anchors.append(values)
        elif tag == "html":
            self.lang = values.get("lang", "")


def read_page(path: Path) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def test_index_page_advertises_its_feeds_and_the_other_language(site: Site, cli) -> None:
    assert cli("feeds", "build", "--all").exit_code == 0
    public = site.public_dir
    for lang, other in (("en", "ko"), ("ko", "en")):
        page = read_page(public / lang / "index.html")
        assert page.lang == lang
        feeds = {link["type"]: link["href"] for link in page.links if link.get("rel") == "alternate" and "type" in link}
        assert feeds == {"application/rss+xml": f"http://localhost:8000/{lang}/rss.xml",
                         "application/atom+xml": f"http://localhost:8000/{lang}/atom.xml",
                         "application/feed+json": f"http://localhost:8000/{lang}/feed.json"}
        hreflang = {link["hreflang"]: link["href"] for link in page.links if "hreflang" in link}
        assert hreflang == {lang: f"http://localhost:8000/{lang}/", other: f"http://localhost:8000/{other}/"}
        assert {"rel": "canonical", "href": f"http://localhost:8000/{lang}/"} in page.links
        # Every article of the language is listed and its page exists where the link points.
        hrefs = [a["href"] for a in page.anchors]
        for article in load_library(site).articles(lang):
            assert f"{article.slug}/" in hrefs
            assert (public / lang / article.slug / "index.html").is_file()
        for a in page.anchors:   # relative links resolve inside public/
            target = (public / lang / a["href"]).resolve()
            assert target.is_relative_to(public.resolve()) and (target.is_file() or (target / "index.html").is_file())


def test_article_pages_link_their_translations_with_hreflang(site: Site, cli) -> None:
    assert cli("feeds", "build", "--all").exit_code == 0
    slug = "2024-digital-government-workshop"
    en = read_page(site.public_dir / "en" / slug / "index.html")
    ko = read_page(site.public_dir / "ko" / slug / "index.html")
    assert (en.lang, ko.lang) == ("en", "ko")
    original = load_library(site).story(slug).original   # this story was written in Korean
    assert original.lang == "ko"
    expected = {"en": f"http://localhost:8000/en/{slug}/", "ko": f"http://localhost:8000/ko/{slug}/",
                "x-default": original.url}
    for page, lang in ((en, "en"), (ko, "ko")):
        assert {l["hreflang"]: l["href"] for l in page.links if "hreflang" in l} == expected
        assert {"rel": "canonical", "href": expected[lang]} in page.links
    assert any(a.get("hreflang") == "ko" and a["href"] == f"../../ko/{slug}/" for a in en.anchors)
    # English-only article: no hreflang alternates other than itself.
    solo = read_page(site.public_dir / "en" / "2024-sdg16-knowledge-forum" / "index.html")
    assert [l["hreflang"] for l in solo.links if "hreflang" in l] == ["en"]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_site(site: Site) -> Iterator[tuple[Site, str]]:
    """The site's public/ served on 127.0.0.1, with PUBLISHER_SITE_URL pointing at it."""
    site.public_dir.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(QuietHandler, directory=str(site.public_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield set_settings(site, PUBLISHER_SITE_URL=base), base
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")   # never let Selenium Manager reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def test_served_pages_resolve_canonical_urls_in_chromium(served_site: tuple[Site, str], cli, browser) -> None:
    from selenium.webdriver.common.by import By

    site, base = served_site
    assert cli("feeds", "build", "--all").exit_code == 0
    slug = "2024-unpsf-incheon"
    library = load_library(site)

    browser.get(f"{base}/en/")
    assert browser.title == "UNPOG News"
    browser.find_element(By.CSS_SELECTOR, f'a[href="{slug}/"]').click()
    article = library.story(slug).get("en")
    assert browser.current_url == article.url == f"{base}/en/{slug}/"
    assert browser.find_element(By.TAG_NAME, "h1").text == article.title
    # The enclosure image was copied under public/ and loads.
    assert browser.execute_script("return document.querySelector('figure img').naturalWidth") > 0

    browser.find_element(By.CSS_SELECTOR, 'a[hreflang="ko"]').click()
    korean = library.story(slug).get("ko")
    assert browser.current_url == korean.url
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    assert browser.find_element(By.TAG_NAME, "h1").text == korean.title
    # The language switch names each language in itself, the current one marked, the other one a link back.
    switch = browser.find_element(By.CSS_SELECTOR, "nav.languages")
    assert switch.find_element(By.CSS_SELECTOR, "[aria-current=page]").text == "한국어"
    assert switch.find_element(By.CSS_SELECTOR, "a[hreflang=en]").get_attribute("href") == article.url

    # The feeds the page advertises are served and valid.
    hrefs = browser.execute_script(
        "return [...document.querySelectorAll('link[rel=alternate][type$=\"xml\"]')].map(l => l.href)")
    assert sorted(hrefs) == [f"{base}/ko/atom.xml", f"{base}/ko/rss.xml"]
    for href in hrefs:
        with urllib.request.urlopen(href, timeout=5) as response:
            parsed = feedparser.parse(response.read())
        assert not parsed.bozo
        assert korean.url in [entry.link for entry in parsed.entries]
