"""Core commands: publish, preview, status, import and config check."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.cli import UserError, console, echo_json_lines, get_site, site_language

if TYPE_CHECKING:
    from collections.abc import Sequence

    from publisher.delivery import DeliveryReport
    from publisher.site import Site
    from publisher.store import Ledger


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--channel", "channels", multiple=True, metavar="NAME",
              help="Publish through this channel only (repeatable). Default: every channel.")
@click.option("--lang", "langs", multiple=True, metavar="LANG", callback=site_language,
              help="Publish this language only (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing, change nothing.")
@click.option("--force", is_flag=True, help="Send again even what the ledger says was already sent.")
@click.option("--retry-unconfirmed", is_flag=True,
              help="Resolve deliveries whose outcome was unknown: look for them remotely, post only if absent.")
@click.option("--at", "at", metavar="TIME",
              help="Do not publish now: schedule it for `publisher worker` at TIME (ISO 8601, e.g. "
                   "'2026-12-02 09:00'; without an offset, in PUBLISHER_TIMEZONE). Scheduling the same again moves it.")
@click.option("--now", "now", is_flag=True,
              help="Publish now: ignore the articles' publish_at embargo (and accept an --at in the past).")
@click.option("--queue", is_flag=True,
              help="With --channel email: write the bulletin's deliveries and a send job for `publisher worker` "
                   "processes (one or several machines) to share, instead of sending in this process.")
@click.option("--wide", is_flag=True,
              help="Every column and every line of the table, whole, however wide the terminal.")
@click.option("--json", "as_json", is_flag=True,
              help="Every line of the report as JSON Lines (one object per line) instead of the table.")
@click.pass_context
def publish(ctx: click.Context, paths: tuple[Path, ...], channels: tuple[str, ...], langs: tuple[str, ...],
            dry_run: bool, force: bool, retry_unconfirmed: bool, at: str | None, now: bool, queue: bool, wide: bool,
            as_json: bool) -> None:
    """Publish articles (content files or folders; default: all of content/) in every language through every
    channel.

    What was sent is recorded in the ledger and never sent twice, unless --force. An article whose publish_at
    is ahead is scheduled for the worker instead. With --queue (email only) the workers send it, sharing it out.
    Exit code 1 when a delivery failed, its outcome is unknown, or a channel stopped the run.
    """
    from publisher.pipeline import channels_for, publish as run_publish

    site = get_site(ctx)
    out = console(stderr=as_json)   # with --json, standard output holds only JSON
    if queue:
        _queue(ctx, site, paths, channels, langs, dry_run=dry_run, now=now, as_json=as_json, wide=wide,
               refused=[flag for flag, given in (("--force", force), ("--retry-unconfirmed", retry_unconfirmed),
                                                 ("--at", at is not None)) if given])
        return
    clock = None
    if at is not None:
        from publisher.scheduler import parse_when, wall_clock

        when = parse_when(at, site.timezone, "--at")
        if when > wall_clock():
            _schedule(site, paths, channels, langs, when, dry_run)
            return
        if not now:
            raise UserError(f"--at: {at} is in the past; give a later time, or add --now to publish now")
    if now:
        from publisher.scheduler import after_every_embargo

        clock = after_every_embargo
    local = [channel for channel in channels_for(site, channels or None) if not channel.is_configured()]
    for channel in local:   # one short line each: what to set is config check's to say
        where = re.sub(r" \(set [^()]*\)$", "", channel.fallback_description())
        out.print(f"{channel.name}: not configured, writing locally to {where}", style="dim")
    if len(local) > 1:
        out.print("(publisher config check lists the settings each channel needs)", style="dim")
    reports = run_publish(site, list(paths), channels=channels or None, langs=langs or None, force=force,
                          dry_run=dry_run, retry_unconfirmed=retry_unconfirmed, console=console(stderr=True),
                          clock=clock)
    if as_json:
        echo_json_lines({**r.as_dict(), "done_before": r.done_before} for r in reports)
    else:
        print_reports(out, reports, title="Dry run: nothing was sent" if dry_run else "Published", wide=wide)
    if any(r.state in ("failed", "unconfirmed", "stopped") for r in reports):
        ctx.exit(1)


def _queue(ctx: click.Context, site: Site, paths: tuple[Path, ...], channels: tuple[str, ...],
           langs: tuple[str, ...], *, dry_run: bool, now: bool, as_json: bool, wide: bool, refused: list[str]) -> None:
    """``publish --queue``: the bulletin's rows and a shared send job for the workers; one line per bulletin and
    language saying how many recipients were queued."""
    from publisher.pipeline import QUEUE_CHANNELS, queue as run_queue

    if refused:
        raise UserError(f"--queue: cannot be combined with {refused[0]} (the workers send what is queued, once)")
    if not channels or any(name not in QUEUE_CHANNELS for name in channels):
        raise UserError("--queue: only email bulletins can be queued for the workers; use --queue with "
                        "--channel email and no other channel")
    clock = None
    if now:
        from publisher.scheduler import after_every_embargo

        clock = after_every_embargo
    reports = run_queue(site, list(paths), channels=list(channels), langs=langs or None, dry_run=dry_run,
                        console=console(stderr=True), clock=clock)
    if as_json:
        echo_json_lines({**r.as_dict(), "done_before": r.done_before} for r in reports)
        return
    print_reports(console(), reports, title="Dry run: nothing was queued" if dry_run else "Queued for the workers",
                  wide=wide)


_STATE_STYLES = {"failed": "red", "stopped": "red", "unconfirmed": "yellow", "skipped": "dim", "stale": "yellow",
                 "done": "dim", "queued": "cyan"}
_FOOTNOTE_AT = 48   # a longer note holds a command to copy: printed whole under the table, not cut


def print_reports(out: Any, reports: list[DeliveryReport], *, title: str, wide: bool = False) -> None:
    """The table a publish ends with: per article, a line for each delivery made, failed or held back, and one
    line for everything an earlier run had already done ("nothing new: 7 deliveries already done"). It fits
    the terminal: slugs whole, ``where`` and the notes give way first (``wide``: everything)."""
    from rich.text import Text

    from publisher.cli.tables import Column, print_table

    by_article: dict[str, list[DeliveryReport]] = {}
    for r in reports:
        by_article.setdefault(r.article, []).append(r)
    rows: list[list[Any]] = []
    unchanged: list[list[Any]] = []
    footnotes: list[str] = []
    for article in sorted(by_article):   # stable: channels keep their order within an article
        lines = by_article[article]
        new = [r for r in lines if not r.done_before]
        for r, more in _grouped(new):
            where = f"{r.where} (+{more} more)" if more else r.where
            note = r.note
            if len(note) > _FOOTNOTE_AT and not wide:
                if note not in footnotes:
                    footnotes.append(note)
                note = f"see [{footnotes.index(note) + 1}] below"
            rows.append([r.article, r.lang, r.channel, where, Text(r.state, style=_STATE_STYLES.get(r.state, "")),
                         note])
        done = sum(r.done_before for r in lines)
        if done:
            what = f"deliver{'y' if done == 1 else 'ies'} already done"
            unchanged.append([article, f"{done} other {what}" if new else f"nothing new: {done} {what}"])
    if rows:
        columns = [Column("article", whole=True), Column("lang", min_width=4), Column("channel", min_width=8),
                   Column("where", min_width=12, drop=1), Column("state", whole=True),
                   Column("note", min_width=16, drop=2)]
        print_table(out, columns, rows, wide=wide, title=title)
    if unchanged:   # one line per article, outside the table: its note is too long for a column of 80
        print_table(out, [Column("article", whole=True), Column("note", min_width=16)], unchanged, wide=wide,
                    title=None if rows else title, show_header=False)
    if not rows and not unchanged:
        out.print(f"{title}: nothing to do.")
    for number, note in enumerate(footnotes, start=1):
        out.print(f"[{number}] {note}", soft_wrap=True)


def _schedule(site: Site, paths: tuple[Path, ...], channels: tuple[str, ...], langs: tuple[str, ...],
              when: datetime, dry_run: bool) -> None:
    """``publish --at``: check what would be published, then one job (moved if it exists) for the worker."""
    from publisher.article import load_stories
    from publisher.pipeline import channels_for, check_site_settings
    from publisher.scheduler import schedule_publish, show_time, site_path

    check_site_settings(site)
    load_stories(list(paths), site)   # a bad content file stops it now, not at the time of release
    channels_for(site, channels or None)   # and so does an unknown channel
    shown = show_time(when, site.timezone)
    if dry_run:
        click.echo(f"Dry run: would schedule the publish for {shown}.")
        return
    job, moved = schedule_publish(site, [site_path(site, p) for p in paths], when, channels=list(channels),
                                  langs=list(langs))
    click.echo(f"{'Moved' if moved else 'Scheduled'} job {job.id}: publish at {shown}"
               " (run `publisher worker`; see `publisher schedule list`).")


def _grouped(reports: list[DeliveryReport]) -> list[tuple[DeliveryReport, int]]:
    """One line per article, language, channel, state and note: a feed build writes several files at once."""
    groups: dict[tuple[str, str, str, str, str], list[DeliveryReport]] = {}
    for r in sorted(reports, key=lambda r: r.article):  # stable: channels keep their order within an article
        groups.setdefault((r.article, r.lang, r.channel, r.state, r.note), []).append(r)
    return [(rows[0], len(rows) - 1) for rows in groups.values()]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the renditions into.")
@click.option("--channel", "channels", multiple=True, metavar="NAME", help="Only this channel (repeatable).")
@click.option("--lang", "langs", multiple=True, metavar="LANG", callback=site_language,
              help="Only this language (repeatable).")
@click.pass_context
def preview(ctx: click.Context, paths: tuple[Path, ...], out_dir: Path, channels: tuple[str, ...],
            langs: tuple[str, ...]) -> None:
    """Write every rendition (email, feed entry, posts) of the articles to files; send nothing.

    Social posts are listed with their weighted length against the platform's limit.
    """
    from rich.table import Table
    from rich.text import Text

    from publisher.pipeline import preview as run_preview

    site = get_site(ctx)
    written = run_preview(site, list(paths), out_dir, channels=channels or None, langs=langs or None)
    table = Table(title=f"Preview written to {out_dir}")
    for column in ("language", "channel", "target", "file", "length"):
        table.add_column(column, overflow="fold")
    for rendition, path in written:
        meta = rendition.meta
        length: str | Text = ""
        if "length" in meta and "limit" in meta:
            over = meta["length"] > meta["limit"]
            length = Text(f"{meta['length']}/{meta['limit']}", style="red" if over else "")
        table.add_row(rendition.lang, rendition.channel, rendition.target, str(path), length)
    console().print(table)


_COUNTED = ("sent", "pending", "in_flight", "failed", "unconfirmed", "skipped")
_COUNT_HEADERS = ("sent", "pending", "in flight", "failed", "unconfirmed", "skipped")
_ATTENTION = ("unconfirmed", "failed", "in_flight")
_SHOWN = 20   # rows of a table before "... and N more": a terminal table of thousands helps nobody


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Every ledger row as JSON Lines (one object per line).")
@click.option("--channel", help="Only this channel.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many of the most recent articles to summarize.")
@click.option("--all", "show_all", is_flag=True,
              help="Every article (with PATH: every row), streamed as tab-separated lines.")
@click.option("--wide", is_flag=True,
              help="Every column whole (a column per channel, full dates), however wide the terminal.")
@click.pass_context
def status(ctx: click.Context, paths: tuple[Path, ...], as_json: bool, channel: str | None, limit: int,
           show_all: bool, wide: bool) -> None:
    """Show the delivery ledger: the most recent articles (counts per language, channel and state, newest
    first), and always what needs attention (unconfirmed, failed or left in flight). With PATH, the detail of
    those articles."""
    from publisher.article import load_stories

    site = get_site(ctx)
    ledger = site.ledger()
    slugs: list[str | None] = [s.slug for s in load_stories(list(paths), site)] if paths else [None]
    if as_json:
        from publisher.timefmt import iso_text

        echo_json_lines({**row.as_dict(), "created_at": iso_text(row.created_at),
                         "updated_at": iso_text(row.updated_at)}
                        for slug in slugs for row in ledger.rows(article=slug, channel=channel))
        return
    if paths:
        _status_detail(ledger, [slug for slug in slugs if slug is not None], channel, show_all, wide,
                       site.timezone)
        return
    if show_all:
        _status_everything(ledger, channel)
        return
    from publisher.cli.schedule import print_held

    print_held(site, console())   # jobs held as overdue wait for a person
    _status_summary(ledger, channel, limit, wide, site)


def _present(rows: list[dict[str, int]], wide: bool) -> list[str]:
    """The states to give a column: every one with ``wide``, else those some row has (an 80-column table has
    no room for six columns of blanks)."""
    return [state for state in _COUNTED if wide or any(counts.get(state) for counts in rows)]


def _header(state: str) -> str:
    return state.replace("_", " ")


def _status_summary(ledger: Ledger, channel: str | None, limit: int, wide: bool = False,
                    site: Site | None = None) -> None:
    """The ``limit`` newest articles, one line each (every language together; per channel, its rows per
    state), then everything that needs attention, whatever its age: a few short index reads, and a table
    short enough to draw at once, however long the ledger.

    A column per channel when it fits (or ``wide``); otherwise a column per state, with the channels that
    are not all sent named in a last column."""
    from publisher.cli.tables import Column, print_table

    out = console()
    articles = list(ledger.articles(limit + 1))
    if not articles:
        out.print("The ledger is empty: nothing has been published yet.")
        return
    more = len(articles) > limit
    lines: list[tuple[str, dict[str, dict[str, int]]]] = []
    channels: list[str] = []
    for article in articles[:limit]:
        per_channel: dict[str, dict[str, int]] = {}
        for (_, _, chan), counts in ledger.summary(article=article, channel=channel).items():
            merged = per_channel.setdefault(chan, {})
            for state, n in counts.items():
                merged[state] = merged.get(state, 0) + n
            if chan not in channels:
                channels.append(chan)
        lines.append((article, per_channel))
    title = "Deliveries, newest first"
    by_channel = [Column("article", whole=True), *(Column(chan, whole=True) for chan in channels)]
    by_channel_rows = [[article, *(_state_counts(per_channel.get(chan, {})) for chan in channels)]
                       for article, per_channel in lines]
    if wide or _fits(by_channel, by_channel_rows, out.width):
        print_table(out, by_channel, by_channel_rows, wide=wide, title=title,
                    caption="rows per state, every language together")
    else:
        totals = [{state: sum(c.get(state, 0) for c in per_channel.values()) for state in _COUNTED}
                  for _, per_channel in lines]
        states = _present(totals, wide=False)
        columns = [Column("article", whole=True), *(Column(_header(state), whole=True, justify="right")
                                                     for state in states),
                   Column("not all sent", min_width=12, drop=1)]
        rows = [[article, *(str(total.get(state) or "") for state in states),
                 "; ".join(f"{chan}: {_state_counts({k: v for k, v in counts.items() if k != 'sent'})}"
                           for chan, counts in per_channel.items() if any(k != "sent" and v for k, v in counts.items()))]
                for (article, per_channel), total in zip(lines, totals)]
        print_table(out, columns, rows, title=title,
                    caption="rows per state, every channel and language (--wide: a column per channel)")
    if more:
        out.print(f"The {limit} most recent articles: --limit N shows more, --all every one.")
    if channel in (None, "email") and site is not None:
        _print_rates(site, [article for article, _ in lines], out)   # issue 13: bounce and complaint rates
    _attention(ledger, [None], channel, wide)


def _print_rates(site: Site, articles: Sequence[str], out: Any) -> None:
    """A table of ``bulletin_rates`` on a rich console (nothing when no bulletin went out)."""
    from publisher.bounces.rates import COMPLAINT_LIMIT, bulletin_rates
    from publisher.cli.tables import Column, print_table

    rates = bulletin_rates(site, articles)
    if not rates:
        return
    # The slug whole, as in every table of `status` (80 columns when piped); the counts are short.
    columns = [Column("article", whole=True), Column("sent", whole=True, justify="right"),
               Column("hard bounces", whole=True, justify="right"), Column("soft", whole=True, justify="right"),
               Column("complaints", whole=True, justify="right")]
    rows = []
    for rate in rates:
        warn = " (over the limit)" if rate.complaint_rate > COMPLAINT_LIMIT else ""
        rows.append([rate.article, str(rate.sent), f"{rate.hard} ({rate.bounce_rate:.1f}%)", str(rate.soft),
                     f"{rate.complaints} ({rate.complaint_rate:.2f}%){warn}"])
    print_table(out, columns, rows, title="Email bulletins: bounces and complaints",
                caption=f"complaints should stay under {COMPLAINT_LIMIT}% (Gmail, Yahoo, Outlook.com)")


def _fits(columns: list[Any], rows: list[list[Any]], width: int) -> bool:
    """True when every column fits whole in ``width``."""
    from publisher.cli.tables import fit, overhead

    kept, widths, _ = fit(columns, rows, width, wide=True)
    return sum(widths) + overhead(len(kept)) <= width


def _state_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[state]} {state.replace('_', ' ')}" for state in _COUNTED if counts.get(state))


def _attention(ledger: Ledger, slugs: list[str | None], channel: str | None, wide: bool = False) -> None:
    from itertools import islice

    from publisher.cli.tables import Column, print_table

    out = console()
    rows: list[list[Any]] = []
    for slug in slugs:
        for row in islice(ledger.rows(article=slug, channel=channel, state=_ATTENTION), _SHOWN - len(rows)):
            # channel and language in one column: at 80 columns the error needs the room
            rows.append([row.key.article, f"{row.key.channel} {row.key.lang}", row.key.target, _header(row.state),
                         str(row.attempts), _one_line(row.last_error)])
    if not rows:
        return
    columns = [Column("article", whole=True), Column("channel", min_width=8),
               Column("target", min_width=10, drop=2), Column("state", whole=True),
               Column("tries", whole=True, drop=1), Column("last error", min_width=24, drop=3)]
    print_table(out, columns, rows, wide=wide, title="Needs attention")
    shown = len(rows)
    total = sum(n for slug in slugs for n in ledger.counts(article=slug, channel=channel,
                                                           states=_ATTENTION).values())
    if total > shown:
        out.print(f"... and {total - shown} more (publisher status --all lists them all)")
    out.print("Unconfirmed posts are never retried blindly: run `publisher publish PATH --retry-unconfirmed`.")


def _status_everything(ledger: Ledger, channel: str | None) -> None:
    """Every article's counts, newest first, then every row that needs attention: tab-separated lines,
    printed as they are read."""
    click.echo("\t".join(("article", "language", "channel", *_COUNTED)))
    for article in ledger.articles():
        for (_, lang, chan), counts in ledger.summary(article=article, channel=channel).items():
            click.echo("\t".join((article, lang, chan, *(str(counts.get(state, 0)) for state in _COUNTED))))
    header = False
    for row in ledger.rows(channel=channel, state=_ATTENTION):
        if not header:
            click.echo("\nneeds attention")
            click.echo("\t".join(("article", "language", "channel", "target", "state", "attempts", "last error")))
            header = True
        click.echo("\t".join((row.key.article, row.key.lang, row.key.channel, row.key.target, row.state,
                               str(row.attempts), _one_line(row.last_error))))


def _status_detail(ledger: Ledger, slugs: list[str], channel: str | None, show_all: bool,
                   wide: bool = False, tz: tzinfo | None = None) -> None:
    """One article's counts per language and channel, and its rows (every row with --all, streamed)."""
    from itertools import islice

    from publisher.cli.tables import Column, Short, print_table

    out = console()
    if show_all:
        click.echo("\t".join(("article", "language", "channel", "target", "state", "attempts", "where",
                               "updated", "last error", "worker")))
        for slug in slugs:
            for row in ledger.rows(article=slug, channel=channel):
                click.echo("\t".join((row.key.article, row.key.lang, row.key.channel, row.key.target, row.state,
                                       str(row.attempts), row.remote_url or "", _updated(row.updated_at),
                                       _one_line(row.last_error), row.worker or "")))
        return
    for slug in slugs:
        summary = ledger.summary(article=slug, channel=channel)
        if not summary:
            out.print(f"{slug}: nothing in the ledger yet.")
            continue
        states = _present(list(summary.values()), wide)
        counts_columns = [Column("lang", min_width=4), Column("channel", min_width=8),
                          *(Column(_header(state), whole=True, justify="right") for state in states)]
        print_table(out, counts_columns, [[lang, chan, *(str(counts.get(state, 0) or "") for state in states)]
                                          for (_, lang, chan), counts in summary.items()],
                    wide=wide, title=slug)
        rows: list[list[Any]] = []
        shown = list(islice(ledger.rows(article=slug, channel=channel), _SHOWN))
        workers = any(row.worker for row in shown)   # who sent what (issue 14); older rows have no worker
        for row in shown:
            rows.append([row.key.lang, row.key.channel, row.key.target, _header(row.state), str(row.attempts),
                         row.remote_url or "", Short(_updated(row.updated_at), _compact(row.updated_at, tz)),
                         _one_line(row.last_error), *([row.worker or ""] if workers else [])])
        columns = [Column("lang", min_width=4), Column("channel", min_width=8),
                   Column("target", min_width=10, drop=3), Column("state", whole=True),
                   Column("tries", whole=True, drop=1), Column("where", min_width=12, drop=4),
                   Column("updated", whole=True, drop=2), Column("last error", min_width=16, drop=5),
                   *([Column("worker", min_width=10, drop=1)] if workers else [])]
        print_table(out, columns, rows, wide=wide, title=f"{slug}: deliveries")
        total = sum(sum(counts.values()) for counts in summary.values())
        if total > len(rows):
            out.print(f"... and {total - len(rows)} more (publisher status {slug} --all lists every row)")
    _attention(ledger, list(slugs), channel, wide)


