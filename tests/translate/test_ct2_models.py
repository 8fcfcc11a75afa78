"""OPUS-MT (Marian) and NLLB CTranslate2 folders: built in code, installed with `models install --dir`, chosen per
direction, translating an article end to end and scored by `models evaluate`; bad folders and files are one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from publisher.config import Config
from publisher.site import Site
from publisher.translate.ct2models import MANIFEST, installed_models
from publisher.translate.synthetic import NLLB_LANGUAGE_CODES, build_marian_model, build_nllb_model

from .conftest import body_of, front_matter
from .test_workflow import STRUCTURED_BODY, block_structure, links

Cli = Callable[..., Result]


@pytest.fixture(scope="session")
def ct2_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders as ct2-transformers-converter writes them, random weights (built once, well under a second each)."""
    folder = tmp_path_factory.mktemp("ct2models")
    return {
        "marian-en-ko": build_marian_model(folder / "opus-mt-en-ko", "en", "ko"),
        "marian-ko-en": build_marian_model(folder / "opus-mt-ko-en", "ko", "en", seed=11),
        "marian-unnamed": build_marian_model(folder / "tiny-marian", "en", "ko", seed=5),
        "marian-multilingual": build_marian_model(folder / "opus-mt-tc-big-en-ko", "en", "ko", seed=3,
                                                  language_token=">>kor<<"),
        "nllb": build_nllb_model(folder / "nllb-200-distilled-600M"),
        "nllb-no-korean": build_nllb_model(folder / "nllb-without-korean", seed=2,
                                           languages=tuple(c for c in NLLB_LANGUAGE_CODES if c != "kor_Hang")),
    }


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def install(cli: Cli, folder: Path, *options: str) -> Result:
    result = cli("models", "install", "--dir", str(folder), *options)
    assert result.exit_code == 0, result.output
    return result


# ---------------------------------------------------------------- install and list


def test_install_a_marian_folder_copies_it_and_lists_it(cli: Cli, site: Site, ct2_folders, tmp_path: Path,
                                                         empty_models_dir: Path) -> None:
    download = shutil.copytree(ct2_folders["marian-en-ko"], tmp_path / "downloads" / "opus-mt-en-ko")

    installed = install(cli, download)
    shutil.rmtree(download)   # the installed copy does not depend on the download
    listed = cli("models", "list", "--json")

    assert "Installed marian model opus-mt-en-ko (en->ko)" in installed.output
    assert "TRANSLATION_MODEL_EN_KO=opus-mt-en-ko" in installed.output
    copy = site.state_dir / "models" / "opus-mt-en-ko"
    assert sorted(p.name for p in copy.iterdir()) == [
        "README.md", "config.json", "model.bin", MANIFEST, "shared_vocabulary.json", "source.spm", "target.spm"]
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert row["name"] == "opus-mt-en-ko" and row["kind"] == "marian"
    assert (row["from"], row["to"], row["chosen"]) == ("en", "ko", False)
    assert row["model_id"].startswith("marian:opus-mt-en-ko:en-ko@") and row["path"] == str(copy)


def test_one_nllb_folder_serves_both_directions(cli: Cli, ct2_folders, empty_models_dir: Path) -> None:
    installed = install(cli, ct2_folders["nllb"])
    listed = cli("models", "list", "--json", env={"TRANSLATION_MODEL_KO_EN": "nllb-200-distilled-600m"})
    table = cli("models", "list")

    assert "Installed nllb model nllb-200-distilled-600m (en->ko, ko->en)" in installed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["kind"], r["from"], r["to"], r["chosen"]) for r in rows] == [
        ("nllb", "en", "ko", False), ("nllb", "ko", "en", True)]
    assert table.exit_code == 0 and "nllb" in table.output and "marian" not in table.output


def test_argos_packages_and_ct2_folders_are_listed_together(cli: Cli, ct2_folders, models_dir: Path) -> None:
    install(cli, ct2_folders["marian-en-ko"])

    rows = [json.loads(line) for line in cli("models", "list", "--json").output.splitlines()]

    assert [(r["name"], r["kind"], r["from"], r["to"], r["chosen"]) for r in rows] == [
        ("argos", "argos", "en", "ko", True), ("argos", "argos", "ko", "en", True),
        ("opus-mt-en-ko", "marian", "en", "ko", False)]


