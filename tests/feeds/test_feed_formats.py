"""RSS, Atom and JSON Feed files of the sample site, read back the way feed readers read them (feedparser)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from publisher.article import load_library
from publisher.site import Site

ATOM = "{http://www.w3.org/2005/Atom}"
FEED_FILES = ("rss.xml", "atom.xml", "feed.json")


def build_all(cli) -> None:
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 0, result.output


def every_feed(site: Site) -> list[Path]:
    public = site.public_dir
    return sorted([*public.glob("*/rss.xml"), *public.glob("*/atom.xml"), *public.glob("*/feed.json"),
                   *public.glob("*/themes/*/rss.xml"), *public.glob("*/themes/*/atom.xml")])


def test_every_feed_parses_cleanly_in_its_language(site: Site, cli) -> None:
    build_all(cli)
    feeds = every_feed(site)
    # 2 languages x 3 formats, plus RSS and Atom for each theme of each language
    themes = {(p.parent.parent.parent.name, p.parent.name) for p in feeds if "themes" in p.parts}
    assert len(feeds) == 6 + 2 * len(themes) and len(themes) >= 4
    for path in feeds:
        lang = path.relative_to(site.public_dir).parts[0]
        if path.suffix == ".json":
            # feedparser 6 reads no JSON Feed; test_json_feed_has_every_field_the_1_1_spec_requires checks it.
            links = [item["url"] for item in json.loads(path.read_text(encoding="utf-8"))["items"]]
        else:
            parsed = feedparser.parse(path.read_bytes())
            assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
            assert parsed.version in ("rss20", "atom10")
            assert parsed.feed.language == lang
            links = [entry.link for entry in parsed.entries]
        assert links, path
        assert all(link.startswith(f"http://localhost:8000/{lang}/") for link in links), path


def test_entries_are_the_language_versions_newest_first(site: Site, cli) -> None:
    build_all(cli)
    library = load_library(site)
    for lang in ("en", "ko"):
        expected = [a.title for a in library.articles(lang)]
        for name in ("rss.xml", "atom.xml"):
            parsed = feedparser.parse((site.public_dir / lang / name).read_bytes())
            assert [e.title for e in parsed.entries] == expected
            published = [datetime(*e.published_parsed[:6]) for e in parsed.entries]
            assert published == sorted(published, reverse=True)
        document = json.loads((site.public_dir / lang / "feed.json").read_text(encoding="utf-8"))
        assert [item["title"] for item in document["items"]] == expected


def test_korean_text_round_trips_unchanged(site: Site, cli) -> None:
    build_all(cli)
    article = next(a for a in load_library(site).articles("ko") if a.slug == "2024-digital-government-workshop")
    assert "유엔거버넌스센터" in article.title
    for name in ("rss.xml", "atom.xml"):
        raw = (site.public_dir / "ko" / name).read_bytes()
        assert article.title.encode("utf-8") in raw  # real UTF-8, not character references
        entry = next(e for e in feedparser.parse(raw).entries if e.link == article.url)
        assert entry.title == article.title
        assert entry.author == "유엔거버넌스센터"
        assert "공공데이터의 품질 관리와 개방" in entry.content[0].value
        assert {t.term for t in entry.tags} >= {"디지털정부", "역량강화"}
    document = json.loads((site.public_dir / "ko" / "feed.json").read_text(encoding="utf-8"))
    assert document["title"] == "유엔거버넌스센터 소식" and document["language"] == "ko"
    assert "\\u" not in (site.public_dir / "ko" / "feed.json").read_text(encoding="utf-8")


def test_feed_titles_and_descriptions_come_from_site_settings(site: Site, cli) -> None:
    build_all(cli)
    en = feedparser.parse((site.public_dir / "en" / "rss.xml").read_bytes()).feed
    ko = feedparser.parse((site.public_dir / "ko" / "atom.xml").read_bytes()).feed
    assert (en.title, en.subtitle) == ("UNPOG News",
                                        "News from the United Nations Project Office on Governance (UNPOG), Incheon")
    assert (ko.title, ko.subtitle) == ("유엔거버넌스센터 소식", "인천 유엔거버넌스센터(UNPOG)의 소식")
    theme = feedparser.parse((site.public_dir / "ko/themes/digital-government/rss.xml").read_bytes()).feed
    assert theme.title.startswith("유엔거버넌스센터 소식: ") and "Digital Government" not in theme.title


def test_self_and_alternate_links_and_hreflang_between_translations(site: Site, cli) -> None:
    build_all(cli)
    public = site.public_dir
    atom = feedparser.parse((public / "en" / "atom.xml").read_bytes())
    links = {(l.rel, l.get("hreflang"), l.type): l.href for l in atom.feed.links}
    assert links[("self", None, "application/atom+xml")] == "http://localhost:8000/en/atom.xml"
    assert links[("alternate", "en", "text/html")] == "http://localhost:8000/en/"
    assert links[("alternate", "ko", "application/atom+xml")] == "http://localhost:8000/ko/atom.xml"
    rss = feedparser.parse((public / "en" / "rss.xml").read_bytes())
    assert rss.feed.link == "http://localhost:8000/en/"   # feedgen takes the channel link from the last link()
    assert any(l.rel == "self" and l.href == "http://localhost:8000/en/rss.xml" for l in rss.feed.links)

    # An article with a Korean version links to it, with hreflang, in both XML formats and in JSON.
    slug = "2024-digital-government-workshop"
    for name in ("atom.xml", "rss.xml"):
        entry = next(e for e in feedparser.parse((public / "en" / name).read_bytes()).entries if slug in e.link)
        assert entry.link == f"http://localhost:8000/en/{slug}/"
        alternates = {l.get("hreflang"): l.href for l in entry.links if l.rel == "alternate"}
        assert alternates["ko"] == f"http://localhost:8000/ko/{slug}/"
    item = next(i for i in json.loads((public / "en" / "feed.json").read_text())["items"] if slug in i["url"])
    assert item["_publisher"]["translations"] == [{"language": "ko", "url": f"http://localhost:8000/ko/{slug}/"}]
    # Atom forbids two alternates with the same type and hreflang in one entry.
    tree = etree.parse(str(public / "en" / "atom.xml"))
    for entry in tree.iter(f"{ATOM}entry"):
        pairs = [(l.get("type"), l.get("hreflang")) for l in entry.iter(f"{ATOM}link") if l.get("rel") == "alternate"]
        assert len(pairs) == len(set(pairs)) and all(p[1] for p in pairs)


def test_image_enclosure_has_the_real_length_and_type(site: Site, cli) -> None:
    build_all(cli)
    image = site.content_dir / "images" / "unpsf-2024.png"
    url = "http://localhost:8000/images/unpsf-2024.png"
    for lang in ("en", "ko"):
        for name in ("rss.xml", "atom.xml"):
            parsed = feedparser.parse((site.public_dir / lang / name).read_bytes())
            entry = next(e for e in parsed.entries if "2024-unpsf-incheon" in e.link)
            assert [(e.href, int(e.length), e.type) for e in entry.enclosures] == [
                (url, image.stat().st_size, "image/png")]
        item = next(i for i in json.loads((site.public_dir / lang / "feed.json").read_text())["items"]
                    if "2024-unpsf-incheon" in i["url"])
        assert item["image"] == url
        assert item["attachments"][0]["size_in_bytes"] == image.stat().st_size
        assert item["attachments"][0]["mime_type"] == "image/png"
    # The image lives in content/images/; the build copies it so the enclosure URL resolves when served.
    assert (site.public_dir / "images" / "unpsf-2024.png").read_bytes() == image.read_bytes()


def test_an_rss_item_has_its_links_where_feedgen_writes_them(site: Site, cli) -> None:
    # Our extension writes <link> and <enclosure> (not FeedEntry.link()): in feedgen's places, translations first.
    build_all(cli)
    tree = etree.fromstring((site.public_dir / "en" / "rss.xml").read_bytes())
    item = next(i for i in tree.iter("item") if "2024-unpsf-incheon" in i.findtext("link"))
    tags = [etree.QName(child).localname for child in item]
    assert tags[:4] == ["title", "link", "link", "description"]   # atom:link to the translation, then <link>
    assert item[1].tag == f"{ATOM}link" and item[1].get("hreflang") == "ko"
    assert tags[tags.index("enclosure") + 1] == "pubDate"
    assert tags[-1] == "creator"
    enclosure = item.find("enclosure")
    assert list(enclosure.attrib) == ["url", "length", "type"]


def test_remote_image_gets_length_zero_and_a_guessed_type(site: Site, cli, write_article) -> None:
    write_article("remote-photo", "en", title="Remote photo", date="2030-01-01T09:00:00+09:00",
                  image={"src": "https://example.org/photos/a.jpg", "alt": "A photo"})
    build_all(cli)
    entry = feedparser.parse((site.public_dir / "en" / "rss.xml").read_bytes()).entries[0]
    assert [(e.href, e.length, e.type) for e in entry.enclosures] == [
        ("https://example.org/photos/a.jpg", "0", "image/jpeg")]
    item = json.loads((site.public_dir / "en" / "feed.json").read_text())["items"][0]
    assert item["attachments"] == [{"url": "https://example.org/photos/a.jpg", "mime_type": "image/jpeg",
                                    "title": "A photo"}]   # size unknown: size_in_bytes left out


HOSTILE_TITLE = """<script>alert("t")</script> Tom & Jerry's "quotes" <b>bold</b>"""
HOSTILE_BODY = """Hello & welcome.

<script>alert('body')</script>

<img src="x.png" onerror="alert('img')" alt="pic">

<a href="javascript:alert(1)">click</a> and <p onclick="steal()">para</p>
"""


