"""A feeds build killed mid-write (``kill -9``): the next build sweeps its temporary file, and none is ever served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from publisher.fsutil import TEMP_NAME, atomic_write_text, sweep_temporary_files
from publisher.site import Site
from tests.conftest import ROOT
from tests.web.conftest import make_client

# The child builds the feeds and, once the first temporary file under public/ is written and synced, says
# "ready" and waits: the parent kills it right there, between mkstemp and the rename.
CHILD = """
import os, sys
from publisher.pipeline import build_feeds
from publisher.site import Site

real_replace = os.replace
def replace(source, target):
    if os.sep + "public" + os.sep in os.fspath(target):
        print("ready", os.fspath(source), flush=True)
        sys.stdin.read()
    real_replace(source, target)
os.replace = replace
build_feeds(Site(sys.argv[1]), include_unpublished=True)
"""


def temporary_files(public: Path) -> list[Path]:
    return sorted(path for path in public.rglob("*") if TEMP_NAME.match(path.name))


def kill_a_build_mid_write(site: Site) -> Path:
    """Run a feeds build in a child process and ``kill -9`` it while a temporary file exists; return that file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(site.root)], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()   # blocks until the child is inside the write
        assert line.startswith("ready "), child.communicate()[1]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return Path(line.split(" ", 1)[1].strip())


def test_a_build_killed_with_kill_9_leaves_a_temporary_file_that_the_next_build_removes(site: Site) -> None:
    from publisher.pipeline import build_feeds

    left = kill_a_build_mid_write(site)
    assert temporary_files(site.public_dir) == [left]
    assert left.name.startswith(".") and left.is_relative_to(site.public_dir)

    # Served? Never, before or after the sweep.
    relative = left.relative_to(site.public_dir).as_posix()
    with make_client(site) as client:
        assert client.get("/" + relative).status_code == 404

    build_feeds(site)
    assert temporary_files(site.public_dir) == []
    assert (site.public_dir / "en" / "rss.xml").is_file()


def test_the_sweep_removes_only_what_atomic_writes_leave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = tmp_path / "en" / "rss.xml"
    monkeypatch.setattr(os, "replace", lambda source, target: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):   # like a kill: the except OSError cleanup does not run
        atomic_write_text(written, "<rss/>")
    monkeypatch.undo()
    [stale] = temporary_files(tmp_path)
    kept = [tmp_path / ".well-known" / "security.txt", tmp_path / "en" / "notes.tmp", tmp_path / ".hidden.tmp",
            tmp_path / "en" / ".rss.xml.short.tmp"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    target = outside / ".x.abcdefgh.tmp"
    target.write_text("not under the folder")
    (tmp_path / ".y.abcdefgh.tmp").symlink_to(target)

    assert sweep_temporary_files(tmp_path) == [stale]
    assert not stale.exists()
    assert all(path.read_text() == "mine" for path in kept)
    assert target.read_text() == "not under the folder"
