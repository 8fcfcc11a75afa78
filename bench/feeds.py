"""Benchmark: RSS, Atom and JSON Feed for 1,000 and 10,000 articles in 2 languages, the 1,000 run as the baseline.

Usage: python bench/feeds.py [--small 1000] [--large 10000] [--repeat 3]

Synthetic articles (distinct Markdown bodies, themes, tags, some with an image) are built in memory for a
temporary site; each run renders every language's three feeds with every article in them (FEED_MAX_ITEMS
raised to the article count), the worst case. "cold" is a site's first build: every body is rendered from
Markdown and sanitized; "warm" is every later build: bodies come from .publisher/cache/feed-bodies.sqlite.
Prints the best of ``--repeat`` wall and CPU times for each size (CPU time is what to compare on a shared
machine), the ratio large/small against the size ratio (linear scaling gives the same number), the cost per
entry, and a full default ``feeds build`` of the large site (50 items per feed, theme feeds, index pages and one
page per article) for scale, then two baselines of the same run, both feedgen writing the large site's entries
from bodies rendered beforehand (not timed), and the load average:
- "minimal" (``feedgen_prerendered``, the baseline issue 18 was measured against): id, title, link, dates, the
  Markdown summary and the body as CDATA, not pretty-printed; a JSON Feed of five keys per item;
- "same fields" (``feedgen_same_fields``): what our files carry, through feedgen's own setters: hreflang links to
  the translations, the image as an enclosure, author (dc:creator in RSS, feedgen's ``dc`` extension), theme and
  tags as categories, summary and body as escaped HTML (our files escape them; CDATA would skip that work),
  pretty-printed, and a JSON Feed with our keys. Only ``xml:base`` per entry is missing (feedgen has no setter).
  Its byte count is printed next to ours, so the two can be seen to write the same volume.
The ratio goal is against "same fields": the minimal baseline writes about half of what the feeds must say.
Goals: at most 5 s for 10,000 articles x 2 languages x 3 formats (warm), and at most 1.3x feedgen writing the
same fields.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where bench/email.py would hide the standard library's
# email package; the project root goes there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from publisher.article import Article, Image, TranslationInfo  # noqa: E402
from publisher.site import Site  # noqa: E402

THEMES = ("Capacity Development", "Digital Government", "Knowledge Management", "Public Service Innovation")
EN_WORDS = ("public", "service", "governance", "digital", "institution", "capacity", "workshop", "forum", "data",
            "citizen", "trust", "innovation", "Incheon", "policy", "officials", "regional", "learning")
KO_WORDS = ("공공", "서비스", "거버넌스", "디지털", "기관", "역량", "워크숍", "포럼", "데이터", "시민", "신뢰", "혁신",
            "인천", "정책", "공무원", "지역", "학습")


def synthetic_articles(count: int, site: Site, seed: int = 5) -> list[Article]:
    """``count`` stories in English and Korean: 2 x ``count`` article versions, each body different."""
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    articles = []
    for n in range(count):
        slug = f"story-{n:05d}"
        date = start + timedelta(hours=7 * n)
        theme = THEMES[n % len(THEMES)]
        image = Image(f"https://cdn.example.org/{slug}.jpg", "A photo") if n % 5 == 0 else None
        for lang, words in (("en", EN_WORDS), ("ko", KO_WORDS)):
            paragraphs = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(4)]
            body = (f"## {slug}\n\n" + "\n\n".join(paragraphs) + f"\n\n- item {n}\n- **bold** & <em>em</em>\n\n"
                    f"[link](https://example.org/{n})\n")
            articles.append(Article(
                slug=slug, lang=lang, title=f"{slug} {' '.join(rng.choice(words) for _ in range(8))}", date=date,
                body=body, summary=" ".join(rng.choice(words) for _ in range(25)), author="UNPOG", theme=theme,
                tags=[rng.choice(words), rng.choice(words)], image=image, url=site.url_for(lang, slug),
                translation=TranslationInfo("original" if lang == "en" else "human", None if lang == "en" else "en"),
            ))
    return articles


def make_site(root: Path) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    (root / "publisher.toml").write_text(
        'PUBLISHER_SITE_URL = "https://www.unpog.org"\nSITE_TITLE_EN = "UNPOG News"\n'
        'SITE_TITLE_KO = "유엔거버넌스센터 소식"\n', encoding="utf-8")
    return Site(root)


def cache_path(site: Site) -> Path:
    return site.state_dir / "cache" / "feed-bodies.sqlite"


def render_all_feeds(site: Site, articles: list[Article], *, cold: bool) -> tuple[float, float, int, int]:
    """Wall and CPU seconds to render 2 languages x 3 formats with every article in each feed; bytes, entries.

    ``cold`` starts without rendered bodies (a site's first build); otherwise the bodies come from the cache
    the previous build left in .publisher/cache/ (every later build and publish).
    """
    from publisher.formatters.site_feeds import SiteFeeds
    from publisher.markup import markdown_to_html

    markdown_to_html.cache_clear()   # no help from the in-process cache either way
    if cold:
        cache_path(site).unlink(missing_ok=True)
    began, began_cpu = time.perf_counter(), time.process_time()
    cache = site.feed_cache()   # what the pipeline hands the feeds channel (ctx.cache)
    feeds = SiteFeeds(site, articles, max_items=len(articles), cache=cache)
    size = entries = 0
    for lang in feeds.languages:
        for output in feeds.feed_files(feeds.spec(lang)):
            size += len(output.content)
            entries += output.items
    feeds.keep_rendered_bodies(full_build=True)
    cache.close()
    return time.perf_counter() - began, time.process_time() - began_cpu, size, entries


def feedgen_feed(lang: str, articles: list[Article], body_of: dict[tuple[str, str], str]) -> Any:
    """A feedgen FeedGenerator for ``lang`` holding ``articles`` (newest first) with pre-rendered bodies."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id(f"https://www.unpog.org/{lang}/")
    fg.title("UNPOG News")
    fg.link(href=f"https://www.unpog.org/{lang}/", rel="alternate")
    fg.description("News")
    fg.language(lang)
    for article in reversed(articles):   # add_entry prepends: oldest first gives newest on top
        entry = fg.add_entry()
        entry.id(article.url)
        entry.title(article.title)
        entry.link(href=article.url)
        entry.published(article.date)
        entry.updated(article.date)
        entry.summary(article.summary)
        entry.content(body_of[(article.slug, article.lang)], type="CDATA")
    return fg


def feedgen_prerendered(articles: list[Article]) -> tuple[float, float]:
    """The minimal baseline: feedgen writing each language's RSS and Atom (and the JSON Feed with the standard
    library) with every article in it, each entry with an id, title, link, dates, the Markdown summary and the
    body pre-rendered to HTML (not timed) as CDATA, not pretty-printed. Wall and CPU seconds."""
    import json

    from publisher.markup import markdown_to_html

    bodies = {(a.slug, a.lang): markdown_to_html(a.body) for a in articles}
    began, began_cpu = time.perf_counter(), time.process_time()
    for lang in sorted({a.lang for a in articles}):
        chosen = sorted((a for a in articles if a.lang == lang), key=lambda a: (a.date, a.slug), reverse=True)
        fg = feedgen_feed(lang, chosen, bodies)
        items = [{"id": a.url, "url": a.url, "title": a.title, "content_html": bodies[(a.slug, a.lang)],
                  "date_published": a.date.isoformat()} for a in reversed(chosen)]
        fg.rss_str()
        fg.atom_str()
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}, ensure_ascii=False)
    return time.perf_counter() - began, time.process_time() - began_cpu