def test_hostile_titles_are_escaped_and_hostile_bodies_cleaned(site: Site, cli, write_article) -> None:
    write_article("hostile", "en", body=HOSTILE_BODY, title=HOSTILE_TITLE, date="2030-01-01T09:00:00+09:00",
                  summary='Summary with <script>x()</script> & "quotes"', author='Eve "<i>" & Co', tags=["a&b", "<c>"])
    build_all(cli)
    public = site.public_dir
    for name in ("rss.xml", "atom.xml"):
        raw = (public / "en" / name).read_bytes()
        tree = etree.fromstring(raw)   # well-formed XML
        # No element other than the feed's own: the hostile markup is text, never structure.
        assert not [el for el in tree.iter() if etree.QName(el).localname in ("script", "img", "b", "i", "p")]
        parsed = feedparser.parse(raw)
        assert not parsed.bozo
        entry = parsed.entries[0]
        assert entry.title == HOSTILE_TITLE   # escaped once, read back as the same text
        content = entry.content[0].value
        for needle in ("<script", "onerror", "onclick", "javascript:", "alert("):
            assert needle not in content, (name, needle, content)
        assert "Hello &amp; welcome." in content and "para" in content
        assert b"onerror" not in raw and b"javascript:" not in raw and b"steal()" not in raw
    item = json.loads((public / "en" / "feed.json").read_text())["items"][0]
    assert item["title"] == HOSTILE_TITLE
    assert "<script" not in item["content_html"] and "onerror" not in item["content_html"]
    assert item["summary"] == 'Summary with & "quotes"'   # plain text, from the sanitized summary
    for page in (public / "en" / "index.html", public / "en" / "hostile" / "index.html"):
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html and "onerror" not in html and "<b>bold</b>" not in html
        assert "&lt;script&gt;" in html


