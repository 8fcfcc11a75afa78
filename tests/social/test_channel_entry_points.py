"""Threads and Telegram are registered in pyproject.toml and listed after LinkedIn, as the built-ins are.

The installed metadata is the main checkout's until it is reinstalled, so the entry points are read from this
tree's pyproject.toml and installed here as a distribution on sys.path, the way the plugin tests do.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.channels import registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[dict[str, str]]:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    points = declared["project"]["entry-points"]["publisher.channels"]
    dist = tmp_path / "publisher_worktree-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: publisher-worktree\nVersion: 0.1\n",
                                   encoding="utf-8")
    lines = "".join(f"{name} = {target}\n" for name, target in points.items())
    (dist / "entry_points.txt").write_text(f"[publisher.channels]\n{lines}", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    registry.forget_channels()
    yield points
    sys.path.remove(str(tmp_path))
    registry.forget_channels()


def test_threads_and_telegram_are_entry_points_listed_after_linkedin(installed: dict[str, str]) -> None:
    assert installed["threads"] == "publisher.channels.threads:ThreadsChannel"
    assert installed["telegram"] == "publisher.channels.telegram:TelegramChannel"
    assert registry.channel_names()[:9] == ["feeds", "email", "x", "mastodon", "bluesky", "facebook", "linkedin",
                                            "threads", "telegram"]
    classes = registry.get_channel_classes()
    assert classes["threads"].title == "Threads" and classes["telegram"].title == "Telegram"


def test_every_new_setting_is_documented_in_env_example() -> None:
    import re

    from publisher.channels.telegram import TelegramChannel
    from publisher.channels.threads import ThreadsChannel

    documented = (ROOT / ".env.example").read_text(encoding="utf-8")
    for setting in (*ThreadsChannel.settings, *TelegramChannel.settings):
        assert setting.help.strip()
        assert re.search(rf"^# {setting.name}=", documented, re.MULTILINE), setting.name
