"""Named locks behind the store (``site.lock``): one holder at a time across threads and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from publisher.errors import LockBusy, PublisherError
from publisher.site import Site
from publisher.store.locks import lock_path

pytestmark = pytest.mark.both_databases

HOLDER = """
import sys
from publisher.site import Site
with Site(sys.argv[1]).lock(sys.argv[2], wait=False):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def test_a_lock_held_by_a_thread_refuses_without_waiting_and_hands_over_when_waiting(site: Site) -> None:
    held, release = threading.Event(), threading.Event()
    events: list[str] = []

    def first() -> None:
        with Site(site.root).lock("feeds", wait=True):
            held.set()
            release.wait(30)
            events.append("first released")

    def second() -> None:
        with Site(site.root).lock("feeds", wait=True):
            events.append("second acquired")

    holder = threading.Thread(target=first)
    holder.start()
    assert held.wait(30)
    with pytest.raises(LockBusy) as busy:
        with site.lock("feeds", wait=False):
            pass  # pragma: no cover - never entered
    assert busy.value.name == "feeds" and isinstance(busy.value, PublisherError)
    assert "\n" not in str(busy.value)
    with site.lock("email-digest-2024-06-01", wait=False):   # another name is another lock
        pass
    waiter = threading.Thread(target=second)
    waiter.start()
    release.set()
    holder.join(30)
    waiter.join(30)
    assert events == ["first released", "second acquired"]
    with site.lock("feeds", wait=False):   # free again
        pass


def test_a_lock_held_by_another_process_is_busy_and_freed_when_that_process_is_killed(site: Site) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(site.root), "email-digest"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy):
            with site.lock("email-digest", wait=False):
                pass  # pragma: no cover - never entered
        os.kill(holder.pid, signal.SIGKILL)   # a killed run never leaves the lock held
        holder.wait(30)
        with site.lock("email-digest", wait=False):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_a_waiting_process_gets_the_lock_when_the_holder_finishes(site: Site) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(site.root), "feeds"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    go_sent = threading.Event()
    seen: list[bool] = []

    def wait_for_it() -> None:
        with site.lock("feeds", wait=True):
            seen.append(go_sent.is_set())   # only once the holder was told to let go

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    with pytest.raises(LockBusy):           # still held while the waiter waits
        with Site(site.root).lock("feeds", wait=False):
            pass  # pragma: no cover - never entered
    go_sent.set()
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    holder.wait(30)
    waiter.join(30)
    assert seen == [True]


@pytest.mark.sqlite_only
def test_lock_files_live_in_the_state_folder_and_names_never_share_a_file(site: Site, tmp_path: Path) -> None:
    with site.lock("email-digest", wait=False):
        assert (site.state_dir / "locks" / "email-digest.lock").exists()
    assert lock_path(tmp_path, "a/b") != lock_path(tmp_path, "a_b")
    assert lock_path(tmp_path, "../x").parent == tmp_path
