"""The Translator interface: a backend turns a batch of sentences in one language into another, nothing more."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class Translator(ABC):
    """One translation backend for one language pair.

    Everything around the model (Markdown structure, glossary, memory, sentence splitting) is done by
    ``publisher.translate.workflow``; a backend only sees plain sentences. Placeholders such as ``ZQ0``
    stand for protected spans; a backend passes them through as best it can, and what it drops is put
    back and reported by the caller.

    A new backend (e.g. a LibreTranslate server) subclasses this and is returned by
    ``publisher.translate.workflow.get_translator`` when the site chooses it.
    """

    #: backend name, e.g. "argos"
    name: str = ""

    def __init__(self, source_lang: str, target_lang: str) -> None:
        self.source_lang = source_lang
        self.target_lang = target_lang

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Backend, pair and model version, e.g. ``argos:en-ko@1.9``: written into translated articles and
        keying the translation memory, so a new model version never reuses an old version's output."""

    @abstractmethod
    def translate_batch(self, sentences: Sequence[str]) -> list[str]:
        """Translate every sentence in one call (a backend batches them as it can); same length and order."""
