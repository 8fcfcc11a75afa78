"""Build a real Argos Translate package with random weights, for tests and benchmarks that must run offline."""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from ctranslate2.specs import transformer_spec

# English and Korean text the SentencePiece vocabulary is trained on: enough to cover both scripts.
TRAINING_SENTENCES = (
    "The United Nations Project Office on Governance works in Incheon, Republic of Korea.",
    "UNPOG supports governments in Asia and the Pacific with research and training.",
    "The workshop on digital government brought together 45 officials from 12 countries.",
    "Participants discussed data governance, public service delivery and innovation.",
    "The Sustainable Development Goals guide every programme of the office.",
    "A new report on the E-Government Survey was published on 3 May 2024.",
    "Read the full statement and the programme on our website.",
    "유엔거버넌스센터는 인천 송도에 있는 유엔 기관입니다.",
    "센터는 아시아 태평양 지역 정부의 역량 강화를 지원합니다.",
    "디지털 정부에 관한 워크숍에 12개국 공무원 45명이 참석했습니다.",
    "참가자들은 데이터 거버넌스와 공공 서비스 혁신을 논의했습니다.",
    "지속가능발전목표는 센터의 모든 사업의 기준입니다.",
    "보고서 전문은 홈페이지에서 볼 수 있습니다.",
)


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a Transformer translation model."""

    layers: int = 1
    heads: int = 2
    d_model: int = 32
    ffn: int = 64
    vocab_size: int | None = None  # None: exactly the SentencePiece pieces; more: padded with fillers
    max_positions: int = 512


TINY = ModelShape()
# Argos Translate's published models are OpenNMT "transformer base" models of this size.
ARGOS_BASE = ModelShape(layers=6, heads=8, d_model=512, ffn=2048, vocab_size=8000)


def train_sentencepiece(vocab_size: int, extra_sentences: tuple[str, ...] = ()) -> bytes:
    """Train a SentencePiece model in memory on the built-in bilingual sentences and return it serialized."""
    import sentencepiece

    sentences = list(TRAINING_SENTENCES) + list(extra_sentences)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        character_coverage=1.0,
        # a small corpus cannot fill a large vocabulary exactly; let the trainer stop where it can
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return model.getvalue()


def learn_bpe_codes(from_code: str, merges: int = 200) -> str:
    """BPE codes in subword-nmt's format (what older Argos packages ship as bpe.model), learned in memory."""
    from collections import Counter

    from sacremoses.tokenize import MosesTokenizer

    tokenizer = MosesTokenizer(from_code)
    words = Counter(w for sentence in TRAINING_SENTENCES for w in tokenizer.tokenize(sentence))
    symbols = {tuple(w[:-1]) + (w[-1] + "</w>",): n for w, n in words.items()}
    learned: list[tuple[str, str]] = []
    for _ in range(merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in symbols.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=lambda pair: (pairs[pair], pair))
        learned.append(best)
        merged: dict[tuple[str, ...], int] = {}
        for word, count in symbols.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = count
        symbols = merged
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in learned)


def _bpe_vocabulary(codes_path: Path, from_code: str, to_code: str) -> list[str]:
    """Every token argostranslate's Moses+BPE tokenizer makes of the training sentences, and every character."""
    from argostranslate.tokenizer import BPETokenizer

    tokenizer = BPETokenizer(codes_path, from_code, to_code)
    tokens = {t for sentence in TRAINING_SENTENCES for t in tokenizer.encode(sentence)}
    characters = {c for sentence in TRAINING_SENTENCES for c in sentence if not c.isspace()}
    tokens |= characters | {c + "@@" for c in characters}
    return ["<unk>", "<s>", "</s>", "<blank>"] + sorted(tokens)


def _vocabulary(sentencepiece_model: bytes, size: int | None) -> list[str]:
    """The model's vocabulary: OpenNMT's special tokens, the SentencePiece pieces, then fillers up to ``size``."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=sentencepiece_model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    # CTranslate2 expects OpenNMT's special tokens; SentencePiece's own <s></s> play that role.
    specials = ["<unk>", "<s>", "</s>", "<blank>"]
    vocabulary = specials + [p for p in pieces if p not in specials]
    # A few sentences cannot train a large vocabulary, but the output layer's cost depends on its size:
    # fillers give a benchmark model the output layer of a real one.
    vocabulary += [f"▁filler{i}" for i in range((size or 0) - len(vocabulary))]
    return vocabulary


@dataclass(frozen=True)
class Architecture:
    """How the Transformer is wired and configured: OpenNMT's (Argos), Marian's (OPUS-MT) or M2M-100's (NLLB)."""

    pre_norm: bool = True
    activation: str = "RELU"                   # a ctranslate2.specs.common_spec.Activation member
    start_from_zero_embedding: bool = False    # Marian's decoder starts from a zero vector
    config: tuple[tuple[str, str], ...] = ()   # CTranslate2 config.json entries (special tokens)


