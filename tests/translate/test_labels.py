"""Each kind of version is credited in the reader's language, from the `translate` catalogs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from publisher.article import Article, TranslationInfo
from publisher.translate.labels import status_label, translation_credit


def version(lang: str, status: str, source: str | None = None) -> Article:
    return Article(slug="s", lang=lang, title="t", date=datetime(2025, 1, 1, tzinfo=timezone.utc),
                   translation=TranslationInfo(status, source, None))


@pytest.mark.parametrize("lang, status, credit, label", [
    ("ko", "reviewed", "영어 원문을 기계 번역한 뒤 편집자가 검토한 글입니다.", "검토를 거친 기계 번역"),
    ("ko", "human", "영어 원문을 번역한 글입니다.", "번역문"),
    ("ko", "machine", "이 글은 영어 원문을 기계 번역한 것으로, 오류가 있을 수 있습니다.", "기계 번역"),
    ("en", "reviewed", "Translated from Korean by machine and reviewed by an editor.", "Reviewed machine translation"),
    ("en", "human", "Translated from Korean.", "Translation"),
])
def test_translations_are_credited_in_the_readers_language(lang: str, status: str, credit: str, label: str) -> None:
    article = version(lang, status, "en" if lang == "ko" else "ko")

    assert translation_credit(article) == credit
    assert status_label(article) == label


def test_an_original_carries_no_credit() -> None:
    assert translation_credit(version("ko", "original")) is None
    assert status_label(version("ko", "original")) == "원문"
