"""The glossary (``locales/glossary.tsv``): names and institutional terms the model must not guess, per language.

The header names the columns: language codes, then an optional ``note`` (``en<TAB>ko<TAB>note``; a site in
three languages writes ``en<TAB>ko<TAB>fr<TAB>note``). Every row gives the term in every language of its file.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import InputError
from publisher.resources import locales_dir

if TYPE_CHECKING:
    from publisher.site import Site

GLOSSARY_FILE = "glossary.tsv"
NOTE_COLUMN = "note"
# What the header of a glossary looks like; told to whoever writes one that cannot be read.
HEADER_EXAMPLE = "en<TAB>ko<TAB>note"
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")


@dataclass(frozen=True)
class GlossaryEntry:
    """One row: the term in each language of its file (language code -> term)."""

    pairs: tuple[tuple[str, str], ...]   # (language, term), in the file's column order: hashable, unlike a dict
    note: str = ""
    where: str = ""  # "locales/glossary.tsv:4", for messages

    @property
    def terms(self) -> dict[str, str]:
        return dict(self.pairs)

    def term(self, lang: str) -> str | None:
        return self.terms.get(lang)


@dataclass(frozen=True)
class MissingTerm:
    """A glossary term of the source whose rendering is absent from the translation."""

    source: str
    expected: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.expected}"


def _header(row: list[str]) -> tuple[tuple[str, ...], bool]:
    """The language columns of a header row and whether a note column follows them; None when not a header."""
    cells = [cell.strip().lower() for cell in row]
    has_note = bool(cells) and cells[-1] == NOTE_COLUMN
    languages = tuple(cells[:-1] if has_note else cells)
    if len(languages) < 2 or len(set(languages)) != len(languages) or not all(
            _LANGUAGE_CODE.fullmatch(code) for code in languages):
        return (), False
    return languages, has_note


def read_glossary(path: Path) -> list[GlossaryEntry]:
    """Read one TSV file (header: language codes, then note); a bad row is an InputError naming file, line, column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(str(path), "is not UTF-8 text") from None
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    languages, has_note = _header(rows[0]) if rows else ((), False)
    if not languages:
        raise InputError(f"{path}:1", f"expected a header line: {HEADER_EXAMPLE}")
    columns = (*languages, NOTE_COLUMN) if has_note else languages
    entries = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row) or row[0].startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(row) < len(languages):
            raise InputError(where, f"{languages[len(row)]}: is missing (columns are separated by a TAB)")
        if len(row) > len(columns):
            raise InputError(where, f"expected {len(columns)} columns ({', '.join(columns)}), found {len(row)}")
        terms = {lang: cell.strip() for lang, cell in zip(languages, row)}
        for lang, value in terms.items():
            if not value:
                raise InputError(where, f"{lang}: is empty")
        note = row[len(languages)].strip() if has_note and len(row) > len(languages) else ""
        entries.append(GlossaryEntry(tuple(terms.items()), note, where))
    return entries


def _normal_form(term: str, lang: str) -> str:
    """The key a matched term is looked up by: spacing collapsed (removed altogether in Korean)."""
    return "".join(term.split()) if lang == "ko" else " ".join(term.split())


def _pattern(term: str, lang: str) -> str:
    # Korean writers vary the spacing of compound names (유엔 경제사회국 / 유엔경제사회국); English ones wrap lines.
    words = [re.escape(word) for word in term.split()]
    return (r"\s*" if lang == "ko" else r"\s+").join(words)


class Glossary:
    """Terms in each language; a site's ``locales/glossary.tsv`` overrides the packaged rows sharing a term."""

    def __init__(self, entries: list[GlossaryEntry]) -> None:
        self.entries = entries
        self._compiled: dict[tuple[str, str], tuple[re.Pattern[str] | None, dict[str, str]]] = {}

    @classmethod
    def load(cls, site: Site | None = None) -> Glossary:
        entries = read_glossary(locales_dir() / GLOSSARY_FILE) if (locales_dir() / GLOSSARY_FILE).is_file() else []
        if site is not None and (site.locales_dir / GLOSSARY_FILE).is_file():
            own = read_glossary(site.locales_dir / GLOSSARY_FILE)
            replaced = {pair for e in own for pair in e.pairs}
            entries = own + [e for e in entries if not replaced.intersection(e.pairs)]
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def targets(self, source_lang: str, target_lang: str) -> dict[str, str]:
        """Source term -> target term; when several rows share a source term, the first row wins."""
        mapping: dict[str, str] = {}
        for entry in self.entries:
            source, target = entry.term(source_lang), entry.term(target_lang)
            if source is not None and target is not None:   # a row from a file without one of the two languages
                mapping.setdefault(source, target)
        return mapping

    def _regex(self, source_lang: str, target_lang: str) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        if (source_lang, target_lang) not in self._compiled:
            self._compiled[source_lang, target_lang] = self._compile(source_lang, target_lang)
        return self._compiled[source_lang, target_lang]

    def _compile(self, source_lang: str, target_lang: str) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        targets = self.targets(source_lang, target_lang)
        if not targets:
            return None, {}
        terms = sorted(targets, key=len, reverse=True)  # "UN DESA" before "UN"
        alternation = "|".join(_pattern(t, source_lang) for t in terms)
        if source_lang == "ko":
            # Korean particles attach to the noun (유엔거버넌스센터는), so only the start is a boundary.
            regex = re.compile(rf"(?<!\w)(?:{alternation})")
        else:
            regex = re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])")
        by_normal_form = {_normal_form(t, source_lang): v for t, v in targets.items()}
        return regex, by_normal_form

    def find(self, text: str, source_lang: str, target_lang: str) -> list[tuple[int, int, str]]:
        """Every glossary term in text: (start, end, how the target language writes it)."""
        regex, by_normal_form = self._regex(source_lang, target_lang)
        if regex is None:
            return []
        found = []
        for match in regex.finditer(text):
            found.append((match.start(), match.end(), by_normal_form[_normal_form(match.group(), source_lang)]))
        return found

    def missing(self, source: str, translation: str, source_lang: str, target_lang: str) -> list[MissingTerm]:
        """Glossary terms of the source whose target form does not appear in the translation (each once)."""
        misses: dict[str, MissingTerm] = {}
        for start, end, expected in self.find(source, source_lang, target_lang):
            if not re.search(_pattern(expected, target_lang), translation):
                misses.setdefault(expected, MissingTerm(source[start:end], expected))
        return list(misses.values())
