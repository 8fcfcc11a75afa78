"""Fixtures for the translation tests: tiny real Argos packages, installed by argostranslate's own code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.site import Site
from publisher.translate.packages import install_from_file
from publisher.translate.synthetic import build_argos_package


@pytest.fixture(scope="session")
def argos_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """en->ko and ko->en .argosmodel files: real CTranslate2 models with random weights (built once, ~1 s each)."""
    folder = tmp_path_factory.mktemp("argosmodels")
    return {
        "en-ko": build_argos_package(folder / "translate-en_ko.argosmodel", "en", "ko", package_version="1.0"),
        "ko-en": build_argos_package(folder / "translate-ko_en.argosmodel", "ko", "en", package_version="1.0",
                                     seed=11),
    }


@pytest.fixture(scope="session")
def installed_models_dir(argos_archives: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ARGOS_PACKAGES_DIR holding both packages, installed through argostranslate.package.install_from_path."""
    directory = tmp_path_factory.mktemp("argos-packages")
    for archive in argos_archives.values():
        install_from_file(archive, directory)
    return directory


@pytest.fixture
def models_dir(installed_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test's settings at the installed packages."""
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(installed_models_dir))
    return installed_models_dir


@pytest.fixture
def empty_models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ARGOS_PACKAGES_DIR with nothing installed."""
    directory = tmp_path / "no-models"
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(directory))
    return directory


@pytest.fixture
def write_article(site: Site) -> Callable[..., Path]:
    """Write content/<slug>.<lang>.md from front-matter keys and a Markdown body."""

    def write(slug: str, lang: str, body: str, **front: Any) -> Path:
        front.setdefault("title", "A title")
        front.setdefault("date", "2025-03-04T09:00:00+09:00")
        path = site.content_dir / f"{slug}.{lang}.md"
        meta = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
        path.write_text(f"---\n{meta}---\n\n{body}", encoding="utf-8")
        return path

    return write


def front_matter(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n", 2)[1])


def body_of(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("---\n", 2)[2]
