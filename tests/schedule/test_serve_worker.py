"""``publisher serve --worker``: one process serves the site and runs the jobs; SIGTERM stops both, exit 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx

from publisher.scheduler import schedule_publish
from publisher.site import Site

SLUG = "2025-public-service-day"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_the_worker_runs_a_due_job_and_stops_on_sigterm(site: Site) -> None:
    job, _ = schedule_publish(site, [f"content/{SLUG}.en.md"], datetime.now(timezone.utc) + timedelta(seconds=1),
                              channels=["feeds"], langs=["en"])
    site.close()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "publisher", "--site", str(site.root), "serve", "--worker",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 60
        state = "pending"
        while state != "done":
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the job never ran"
            time.sleep(0.1)
            found = Site(site.root)
            state = found.store().jobs.get(job.id).state   # type: ignore[union-attr]
            found.close()
        answer = httpx.get(f"http://127.0.0.1:{port}/en/rss.xml", timeout=10)
        assert answer.status_code == 200 and SLUG in answer.text
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, out + err
