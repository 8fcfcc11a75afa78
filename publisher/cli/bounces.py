"""`publisher bounces process`: read the bounce mailbox (DSNs, complaints) and update the suppression list."""

from __future__ import annotations

from pathlib import Path

import click

from publisher.cli import get_site


@click.group()
def bounces() -> None:
    """Bounces and complaints: read them from the bounce mailbox, suppress the addresses they name."""


@bounces.command("process")
@click.option("--maildir", "maildir", type=click.Path(path_type=Path), metavar="DIR",
              help="Read this Maildir (default: BOUNCE_MAILDIR).")
@click.option("--imap", is_flag=True, help="Read the IMAP folder of BOUNCE_IMAP_HOST/USER/PASSWORD/FOLDER (TLS).")
@click.option("--pop3", is_flag=True, help="Read the POP3 mailbox of BOUNCE_POP3_HOST/USER/PASSWORD (TLS).")
@click.pass_context
def process(ctx: click.Context, maildir: Path | None, imap: bool, pop3: bool) -> None:
    """Classify each new message of the bounce mailbox once and act on it.

    A hard bounce (a DSN 5.x.x) suppresses the address at once, soft bounces (4.x.x, mailbox full) after
    BOUNCE_SOFT_LIMIT in BOUNCE_SOFT_DAYS days, a complaint (ARF) unsubscribes and suppresses it
    (complained); delay notices and auto-replies suppress nobody. A message is acted on once, remembered by
    its Message-ID. A message that cannot be classified is kept (moved from a Maildir to
    .publisher/bounces/unclassified/, flagged on IMAP, left on a POP3 server) and reported, never deleted.

    Exit code 0 when it ran (the counts are printed, unclassified messages included), 2 on bad options or a
    source that cannot be read.
    """
    from publisher.bounces.process import process as run
    from publisher.bounces.settings import BOUNCE_IMAP_HOST, BOUNCE_MAILDIR
    from publisher.bounces.sources import ImapSource, MaildirSource, Pop3Source, source_from_config
    from publisher.errors import InputError

    if sum((maildir is not None, imap, pop3)) > 1:
        raise InputError("options", "give one of --maildir DIR, --imap, --pop3")
    site = get_site(ctx)
    config = site.config
    source: MaildirSource | ImapSource | Pop3Source
    if maildir is not None:
        source = MaildirSource(maildir, site.state_dir / "bounces" / "unclassified")
    elif imap:
        source = source_from_config(site, config, "imap")
    elif pop3:
        source = source_from_config(site, config, "pop3")
    elif config.get(BOUNCE_MAILDIR):
        source = source_from_config(site, config, "maildir")
    elif config.get(BOUNCE_IMAP_HOST):
        source = source_from_config(site, config, "imap")
    else:
        raise InputError("options", "no bounce mailbox: give --maildir DIR, --imap or --pop3 (or set BOUNCE_MAILDIR)")
    tally = run(site, source)
    for line in tally.notes:
        click.echo(line, err=True)
    click.echo(tally.summary())
