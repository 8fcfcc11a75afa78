"""Atomic file writes: a reader never sees half a file, a crash never leaves one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from publisher.errors import PublisherError


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PublisherError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PublisherError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path


def atomic_write_text(path: Path | str, text: str, *, mode: int = 0o644) -> Path:
    """Write ``text`` as UTF-8, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def write_if_changed(path: Path | str, data: bytes) -> bool:
    """Write atomically unless the file already holds exactly ``data``; return whether it was written."""
    path = Path(path)
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write_bytes(path, data)
    return True
