"""CTranslate2 model folders (OPUS-MT Marian, NLLB-200): recognise one, install a copy of it, list what is installed.

A folder written by ``ct2-transformers-converter`` holds ``model.bin``, ``config.json`` and a vocabulary
(``shared_vocabulary.json``, or source and target vocabularies), plus the tokenizer copied beside it:

- Marian (OPUS-MT): ``source.spm`` and ``target.spm``, one direction per model;
- NLLB-200: one SentencePiece model (``sentencepiece.bpe.model``), the language chosen by the codes
  ``eng_Latn`` / ``kor_Hang`` in the vocabulary; one folder serves every direction between its languages.

``publisher models install --dir PATH`` copies the files it uses (and a README or licence beside them)
into ``<models dir>/<name>/`` with a ``publisher-model.json`` manifest. A copy, not a reference: the
translation memory is keyed by a digest of the installed files, and a copy cannot change under that key
when the download folder is edited, moved or deleted. Nothing outside the folder the user named is read:
files that are links pointing out of it are refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import ConfigError, InputError, TranslationUnavailable

if TYPE_CHECKING:
    from publisher.site import Site

KINDS = ("marian", "nllb")
MANIFEST = "publisher-model.json"
# NLLB-200's FLORES-200 codes for the languages publisher knows.
NLLB_CODES = {"en": "eng_Latn", "ko": "kor_Hang"}
# ISO 639-3 codes OPUS-MT names languages by, in folder names and target-language tokens (>>kor<<).
_ISO3 = {"en": "eng", "ko": "kor"}
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_VOCABULARIES = ("shared_vocabulary.json", "shared_vocabulary.txt", "source_vocabulary.json",
                 "target_vocabulary.json", "source_vocabulary.txt", "target_vocabulary.txt")
_DOCUMENTS = re.compile(r"(readme|license|licence|notice|model_card)[^/]*", re.IGNORECASE)
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
RESERVED_NAMES = ("argos",)


@dataclass(frozen=True)
class CT2Model:
    """One installed CTranslate2 model folder (a copy under the models folder, with its manifest)."""

    name: str
    kind: str                                  # "marian" or "nllb"
    path: Path
    directions: tuple[tuple[str, str], ...]    # (from, to) pairs it translates
    digest: str                                # of the files used, taken at install
    source_prefix: dict[str, str] = field(default_factory=dict, hash=False, compare=False)  # "en-ko" -> ">>kor<<"
    installed_from: str = ""

    def model_id(self, source_lang: str, target_lang: str) -> str:
        """Kind, name, pair and digest: recorded in translated articles and keying the translation memory."""
        return f"{self.kind}:{self.name}:{source_lang}-{target_lang}@{self.digest[:12]}"

    def serves(self, source_lang: str, target_lang: str) -> bool:
        return (source_lang, target_lang) in self.directions

    @property
    def sentencepiece_paths(self) -> tuple[Path, Path]:
        """(source, target) SentencePiece models: two for Marian, the one model twice for NLLB."""
        if self.kind == "marian":
            return self.path / "source.spm", self.path / "target.spm"
        [model] = _sentencepiece_models(self.path)
        return model, model


def models_dir(site: Site) -> Path:
    """``PUBLISHER_MODELS_DIR`` (relative to the site), else ``<site>/.publisher/models``."""
    value = site.config.get("PUBLISHER_MODELS_DIR")
    if not value:
        return site.state_dir / "models"
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else site.root / path


def check_name(name: str, where: str = "--name") -> str:
    if not _NAME.fullmatch(name) or name in RESERVED_NAMES:
        reserved = f"; {', '.join(RESERVED_NAMES)} names the Argos packages" if name in RESERVED_NAMES else ""
        raise InputError(where, f"{name!r} is not a model name: lower-case letters, digits, '.', '_' and '-'{reserved}")
    return name


def default_name(folder: Path) -> str:
    """A model's name from its folder's: ``opus-mt-tc-big-en-ko`` stays, ``NLLB 200 (600M)`` -> ``nllb-200-600m``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", folder.resolve().name.lower()).strip("-._")
    return name[:64] or "model"