def test_installing_again_under_the_same_name_replaces_it(cli: Cli, site: Site, ct2_folders,
                                                          empty_models_dir: Path) -> None:
    install(cli, ct2_folders["marian-en-ko"], "--name", "office-en-ko")
    install(cli, ct2_folders["marian-unnamed"], "--name", "office-en-ko", "--from", "en", "--to", "ko")

    [model] = installed_models(site.state_dir / "models")
    assert model.name == "office-en-ko" and model.installed_from == str(ct2_folders["marian-unnamed"])
    assert [p.name for p in (site.state_dir / "models").iterdir()] == ["office-en-ko"]


def test_a_multilingual_opus_mt_model_gets_its_target_language_token(cli: Cli, site: Site, ct2_folders,
                                                                      empty_models_dir: Path) -> None:
    from publisher.translate.ct2 import MarianTranslator

    install(cli, ct2_folders["marian-multilingual"])
    [model] = installed_models(site.state_dir / "models")
    translator = MarianTranslator(model, "en", "ko")

    assert model.source_prefix == {"en-ko": ">>kor<<"}
    assert translator._source_tokens(["▁Hello"]) == [">>kor<<", "▁Hello", "</s>"]
    assert len(translator.translate_batch(["Hello.", "The forum opened."])) == 2


# ---------------------------------------------------------------- translating an article


@pytest.mark.parametrize("kind", ["marian", "nllb"])
def test_an_article_keeps_its_structure_and_glossary_through_each_shape(
        cli: Cli, site: Site, ct2_folders, empty_models_dir: Path, write_article, kind: str) -> None:
    name = install(cli, ct2_folders["marian-en-ko" if kind == "marian" else "nllb"]).output.split()[3]
    source = write_article("workshop", "en", STRUCTURED_BODY, title="UNPOG workshop in Incheon")

    result = cli("translate", str(source), "--to", "ko", env={"TRANSLATION_MODEL_EN_KO": name})

    assert result.exit_code == 0, result.output
    target = site.content_dir / "workshop.ko.md"
    model_id = front_matter(target)["translation"]["model"]
    assert model_id.startswith(f"{kind}:{name}:en-ko@")
    assert f"machine translation, {model_id})" in result.output
    translated = body_of(target)
    assert block_structure(translated) == block_structure(STRUCTURED_BODY)
    assert links(translated) == links(STRUCTURED_BODY)
    assert "```\nconfig: never translated 99\n```" in translated
    for term in ("유엔거버넌스센터", "인천", "반기문", "유엔 경제사회국"):
        assert term in translated
    assert "인천" in front_matter(target)["title"]


@pytest.mark.parametrize("kind", ["marian", "nllb"])
def test_korean_to_english_through_each_shape(cli: Cli, site: Site, ct2_folders, empty_models_dir: Path,
                                              write_article, kind: str) -> None:
    name = install(cli, ct2_folders["marian-ko-en" if kind == "marian" else "nllb"]).output.split()[3]
    source = write_article("forum", "ko", "유엔거버넌스센터는 인천에서 포럼을 열었습니다. 반기문 전 사무총장이 참석했습니다.\n",
                           title="인천 포럼")

    result = cli("translate", str(source), "--to", "en", env={"TRANSLATION_MODEL_KO_EN": name})

    assert result.exit_code == 0, result.output
    body = body_of(site.content_dir / "forum.en.md")
    assert "United Nations Project Office on Governance" in body and "Ban Ki-moon" in body
    assert front_matter(site.content_dir / "forum.en.md")["translation"]["model"].startswith(f"{kind}:{name}:ko-en@")