OPENNMT = Architecture()
# As ctranslate2.converters.transformers.MarianMTLoader converts an OPUS-MT model.
MARIAN = Architecture(pre_norm=False, activation="SWISH", start_from_zero_embedding=True,
                      config=(("eos_token", "</s>"), ("unk_token", "<unk>"), ("decoder_start_token", "</s>")))
# As its M2M100Loader converts NLLB-200.
NLLB = Architecture(config=(("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"),
                            ("decoder_start_token", "</s>")))


def _random_transformer(shape: ModelShape, vocabulary: list[str], seed: int,
                        architecture: Architecture = OPENNMT) -> transformer_spec.TransformerSpec:
    """A CTranslate2 TransformerSpec with every weight filled from a seeded random generator."""
    import numpy as np
    from ctranslate2.specs import common_spec, transformer_spec

    rng = np.random.default_rng(seed)
    d, ffn, vocab = shape.d_model, shape.ffn, len(vocabulary)

    def matrix(rows: int, cols: int) -> npt.NDArray[np.float32]:
        # math.sqrt: the same double as np.sqrt, which numpy's stubs type as Any for an int
        return (rng.standard_normal((rows, cols)) / math.sqrt(cols)).astype(np.float32)

    def layer_norm(spec: common_spec.LayerNormSpec) -> None:
        spec.gamma = np.ones(d, dtype=np.float32)
        spec.beta = np.zeros(d, dtype=np.float32)

    def linear(spec: common_spec.LinearSpec, rows: int, cols: int) -> None:
        spec.weight = matrix(rows, cols)
        spec.bias = np.zeros(rows, dtype=np.float32)

    def position_encodings(spec: transformer_spec.PositionEncoderSpec) -> None:
        position = np.arange(shape.max_positions)[:, None]
        frequencies = np.exp(np.arange(0, d, 2) * (-np.log(10000.0) / d))
        table = np.zeros((shape.max_positions, d), dtype=np.float32)
        table[:, 0::2] = np.sin(position * frequencies)
        table[:, 1::2] = np.cos(position * frequencies)
        spec.encodings = table

    def feed_forward(spec: transformer_spec.FeedForwardSpec) -> None:
        layer_norm(spec.layer_norm)
        linear(spec.linear_0, ffn, d)
        linear(spec.linear_1, d, ffn)

    spec = transformer_spec.TransformerSpec.from_config(
        shape.layers, shape.heads, pre_norm=architecture.pre_norm,
        activation=getattr(common_spec.Activation, architecture.activation),
    )
    spec.encoder.embeddings[0].weight = matrix(vocab, d)
    spec.decoder.embeddings.weight = matrix(vocab, d)
    spec.decoder.start_from_zero_embedding = architecture.start_from_zero_embedding
    for key, value in architecture.config:
        setattr(spec.config, key, value)
    for stack in (spec.encoder, spec.decoder):
        position_encodings(stack.position_encodings)
        if architecture.pre_norm:   # a post-norm stack has no final layer norm
            layer_norm(stack.layer_norm)
    for layer in spec.encoder.layer:
        layer_norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        feed_forward(layer.ffn)
    for layer in spec.decoder.layer:
        layer_norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        layer_norm(layer.attention.layer_norm)
        linear(layer.attention.linear[0], d, d)
        linear(layer.attention.linear[1], 2 * d, d)
        linear(layer.attention.linear[2], d, d)
        feed_forward(layer.ffn)
    linear(spec.decoder.projection, vocab, d)
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    return spec


def write_ctranslate2_model(
    output_dir: Path, shape: ModelShape, vocabulary: list[str], seed: int = 7, quantization: str | None = None,
    architecture: Architecture = OPENNMT,
) -> Path:
    """Write a CTranslate2 model directory (model.bin, config.json, shared_vocabulary.json) with random weights."""
    from ctranslate2.converters.converter import Converter

    # ctranslate2 ships no type hints, so mypy sees its Converter as Any
    class RandomWeightsConverter(Converter):  # type: ignore[misc]
        """Feeds CTranslate2's own converter machinery (validation, serialization) a spec we filled."""

        def _load(self) -> transformer_spec.TransformerSpec:
            return _random_transformer(shape, vocabulary, seed, architecture)

    return Path(RandomWeightsConverter().convert(str(output_dir), quantization=quantization, force=True))


