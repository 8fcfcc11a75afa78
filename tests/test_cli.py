"""The command line end to end on a temporary copy of the sample site."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from publisher.cli import COMMANDS, cli as root
from publisher.site import Site

HEAVY = ("argostranslate", "torch", "ctranslate2", "sentencepiece", "stanza", "kiwipiepy", "tweepy", "atproto",
         "mastodon", "feedgen", "jinja2", "babel", "markdown_it", "nh3", "css_inline", "lxml", "requests",
         "httpx", "starlette", "uvicorn", "rich", "yaml", "email_validator", "dkim")


def all_commands() -> list[tuple[str, click.Command]]:
    found = []
    ctx = click.Context(root)
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        assert command is not None, f"{name}: listed in COMMANDS but cannot be imported"
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", command.commands[sub]) for sub in command.commands]
    return found


def test_every_command_has_help_text() -> None:
    names = [name for name, _ in all_commands()]
    assert set(COMMANDS) <= {name.split()[0] for name in names}
    for name, command in all_commands():
        assert (command.help or "").strip(), f"`publisher {name}` has no help text"
        result = CliRunner().invoke(root, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and param.name not in ("help",):
                assert param.help, f"`publisher {name}` option {param.opts[0]} has no help text"


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys\nfrom publisher.cli import main\nsys.argv=['publisher','--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "LOADED="


def test_publish_sample_site_in_both_languages_then_never_twice(cli: Callable[..., Result], site: Site) -> None:
    first = cli("publish", "content")
    assert first.exit_code == 0, first.output
    for lang in ("en", "ko"):
        assert (site.public_dir / lang / "rss.xml").is_file()
        assert (site.public_dir / lang / "atom.xml").is_file()
        assert (site.public_dir / lang / "feed.json").is_file()
    for channel in ("x", "mastodon", "bluesky", "facebook", "linkedin"):
        posts = sorted((site.outbox_dir / channel).glob("*.json"))
        langs = {json.loads(p.read_text(encoding="utf-8")).get("lang") for p in posts}
        assert {"en", "ko"} <= langs, (channel, posts)
    assert "not configured, writing locally" in first.output
    ledger = site.ledger()
    sent_before = ledger.counts()["sent"]
    assert sent_before > 0
    snapshot = {p: p.stat().st_mtime_ns for p in site.outbox_dir.rglob("*.json")}
    feeds = {p: p.stat().st_mtime_ns for p in site.public_dir.rglob("*") if p.is_file()}
    # feeds are files rebuilt from the ledger (an edited article refreshes its entry); every other channel
    # sends, so its rows must not even be tried again
    attempts = {str(r.key): r.attempts for r in ledger.rows() if r.key.channel != "feeds"}

    second = cli("publish", "content")
    assert second.exit_code == 0, second.output
    assert {p: p.stat().st_mtime_ns for p in site.outbox_dir.rglob("*.json")} == snapshot
    assert {p: p.stat().st_mtime_ns for p in site.public_dir.rglob("*") if p.is_file()} == feeds
    assert {str(r.key): r.attempts for r in ledger.rows() if r.key.channel != "feeds"} == attempts
    assert ledger.counts()["sent"] == sent_before

    status = cli("status", "--json")
    rows = [json.loads(line) for line in status.stdout.splitlines()]   # JSON Lines, like every --json
    assert {r["channel"] for r in rows} >= {"feeds", "x", "mastodon", "bluesky", "facebook", "linkedin"}
    assert all(r["state"] in ("sent", "skipped") for r in rows), [r for r in rows if r["state"] != "sent"]


def test_dry_run_sends_nothing(cli: Callable[..., Result], site: Site) -> None:
    result = cli("publish", "content/2024-unpsf-incheon.en.md", "--dry-run", "--channel", "x")
    assert result.exit_code == 0, result.output
    assert "dry-run" in result.output
    assert not site.outbox_dir.exists()
    assert sum(site.ledger().counts().values()) == 0


def test_preview_writes_every_rendition(cli: Callable[..., Result], site: Site, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    result = cli("preview", "content/2024-unpsf-incheon.en.md", "--out", str(out))
    assert result.exit_code == 0, result.output
    for lang in ("en", "ko"):
        assert (out / "2024-unpsf-incheon" / lang / "x").is_dir()
    assert "/280" in result.output  # weighted length against X's limit
    assert not site.outbox_dir.exists()


def test_config_check_never_prints_a_secret(cli: Callable[..., Result]) -> None:
    secret = "do-not-print-me-0123456789"
    x_account = {name: f"{secret}-{name}" for name in ("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN",
                                                       "X_ACCESS_TOKEN_SECRET")}
    result = cli("config", "check", env={**x_account, "PUBLISHER_SECRET_KEY": secret, "SMTP_PASSWORD": secret})
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert "local fallback" in result.output and "configured" in result.output


def test_config_check_reports_an_invalid_value(cli: Callable[..., Result]) -> None:
    result = cli("config", "check", env={"PUBLISHER_TIMEZONE": "Nowhere/Town"})
    assert result.exit_code == 2
    assert "PUBLISHER_TIMEZONE (from environment): expected an IANA time zone" in result.stderr


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        (None, ("publish", "content/nope.en.md"), "content/nope.en.md: file not found"),
        ("---\ntitle: [x\ndate: 2024-01-01\n---\n", ("publish", "content/broken.en.md"),
         "content/broken.en.md: invalid YAML front matter"),
        ("---\ntitle: x\n---\nbody", ("publish", "content/broken.en.md"), "content/broken.en.md: date: is required"),
        (None, ("publish", "content", "--channel", "pigeon"), "unknown channel 'pigeon'"),
        (None, ("publish", "content/images"), "content/images: no content files"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Callable[..., Result], site: Site, site_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch, setup: str | None,
                                         args: tuple[str, ...], expected: str) -> None:
    monkeypatch.chdir(site_dir)
    if setup is not None:
        (site.content_dir / "broken.en.md").write_text(setup, encoding="utf-8")
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not site.public_dir.exists() and not site.outbox_dir.exists()


def test_unwritable_output_is_one_line(cli: Callable[..., Result], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    result = cli("preview", "content/2024-unpsf-incheon.en.md", "--out", str(blocker / "sub"), "--channel", "x")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and "cannot write" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_site_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(root, ["--site", str(tmp_path / "nowhere"), "status"])
    assert result.exit_code == 2
    assert "site folder not found" in result.stderr


def test_env_example_documents_every_setting() -> None:
    from publisher.setting_registry import all_settings

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text(encoding="utf-8")
    names = {line.split("=", 1)[0].lstrip("# ").strip() for line in text.splitlines() if "=" in line}
    missing = [s.name for s in all_settings() if s.name not in names]
    assert not missing, f".env.example lacks: {', '.join(missing)}"
    for setting in all_settings():
        assert setting.help, f"{setting.name} has no help text"


def test_translation_commands_without_the_extra_say_how_to_install_it(cli: Callable[..., Result],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("argostranslate", "argostranslate.package", "ctranslate2"):
        monkeypatch.setitem(sys.modules, name, None)  # as if `pip install -e .` without [translate]
    result = cli("models", "list")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("Error: offline translation is not installed")
    assert "pip install 'publisher[translate]'" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("args", [("translate", "{site}/content/2024-sdg16-knowledge-forum.en.md", "--to", "ko"),
                                  ("models", "install", "en", "ko"), ("models", "install", "--file", "x.argosmodel")])
def test_every_translation_command_without_the_extra_says_how_to_install_it(
        cli: Callable[..., Result], site_dir: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    for name in ("argostranslate", "argostranslate.package", "ctranslate2"):
        monkeypatch.setitem(sys.modules, name, None)
    result = cli(*(arg.format(site=site_dir) for arg in args))
    assert result.exit_code == 2
    assert result.stderr == ("Error: offline translation is not installed (argostranslate is missing): "
                             "pip install torch==2.13.0 && pip install 'publisher[translate]'\n")


def test_readme_main_job(cli: Callable[..., Result], site: Site, site_dir: Path) -> None:
    """The README's first command on the sample site: subscribers, then publish; mail in each reader's language."""
    import mailbox
    from email.header import decode_header, make_header
    from email.utils import parseaddr

    imported = cli("subscribers", "import", str(site_dir / "subscribers.csv"))
    assert imported.exit_code == 0, imported.output
    published = cli("publish")
    assert published.exit_code == 0, published.output
    box = mailbox.Maildir(site.outbox_dir / "mail", create=False)
    by_recipient: dict[str, list[str]] = {}
    for message in box:
        subject = str(make_header(decode_header(message["Subject"])))
        by_recipient.setdefault(parseaddr(str(make_header(decode_header(message["To"]))))[1], []).append(subject)
    assert set(by_recipient) == {"jane.doe@example.org", "minji.kim@example.org", "arjun.rao@example.net",
                                 "seojun.park@example.net"}
    assert "세계 공공행정의 역량 강화: 2024 유엔 공공행정포럼(인천)이 남긴 시사점" in " ".join(
        by_recipient["minji.kim@example.org"])
    assert any("Empowering Global Public Administration" in s for s in by_recipient["jane.doe@example.org"])
    count = len(box)
    again = cli("publish")
    assert again.exit_code == 0 and len(mailbox.Maildir(site.outbox_dir / "mail", create=False)) == count


def test_text_that_looks_like_rich_markup_is_printed_as_written(cli: Callable[..., Result]) -> None:
    # A name typed into the subscribe form or a CSV, or a remote error, may hold brackets; a stray "[/]" made rich fail.
    added = cli("subscribers", "add", "odd@example.org", "--name", "Kim [/] [bold]Lee", "--lang", "ko")
    assert added.exit_code == 0, added.output
    listed = cli("subscribers", "list")
    assert listed.exit_code == 0, listed.output
    assert "[/]" in listed.output and "[bold]Lee" in listed.output


@pytest.mark.parametrize(("url", "expected"), [
    ("http://localhost:8000", "would point at this machine"),
    ("http://news.example.org", "require an https one-click unsubscribe link"),
    ("https://news.example.org", None),
])
def test_config_check_warns_about_links_mail_cannot_use(cli: Callable[..., Result], url: str,
                                                       expected: str | None) -> None:
    result = cli("config", "check", env={"SMTP_HOST": "smtp.example.org", "PUBLISHER_SITE_URL": url,
                                         "BULLETIN_FROM": "News <news@example.org>"})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: PUBLISHER_SITE_URL")]
    if expected is None:
        assert not warnings
    else:
        assert len(warnings) == 1 and expected in warnings[0]


def fill_ledger(site: Site, articles: int) -> None:
    """``articles`` articles in the ledger, oldest first, each sent to the feeds and x in two languages; the
    oldest one's x post in Korean unconfirmed, the second's failed."""
    from publisher.delivery import DeliveryKey

    ledger = site.ledger()
    for n in range(articles):
        keys = [DeliveryKey(f"story-{n:03}", lang, channel, "main") for lang in ("en", "ko") for channel in
                ("feeds", "x")]
        ledger.ensure_pending(keys)
        ledger.mark_many([(key, "sent", None, f"https://x.example/{n}", None, None) for key in keys])
    ledger.mark(DeliveryKey("story-000", "ko", "x", "main"), "unconfirmed", error="read timed out")
    ledger.mark(DeliveryKey("story-001", "en", "x", "main"), "failed", error="403 Forbidden\nno write access")


def test_status_summarizes_the_newest_articles_and_always_shows_what_needs_attention(
        cli: Callable[..., Result], site: Site) -> None:
    fill_ledger(site, 30)
    result = cli("status", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    summary, attention = result.output.split("Needs attention")
    shown = re.findall(r"story-\d{3}", summary)
    assert list(dict.fromkeys(shown)) == [f"story-{n:03}" for n in range(29, 9, -1)]   # the 20 newest, newest first
    assert "The 20 most recent articles: --limit N shows more, --all every one." in summary
    # the two oldest are beyond the limit, but what needs attention is always shown
    assert "story-000" in attention and "unconfirmed" in attention and "read timed out" in attention
    assert "story-001" in attention and "failed" in attention
    assert "--retry-unconfirmed" in attention

    limited = cli("status", "--limit", "3", env={"COLUMNS": "200"})
    assert list(dict.fromkeys(re.findall(r"story-\d{3}", limited.output.split("Needs attention")[0]))) == [
        "story-029", "story-028", "story-027"]
    assert cli("status", "--limit", "0").exit_code == 2


def test_status_all_streams_every_article_as_tab_separated_lines(cli: Callable[..., Result], site: Site) -> None:
    fill_ledger(site, 30)
    result = cli("status", "--all")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["article", "language", "channel", "sent", "pending", "in_flight", "failed",
                                    "unconfirmed", "skipped"]
    counted = [line.split("\t") for line in lines[1:lines.index("")]]
    assert len(counted) == 30 * 4 and counted[0][:3] == ["story-029", "en", "feeds"]
    assert ["story-000", "ko", "x", "0", "0", "0", "0", "1", "0"] in counted
    attention = [line.split("\t") for line in lines[lines.index("needs attention") + 2:]]
    # in the order they were made; a line break in an error stays on its line
    assert attention == [["story-000", "ko", "x", "main", "unconfirmed", "0", "read timed out"],
                         ["story-001", "en", "x", "main", "failed", "0", "403 Forbidden no write access"]]


def test_status_of_one_article_gives_its_detail(cli: Callable[..., Result], site: Site) -> None:
    from publisher.delivery import DeliveryKey

    fill_ledger(site, 3)
    ledger = site.ledger()
    slug = "2024-unpsf-incheon"
    ledger.ensure_pending([DeliveryKey(slug, "en", "x", "main"), DeliveryKey(slug, "ko", "x", "main")])
    ledger.mark(DeliveryKey(slug, "en", "x", "main"), "sent", remote_url="https://x.com/i/web/status/7")
    result = cli("status", "content/2024-unpsf-incheon.en.md", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "https://x.com/i/web/status/7" in result.output and "pending" in result.output
    assert "story-" not in result.output     # that article only, and no attention of the others
    every = cli("status", "content/2024-unpsf-incheon.en.md", "--all")
    rows = [line.split("\t") for line in every.stdout.splitlines()[1:]]
    assert [(r[1], r[3], r[4], r[6]) for r in rows] == [("en", "main", "sent", "https://x.com/i/web/status/7"),
                                                       ("ko", "main", "pending", "")]
