"""Benchmark: cold ``publisher --help`` against a bare interpreter, measured in the same run.

Usage: python bench/startup.py [--runs 20]

Each run is a new process. Prints the median wall time of ``python -c pass`` (the baseline) and of
``python -m publisher --help``, their ratio, the extra time publisher adds, and checks with ``-X importtime``
that no heavy module (argostranslate, torch, ctranslate2, ...) is imported on that path.
Goal: at most 0.4 s for ``publisher --help`` on the project's machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("argostranslate", "torch", "ctranslate2", "sentencepiece", "stanza", "kiwipiepy", "tweepy", "atproto",
         "mastodon", "feedgen", "jinja2", "babel", "css_inline", "starlette", "uvicorn")


def timed(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def imported_modules(cmd: list[str]) -> set[str]:
    result = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, check=True)
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    python = sys.executable
    baseline_cmd = [python, "-c", "pass"]
    help_cmd = [python, "-m", "publisher", "--help"]
    timed(help_cmd, 2)  # warm the file cache, as a second invocation by a user would be
    baseline = statistics.median(timed(baseline_cmd, args.runs))
    publisher = statistics.median(timed(help_cmd, args.runs))
    heavy = sorted(imported_modules(help_cmd) & set(HEAVY))
    print(f"bare interpreter (python -c pass): {baseline * 1000:7.1f} ms (median of {args.runs})")
    print(f"publisher --help:                  {publisher * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio publisher/baseline:          {publisher / baseline:7.2f}x")
    print(f"added by publisher:                {(publisher - baseline) * 1000:7.1f} ms")
    print(f"heavy modules imported:            {', '.join(heavy) if heavy else 'none'}")
    ok = publisher <= 0.4 and not heavy
    print("goal (<= 0.4 s, no heavy imports):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
