"""The channel registry: every channel, built-in or third-party, comes from the ``publisher.channels`` entry points.

The entry points are scanned once per process (two channels with one name fail there, at startup); a channel's
module is imported when that channel is used (``get_channel``), so a feeds-only publish imports no social
network's module, and every one of them only when a run asks for all channels (``get_channel_classes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from publisher.errors import ChannelError, NotFound

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from publisher.channels.base import Channel
    from publisher.site import Site

ENTRY_POINT_GROUP = "publisher.channels"
BUILTIN = ("feeds", "email", "x", "mastodon", "bluesky", "facebook", "linkedin", "threads", "telegram")

_declared: dict[str, EntryPoint] | None = None
_loaded: dict[str, type[Channel]] = {}


def declared_channels() -> dict[str, EntryPoint]:
    """Every registered channel's entry point by name, none loaded; two channels with one name fail here."""
    global _declared
    if _declared is None:
        from importlib.metadata import entry_points

        declared: dict[str, EntryPoint] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):   # one scan of the installed distributions (~10 ms)
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
