"""Builds and publishing: incremental and atomic writes, stable entry ids, the ledger, errors a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser

from publisher.article import load_library
from publisher.delivery import DeliveryKey
from publisher.site import Site
from tests.conftest import set_settings


def snapshot(public: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and modification time: a rewrite (even of equal bytes) changes the inode."""
    return {p.relative_to(public).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in public.rglob("*") if p.is_file()}


def entry_ids(site: Site, lang: str) -> dict[str, dict[str, str]]:
    """Entry id by article URL, per format."""
    public = site.public_dir / lang
    ids = {name: {e.link: e.id for e in feedparser.parse((public / name).read_bytes()).entries}
           for name in ("rss.xml", "atom.xml")}
    ids["feed.json"] = {i["url"]: i["id"] for i in json.loads((public / "feed.json").read_text())["items"]}
    return ids


def test_a_second_build_rewrites_nothing(site: Site, cli) -> None:
    first = cli("feeds", "build", "--all")
    assert first.exit_code == 0, first.output
    before = snapshot(site.public_dir)
    assert {"en/rss.xml", "ko/feed.json", "en/index.html", "feeds.opml", "images/unpsf-2024.png"} <= set(before)
    second = cli("feeds", "build")
    assert second.exit_code == 0, second.output
    assert second.output.startswith("0 files written, ")
    assert snapshot(site.public_dir) == before
    # Atomic writes leave no temporary file behind.
    assert not [p for p in site.public_dir.rglob(".*")]


def test_editing_one_article_rewrites_only_the_files_that_show_it(site: Site, cli) -> None:
    assert cli("feeds", "build", "--all").exit_code == 0
    before = snapshot(site.public_dir)
    path = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Regional Knowledge Forum", "Regional Forum"),
                    encoding="utf-8")
    result = cli("feeds", "build")
    assert result.exit_code == 0, result.output
    after = snapshot(site.public_dir)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"en/rss.xml", "en/atom.xml", "en/feed.json", "en/index.html",
                       "en/themes/knowledge-management/rss.xml", "en/themes/knowledge-management/atom.xml",
                       "en/2024-sdg16-knowledge-forum/index.html"}


def test_entry_ids_never_change_across_edits_rebuilds_and_republishing(site: Site, cli) -> None:
    assert cli("feeds", "build", "--all").exit_code == 0
    original = {lang: entry_ids(site, lang) for lang in ("en", "ko")}
    for ids in original["en"].values():
        assert len(set(ids.values())) == len(ids) == 4
    # Same id for an entry in RSS, Atom and JSON.
    assert original["en"]["rss.xml"] == original["en"]["atom.xml"] == original["en"]["feed.json"]

    # Edit the title, the body, even the publication date, and add an "updated" date.
    path = site.content_dir / "2024-digital-government-workshop.en.md"
    text = path.read_text(encoding="utf-8")
    text = text.replace("date: 2024-09-12T10:00:00+09:00",
                        "date: 2024-09-13T10:00:00+09:00\nupdated: 2024-10-01T09:00:00+09:00")
    text = text.replace('title: "', 'title: "Corrected: ', 1) + "\nA correction.\n"
    path.write_text(text, encoding="utf-8")
    rebuilt = cli("feeds", "build")
    assert rebuilt.exit_code == 0, rebuilt.output
    # Re-publish it through the pipeline, and move the site to another address.
    site = set_settings(site, PUBLISHER_SITE_URL="https://www.unpog.org")
    result = cli("publish", str(path), "--channel", "feeds")
    assert result.exit_code == 0, result.output
    assert cli("feeds", "build").exit_code == 0
    for lang in ("en", "ko"):
        now = entry_ids(site, lang)
        for name in ("rss.xml", "atom.xml", "feed.json"):
            assert sorted(now[name].values()) == sorted(original[lang][name].values()), (lang, name)
    edited = next(e for e in feedparser.parse((site.public_dir / "en/atom.xml").read_bytes()).entries
                  if "digital-government-workshop" in e.link)
    assert edited.title.startswith("Corrected: ") and edited.updated.startswith("2024-10-01")
    assert edited.id == original["en"]["atom.xml"]["http://localhost:8000/en/2024-digital-government-workshop/"]


