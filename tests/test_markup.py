"""Markdown to sanitized HTML, and HTML to the plain text of an email part."""

from __future__ import annotations

from publisher.markup import html_to_text, markdown_to_html


def test_plain_text_keeps_lists_tight_and_link_addresses_on_request() -> None:
    html = markdown_to_html("Intro *x*.\n\n- one\n- two\n\nSee [the site](https://unpog.org) and <https://y.org>.")
    assert html_to_text(html) == "Intro x.\n\n- one\n- two\n\nSee the site and https://y.org."
    assert html_to_text(html, link_urls=True) == (
        "Intro x.\n\n- one\n- two\n\nSee the site (https://unpog.org) and https://y.org.")


def test_hostile_markup_is_removed_but_text_kept() -> None:
    html = markdown_to_html('<p onclick="x()">Hi <iframe src="https://evil"></iframe><style>p{}</style>'
                            '<a href="vbscript:x">there</a> &amp; you</p>')
    assert "onclick" not in html and "<iframe" not in html and "<style" not in html and "vbscript" not in html
    assert html_to_text(html) == "Hi there & you"
