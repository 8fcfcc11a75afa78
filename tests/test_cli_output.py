"""What `publish` and `status` print: tables that fit 80 columns with every slug whole, a quiet re-run, a
progress bar only for work that sends, and a dry run that says what would be sent."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import Result

from publisher.channels.memory import MemoryChannel
from publisher.cli.tables import Column, Short, fit, fitted_table, overhead
from publisher.delivery import Rendition
from publisher.site import Site

SUBSCRIBERS = Path(__file__).resolve().parent.parent / "examples" / "unpog" / "subscribers.csv"
SLUGS = ("2024-digital-government-workshop", "2024-sdg16-knowledge-forum", "2024-unpsf-incheon",
         "2025-public-service-day")


def subscribed(cli: Callable[..., Result]) -> None:
    result = cli("subscribers", "import", str(SUBSCRIBERS))
    assert result.exit_code == 0, result.output


def published(cli: Callable[..., Result], **env: str) -> Result:
    subscribed(cli)
    first = cli("publish", env=env)
    assert first.exit_code == 0, first.output
    return first


def table_lines(output: str) -> list[str]:
    """The lines of the tables: up to the footnotes ("[1] ..."), which are whole commands to copy."""
    lines = output.splitlines()
    end = next((n for n, line in enumerate(lines) if re.match(r"^\[\d+\] ", line)), len(lines))
    return lines[:end]


def assert_slugs_whole(output: str, width: int) -> None:
    lines = table_lines(output)
    assert all(len(line.rstrip()) <= width for line in lines), [line for line in lines if len(line.rstrip()) > width]
    for slug in SLUGS:
        assert any(re.search(rf"(^|\s){re.escape(slug)}(\s|$)", line) for line in lines), (slug, output)
        # and no table (the ledger's, the bounce rates') cut or wraps it anywhere
        cut = [line for line in lines if slug[:12] in line and slug not in line]
        assert not cut, (slug, cut)
    assert "2024-…" not in output and "2025-…" not in output


@pytest.mark.parametrize("width", [80, 120, 200])
def test_status_fits_the_terminal_with_every_slug_whole(cli: Callable[..., Result], width: int) -> None:
    published(cli)
    result = cli("status", env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    assert_slugs_whole(result.stdout, width)
    # what does not fit is counted per state; the channel that is not all sent is named
    assert re.search(r"2024-sdg16-knowledge-forum\s+14\s+2\s+email: 2 skipped", result.stdout) or width >= 200
    if width >= 200:   # a column per channel once they fit
        assert re.search(r"2024-sdg16-knowledge-forum\s+1 sent\s+2 sent, 2 skipped", result.stdout)


def test_status_wide_gives_a_column_per_channel_and_detail_full_dates(cli: Callable[..., Result]) -> None:
    published(cli)
    wide = cli("status", "--wide", env={"COLUMNS": "80"})
    assert wide.exit_code == 0
    header = next(line for line in wide.stdout.splitlines() if line.startswith("article"))
    assert {"bluesky", "email", "feeds", "x", "telegram"} <= set(header.split())
    detail = cli("status", "content/2024-unpsf-incheon.en.md", env={"COLUMNS": "80"})
    assert all(len(line.rstrip()) <= 80 for line in detail.stdout.splitlines())
    full = cli("status", "content/2024-unpsf-incheon.en.md", "--wide", env={"COLUMNS": "80"})
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", full.stdout)   # every column, whole
    assert re.search(r"outbox/x/2024-unpsf-incheon\.en\.json", full.stdout)


@pytest.mark.parametrize("width", [80, 120, 200])
def test_publish_table_fits_with_every_slug_whole(cli: Callable[..., Result], width: int) -> None:
    first = published(cli, COLUMNS=str(width))
    assert_slugs_whole(first.stdout, width)
    # long notes (commands to copy) are printed whole under the table
    assert "publisher translate" in first.stdout and "see [1] below" in first.stdout


def test_a_rerun_that_sends_nothing_says_so_once_per_article(cli: Callable[..., Result], site: Site) -> None:
    first = published(cli, COLUMNS="80")
    assert "16/16" in first.stderr   # 16 bulletins written: a progress bar
    again = cli("publish", env={"COLUMNS": "80"})
    assert again.exit_code == 0, again.output
    assert "already written" not in again.output and "already sent" not in again.output
    counts = {slug: sum(1 for r in site.ledger().rows(article=slug)) for slug in SLUGS}
    for slug in ("2024-digital-government-workshop", "2024-unpsf-incheon", "2025-public-service-day"):
        lines = [line for line in again.stdout.splitlines() if line.startswith(slug + " ")]
        assert len(lines) == 1, (slug, again.stdout)
        assert re.search(rf"nothing new: {counts[slug]} deliveries already done", lines[0])
    # the story without a Korean version: its note about that, and the rest in one line
    forum = [line for line in again.stdout.splitlines() if line.startswith("2024-sdg16-knowledge-forum ")]
    assert len(forum) == 2 and "16 other deliveries already done" in forum[1]
    # no progress bar and no rate for work that sends nothing
    assert "16/16" not in again.stderr and "/s" not in again.stderr
    assert len(again.stdout.splitlines()) < 20


def test_publish_wide_and_json_give_everything(cli: Callable[..., Result]) -> None:
    published(cli)
    wide = cli("publish", "--wide", env={"COLUMNS": "80"})
    assert "see [" not in wide.stdout and "PUBLISHER_ALLOW_MACHINE_TRANSLATION" in wide.stdout
    as_json = cli("publish", "--json")
    assert as_json.exit_code == 0
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    already = [r for r in rows if r["channel"] == "x"]
    assert already and all(r["done_before"] == 1 and r["note"].startswith("already written: outbox/x/")
                           for r in already)
    assert "not configured" in as_json.stderr and "not configured" not in as_json.stdout


def test_a_dry_run_lists_what_would_be_sent_and_no_preview_file_names(cli: Callable[..., Result],
                                                                     site: Site) -> None:
    nobody = cli("publish", "content/2024-unpsf-incheon.en.md", "--dry-run", "--channel", "email")
    assert re.search(r"2024-unpsf-incheon\s+en\s+email\s+.*skipped\s+no recipients", nobody.stdout), nobody.stdout
    subscribed(cli)
    forum = cli("publish", "content/2024-sdg16-knowledge-forum.en.md", "--dry-run", "--channel", "email", "--wide")
    assert re.search(r"ko\s+email\s+.*skipped\s+2 skipped: no ko version", forum.stdout), forum.stdout
    result = cli("publish", "content/2024-unpsf-incheon.en.md", "--dry-run", "--wide")
    assert result.exit_code == 0, result.output
    for name in ("alert.eml", "post-1.txt", "message.txt", ".eml"):
        assert name not in result.output
    assert re.search(r"2024-unpsf-incheon\s+en\s+email\s+.*dry-run\s+to 2 recipients", result.stdout)
    assert re.search(r"2024-unpsf-incheon\s+ko\s+email\s+.*dry-run\s+to 2 recipients", result.stdout)
    assert "would write in public/: en/rss.xml, en/atom.xml, en/feed.json" in result.stdout
    assert re.search(r"2024-unpsf-incheon\s+en\s+x\s+.*dry-run\s+\d+/280 chars", result.stdout)
    assert not site.outbox_dir.exists() and sum(site.ledger().counts().values()) == 0
    # once published, a dry run says nothing new would go out
    assert cli("publish", "content/2024-unpsf-incheon.en.md").exit_code == 0
    again = cli("publish", "content/2024-unpsf-incheon.en.md", "--dry-run")
    assert re.search(r"2024-unpsf-incheon\s+\d+ other deliveries already done", again.stdout), again.stdout
    assert "already in (rewritten if changed), in public/: en/rss.xml" in again.stdout


# --- the pieces ----------------------------------------------------------------------------------------------


def test_fit_keeps_slugs_whole_and_gives_way_in_order() -> None:
    columns = [Column("article", whole=True), Column("lang", min_width=4), Column("where", min_width=10, drop=1),
               Column("when", drop=2), Column("note", min_width=12, drop=3)]
    slug = "a-rather-long-slug-of-an-article-about-digital-government"
    rows = [[slug, "en", "subscribers (local: Maildir at outbox/mail/)", Short("2024-06-28T09:00:00+09:00",
             "2024-06-28 09:00"), "no ko version; run: publisher translate this --to ko"]]
    kept, widths, short = fit(columns, rows, 200)
    assert kept == [0, 1, 2, 3, 4] and not short   # room for everything
    kept, widths, short = fit(columns, rows, 120)
    assert widths[0] == len(slug) and 3 in short and sum(widths[i] for i in kept) + overhead(len(kept)) <= 120
    kept, widths, short = fit(columns, rows, 80)
    assert 0 in kept and widths[0] == len(slug) and 2 not in kept   # "where" goes first
    assert sum(widths[i] for i in kept) + overhead(len(kept)) <= 80
    kept, widths, _ = fit(columns, rows, 40)   # too narrow even for the slug: the slug stays whole
    assert kept == [0, 1] and widths[0] == len(slug)
    kept, widths, _ = fit(columns, rows, 80, wide=True)
    assert kept == [0, 1, 2, 3, 4] and widths[4] == len(rows[0][4])


def test_a_fitted_table_renders_within_its_width() -> None:
    from rich.console import Console

    columns = [Column("article", whole=True), Column("state"), Column("note", min_width=8, drop=1)]
    rows = [["2024-digital-government-workshop", "sent", "한국어 알림: 모든 구독자에게 전달되었습니다 " * 2]]
    for width in (40, 60, 80):
        buffer = io.StringIO()
        out = Console(file=buffer, width=width, markup=False, highlight=False)
        table, at = fitted_table(columns, rows, width)
        out.print(table, width=at, crop=False)
        lines = buffer.getvalue().splitlines()
        from rich.cells import cell_len

        assert all(cell_len(line.rstrip()) <= width for line in lines), lines
        assert any("2024-digital-government-workshop" in line for line in lines)


def test_rate_only_when_it_means_something() -> None:
    from publisher.pipeline import rate_text

    assert rate_text(4, 0.0001) == ""           # 4 rows already done in no time: no "36,193 msg/s"
    assert rate_text(500, 0.5) == ""            # under a second
    assert rate_text(19, 60.0) == ""            # too few messages
    assert rate_text(300, 2.0) == "150 msg/s"
    assert rate_text(30, 6.0) == "5.0 msg/s"


class ManyChannel(MemoryChannel):
    """A channel that shows a progress bar, as email does."""

    name = "many"
    progress = True

    def expected(self, renditions: Sequence[Rendition], ctx: object) -> int | None:
        return len(renditions)


def progress_output(site: Site, attempted: list[bool], step: float) -> str:
    from rich.console import Console

    from publisher.pipeline import RunOptions, _progress, channel_context

    buffer = io.StringIO()
    ctx = channel_context(site, RunOptions(console=Console(file=buffer, width=100, markup=False)))
    ticks = iter(n * step for n in range(10_000))
    renditions = [Rendition("many", "en", "inbox", "m.txt", "x")] * len(attempted)
    with _progress(ManyChannel(site), renditions, ctx, clock=lambda: next(ticks)) as advance:
        for one in attempted:
            advance(attempted=one)
    return buffer.getvalue()


def test_no_progress_bar_for_work_that_sends_nothing(site: Site) -> None:
    assert progress_output(site, [False] * 40, step=0.001) == ""
    shown = progress_output(site, [False] * 10 + [True] * 30, step=0.1)
    assert "40/40" in shown and "msg/s" in shown   # 30 attempts over 3 seconds
    quick = progress_output(site, [True] * 30, step=0.0001)
    assert "30/30" in quick and "msg/s" not in quick



def test_what_needs_attention_keeps_its_error_at_80_columns(cli: Callable[..., Result], site: Site) -> None:
    published(cli)
    ledger = site.ledger()
    row = next(iter(ledger.rows(article="2024-digital-government-workshop", channel="x")))
    ledger.mark(row.key, "failed", error="403 Forbidden - Your client app is not configured with the "
                                         "appropriate oauth1 app permissions for this endpoint")
    result = cli("status", env={"COLUMNS": "80"})
    attention = result.stdout.split("Needs attention")[1]
    line = next(line for line in attention.splitlines() if line.startswith("2024-digital-government-workshop "))
    assert len(line.rstrip()) <= 80 and re.search(r"x en\s+failed\s+403 Forbidden - Your.*…", line), line
    assert re.search(r"2024-digital-government-workshop\s+27\s+1\s+.*x: 1 failed", result.stdout)