def test_publishing_an_article_adds_it_to_its_language_and_theme_feeds(site: Site, cli) -> None:
    forum = site.content_dir / "2024-sdg16-knowledge-forum.en.md"   # English only, Knowledge Management
    result = cli("publish", str(forum), "--channel", "feeds")
    assert result.exit_code == 0, result.output
    public = site.public_dir
    en = feedparser.parse((public / "en/rss.xml").read_bytes())
    assert [e.link for e in en.entries] == ["http://localhost:8000/en/2024-sdg16-knowledge-forum/"]
    theme = feedparser.parse((public / "en/themes/knowledge-management/atom.xml").read_bytes())
    assert len(theme.entries) == 1
    assert not (public / "ko/rss.xml").exists()   # nothing was published in Korean
    ledger = site.ledger()
    rows = list(ledger.rows(channel="feeds"))
    assert sorted(r.key.target for r in rows) == sorted([
        "en/rss.xml", "en/atom.xml", "en/feed.json",
        "en/themes/knowledge-management/rss.xml", "en/themes/knowledge-management/atom.xml"])
    assert {r.state for r in rows} == {"sent"}
    assert {r.detail["guid"] for r in rows} == {en.entries[0].id}

    # A second story in both languages joins the first; unpublished articles stay out.
    workshop = site.content_dir / "2024-digital-government-workshop.en.md"
    assert cli("publish", str(workshop), "--channel", "feeds").exit_code == 0
    en = feedparser.parse((public / "en/rss.xml").read_bytes())
    assert [e.link.rsplit("/", 2)[-2] for e in en.entries] == ["2024-sdg16-knowledge-forum",
                                                               "2024-digital-government-workshop"]
    ko = feedparser.parse((public / "ko/atom.xml").read_bytes())
    assert [e.link for e in ko.entries] == ["http://localhost:8000/ko/2024-digital-government-workshop/"]
    assert {l.get("hreflang"): l.href for l in ko.entries[0].links if l.rel == "alternate"}["en"] == \
        "http://localhost:8000/en/2024-digital-government-workshop/"
    key = DeliveryKey("2024-digital-government-workshop", "ko", "feeds", "ko/themes/digital-government/rss.xml")
    assert ledger.get(key).state == "sent"

    # Publishing again refreshes in place: still one entry per article.
    again = cli("publish", str(workshop), "--channel", "feeds")
    assert again.exit_code == 0, again.output
    row = ledger.get(DeliveryKey("2024-digital-government-workshop", "en", "feeds", "en/rss.xml"))
    assert (row.state, row.attempts) == ("sent", 2)
    assert len(feedparser.parse((public / "en/rss.xml").read_bytes()).entries) == 2


