"""The content index: unchanged content files come from the index, not the file; publishing one reads only it."""

from __future__ import annotations

import builtins
import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

import publisher.article as article_module
from publisher.article import load_article, load_library
from publisher.channels.feeds import FeedsChannel
from publisher.errors import ContentError
from publisher.site import Site
from tests.conftest import set_settings

AN_HOUR_AGO = time.time() - 3600


def age(site: Site, seconds_ago: float = 3600) -> None:
    """Every content file last modified long ago: recent files are never trusted to the index (racy)."""
    moment = time.time() - seconds_ago
    for path in site.content_dir.rglob("*"):
        if path.is_file():
            os.utime(path, (moment, moment))


def new_process() -> None:
    """What a new run of ``publisher`` starts with: nothing parsed in this process, only the index on disk."""
    getattr(article_module, "_PARSED", {}).clear()


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    new_process()
    yield
    new_process()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[Path]]:
    """Record every file opened from now on (``open``, and ``Path.read_text`` through ``io.open``)."""
    seen: list[Path] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)):
            seen.append(Path(os.fspath(file)).resolve())
        return real_open(file, *args, **kwargs)

    def start() -> list[Path]:
        monkeypatch.setattr(builtins, "open", counting_open)
        monkeypatch.setattr(io, "open", counting_open)
        return seen

    return start


def content_opened(site: Site, seen: list[Path]) -> set[str]:
    root = site.content_dir.resolve()
    return {p.relative_to(root).as_posix() for p in seen if p.is_relative_to(root) and p.suffix == ".md"}


def test_publishing_one_article_reads_no_other_content_file(site: Site, cli, write_article, opened) -> None:
    from publisher import pipeline

    age(site)
    assert cli("feeds", "build", "--all").exit_code == 0   # every article published, the index filled
    new_process()
    path = write_article("2026-new-report", "en", "The new report.\n", title="A new report", date="2026-11-30",
                         theme="Knowledge Management")
    seen = opened()
    reports = pipeline.publish(site, [path], channels=[FeedsChannel(site)], langs=["en"])
    assert {r.state for r in reports} == {"sent"}
    assert content_opened(site, seen) == {"2026-new-report.en.md"}
    # The other articles are still in the feed: they came from the index.
    feed = feedparser.parse((site.public_dir / "en" / "rss.xml").read_bytes())
    titles = [entry.title for entry in feed.entries]
    assert titles[0] == "A new report"
    assert len(titles) == len(load_library(site).articles("en"))


