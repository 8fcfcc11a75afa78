"""``publisher models evaluate``: translate a file of human translations and score the models with sacrebleu.

Each source sentence goes through the same pipeline as an article (glossary placeholders, particle
agreement, one batch), but not through the translation memory: the score is the model's own.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import InputError

if TYPE_CHECKING:
    from publisher.site import Site
    from publisher.translate.base import Translator
    from publisher.translate.glossary import Glossary

# Languages whose BLEU needs a tokenizer of its own (words are not separated by spaces the way 13a expects).
KOREAN_TOKENIZER = "ko-mecab"
FALLBACK_TOKENIZER = "char"


@dataclass(frozen=True)
class SentencePair:
    row: int            # line number in the file, for messages
    source: str
    reference: str


def read_pairs(path: Path, source_lang: str, target_lang: str) -> list[SentencePair]:
    """The sentence pairs of a tab-separated UTF-8 file; one line naming the file and row when it is not one.

    Lines starting with ``#`` and blank lines are skipped. A first row naming the languages (``en<TAB>ko``,
    in any order, other columns allowed) is a header; without one, column 1 is the source and column 2 the
    reference.
    """
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(where, "file not found") from None
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{where}:{row}", f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None
    columns: tuple[int, int] | None = None
    pairs: list[SentencePair] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("\t")]
        if columns is None:
            names = [cell.lower() for cell in cells]
            if source_lang in names or target_lang in names:
                for lang in (source_lang, target_lang):
                    if lang not in names:
                        raise InputError(f"{where}:{number}", f"the header has no {lang} column "
                                                               f"(columns: {', '.join(cells)})")
                columns = names.index(source_lang), names.index(target_lang)
                continue
            columns = (0, 1)
        for index, lang in zip(columns, (source_lang, target_lang), strict=True):
            if index >= len(cells) or not cells[index]:
                raise InputError(f"{where}:{number}", f"the {lang} column is missing (columns are separated by tabs)")
        pairs.append(SentencePair(number, unicodedata.normalize("NFC", cells[columns[0]]),
                                  unicodedata.normalize("NFC", cells[columns[1]])))
    if not pairs:
        raise InputError(where, f"no {source_lang}-{target_lang} sentence pairs")
    return pairs


def bleu_tokenizer(target_lang: str) -> tuple[str, str]:
    """sacrebleu's tokenizer for BLEU in the target language, and why it was chosen."""
    if target_lang != "ko":
        return "13a", "sacrebleu's default"
    from sacrebleu.metrics.bleu import BLEU

    try:
        BLEU(tokenize=KOREAN_TOKENIZER)
    except (RuntimeError, ImportError):
        return FALLBACK_TOKENIZER, f"{KOREAN_TOKENIZER} is not installed; pip install 'sacrebleu[ko]' to use it"
    return KOREAN_TOKENIZER, "MeCab-ko is installed"


@dataclass
class Evaluation:
    """One model's scores on one file, at one beam size."""

    name: str
    model_id: str
    beam_size: int
    source_lang: str
    target_lang: str
    hypotheses: list[str]
    chrf: float
    bleu: float
    bleu_tokenizer: str
    chrf_signature: str
    bleu_signature: str
    glossary_terms: int
    glossary_hits: int
    repaired: int
    seconds: float
    load_seconds: float
    out: Path | None = None

    @property
    def sentences(self) -> int:
        return len(self.hypotheses)

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else float("inf")

    @property
    def glossary_hit_rate(self) -> float | None:
        return self.glossary_hits / self.glossary_terms if self.glossary_terms else None

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.name, "model_id": self.model_id, "beam_size": self.beam_size,
            "from": self.source_lang, "to": self.target_lang,
            "sentences": self.sentences, "chrf": round(self.chrf, 2), "bleu": round(self.bleu, 2),
            "bleu_tokenizer": self.bleu_tokenizer, "chrf_signature": self.chrf_signature,
            "bleu_signature": self.bleu_signature, "glossary_terms": self.glossary_terms,
            "glossary_hits": self.glossary_hits,
            "glossary_hit_rate": None if self.glossary_hit_rate is None else round(self.glossary_hit_rate, 4),
            "repaired": self.repaired, "seconds": round(self.seconds, 3), "load_seconds": round(self.load_seconds, 3),
            "sentences_per_second": round(self.sentences_per_second, 2),
            "out": None if self.out is None else str(self.out),
        }