def test_dry_run_writes_nothing(site: Site, cli) -> None:
    forum = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    result = cli("publish", str(forum), "--channel", "feeds", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "rss.xml" in result.output
    assert not site.public_dir.exists()
    assert not list(site.ledger().rows(channel="feeds"))


def test_machine_translations_carry_the_notice_and_follow_the_publishing_rule(
    site: Site, cli, write_article
) -> None:
    write_article("2024-sdg16-knowledge-forum", "ko", body="지속가능발전목표 16에 관한 포럼.\n",
                  title="SDG 16 지식 포럼", date="2024-11-05T14:00:00+09:00", theme="Knowledge Management",
                  translation={"status": "machine", "source": "en", "model": "argos en->ko"})
    assert cli("feeds", "build", "--all").exit_code == 0
    slugs = [e.link for e in feedparser.parse((site.public_dir / "ko/rss.xml").read_bytes()).entries]
    assert not [s for s in slugs if "sdg16" in s]   # machine translations are off by default

    site = set_settings(site, PUBLISHER_ALLOW_MACHINE_TRANSLATION="true")
    assert cli("feeds", "build", "--all").exit_code == 0
    from publisher.i18n import machine_notice

    article = next(a for a in load_library(site).articles("ko") if a.slug == "2024-sdg16-knowledge-forum")
    notice = machine_notice(article, site)
    assert notice and "기계 번역" in notice
    for name in ("rss.xml", "atom.xml"):
        entry = next(e for e in feedparser.parse((site.public_dir / "ko" / name).read_bytes()).entries
                     if "sdg16" in e.link)
        assert entry.content[0].value.startswith(f"<p><em>{notice}</em></p>")
    item = next(i for i in json.loads((site.public_dir / "ko/feed.json").read_text())["items"] if "sdg16" in i["url"])
    assert notice in item["content_html"] and item["_publisher"]["machine_translation"] is True
    page = (site.public_dir / "ko/2024-sdg16-knowledge-forum/index.html").read_text(encoding="utf-8")
    assert notice in page
    # Turning the rule off again takes the translation out at the next build.
    site = set_settings(site, PUBLISHER_ALLOW_MACHINE_TRANSLATION="false")
    result = cli("feeds", "build")
    assert result.exit_code == 0, result.output
    assert "sdg16" not in (site.public_dir / "ko/rss.xml").read_text(encoding="utf-8")


def test_a_missing_image_is_one_line_naming_file_and_field_and_nothing_is_written(
    site: Site, cli, write_article
) -> None:
    path = write_article("broken", "en", title="Broken", date="2030-01-01T09:00:00+09:00",
                         image={"src": "images/missing.png", "alt": "Nothing"})
    line = (f"Error: {path}: image.src: file not found: images/missing.png (looked next to the article, in "
            "content/, the site folder and public/)")
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [line]
    assert "Traceback" not in result.output
    assert not site.public_dir.exists()
    assert not list(site.ledger().rows(channel="feeds"))   # stopped before anything was recorded

    # Through publish: refused when the article is loaded, before any channel claims or writes anything.
    result = cli("publish", str(path), "--channel", "feeds")
    assert result.exit_code == 2 and result.output.strip().splitlines() == [line]
    assert not list(site.ledger().rows(article="broken"))
    assert not site.public_dir.exists()


def test_an_image_path_outside_the_site_is_refused(site: Site, cli, write_article) -> None:
    path = write_article("escape", "en", title="Escape", date="2030-01-01T09:00:00+09:00",
                         image={"src": "../../etc/passwd", "alt": "x"})
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {path}: image.src: must stay inside the site folder: ../../etc/passwd"


def test_a_bad_feed_setting_is_one_line(site: Site, cli) -> None:
    site = set_settings(site, FEED_MAX_ITEMS="zero")
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: FEED_MAX_ITEMS (from publisher.toml): expected a whole number, got 'zero'"
    assert not site.public_dir.exists()


def test_feeds_list_prints_every_feed_address(site: Site, cli) -> None:
    assert cli("feeds", "build", "--all").exit_code == 0
    result = cli("feeds", "list")
    assert result.exit_code == 0, result.output
    urls = {line.split("\t")[2] for line in result.output.splitlines()}
    built = {f"http://localhost:8000/{p.relative_to(site.public_dir).as_posix()}"
             for p in site.public_dir.rglob("*") if p.name in ("rss.xml", "atom.xml", "feed.json")}
    assert urls == built | {"http://localhost:8000/feeds.opml"}


def test_rendered_bodies_are_cached_between_builds_and_a_broken_cache_is_rebuilt(site: Site, cli) -> None:
    import sqlite3

    def cached_bodies() -> list[str]:
        with sqlite3.connect(site.state_dir / "cache" / "feed-bodies.sqlite") as db:
            return [row[0] for row in db.execute("SELECT html FROM bodies")]

    assert cli("feeds", "build", "--all").exit_code == 0
    workshop = next(a for a in load_library(site).articles("en") if a.slug == "2024-digital-government-workshop")
    assert workshop.body_html in cached_bodies()

    # An edited body is rendered again; after the full build the old rendering is dropped.
    path = workshop.path
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more paragraph.\n", encoding="utf-8")
    assert cli("feeds", "build").exit_code == 0
    assert workshop.body_html not in cached_bodies()
    assert any("One more paragraph." in html for html in cached_bodies())
    page = (site.public_dir / "en" / workshop.slug / "index.html").read_text(encoding="utf-8")
    assert "<p>One more paragraph.</p>" in page

    # A damaged cache is not an error: it is rebuilt, and the output is the same.
    before = (site.public_dir / "en" / "atom.xml").read_bytes()
    (site.state_dir / "cache" / "feed-bodies.sqlite").write_bytes(b"not a database" * 100)
    result = cli("feeds", "build")
    assert result.exit_code == 0, result.output
    assert (site.public_dir / "en" / "atom.xml").read_bytes() == before
    assert cached_bodies()

def test_preview_shows_the_feeds_with_the_article_and_publishes_nothing(site: Site, cli, tmp_path: Path) -> None:
    article = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    out = tmp_path / "preview"
    result = cli("preview", str(article), "--out", str(out), "--channel", "feeds")
    assert result.exit_code == 0, result.output
    folder = out / "2024-sdg16-knowledge-forum" / "en" / "feeds"
    names = sorted(p.name for p in folder.iterdir())
    assert {"en-rss.xml", "en-atom.xml", "en-feed.json", "en-index.html",
            "en-themes-knowledge-management-rss.xml", "en-2024-sdg16-knowledge-forum-index.html"} <= set(names)
    parsed = feedparser.parse((folder / "en-rss.xml").read_bytes())
    assert [e.link for e in parsed.entries] == ["http://localhost:8000/en/2024-sdg16-knowledge-forum/"]
    assert not site.public_dir.exists()
    assert not list(site.ledger().rows(channel="feeds"))


def test_a_full_build_removes_only_its_own_stale_files(site: Site, cli) -> None:
    assert cli("feeds", "build", "--all").exit_code == 0
    public = site.public_dir
    mine = public / "en" / "notes.txt"          # someone else's file under public/
    mine.write_text("keep me", encoding="utf-8")
    # The only English article on Knowledge Management is deleted.
    (site.content_dir / "2024-sdg16-knowledge-forum.en.md").unlink()
    result = cli("feeds", "build")
    assert result.exit_code == 0, result.output
    assert "removed en/2024-sdg16-knowledge-forum/index.html" in result.output
    assert not (public / "en" / "2024-sdg16-knowledge-forum").exists()
    assert not (public / "en" / "themes" / "knowledge-management").exists()
    assert "sdg16" not in (public / "en" / "rss.xml").read_text(encoding="utf-8")
    assert mine.read_text(encoding="utf-8") == "keep me"
    assert (public / "en" / "themes" / "digital-government" / "rss.xml").is_file()


def test_an_image_already_under_public_is_used_in_place(site: Site, cli, write_article) -> None:
    image = site.public_dir / "media" / "photo.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8\xff" + b"0" * 997)
    write_article("in-place", "en", title="In place", date="2030-01-01T09:00:00+09:00",
                  image={"src": "/media/photo.jpg", "alt": "A photo"})
    for _ in range(2):   # the second, full build must not take the file for a stale one of its own
        result = cli("feeds", "build", "--all")
        assert result.exit_code == 0, result.output
    entry = feedparser.parse((site.public_dir / "en" / "rss.xml").read_bytes()).entries[0]
    assert [(e.href, e.length, e.type) for e in entry.enclosures] == [
        ("http://localhost:8000/media/photo.jpg", "1000", "image/jpeg")]
    assert image.read_bytes()[:3] == b"\xff\xd8\xff"