def test_json_feed_has_every_field_the_1_1_spec_requires(site: Site, cli) -> None:
    build_all(cli)
    for lang in ("en", "ko"):
        path = site.public_dir / lang / "feed.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert isinstance(document["title"], str) and document["title"]
        assert isinstance(document["items"], list) and document["items"]
        assert document["feed_url"] == f"http://localhost:8000/{lang}/feed.json"
        assert document["home_page_url"] == f"http://localhost:8000/{lang}/"
        assert all(isinstance(a["name"], str) for a in document["authors"])
        ids = [item["id"] for item in document["items"]]
        assert len(ids) == len(set(ids))
        for item in document["items"]:
            assert isinstance(item["id"], str) and item["id"]
            assert isinstance(item.get("content_html") or item.get("content_text"), str)
            for key in ("date_published", "date_modified"):
                moment = datetime.fromisoformat(item[key])   # RFC 3339, with its offset
                assert moment.tzinfo is not None
            assert item["language"] == lang
            assert all(isinstance(tag, str) for tag in item.get("tags", []))
            for attachment in item.get("attachments", []):
                assert attachment["url"] and attachment["mime_type"]
            unknown = set(item) - {"id", "url", "external_url", "title", "content_html", "content_text", "summary",
                                   "image", "banner_image", "date_published", "date_modified", "authors", "tags",
                                   "language", "attachments"}
            assert all(key.startswith("_") for key in unknown), unknown


