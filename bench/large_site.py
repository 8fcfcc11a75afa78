"""Benchmark: a generated site of 10,000 stories x 2 languages; publishing ONE new article into it, a rebuild with
nothing changed and ``publisher status``, each against baselines measured in the same run.

Usage: python bench/large_site.py [--stories 10000] [--repeat 3] [--keep DIR | --existing DIR] [--no-compile]

The site (deterministic: the same seed, the same files) is written to a temporary folder as content files
(``content/story-NNNNN.{en,ko}.md``, dated an hour ago, as an archive of years is), then published to the feeds
in full (``publisher feeds build --all``: 20,000 versions x 5 feed paths, a ledger of 100,000 rows). That
first build (cold: every body rendered, the ledger filled) is timed too; then, each as its own process, as a
person runs them:
- ``publisher publish --channel feeds content/new-N.en.md``: one new article (goal <= 1.0 s, <= 5% of a full build);
- ``publisher feeds build``: a rebuild with nothing changed (goal <= 0.5 s);
- ``publisher status`` (goal <= 0.3 s).
``--existing DIR`` times a site an earlier ``--keep DIR`` run left, in place (each run adds its new articles:
time a copy, ``cp -a``, to compare two trees from the same start). No cold build is made then: its share is
given against the issue's 49.8 s.

Bytecode: ``pip install`` (not editable) compiles every module of the package, so an installed ``publisher``
never compiles one when it runs. A source checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (set in some
environments) and no ``__pycache__`` compiles each module it imports, every run (~50 modules, ~0.1 s). The
bench first times the publishes as this checkout is (without bytecode, when it has none), then compiles the
package (``compileall``, as pip does; the ``__pycache__`` folders it made are removed at the end) and times
everything as installed. ``--no-compile`` skips that and times the checkout as it is.

Every figure is the best of ``--repeat`` wall times, with the CPU time (user + system) of the same process.
The publish's share is given of the cold full build and of a warm one (the ``feeds build`` after the
publishes, which renders and writes every page and feed again, the body cache filled), each labelled.
Baselines, same run: ``python -c pass`` (a process's floor), ``python -c "import publisher.cli"`` (this
package's start-up), and feedgen writing the RSS and Atom feeds that publishing one article rewrites (the
language's 50 newest entries, bodies pre-rendered): the least work a publish can do. Exit status 1 if the
publish or rebuild goal is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
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


class Timed(tuple[float, float]):
    """(wall seconds, CPU seconds: user + system of the child process)."""

    @property
    def wall(self) -> float:
        return self[0]

    @property
    def cpu(self) -> float:
        return self[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(root: Path, *args: str) -> Timed:
    """Wall and CPU seconds of ``publisher --site ROOT ARGS`` as its own process; a failure stops the bench."""
    cpu = _children_cpu()
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "publisher", "--site", str(root), *args],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, cwd=PROJECT)
    seconds = time.perf_counter() - began
    if done.returncode not in (0,):
        raise SystemExit(f"publisher {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return Timed((seconds, _children_cpu() - cpu))


def python(code: str) -> Timed:
    cpu = _children_cpu()
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT)
    return Timed((time.perf_counter() - began, _children_cpu() - cpu))


def best(times: list[Timed]) -> Timed:
    """The fastest wall time of a few runs, with its own CPU time."""
    return min(times)


def compile_package() -> list[Path]:
    """Compile every module of the package as ``pip install`` does; the ``__pycache__`` folders made here."""
    package = PROJECT / "publisher"
    before = {folder for folder in package.rglob("__pycache__")}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, cwd=PROJECT)
    return sorted(folder for folder in package.rglob("__pycache__") if folder not in before)


def has_bytecode() -> bool:
    return (PROJECT / "publisher" / "__pycache__").is_dir()


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
    parser.add_argument("--no-compile", action="store_true",
                        help="time this checkout as it is (no bytecode compiled first, as pip install would)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"PYTHONDONTWRITEBYTECODE={'set' if sys.flags.dont_write_bytecode else 'not set'}")
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
    compiled: list[Path] = []
    try:
        cold: Timed | None = None
        if not args.existing:
            began = time.perf_counter()
            generate(root, args.stories)
            print(f"generated {args.stories} stories x 2 languages in {time.perf_counter() - began:.1f} s: {root}")
            cold = run(root, "feeds", "build", "--all")
            print(f"full build (feeds build --all, cold: every body rendered, ledger filled): {cold.wall:.1f} s "
                  f"(CPU {cold.cpu:.1f} s)")
        figures: dict[str, Timed] = {}
        first = len(list((root / "content").glob("new-*.en.md")))
        count = iter(range(first, first + 4 * args.repeat))

        def publishes() -> Timed:
            return best([run(root, "publish", "--channel", "feeds", str(new_article(root, next(count))))
                         for _ in range(args.repeat)])
        uncompiled = None
        if not args.no_compile:
            if not has_bytecode() and sys.flags.dont_write_bytecode:
                uncompiled = publishes()   # as this checkout runs: every module compiled, every run
            compiled = compile_package()
        figures["publish one new article"] = publishes()
        after = run(root, "feeds", "build")   # the publishes changed the site: this build renders everything
        print(f"feeds build after the publishes (warm full build: every page and feed rendered and written, "
              f"the body cache filled): {after.wall:.1f} s (CPU {after.cpu:.1f} s)")
        figures["rebuild, nothing changed"] = best([run(root, "feeds", "build") for _ in range(args.repeat)])
        figures["publisher status"] = best([run(root, "status") for _ in range(args.repeat)])
        floor = best([python("pass") for _ in range(args.repeat)])
        startup = best([python("import publisher.cli") for _ in range(args.repeat)])
        feedgen = min(feedgen_baseline(args.stories) for _ in range(args.repeat))
    finally:
        for folder in compiled:   # the checkout as it was
            shutil.rmtree(folder, ignore_errors=True)
        if tmp is not None:
            tmp.cleanup()
    how = ("as installed: the package compiled to bytecode first, as pip install does" if compiled or has_bytecode()
           else "this checkout as it is, no bytecode")
    print(f"\nbaselines: python -c pass {floor.wall:.3f} s; import publisher.cli {startup.wall:.3f} s; feedgen "
          f"writing the RSS and Atom of 50 pre-rendered entries {feedgen:.3f} s (in process)")
    print(f"publisher runs timed {how}")
    floor_plus = floor.wall + feedgen
    print(f"\n| measure ({args.stories:,} stories x 2 languages) | today (issue 18) | now (wall) | CPU | goal | "
          f"x python -c pass | x (python -c pass + feedgen) |")
    print("|---|---|---|---|---|---|---|")
    for name, timed in figures.items():
        print(f"| {name} | {TODAY[name]} | {timed.wall:.2f} s | {timed.cpu:.2f} s | <= {GOALS[name]} s | "
              f"{timed.wall / floor.wall:.1f}x | {timed.wall / floor_plus:.1f}x |")
    if uncompiled is not None:
        print(f"| publish one new article, this checkout without bytecode (PYTHONDONTWRITEBYTECODE=1: every module "
              f"compiled every run) | | {uncompiled.wall:.2f} s | {uncompiled.cpu:.2f} s | | | |")
    cold_text = f"{cold.wall:.1f} s" if cold is not None else "not run (--existing)"
    print(f"| full build, cold (feeds build --all) | {TODAY['full build (feeds build --all)']} | {cold_text} | "
          f"{f'{cold.cpu:.1f} s' if cold is not None else ''} | | | |")
    print(f"| full build, warm (feeds build after the publishes) | 15.4 s | {after.wall:.1f} s | {after.cpu:.1f} s "
          f"| | | |")
    publish = figures["publish one new article"]
    if cold is not None:
        share = publish.wall / cold.wall
        print(f"\npublish one = {100 * share:.1f}% of the cold full build of this run (feeds build --all: every "
              f"body rendered, the ledger filled; the issue's \"full build\", 49.8 s; goal <= 5%)")
    else:
        share = publish.wall / 49.8
        print(f"\npublish one = {100 * share:.1f}% of the issue's cold full build, 49.8 s (none in this run: "
              f"--existing; goal <= 5%)")
    print(f"publish one = {100 * publish.wall / after.wall:.1f}% of the warm full build of this run (feeds build "
          f"after the publishes: every page and feed rendered and written, the body cache filled)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = (publish.wall <= GOALS["publish one new article"] and share <= 0.05
          and figures["rebuild, nothing changed"].wall <= GOALS["rebuild, nothing changed"])
    print(f"publish and rebuild goals: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
