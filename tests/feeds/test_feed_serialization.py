"""The RSS and Atom files are written as text (publisher.formatters.feeds): what lxml would write for the same tree.

Earlier builds made them with feedgen and lxml (pretty-printed); the text writer keeps those bytes, so an unchanged
feed is not rewritten. Checked here: the escaping matches lxml's for any string, and every document the sample
site builds, hostile fields included, is what lxml writes when it parses it (without the whitespace between
elements) and serializes it pretty-printed: the same escaping, the same indentation.
"""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import feedparser
import pytest
from lxml import etree

from publisher.formatters.feeds import rfc822, xml_attr, xml_text
from publisher.site import Site

TRICKY = [
    "", "plain", "Tom & Jerry", "<b>bold</b>", 'say "hi"', "it's", "a\rb", "a\r\nb", "tab\there", "new\nline",
    "]]>", "&amp; already", "한국어 (UNPOG)는", "emoji \U0001F600", "\u2028 line separator", "x" * 300 + "&<>",
    "&" * 250, "a > b", "\t\n\r\"&<>'",
]


@pytest.mark.parametrize("value", TRICKY)
def test_escaping_is_what_lxml_writes(value: str) -> None:
    element = etree.Element("e", a=value)
    element.text = value
    assert etree.tostring(element, encoding="unicode") == f'<e a="{xml_attr(value)}">{xml_text(value)}</e>'


def test_rss_dates_are_english_rfc_822_whatever_the_locale() -> None:
    for moment in (datetime(2020, 6, 22, 22, 0, tzinfo=timezone(timedelta(hours=9))),
                   datetime(2024, 12, 1, 0, 5, 9, tzinfo=timezone.utc),
                   datetime(1999, 2, 28, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))):
        assert rfc822(moment) == email.utils.format_datetime(moment)


def test_every_document_is_what_lxml_would_write(site: Site, cli, write_article) -> None:
    title = 'Tom & Jerry <b>"quoted"</b> \'x\' ]]> \r\n tab\t end'   # a carriage return survives as &#13;
    write_article("hostile", "en", body='Body & <em>more</em>\n\n<p title="a\tb">x</p>\n', title=title,
                  date="2030-01-01T09:00:00+09:00", summary="Sum & *mary*", author='A & B "C" <d>',
                  tags=["a&b \"<c>\"", "tab\tnl"],
                  image={"src": "https://cdn.example.org/x?a=1&b=<2>.jpg", "alt": 'alt "&<>'})
    write_article("bare", "en", body="Just a body.\n", title="Bare", date="2030-01-02T09:00:00+09:00")
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 0, result.output
    documents = sorted([*site.public_dir.glob("*/*.xml"), *site.public_dir.glob("*/themes/*/*.xml")])
    assert len(documents) >= 12
    for path in documents:
        raw = path.read_bytes()
        # Without the whitespace between elements, lxml indents the tree itself: the same bytes means the same
        # escaping and the same layout as the documents it wrote.
        tree = etree.fromstring(raw, etree.XMLParser(remove_blank_text=True))
        again = etree.tostring(etree.ElementTree(tree), pretty_print=True, encoding="UTF-8", xml_declaration=True)
        assert again == raw, path
        assert not feedparser.parse(raw).bozo, path
    atom = feedparser.parse((site.public_dir / "en" / "atom.xml").read_bytes())
    bare = next(entry for entry in atom.entries if entry.title == "Bare")
    assert "author" not in bare and "tags" not in bare   # no author, no theme, no tags: none written
    hostile = next(entry for entry in atom.entries if entry.title.startswith("Tom"))
    assert hostile.title == title
    assert [tag.term for tag in hostile.tags] == ["a&b \"<c>\"", "tab\tnl"]
    assert hostile.enclosures[0].href == "https://cdn.example.org/x?a=1&b=<2>.jpg"
