"""Sentence-level translation memory, so an edited article only sends its changed sentences: the interface.

The storage layer implements it (``site.store().translation_memory``); this name stays for the translate code.
"""

from __future__ import annotations

from publisher.store import TranslationMemory

__all__ = ["TranslationMemory"]