def test_a_new_model_does_not_reuse_another_models_sentences_unless_asked(
        cli: Cli, site: Site, ct2_folders, models_dir: Path, write_article) -> None:
    install(cli, ct2_folders["marian-en-ko"])
    body = "The forum opened in Incheon. Officials shared practices.\n"
    source = write_article("memo", "en", body, title="Forum")
    marian = {"TRANSLATION_MODEL_EN_KO": "opus-mt-en-ko"}

    by_argos = cli("translate", str(source), "--to", "ko")
    switched = cli("translate", str(source), "--to", "ko", env=marian)
    marian_id = front_matter(site.content_dir / "memo.ko.md")["translation"]["model"]
    memory = site.store().translation_memory
    assert memory.count(marian_id) == 3
    memory.forget(marian_id)
    reused = cli("translate", str(source), "--to", "ko", "--reuse-memory", env=marian)

    assert "(machine translation, argos:en-ko@1.0)" in by_argos.output
    assert marian_id.startswith("marian:opus-mt-en-ko:en-ko@")
    assert "3 sentences: 3 by the model, 0 from memory." in switched.output   # argos's 3 sentences not reused
    assert reused.exit_code == 0, reused.output
    assert "3 sentences: 0 by the model, 3 from memory (3 of them by other models)." in reused.output
    # each entry stays the model's that produced it: reuse copies nothing under the new model's name
    assert memory.count("argos:en-ko@1.0") == 3 and memory.count(marian_id) == 0


# ---------------------------------------------------------------- evaluate

EVAL_TSV = """\
# A few pairs written for this test.
en\tko\tnote
The United Nations Project Office on Governance is in Incheon.\t유엔거버넌스센터는 인천에 있습니다.\tname
UNPOG trained 45 officials in 2024.\t유엔거버넌스센터는 2024년에 공무원 45명을 교육했습니다.\tnumbers
The workshop discussed digital government.\t워크숍은 디지털 정부를 논의했습니다.\t
Read the report on our website.\t보고서는 홈페이지에서 볼 수 있습니다.\t
"""


@pytest.fixture
def eval_tsv(tmp_path: Path) -> Path:
    path = tmp_path / "en-ko.tsv"
    path.write_text(EVAL_TSV, encoding="utf-8")
    return path


@pytest.fixture
def both_shapes(cli: Cli, ct2_folders, empty_models_dir: Path) -> list[str]:
    install(cli, ct2_folders["marian-en-ko"])
    install(cli, ct2_folders["nllb"])
    return ["opus-mt-en-ko", "nllb-200-distilled-600m"]


def references() -> list[str]:
    return [line.split("\t")[1] for line in EVAL_TSV.splitlines()[2:]]


def test_evaluate_scores_equal_sacrebleus_own_score_of_the_written_hypotheses(
        cli: Cli, both_shapes: list[str], eval_tsv: Path, tmp_path: Path) -> None:
    import sacrebleu

    out = tmp_path / "hyp.txt"
    result = cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko",
                 "--model", both_shapes[0], "--model", both_shapes[1], "--out", str(out), "--json")

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["model"] for r in records] == both_shapes
    for record in records:
        written = Path(record["out"])
        assert written == tmp_path / f"hyp.{record['model']}.txt"
        hypotheses = written.read_text(encoding="utf-8").splitlines()
        assert len(hypotheses) == 4 and record["sentences"] == 4
        chrf = sacrebleu.corpus_chrf(hypotheses, [references()])
        bleu = sacrebleu.corpus_bleu(hypotheses, [references()], tokenize=record["bleu_tokenizer"])
        assert record["chrf"] == round(chrf.score, 2) and record["bleu"] == round(bleu.score, 2)
        assert record["bleu_tokenizer"] in ("ko-mecab", "char")
        assert f"tok:{record['bleu_tokenizer']}" in record["bleu_signature"]
        assert record["chrf_signature"].startswith("nrefs:1|") and "nc:6|nw:0" in record["chrf_signature"]
        # the name and the acronym in the sources: placeholders keep the glossary's Korean in every hypothesis
        assert (record["glossary_terms"], record["glossary_hits"], record["glossary_hit_rate"]) == (3, 3, 1.0)
        assert record["sentences_per_second"] > 0
        assert record["model_id"].startswith(("marian:opus-mt-en-ko:en-ko@", "nllb:nllb-200-distilled-600m:en-ko@"))
    assert records[0]["chrf"] != records[1]["chrf"] or records[0]["bleu"] != records[1]["bleu"]