def test_publishes_running_at_once_all_end_up_in_the_feed(site: Site, write_article) -> None:
    import threading

    from publisher.pipeline import publish

    paths = [write_article(f"parallel-{n}", "en", title=f"Parallel {n}", date=f"2030-01-0{n + 1}T09:00:00+09:00")
             for n in range(4)]
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        own = Site(site.root)   # one site (and database connection) per thread, as separate processes would
        try:
            reports = publish(own, [path], channels=["feeds"], langs=["en"])
            assert {r.state for r in reports} == {"sent"}
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    entries = feedparser.parse((site.public_dir / "en" / "atom.xml").read_bytes()).entries
    assert [e.title for e in entries] == ["Parallel 3", "Parallel 2", "Parallel 1", "Parallel 0"]


def test_publishing_every_article_at_once_fills_every_feed(site: Site, cli) -> None:
    result = cli("publish", "--channel", "feeds")
    assert result.exit_code == 0, result.output
    library = load_library(site)
    for lang in ("en", "ko"):
        entries = feedparser.parse((site.public_dir / lang / "atom.xml").read_bytes()).entries
        assert [e.link for e in entries] == [a.url for a in library.articles(lang)]


def test_one_channel_publishing_several_stories_sees_edits_made_in_between(site: Site) -> None:
    from publisher import pipeline
    from publisher.article import load_stories
    from publisher.channels.feeds import FeedsChannel

    channel = FeedsChannel(site)
    forum = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    day = site.content_dir / "2025-public-service-day.en.md"
    for path in (forum, day):
        story = load_stories([path], site)[0]
        pipeline.deliver(site, channel, [(story, ["en"])], pipeline.RunOptions())
        # Between two publishes, someone corrects the first article.
        forum.write_text(forum.read_text(encoding="utf-8").replace("Regional Knowledge Forum", "Regional Forum"),
                         encoding="utf-8")
    titles = [e.title for e in feedparser.parse((site.public_dir / "en/rss.xml").read_bytes()).entries]
    assert len(titles) == 2 and titles[1].startswith("Regional Forum")


