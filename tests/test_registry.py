"""Channels come from entry points: a third-party channel plugs in the way the built-ins do."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from publisher.channels import registry
from publisher.errors import ChannelError

PIGEON = textwrap.dedent('''
    """A third-party channel used by the tests: writes each post to outbox/pigeon/. It renders and sends;
    the pipeline claims and marks each delivery, so the channel never sees the ledger."""
    from publisher.channels.base import Channel
    from publisher.channels.outbox import write_json_outbox
    from publisher.delivery import Outcome, Rendition
    from publisher.settings import Setting


    class PigeonChannel(Channel):
        name = "pigeon"
        title = "Carrier pigeon"
        settings = (Setting("PIGEON_LOFT", "Where the pigeons live."),)
        required = ("PIGEON_LOFT",)

        def render(self, story, langs):
            return [Rendition(self.name, lang, "loft", "note.txt", story.get(lang).title) for lang in langs]

        def send(self, attempt, ctx):
            rendition = attempt.rendition
            path = write_json_outbox(self.site, self.name, f"{attempt.key.article}.{rendition.lang}",
                                     {"lang": rendition.lang, "text": rendition.content})
            return Outcome.sent(remote_url=str(path))
''')


def install_plugin(tmp_path: Path, entry_points: str) -> None:
    (tmp_path / "pigeon_channel.py").write_text(PIGEON, encoding="utf-8")
    dist = tmp_path / "publisher_pigeon-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: publisher-pigeon\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[publisher.channels]\n{entry_points}\n", encoding="utf-8")


@pytest.fixture
def plugin_path(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "plugins"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    registry.forget_channels()
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("pigeon_channel", None)
    registry.forget_channels()


def test_builtin_channels_are_registered_through_entry_points() -> None:
    assert registry.channel_names()[:7] == ["feeds", "email", "x", "mastodon", "bluesky", "facebook", "linkedin"]


def test_a_third_party_channel_publishes_like_a_builtin(plugin_path: Path, cli: Callable[..., Result]) -> None:
    install_plugin(plugin_path, "pigeon = pigeon_channel:PigeonChannel")
    assert "pigeon" in registry.channel_names()
    result = cli("publish", "content/2024-unpsf-incheon.en.md", "--channel", "pigeon")
    assert result.exit_code == 0, result.output
    assert "pigeon: not configured" in result.output  # PIGEON_LOFT is missing: a local fallback, said aloud
    written = json.loads((plugin_path.parent / "site" / "outbox" / "pigeon" / "2024-unpsf-incheon.en.json")
                         .read_text(encoding="utf-8"))
    assert written["lang"] == "en" and written["text"].startswith("Empowering Global Public Administration")
    again = cli("publish", "content/2024-unpsf-incheon.en.md", "--channel", "pigeon")
    assert again.exit_code == 0 and "nothing new: 2 deliveries already done" in again.output   # the pipeline's ledger rule, not the plugin's
    check = cli("config", "check")
    assert "pigeon" in check.output and "PIGEON_LOFT" in check.output


def test_two_channels_with_one_name_fail_at_startup(plugin_path: Path) -> None:
    install_plugin(plugin_path, "email = pigeon_channel:PigeonChannel")
    with pytest.raises(ChannelError, match="channel 'email' is registered twice"):
        registry.get_channel_classes()


def test_a_broken_plugin_names_itself(plugin_path: Path) -> None:
    install_plugin(plugin_path, "pigeon = pigeon_channel:NoSuchClass")
    with pytest.raises(ChannelError, match=r"channel 'pigeon' \(pigeon_channel:NoSuchClass\) cannot be loaded"):
        registry.get_channel_classes()


def test_a_channel_module_is_imported_only_when_that_channel_is_used(tmp_path: Path) -> None:
    """A feeds-only publish imports the feeds channel, not the eight others (nor their clients' modules)."""
    code = textwrap.dedent(f"""
        import sys
        from publisher.channels.registry import channel_names, get_channel
        from publisher.site import Site
        names = channel_names()
        assert get_channel("feeds", Site({str(tmp_path)!r})).name == "feeds"
        print(len(names), sorted(m for m in sys.modules if m.startswith("publisher.channels.")))
    """)
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split(" ", 1) == ["9", "['publisher.channels.base', 'publisher.channels.feeds', "
                                              "'publisher.channels.registry']\n"]


def test_a_broken_plugin_does_not_stop_a_run_of_another_channel(plugin_path: Path,
                                                                 cli: Callable[..., Result]) -> None:
    install_plugin(plugin_path, "pigeon = pigeon_channel:NoSuchClass")
    done = cli("publish", "content/2024-unpsf-incheon.en.md", "--channel", "feeds")
    assert done.exit_code == 0, done.output
    every = cli("publish", "content/2024-unpsf-incheon.en.md")   # every channel: the plugin is loaded, and named
    assert every.exit_code == 2 and "channel 'pigeon' (pigeon_channel:NoSuchClass) cannot be loaded" in every.output