def test_evaluate_prints_one_table_with_the_tokenizer_and_signatures(cli: Cli, both_shapes: list[str],
                                                                      eval_tsv: Path, tmp_path: Path) -> None:
    import sacrebleu

    out = tmp_path / "hyp.txt"
    result = cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko", "--model", both_shapes[1],
                 "--out", str(out), env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    chrf = sacrebleu.corpus_chrf(out.read_text(encoding="utf-8").splitlines(), [references()])
    assert f"{chrf.score:.2f}" in result.output
    assert both_shapes[1] in result.output and "4 sentences, en->ko" in result.output
    assert "BLEU tokenizer: char (ko-mecab is not installed" in result.output or "BLEU tokenizer: ko-mecab" in result.output
    assert "chrF2 signature: nrefs:1|" in result.output and "BLEU signature: nrefs:1|" in result.output
    assert f"Wrote {out} ({both_shapes[1]}, beam 2)" in result.output


def test_evaluate_scores_a_model_at_each_beam_size_given(cli: Cli, site: Site, both_shapes: list[str],
                                                         eval_tsv: Path, tmp_path: Path) -> None:
    """``--beam-size`` repeated: one row per model and beam, each with the hypotheses of a search that wide."""
    from publisher.translate.evaluate import read_pairs, translate_pairs
    from publisher.translate.glossary import Glossary
    from publisher.translate.registry import get_translator

    out = tmp_path / "hyp.txt"
    result = cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko", "--model", both_shapes[0],
                 "--beam-size", "1", "--beam-size", "4", "--out", str(out), "--json")

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["model"], r["beam_size"]) for r in records] == [(both_shapes[0], 1), (both_shapes[0], 4)]
    written = {r["beam_size"]: Path(r["out"]).read_text(encoding="utf-8").splitlines() for r in records}
    assert Path(records[0]["out"]).name == f"hyp.{both_shapes[0]}.beam1.txt"
    pairs, glossary = read_pairs(eval_tsv, "en", "ko"), Glossary.load(site)
    for beam, hypotheses in written.items():
        translator = get_translator(site, "en", "ko", both_shapes[0], beam_size=beam)
        assert translator.beam_size == beam   # type: ignore[attr-defined]
        assert hypotheses == translate_pairs(pairs, translator, glossary)[0]
    assert written[1] != written[4]   # the two searches found different translations: the beam reached the model


def test_the_beam_size_is_ctranslate2s_2_unless_set(cli: Cli, site: Site, both_shapes: list[str],
                                                   eval_tsv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.settings import TRANSLATION_SETTINGS
    from publisher.translate.registry import get_translator
    from publisher.translate.threads import DEFAULT_BEAM_SIZE

    [setting] = [s for s in TRANSLATION_SETTINGS if s.name == "PUBLISHER_TRANSLATION_BEAM_SIZE"]
    assert DEFAULT_BEAM_SIZE == 2 == setting.default   # the translators' own default is the setting's
    assert get_translator(site, "en", "ko", both_shapes[0]).beam_size == 2   # type: ignore[attr-defined]
    [record] = [json.loads(line) for line in cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko",
                                                 "--model", both_shapes[0], "--json").output.splitlines()]
    assert record["beam_size"] == 2
    monkeypatch.setenv("PUBLISHER_TRANSLATION_BEAM_SIZE", "4")
    configured = Site(site.root)
    try:
        assert get_translator(configured, "en", "ko", both_shapes[0]).beam_size == 4   # type: ignore[attr-defined]
    finally:
        configured.close()
    [record] = [json.loads(line) for line in cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko",
                                                 "--model", both_shapes[0], "--json").output.splitlines()]
    assert record["beam_size"] == 4


def test_evaluate_without_a_model_option_uses_the_settings_choice(cli: Cli, models_dir: Path,
                                                                   eval_tsv: Path) -> None:
    result = cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko", "--json")

    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.output.splitlines()]
    assert (record["model"], record["model_id"], record["out"]) == ("argos", "argos:en-ko@1.0", None)


