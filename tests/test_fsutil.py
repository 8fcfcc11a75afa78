"""Atomic writes replace only regular files: never a device, a folder or a symbolic link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from publisher.errors import PublisherError
from publisher.fsutil import atomic_write_text


def test_a_regular_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"


def test_a_special_file_is_never_replaced(tmp_path: Path) -> None:
    """`subscribers export --out /dev/full` run as root used to rename a regular file over the device. A FIFO
    stands for the device here: a test must never risk the machine's own /dev."""
    fifo = tmp_path / "device"
    os.mkfifo(fifo)
    with pytest.raises(PublisherError, match="device: not a regular file"):
        atomic_write_text(fifo, "email,name\n")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_folder_or_a_symbolic_link_is_never_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(outside)
    for target in (folder, link):
        with pytest.raises(PublisherError, match="not a regular file"):
            atomic_write_text(target, "x")
    assert folder.is_dir() and link.is_symlink() and outside.read_text(encoding="utf-8") == "keep"


def test_the_command_line_says_so_in_one_line(cli: object, tmp_path: Path) -> None:
    fifo = tmp_path / "device"
    os.mkfifo(fifo)
    result = cli("subscribers", "export", "--out", str(fifo))  # type: ignore[operator]
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"Error: {fifo}: not a regular file; refusing to replace it"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
