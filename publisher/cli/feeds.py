"""``publisher feeds``: rebuild the RSS, Atom and JSON feeds, the OPML list and the pages under public/."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from publisher.cli import get_site

if TYPE_CHECKING:
    from publisher.site import Site


@click.group()
def feeds() -> None:
    """RSS 2.0, Atom and JSON Feed per language and per theme, in public/<lang>/.

    Publishing an article updates the feeds of its languages and theme; `feeds build` rebuilds them all.
    Feed titles and descriptions come from SITE_TITLE_EN/KO and SITE_DESCRIPTION_EN/KO.
    """


@feeds.command()
@click.option("--all", "include_all", is_flag=True,
              help="Also add every article in content/ that may be published (machine translations only with "
                   "PUBLISHER_ALLOW_MACHINE_TRANSLATION), and record it in the ledger as published to the feeds.")
@click.pass_context
def build(ctx: click.Context, include_all: bool) -> None:
    """Rebuild every feed, index page and article page from the published articles.

    Each file is written to a temporary file and renamed into place, and only when its bytes changed.
    Files an earlier build wrote that are no longer needed (a deleted article's page) are removed.
    """
    from publisher.pipeline import build_feeds

    site = get_site(ctx)
    result = build_feeds(site, include_unpublished=include_all)
    removed = f", {len(result.removed)} removed" if result.removed else ""
    click.echo(f"{len(result.written)} files written, {len(result.unchanged)} unchanged{removed}, in {site.public_dir}")
    for path in result.written:
        click.echo(f"  wrote {path}")
    for path in result.removed:
        click.echo(f"  removed {path}")


@feeds.command("list")
@click.pass_context
def list_feeds(ctx: click.Context) -> None:
    """Print the address of every feed (what readers subscribe to)."""
    from publisher.channels.feeds import FeedsChannel
    from publisher.formatters.feeds import OPML_FILENAME

    site = get_site(ctx)
    site_feeds = FeedsChannel(site).site_feeds(site.ledger())   # the ledger as PublishedVersions
    for spec in site_feeds.specs():
        for fmt in spec.formats:
            click.echo(f"{spec.lang}\t{fmt}\t{spec.url(fmt)}\t{spec.title}")
    click.echo(f"-\topml\t{site.url}/{OPML_FILENAME}\tevery feed above, for import into a reader")
