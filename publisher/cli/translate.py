"""Translation commands: ``models list|install``, ``translate PATH --to LANG`` and ``review PATH``."""

from __future__ import annotations

from pathlib import Path

import click

from publisher.cli import console, get_site, site_language


@click.group()
def models() -> None:
    """Offline translation models (Argos Translate packages): list and install them.

    Models are kept in ARGOS_PACKAGES_DIR (default: ~/.local/share/argos-translate/packages, where
    Argos Translate's own tools put them).
    """


@models.command("list")
@click.pass_context
def list_models(ctx: click.Context) -> None:
    """Show the installed language pairs, their versions and folders."""
    from rich.table import Table

    from publisher.translate.packages import installed_packages, packages_dir

    site = get_site(ctx)
    directory = packages_dir(site.config)
    found = installed_packages(directory)
    if not found:
        click.echo(f"No translation model installed in {directory}.")
        click.echo("Install one: publisher models install en ko (online) or "
                   "publisher models install --file PATH.argosmodel (offline).")
        return
    table = Table(title=f"Translation models in {directory}")
    for column in ("from", "to", "version", "model id", "folder"):
        table.add_column(column, overflow="fold")
    for package in found:
        table.add_row(package.from_code, package.to_code, package.version, package.model_id, str(package.path))
    console().print(table)


@models.command("install")
@click.argument("pair", nargs=-1, metavar="[FROM TO]")
@click.option("--file", "archive", type=click.Path(dir_okay=False, path_type=Path),
              help="Install this .argosmodel file (works offline).")
@click.pass_context
def install_model(ctx: click.Context, pair: tuple[str, ...], archive: Path | None) -> None:
    """Install a model: FROM TO from the Argos package index (online), or --file PATH.argosmodel (offline).

    Example: publisher models install en ko
    """
    from publisher.translate.packages import install_from_file, install_from_index, packages_dir

    site = get_site(ctx)
    directory = packages_dir(site.config)
    if archive is not None:
        if pair:
            raise click.UsageError("give either FROM TO or --file PATH, not both")
        package = install_from_file(archive, directory)
    else:
        if len(pair) != 2:
            raise click.UsageError("give the language pair, e.g. 'publisher models install en ko', or --file PATH")
        from_code, to_code = pair
        package = install_from_index(
            from_code, to_code, directory,
            index_url=site.config.get("ARGOS_PACKAGE_INDEX") or None,
            timeout=float(site.config.get("PUBLISHER_MODEL_DOWNLOAD_TIMEOUT")),
        )
    click.echo(f"Installed {package.from_code}->{package.to_code} {package.version} in {package.path}")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target_lang", metavar="LANG", callback=site_language, required=True,
              help="Language to translate into.")
@click.option("--force", is_flag=True, help="Replace an existing original, human or reviewed version too.")
@click.pass_context
def translate(ctx: click.Context, paths: tuple[Path, ...], target_lang: str, force: bool) -> None:
    """Translate articles offline into their sibling file content/<slug>.<lang>.md (translation: machine).

    Glossary terms (locales/glossary.tsv) are kept as the glossary writes them; sentences translated
    before come from the translation memory; the rest of all the articles goes to the model in one batch.
    Nothing is written unless every article can be. A machine translation is published only after
    `publisher review` or when PUBLISHER_ALLOW_MACHINE_TRANSLATION=true.
    """
    from publisher.translate.workflow import translate_files

    site = get_site(ctx)
    for report in translate_files(site, list(paths), target_lang, force=force):
        click.echo(f"Wrote {report.path} (machine translation, {report.model}): {report.summary()}.")
        for sentence in report.repaired:
            _warn(f"the model dropped a name, code or number (added at the end of the sentence): {sentence}")
        for term in report.missing_terms:
            _warn(f"glossary term {term.source!r} should read {term.expected!r}")
        click.echo(f"After checking it, run: publisher review {report.path}")


def _warn(message: str) -> None:
    # Plain lines, not a rich console: a wrapped path or command could not be copied and pasted.
    click.echo(click.style("check: ", fg="yellow") + message)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def review(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Mark machine translations as reviewed by an editor, so they are published without the machine rule.

    Glossary terms of the original missing from the translation are listed first.
    """
    from publisher.translate.workflow import mark_reviewed

    site = get_site(ctx)
    for path in paths:
        result = mark_reviewed(site, path)
        article = result.article
        if result.source_changed:
            _warn(f"the {article.translation.source_lang} original was edited after this translation was made: "
                  "make sure the review covered the edits")
        for term in result.missing_terms:
            _warn(f"glossary term {term.source!r} should read {term.expected!r}")
        click.echo(f"{path}: reviewed ({article.lang}, translated from {article.translation.source_lang}).")


__all__ = ["models", "review", "translate"]
