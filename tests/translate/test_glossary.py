"""The glossary: UNPOG's terms in both languages, a site override, and one-line errors for a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.resources import locales_dir
from publisher.site import Site
from publisher.translate.glossary import Glossary, read_glossary


def terms(glossary: Glossary, text: str, source: str, target: str) -> list[tuple[str, str]]:
    return [(text[s:e], t) for s, e, t in glossary.find(text, source, target)]


def test_packaged_glossary_holds_unpog_terms_both_ways() -> None:
    glossary = Glossary.load()

    assert terms(glossary, "UNPOG and UN DESA in Incheon; Ban Ki-moon and the UN.", "en", "ko") == [
        ("UNPOG", "유엔거버넌스센터"), ("UN DESA", "유엔 경제사회국"), ("Incheon", "인천"),
        ("Ban Ki-moon", "반기문"), ("UN", "유엔"),
    ]
    # Korean particles attach to the noun; spacing inside compound names varies.
    assert terms(glossary, "유엔거버넌스센터는 유엔경제사회국과 반기문 전 총장을 만났다.", "ko", "en") == [
        ("유엔거버넌스센터", "United Nations Project Office on Governance"),
        ("유엔경제사회국", "United Nations Department of Economic and Social Affairs"),
        ("반기문", "Ban Ki-moon"),
    ]


def test_terms_match_whole_words_only() -> None:
    glossary = Glossary.load()

    assert terms(glossary, "UNICEF, UNDP and UNPOGS are not glossary terms.", "en", "ko") == []


def test_missing_terms_are_reported() -> None:
    glossary = Glossary.load()

    misses = glossary.missing("UNPOG met Ban Ki-moon in Incheon.", "유엔거버넌스센터가 인천에서 만났다.", "en", "ko")

    assert [(m.source, m.expected) for m in misses] == [("Ban Ki-moon", "반기문")]


def test_site_glossary_overrides_the_packaged_one(site: Site) -> None:
    (site.locales_dir).mkdir(exist_ok=True)
    (site.locales_dir / "glossary.tsv").write_text(
        "en\tko\tnote\nUNPOG\t유엔 거버넌스 센터\tour house style\nKim Min-ji\t김민지\tspeaker\n", encoding="utf-8")

    glossary = Glossary.load(site)

    assert terms(glossary, "UNPOG thanks Kim Min-ji in Incheon.", "en", "ko") == [
        ("UNPOG", "유엔 거버넌스 센터"), ("Kim Min-ji", "김민지"), ("Incheon", "인천")]


@pytest.mark.parametrize("content, message", [
    ("english\tkorean\n", "glossary.tsv:1: expected a header line: en<TAB>ko<TAB>note"),
    ("en\tko\tnote\nUNPOG\n", "glossary.tsv:2: ko: is missing (columns are separated by a TAB)"),
    ("en\tko\tnote\nUNPOG\t유엔거버넌스센터\n\t인천\n", "glossary.tsv:3: en: is empty"),
    ("en\tko\tnote\nA\tB\tC\tD\n", "glossary.tsv:2: expected 3 columns (en, ko, note), found 4"),
])
def test_bad_glossary_rows_name_file_line_and_column(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "glossary.tsv"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(InputError) as caught:
        read_glossary(path)

    assert str(caught.value) == f"{tmp_path}/{message}"


def test_packaged_glossary_file_is_valid() -> None:
    entries = read_glossary(locales_dir() / "glossary.tsv")

    assert len(entries) >= 20
    assert len({e.term("en") for e in entries}) == len(entries)  # no English term twice