def test_a_failed_republish_keeps_the_entry_id_handed_out_first(site: Site, write_article) -> None:
    from publisher import pipeline
    from publisher.article import Story, load_stories
    from publisher.channels.feeds import FeedsChannel

    image = site.root / "images" / "kept.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"\x89PNG" + b"0" * 60)
    path = write_article("kept", "en", title="Kept", date="2030-01-01T09:00:00+09:00",
                         image={"src": "images/kept.png", "alt": "A picture"})

    def publish_it(story: Story | None = None) -> list[str]:
        story = story or load_stories([path], site)[0]
        return [r.state for r in pipeline.deliver(site, FeedsChannel(site), [(story, ["en"])], pipeline.RunOptions())]

    assert set(publish_it()) == {"sent"}
    key = DeliveryKey("kept", "en", "feeds", "en/rss.xml")
    guid = site.ledger().get(key).detail["guid"]
    loaded = load_stories([path], site)[0]   # the loader checks the image: it goes missing after that
    image.unlink()
    (site.public_dir / "images" / "kept.png").unlink()   # the copy the build made
    assert set(publish_it(loaded)) == {"failed"}
    row = site.ledger().get(key)
    assert row.state == "failed" and "file not found: images/kept.png" in row.last_error
    assert row.detail["guid"] == guid
    # Fixed, and the host moved: the entry keeps the id it was first given.
    image.write_bytes(b"\x89PNG" + b"0" * 60)
    site = set_settings(site, PUBLISHER_SITE_URL="https://www.unpog.org")
    assert set(publish_it()) == {"sent"}
    entry = next(e for e in feedparser.parse((site.public_dir / "en/atom.xml").read_bytes()).entries
                 if e.link.endswith("/en/kept/"))
    assert entry.id == guid == site.ledger().get(key).detail["guid"]


def test_a_warm_build_renders_nothing_the_cache_holds_summary_texts_included(tmp_path: Path) -> None:
    from publisher.formatters.feeds import plain_summary, xml_safe
    from publisher.formatters.site_feeds import BodyRenderer
    from publisher.markup import markdown_to_html
    from publisher.store.sqlite import SqliteFeedCache

    body, summary = "## Title\n\nA *body* & more.\n", "A **summary** with\x0b a tab & <b>markup</b>"
    cache = SqliteFeedCache(tmp_path / "feed-bodies.sqlite")
    first = BodyRenderer(cache)
    html, text = first(body), first.plain_text(summary)
    assert (html, text) == (markdown_to_html(body), plain_summary(xml_safe(markdown_to_html(summary))))
    assert text == "A summary with a tab & markup"
    first.save(prune=True)
    cache.close()

    cache = SqliteFeedCache(tmp_path / "feed-bodies.sqlite")
    warm = BodyRenderer(cache)
    warm.prefetch([body, summary], [summary])   # one look-up for the feed's bodies and summaries' texts
    assert (warm(body), warm.plain_text(summary)) == (html, text)
    assert warm.new == {}                        # nothing rendered again
    assert warm.used == {warm.key(body), warm.text_key(summary)}
    assert warm.text_key(summary) != warm.key(summary)   # the text and the HTML of one Markdown are two entries
    warm.save(prune=True)                        # a full build keeps what it used, the texts included
    assert set(cache.get_many([warm.key(body), warm.text_key(summary), warm.key(summary)])) == {
        warm.key(body), warm.text_key(summary)}
    cache.close()


def test_the_xml_safe_bodies_are_cached_once_and_only_when_they_differ(tmp_path: Path) -> None:
    from publisher.formatters.feeds import xml_safe
    from publisher.formatters.site_feeds import BodyRenderer
    from publisher.markup import markdown_to_html
    from publisher.store.sqlite import SqliteFeedCache

    clean, dirty = "A *clean* body.\n\nTwo paragraphs.\n", "A body with\x0b a vertical tab.\n"
    cache = SqliteFeedCache(tmp_path / "feed-bodies.sqlite")
    first = BodyRenderer(cache)
    assert first.xml_html(clean) == markdown_to_html(clean)
    assert first.xml_html(dirty) == xml_safe(markdown_to_html(dirty)) != markdown_to_html(dirty)
    # the clean body's XML-safe entry says "the same as the HTML" rather than holding it twice
    assert first.new[first.xml_key(clean)] == ""
    assert first.new[first.xml_key(dirty)] == xml_safe(markdown_to_html(dirty))
    first.save(prune=True)
    cache.close()

    cache = SqliteFeedCache(tmp_path / "feed-bodies.sqlite")
    warm = BodyRenderer(cache)
    warm.prefetch([clean, dirty], xml=[clean, dirty])
    assert (warm.xml_html(clean), warm.xml_html(dirty)) == (first.xml_html(clean), first.xml_html(dirty))
    assert warm.new == {}
    # the HTML is kept too (the article's page shows it), even where the XML-safe body did not need it
    assert warm.used == {warm.key(clean), warm.xml_key(clean), warm.key(dirty), warm.xml_key(dirty)}
    warm.save(prune=True)
    assert len(cache.get_many(warm.used)) == 4
    cache.close()
