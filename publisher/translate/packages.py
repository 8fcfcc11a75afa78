"""Argos Translate model packages: where they live, which are installed, and installing one from a file or the index.

Only ``install_from_index`` touches the network, with a timeout; nothing here updates Argos's package index
implicitly (its own update can hang or recurse when offline).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from publisher.errors import InputError, TranslationUnavailable

if TYPE_CHECKING:
    from publisher.config import Config

# Argos Translate's own default, so that models installed with argospm are found without configuration.
DEFAULT_PACKAGES_DIR = Path("~/.local/share/argos-translate/packages")
_argos_lock = threading.Lock()
# What the optional "translate" extra brings that this module and the Argos translator use directly.
EXTRA_MODULES = ("argostranslate", "ctranslate2")
INSTALL_EXTRA = "pip install torch==2.13.0 && pip install 'publisher[translate]'"


def extra_missing(module: str) -> str:
    """The one line that says offline translation is not installed, and how to install it."""
    return f"offline translation is not installed ({module} is missing): {INSTALL_EXTRA}"


def require_extra() -> None:
    """Raise TranslationUnavailable saying how to install the extra when it is not installed.

    Checked before any folder is read: without the extra, "no model installed" would send the user to
    ``publisher models install``, which cannot work either.
    """
    for module in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):   # a broken or half-removed install
            found = False
        if not found:
            raise TranslationUnavailable(extra_missing(module))


@dataclass(frozen=True)
class ModelPackage:
    """One installed Argos translation package."""

    from_code: str
    to_code: str
    version: str
    path: Path
    target_prefix: str = ""  # multilingual packages choose the output language with a first token

    @property
    def model_id(self) -> str:
        """Names backend, pair and version: recorded in translated articles and keys the translation memory."""
        return f"argos:{self.from_code}-{self.to_code}@{self.version}"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def sentencepiece_path(self) -> Path:
        return self.path / "sentencepiece.model"

    @property
    def bpe_path(self) -> Path:
        """Older packages tokenize with Moses and BPE codes instead of SentencePiece."""
        return self.path / "bpe.model"


def packages_dir(config: Config | None = None) -> Path:
    """``ARGOS_PACKAGES_DIR`` (environment, .env or publisher.toml), else Argos's own default folder."""
    value = config.get("ARGOS_PACKAGES_DIR") if config is not None else os.environ.get("ARGOS_PACKAGES_DIR")
    return Path(value or DEFAULT_PACKAGES_DIR).expanduser()


@contextmanager
def _argos_package_module(directory: Path) -> Iterator[Any]:
    """argostranslate.package, pointed at ``directory``.

    argostranslate reads ARGOS_PACKAGES_DIR once, at import; the folder chosen by this site's settings
    may differ, so it is set on argostranslate's settings module for the duration of the call.
    """
    from argostranslate import package, settings

    with _argos_lock:
        saved = settings.package_data_dir, list(settings.package_dirs)
        directory.mkdir(parents=True, exist_ok=True)
        settings.package_data_dir = directory
        settings.package_dirs[:] = [directory]
        try:
            yield package
        finally:
            settings.package_data_dir = saved[0]
            settings.package_dirs[:] = saved[1]


def installed_packages(directory: Path) -> list[ModelPackage]:
    """Every translation package in ``directory``, read by argostranslate's own package code."""
    require_extra()
    if not directory.is_dir():
        return []
    with _argos_package_module(directory) as package:
        try:
            found = package.get_installed_packages(path=[directory])
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise InputError(str(directory), f"a package folder is damaged: {exc}") from None
    return sorted(
        (
            ModelPackage(p.from_code, p.to_code, str(p.package_version), Path(p.package_path),
                         str(getattr(p, "target_prefix", "") or ""))
            for p in found
            if p.type == "translate" and p.from_code and p.to_code
        ),
        key=lambda p: (p.from_code, p.to_code, p.version),
    )


def find_package(directory: Path, from_code: str, to_code: str) -> ModelPackage:
    """The installed package for a pair (the newest version), or TranslationUnavailable saying how to get one."""
    matches = [p for p in installed_packages(directory) if (p.from_code, p.to_code) == (from_code, to_code)]
    if not matches:
        raise TranslationUnavailable(
            f"no {from_code}->{to_code} model installed in {directory}; run: publisher models install "
            f"{from_code} {to_code} (online) or publisher models install --file PATH.argosmodel (offline)"
        )
    return max(matches, key=lambda p: _version_key(p.version))


