"""Issue 11, content: addresses, images, symlinks, field types and hidden characters are checked when an article
is loaded, so a bad one stops ``publish`` before any channel writes anything."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from publisher.article import load_article
from publisher.errors import ContentError
from publisher.site import Site

ARTICLE = "---\ntitle: Hostile\ndate: 2030-01-01T09:00:00+09:00\nsummary: A summary.\n{extra}---\n\nBody text.\n"


def write(site: Site, extra: str, name: str = "hostile.en.md") -> Path:
    path = site.content_dir / name
    path.write_text(ARTICLE.format(extra=extra), encoding="utf-8")
    return path


def refused(site: Site, extra: str) -> ContentError:
    path = write(site, extra)
    with pytest.raises(ContentError) as info:
        load_article(path, site)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}: ")
    return info.value


def nothing_written(site: Site) -> None:
    assert not site.public_dir.exists() and not site.outbox_dir.exists()
    assert not list(site.ledger().rows())


def one_error_line(result: Result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.output


# --- item 1: url and every other address --------------------------------------------------------------


BAD_URLS = [
    "javascript:alert(1)", "JavaScript:alert(1)", "  javascript:alert(1)", "java\tscript:alert(1)",
    "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/passwd", "mailto:a@example.org",
    "ftp://example.org/a", "//evil.example/x", "/\\evil.example/x", "\\\\evil.example\\x", "http://", "https:///x",
    "https://exa mple.org/", "https://example.org:port/", "https://example.org/\u202egnp.exe", "news/relative",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_url_that_is_not_http_or_a_site_path_is_refused_naming_file_and_field(site: Site, url: str) -> None:
    error = refused(site, f"url: {json.dumps(url)}\n")
    assert error.field == "url"


@pytest.mark.parametrize("src", [
    "javascript:alert(1)", "data:image/png;base64,iVBORw0KGgo=", "file:///etc/passwd", "//cdn.example/a.png",
    "ftp://example.org/a.png", "http://", "https://exa mple.org/a.png", "C:\\images\\a.png", "vbscript:x.png",
])
def test_an_image_address_that_is_not_http_or_a_site_file_is_refused(site: Site, src: str) -> None:
    error = refused(site, f"image:\n  src: {json.dumps(src)}\n  alt: A picture\n")
    assert error.field == "image.src"


def test_an_http_url_is_kept_and_a_site_path_is_made_absolute(site: Site) -> None:
    kept = load_article(write(site, "url: https://www.unpog.org/news/1?x=2#top\n"), site)
    assert kept.url == "https://www.unpog.org/news/1?x=2#top"
    on_site = load_article(write(site, "url: /en/special/\n"), site)
    assert on_site.url == "http://localhost:8000/en/special/"
    default = load_article(write(site, ""), site)
    assert default.url == "http://localhost:8000/en/hostile/"
    remote = load_article(write(site, "image:\n  src: https://example.org/photos/a.jpg\n  alt: A photo\n"), site)
    assert remote.image is not None and remote.image.src == "https://example.org/photos/a.jpg"


def test_a_javascript_url_stops_publish_before_any_mail_feed_page_or_post_is_written(
        cli: Callable[..., Result], site: Site, site_dir: Path) -> None:
    assert cli("subscribers", "import", str(site_dir / "subscribers.csv")).exit_code == 0
    path = write(site, 'url: "javascript:alert(document.cookie)"\n')
    result = cli("publish", str(path))
    one_error_line(result, f"{path}: url: expected an http:// or https:// URL")
    nothing_written(site)
    assert cli("feeds", "build", "--all").exit_code == 2
    assert not site.public_dir.exists()


def _outputs(site: Site) -> Iterator[tuple[Path, str]]:
    for folder in (site.public_dir, site.outbox_dir):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix not in (".png", ".jpg", ".db"):
                yield path, path.read_text(encoding="utf-8", errors="replace")
    for message in mailbox.Maildir(site.outbox_dir / "mail", create=False):
        for part in message.walk():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                yield Path("mail"), payload.decode("utf-8", errors="replace")


def test_a_site_path_url_reaches_mail_feeds_pages_and_posts_as_an_absolute_http_address(
        cli: Callable[..., Result], site: Site, site_dir: Path) -> None:
    import feedparser

    assert cli("subscribers", "import", str(site_dir / "subscribers.csv")).exit_code == 0
    path = write(site, "url: /en/special-page/\n")
    result = cli("publish", str(path))
    assert result.exit_code == 0, result.output
    absolute = "http://localhost:8000/en/special-page/"
    mail = [text for where, text in _outputs(site) if where == Path("mail") and "Hostile" in text]
    assert mail and all(f'href="{absolute}"' in text for text in mail if "<html" in text)
    rss = feedparser.parse((site.public_dir / "en" / "rss.xml").read_bytes())
    assert [e.link for e in rss.entries if e.title == "Hostile"] == [absolute]
    items = json.loads((site.public_dir / "en" / "feed.json").read_text(encoding="utf-8"))["items"]
    assert [i["url"] for i in items if i["title"] == "Hostile"] == [absolute]
    page = (site.public_dir / "en" / "hostile" / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{absolute}"' in page
    posts = [json.loads(p.read_text(encoding="utf-8")) for p in site.outbox_dir.glob("*/*.json")]
    assert posts and all(absolute in json.dumps(post) for post in posts if post.get("article") == "hostile")
    for where, text in _outputs(site):
        for scheme in ("javascript:", "vbscript:", "data:text", 'href="//', "href='//"):
            assert scheme not in text.lower(), (where, scheme)


# --- item 2: symlinks ---------------------------------------------------------------------------------


@pytest.fixture
def outside(site: Site) -> Path:
    """A private file outside the site folder, named like an image."""
    secret = site.root.parent / "private" / "passwd.png"
    secret.parent.mkdir()
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    return secret


def test_a_symlink_to_a_file_outside_the_site_is_refused(site: Site, outside: Path) -> None:
    (site.content_dir / "images" / "passwd.png").symlink_to(outside)
    (site.content_dir / "images" / "etc-passwd.png").symlink_to("/etc/passwd")
    (site.content_dir / "linked").symlink_to(outside.parent, target_is_directory=True)
    for src in ("images/passwd.png", "images/etc-passwd.png", "linked/passwd.png", "/images/passwd.png"):
        with pytest.raises(ValueError, match="must stay inside the site folder"):
            site.media_path(src)
        error = refused(site, f"image:\n  src: {src}\n  alt: x\n")
        assert error.field == "image.src" and "it links to, is outside" in error.message


def test_a_symlinked_image_is_never_copied_enclosed_uploaded_or_served(
        cli: Callable[..., Result], site: Site, outside: Path) -> None:
    (site.content_dir / "images" / "passwd.png").symlink_to(outside)
    path = write(site, "image:\n  src: images/passwd.png\n  alt: x\n")
    result = cli("publish", str(path))
    one_error_line(result, f"{path}: image.src: must stay inside the site folder")
    nothing_written(site)
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 2
    assert not site.public_dir.exists()
    # nor through a link planted in public/, which the feeds would use in place
    planted = site.public_dir / "images" / "passwd.png"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(outside)
    with pytest.raises(ValueError, match="must stay inside the site folder"):
        site.media_path("images/passwd.png")
    # and `publisher serve` does not follow it (Starlette's StaticFiles without follow_symlink)
    from tests.web.conftest import make_client

    (site.public_dir / "images" / "real.png").write_bytes(b"\x89PNG")
    with make_client(site) as client:
        assert client.get("/images/real.png").status_code == 200
        answer = client.get("/images/passwd.png")
        assert answer.status_code == 404 and b"root:" not in answer.content


def test_secrets_and_state_inside_the_site_are_never_media(site: Site) -> None:
    site.secret_key   # writes .publisher/secret_key
    (site.root / ".env").write_text("SMTP_PASSWORD=secret\n", encoding="utf-8")
    (site.outbox_dir / "mail").mkdir(parents=True)
    (site.outbox_dir / "mail" / "a.png").write_bytes(b"mail to a subscriber")
    (site.content_dir / "images" / "key.png").symlink_to(site.state_dir / "secret_key")
    (site.content_dir / "images" / "env.png").symlink_to(site.root / ".env")
    (site.content_dir / "images" / "toml.png").symlink_to(site.root / "publisher.toml")
    for src, reason in ((".env", "hidden"), (".publisher/secret_key", "hidden"), ("publisher.toml", "not an image"),
                        ("outbox/mail/a.png", "private"), ("images/key.png", "private"),
                        ("images/env.png", "hidden"), ("images/toml.png", "not an image")):
        with pytest.raises(ValueError, match=reason):
            site.media_path(src)
        assert refused(site, f"image:\n  src: {src}\n  alt: x\n").field == "image.src"


def test_a_symlink_that_stays_inside_the_site_is_still_an_image(site: Site) -> None:
    (site.root / "media").mkdir()
    real = site.root / "media" / "photo.png"
    real.write_bytes(b"\x89PNG")
    (site.content_dir / "images" / "photo.png").symlink_to(real)
    assert site.media_path("images/photo.png") == site.content_dir / "images" / "photo.png"
    article = load_article(write(site, "image:\n  src: images/photo.png\n  alt: A photo\n"), site)
    assert article.image is not None and article.image.src == "images/photo.png"


# --- item 7 (content): a bad image stops the run when the article is loaded ---------------------------------


@pytest.mark.parametrize(("src", "expected"), [
    ("../x.png", "image.src: must stay inside the site folder: ../x.png"),
    ("images/../../x.png", "image.src: must stay inside the site folder"),
    ("{outside}", "image.src: file not found: {outside}"),
    ("/etc/passwd", "image.src: not an image file"),
    ("images/missing.png", "image.src: file not found: images/missing.png"),
    (5, "image.src: expected a file path or an http(s) URL, got a number"),
    ("[images/a.png]", "image.src: expected a file path or an http(s) URL, got a list"),
])
def test_a_bad_image_fails_publish_at_load_with_one_line_and_nothing_written(
        cli: Callable[..., Result], site: Site, outside: Path, src: Any, expected: str) -> None:
    src = src.format(outside=outside) if isinstance(src, str) else src
    expected = expected.format(outside=outside)
    path = write(site, f"image:\n  src: {src}\n  alt: x\n")
    assert refused(site, f"image:\n  src: {src}\n  alt: x\n").field == "image.src"
    result = cli("publish", str(path))
    one_error_line(result, f"{path}: {expected}")
    nothing_written(site)


# --- item 8: every front-matter field has a type ------------------------------------------------------------


@pytest.mark.parametrize(("extra", "field", "expected"), [
    ("image:\n  src: images/unpsf-2024.png\n  alt: {a: 1}\n", "image.alt", "expected text, got a mapping"),
    ("image:\n  src: images/unpsf-2024.png\n  alt: [a]\n", "image.alt", "expected text, got a list"),
    ("image:\n  src: images/unpsf-2024.png\n  alt: true\n", "image.alt", "expected text, got true"),
    ("summary: [a, b]\n", "summary", "expected text, got a list"),
    ("author: {name: Kim}\n", "author", "expected text, got a mapping"),
    ("theme: true\n", "theme", "expected text, got true"),
    ("tags: 5\n", "tags", "expected a list of words, got a number"),
    ("tags: true\n", "tags", "expected a list of words, got true"),
    ("tags: [true, 'a']\n", "tags", "expected a list of words"),
    ("tags: [[a]]\n", "tags", "expected a list of words"),
    ("tags: {a: 1}\n", "tags", "expected a list of words, got a mapping"),
    ("updated: [1]\n", "updated", "expected a date, got [1]"),
    ("updated: false\n", "updated", "expected a date, got False"),
    ("image: 3\n", "image", "expected {src: ..., alt: ...}, got a number"),
    ("image: [a.png]\n", "image", "expected {src: ..., alt: ...}, got a list"),
    ("image: true\n", "image", "expected {src: ..., alt: ...}, got true"),
    ("image:\n  src: {a: 1}\n  alt: x\n", "image.src", "expected a file path or an http(s) URL, got a mapping"),
    ("translation: 5\n", "translation", "expected {status: ..., source: ...}, got a number"),
    ("translation: [machine]\n", "translation", "expected {status: ..., source: ...}, got a list"),
    ("translation: x\n", "translation.status", "unknown status 'x'"),
    ("translation: {status: [machine]}\n", "translation.status", "expected text, got a list"),
    ("translation: {status: human, source: [ko]}\n", "translation.source", "expected text, got a list"),
    ("translation: {status: machine, source: ko, model: {a: 1}}\n", "translation.model",
     "expected text, got a mapping"),
    ("url: 5\n", "url", "expected an http(s) URL, got a number"),
    ("url: [https://unpog.org]\n", "url", "expected an http(s) URL, got a list"),
    ("slug: {a: 1}\n", "slug", "expected text, got a mapping"),
    ("lang: [en]\n", "lang", "expected text, got a list"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_file_and_field(site: Site, extra: str, field: str,
                                                                    expected: str) -> None:
    error = refused(site, extra)
    assert error.field == field and expected in error.message, str(error)


@pytest.mark.parametrize(("front", "field", "expected"), [
    ("title: true\ndate: 2030-01-01\n", "title", "expected text, got true"),
    ("title: {a: 1}\ndate: 2030-01-01\n", "title", "expected text, got a mapping"),
    ("title: [a]\ndate: 2030-01-01\n", "title", "expected text, got a list"),
    ("title: 2030-01-01\ndate: 2030-01-01\n", "title", "expected text, got a date"),
    ("title: x\ndate: [1]\n", "date", "expected a date, got [1]"),
    ("title: x\ndate: true\n", "date", "expected a date, got True"),
    ("title: x\ndate: {a: 1}\n", "date", "expected a date, got {'a': 1}"),
])
def test_a_title_or_date_of_the_wrong_type_is_one_line_and_exit_2(
        cli: Callable[..., Result], site: Site, front: str, field: str, expected: str) -> None:
    path = site.content_dir / "typed.en.md"
    path.write_text(f"---\n{front}---\n\nBody.\n", encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_article(path, site)
    assert info.value.field == field
    one_error_line(cli("publish", str(path)), f"{path}: {field}: {expected}")
    nothing_written(site)


def test_numbers_written_bare_are_still_text(site: Site) -> None:
    article = load_article(site.content_dir / write(site, "author: 2024\ntags: [2024, forum]\n").name, site)
    assert article.author == "2024" and article.tags == ["2024", "forum"]
    path = site.content_dir / "numbers.en.md"
    path.write_text("---\ntitle: 1984\ndate: 2030-01-01\n---\n\nBody.\n", encoding="utf-8")
    assert load_article(path, site).title == "1984"


# --- item 5 (plain-text posts): control and bidi characters never reach a post --------------------------------

HIDDEN = ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
          "\u2067", "\u2068", "\u2069"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_control_and_bidi_characters_in_title_and_summary_never_reach_a_post(
        cli: Callable[..., Result], site: Site) -> None:
    path = site.content_dir / "spoof.en.md"
    path.write_text('---\ntitle: "Safe\\0 \\x01title\\x7f \\u202Eevil\\u202C \\u2066isolated\\u2069 \\e[31m"\n'
                    'date: 2030-01-01\nsummary: "A\\x01 summary \\u202Dwith\\u202C \\x00controls\\x1b."\n'
                    "tags: [forum]\n---\n\nBody.\n", encoding="utf-8")
    article = load_article(path, site)
    assert "\x00" in article.title and "\u202e" in article.title   # the file holds them: the posts must not
    result = cli("publish", str(path), "--channel", "x", "--channel", "mastodon", "--channel", "bluesky",
                 "--channel", "facebook", "--channel", "linkedin")
    assert result.exit_code == 0, result.output
    posts = [json.loads(p.read_text(encoding="utf-8")) for p in site.outbox_dir.glob("*/*.json")]
    assert len(posts) == 5
    for post in posts:
        texts = list(_strings(post))
        joined = "\n".join(texts)
        # (Markdown turns the summary's NUL into U+FFFD, as CommonMark requires, before any post sees it)
        assert "Safe title evil isolated [31m" in joined and "A summary with \ufffdcontrols." in joined, post
        for char in HIDDEN:
            assert char not in joined, (post.get("channel"), repr(char))


def test_the_formatter_keeps_joiners_marks_newlines_and_hangul() -> None:
    from publisher.formatters.social import plain_text, strip_controls

    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    text = f"공공행정 {family}\u200e\tline\nnext\u202e"
    assert strip_controls(text) == f"공공행정 {family}\u200e\tline\nnext"
    assert plain_text("<p>a\x00b \u2067c\u2069</p>") == "ab c"
