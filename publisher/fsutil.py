"""Atomic file writes: a reader never sees half a file, a crash never leaves one."""

from __future__ import annotations

import os
from collections.abc import Iterable
import re
import tempfile
from pathlib import Path

from publisher.errors import PublisherError

# mkstemp names a temporary file ``.<target name>.<8 random characters>.tmp`` beside its target; a process
# killed between mkstemp and the rename leaves one behind, which ``sweep_temporary_files`` recognizes.
TEMP_SUFFIX = ".tmp"
TEMP_NAME = re.compile(r"\A\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + r"\Z", re.DOTALL)


def temp_prefix(path: Path) -> str:
    return f".{path.name}."


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    Only a regular file is ever replaced: renaming over a device, a folder or a symbolic link (``--out
    /dev/full`` run as root) would destroy what is there, so such a target is refused.
    """
    path = Path(path)
    if os.path.lexists(path) and (path.is_symlink() or not path.is_file()):
        raise PublisherError(f"{path}: not a regular file; refusing to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
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


def sweep_temporary_files(folder: Path | str) -> list[Path]:
    """Remove the temporary files that interrupted atomic writes left anywhere under ``folder``; return them.

    Only call it while no other process writes there (the feeds build holds its lock): a temporary file of a
    write in progress looks exactly like a stale one. Symbolic links are neither followed nor removed.
    """
    removed: list[Path] = []
    for parent, folders, names in os.walk(folder):
        for name in names:
            if not TEMP_NAME.match(name):
                continue
            candidate = Path(parent) / name
            try:
                if candidate.is_symlink() or not candidate.is_file():
                    continue
                candidate.unlink()
            except OSError as exc:
                raise PublisherError(f"{candidate}: cannot remove a stale temporary file: "
                                     f"{exc.strerror or exc}") from None
            removed.append(candidate)
    return removed


def files_signature(paths: Iterable[Path]) -> str:
    """Path, size and modification time of each of ``paths`` that exists: what a cache compares to know the
    files it was made from are unchanged."""
    parts = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        parts.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return "\n".join(parts)
