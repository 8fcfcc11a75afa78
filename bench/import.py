"""Benchmark: ``subscribers import`` of a large CSV file against a streaming baseline, in the same run.

Usage: python bench/import.py [--rows 200000 1000000] [--domains 97] [--code DIR]

Each measure is a new process, so its peak memory (VmHWM, the resident set's high-water mark) is its own. The
baseline reads the same file with the csv module a line at a time and validates every address with
email-validator (syntax only), keeping nothing: the least any import must do. The import is
``Subscribers.import_csv`` into a new site's database. The file has 1% bad addresses and 1% repeated ones, at
``--domains`` domains (97 by default: a list holds many addresses at a few domains). The import checks each distinct
domain once (email-validator's domain check, kept per domain) where the baseline checks it for every address;
``--domains`` as large as ``--rows`` gives every address a domain of its own, the case where that gains nothing.
``--code DIR`` imports ``publisher`` from another checkout (e.g. the main branch, for the figures before).
Goal (issue 18): at most 80 MB peak for 1,000,000 rows, in at most 1.2x the baseline's time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASELINE = r"""
import csv, sys, time
from email_validator import EmailNotValidError, validate_email
start = time.perf_counter()
good = bad = 0
with open(sys.argv[1], encoding="utf-8-sig", newline="") as handle:
    reader = csv.reader(handle)
    next(reader)
    for cells in reader:
        try:
            validate_email(cells[0], check_deliverability=False)
            good += 1
        except EmailNotValidError:
            bad += 1
elapsed = time.perf_counter() - start
"""

IMPORT = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from publisher.site import Site
site = Site(sys.argv[2])
subscribers = site.subscribers()
subscribers.count()   # the database made and migrated before the clock starts: the baseline has none
start = time.perf_counter()
report = subscribers.import_csv(sys.argv[1])
elapsed = time.perf_counter() - start
good, bad = report.added, len(report.rejected)
"""

REPORT = r"""
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(elapsed, peak, good, bad)
"""


def write_csv(path: Path, rows: int, domains: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,language\n")
        for n in range(rows):
            if n % 100 == 7:
                out.write(f"not-an-address-{n},Nobody,en\n")
            elif n % 100 == 13:
                out.write(f"Reader{n - 1}@agency{(n - 1) % domains}.go.kr,Again,en\n")   # the row before, repeated
            else:
                out.write(f"reader{n}@agency{n % domains}.go.kr,Reader {n},{'ko' if n % 3 else 'en'}\n")


def run(code: str, *args: str) -> tuple[float, int, int, int]:
    result = subprocess.run([sys.executable, "-c", code + REPORT, *args], capture_output=True, text=True,
                            check=False)
    if result.returncode:
        raise SystemExit(result.stderr)
    elapsed, peak, good, bad = result.stdout.split()
    return float(elapsed), int(peak), int(good), int(bad)


def site(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "publisher.toml").write_text('PUBLISHER_SITE_URL = "https://www.unpog.org"\n', encoding="utf-8")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--domains", type=int, default=97, help="how many domains the addresses are at")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to import publisher from")
    args = parser.parse_args()
    ok = True
    print(f"code: {args.code}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "subscribers.csv"
            write_csv(path, rows, args.domains)
            size = path.stat().st_size / 1e6
            base_time, base_peak, _, base_bad = run(BASELINE, str(path))
            time_, peak, added, rejected = run(IMPORT, str(path), str(site(Path(tmp) / "site")), str(args.code))
        print(f"{rows:>9,} rows at {min(args.domains, rows):,} domains ({size:.1f} MB):")
        print(f"  baseline (csv + email-validator): {base_time:7.2f} s  peak {base_peak / 1024:6.1f} MB "
              f"({base_bad:,} invalid)")
        print(f"  subscribers import:               {time_:7.2f} s  peak {peak / 1024:6.1f} MB "
              f"({added:,} added, {rejected:,} rejected)")
        print(f"  time ratio import/baseline:       {time_ / base_time:7.2f}x   "
              f"peak above baseline: {(peak - base_peak) / 1024:.1f} MB")
        ok = ok and time_ <= 1.2 * base_time and peak <= 80 * 1024
    print("goal (<= 80 MB peak, <= 1.2x the baseline's time):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
