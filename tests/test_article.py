"""The article model: loading content files, the checks made at load time, and writing them back."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from publisher.article import dump_article, load_article, load_library, write_article
from publisher.errors import ContentError, PublisherError
from publisher.site import Site


def write(site: Site, name: str, text: str) -> Path:
    path = site.content_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_site_groups_translations(site: Site) -> None:
    library = load_library(site)
    story = library.story("2024-unpsf-incheon")
    assert set(story.versions) == {"en", "ko"}
    en, ko = story.get("en"), story.get("ko")
    assert story.original is en
    assert ko.translation.status == "human" and ko.translation.source_lang == "en"
    assert en.theme == ko.theme == "Capacity Development"
    assert en.url == "http://localhost:8000/en/2024-unpsf-incheon/"
    assert ko.url == "http://localhost:8000/ko/2024-unpsf-incheon/"
    assert en.date.tzinfo is not None and en.date.utcoffset() == timedelta(hours=9)  # Asia/Seoul default
    assert en.image is not None and en.image.alt
    assert story.alternates(en) == [ko]
    # a story written originally in Korean
    workshop = library.story("2024-digital-government-workshop")
    assert workshop.original.lang == "ko"
    assert [a.date for a in library.articles()] == sorted((a.date for a in library.articles()), reverse=True)


def test_body_html_is_sanitized(site: Site) -> None:
    path = write(site, "hostile.en.md", "---\ntitle: x\ndate: 2024-01-01\n---\n\nHi <script>alert(1)</script>"
                 "<img src=x onerror=alert(1)> [link](javascript:alert(1)) [ok](https://unpog.org)\n")
    html = load_article(path, site).body_html
    assert "<script" not in html and "onerror" not in html and "href=\"javascript" not in html
    assert '<a href="https://unpog.org"' in html


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.en.md", "---\ndate: 2024-01-01\n---\nbody", "a.en.md: title: is required"),
        ("a.en.md", "---\ntitle: x\n---\nbody", "a.en.md: date: is required"),
        ("a.en.md", "---\ntitle: [unclosed\ndate: 2024-01-01\n---\nbody", "a.en.md: invalid YAML front matter"),
        ("a.fr.md", "---\ntitle: x\ndate: 2024-01-01\n---\nbody", "a.fr.md: lang: unknown language 'fr'"),
        ("a.en.md", "---\ntitle: x\ndate: 2024-01-01\nlang: ko\n---\nbody", "a.en.md: lang: says 'ko'"),
        ("a.en.md", "---\ntitle: x\ndate: someday\n---\nbody", "a.en.md: date: expected a date"),
        ("a.en.md", "---\ntitle: x\ndate: 2024-13-45\n---\nbody", "a.en.md: date: month must be in 1..12"),
        ("a.en.md", "---\ntitle: x\ndate: 2024-01-01\nupdated: 2024-02-30 10:00:00\n---\nbody",
         "a.en.md: updated: day is out of range for month"),
        ("a.en.md", "---\ntitle: x\ndate: 2024-01-01\nimage: {src: a.png}\n---\nbody", "a.en.md: image.alt: is required"),
        ("a.en.md", "---\ntitle: x\ndate: 2024-01-01\ntranslation: {status: robot}\n---\n",
         "a.en.md: translation.status: unknown status 'robot'"),
        ("a.en.md", "title: x\n", "a.en.md: no front matter"),
        ("notes.md", "---\ntitle: x\ndate: 2024-01-01\n---\n", "notes.md: expected a file name like"),
    ],
)
def test_bad_articles_name_the_file_and_field(site: Site, name: str, text: str, expected: str) -> None:
    path = write(site, name, text)
    with pytest.raises(ContentError) as info:
        load_article(path, site)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_duplicate_slug_in_one_language_is_refused(site: Site) -> None:
    (site.content_dir / "other").mkdir()
    write(site, "other/copy.en.md", "---\ntitle: x\ndate: 2024-01-01\nslug: 2024-unpsf-incheon\n---\nbody")
    with pytest.raises(ContentError, match="duplicate slug '2024-unpsf-incheon' in 'en'"):
        load_library(site)


def test_naive_and_aware_dates(site: Site) -> None:
    path = write(site, "d.en.md", "---\ntitle: x\ndate: 2024-06-28 09:30\nupdated: '2024-06-29T10:00:00+00:00'\n---\n")
    article = load_article(path, site)
    assert article.date == datetime.fromisoformat("2024-06-28T09:30:00+09:00")
    assert article.updated == datetime.fromisoformat("2024-06-29T10:00:00+00:00")


def test_dump_and_load_round_trip(site: Site) -> None:
    original = load_library(site).story("2024-unpsf-incheon").get("ko")
    path = site.content_dir / "copy.ko.md"
    write_article(original.with_changes(slug="copy", path=path), path)
    again = load_article(path, site)
    for field in ("title", "summary", "date", "theme", "tags", "image", "translation", "author"):
        assert getattr(again, field) == getattr(original, field), field
    assert again.body.strip() == original.body.strip()
    assert dump_article(again) == dump_article(original.with_changes(slug="copy"))


def test_write_refuses_to_overwrite_without_force(site: Site) -> None:
    article = load_library(site).story("2024-unpsf-incheon").get("en")
    with pytest.raises(PublisherError, match="already exists"):
        write_article(article, article.path)
    before = article.path.read_text(encoding="utf-8")
    write_article(article, article.path, force=True)
    assert load_article(article.path, site).title == article.title
    assert not [p for p in site.content_dir.iterdir() if p.name.endswith(".tmp")]
    first = article.path.read_text(encoding="utf-8")
    assert first != before  # normalized on write (quoting, ISO dates)...
    write_article(load_article(article.path, site), article.path, force=True)
    assert article.path.read_text(encoding="utf-8") == first  # ...and stable from then on


def test_media_helpers_give_the_address_and_file_the_feeds_publish(site: Site) -> None:
    from publisher.formatters.feeds import image_enclosure

    article = site.articles().story("2024-unpsf-incheon").get("en")
    assert article.image is not None
    enclosure = image_enclosure(article, site)
    assert site.media_url(article.image.src) == enclosure.url
    assert site.media_path(article.image.src) == site.content_dir / article.image.src
    assert site.media_url("https://unpog.org/a.png") == "https://unpog.org/a.png"
    assert site.media_path("https://unpog.org/a.png") is None and site.media_path("images/missing.png") is None
    with pytest.raises(ValueError, match="must stay inside the site folder"):
        site.media_path("../secret_key")
