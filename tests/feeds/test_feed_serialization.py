"""The RSS and Atom files are what lxml writes (pretty-printed) for the tree feedgen builds, hostile fields included.

feedgen builds each entry once per build and the language and theme feeds share it (``SiteFeeds.feed_entry``);
checked here: every document the sample site builds is what lxml writes when it parses it (without the whitespace
between elements) and serializes it pretty-printed (the same escaping, the same indentation), feedparser reads
it without complaint, and the hostile fields come back as written.
"""

from __future__ import annotations

import feedparser
from lxml import etree

from publisher.site import Site


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


def test_an_entry_shared_by_the_language_and_theme_feeds_writes_what_a_fresh_one_writes(site: Site) -> None:
    from publisher.article import load_library
    from publisher.formatters.feeds import feed_entry, render_rss_and_atom
    from publisher.formatters.site_feeds import SiteFeeds

    feeds = SiteFeeds(site, load_library(site).articles())
    lang = "en"
    theme = sorted(feeds.themes[lang])[0]
    whole, themed = feeds.spec(lang), feeds.spec(lang, theme)
    first = {output.path: output.content for output in feeds.feed_files(whole)}
    again = {output.path: output.content for output in feeds.feed_files(themed)}
    in_theme = feeds.entries(themed)
    assert in_theme and {(a.slug, a.lang) for a in in_theme} <= {(a.slug, a.lang) for a in feeds.entries(whole)}
    # One FeedEntry per version, the same object in both feeds.
    shared = [feeds.feed_entry(feeds.item(article)) for article in in_theme]
    assert all(entry is feeds._entries[(a.slug, a.lang)] for entry, a in zip(shared, in_theme))
    # Written a second time (and for the theme), a shared entry gives the bytes of entries made for that feed.
    for spec, written in ((whole, first), (themed, again)):
        items = [feeds.item(article) for article in feeds.entries(spec)]
        others = {other: feeds.spec(other, spec.theme) for other in feeds.languages
                  if other != lang and (spec.theme is None or spec.theme in feeds.themes[other])}
        rss, atom = render_rss_and_atom(spec, items, others, entries=feed_entry)
        assert (rss, atom) == (written[spec.path("rss")], written[spec.path("atom")])
        assert render_rss_and_atom(spec, items, others, entries=feeds.feed_entry) == (rss, atom)
