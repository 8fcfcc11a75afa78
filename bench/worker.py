"""Benchmark: the worker's overhead, from a job's due time to its first message on the wire, and its idle CPU.

Usage: python bench/worker.py [--jobs 10] [--spacing 1.5] [--subscribers 20] [--idle 20]

A temporary copy of the sample site sends through a local aiosmtpd server. ``--jobs`` articles are each
scheduled (``publisher publish --at`` semantics, one job each) ``--spacing`` seconds apart, starting a few seconds
ahead; the real ``publisher worker`` process (default ``--poll 2``) runs them. For each job the delay is the
time the server received the first message of that article minus the job's due time. Then the worker sits idle
for ``--idle`` seconds and its CPU time over that window (from /proc) is reported as a share of one core.
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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--spacing", type=float, default=1.5)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--idle", type=float, default=20.0)
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
        start = datetime.now(timezone.utc) + timedelta(seconds=4)
        due: dict[str, float] = {}
        for i in range(options.jobs):
            title = f"Bench job {i:03d}"
            path = root / "content" / f"bench-job-{i:03d}.en.md"
            path.write_text(f"---\ntitle: {title}\ndate: 2026-12-01T09:00:00+09:00\n---\n\nBody {i}.\n",
                            encoding="utf-8")
            when = start + timedelta(seconds=i * options.spacing)
            schedule_publish(site, [f"content/{path.name}"], when, channels=["email"], langs=["en"])
            due[title] = when.timestamp()
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
            before, t0 = cpu_seconds(worker.pid), time.monotonic()
            time.sleep(options.idle)
            idle_used = cpu_seconds(worker.pid) - before
            idle_cpu = idle_used / (time.monotonic() - t0)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            controller.stop()

    delays = []
    for title, when in due.items():
        arrived = min((t for subject, t in handler.first.items() if title in subject), default=None)
        if arrived is not None:
            delays.append(arrived - when)
    if not delays:
        raise SystemExit("no message arrived")
    delays.sort()
    p95 = delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))]
    print(f"jobs: {len(delays)}/{options.jobs} sent, {options.subscribers} subscribers each")
    print(f"due -> first message on the wire: median {statistics.median(delays) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")
    print(f"idle CPU over {options.idle:.0f} s: {idle_used * 1000:.0f} ms of CPU, {idle_cpu * 100:.2f} % of one core "
          f"(poll every 2 s; /proc counts in {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms ticks)")


if __name__ == "__main__":
    main()
