"""The channel registry: every channel, built-in or third-party, comes from the ``publisher.channels`` entry points."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from publisher.errors import ChannelError, NotFound

if TYPE_CHECKING:
    from publisher.channels.base import Channel
    from publisher.site import Site

ENTRY_POINT_GROUP = "publisher.channels"


@lru_cache(maxsize=1)
def get_channel_classes() -> dict[str, type[Channel]]:
    """Load every registered channel; two channels with one name fail here, at startup."""
    from importlib.metadata import entry_points

    from publisher.channels.base import Channel

    declared: dict[str, str] = {}
    points = list(entry_points(group=ENTRY_POINT_GROUP))   # one scan of the installed distributions (~10 ms)
    for ep in points:
        # the same distribution can be seen twice on sys.path (an editable install); only a different
        # target under one name is a conflict
        if ep.name in declared and declared[ep.name] != ep.value:
            raise ChannelError(f"channel {ep.name!r} is registered twice: by {declared[ep.name]} and {ep.value}")
        declared[ep.name] = ep.value
    classes: dict[str, type[Channel]] = {}
    for ep in points:
        if ep.name in classes:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must name itself, not crash with a traceback
            raise ChannelError(f"channel {ep.name!r} ({ep.value}) cannot be loaded: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ChannelError(f"channel {ep.name!r} ({ep.value}) is not a publisher Channel")
        if cls.name != ep.name:
            raise ChannelError(f"channel {ep.value} is registered as {ep.name!r} but names itself {cls.name!r}")
        classes[ep.name] = cls
    if not classes:
        raise ChannelError("no channels are registered: is publisher installed (pip install -e .)?")
    return classes


def channel_names() -> list[str]:
    """Built-in order first, then third-party channels alphabetically."""
    builtin = ["feeds", "email", "x", "mastodon", "bluesky", "facebook", "linkedin", "threads", "telegram"]
    names = list(get_channel_classes())
    return [n for n in builtin if n in names] + sorted(n for n in names if n not in builtin)


def get_channel(name: str, site: Site) -> Channel:
    classes = get_channel_classes()
    if name not in classes:
        raise NotFound(f"unknown channel {name!r}; known channels: {', '.join(channel_names())}")
    return classes[name](site)