def _version_key(version: str) -> tuple[int, Any]:
    """Order package versions as versions ("1.10" after "1.9"); an unparsable one sorts first."""
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def read_package_metadata(archive_path: Path) -> dict[str, Any]:
    """Check that a file is an Argos package (a zip with one top folder holding metadata.json and model/)."""
    where = str(archive_path)
    if not archive_path.is_file():
        raise InputError(where, "file not found")
    if not zipfile.is_zipfile(archive_path):
        raise InputError(where, "not an Argos model package (.argosmodel files are zip archives)")
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) != 1 or any(name.startswith("/") or ".." in name.split("/") for name in names):
            raise InputError(where, "not an Argos model package: expected one top folder")
        top = tops.pop()
        if f"{top}/metadata.json" not in names:
            raise InputError(where, f"not an Argos model package: {top}/metadata.json is missing")
        if not any(name.startswith(f"{top}/model/") for name in names):
            raise InputError(where, f"not an Argos model package: {top}/model/ is missing")
        if not {f"{top}/sentencepiece.model", f"{top}/bpe.model"} & set(names):
            raise InputError(where, f"not an Argos model package: {top}/sentencepiece.model (or bpe.model) is missing")
        try:
            metadata = json.loads(archive.read(f"{top}/metadata.json"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(where, f"metadata.json: not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise InputError(where, "metadata.json: expected a JSON object")
    for key in ("from_code", "to_code"):
        if not metadata.get(key):
            raise InputError(where, f"metadata.json: {key}: is required")
    return metadata


def install_from_file(archive_path: Path, directory: Path) -> ModelPackage:
    """Install an .argosmodel file with argostranslate's own installer; works offline."""
    require_extra()
    metadata = read_package_metadata(archive_path)
    directory.mkdir(parents=True, exist_ok=True)
    # Unpacked beside the packages folder, then renamed into it: an interrupted install leaves no half
    # package for the next run to trip over.
    with tempfile.TemporaryDirectory(prefix=f".{directory.name}.installing-", dir=directory.parent) as staging:
        staging_dir = Path(staging)
        with _argos_package_module(staging_dir) as package:
            package.install_from_path(archive_path)
        [unpacked] = [p for p in staging_dir.iterdir() if p.is_dir()]
        final = directory / unpacked.name
        if final.exists():
            final.rename(staging_dir / "previous-version")
        unpacked.rename(final)
    return find_package(directory, str(metadata["from_code"]), str(metadata["to_code"]))


def default_index_url() -> str:
    from argostranslate import settings

    return str(settings.package_index)


def install_from_index(
    from_code: str, to_code: str, directory: Path, *, index_url: str | None = None, timeout: float = 20.0
) -> ModelPackage:
    """Download the pair's package listed in the Argos package index and install it; one-line error offline."""
    import urllib.error
    import urllib.request

    require_extra()   # before a download of tens of megabytes that could not be installed
    base = index_url or default_index_url()
    index_address = base if base.endswith(".json") else base.rstrip("/") + "/index.json"

    def fetch(url: str, destination: BinaryIO) -> None:
        request = urllib.request.Request(url, headers={"User-Agent": "publisher (argostranslate)"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                # streamed: a model package is tens of megabytes
                shutil.copyfileobj(response, destination, length=1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TranslationUnavailable(
                f"cannot download {url}: {reason}; offline? get the .argosmodel file on a connected machine "
                f"and run: publisher models install --file PATH.argosmodel"
            ) from None

    listing = io.BytesIO()
    fetch(index_address, listing)
    try:
        index = json.loads(listing.getvalue())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TranslationUnavailable(f"{index_address}: not a package index (invalid JSON)") from None
    candidates = [
        entry for entry in index if isinstance(entry, dict)
        and (entry.get("from_code"), entry.get("to_code")) == (from_code, to_code) and entry.get("links")
    ] if isinstance(index, list) else []
    if not candidates:
        raise TranslationUnavailable(f"the package index at {index_address} has no {from_code}->{to_code} model")
    entry = max(candidates, key=lambda e: _version_key(str(e.get("package_version", ""))))
    with tempfile.TemporaryDirectory() as workdir:
        download = Path(workdir) / f"translate-{from_code}_{to_code}.argosmodel"
        errors = []
        for link in entry["links"]:
            try:
                with download.open("wb") as handle:
                    fetch(str(link), handle)
                break
            except TranslationUnavailable as exc:
                errors.append(str(exc))
        else:
            raise TranslationUnavailable(errors[-1])
        return install_from_file(download, directory)
