"""Temporary: a kernel file lock (replaced by the store's lock)."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from publisher.errors import ChannelError


@contextmanager
def file_lock(path: Path, *, wait: bool, busy: str) -> Iterator[None]:
    path = path.with_name(re.sub(r"[^A-Za-z0-9._-]", "_", path.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ChannelError(busy or f"{path.stem}: another run holds this lock") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
