"""Offline English <-> Korean translation: Argos Translate models, glossary, translation memory and review status.

    Article --segment--> sentences --glossary/placeholders--> memory? --batch--> CTranslate2 --restore--> Article

Importing this package is cheap: the model libraries are imported only by the code that translates.
"""

from __future__ import annotations

from publisher.translate.workflow import (
    TranslationReport,
    get_translator,
    mark_reviewed,
    translate_article,
    translate_file,
)

__all__ = ["TranslationReport", "get_translator", "mark_reviewed", "translate_article", "translate_file"]
