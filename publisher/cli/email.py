"""Commands for email: `publisher subscribers ...` to manage the list and `publisher bulletin` to send a digest."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from publisher.cli import console, echo_json_lines, get_site, site_language

# publisher.subscribers.STATUSES, written here so that `--help` imports nothing more (tests/test_cli.py)
STATUS_CHOICES = ["pending", "active", "unsubscribed", "bounced", "complained", "suppressed"]


@click.group()
def subscribers() -> None:
    """Manage the bulletin subscribers: add, import, list, remove, export, suppress, unsuppress."""


@subscribers.command("add")
@click.argument("email")
@click.option("--lang", metavar="LANG", callback=site_language,
              help="Language of the bulletins. Default: the site's first language (PUBLISHER_LANGUAGES).")
@click.option("--name", help="Display name, used in the To: header.")
@click.option("--theme", "themes", multiple=True, metavar="THEME", help="Only bulletins on this theme (repeatable).")
@click.option("--pending", is_flag=True, help="Ask for confirmation by email first (double opt-in).")
@click.pass_context
def add(ctx: click.Context, email: str, lang: str | None, name: str | None, themes: tuple[str, ...],
        pending: bool) -> None:
    """Add EMAIL to the list (an address already there, in any case, is left as it is)."""
    from publisher.article import slugify

    site = get_site(ctx)
    lang = lang or site.languages[0]
    subscribers_list = site.subscribers()
    existed = subscribers_list.get(email) is not None
    subscriber = subscribers_list.add(email, name=name, lang=lang, status="pending" if pending else "active",
                                      themes=[slugify(t) for t in themes])
    if existed and subscriber.suppressed:
        click.echo(f"{subscriber.email} is on the suppression list ({subscriber.status}: "
                   f"{subscriber.status_reason or 'no reason recorded'}); unchanged. Only `publisher subscribers "
                   "unsuppress EMAIL --reason TEXT` brings it back.")
        return
    if existed:
        click.echo(f"{subscriber.email} is already on the list ({subscriber.status}, {subscriber.lang}); unchanged.")
        return
    click.echo(f"Added {subscriber.email} ({subscriber.status}, {subscriber.lang}).")
    if pending:
        where = _send_confirmation(site, subscriber)
        click.echo(f"Confirmation request sent ({where}).")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pending", is_flag=True,
              help="Import as pending and send each new address a confirmation request (double opt-in). "
                   "Default: active, because the site vouches for their consent.")
@click.option("--check-dns", is_flag=True,
              help="Also ask DNS whether each address's domain accepts mail (needs the network); "
                   "by default only the syntax is checked.")
@click.pass_context
def import_(ctx: click.Context, csv_file: Path, pending: bool, check_dns: bool) -> None:
    """Import subscribers from a CSV file with the columns email,name,language (language optional, default en).

    UTF-8 with or without BOM, CRLF or LF. Bad rows are reported with their line number and skipped; the
    good rows are imported. Addresses already on the list (in any case) are left unchanged, so importing
    the same file twice changes nothing, and never brings back an address on the suppression list (bounced,
    complained, suppressed). Exit code 2 when a row was rejected (the good rows are imported).
    """
    site = get_site(ctx)
    subscribers_list = site.subscribers()
    report = subscribers_list.import_csv(csv_file, status="pending" if pending else "active", check_dns=check_dns)
    for line in report.rejected:
        click.echo(f"skipped {line}", err=True)
    click.echo(f"{report.added} added, {report.already_present} already on the list, "
               f"{len(report.rejected)} rejected.")
    if pending and report.added:
        # Only the addresses this file added: someone already pending was asked when they were added.
        sent = 0
        for subscriber in subscribers_list.added_by(report):   # streamed; still pending ones only
            _send_confirmation(site, subscriber)
            sent += 1
        click.echo(f"{sent} confirmation requests sent.")
    if report.rejected:
        ctx.exit(2)     # bad input, like every other input error; the lines above say which rows


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines), for scripts.")
@click.option("--status", type=click.Choice(STATUS_CHOICES),
              help="Only subscribers with this status.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool, status: str | None) -> None:
    """List subscribers, oldest first, with their status and why it last changed (a bounce, a complaint)."""
    site = get_site(ctx)
    subscribers_list = site.subscribers()
    if as_json:
        echo_json_lines(_as_dict(subscriber) for subscriber in subscribers_list.iter_all(status=status))
        return
    from rich.table import Table

    table = Table(title=f"Subscribers: {subscribers_list.count(status=status)}")
    for column in ("email", "name", "language", "status", "reason", "themes", "since"):
        table.add_column(column, overflow="fold")
    for subscriber in subscribers_list.iter_all(status=status):
        reason = subscriber.status_reason or ""
        if reason and subscriber.status_at is not None:
            reason += f" ({subscriber.status_at.date().isoformat()})"
        table.add_row(subscriber.email, subscriber.name or "", subscriber.lang, subscriber.status, reason,
                      ", ".join(subscriber.themes) or "all", subscriber.created_at.date().isoformat())
    console().print(table)


@subscribers.command("suppress")
@click.argument("email")
@click.option("--reason", required=True, help="Why (recorded, shown by `subscribers list`).")
@click.pass_context
def suppress(ctx: click.Context, email: str, reason: str) -> None:
    """Never mail EMAIL again (status suppressed), e.g. an address an ESP has suppressed."""
    subscriber = get_site(ctx).subscribers().suppress(email, reason=reason)
    click.echo(f"{subscriber.email}: {subscriber.status} ({subscriber.status_reason}).")


@subscribers.command("unsuppress")
@click.argument("email")
@click.option("--reason", required=True, help="Why it may be mailed again (recorded).")
@click.pass_context
def unsuppress(ctx: click.Context, email: str, reason: str) -> None:
    """Take EMAIL off the suppression list (bounced, complained or suppressed): it becomes active again.

    The only way back: an import, `subscribers add` or the web form never bring back a suppressed address.
    """
    subscriber = get_site(ctx).subscribers().unsuppress(email, reason=reason)
    click.echo(f"{subscriber.email} is {subscriber.status} again ({subscriber.status_reason}).")


@subscribers.command("remove")
@click.argument("email")
@click.pass_context
def remove(ctx: click.Context, email: str) -> None:
    """Delete EMAIL from the list entirely (to stop bulletins but keep the record, the reader unsubscribes)."""
    from publisher.errors import NotFound

    if not get_site(ctx).subscribers().remove(email):
        raise NotFound(f"{email}: not on the subscriber list")
    click.echo(f"Removed {email}.")


@subscribers.command("export")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (atomically). Default: standard output.")
@click.option("--status", type=click.Choice(STATUS_CHOICES),
              help="Only subscribers with this status.")
@click.option("--suppressed", is_flag=True,
              help="Export the suppression list instead: email,status,reason,since (bounced, complained, "
                   "suppressed).")
@click.pass_context
def export(ctx: click.Context, out_file: Path | None, status: str | None, suppressed: bool) -> None:
    """Export subscribers as CSV (email,name,language,status,themes,created_at,confirmed_at); import reads it back."""
    import io

    from publisher.errors import InputError

    if suppressed and status:
        raise InputError("--suppressed", "cannot be combined with --status")
    subscribers_list = get_site(ctx).subscribers()

    def write(out: Any) -> int:
        if suppressed:
            return subscribers_list.export_suppressed(out)
        return subscribers_list.export_csv(out, status=status)

    if out_file is None:
        write(sys.stdout)
        return
    from publisher.fsutil import atomic_write_text

    buffer = io.StringIO()
    count = write(buffer)
    atomic_write_text(out_file, buffer.getvalue(), mode=0o600)   # personal data: readable by its owner only
    click.echo(f"{count} subscribers written to {out_file}.", err=True)


@click.command()
@click.option("--since", "since_text", required=True, metavar="DATE",
              help="Articles dated on or after this day (YYYY-MM-DD, in PUBLISHER_TIMEZONE).")
@click.option("--theme", help="Only articles on this theme, to the subscribers who follow it (or every theme).")
@click.option("--lang", "langs", multiple=True, metavar="LANG", callback=site_language,
              help="Only these language versions (repeatable). Default: the site's languages.")
@click.option("--dry-run", is_flag=True, help="Count who would get what; send nothing, change nothing.")
@click.option("--force", is_flag=True, help="Send again to subscribers the ledger says already got this digest.")
@click.pass_context
def bulletin(ctx: click.Context, since_text: str, theme: str | None, langs: tuple[str, ...], dry_run: bool,
             force: bool) -> None:
    """Send a digest of the articles published since DATE to every active subscriber, in their language.

    The digest is recorded in the ledger as digest-DATE[-THEME], one row per subscriber: running the same
    command again after an interruption sends only to those who did not get it (see docs for the rule about
    the few that were being sent at the moment of a crash). A refusal of the sender (a sending quota) or an
    SMTP server gone down stops the run with one line, the rest left for the next run. Exit code 1 when a
    delivery failed or the run stopped.
    """
    from rich.table import Table

    from publisher import pipeline
    from publisher.article import slugify
    from publisher.errors import InputError

    site = get_site(ctx)
    zone = site.timezone   # outside the try: a bad setting (a ConfigError, a ValueError) is not a bad --since
    try:
        since = datetime.strptime(since_text.strip(), "%Y-%m-%d").replace(tzinfo=zone)
    except ValueError:
        raise InputError("--since", f"expected a date such as 2024-06-01, got {since_text!r}") from None
    reports, renditions, notes = pipeline.bulletin(
        site, since=since, theme=slugify(theme) if theme else None, langs=list(langs) or None, force=force,
        dry_run=dry_run, console=console(stderr=True))
    by_lang = {rendition.lang: rendition for rendition in renditions}
    fallback = next((rendition for rendition in renditions if rendition.meta.get("fallback")), None)
    stories = {slug for rendition in renditions for slug in rendition.meta["articles"]}
    table = Table(title=("Dry run, nothing sent: " if dry_run else "") + f"{renditions[0].article}, "
                        f"{len(stories)} articles")
    for column in ("language", "articles", "subject", "where", "state", "note"):
        table.add_column(column, overflow="fold")
    stopped = [report for report in reports if report.state == "stopped"]
    for report in reports:
        if report.state == "stopped":   # not a language: said on its own line below
            continue
        shown = by_lang.get(report.lang, fallback)   # readers without their language get the fallback's
        table.add_row(report.lang, str(len(shown.meta["articles"])) if shown else "0",
                      shown.meta["subject"] if shown else "", report.where, report.state, report.note)
    console().print(table)
    for note in notes:
        click.echo(f"{note.article} ({note.lang}): {note.note}", err=True)
    possible_duplicates = sum(getattr(report, "possible_duplicates", 0) for report in reports)
    if possible_duplicates:
        click.echo(f"{possible_duplicates} subscribers were being sent this digest when an earlier "
                   f"run stopped; they got it again and may have it twice.", err=True)
    for report in stopped:
        click.echo(f"{report.channel}: {report.note}", err=True)
    if not dry_run and any(r.state in ("failed", "stopped") for r in reports):
        ctx.exit(1)


def _send_confirmation(site: Any, subscriber: Any) -> str:
    from publisher.mail.send import confirmation_message, send_message

    return send_message(site, confirmation_message(site, subscriber))


def _as_dict(subscriber: Any) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "lang": subscriber.lang,
        "status": subscriber.status,
        "themes": subscriber.themes,
        "created_at": subscriber.created_at,     # datetimes: echo_json_lines writes them in the one format
        "confirmed_at": subscriber.confirmed_at,
        "status_reason": subscriber.status_reason,
        "status_at": subscriber.status_at,
    }
