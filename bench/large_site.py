"""Benchmark: a generated site of 10,000 stories x 2 languages; publishing ONE new article into it, a rebuild with
nothing changed and ``publisher status``, each against baselines measured in the same run.

Usage: python bench/large_site.py [--stories 10000] [--repeat 3] [--keep DIR | --existing DIR]

The site (deterministic: the same seed, the same files) is written to a temporary folder as content files
(``content/story-NNNNN.{en,ko}.md``, dated an hour ago, as an archive of years is), then published to the feeds
in full (``publisher feeds build --all``: 20,000 versions x 5 feed paths, a ledger of 100,000 rows). That
first build is timed too, for scale; then, each as its own process, as a person runs them:
- ``publisher publish --channel feeds content/new-N.en.md``: one new article (goal <= 1.0 s, <= 5% of the build);
- ``publisher feeds build``: a rebuild with nothing changed (goal <= 0.5 s);
- ``publisher status`` (goal <= 0.3 s).
With ``--existing`` no cold build is made: the publish's share is of the ``feeds build`` after the publishes, which
renders and writes every page and feed (a warm full build: the body cache filled); the line says which build.
Baselines, same run: ``python -c pass`` (a process's floor), ``python -c "import publisher.cli"`` (this
package's start-up), and feedgen writing the RSS and Atom feeds that publishing one article rewrites (the
language's 50 newest entries, bodies pre-rendered): the least work a publish can do. Prints best-of-``--repeat``
wall times and ratios; exit status 1 if the publish or rebuild goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[0] = str(PROJECT)   # bench/email.py must not hide the standard library's email package

from bench.feeds import feedgen_feed, make_site, synthetic_articles  # noqa: E402

TODAY = {   # the figures of issue 18, before the content index
    "publish one new article": "16-25 s",
    "rebuild, nothing changed": "19.6 s",
    "publisher status": "20.9 s",
    "full build (feeds build --all)": "49.8 s",
}
GOALS = {"publish one new article": 1.0, "rebuild, nothing changed": 0.5, "publisher status": 0.3}


def generate(root: Path, stories: int) -> Path:
    """The site's content files, each modified an hour ago (an archive is old; a recent file is never indexed)."""
    from publisher.article import dump_article

    site = make_site(root)
    site.content_dir.mkdir(parents=True, exist_ok=True)
    old = time.time() - 3600
    for article in synthetic_articles(stories, site):
        path = site.content_dir / f"{article.slug}.{article.lang}.md"
        path.write_text(dump_article(article), encoding="utf-8")
        os.utime(path, (old, old))
    site.close()
    return root


def run(root: Path, *args: str) -> float:
    """Wall seconds of ``publisher --site ROOT ARGS`` as its own process; a failure stops the bench."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "publisher", "--site", str(root), *args],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, cwd=PROJECT)
    seconds = time.perf_counter() - began
    if done.returncode not in (0,):
        raise SystemExit(f"publisher {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return seconds


def python(code: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT)
    return time.perf_counter() - began


def new_article(root: Path, n: int) -> Path:
    """A new story dated after every other, in English, themed (its theme feeds are rewritten too)."""
    path = root / "content" / f"new-{n:03d}.en.md"
    path.write_text(f"---\ntitle: New article {n}\ndate: 2031-01-{1 + n % 28:02d}T09:00:00+09:00\n"
                    f"summary: A new article in a large site.\ntheme: Digital Government\n---\n\n"
                    f"The body of new article {n}.\n", encoding="utf-8")
    return path


def feedgen_baseline(stories: int, items: int = 50) -> float:
    """feedgen writing one language's RSS and Atom feeds of ``items`` entries whose bodies are already HTML."""
    from publisher.markup import markdown_to_html

    with tempfile.TemporaryDirectory() as tmp:
        site = make_site(Path(tmp) / "site")
        articles = [a for a in synthetic_articles(min(stories, items), site) if a.lang == "en"][:items]
        bodies = {(a.slug, a.lang): markdown_to_html(a.body) for a in articles}   # pre-rendered: not timed
        began = time.perf_counter()
        fg = feedgen_feed("en", articles, bodies)
        out = Path(tmp) / "out"
        out.mkdir()
        fg.rss_file(str(out / "rss.xml"))
        fg.atom_file(str(out / "atom.xml"))
        seconds = time.perf_counter() - began
        site.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the site in this folder and leave it there")
    parser.add_argument("--existing", type=Path, help="time a site an earlier --keep run left (no generation)")
    args = parser.parse_args()
    tmp = None
    if args.existing:
        root = args.existing
    elif args.keep:
        root = args.keep
        if root.exists():
            shutil.rmtree(root)
    else:
        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name) / "site"
    try:
        build = float("nan")
        build_kind = "cold: every body rendered, ledger filled"
        if not args.existing:
            began = time.perf_counter()
            generate(root, args.stories)
            print(f"generated {args.stories} stories x 2 languages in {time.perf_counter() - began:.1f} s: {root}")
            build = run(root, "feeds", "build", "--all")
            print(f"full build (feeds build --all, cold: every body rendered, ledger filled): {build:.1f} s")
        figures: dict[str, float] = {}
        publishes = []
        first = len(list((root / "content").glob("new-*.en.md")))
        for n in range(first, first + args.repeat):
            path = new_article(root, n)
            publishes.append(run(root, "publish", "--channel", "feeds", str(path)))
        figures["publish one new article"] = min(publishes)
        after = run(root, "feeds", "build")   # the publishes changed the site: this build renders everything
        print(f"feeds build after the publishes (renders every page): {after:.1f} s")
        figures["rebuild, nothing changed"] = min(run(root, "feeds", "build") for _ in range(args.repeat))
        figures["publisher status"] = min(run(root, "status") for _ in range(args.repeat))
        if args.existing:
            # no cold build in this run: the build after the publishes renders and writes every page and feed
            # (a full build, warm: the body cache filled), so the share below is of a build timed in this run
            build = after
            build_kind = "warm: the feeds build after the publishes, every page rendered, body cache filled"
        floor = min(python("pass") for _ in range(args.repeat))
        startup = min(python("import publisher.cli") for _ in range(args.repeat))
        feedgen = min(feedgen_baseline(args.stories) for _ in range(args.repeat))
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"\nbaselines: python -c pass {floor:.3f} s; import publisher.cli {startup:.3f} s; feedgen writing the "
          f"RSS and Atom of 50 pre-rendered entries {feedgen:.3f} s (in process)")
    floor_plus = floor + feedgen
    print(f"\n| measure ({args.stories:,} stories x 2 languages) | today (issue 18) | now | goal | "
          f"x python -c pass | x (python -c pass + feedgen) |")
    print("|---|---|---|---|---|---|")
    for name, seconds in figures.items():
        print(f"| {name} | {TODAY[name]} | {seconds:.2f} s | <= {GOALS[name]} s | {seconds / floor:.1f}x | "
              f"{seconds / floor_plus:.1f}x |")
    print(f"| full build ({build_kind.split(':')[0]}) | {TODAY['full build (feeds build --all)']} "
          f"(cold) | {build:.1f} s | | | |")
    share = figures["publish one new article"] / build
    print(f"\npublish one = {100 * share:.1f}% of the full build measured in this run ({build_kind}; goal <= 5%)")
    ok = (figures["publish one new article"] <= GOALS["publish one new article"] and share <= 0.05
          and figures["rebuild, nothing changed"] <= GOALS["rebuild, nothing changed"])
    print(f"publish and rebuild goals: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