@pytest.mark.parametrize("limit", ["1", "3"])
def test_feeds_keep_the_newest_items_up_to_the_maximum(site: Site, cli, limit: str) -> None:
    from tests.conftest import set_settings

    site = set_settings(site, FEED_MAX_ITEMS=limit)
    build_all(cli)
    newest = [a.title for a in load_library(site).articles("en")][: int(limit)]
    for name in ("rss.xml", "atom.xml"):
        assert [e.title for e in feedparser.parse((site.public_dir / "en" / name).read_bytes()).entries] == newest
    assert [i["title"] for i in json.loads((site.public_dir / "en" / "feed.json").read_text())["items"]] == newest


def test_theme_feeds_hold_only_their_theme(site: Site, cli) -> None:
    build_all(cli)
    library = load_library(site)
    for path in site.public_dir.glob("*/themes/*/atom.xml"):
        lang, theme = path.parts[-4], path.parts[-2]
        expected = [a.url for a in library.articles(lang) if a.theme_slug == theme]
        parsed = feedparser.parse(path.read_bytes())
        assert [e.link for e in parsed.entries] == expected and expected
        assert parsed.feed.language == lang


def test_opml_lists_every_feed_that_was_built(site: Site, cli) -> None:
    build_all(cli)
    tree = etree.parse(str(site.public_dir / "feeds.opml"))
    urls = {o.get("xmlUrl") for o in tree.iter("outline") if o.get("xmlUrl")}
    built = {f"http://localhost:8000/{p.relative_to(site.public_dir).as_posix()}" for p in every_feed(site)
             if p.suffix == ".xml"}
    assert urls == built


def test_summaries_are_html_in_xml_feeds_and_plain_text_in_json(site: Site, cli, write_article) -> None:
    write_article("marked-up", "en", title="Marked up", date="2030-01-01T09:00:00+09:00",
                  summary="A **bold** claim and [a link](https://example.org/x).")
    build_all(cli)
    entry = feedparser.parse((site.public_dir / "en" / "atom.xml").read_bytes()).entries[0]
    assert entry.summary == ('<p>A <strong>bold</strong> claim and '
                             '<a href="https://example.org/x" rel="noopener noreferrer">a link</a>.</p>')
    item = json.loads((site.public_dir / "en" / "feed.json").read_text())["items"][0]
    assert item["summary"] == "A bold claim and a link."


def test_relative_links_in_a_body_resolve_against_the_article_page(site: Site, cli, write_article) -> None:
    write_article("relative", "en", body="![Chart](chart.png)\n\nSee [the report](../report/).\n",
                  title="Relative", date="2030-01-01T09:00:00+09:00")
    build_all(cli)
    for name in ("rss.xml", "atom.xml"):
        content = feedparser.parse((site.public_dir / "en" / name).read_bytes()).entries[0].content[0].value
        assert 'src="http://localhost:8000/en/relative/chart.png"' in content, name
        assert 'href="http://localhost:8000/en/report/"' in content, name


def test_a_site_with_nothing_published_has_valid_empty_feeds(site: Site, cli) -> None:
    result = cli("feeds", "build")   # nothing was ever published
    assert result.exit_code == 0, result.output
    for lang in ("en", "ko"):
        for name in ("rss.xml", "atom.xml"):
            parsed = feedparser.parse((site.public_dir / lang / name).read_bytes())
            assert not parsed.bozo and parsed.entries == [] and parsed.feed.title
        assert json.loads((site.public_dir / lang / "feed.json").read_text())["items"] == []
    assert "아직 게시된 글이 없습니다." in (site.public_dir / "ko" / "index.html").read_text(encoding="utf-8")
    again = cli("feeds", "build")
    assert again.output.startswith("0 files written")


def test_control_characters_pasted_into_an_article_do_not_break_the_feeds(site: Site, cli, write_article) -> None:
    write_article("pasted", "en", body="Body\x0b with a vertical tab and \x01 a start-of-heading.\n",
                  title="Pasted\x0b title\x0c", date="2030-01-01T09:00:00+09:00", author="Ev\x0ce",
                  summary="Sum\x0bmary", tags=["a\x02b"])
    assert "\x0b" in next(a for a in load_library(site).articles("en") if a.slug == "pasted").title
    build_all(cli)
    for name in ("rss.xml", "atom.xml"):
        parsed = feedparser.parse((site.public_dir / "en" / name).read_bytes())
        assert not parsed.bozo
        entry = parsed.entries[0]
        assert (entry.title, entry.author) == ("Pasted title", "Eve")
        assert "Body with a vertical tab and  a start-of-heading." in entry.content[0].value
    item = json.loads((site.public_dir / "en" / "feed.json").read_text())["items"][0]
    assert item["title"] == "Pasted title" and item["tags"] == ["ab"]
