"""Backends for installed CTranslate2 model folders: OPUS-MT (Marian) and NLLB-200, each sentence batch in one call.

Tokenized as the models were trained (Hugging Face's MarianTokenizer and NllbTokenizer do the same):
- Marian: ``source.spm`` pieces, then ``</s>`` (after a ``>>kor<<`` token for a multilingual model);
  the output is decoded with ``target.spm``;
- NLLB: the source language code, the pieces, ``</s>``; the target language code is the first output
  token (CTranslate2's ``target_prefix``) and is dropped from the result.
"""

from __future__ import annotations

import functools
import re
import threading
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.translate.base import Translator
from publisher.translate.ct2models import NLLB_CODES, CT2Model
from publisher.translate.threads import DEFAULT_BEAM_SIZE, MAX_BATCH_TOKENS, CT2Options

if TYPE_CHECKING:
    import ctranslate2
    import sentencepiece

_load_lock = threading.Lock()
_SPECIAL_TOKENS = frozenset({"<blank>", "<s>", "</s>", "<unk>", "<pad>"})


@functools.lru_cache(maxsize=4)
def _load(path: Path, source_spm: Path, target_spm: Path, mtime: float, threads: int, replicas: int) -> tuple[
        ctranslate2.Translator, sentencepiece.SentencePieceProcessor, sentencepiece.SentencePieceProcessor]:
    """Load a model once per process (mtime in the key: a reinstalled model is loaded afresh)."""
    import ctranslate2
    import sentencepiece

    translator = ctranslate2.Translator(str(path), device="cpu", compute_type="auto", intra_threads=threads,
                                        inter_threads=replicas)
    source = sentencepiece.SentencePieceProcessor(model_file=str(source_spm))
    target = source if target_spm == source_spm else sentencepiece.SentencePieceProcessor(model_file=str(target_spm))
    return translator, source, target


class CT2FolderTranslator(Translator, CT2Options):
    """Translate with an installed Marian or NLLB folder: tokenize, CTranslate2 beam search, detokenize."""

    def __init__(self, model: CT2Model, source_lang: str, target_lang: str, *, beam_size: int = DEFAULT_BEAM_SIZE,
                 max_tokens: int = 256, threads: int | None = None, replicas: int = 1,
                 max_batch_size: int = MAX_BATCH_TOKENS, batch_type: str = "tokens") -> None:
        Translator.__init__(self, source_lang, target_lang)
        CT2Options.__init__(self, beam_size=beam_size, max_tokens=max_tokens, threads=threads, replicas=replicas,
                            max_batch_size=max_batch_size, batch_type=batch_type)
        self.model = model
        self.name = model.kind

    @property
    def model_id(self) -> str:
        return self.model.model_id(self.source_lang, self.target_lang)

    def _loaded(self) -> tuple[ctranslate2.Translator, sentencepiece.SentencePieceProcessor,
                               sentencepiece.SentencePieceProcessor]:
        source_spm, target_spm = self.model.sentencepiece_paths
        mtime = (self.model.path / "model.bin").stat().st_mtime
        threads = self.load_threads()
        with _load_lock:
            return _load(self.model.path, source_spm, target_spm, mtime, threads, self.replicas)

    @abstractmethod
    def _source_tokens(self, pieces: list[str]) -> list[str]:
        """The model's input tokens for one sentence's SentencePiece pieces."""

    @abstractmethod
    def _target_prefix(self) -> str | None:
        """The token every output starts with (the target language), if the model needs one."""

    def translate_batch(self, sentences: Sequence[str]) -> list[str]:
        # CTranslate2 sorts the sentences by length and decodes them in batches of this many tokens
        return self.run(sentences, max_batch_size=self.max_batch_size, batch_type=self.batch_type)

    def run(self, sentences: Sequence[str], **options: object) -> list[str]:
        """``translate_batch`` with CTranslate2 options of the caller's (the benchmark's baseline uses Argos's)."""
        if not sentences:
            return []
        translator, source_spm, target_spm = self._loaded()
        pieces: list[list[str]] = source_spm.encode(list(sentences), out_type=str)
        tokens = [self._source_tokens(p) for p in pieces]
        prefix = self._target_prefix()
        results = translator.translate_batch(
            tokens,
            target_prefix=[[prefix]] * len(tokens) if prefix else None,
            beam_size=self.beam_size,
            max_decoding_length=self.max_tokens,
            replace_unknowns=True,
            **options,
        )
        translations: list[str] = []
        for result in results:
            hypothesis = result.hypotheses[0]
            if prefix and hypothesis[:1] == [prefix]:
                hypothesis = hypothesis[1:]
            kept = [token for token in hypothesis if token not in _SPECIAL_TOKENS and not _LANGUAGE_TOKEN.fullmatch(token)]
            text: str = target_spm.decode_pieces(kept)
            # A piece of the shared vocabulary that target.spm lacks comes back as written: its word mark too.
            translations.append(" ".join(text.replace("\u2581", " ").split()))
        return translations


# NLLB's language codes (kor_Hang) and OPUS-MT's target tokens (>>kor<<): a weak model can emit them as text.
_LANGUAGE_TOKEN = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}|>>[a-z]{2,3}(_[A-Z][a-z]{3})?<<")


class MarianTranslator(CT2FolderTranslator):
    """An OPUS-MT model converted by ct2-transformers-converter: one direction, two SentencePiece models."""

    def _source_tokens(self, pieces: list[str]) -> list[str]:
        prefix = self.model.source_prefix.get(f"{self.source_lang}-{self.target_lang}")
        return [*([prefix] if prefix else []), *pieces, "</s>"]

    def _target_prefix(self) -> str | None:
        return None


class NllbTranslator(CT2FolderTranslator):
    """NLLB-200 converted by ct2-transformers-converter: any direction between its languages, one SentencePiece model."""

    def _source_tokens(self, pieces: list[str]) -> list[str]:
        return [NLLB_CODES[self.source_lang], *pieces, "</s>"]

    def _target_prefix(self) -> str | None:
        return NLLB_CODES[self.target_lang]


def translator_for(model: CT2Model, source_lang: str, target_lang: str, *, beam_size: int = DEFAULT_BEAM_SIZE,
                   max_tokens: int = 256, threads: int | None = None) -> CT2FolderTranslator:
    cls = MarianTranslator if model.kind == "marian" else NllbTranslator
    return cls(model, source_lang, target_lang, beam_size=beam_size, max_tokens=max_tokens, threads=threads)
