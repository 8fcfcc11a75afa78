"""Every setting by name, core and channel alike: the one place ``find_setting`` and ``all_settings`` look.

Apart from ``publisher.settings`` (which declares the core settings and imports nothing of publisher), so that
a channel module can import ``Setting`` while this module imports the channel registry: no import cycle.
"""

from __future__ import annotations

from publisher.settings import CORE_SETTINGS, Setting

_CORE_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in CORE_SETTINGS}


def all_settings() -> list[Setting]:
    """Core settings, then each registered channel's (in the registry's order), each name once."""
    return list(_by_name().values())


def find_setting(name: str) -> Setting | None:
    """The declared setting called ``name``, core or channel, or None for a name nobody declares."""
    core = _CORE_BY_NAME.get(name)
    if core is not None:
        return core   # the common case needs no channel loaded
    return _by_name().get(name)


def _by_name() -> dict[str, Setting]:
    # Not cached here: the channel registry caches its classes, and clearing its cache (a plugin
    # registered in a test) must be enough.
    from publisher.channels.registry import channel_names, get_channel_classes

    seen = dict(_CORE_BY_NAME)
    classes = get_channel_classes()
    for channel in channel_names():
        for setting in classes[channel].settings:
            seen.setdefault(setting.name, setting)
    return seen

