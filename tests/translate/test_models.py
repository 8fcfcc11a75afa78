"""`publisher models`: install a real Argos package from a file or a package index, list it, fail fast offline."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.errors import TranslationUnavailable
from publisher.translate.packages import find_package, installed_packages


def test_install_from_file_then_list(cli, argos_archives, empty_models_dir: Path) -> None:
    installed = cli("models", "install", "--file", str(argos_archives["en-ko"]))
    listed = cli("models", "list")

    assert installed.exit_code == 0, installed.output
    assert "Installed en->ko 1.0" in installed.output
    assert listed.exit_code == 0
    assert "argos:en-ko@1.0" in listed.output
    package = find_package(empty_models_dir, "en", "ko")
    assert (package.path / "model" / "model.bin").is_file()
    assert (package.path / "sentencepiece.model").is_file()


def test_list_without_models_says_how_to_install(cli, empty_models_dir: Path) -> None:
    result = cli("models", "list")

    assert result.exit_code == 0
    assert "No translation model installed" in result.output
    assert "publisher models install en ko" in result.output


@pytest.mark.parametrize("content, message", [
    (b"not a zip", "not an Argos model package (.argosmodel files are zip archives)"),
    ("zip-without-metadata", "metadata.json is missing"),
])
def test_a_bad_package_file_is_refused_in_one_line(cli, tmp_path: Path, empty_models_dir: Path,
                                                   content: bytes | str, message: str) -> None:
    archive = tmp_path / "bad.argosmodel"
    if isinstance(content, bytes):
        archive.write_bytes(content)
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("translate-en_ko/model/model.bin", b"")

    result = cli("models", "install", "--file", str(archive))

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {archive}: " + result.output.split(f"{archive}: ", 1)[1].strip()]
    assert message in result.output
    assert installed_packages(empty_models_dir) == []


@pytest.fixture
def package_index(argos_archives, tmp_path: Path) -> Iterator[str]:
    """A package index served over HTTP on 127.0.0.1, in the format of Argos's own index.json."""
    served = tmp_path / "index"
    served.mkdir()
    (served / "translate-en_ko.argosmodel").write_bytes(argos_archives["en-ko"].read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (served / "index.json").write_text(json.dumps([{
        "package_version": "1.0", "argos_version": "1.9", "from_code": "en", "from_name": "English",
        "to_code": "ko", "to_name": "Korean", "type": "translate",
        "links": [f"{base}/translate-en_ko.argosmodel"],
    }]), encoding="utf-8")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base + "/"
    server.shutdown()
    server.server_close()


def test_install_a_pair_from_the_package_index(cli, package_index: str, empty_models_dir: Path) -> None:
    result = cli("models", "install", "en", "ko", env={"ARGOS_PACKAGE_INDEX": package_index})

    assert result.exit_code == 0, result.output
    assert find_package(empty_models_dir, "en", "ko").version == "1.0"


def test_a_pair_missing_from_the_index_is_one_line(cli, package_index: str, empty_models_dir: Path) -> None:
    result = cli("models", "install", "ko", "en", env={"ARGOS_PACKAGE_INDEX": package_index})

    assert result.exit_code == 2
    assert "has no ko->en model" in result.output


def test_offline_install_fails_fast_with_the_offline_command(cli, empty_models_dir: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    started = time.monotonic()

    result = cli("models", "install", "en", "ko", env={"ARGOS_PACKAGE_INDEX": f"http://127.0.0.1:{closed_port}/"})

    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "publisher models install --file PATH.argosmodel" in result.output


def test_an_unanswering_index_is_bounded_by_the_timeout(cli, empty_models_dir: Path) -> None:
    silent = socket.socket()  # accepts connections (backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    started = time.monotonic()
    try:
        result = cli("models", "install", "en", "ko", env={
            "ARGOS_PACKAGE_INDEX": f"http://127.0.0.1:{silent.getsockname()[1]}/",
            "PUBLISHER_MODEL_DOWNLOAD_TIMEOUT": "0.5"})
    finally:
        silent.close()

    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert "timed out" in result.output


def test_translating_without_a_model_names_the_install_command(cli, site_dir: Path, empty_models_dir: Path) -> None:
    result = cli("translate", str(site_dir / "content/2024-sdg16-knowledge-forum.en.md"), "--to", "ko")

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: no en->ko model installed in {empty_models_dir}; run: publisher models install en ko (online) "
        "or publisher models install --file PATH.argosmodel (offline)"]


def test_find_package_raises_translation_unavailable(empty_models_dir: Path) -> None:
    with pytest.raises(TranslationUnavailable):
        find_package(empty_models_dir, "ko", "en")


def test_installing_again_replaces_the_package_in_place(cli, argos_archives, empty_models_dir: Path) -> None:
    first = cli("models", "install", "--file", str(argos_archives["en-ko"]))
    again = cli("models", "install", "--file", str(argos_archives["en-ko"]))

    assert first.exit_code == 0 and again.exit_code == 0, again.output
    assert [p.model_id for p in installed_packages(empty_models_dir)] == ["argos:en-ko@1.0"]
    assert [p.name for p in empty_models_dir.parent.iterdir() if "installing" in p.name] == []


def test_setup_warnings_name_each_missing_pair(site, empty_models_dir: Path) -> None:
    from publisher.translate.registry import setup_warnings

    warnings = setup_warnings(("en", "ko"), site.config)

    assert warnings == [
        f"no en->ko translation model in {empty_models_dir}: publisher translate --to ko cannot run; "
        "run: publisher models install en ko",
        f"no ko->en translation model in {empty_models_dir}: publisher translate --to en cannot run; "
        "run: publisher models install ko en",
    ]


def test_no_setup_warning_when_both_pairs_are_installed(site, models_dir: Path) -> None:
    from publisher.translate.registry import setup_warnings

    assert setup_warnings(("en", "ko"), site.config) == []


def test_a_package_without_a_tokenizer_is_refused(cli, tmp_path: Path, empty_models_dir: Path) -> None:
    archive = tmp_path / "no-tokenizer.argosmodel"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("translate-en_ko/metadata.json", json.dumps({"from_code": "en", "to_code": "ko"}))
        zf.writestr("translate-en_ko/model/model.bin", b"")

    result = cli("models", "install", "--file", str(archive))

    assert result.exit_code == 2
    assert result.output.strip() == (f"Error: {archive}: not an Argos model package: "
                                     "translate-en_ko/sentencepiece.model (or bpe.model) is missing")
