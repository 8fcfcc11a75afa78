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


def test_entry_points_are_read_from_entry_points_txt_as_importlib_metadata_reads_them(tmp_path: Path) -> None:
    """The registry reads each distribution's entry_points.txt itself: the same entry points as
    importlib.metadata finds (comments, extras, an egg-info, other groups; a distribution seen again further
    down sys.path is the first one's), without importing it."""
    from importlib.metadata import entry_points

    first, second = tmp_path / "first", tmp_path / "second"
    for folder, dist, text in (
            (first, "publisher_pigeon-0.1.dist-info",
             "# a comment\n[console_scripts]\npigeon = pigeon_channel:main\n\n[publisher.channels]\n"
             "# another comment\npigeon = pigeon_channel:PigeonChannel [fast]\n  dove=pigeon_channel:Dove\n"),
            (first, "Publisher.Owl.egg-info", "[publisher.channels]\nowl = owl_channel\n"),
            (first, "no_entry_points-1.0.dist-info", None),
            (second, "Publisher.Pigeon-0.2.dist-info", "[publisher.channels]\nraven = raven_channel:Raven\n")):
        (folder / dist).mkdir(parents=True)
        if text is not None:
            (folder / dist / "entry_points.txt").write_text(text, encoding="utf-8")
    sys.path[:0] = [str(first), str(second)]
    try:
        ours = {(ep.name, ep.value) for ep in registry._group_entry_points("publisher.channels")}
        theirs = {(ep.name, ep.value) for ep in entry_points(group="publisher.channels")}
    finally:
        sys.path.remove(str(first))
        sys.path.remove(str(second))
    assert ours == theirs
    assert {("pigeon", "pigeon_channel:PigeonChannel [fast]"), ("dove", "pigeon_channel:Dove"),
            ("owl", "owl_channel")} <= ours
    assert ("feeds", "publisher.channels.feeds:FeedsChannel") in ours    # the installed publisher's
    assert ("raven", "raven_channel:Raven") not in ours   # publisher-pigeon 0.2: shadowed by 0.1 (names normalised)
    assert registry.EntryPoint("x", "textwrap:TextWrapper.wrap [extra]").load() is textwrap.TextWrapper.wrap


def test_a_feeds_publish_imports_no_importlib_metadata(site_dir: Path) -> None:
    """The registry reads entry_points.txt itself and the body cache's fingerprint takes the libraries'
    ``__version__``: a publish does not import importlib.metadata (~13 ms)."""
    import subprocess

    code = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["publisher", "--site", {str(site_dir)!r}, "publish", "--channel", "feeds",
                    "content/2024-unpsf-incheon.en.md"]
        try:
            runpy.run_module("publisher", run_name="__main__")
        except SystemExit as stop:
            assert not stop.code, stop.code
        print("importlib.metadata" in sys.modules)
    """)
    project = Path(__file__).resolve().parent.parent   # first on the path: this checkout's publisher
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=project)
    assert done.stdout.splitlines()[-1] == "False", done.stdout + done.stderr
    assert (site_dir / "public" / "en" / "2024-unpsf-incheon" / "index.html").is_file()


def test_a_broken_plugin_does_not_stop_a_run_of_another_channel(plugin_path: Path,
                                                                 cli: Callable[..., Result]) -> None:
    install_plugin(plugin_path, "pigeon = pigeon_channel:NoSuchClass")
    done = cli("publish", "content/2024-unpsf-incheon.en.md", "--channel", "feeds")
    assert done.exit_code == 0, done.output
    every = cli("publish", "content/2024-unpsf-incheon.en.md")   # every channel: the plugin is loaded, and named
    assert every.exit_code == 2 and "channel 'pigeon' (pigeon_channel:NoSuchClass) cannot be loaded" in every.output