def score(hypotheses: list[str], references: list[str], target_lang: str) -> tuple[float, float, str, str, str]:
    """chrF2 and BLEU of ``hypotheses`` with their signatures, and the BLEU tokenizer used."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    tokenizer, _ = bleu_tokenizer(target_lang)
    chrf, bleu = CHRF(), BLEU(tokenize=tokenizer)
    chrf_score = chrf.corpus_score(hypotheses, [references])
    bleu_score = bleu.corpus_score(hypotheses, [references])
    return (float(chrf_score.score), float(bleu_score.score), tokenizer,
            str(chrf.get_signature()), str(bleu.get_signature()))


def translate_pairs(pairs: list[SentencePair], translator: Translator, glossary: Glossary) -> tuple[list[str], int]:
    """Each source sentence through the article pipeline, with no translation memory; (hypotheses, repaired)."""
    from publisher.translate.segment import segment_plain
    from publisher.translate.workflow import translate_templates

    source, target = translator.source_lang, translator.target_lang
    templates = [segment_plain(pair.source, source, lambda text: glossary.find(text, source, target))
                 for pair in pairs]
    rendered, counts = translate_templates(templates, translator, None)
    # one line each: --out is read back a line per sentence
    return [" ".join(text.split()) for text in rendered], len(counts.repaired)


def glossary_hits(pairs: list[SentencePair], hypotheses: list[str], glossary: Glossary,
                  source_lang: str, target_lang: str) -> tuple[int, int]:
    """(glossary terms in the sources, of them written as the glossary says in the hypotheses), once per sentence."""
    terms = hits = 0
    for pair, hypothesis in zip(pairs, hypotheses, strict=True):
        expected = {target for _, _, target in glossary.find(pair.source, source_lang, target_lang)}
        missing = {term.expected for term in glossary.missing(pair.source, hypothesis, source_lang, target_lang)}
        terms += len(expected)
        hits += len(expected - missing)
    return terms, hits


def out_path(out: Path, name: str, several: bool, beam_size: int | None = None) -> Path:
    """Where a model's hypotheses go: ``--out`` itself, or ``hyp.<model>.txt`` beside it when several are compared
    (``hyp.<model>.beam<N>.txt`` when several beam sizes are)."""
    if beam_size is not None:
        name = f"{name}.beam{beam_size}"
    return out.with_name(f"{out.stem}.{name}{out.suffix}") if several else out


def evaluate(site: Site, path: Path, source_lang: str, target_lang: str, names: list[str] | None = None,
             *, beam_sizes: list[int] | None = None, out: Path | None = None) -> list[Evaluation]:
    """Score each named model (default: the one the settings choose) on the pairs of ``path``, at each of
    ``beam_sizes`` (default: PUBLISHER_TRANSLATION_BEAM_SIZE's)."""
    from publisher.translate.glossary import Glossary
    from publisher.translate.packages import require_extra
    from publisher.translate.registry import chosen_name, get_translator

    require_extra()
    pairs = read_pairs(path, source_lang, target_lang)
    glossary = Glossary.load(site)
    chosen = names or [chosen_name(site, source_lang, target_lang)]
    beams = list(dict.fromkeys(beam_sizes or [int(site.config.get("PUBLISHER_TRANSLATION_BEAM_SIZE"))]))
    translators = [(name, beam, get_translator(site, source_lang, target_lang, name, beam_size=beam))
                   for name in dict.fromkeys(chosen) for beam in beams]
    references = [pair.reference for pair in pairs]
    results = []
    for name, beam, translator in translators:
        started = time.perf_counter()
        translator.translate_batch(["."])   # loads the model: timed apart from the translation
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        hypotheses, repaired = translate_pairs(pairs, translator, glossary)
        seconds = time.perf_counter() - started
        chrf, bleu, tokenizer, chrf_signature, bleu_signature = score(hypotheses, references, target_lang)
        terms, hits = glossary_hits(pairs, hypotheses, glossary, source_lang, target_lang)
        written = None
        if out is not None:
            written = out_path(out, name, len(translators) > 1, beam if len(beams) > 1 else None)
            try:
                written.write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
            except OSError as exc:
                raise InputError(str(written), f"cannot be written ({exc.strerror})") from None
        results.append(Evaluation(name, translator.model_id, beam, source_lang, target_lang,
                                  hypotheses, chrf, bleu, tokenizer, chrf_signature, bleu_signature, terms, hits,
                                  repaired, seconds, load_seconds, written))
    return results