def test_evaluate_ko_en_uses_sacrebleus_default_tokenizer(cli: Cli, both_shapes: list[str], tmp_path: Path) -> None:
    tsv = tmp_path / "ko-en.tsv"
    tsv.write_text("인천 포럼이 열렸습니다.\tThe Incheon forum opened.\n", encoding="utf-8")   # no header: source, reference

    result = cli("models", "evaluate", str(tsv), "--from", "ko", "--to", "en", "--model", both_shapes[1], "--json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["bleu_tokenizer"] == "13a" and record["sentences"] == 1 and record["glossary_terms"] == 1


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("files, message", [
    ({}, "not a CTranslate2 model: model.bin is missing"),
    ({"model.bin": b"x", "config.json": b"{}"}, "not a CTranslate2 model: no vocabulary"),
    ({"model.bin": b"x", "config.json": b"{}", "shared_vocabulary.json": b'["a"]'},
     "not a Marian or NLLB model: expected source.spm and target.spm (Marian) or one SentencePiece .model"),
    ({"model.bin": b"x", "config.json": b"{not json", "shared_vocabulary.json": b"[]"}, "config.json: not valid JSON"),
])
def test_a_folder_that_is_not_a_model_is_one_line(cli: Cli, tmp_path: Path, empty_models_dir: Path,
                                                  files: dict[str, bytes], message: str) -> None:
    folder = tmp_path / "downloads" / "something"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)

    line = one_line_error(cli("models", "install", "--dir", str(folder)))

    assert message in line and str(folder) in line


def test_a_damaged_model_bin_is_refused_at_install(cli: Cli, ct2_folders, tmp_path: Path, site: Site,
                                                   empty_models_dir: Path) -> None:
    folder = shutil.copytree(ct2_folders["nllb"], tmp_path / "nllb-broken")
    (folder / "model.bin").write_bytes(b"not a model")

    line = one_line_error(cli("models", "install", "--dir", str(folder)))

    assert f"{folder / 'model.bin'}: CTranslate2 cannot load this model" in line
    assert not (site.state_dir / "models").exists() or installed_models(site.state_dir / "models") == []


def test_a_file_linking_outside_the_named_folder_is_not_read(cli: Cli, ct2_folders, tmp_path: Path,
                                                            empty_models_dir: Path) -> None:
    outside = tmp_path / "elsewhere.spm"
    outside.write_bytes((ct2_folders["marian-en-ko"] / "target.spm").read_bytes())
    folder = shutil.copytree(ct2_folders["marian-en-ko"], tmp_path / "opus-mt-en-ko")
    (folder / "target.spm").unlink()
    (folder / "target.spm").symlink_to(outside)

    line = one_line_error(cli("models", "install", "--dir", str(folder)))

    assert f"{folder / 'target.spm'}: is a link to a file outside {folder}" in line


@pytest.mark.parametrize("folder, options, message", [
    ("marian-en-ko", ("--from", "ko", "--to", "en"), "translates en->ko (its folder name says so), not ko->en"),
    ("marian-unnamed", ("--from", "ko", "--to", "en"), "translates en->ko, not ko->en: its source.spm has no more Korean"),
    ("marian-unnamed", (), "direction is not in its folder name: give it with --from LANG --to LANG"),
    ("nllb-no-korean", (), "lacks the language codes kor_Hang"),
    ("nllb-no-korean", ("--from", "en", "--to", "ko"), "cannot translate en->ko: its vocabulary has no kor_Hang"),
    ("marian-en-ko", ("--kind", "nllb"), "not a CTranslate2 nllb model: expected exactly one SentencePiece model"),
    ("nllb", ("--kind", "marian"), "not a CTranslate2 marian model: expected source.spm and target.spm"),
])
def test_a_model_of_the_wrong_direction_or_kind_is_one_line(cli: Cli, ct2_folders, site: Site, empty_models_dir: Path,
                                                            folder: str, options: tuple[str, ...], message: str) -> None:
    line = one_line_error(cli("models", "install", "--dir", str(ct2_folders[folder]), *options))

    assert message in line and str(ct2_folders[folder]) in line
    assert installed_models(site.state_dir / "models") == []


def test_a_setting_naming_a_model_of_the_other_direction_is_one_line(cli: Cli, ct2_folders, site_dir: Path,
                                                                     empty_models_dir: Path) -> None:
    install(cli, ct2_folders["marian-ko-en"])
    article = str(site_dir / "content/2024-sdg16-knowledge-forum.en.md")

    wrong = one_line_error(cli("translate", article, "--to", "ko", env={"TRANSLATION_MODEL_EN_KO": "opus-mt-ko-en"}))
    unknown = one_line_error(cli("translate", article, "--to", "ko", env={"TRANSLATION_MODEL_EN_KO": "opus-mt-xx"}))

    assert wrong == "Error: TRANSLATION_MODEL_EN_KO: model 'opus-mt-ko-en' translates ko->en, not en->ko"
    assert unknown.startswith("Error: TRANSLATION_MODEL_EN_KO: no translation model named 'opus-mt-xx'")
    assert "installed: argos, opus-mt-ko-en" in unknown


