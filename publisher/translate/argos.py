"""The default backend: an installed Argos Translate package run directly on CTranslate2 and its tokenizer.

argostranslate's own ``translate()`` splits sentences with Stanza/MiniSBD models fetched at run time (so it
fails offline) and calls the model once per paragraph; here sentences come already split, and every
sentence of an article goes to CTranslate2 in one ``translate_batch`` call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.translate.base import Translator
from publisher.translate.packages import ModelPackage
from publisher.translate.threads import DEFAULT_BEAM_SIZE, MAX_BATCH_TOKENS, CT2Options

if TYPE_CHECKING:
    import ctranslate2  # ships no type hints: its classes are Any to mypy

_load_lock = threading.Lock()
# OpenNMT's padding and boundary tokens are not text (a weak model can still emit them).
_SPECIAL_TOKENS = frozenset({"<blank>", "<s>", "</s>", "<unk>", "<pad>"})


class _SentencePieceTokenizer:
    """Most Argos packages: a SentencePiece model (sentencepiece.model)."""

    def __init__(self, path: Path) -> None:
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(path))

    def encode(self, sentences: Sequence[str]) -> list[list[str]]:
        # sentencepiece's hints leave the result untyped: out_type=str makes it a list of pieces per sentence
        pieces: list[list[str]] = self.processor.encode(list(sentences), out_type=str)
        return pieces

    def decode(self, tokens: list[str]) -> str:
        text: str = self.processor.decode_pieces(tokens)
        return text


class _MosesBpeTokenizer:
    """Older Argos packages: Moses tokenization and BPE codes (bpe.model), through argostranslate's own class."""

    def __init__(self, path: Path, from_code: str, to_code: str) -> None:
        from argostranslate.tokenizer import BPETokenizer

        self.tokenizer = BPETokenizer(path, from_code, to_code)

    def encode(self, sentences: Sequence[str]) -> list[list[str]]:
        return [self.tokenizer.encode(sentence) for sentence in sentences]

    def decode(self, tokens: list[str]) -> str:
        text: str = self.tokenizer.decode(tokens)  # argostranslate ships no type hints
        return text


_Tokenizer = _SentencePieceTokenizer | _MosesBpeTokenizer


@functools.lru_cache(maxsize=4)
def _load(package: ModelPackage, mtime: float, threads: int,
          replicas: int) -> tuple[ctranslate2.Translator, _Tokenizer]:
    """Load a model once per process (mtime in the key: a reinstalled package is loaded afresh)."""
    import ctranslate2

    translator = ctranslate2.Translator(str(package.model_dir), device="cpu", compute_type="auto",
                                        intra_threads=threads, inter_threads=replicas)
    if package.sentencepiece_path.is_file():
        tokenizer: _Tokenizer = _SentencePieceTokenizer(package.sentencepiece_path)
    else:
        tokenizer = _MosesBpeTokenizer(package.bpe_path, package.from_code, package.to_code)
    return translator, tokenizer


class ArgosTranslator(Translator, CT2Options):
    """Translate with an installed Argos package: tokenize, CTranslate2 beam search, detokenize."""

    name = "argos"

    def __init__(self, package: ModelPackage, *, beam_size: int = DEFAULT_BEAM_SIZE, max_tokens: int = 256,
                 threads: int | None = None, replicas: int = 1, max_batch_size: int = MAX_BATCH_TOKENS,
                 batch_type: str = "tokens") -> None:
        Translator.__init__(self, package.from_code, package.to_code)
        CT2Options.__init__(self, beam_size=beam_size, max_tokens=max_tokens, threads=threads, replicas=replicas,
                            max_batch_size=max_batch_size, batch_type=batch_type)
        self.package = package

    @property
    def model_id(self) -> str:
        return self.package.model_id

    def _model(self) -> tuple[ctranslate2.Translator, _Tokenizer]:
        mtime = (self.package.model_dir / "model.bin").stat().st_mtime
        threads = self.load_threads()
        with _load_lock:
            return _load(self.package, mtime, threads, self.replicas)

    def translate_batch(self, sentences: Sequence[str]) -> list[str]:
        if not sentences:
            return []
        translator, tokenizer = self._model()
        tokens = tokenizer.encode(sentences)
        prefix = self.package.target_prefix
        results = translator.translate_batch(
            tokens,
            target_prefix=[[prefix]] * len(tokens) if prefix else None,
            beam_size=self.beam_size,
            max_decoding_length=self.max_tokens,
            # argostranslate's length penalty and unknown-token replacement (its beam is 4, ours 2: threads.py)
            length_penalty=0.2,
            replace_unknowns=True,
            # CTranslate2 sorts the sentences by length and decodes them in batches of this many tokens.
            max_batch_size=self.max_batch_size,
            batch_type=self.batch_type,
        )
        translations: list[str] = []
        for result in results:
            hypothesis = result.hypotheses[0]
            if prefix and hypothesis[:1] == [prefix]:
                hypothesis = hypothesis[1:]
            hypothesis = [token for token in hypothesis if token not in _SPECIAL_TOKENS]
            translations.append(tokenizer.decode(hypothesis).strip())
        return translations