# ---------------------------------------------------------------- recognising a folder


def _sentencepiece_models(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.model") if p.is_file())


def _inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` (perhaps a link) really lies inside ``folder``: nothing outside it is read."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _read_vocabulary(folder: Path) -> list[str]:
    """Every token of the source and target vocabularies, as CTranslate2 wrote them (JSON list or one a line)."""
    tokens: list[str] = []
    for name in _VOCABULARIES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".json"):
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(loaded, list):
                    raise InputError(str(path), "expected a JSON list of tokens")
                tokens.extend(str(token) for token in loaded)
            else:
                tokens.extend(path.read_text(encoding="utf-8").splitlines())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(str(path), f"not a CTranslate2 vocabulary ({exc})") from None
    return tokens


def _hangul_share(spm_path: Path) -> float:
    """The share of a SentencePiece model's pieces that hold Hangul: near 0 for English, high for Korean."""
    import sentencepiece

    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    except (RuntimeError, OSError) as exc:
        raise InputError(str(spm_path), f"not a SentencePiece model ({str(exc).splitlines()[0]})") from None
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    return sum(1 for piece in pieces if _HANGUL.search(piece)) / max(len(pieces), 1)


def _direction_in_name(folder: Path) -> tuple[str, str] | None:
    """``opus-mt-en-ko``, ``opus-mt-tc-big-eng-kor``: the pair at the end of an OPUS-MT folder's name."""
    codes = {**{c: c for c in _ISO3}, **{v: k for k, v in _ISO3.items()}}
    match = re.search(r"(?:^|[-_.])([a-z]{2,3})[-_]([a-z]{2,3})$", folder.resolve().name.lower())
    if match and match.group(1) in codes and match.group(2) in codes and codes[match.group(1)] != codes[match.group(2)]:
        return codes[match.group(1)], codes[match.group(2)]
    return None


@dataclass(frozen=True)
class FolderInspection:
    """What a folder was found to be: its kind, the directions it serves and the files an install copies."""

    kind: str
    directions: tuple[tuple[str, str], ...]
    files: tuple[Path, ...]
    source_prefix: dict[str, str]


def inspect_folder(folder: Path, *, kind: str | None = None, source_lang: str | None = None,
                   target_lang: str | None = None) -> FolderInspection:
    """Check that ``folder`` is a CTranslate2 Marian or NLLB model and find its directions; InputError naming it."""
    where = str(folder)
    if not folder.is_dir():
        raise InputError(where, "not a folder")
    if (source_lang is None) != (target_lang is None):
        raise InputError(where, "give both --from and --to, or neither")
    if source_lang is not None and source_lang == target_lang:
        raise InputError(where, f"--from and --to are both {source_lang}")
    for required in ("model.bin", "config.json"):
        path = folder / required
        if not path.is_file():
            raise InputError(where, f"not a CTranslate2 model: {required} is missing "
                                    "(convert the model with ct2-transformers-converter first)")
        if not _inside(folder, path):
            raise InputError(str(path), f"is a link to a file outside {folder}")
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(folder / "config.json"), f"not valid JSON ({exc})") from None
    vocabulary = _read_vocabulary(folder)
    if not vocabulary:
        raise InputError(where, "not a CTranslate2 model: no vocabulary (shared_vocabulary.json) found")

    has_marian = (folder / "source.spm").is_file() and (folder / "target.spm").is_file()
    spm_models = _sentencepiece_models(folder)
    found = "marian" if has_marian else "nllb" if len(spm_models) == 1 else None
    if kind is not None and kind not in KINDS:
        raise InputError(where, f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    if found is None or (kind is not None and kind != found):
        expected = {
            "marian": "source.spm and target.spm (copy them from the OPUS-MT model beside model.bin)",
            "nllb": "exactly one SentencePiece model, e.g. sentencepiece.bpe.model",
            None: "source.spm and target.spm (Marian) or one SentencePiece .model file (NLLB)",
        }[kind]
        what = f"a CTranslate2 {kind} model" if kind else "a Marian or NLLB model"
        raise InputError(where, f"not {what}: expected {expected}")
    tokenizers = [folder / "source.spm", folder / "target.spm"] if found == "marian" else spm_models

    if found == "marian":
        directions, prefix = _marian_direction(folder, vocabulary, source_lang, target_lang)
    else:
        directions, prefix = _nllb_directions(folder, vocabulary, source_lang, target_lang)
    uses = [folder / "model.bin", folder / "config.json", *tokenizers,
            *(folder / name for name in _VOCABULARIES if (folder / name).is_file())]
    documents = [p for p in sorted(folder.iterdir()) if p.is_file() and _DOCUMENTS.fullmatch(p.name)]
    for path in uses + documents:
        if not _inside(folder, path):
            raise InputError(str(path), f"is a link to a file outside {folder}")
    _check_loads(folder)
    return FolderInspection(found, directions, tuple(dict.fromkeys(uses + documents)), prefix)


def _marian_direction(folder: Path, vocabulary: Sequence[str], source_lang: str | None,
                      target_lang: str | None) -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
    """A Marian model translates one way: named by --from/--to or its folder, checked against its tokenizers."""
    named = _direction_in_name(folder)
    if source_lang is None or target_lang is None:
        if named is None:
            raise InputError(str(folder), "a Marian model's direction is not in its folder name: "
                                          "give it with --from LANG --to LANG")
        source_lang, target_lang = named
    elif named is not None and named == (target_lang, source_lang):
        raise InputError(str(folder), f"translates {named[0]}->{named[1]} (its folder name says so), "
                                      f"not {source_lang}->{target_lang}")
    if "ko" in (source_lang, target_lang):
        # Korean text needs Hangul pieces: a tokenizer without them is for the other language.
        source_share = _hangul_share(folder / "source.spm")
        target_share = _hangul_share(folder / "target.spm")
        korean_side, other_side = (target_share, source_share) if target_lang == "ko" else (source_share, target_share)
        if korean_side <= other_side:
            actual = (target_lang, source_lang)
            raise InputError(str(folder), f"translates {actual[0]}->{actual[1]}, not {source_lang}->{target_lang}: "
                                          f"its {'target' if target_lang == 'ko' else 'source'}.spm has no "
                                          "more Korean pieces than the other side")
    prefix = {}
    target3 = _ISO3.get(target_lang, target_lang)
    tokens = set(vocabulary)
    for token in (f">>{NLLB_CODES.get(target_lang, '')}<<", f">>{target3}_Hang<<", f">>{target3}<<"):
        if token in tokens:   # a multilingual OPUS-MT model: the first source token names the target language
            prefix[f"{source_lang}-{target_lang}"] = token
            break
    return ((source_lang, target_lang),), prefix


def _nllb_directions(folder: Path, vocabulary: Sequence[str], source_lang: str | None,
                     target_lang: str | None) -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
    """Every pair of publisher's languages whose NLLB codes are in the vocabulary (or the one asked for)."""
    tokens = set(vocabulary)
    languages = [lang for lang, code in NLLB_CODES.items() if code in tokens]
    if source_lang is not None and target_lang is not None:
        for lang in (source_lang, target_lang):
            if lang not in NLLB_CODES:
                raise InputError(str(folder), f"an NLLB model here translates only {', '.join(NLLB_CODES)}, not {lang}")
            if lang not in languages:
                raise InputError(str(folder), f"cannot translate {source_lang}->{target_lang}: its vocabulary has "
                                              f"no {NLLB_CODES[lang]} language code")
        return ((source_lang, target_lang),), {}
    if len(languages) < 2:
        raise InputError(str(folder), "not an NLLB model for en and ko: its vocabulary lacks the language codes "
                                      + " and ".join(code for code in NLLB_CODES.values() if code not in tokens))
    return tuple((a, b) for a in languages for b in languages if a != b), {}


def _check_loads(folder: Path) -> None:
    """Load the model once: a damaged or foreign model.bin is refused at install, not at the first translation."""
    import ctranslate2

    try:
        ctranslate2.Translator(str(folder), device="cpu", compute_type="auto")
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(str(folder / "model.bin"), f"CTranslate2 cannot load this model ({first})") from None


# ---------------------------------------------------------------- installing and listing


def _digest(files: Iterable[Path], folder: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        hasher.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
    return hasher.hexdigest()


def install_folder(folder: Path, directory: Path, *, name: str | None = None, kind: str | None = None,
                   source_lang: str | None = None, target_lang: str | None = None) -> CT2Model:
    """Copy a checked model folder into ``directory/<name>/`` (replacing an earlier install of that name)."""
    from publisher.translate.packages import require_extra

    require_extra()
    name = check_name(name) if name is not None else check_name(default_name(folder), str(folder))
    found = inspect_folder(folder, kind=kind, source_lang=source_lang, target_lang=target_lang)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.installing-", dir=directory) as staging:
        copy = Path(staging) / name
        copy.mkdir()
        for path in found.files:
            shutil.copyfile(path, copy / path.name)   # the file's content, never a link
        manifest = {
            "name": name,
            "kind": found.kind,
            "directions": [list(pair) for pair in found.directions],
            "digest": _digest([copy / p.name for p in found.files if not _DOCUMENTS.fullmatch(p.name)], copy),
            "source_prefix": found.source_prefix,
            "installed_from": str(folder.resolve()),
            "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (copy / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        final = directory / name
        if final.exists():
            final.rename(Path(staging) / "previous-version")   # removed with the staging folder
        copy.rename(final)
    return read_manifest(final)


def read_manifest(path: Path) -> CT2Model:
    manifest_path = path / MANIFEST
    try:
        data: Any = json.loads(manifest_path.read_text(encoding="utf-8"))
        model = CT2Model(
            name=str(data["name"]), kind=str(data["kind"]), path=path,
            directions=tuple((str(a), str(b)) for a, b in data["directions"]),
            digest=str(data["digest"]), source_prefix={str(k): str(v) for k, v in data.get("source_prefix", {}).items()},
            installed_from=str(data.get("installed_from", "")),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(str(manifest_path), f"damaged model manifest ({exc}); install the model again") from None
    if model.kind not in KINDS:
        raise InputError(str(manifest_path), f"kind: {model.kind!r} is not one of {', '.join(KINDS)}")
    return model


def installed_models(directory: Path) -> list[CT2Model]:
    """Every installed CTranslate2 model in ``directory``, by name."""
    if not directory.is_dir():
        return []
    return [read_manifest(path) for path in sorted(directory.iterdir())
            if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()]


def find_model(directory: Path, name: str, source_lang: str, target_lang: str, *, setting: str | None = None) -> CT2Model:
    """The installed model called ``name``, checked to translate the pair; one line naming the setting otherwise."""
    where = setting or "--model"
    matches = [model for model in installed_models(directory) if model.name == name]
    if not matches:
        known = ", ".join(["argos", *(m.name for m in installed_models(directory))])
        message = (f"no translation model named {name!r} in {directory} (installed: {known}); "
                   "run: publisher models install --dir PATH")
        raise ConfigError(where, message) if setting else TranslationUnavailable(f"{where} {name}: {message}")
    model = matches[0]
    if not model.serves(source_lang, target_lang):
        serves = ", ".join(f"{a}->{b}" for a, b in model.directions)
        message = f"model {name!r} translates {serves}, not {source_lang}->{target_lang}"
        raise ConfigError(where, message) if setting else InputError(where, message)
    return model
