"""The default backend: an installed Argos Translate package run directly on CTranslate2 and SentencePiece.

argostranslate's own ``translate()`` splits sentences with Stanza/MiniSBD models fetched at run time (so it
fails offline) and calls the model once per paragraph; here sentences come already split, and every
sentence of an article goes to CTranslate2 in one ``translate_batch`` call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

from publisher.translate.base import Translator
from publisher.translate.packages import ModelPackage

_load_lock = threading.Lock()
_SPECIAL_TOKENS = frozenset({"<blank>", "<s>", "</s>", "<unk>", "<pad>"})


@functools.lru_cache(maxsize=4)
def _load(model_dir: str, sentencepiece_path: str, mtime: float) -> tuple[Any, Any]:
    """Load a model once per process (mtime in the key: a reinstalled package is loaded afresh)."""
    import ctranslate2
    import sentencepiece

    translator = ctranslate2.Translator(model_dir, device="cpu", compute_type="auto")
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=sentencepiece_path)
    return translator, tokenizer


class ArgosTranslator(Translator):
    """Translate with an installed Argos package: SentencePiece in, CTranslate2 beam search, SentencePiece out."""

    name = "argos"

    def __init__(self, package: ModelPackage, *, beam_size: int = 4, max_tokens: int = 256) -> None:
        super().__init__(package.from_code, package.to_code)
        self.package = package
        self.beam_size = beam_size
        self.max_tokens = max_tokens

    @property
    def model_id(self) -> str:
        return self.package.model_id

    def _model(self) -> tuple[Any, Any]:
        mtime = (self.package.model_dir / "model.bin").stat().st_mtime
        with _load_lock:
            return _load(str(self.package.model_dir), str(self.package.sentencepiece_path), mtime)

    def translate_batch(self, sentences: Sequence[str]) -> list[str]:
        if not sentences:
            return []
        translator, tokenizer = self._model()
        tokens = tokenizer.encode(list(sentences), out_type=str)
        prefix = self.package.target_prefix
        results = translator.translate_batch(
            tokens,
            target_prefix=[[prefix]] * len(tokens) if prefix else None,
            beam_size=self.beam_size,
            max_decoding_length=self.max_tokens,
            # Same search settings as argostranslate's packaged path, so the output matches it.
            length_penalty=0.2,
            replace_unknowns=True,
            # CTranslate2 sorts the sentences by length and decodes them in batches of this many.
            max_batch_size=64,
        )
        translations = []
        for result in results:
            hypothesis = result.hypotheses[0]
            if prefix and hypothesis[:1] == [prefix]:
                hypothesis = hypothesis[1:]
            # OpenNMT's padding and boundary tokens are not text (a weak model can still emit them).
            hypothesis = [token for token in hypothesis if token not in _SPECIAL_TOKENS]
            translations.append(tokenizer.decode(hypothesis).strip())
        return translations