def test_evaluate_with_a_model_of_the_wrong_direction_is_one_line(cli: Cli, ct2_folders, eval_tsv: Path,
                                                                 empty_models_dir: Path) -> None:
    install(cli, ct2_folders["marian-ko-en"])

    line = one_line_error(cli("models", "evaluate", str(eval_tsv), "--from", "en", "--to", "ko",
                              "--model", "opus-mt-ko-en"))

    assert line == "Error: --model: model 'opus-mt-ko-en' translates ko->en, not en->ko"


@pytest.mark.parametrize("content, where, message", [
    ("en\tko\nThe forum.\t포럼.\nOnly English here.\n", ":3", "the ko column is missing"),
    ("en\tnote\nThe forum.\tx\n", ":1", "the header has no ko column (columns: en, note)"),
    ("en\tko\nThe forum.\t\n", ":2", "the ko column is missing"),
    ("# only a comment\n\n", "", "no en-ko sentence pairs"),
    ("The forum.\t포럼.\n".encode() + "Seoul.\t서울.\n".encode("cp949"), ":2", "not UTF-8 text (byte 0xbc)"),
])
def test_a_bad_tsv_is_one_line_naming_the_row(cli: Cli, models_dir: Path, tmp_path: Path, content: str | bytes,
                                             where: str, message: str) -> None:
    tsv = tmp_path / "pairs.tsv"
    if isinstance(content, bytes):
        tsv.write_bytes(content)
    else:
        tsv.write_text(content, encoding="utf-8")

    line = one_line_error(cli("models", "evaluate", str(tsv), "--from", "en", "--to", "ko"))

    suffix = {"UTF-8": "; save the file as UTF-8", "missing": " (columns are separated by tabs)"}
    assert line == f"Error: {tsv}{where}: {message}" + "".join(v for k, v in suffix.items() if message.endswith(k)
                                                             or k in message and k == "UTF-8")


def test_install_options_without_dir_are_a_usage_error(cli: Cli, empty_models_dir: Path) -> None:
    result = cli("models", "install", "en", "ko", "--kind", "nllb")

    assert result.exit_code == 2 and "--kind, --from, --to and --name go with --dir PATH" in result.output


def test_setup_warnings_check_the_model_each_direction_chooses(cli: Cli, ct2_folders, site_dir: Path,
                                                               empty_models_dir: Path) -> None:
    from publisher.translate.registry import setup_warnings

    install(cli, ct2_folders["marian-ko-en"])
    install(cli, ct2_folders["marian-en-ko"])
    chosen = Site(site_dir, Config.load(site_dir, {"TRANSLATION_MODEL_EN_KO": "opus-mt-en-ko",
                                                    "TRANSLATION_MODEL_KO_EN": "opus-mt-en-ko"}))

    warnings = setup_warnings(("en", "ko"), chosen.config, chosen)

    # en->ko is served (no Argos package needed); ko->en names a model of the other direction
    assert warnings == ["TRANSLATION_MODEL_KO_EN: model 'opus-mt-en-ko' translates en->ko, not ko->en"]


def test_evaluate_runs_on_the_example_sites_parallel_set(cli: Cli, both_shapes: list[str], tmp_path: Path) -> None:
    import sacrebleu

    tsv = Path(__file__).resolve().parents[2] / "examples" / "unpog" / "eval" / "en-ko.tsv"
    out = tmp_path / "hyp.txt"

    result = cli("models", "evaluate", str(tsv), "--from", "en", "--to", "ko", "--model", both_shapes[1],
                 "--out", str(out), "--json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")][1:]
    assert record["sentences"] == len(rows) >= 60
    hypotheses = out.read_text(encoding="utf-8").splitlines()
    chrf = sacrebleu.corpus_chrf(hypotheses, [[row[1] for row in rows]])
    assert record["chrf"] == round(chrf.score, 2)
    assert record["glossary_terms"] > 0 and record["glossary_hits"] <= record["glossary_terms"]