def build_argos_package(
    destination: Path,
    from_code: str = "en",
    to_code: str = "ko",
    shape: ModelShape = TINY,
    package_version: str = "0.0.1",
    seed: int = 7,
    quantization: str | None = None,
    tokenizer: str = "sentencepiece",
) -> Path:
    """Zip a complete .argosmodel (metadata.json, model/, and sentencepiece.model or bpe.model) and return its path.

    ``quantization="int8"`` stores the weights as Argos's published models do; ``tokenizer="bpe"`` makes a
    package like the older ones, tokenized with Moses and BPE codes.
    """
    names = {"en": "English", "ko": "Korean"}
    top = f"translate-{from_code}_{to_code}-{package_version.replace('.', '_')}"
    with tempfile.TemporaryDirectory() as workdir:
        package_dir = Path(workdir) / top
        package_dir.mkdir()
        if tokenizer == "bpe":
            codes = package_dir / "bpe.model"
            codes.write_text(learn_bpe_codes(from_code), encoding="utf-8")
            vocabulary = _bpe_vocabulary(codes, from_code, to_code)
        else:
            sentencepiece_model = train_sentencepiece(400)
            (package_dir / "sentencepiece.model").write_bytes(sentencepiece_model)
            vocabulary = _vocabulary(sentencepiece_model, shape.vocab_size)
        write_ctranslate2_model(package_dir / "model", shape, vocabulary, seed=seed, quantization=quantization)
        metadata = {
            "package_version": package_version,
            "argos_version": "1.9",
            "from_code": from_code,
            "from_name": names.get(from_code, from_code),
            "to_code": to_code,
            "to_name": names.get(to_code, to_code),
            "type": "translate",
            "links": [],
        }
        (package_dir / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        (package_dir / "README.md").write_text("Random weights: output is deterministic gibberish.\n", encoding="utf-8")
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(package_dir.rglob("*")):
                archive.write(path, path.relative_to(Path(workdir)))
        shutil.move(partial, destination)
    return destination


# ---------------------------------------------------------------- CTranslate2 folders (OPUS-MT, NLLB-200)


def _sentences_in(lang: str) -> tuple[str, ...]:
    """The training sentences written in one language (Hangul or not)."""
    korean = tuple(s for s in TRAINING_SENTENCES if any("\uac00" <= c <= "\ud7a3" for c in s))
    return korean if lang == "ko" else tuple(s for s in TRAINING_SENTENCES if s not in korean)


def _pieces(sentencepiece_model: bytes) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=sentencepiece_model)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def _train_on(sentences: tuple[str, ...], vocab_size: int) -> bytes:
    """A SentencePiece model trained on ``sentences`` only (not the built-in bilingual set)."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size, character_coverage=1.0,
        hard_vocab_limit=False, minloglevel=2,
    )
    return model.getvalue()


def _padded(vocabulary: list[str], size: int | None, tail: tuple[str, ...] = ()) -> list[str]:
    """``vocabulary``, fillers up to ``size`` (a benchmark's output layer as large as a real model's), then ``tail``."""
    unique = list(dict.fromkeys(vocabulary))
    unique += [f"\u2581filler{i}" for i in range((size or 0) - len(unique) - len(tail))]
    return unique + [token for token in tail if token not in unique]


def build_marian_model(
    destination: Path,
    from_code: str = "en",
    to_code: str = "ko",
    shape: ModelShape = TINY,
    seed: int = 7,
    quantization: str | None = None,
    language_token: str | None = None,
) -> Path:
    """A folder as ``ct2-transformers-converter`` writes an OPUS-MT model, with its source.spm and target.spm.

    Marian's vocabulary is shared: ``</s>``, ``<unk>``, then both tokenizers' pieces (Transformers' ``<pad>``
    is dropped by the converter). ``language_token`` (e.g. ``>>kor<<``) adds the target-language token a
    multilingual OPUS-MT model expects first in its input.
    """
    source_model = _train_on(_sentences_in(from_code), 120)
    target_model = _train_on(_sentences_in(to_code), 120)
    specials = ["</s>", "<unk>"]
    vocabulary = _padded(specials + [p for p in _pieces(source_model) + _pieces(target_model) if p not in specials]
                         + ([language_token] if language_token else []), shape.vocab_size)
    write_ctranslate2_model(destination, shape, vocabulary, seed=seed, quantization=quantization, architecture=MARIAN)
    (destination / "source.spm").write_bytes(source_model)
    (destination / "target.spm").write_bytes(target_model)
    (destination / "README.md").write_text("Random weights in the shape of an OPUS-MT model: deterministic gibberish.\n",
                                           encoding="utf-8")
    return destination


# A few of NLLB-200's 202 language codes, in its vocabulary's order (after the SentencePiece pieces).
NLLB_LANGUAGE_CODES = ("deu_Latn", "eng_Latn", "fra_Latn", "jpn_Jpan", "kor_Hang", "zho_Hans")


def build_nllb_model(
    destination: Path,
    shape: ModelShape = TINY,
    seed: int = 7,
    quantization: str | None = None,
    languages: tuple[str, ...] = NLLB_LANGUAGE_CODES,
) -> Path:
    """A folder as ``ct2-transformers-converter`` writes NLLB-200: one sentencepiece.bpe.model for every language.

    The vocabulary is fairseq's order: ``<s> <pad> </s> <unk>``, the pieces, the language codes, ``<mask>``.
    """
    sentencepiece_model = train_sentencepiece(400)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocabulary = _padded(specials + [p for p in _pieces(sentencepiece_model) if p not in specials], shape.vocab_size,
                         tail=(*languages, "<mask>"))
    write_ctranslate2_model(destination, shape, vocabulary, seed=seed, quantization=quantization, architecture=NLLB)
    (destination / "sentencepiece.bpe.model").write_bytes(sentencepiece_model)
    (destination / "README.md").write_text("Random weights in the shape of NLLB-200: deterministic gibberish.\n",
                                           encoding="utf-8")
    return destination
