"""Database commands: ``db status``, ``db migrate`` and ``db copy`` (moving a site to PostgreSQL)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from publisher.cli import get_site

if TYPE_CHECKING:
    from publisher.site import Site


def _url(site: Site) -> str | None:
    url = site.config.get("PUBLISHER_DATABASE_URL")
    return str(url) if url else None


@click.group()
def db() -> None:
    """The site's database (PUBLISHER_DATABASE_URL): its migrations, and copying it to another database."""


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The database's dialect, where it is (never its password), its version and the migrations still to apply.

    It only reads: a database that does not exist yet is not created, and nothing is migrated.
    """
    from publisher.store.admin import schema_status

    site = get_site(ctx)
    state = schema_status(_url(site), state_dir=site.state_dir)
    if as_json:
        click.echo(json.dumps(state.as_dict(), ensure_ascii=False))
        return
    click.echo(f"dialect: {state.dialect}")
    click.echo(f"database: {state.location}" + ("" if state.exists else " (not created yet)"))
    click.echo(f"version: {state.version}")
    click.echo(f"applied: {len(state.applied)} migrations")
    if state.pending:
        click.echo(f"pending: {', '.join(state.pending)} (publisher db migrate applies them)")
    else:
        click.echo("pending: none")


@db.command("migrate")
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply the migrations the database does not have yet (any command that opens it does so too)."""
    site = get_site(ctx)
    applied = site.store().migrate()
    for name in applied:
        click.echo(f"applied {name}")
    from publisher.store.admin import schema_status

    state = schema_status(_url(site), state_dir=site.state_dir)
    click.echo(f"{state.dialect} database at version {state.version}"
               + ("" if applied else " (already up to date)"))


@db.command("copy")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="The database to copy into: postgresql://USER:PASSWORD@HOST:5432/DATABASE (or sqlite:///PATH).")
@click.option("--replace", is_flag=True, help="Delete what the target holds first (refused otherwise).")
@click.pass_context
def copy(ctx: click.Context, target_url: str, replace: bool) -> None:
    """Copy the site's database (ledger, subscribers, translation memory, jobs, web state) into another.

    The target is migrated, filled in one transaction and its row counts checked against the source before
    the commit: on any difference nothing is written. Then set PUBLISHER_DATABASE_URL to the target.
    """
    from publisher.errors import ConfigError
    from publisher.settings import parse_database_url, redact_database_url
    from publisher.store import open_store
    from publisher.store.admin import copy_database

    site = get_site(ctx)
    try:
        target_url = parse_database_url(target_url)
    except ValueError as exc:
        raise ConfigError("--to", str(exc)) from None
    source = site.store()
    target = open_store(target_url, state_dir=site.state_dir)
    try:
        report = copy_database(source, target, replace=replace)
    finally:
        target.close()
    for table, count in report.counts.items():
        click.echo(f"{table}: {count} rows")
    click.echo(f"copied into {redact_database_url(target_url)}; the row counts match. Set "
               "PUBLISHER_DATABASE_URL to it to use it.")