def test_one_publish_lists_and_loads_content_once_and_does_not_walk_public(site: Site, cli, write_article,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import publisher.fsutil as fsutil
    from publisher import pipeline

    age(site)
    assert cli("feeds", "build", "--all").exit_code == 0
    loads: list[int] = []
    listings: list[int] = []
    sweeps: list[Path] = []
    real_load, real_sweep = article_module.load_library, fsutil.sweep_temporary_files
    real_catalog = article_module.load_catalog
    monkeypatch.setattr(article_module, "load_library", lambda s, *listing: loads.append(1) or real_load(s, *listing))
    monkeypatch.setattr(article_module, "load_catalog",
                        lambda s, *listing: listings.append(1) or real_catalog(s, *listing))
    monkeypatch.setattr(fsutil, "sweep_temporary_files", lambda folder: sweeps.append(Path(folder)) or
                        real_sweep(folder))
    path = write_article("2026-new-report", "en", "The new report.\n", title="A new report", date="2026-11-30",
                         theme="Knowledge Management")

    reports = pipeline.publish(site, [path], channels=[FeedsChannel(site)], langs=["en"])

    assert {r.state for r in reports} == {"sent"}
    # the stories, the feeds' other articles and the pages: one listing of content/, and no article made whole
    # but those rendered in full (the library is never loaded)
    assert len(listings) == 1 and loads == []
    assert sweeps == []           # the last build finished: no walk of public/ for the temporary files it left
    assert not (site.state_dir / "feeds-writing").exists()

    # A build stopped part-way leaves its marker (and perhaps a temporary file): the next write sweeps public/.
    (site.state_dir / "feeds-writing").write_text("", encoding="utf-8")
    stale = site.public_dir / "en" / ".rss.xml.abcdefgh.tmp"
    stale.write_text("half a feed", encoding="utf-8")
    reports = pipeline.publish(site, [path], channels=[FeedsChannel(site)], langs=["en"], force=True)
    assert {r.state for r in reports} == {"sent"}
    assert sweeps == [site.public_dir] and not stale.exists()
    assert not (site.state_dir / "feeds-writing").exists()


def test_a_rebuild_with_nothing_changed_lists_content_and_loads_no_article(site: Site, cli, write_article,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher import pipeline

    age(site)
    assert cli("feeds", "build").exit_code == 0
    assert cli("feeds", "build", "--all").exit_code == 0
    assert cli("feeds", "build").exit_code == 0   # the build key remembered
    loads: list[str] = []
    real_load, real_catalog = article_module.load_library, article_module.load_catalog
    monkeypatch.setattr(article_module, "load_library",
                        lambda s, *listing: loads.append("library") or real_load(s, *listing))
    monkeypatch.setattr(article_module, "load_catalog",
                        lambda s, *listing: loads.append("catalog") or real_catalog(s, *listing))
    before = {p: p.read_bytes() for p in site.public_dir.rglob("*") if p.is_file()}

    result = pipeline.build_feeds(site)

    assert loads == [] and result.written == [] and sorted(result.unchanged) == sorted(
        p.relative_to(site.public_dir).as_posix() for p in before)
    # An edited file changes the listing's signature: content/ is read once and the build renders again.
    edited = next(site.content_dir.rglob("*.en.md"))
    edited.write_text(edited.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    age(site)
    result = pipeline.build_feeds(site)
    assert loads == ["catalog"] and edited.relative_to(site.content_dir).as_posix().split(".")[0] in " ".join(
        result.written)


def test_an_unchanged_file_comes_back_from_the_index_equal_to_a_parse(site: Site, opened) -> None:
    age(site)
    parsed = {a.path: a for a in load_library(site).articles()}
    new_process()
    seen = opened()
    indexed = {a.path: a for a in load_library(site).articles()}
    assert content_opened(site, seen) == set()
    assert indexed == parsed
    assert indexed == {path: load_article(path, site) for path in parsed if path is not None}
    # The time zone of a date written without one is the site's, as when parsed (not a fixed offset).
    assert {type(a.date.tzinfo) for a in indexed.values()} == {type(a.date.tzinfo) for a in parsed.values()}


def test_an_embargo_survives_the_index(site: Site, write_article, opened) -> None:
    """publish_at comes back from the index: an embargoed article read from it is still held back."""
    write_article("embargoed", "en", title="Under embargo", date="2030-01-01", publish_at="2030-01-02T09:00:00+09:00")
    age(site)
    parsed = load_library(site).story("embargoed").get("en")
    new_process()
    seen = opened()
    indexed = load_library(site).story("embargoed").get("en")
    assert content_opened(site, seen) == set()
    assert parsed is not None and indexed is not None
    assert indexed.publish_at == parsed.publish_at and indexed.publish_at is not None
    assert indexed.publish_at.isoformat() == "2030-01-02T09:00:00+09:00"


def test_a_changed_file_is_parsed_again(site: Site, opened) -> None:
    age(site)
    load_library(site)
    path = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Regional Knowledge Forum", "Regional KM Forum"),
                    encoding="utf-8")
    os.utime(path, (AN_HOUR_AGO + 60, AN_HOUR_AGO + 60))
    new_process()
    seen = opened()
    article = load_library(site).story("2024-sdg16-knowledge-forum").versions["en"]
    assert "Regional KM Forum" in article.title + article.body
    assert content_opened(site, seen) == {"2024-sdg16-knowledge-forum.en.md"}
    # ...and the index now has the new version: the next run reads nothing.
    new_process()
    seen.clear()
    assert load_library(site).story("2024-sdg16-knowledge-forum").versions["en"] == article
    assert content_opened(site, seen) == set()


def test_a_file_written_just_now_is_parsed_every_time(site: Site, opened, write_article) -> None:
    """Same size, same modification time within the file system's granularity: only a recent file can be
    rewritten unnoticed, so a recent one is never taken from the index or the process."""
    age(site)
    path = write_article("2026-fresh", "en", "Body A.\n", title="Title A", date="2026-11-30")
    load_library(site)
    write_article("2026-fresh", "en", "Body B.\n", title="Title B", date="2026-11-30")
    os.utime(path, ns=(path.stat().st_mtime_ns, path.stat().st_mtime_ns))
    assert load_library(site).story("2026-fresh").versions["en"].title == "Title B"


def test_a_changed_site_url_parses_every_file_again(site: Site) -> None:
    age(site)
    load_library(site)
    new_process()
    moved = set_settings(site, PUBLISHER_SITE_URL="https://news.example.org")
    urls = {a.url for a in load_library(moved).articles()}
    assert all(url.startswith("https://news.example.org/") for url in urls)
    moved.close()


def test_an_indexed_article_whose_image_is_gone_still_stops_with_the_file_named(site: Site) -> None:
    age(site)
    load_library(site)
    (site.content_dir / "images" / "unpsf-2024.png").unlink()
    new_process()
    with pytest.raises(ContentError, match=r"2024-unpsf-incheon\.\w+\.md.*image\.src.*file not found"):
        load_library(site)


def test_a_deleted_file_leaves_the_library(site: Site) -> None:
    age(site)
    assert "2025-public-service-day" in load_library(site).stories
    for path in site.content_dir.glob("2025-public-service-day.*.md"):
        path.unlink()
    new_process()
    assert "2025-public-service-day" not in load_library(site).stories


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many full renders of the site's feeds happen (SiteFeeds.render, called through)."""
    from publisher.formatters.site_feeds import SiteFeeds

    calls: list[int] = []
    real = SiteFeeds.render

    def counting(self: SiteFeeds, **kwargs: Any) -> Any:
        calls.append(1)
        return real(self, **kwargs)

    monkeypatch.setattr(SiteFeeds, "render", counting)
    return calls


def test_a_rebuild_with_nothing_changed_renders_nothing(site: Site, cli, renders, write_article) -> None:
    age(site)
    assert cli("feeds", "build", "--all").exit_code == 0
    first = cli("feeds", "build")
    assert first.exit_code == 0
    count = len(renders)
    again = cli("feeds", "build")
    assert again.exit_code == 0, again.output
    assert len(renders) == count
    assert again.output.startswith("0 files written, ")
    assert again.output.split(",")[1] == first.output.split(",")[1]   # "N unchanged": the same files

    # A file of the build gone: rendered and written again.
    (site.public_dir / "en" / "index.html").unlink()
    restored = cli("feeds", "build")
    assert len(renders) == count + 1 and "wrote en/index.html" in restored.output

    # A new article published: the next build renders again.
    path = write_article("2026-new-report", "en", "The new report.\n", title="A new report", date="2026-11-30")
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    assert cli("publish", "--channel", "feeds", str(path)).exit_code == 0
    count = len(renders)
    cli("feeds", "build")
    assert len(renders) == count + 1

    # A changed setting or template: rendered again.
    set_settings(site, FEED_MAX_ITEMS="2").close()
    cli("feeds", "build")
    assert len(renders) == count + 2
    (site.root / "templates" / "feeds").mkdir(parents=True, exist_ok=True)
    from publisher.resources import templates_dir

    own = site.root / "templates" / "feeds" / "index.html.j2"
    own.write_text((templates_dir() / "feeds" / "index.html.j2").read_text(encoding="utf-8")
                   .replace("{% block title %}", "{% block title %}Ours: "),
                   encoding="utf-8")
    rebuilt = cli("feeds", "build")
    assert len(renders) == count + 3 and "wrote en/index.html" in rebuilt.output


def test_a_run_collects_garbage_less_often_and_restores_the_threshold(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from publisher import pipeline

    age(site)
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []
    real_load = article_module.load_catalog
    monkeypatch.setattr(article_module, "load_catalog",
                        lambda s, *listing: during.append(gc.get_threshold()) or real_load(s, *listing))
    pipeline.build_feeds(site)
    assert during == [(max(before[0], pipeline.RUN_GC_THRESHOLD), *before[1:])]
    assert gc.get_threshold() == before


LISTED_FIELDS = ("slug", "lang", "title", "date", "summary", "theme", "url", "translation", "path", "theme_slug",
                 "is_machine_translation")


def test_the_catalog_lists_every_file_from_the_index_as_a_parse_would(site: Site, opened) -> None:
    age(site)
    parsed = {a.path: a for a in load_library(site).articles()}
    new_process()
    seen = opened()
    catalog = article_module.load_catalog(site)
    listed = list(catalog.listed())
    assert content_opened(site, seen) == set()
    assert all(isinstance(v, article_module.ArticleEntry) for v in listed)   # none read: no body
    assert {v.path: tuple(getattr(v, name) for name in LISTED_FIELDS) for v in listed} == {
        path: tuple(getattr(a, name) for name in LISTED_FIELDS) for path, a in parsed.items()}
    assert {type(v.date.tzinfo) for v in listed} == {type(a.date.tzinfo) for a in parsed.values()}
    # Made whole, each is the Article a parse gives, body and all; the story order is the library's.
    assert catalog.full(listed) == [parsed[v.path] for v in listed]
    assert [s.slug for s in catalog.library().stories.values()] == list(load_library(site).stories)
    assert content_opened(site, seen) == set()


def test_publishing_one_article_makes_whole_only_the_articles_it_renders(site: Site, cli, write_article,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher import pipeline

    for n in range(8):
        write_article(f"2023-old-{n}", "en", f"Old story {n}.\n", title=f"Old story {n}", date=f"2023-01-0{n + 1}")
    age(site)
    site = set_settings(site, FEED_MAX_ITEMS="2")
    assert cli("feeds", "build", "--all").exit_code == 0
    new_process()
    whole: list[str] = []
    real = article_module.article_from_fields
    monkeypatch.setattr(article_module, "article_from_fields",
                        lambda fields, body, path, s: whole.append(path.name) or real(fields, body, path, s))
    path = write_article("2026-new-report", "en", "The new report.\n", title="A new report", date="2026-11-30",
                         theme="A theme of its own")

    reports = pipeline.publish(site, [path], channels=[FeedsChannel(site)], langs=["en"])

    assert {r.state for r in reports} == {"sent"}
    # The language's feed holds the new article and one other: that one is the only other made whole (its
    # body is in the feed); the index page lists every English article from the index alone.
    assert len(whole) == 1 and whole[0].endswith(".en.md")
    index = (site.public_dir / "en" / "index.html").read_text(encoding="utf-8")
    assert index.count('<article class="summary"') == len(load_library(site).articles("en"))
    assert "Old story 0" in index and "A new report" in index
    feed = feedparser.parse((site.public_dir / "en" / "rss.xml").read_bytes())
    assert [entry.title for entry in feed.entries][0] == "A new report" and len(feed.entries) == 2
    site.close()


def test_a_file_changed_since_it_was_indexed_is_listed_as_it_is_now(site: Site, cli, write_article) -> None:
    from publisher import pipeline

    age(site)
    assert cli("feeds", "build", "--all").exit_code == 0
    new_process()
    other = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    text = other.read_text(encoding="utf-8")
    assert "Regional Knowledge Forum" in text.split("---")[1]   # in the front matter: the title
    other.write_text(text.replace("Regional Knowledge Forum", "Regional Edited Forum"), encoding="utf-8")
    os.utime(other, (AN_HOUR_AGO + 60, AN_HOUR_AGO + 60))
    path = write_article("2026-new-report", "en", "The new report.\n", title="A new report", date="2026-11-30")

    assert {r.state for r in pipeline.publish(site, [path], channels=[FeedsChannel(site)], langs=["en"])} == {"sent"}
    assert "Regional Edited Forum" in (site.public_dir / "en" / "index.html").read_text(encoding="utf-8")


def test_the_listing_finds_and_stats_the_files_as_rglob_and_path_stat_do(site: Site) -> None:
    """``list_content`` stats each file relative to its folder's descriptor: the same files, in the same order,
    with the sizes and times ``Path.stat`` gives (symbolic links followed, a linked folder not entered, a
    dangling link listed as unreadable)."""
    from publisher.article import content_files, list_content

    content = site.content_dir
    (content / "2025" / "deep").mkdir(parents=True)
    (content / "2025" / "deep" / "a-b.en.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    (content / "2025" / "z.en.md").write_text("---\ntitle: z\n---\n", encoding="utf-8")
    (content / ".hidden.en.md").write_text("x", encoding="utf-8")
    (content / "linked.en.md").symlink_to(content / "2025" / "z.en.md")
    (content / "dangling.en.md").symlink_to(content / "gone.en.md")
    (content / "folder-link").symlink_to(content / "2025", target_is_directory=True)
    listing = list_content(site)
    expected = sorted((p for p in content.rglob("*.md") if not p.name.startswith(".")), key=lambda p: p.parts)
    assert [name for name, _, _ in listing.files] == [str(p) for p in expected] == [str(p) for p in content_files(site)]
    for name, size, mtime_ns in listing.files:
        if name.endswith("dangling.en.md"):
            assert (size, mtime_ns) == (-1, -1)
        else:
            stat = Path(name).stat()
            assert (size, mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert listing.signature == ""   # an unreadable file: nothing to trust


# The packaged index loop as it was: every field printed through jinja's autoescape, by attribute. A site's own
# template may still be written so; its page must be the same bytes as the packaged template's.
ESCAPING_LOOP = """{% for row in rows %}
<article class="summary" lang="{{ row.lang }}">
<h2><a href="{{ row.slug }}/">{{ row.title }}</a></h2>
<p class="meta"><time datetime="{{ row.datetime }}">{{ row.date }}</time>{% if row.theme is not none %} · {{ row.theme }}{% endif %}{% if row.machine %} · {{ row.machine }}{% endif %}</p>
{% if row.summary %}<p>{{ row.summary }}</p>{% endif %}
</article>
{% else %}
<p>{{ _("No articles yet.") }}</p>
{% endfor %}
"""


def test_the_index_rows_print_escaped_as_an_autoescaping_loop_over_their_fields(site: Site, cli,
                                                                                 write_article) -> None:
    import re

    from publisher.resources import templates_dir

    write_article("2026-ampersand", "en", "Body.\n", title='R&D <b>"quoted"</b> & \'more\'', date="2026-11-30",
                  summary="A < B & C > D \"E\"", theme="Capacity Development")
    write_article("2026-ampersand", "ko", "본문.\n", title="연구·개발 (R&D)는 <중요>", date="2026-11-30",
                  summary="“따옴표”와 & 기호", theme="Capacity Development",
                  translation={"status": "reviewed", "source": "en"})
    age(site)
    assert cli("feeds", "build", "--all").exit_code == 0
    packaged = {lang: (site.public_dir / lang / "index.html").read_bytes() for lang in ("en", "ko")}
    assert b"R&amp;D &lt;b&gt;&#34;quoted&#34;&lt;/b&gt; &amp; &#39;more&#39;" in packaged["en"]
    source = (templates_dir() / "feeds" / "index.html.j2").read_text(encoding="utf-8")
    own = re.sub(r"\{# rows:.*?\{% endautoescape %\}\n", lambda _: ESCAPING_LOOP, source, flags=re.S)
    assert own != source and "autoescape" not in own
    (site.root / "templates" / "feeds").mkdir(parents=True, exist_ok=True)
    (site.root / "templates" / "feeds" / "index.html.j2").write_text(own, encoding="utf-8")
    assert cli("feeds", "build", "--all").exit_code == 0
    assert {lang: (site.public_dir / lang / "index.html").read_bytes() for lang in ("en", "ko")} == packaged


def test_a_run_keeps_the_catalog_from_the_collector_and_gives_it_back(site: Site, write_article,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing and catalog of a run are frozen once read (``gc.freeze``: the collector never walks their
    20,000 entries again and again), no collection runs while they are read, and the run's end unfreezes them.
    A process that froze objects of its own before the run keeps them frozen, and the run freezes nothing."""
    import gc

    from publisher import pipeline

    age(site)
    seen: list[tuple[bool, int]] = []
    real_load = article_module.load_catalog

    def load(s: Site, *listing: Any) -> Any:
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return real_load(s, *listing)

    real_feeds = FeedsChannel.site_feeds_for

    def feeds(self: FeedsChannel, *args: Any, **kwargs: Any) -> Any:
        made = real_feeds(self, *args, **kwargs)
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return made

    monkeypatch.setattr(article_module, "load_catalog", load)
    monkeypatch.setattr(FeedsChannel, "site_feeds_for", feeds)
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    path = write_article("2026-new-report", "en", "The new report.\n", title="A new report", date="2026-11-30")
    pipeline.publish(site, [path], channels=["feeds"])
    assert len(seen) == 2
    assert seen[0] == (False, 0)                     # read with no collection, nothing frozen yet
    assert seen[1][0] is True and seen[1][1] > 0     # then frozen, collections back on
    assert gc.get_freeze_count() == 0 and gc.isenabled()

    seen.clear()
    gc.freeze()
    try:
        own = gc.get_freeze_count()
        pipeline.publish(site, [path], channels=["feeds"])
        # nothing more frozen by the run, nothing of the process's unfrozen (the count only falls as frozen
        # objects are freed)
        assert len(seen) == 2 and all(enabled and count <= own for enabled, count in seen)
        assert 0 < gc.get_freeze_count() <= own
    finally:
        gc.unfreeze()


def test_the_catalog_forgets_a_deleted_file_in_the_index_only_when_one_was_deleted(
        site: Site, write_article, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_catalog, writing a newly indexed file, drops the entries of files deleted since, and asks the index
    to prune nothing when none was (every file found its entry: no entry is left over)."""
    from publisher.article import load_catalog
    from publisher.store import open_content_index
    from publisher.store.sqlite import SqliteContentIndex

    pruned: list[int] = []
    real = SqliteContentIndex.keep_only

    def counting(self: SqliteContentIndex, paths: Any) -> None:
        pruned.append(1)
        real(self, paths)

    monkeypatch.setattr(SqliteContentIndex, "keep_only", counting)

    def indexed() -> set[str]:
        index = open_content_index(site.state_dir)
        try:
            return set(index.entries())
        finally:
            index.close()

    age(site)
    load_catalog(site)
    before = indexed()
    assert "2025-public-service-day.en.md" in before
    write_article("new-one", "en", title="New one", date="2026-01-01T09:00:00+09:00")
    age(site)
    new_process()
    load_catalog(site)                          # one new file indexed, none deleted: nothing to prune
    assert indexed() == before | {"new-one.en.md"} and pruned == []
    for path in site.content_dir.glob("2025-public-service-day.*.md"):
        path.unlink()
    write_article("new-two", "en", title="New two", date="2026-01-02T09:00:00+09:00")
    age(site)
    new_process()
    catalog = load_catalog(site)
    assert "2025-public-service-day" not in catalog.stories and "new-two" in catalog.stories
    assert pruned == [1]
    assert indexed() == {key for key in before if not key.startswith("2025-public-service-day.")} | {
        "new-one.en.md", "new-two.en.md"}
