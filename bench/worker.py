"""Benchmark: the worker's overhead, from a job's due time to its first message on the wire, and its idle CPU,
each with a ratio against a baseline measured in the same run.

Usage: python bench/worker.py [--jobs 10] [--spacing 1.5] [--subscribers 20] [--idle 30]

A temporary copy of the sample site sends through a local aiosmtpd server.

1. Baseline delay: ``--jobs`` articles are published by ``publisher.pipeline.publish`` called in this process at
   each one's due time (``--spacing`` seconds apart): the pipeline's own cost from "go" to the first message,
   with no scheduling at all.
2. Worker delay: ``--jobs`` other articles are each scheduled (``publisher publish --at`` semantics, one job
   each) at the same spacing, starting a few seconds ahead; the real ``publisher worker`` process (polling every
   2 s) runs them. For each job the delay is the time the server received the first message of that article
   minus the job's due time. Reported as median and p95, and as a ratio to the baseline's.
3. Idle CPU: the worker then sits idle for ``--idle`` seconds beside a baseline process: a bare loop that polls
   the same jobs table with sqlite3 every 2 s (the least a polling worker can do). Both processes' CPU time over
   that window (from /proc's schedstat, in nanoseconds) is reported as a share of one core, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)   # bench/email.py must not hide the stdlib's email

from email import message_from_bytes, policy  # noqa: E402

from publisher.scheduler import schedule_publish  # noqa: E402
from publisher.site import Site  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class FirstArrival:
    """aiosmtpd handler: the wall time the first message with each subject arrived."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        subject = str(message_from_bytes(envelope.original_content or b"", policy=policy.default)["Subject"])
        with self.lock:
            self.first.setdefault(subject, now)
        return "250 2.0.0 OK"


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, all its threads: each thread's /proc/<pid>/task/<tid>/schedstat (nanoseconds
    on the CPU), else /proc/<pid>/stat (user + system, in 10 ms ticks: too coarse for an idle process)."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks.iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--spacing", type=float, default=1.5)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--idle", type=float, default=30.0)
    options = parser.parse_args()

    from aiosmtpd.controller import Controller

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = FirstArrival()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        shutil.copytree(ROOT / "examples" / "unpog", root,
                        ignore=shutil.ignore_patterns("public", "outbox", ".publisher", ".env"))
        toml = root / "publisher.toml"
        kept = [line for line in toml.read_text(encoding="utf-8").splitlines()
                if not line.startswith("PUBLISHER_SITE_URL")]
        toml.write_text("\n".join(kept) + f'\nSMTP_HOST = "127.0.0.1"\nSMTP_PORT = "{port}"\nSMTP_SECURITY = "none"\n'
                        'BULLETIN_FROM = "Bench <bench@example.org>"\nPUBLISHER_SITE_URL = "https://news.example.org"\n',
                        encoding="utf-8")
        (root / ".env").write_text("PUBLISHER_SECRET_KEY=bench-secret\n", encoding="utf-8")
        site = Site(root)
        with site.store().transaction():
            for i in range(options.subscribers):
                site.subscribers().add(f"reader{i:03d}@example.org", lang="en")
        baseline_paths: dict[str, Path] = {}
        for i in range(options.jobs):   # every article is written first: both phases load the same content
            for kind in ("Bench job", "Bench direct"):
                title = f"{kind} {i:03d}"
                path = root / "content" / f"{kind.lower().replace(' ', '-')}-{i:03d}.en.md"
                path.write_text(f"---\ntitle: {title}\ndate: 2026-12-01T09:00:00+09:00\n---\n\nBody {i}.\n",
                                encoding="utf-8")
                if kind == "Bench direct":
                    baseline_paths[title] = path
        site.close()
        baseline_due = baseline(root, baseline_paths, options.spacing)
        baseline_delays = delays_of(handler, baseline_due)

        site = Site(root)
        start = datetime.now(timezone.utc) + timedelta(seconds=4)
        due: dict[str, float] = {}
        for i in range(options.jobs):
            title = f"Bench job {i:03d}"
            when = start + timedelta(seconds=i * options.spacing)
            schedule_publish(site, [f"content/bench-job-{i:03d}.en.md"], when, channels=["email"], langs=["en"])
            due[title] = when.timestamp()
        database = site.state_dir / "publisher.db"
        site.close()

        worker = subprocess.Popen([sys.executable, "-m", "publisher", "--site", str(root), "worker"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60 + options.jobs * options.spacing
            while time.time() < deadline:
                with handler.lock:
                    seen = {title for title in due if any(title in subject for subject in handler.first)}
                if seen == set(due):
                    break
                time.sleep(0.05)
            time.sleep(1.0)   # the last job's marks
            poller = subprocess.Popen([sys.executable, "-c", BARE_POLLER, str(database)])
            time.sleep(1.0)   # its start-up (imports) is not idle time
            before, base_before, t0 = cpu_seconds(worker.pid), cpu_seconds(poller.pid), time.monotonic()
            time.sleep(options.idle)
            idle_used, base_used = cpu_seconds(worker.pid) - before, cpu_seconds(poller.pid) - base_before
            window = time.monotonic() - t0
            poller.terminate()
            poller.wait(timeout=60)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            controller.stop()

    delays = delays_of(handler, due)
    if not delays or not baseline_delays:
        raise SystemExit("no message arrived")
    precise = Path("/proc/self/task").is_dir() and Path(f"/proc/self/task/{os.getpid()}/schedstat").is_file()
    tick = 1000 / os.sysconf("SC_CLK_TCK")
    unit = "schedstat, nanoseconds" if precise else f"/proc/<pid>/stat, {tick:.0f} ms ticks"
    median, base_median = statistics.median(delays), statistics.median(baseline_delays)
    print(f"jobs: {len(delays)}/{options.jobs} sent by the worker, {len(baseline_delays)}/{options.jobs} by the "
          f"baseline, {options.subscribers} subscribers each")
    print(f"due -> first message on the wire, worker:   median {median * 1000:.0f} ms, "
          f"p95 {p95(delays) * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")
    print(f"due -> first message on the wire, baseline: median {base_median * 1000:.0f} ms, "
          f"p95 {p95(baseline_delays) * 1000:.0f} ms (pipeline.publish called at the due time, in-process)")
    print(f"ratio worker/baseline: median {median / base_median:.2f}, p95 {p95(delays) / p95(baseline_delays):.2f}")
    ratio = f"{idle_used / base_used:.1f}" if base_used > 0 else "n/a (the baseline used no measurable CPU)"
    print(f"idle CPU over {window:.0f} s, worker:   {idle_used * 1000:.1f} ms of CPU, "
          f"{idle_used / window * 100:.3f} % of one core (poll every 2 s)")
    print(f"idle CPU over {window:.0f} s, baseline: {base_used * 1000:.1f} ms of CPU, "
          f"{base_used / window * 100:.3f} % of one core (a bare sqlite3 loop on the jobs table, every 2 s)")
    print(f"ratio worker/baseline idle CPU: {ratio} (measured with {unit})")


# The least a polling worker does: ask the jobs table for the next due time every 2 s.
BARE_POLLER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
while True:
    conn.execute("SELECT MIN(due_at) FROM jobs WHERE state = 'pending'").fetchone()
    time.sleep(2.0)
"""


def baseline(root: Path, paths: dict[str, Path], spacing: float) -> dict[str, float]:
    """Publish each article with ``pipeline.publish`` at its due time, in this process; the due times."""
    from publisher import pipeline

    site = Site(root)
    start = time.time() + 3.0
    due = {}
    try:
        for i, (title, path) in enumerate(sorted(paths.items())):
            when = start + i * spacing
            time.sleep(max(when - time.time(), 0.0))
            due[title] = when
            pipeline.publish(site, [path], channels=["email"], langs=["en"])
    finally:
        site.close()
    return due


def delays_of(handler: FirstArrival, due: dict[str, float]) -> list[float]:
    """For each title, when its first message arrived minus when it was due, sorted."""
    found = []
    with handler.lock:
        for title, when in due.items():
            arrived = min((t for subject, t in handler.first.items() if title in subject), default=None)
            if arrived is not None:
                found.append(arrived - when)
    return sorted(found)


def p95(values: list[float]) -> float:
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


if __name__ == "__main__":
    main()
