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
