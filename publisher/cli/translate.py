"""Translation commands: ``models list|install|evaluate``, ``translate PATH --to LANG`` and ``review PATH``."""

from __future__ import annotations

from pathlib import Path

import click

from publisher.cli import console, echo_json_lines, get_site, site_language


@click.group()
def models() -> None:
    """Offline translation models: Argos packages, OPUS-MT (Marian) and NLLB-200 CTranslate2 folders.

    Argos packages are kept in ARGOS_PACKAGES_DIR (default: ~/.local/share/argos-translate/packages, where
    Argos Translate's own tools put them); `models install --dir` copies a CTranslate2 folder into
    PUBLISHER_MODELS_DIR (default: <site>/.publisher/models). TRANSLATION_MODEL_EN_KO and
    TRANSLATION_MODEL_KO_EN choose one per direction (default: argos).
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model and direction (JSON Lines).")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """Show every installed model: name, kind, direction, model id, folder, and which one each direction uses."""
    from publisher.translate.ct2models import models_dir
    from publisher.translate.packages import packages_dir
    from publisher.translate.registry import all_models

    site = get_site(ctx)
    rows = all_models(site)
    if as_json:
        echo_json_lines(row.as_dict() for row in rows)
        return
    if not rows:
        click.echo(f"No translation model installed in {packages_dir(site.config)} or {models_dir(site)}.")
        click.echo("Install one: publisher models install en ko (online), "
                   "publisher models install --file PATH.argosmodel or --dir PATH (offline).")
        return
    from rich.table import Table

    table = Table(title="Translation models")
    for column in ("name", "kind", "from", "to", "used", "model id", "folder"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.name, row.kind, row.source_lang, row.target_lang, "yes" if row.chosen else "",
                      row.model_id, str(row.path))
    console().print(table)


@models.command("install")
@click.argument("pair", nargs=-1, metavar="[FROM TO]")
@click.option("--file", "archive", type=click.Path(dir_okay=False, path_type=Path),
              help="Install this .argosmodel file (works offline).")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Install a CTranslate2 model folder (OPUS-MT or NLLB, from ct2-transformers-converter).")
@click.option("--kind", type=click.Choice(["marian", "nllb"]), help="With --dir: the model's kind (default: recognised).")
@click.option("--from", "source_lang", metavar="LANG", help="With --dir: the language it translates from.")
@click.option("--to", "target_lang", metavar="LANG", help="With --dir: the language it translates into.")
@click.option("--name", help="With --dir: the name settings choose it by (default: the folder's name).")
@click.pass_context
def install_model(ctx: click.Context, pair: tuple[str, ...], archive: Path | None, folder: Path | None,
                  kind: str | None, source_lang: str | None, target_lang: str | None, name: str | None) -> None:
    """Install a model: FROM TO from the Argos package index (online), --file PATH.argosmodel, or --dir PATH.

    --dir copies a CTranslate2 folder: Marian (model.bin, config.json, shared_vocabulary.json, source.spm,
    target.spm; the direction from --from/--to or the folder name, e.g. opus-mt-en-ko) or NLLB (one
    SentencePiece model; both en->ko and ko->en unless --from/--to narrow it).

    Example: publisher models install en ko
    """
    from publisher.translate.packages import install_from_file, install_from_index, packages_dir

    site = get_site(ctx)
    if folder is None and (kind or source_lang or target_lang or name):
        raise click.UsageError("--kind, --from, --to and --name go with --dir PATH")
    if sum(bool(x) for x in (pair, archive, folder)) > 1:
        raise click.UsageError("give one of FROM TO, --file PATH or --dir PATH")
    if folder is not None:
        from publisher.translate.ct2models import install_folder, models_dir

        model = install_folder(folder, models_dir(site), name=name, kind=kind, source_lang=source_lang,
                               target_lang=target_lang)
        directions = ", ".join(f"{a}->{b}" for a, b in model.directions)
        click.echo(f"Installed {model.kind} model {model.name} ({directions}) in {model.path}")
        settings = " or ".join(f"TRANSLATION_MODEL_{a.upper()}_{b.upper()}={model.name}" for a, b in model.directions)
        click.echo(f"Use it with {settings}")
        return
    directory = packages_dir(site.config)
    if archive is not None:
        package = install_from_file(archive, directory)
    else:
        if len(pair) != 2:
            raise click.UsageError("give the language pair, e.g. 'publisher models install en ko', "
                                   "or --file PATH or --dir PATH")
        from_code, to_code = pair
        package = install_from_index(
            from_code, to_code, directory,
            index_url=site.config.get("ARGOS_PACKAGE_INDEX") or None,
            timeout=float(site.config.get("PUBLISHER_MODEL_DOWNLOAD_TIMEOUT")),
        )
    click.echo(f"Installed {package.from_code}->{package.to_code} {package.version} in {package.path}")


@models.command("evaluate")
@click.argument("tsv", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "source_lang", metavar="LANG", required=True, callback=site_language,
              help="Language of the source column.")
@click.option("--to", "target_lang", metavar="LANG", required=True, callback=site_language,
              help="Language of the reference column.")
@click.option("--model", "names", multiple=True, metavar="NAME",
              help="A model to score (repeat to compare; default: the one the settings choose).")
@click.option("--beam-size", "beam_sizes", multiple=True, type=click.IntRange(min=1), metavar="N",
              help="Beam size to search with (repeat to compare, e.g. --beam-size 2 --beam-size 4; "
                   "default: PUBLISHER_TRANSLATION_BEAM_SIZE).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the hypotheses, one a line (FILE.<model>.txt for each of several models, "
                   "FILE.<model>.beam<N>.txt for several beam sizes).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model (JSON Lines).")
@click.pass_context
def evaluate_models(ctx: click.Context, tsv: Path, source_lang: str, target_lang: str, names: tuple[str, ...],
                    beam_sizes: tuple[int, ...], out: Path | None, as_json: bool) -> None:
    """Score models against human translations: chrF2 and BLEU (sacrebleu), glossary terms, sentences per second.

    TSV is UTF-8, tab-separated: a header row naming the language columns (e.g. en<TAB>ko), or column 1
    the source and column 2 the reference; lines starting with # are comments. The translation memory
    is not used: the scores are the model's own. Several --beam-size values score each model at each, to
    weigh a wider search's quality against its time (sentences/s) on your own sentences.
    """
    from publisher.translate.evaluate import bleu_tokenizer, evaluate

    if source_lang == target_lang:
        raise click.UsageError("--from and --to must differ")
    site = get_site(ctx)
    results = evaluate(site, tsv, source_lang, target_lang, list(names) or None, beam_sizes=list(beam_sizes),
                       out=out)
    if as_json:
        echo_json_lines(result.as_dict() for result in results)
        return
    from rich.table import Table

    tokenizer, why = bleu_tokenizer(target_lang)
    first = results[0]
    table = Table(title=f"{tsv}: {first.sentences} sentences, {source_lang}->{target_lang}")
    for column in ("model", "beam", "chrF2", "BLEU", "glossary terms", "repaired", "sentences/s", "model id"):
        table.add_column(column, overflow="fold")
    for result in results:
        rate = result.glossary_hit_rate
        glossary = f"{result.glossary_hits}/{result.glossary_terms}" + (f" ({rate:.0%})" if rate is not None else "")
        table.add_row(result.name, str(result.beam_size), f"{result.chrf:.2f}", f"{result.bleu:.2f}", glossary,
                      str(result.repaired), f"{result.sentences_per_second:.1f}", result.model_id)
    console().print(table)
    click.echo(f"BLEU tokenizer: {tokenizer} ({why})")
    click.echo(f"chrF2 signature: {first.chrf_signature}")
    click.echo(f"BLEU signature: {first.bleu_signature}")
    for result in results:
        if result.out is not None:
            click.echo(f"Wrote {result.out} ({result.name}, beam {result.beam_size})")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target_lang", metavar="LANG", callback=site_language, required=True,
              help="Language to translate into.")
@click.option("--force", is_flag=True, help="Replace an existing original, human or reviewed version too.")
@click.option("--reuse-memory", is_flag=True,
              help="Also take sentences other models translated from the memory (by default only this model's).")
@click.pass_context
def translate(ctx: click.Context, paths: tuple[Path, ...], target_lang: str, force: bool, reuse_memory: bool) -> None:
    """Translate articles offline into their sibling file content/<slug>.<lang>.md (translation: machine).

    Glossary terms (locales/glossary.tsv) are kept as the glossary writes them; sentences translated
    before by the same model come from the translation memory (--reuse-memory: by any model); the rest of all the articles goes to the model in one batch.
    Nothing is written unless every article can be. A machine translation is published only after
    `publisher review` or when PUBLISHER_ALLOW_MACHINE_TRANSLATION=true.
    """
    from publisher.translate.workflow import translate_files

    site = get_site(ctx)
    for report in translate_files(site, list(paths), target_lang, force=force, reuse_memory=reuse_memory):
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
