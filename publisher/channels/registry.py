"""The channel registry: every channel, built-in or third-party, comes from the ``publisher.channels`` entry points.

The entry points are read once per process from the ``entry_points.txt`` of each distribution installed on
``sys.path`` (as ``importlib.metadata`` finds them, without importing it: ~13 ms of a publish); two channels
with one name fail there, at startup. A channel's module is imported when that channel is used
(``get_channel``), so a feeds-only publish imports no social network's module, and every one of them only when
a run asks for all channels (``get_channel_classes``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from publisher.errors import ChannelError, NotFound

if TYPE_CHECKING:
    from publisher.channels.base import Channel
    from publisher.site import Site

ENTRY_POINT_GROUP = "publisher.channels"
BUILTIN = ("feeds", "email", "x", "mastodon", "bluesky", "facebook", "linkedin", "threads", "telegram")

_declared: dict[str, EntryPoint] | None = None
_loaded: dict[str, type[Channel]] = {}

# importlib.metadata's reading of an entry point's value: "module", "module:attr" or "module:attr [extras]"
# (compiled when a channel is first loaded, not at import)
_TARGET = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"


@dataclass(frozen=True)
class EntryPoint:
    """One ``name = value`` line of a distribution's ``entry_points.txt`` (``importlib.metadata.EntryPoint``'s
    ``name``, ``value`` and ``load``)."""

    name: str
    value: str

    def load(self) -> Any:
        """The object the value names, its module imported now."""
        import importlib

        match = re.match(_TARGET, self.value)
        if match is None:
            raise ValueError(f"not an entry point target: {self.value!r}")
        loaded = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            loaded = getattr(loaded, attr)
        return loaded


def _group_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, from every distribution found on ``sys.path``, in its order: a
    ``*.dist-info`` or ``*.egg-info`` folder of a path folder, the first of each (normalised) name only, as
    ``importlib.metadata.entry_points`` gives them. A path entry that is a file (a zip) or a finder of
    distributions added to ``sys.meta_path`` is left to ``importlib.metadata``, imported then (a folder of
    ``sys.path`` is read as its ``MetadataPathFinder`` does: dist-info folders first, then egg-info)."""
    if any(hasattr(finder, "find_distributions") and not _is_path_finder(finder) for finder in sys.meta_path) \
            or any(os.path.isfile(entry) for entry in sys.path if entry):
        from importlib.metadata import entry_points

        return [EntryPoint(ep.name, ep.value) for ep in entry_points(group=group)]
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."), key=lambda n: (n.lower().endswith(".egg-info"), n))
        except OSError:   # a path entry that is no folder (or gone)
            continue
        for folder in names:
            stem, ext = os.path.splitext(folder)
            if ext.lower() not in (".dist-info", ".egg-info"):
                continue
            # the distribution's name as importlib.metadata normalises it: before the first "-" of the stem
            dist = re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower()
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry or ".", folder, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:   # a distribution without entry points (or a file named like a folder)
                continue
            found.extend(_parse_entry_points(text, group))
    return found


def _is_path_finder(finder: object) -> bool:
    from importlib.machinery import PathFinder   # imported at start-up already

    return finder is PathFinder


def _parse_entry_points(text: str, group: str) -> list[EntryPoint]:
    """The ``name = value`` lines of ``[group]`` in an ``entry_points.txt`` (``#`` comments skipped, as
    ``importlib.metadata`` does)."""
    points: list[EntryPoint] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group:
            name, _, value = line.partition("=")
            points.append(EntryPoint(name.strip(), value.strip()))
    return points


def declared_channels() -> dict[str, EntryPoint]:
    """Every registered channel's entry point by name, none loaded; two channels with one name fail here."""
    global _declared
    if _declared is None:
        declared: dict[str, EntryPoint] = {}
        for ep in _group_entry_points(ENTRY_POINT_GROUP):   # one scan of the installed distributions
            # the same distribution can be seen twice on sys.path (an editable install); only a different
            # target under one name is a conflict
            if ep.name in declared and declared[ep.name].value != ep.value:
                raise ChannelError(f"channel {ep.name!r} is registered twice: by {declared[ep.name].value} "
                                   f"and {ep.value}")
            declared.setdefault(ep.name, ep)
        if not declared:
            raise ChannelError("no channels are registered: is publisher installed (pip install -e .)?")
        _declared = declared
    return _declared


def channel_class(name: str) -> type[Channel]:
    """The class of the channel registered as ``name``, its module imported now (NotFound for another name)."""
    cls = _loaded.get(name)
    if cls is not None:
        return cls
    declared = declared_channels()
    ep = declared.get(name)
    if ep is None:
        raise NotFound(f"unknown channel {name!r}; known channels: {', '.join(channel_names())}")
    from publisher.channels.base import Channel

    try:
        loaded = ep.load()
    except Exception as exc:  # a broken plugin must name itself, not crash with a traceback
        raise ChannelError(f"channel {ep.name!r} ({ep.value}) cannot be loaded: {exc}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Channel)):
        raise ChannelError(f"channel {ep.name!r} ({ep.value}) is not a publisher Channel")
    if loaded.name != ep.name:
        raise ChannelError(f"channel {ep.value} is registered as {ep.name!r} but names itself {loaded.name!r}")
    _loaded[name] = loaded
    return loaded


def get_channel_classes() -> dict[str, type[Channel]]:
    """Every registered channel, loaded."""
    return {name: channel_class(name) for name in declared_channels()}


def forget_channels() -> None:
    """Forget the scan and every class loaded: the next call scans ``sys.path`` again (a plugin registered in
    a test)."""
    global _declared
    _declared = None
    _loaded.clear()


def channel_names() -> list[str]:
    """Built-in order first, then third-party channels alphabetically (no channel module imported)."""
    names = list(declared_channels())
    return [n for n in BUILTIN if n in names] + sorted(n for n in names if n not in BUILTIN)


def get_channel(name: str, site: Site) -> Channel:
    return channel_class(name)(site)
