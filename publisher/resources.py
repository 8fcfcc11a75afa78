"""Where the packaged templates and UI strings are: inside the wheel, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    bundled = _PACKAGE / "_data" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


def templates_dir() -> Path:
    return _data_dir("templates")


def locales_dir() -> Path:
    return _data_dir("locales")
