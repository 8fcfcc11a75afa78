"""Named locks across processes, as files in ``.publisher/locks/`` held with the ``filelock`` package."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from publisher.errors import LockBusy

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def lock_path(folder: Path, name: str) -> Path:
    """The file of lock ``name``: the name itself when it is a safe file name, else a safe form plus a short
    hash, so two names never share a file."""
    safe = _UNSAFE.sub("_", name)
    if safe != name or not name:
        safe += "-" + hashlib.blake2b(name.encode("utf-8"), digest_size=4).hexdigest()
    return folder / f"{safe}.lock"


@contextmanager
def file_lock(folder: Path, name: str, *, wait: bool) -> Iterator[None]:
    """Hold lock ``name`` while the block runs; ``wait`` false raises ``LockBusy`` at once when it is held.

    The lock is the operating system's (``flock`` on POSIX), taken on a file opened for this call alone: a
    killed process never leaves it held, and two threads of one process exclude each other too.
    """
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(folder, name), thread_local=False)
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise LockBusy(name) from None
    try:
        yield
    finally:
        lock.release()
