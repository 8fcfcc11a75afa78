"""Benchmark: ``publisher status`` on a ledger of 100,000 rows against ``python -c pass``, in the same run.

Usage: python bench/status.py [--articles 10000] [--runs 7] [--code DIR]

The ledger holds ``--articles`` articles x 2 languages x 5 channels (100,000 rows by default), nearly all
sent, with some failed and unconfirmed rows among the oldest articles. Each measure is a new process:
``python -c pass`` (the baseline), the default summary, ``status PATH``-like detail is not timed (it needs
content files), ``status --all`` (every article, streamed) and ``status --json`` (every row). The ledger is
written by the code measured (``--code DIR``, e.g. the main branch for the figures before), so each version
reads a database with its own indexes.
Goal (issue 18): the summary in at most 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILL = r"""
import sys
sys.path.insert(0, sys.argv[2])
from publisher.delivery import DeliveryKey
from publisher.site import Site
site = Site(sys.argv[1])
ledger = site.ledger()
articles = int(sys.argv[3])
for start in range(0, articles, 1000):
    keys = [DeliveryKey(f"{2010 + n // 1000}-story-{n:05}", lang, channel, "main")
            for n in range(start, min(start + 1000, articles)) for lang in ("en", "ko")
            for channel in ("feeds", "x", "mastodon", "bluesky", "linkedin")]
    ledger.ensure_pending(keys)
    ledger.mark_many([(k, "failed" if i % 997 == 3 and start < 2000 else
                       "unconfirmed" if i % 991 == 5 and start < 2000 else "sent",
                       None, None, "boom" if i % 997 == 3 else None, None) for i, k in enumerate(keys)])
site.close()
"""


def command(code: Path, *args: str) -> list[str]:
    boot = f"import sys, runpy; sys.path.insert(0, {str(code)!r}); sys.argv[0] = 'publisher'; " \
           "runpy.run_module('publisher', run_name='__main__')"
    return [sys.executable, "-c", boot, *args]


def timed(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir()})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run publisher from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        (site / "publisher.toml").write_text('PUBLISHER_SITE_URL = "https://www.unpog.org"\n', encoding="utf-8")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FILL, str(site), str(args.code), str(args.articles)], check=True)
        print(f"code: {args.code}")
        print(f"ledger: {args.articles * 10:,} rows ({args.articles:,} articles), written in "
              f"{time.perf_counter() - start:.1f} s")
        baseline = timed([sys.executable, "-c", "pass"], args.runs)
        helped = timed(command(args.code, "--help"), args.runs)
        summary = timed(command(args.code, "--site", str(site), "status"), args.runs)
        print(f"python -c pass:        {baseline * 1000:8.1f} ms (median of {args.runs})")
        print(f"publisher --help:      {helped * 1000:8.1f} ms  (the start-up every command pays)")
        print(f"publisher status:      {summary * 1000:8.1f} ms  ({summary / baseline:.1f}x the baseline)")
        for extra in (["--all"], ["--json"]):
            cmd = command(args.code, "--site", str(site), "status", *extra)
            try:
                took = timed(cmd, 1)
            except subprocess.CalledProcessError:
                print(f"publisher status {extra[0]}: not supported by this code")
                continue
            print(f"publisher status {extra[0]:6} {took * 1000:8.1f} ms  (one run; every article / every row)")
    ok = summary <= 0.3
    print("goal (summary <= 0.3 s):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