def _compact(moment: str | None, tz: tzinfo | None) -> str:
    """A ledger time for a narrow column: date, hours and minutes in the site's time zone
    (``2024-06-28 09:00``)."""
    from publisher.timefmt import iso_text

    text = iso_text(moment) or ""
    if not text:
        return ""
    try:
        local = datetime.fromisoformat(text).astimezone(tz)
    except ValueError:
        return text
    return local.strftime("%Y-%m-%d %H:%M")


def _updated(moment: str | None) -> str:
    from publisher.timefmt import iso_text

    return iso_text(moment) or ""


def _one_line(text: str | None) -> str:
    """A value for a tab-separated line: its tabs and line breaks would split the line."""
    return " ".join((text or "").split())


@click.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True,
              help="Import even a page that is already a story (same title and date, or source URL), and "
                   "overwrite an existing content file.")
@click.option("--slug", help="Slug to use instead of one made from the title (the page is then taken as another "
                             "story, even if one has its title and date).")
@click.option("--date", "when", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Publication date, for a page that does not show one.")
@click.pass_context
def import_command(ctx: click.Context, source: Path, force: bool, slug: str | None, when: datetime | None) -> None:
    """Turn a news page (the UNPOG text format, or an HTML page) into content/<slug>.<lang>.md.

    The language is detected from the text (Hangul or Latin); the summary is the first paragraph, and an
    HTML page's picture (with its alt text) and address come along. A page that is already a story of the
    site (the same title and date, or the same source URL) is refused, naming that file. Prints the path written.
    """
    from publisher.importer import import_file

    site = get_site(ctx)
    path = import_file(site, source, force=force, slug=slug, when=when.date() if when else None)
    click.echo(str(path))


@click.group()
def config() -> None:
    """Inspect the settings."""


@config.command("check")
@click.option("--dns", "dns", is_flag=True,
              help="Also look up the sender domain's SPF, DKIM key and DMARC record and say what Gmail, Yahoo "
                   "and Outlook would reject (exit code 1 when a check fails).")
@click.pass_context
def config_check(ctx: click.Context, dns: bool) -> None:
    """Which channels are configured, which fall back to local files, which settings are missing or invalid.

    Secrets are never printed, only whether they are set. Exit code 2 when a value is invalid; with --dns, 1
    when the sender domain's DNS fails a check.
    """
    from rich.table import Table

    from publisher.channels.registry import channel_names, get_channel
    from publisher.errors import ConfigError
    from publisher.setting_registry import all_settings
    from publisher.settings import CORE_SETTINGS

    site = get_site(ctx)
    out = console()
    problems: list[str] = []
    warnings: list[str] = []
    table = Table(title=f"Channels of {site.root}")
    for column in ("channel", "mode", "destination", "missing settings"):
        table.add_column(column, overflow="fold")
    for name in channel_names():
        channel = get_channel(name, site)
        problems += [problem for problem in channel.check() if problem not in problems]
        warnings += channel.warnings()
        mode = "configured" if channel.is_configured() else "local fallback"
        table.add_row(name, mode, channel.destination(), ", ".join(channel.missing_settings()))
    out.print(table)
    settings = Table(title="Settings")
    for column in ("setting", "value", "from"):
        settings.add_column(column, overflow="fold")
    for setting in all_settings():   # core and channel settings, each checked once
        try:
            site.config.get(setting)
        except ConfigError as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
        # every core setting; a channel's only when set (its table row above says what is missing)
        if setting in CORE_SETTINGS or site.config.is_set(setting):
            settings.add_row(setting.name, site.config.describe(setting), site.config.source(setting.name))
    out.print(settings)
    from publisher.translate.registry import setup_warnings

    try:
        languages = site.languages   # a language without UI strings
    except ConfigError as exc:
        if str(exc) not in problems:   # a channel's check may have met it already
            problems.append(str(exc))
    else:
        from publisher.settings import site_settings

        # SITE_TITLE_<LANG> and the like, for every language of the site (a third one's too)
        problems += [str(exc) for exc in site.config.problems(site_settings(languages)) if str(exc) not in problems]
        warnings = [*setup_warnings(languages, site.config, site), *warnings]
    _warn_and_conclude(site, out, problems, warnings)
    if dns:
        _dns_check(ctx, site)


def _warn_and_conclude(site: Site, out: Any, problems: list[str], warnings: list[str]) -> None:
    """The warnings (unset settings that will bite, links mail cannot use, images without alt text, then each
    channel's risky values), the errors, and the verdict: exit 2 on an error; else "valid", with the count of
    warnings when there are any."""
    from publisher.setup_checks import setting_warnings

    warnings = [*setting_warnings(site), *warnings]
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if problems:
        for problem in problems:
            click.echo(f"Error: {problem}", err=True)
        raise UserError(f"{len(problems)} invalid setting(s)")
    if warnings:
        count = f"{len(warnings)} warning" + ("s" if len(warnings) != 1 else "")
        out.print(f"All settings are valid, with {count} (above).", style="yellow")
    else:
        out.print("All settings are valid.", style="green")


def _dns_check(ctx: click.Context, site: Site) -> None:
    """The sender domain's records, one line each, then each provider's verdict; exit 1 when one fails."""
    from publisher.dnscheck import check_domain, verdicts

    report = check_domain(site)
    click.echo(f"Sender domain: From {report.from_domain}, envelope (SPF) {report.envelope_domain}, DKIM "
               f"{report.dkim_domain or 'not signed by publisher'}")
    for finding in report.findings:
        click.echo(f"{finding.level.upper():7} {finding.check:9} {finding.text}")
    for line in verdicts(report):
        click.echo(line)
    if report.failed:
        ctx.exit(1)