class Prepared:
    """What is not feed writing, computed before a like-for-like baseline is timed: each version's body and
    summary rendered to HTML, the summary's plain text, the theme's label in the version's language, the other
    versions' addresses and the image's media type."""

    def __init__(self, site: Site, articles: list[Article]) -> None:
        import mimetypes

        from publisher.formatters.feeds import plain_summary
        from publisher.i18n import theme_label
        from publisher.markup import markdown_to_html

        self.body = {(a.slug, a.lang): markdown_to_html(a.body) for a in articles}
        self.summary = {(a.slug, a.lang): markdown_to_html(a.summary) for a in articles}
        self.text = {key: plain_summary(html) for key, html in self.summary.items()}
        self.label = {(a.theme, a.lang): theme_label(a.theme, a.lang, site) for a in articles if a.theme}
        urls: dict[str, dict[str, str]] = {}
        for a in articles:
            urls.setdefault(a.slug, {})[a.lang] = a.url
        self.others = {(a.slug, a.lang): [(lang, url) for lang, url in urls[a.slug].items() if lang != a.lang]
                       for a in articles}
        self.image_type = {a.image.src: mimetypes.guess_type(a.image.src)[0] or "application/octet-stream"
                           for a in articles if a.image}


def feedgen_same_fields(site: Site, articles: list[Article], prepared: Prepared) -> tuple[float, float, int]:
    """The like-for-like baseline: feedgen writing what our feeds carry, from pre-rendered bodies (``Prepared``,
    not timed): per entry the id, title, the link to its page and hreflang links to its translations, the
    summary and the body as escaped HTML (type "html", as ours; CDATA would skip the escaping our files have),
    the author (Atom, and RSS dc:creator through feedgen's own ``dc`` extension), the theme and tags as
    categories, the image as an enclosure, published and updated dates; the channel's title, description,
    language, links and dates; pretty-printed, as ours. The JSON Feed has the same keys as ours
    (``publisher.formatters.feeds.json_feed_document``), built from the same values and written with json.dumps.
    Not in it: ``xml:base`` on each entry (feedgen has no setter for it). Wall and CPU seconds, bytes written."""
    import json

    from feedgen.feed import FeedGenerator

    size = 0
    began, began_cpu = time.perf_counter(), time.process_time()
    for lang in sorted({a.lang for a in articles}):
        chosen = sorted((a for a in articles if a.lang == lang), key=lambda a: (a.date, a.slug), reverse=True)
        title, home = site.title(lang), f"{site.url}/{lang}/"
        fg = FeedGenerator()
        fg.load_extension("dc", atom=False, rss=True)
        fg.id(f"{site.url}/{lang}/atom.xml")
        fg.title(title)
        fg.subtitle(title)
        fg.language(lang)
        fg.author({"name": title})
        fg.generator("publisher")
        fg.link(href=f"{site.url}/{lang}/rss.xml", rel="self", type="application/rss+xml")
        fg.link(href=home, rel="alternate", type="text/html", hreflang=lang)
        newest = max(max(a.updated or a.date, a.date) for a in chosen)
        fg.updated(newest)
        fg.lastBuildDate(newest)
        entries = []
        for a in chosen:
            key = (a.slug, a.lang)
            entry = fg.add_entry(order="append")
            entry.id(a.url)
            entry.title(a.title)
            entry.summary(prepared.summary[key], type="html")
            entry.content(prepared.body[key], type="html")
            entry.author({"name": a.author})
            entry.dc.dc_creator(a.author)
            links = [{"href": url, "rel": "alternate", "type": "text/html", "hreflang": other}
                     for other, url in prepared.others[key]]
            links.append({"href": a.url, "rel": "alternate", "type": "text/html", "hreflang": lang})
            if a.image:
                links.append({"href": a.image.src, "rel": "enclosure", "type": prepared.image_type[a.image.src],
                              "length": "0"})
            entry.link(links)
            categories = [{"term": a.theme_slug, "label": prepared.label[(a.theme, lang)]}] if a.theme else []
            entry.category(categories + [{"term": tag, "label": tag} for tag in a.tags])
            updated = max(a.updated or a.date, a.date)
            entry.published(a.date)
            entry.updated(updated)
            item = {"id": a.url, "url": a.url, "title": a.title, "content_html": prepared.body[key],
                    "summary": prepared.text[key]}
            if a.image:
                item["image"] = a.image.src
            item.update({"date_published": a.date.isoformat(), "date_modified": updated.isoformat(),
                         "authors": [{"name": a.author}], "language": lang,
                         "tags": [c["label"] for c in categories] + list(a.tags)})
            if a.image:
                item["attachments"] = [{"url": a.image.src, "mime_type": prepared.image_type[a.image.src],
                                        "title": a.image.alt}]
            item["_publisher"] = {"machine_translation": False,
                                  "translations": [{"language": other, "url": url}
                                                   for other, url in prepared.others[key]]}
            entries.append(item)
        size += len(fg.rss_str(pretty=True)) + len(fg.atom_str(pretty=True))
        document = {"version": "https://jsonfeed.org/version/1.1", "title": title, "home_page_url": home,
                    "feed_url": f"{site.url}/{lang}/feed.json", "language": lang,
                    "authors": [{"name": title, "url": home}], "items": entries}
        size += len((json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
    return time.perf_counter() - began, time.process_time() - began_cpu, size


def full_build(site: Site, articles: list[Article]) -> tuple[float, int]:
    from publisher.channels.feeds import write_outputs
    from publisher.formatters.site_feeds import SiteFeeds
    from publisher.markup import markdown_to_html

    markdown_to_html.cache_clear()
    began = time.perf_counter()
    cache = site.feed_cache()
    feeds = SiteFeeds(site, articles, cache=cache)
    result = write_outputs(site, feeds.render())
    feeds.keep_rendered_bodies(full_build=True)
    cache.close()
    return time.perf_counter() - began, len(result.files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(Path(tmp) / "site")
        timings: dict[tuple[str, int], tuple[float, float]] = {}
        sizes: dict[int, int] = {}
        for count in (args.small, args.large):
            articles = synthetic_articles(count, site)
            for mode in ("cold", "warm"):
                runs = [render_all_feeds(site, articles, cold=mode == "cold") for _ in range(args.repeat)]
                wall, cpu = min(run[0] for run in runs), min(run[1] for run in runs)
                _, _, size, entries = runs[0]
                timings[(mode, count)] = (wall, cpu)
                sizes[count] = size
                print(f"{mode} {count:>6} articles x 2 languages x 3 formats: {wall:6.2f} s wall, {cpu:6.2f} s CPU  "
                      f"({entries} entries, {size / 1e6:.0f} MB, {cpu / entries * 1e6:.0f} us CPU per entry; "
                      f"best of {args.repeat})")
        for mode in ("cold", "warm"):
            wall_ratio = timings[(mode, args.large)][0] / timings[(mode, args.small)][0]
            cpu_ratio = timings[(mode, args.large)][1] / timings[(mode, args.small)][1]
            print(f"{mode} ratio {args.large}/{args.small}: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU for "
                  f"{args.large / args.small:.0f}x the articles (linear = {args.large / args.small:.0f}x)")
        seconds, files = full_build(site, synthetic_articles(args.large, site))
        again, _ = full_build(site, synthetic_articles(args.large, site))
        print(f"full feeds build of {args.large} stories (default 50 items, themes, index + {2 * args.large} "
              f"article pages): {seconds:.2f} s, {files} files; the same build again, every page rendered from "
              f"memory with the bodies cached: {again:.2f} s (the CLI's rebuild with nothing changed skips that "
              f"work: bench/large_site.py times it)")
        large = synthetic_articles(args.large, site)
        # Best wall and best CPU of the runs, each on its own, as for the builds above.
        minimal_runs = [feedgen_prerendered(large) for _ in range(args.repeat)]
        minimal = min(run[0] for run in minimal_runs), min(run[1] for run in minimal_runs)
        prepared = Prepared(site, large)
        same_runs = [feedgen_same_fields(site, large, prepared) for _ in range(args.repeat)]
        same = min(run[0] for run in same_runs), min(run[1] for run in same_runs), same_runs[0][2]
        warm = timings[("warm", args.large)]
        print(f"feedgen, minimal entries (id, title, link, dates, Markdown summary, CDATA body; RSS, Atom; JSON "
              f"with 5 keys), {args.large} x 2 from pre-rendered bodies: {minimal[0]:.2f} s wall, {minimal[1]:.2f} s "
              f"CPU; warm build / feedgen minimal = {warm[1] / minimal[1]:.2f}x CPU")
        print(f"feedgen, the same fields as our feeds (see feedgen_same_fields), {args.large} x 2 from pre-rendered "
              f"bodies: {same[0]:.2f} s wall, {same[1]:.2f} s CPU, {same[2] / 1e6:.0f} MB (ours: "
              f"{sizes[args.large] / 1e6:.0f} MB); warm build / feedgen same fields = {warm[1] / same[1]:.2f}x CPU "
              f"(goal <= 1.3x)")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = timings[("warm", args.large)][0] <= 5.0
    print(f"goal (<= 5 s wall for {args.large} x 2 x 3, bodies cached): {'met' if ok else 'NOT met'} "
          f"({timings[('warm', args.large)][0]:.2f} s); cold first build: {timings[('cold', args.large)][0]:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
