"""Benchmark: translating a 600-word article, our one-batch path against argostranslate's paragraph-by-paragraph path.

Run: python bench/translate.py [--beam-size 2] [--baseline-beam-size 4] [--max-tokens 64] [--repeat 3]
                               [--shapes argos,marian,nllb] [--variants]

The model has the dimensions of a published Argos model (6 layers, 8 heads, d_model 512, FFN 2048,
8000-token vocabulary, int8 weights) with random weights, so it is built offline in seconds; its output is
gibberish but costs what a real model's does for the same number of decoding steps. Random weights rarely
emit the end token, so both paths are bounded by the same ``max_decoding_length``.

Three timings, measured in this run on this machine, the paths taking turns in each round:
  baseline  argostranslate.translate.apply_packaged_translation once per paragraph (its own call, its own
            settings: batches of 32 tokens, and its own CTranslate2 translator, made as argostranslate makes
            it: ARGOS_INTER_THREADS / ARGOS_INTRA_THREADS, by default CTranslate2's 4 threads), fed the very
            sentences our splitter made (argostranslate's own splitter downloads Stanza/MiniSBD models, which
            an offline machine cannot), searching with its beam of 4 (ARGOS_BEAM_SIZE's default);
  batched   publisher.translate with its defaults: every sentence of the article in one CTranslate2 call,
            threads chosen from the cores and the load (PUBLISHER_TRANSLATION_THREADS=auto), beam 2
            (PUBLISHER_TRANSLATION_BEAM_SIZE's default, CTranslate2's own);
  memory    the same article again, every sentence answered from the translation memory.
The load average is printed before the run and with each round, with each round's wall-clock and CPU times and
ratios (CPU time counts every thread of the process: it shows the work, the wall clock what the load left).
--variants adds our path with other thread, batch and beam settings (among them the baseline's beam of 4, which
tells how much of the gain is the narrower search), and argostranslate's path on 1 thread (which tells how much is
batching), all in the same rounds.
Goals: batched >= 3x faster than baseline; memory >= 100x faster than batched.

Then the same for a model of each CTranslate2 folder shape (``models install --dir``), at the same size:
OPUS-MT's (Marian: post-norm, Swish, source.spm/target.spm) and NLLB-200's (pre-norm, one SentencePiece
model, language-code prefix). Their baseline is argostranslate's calling pattern on the same model:
one CTranslate2 call per paragraph, batches of 32 tokens (its ``ARGOS_BATCH_SIZE``), length penalty 0.2, beam 4.
Their baseline runs on its own translator with CTranslate2's default threads, as argostranslate's would.
Sentences per second count the article's distinct model inputs. Each model prints PASS or FAIL against the
goals; the exit status is 1 when any model misses one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Python puts bench/ first on the path, where bench/email.py would hide the standard library's email package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

ARTICLE = """\
## UNPOG hosts regional workshop on digital government and data governance

On 3 May 2024, the United Nations Project Office on Governance (UNPOG) opened a three-day regional workshop in Incheon on digital government and data governance. The workshop brought together 45 senior officials from 12 countries in Asia and the Pacific, as well as experts from UN DESA, academia and civil society. Participants came from ministries of the interior, national statistics offices and digital transformation agencies.

In her opening remarks, the Head of UNPOG recalled that the 2030 Agenda for Sustainable Development calls for effective, accountable and inclusive institutions at all levels. She noted that digital government can bring public services closer to people, but only if institutions manage data responsibly and protect the rights of every citizen. She also thanked the Ministry of the Interior and Safety of the Republic of Korea for its continued support.

The first day focused on national strategies. Delegations from Bhutan, Cambodia, Indonesia and Mongolia presented their digital government plans and discussed how they measure progress. Several speakers pointed out that the E-Government Survey gives countries a common frame, but that national indicators must reflect local priorities. A lively discussion followed on how to keep services accessible to people without reliable internet access.

The second day turned to data governance. Experts explained how governments can share data between agencies while protecting privacy. Participants worked in small groups on case studies and drafted principles for the secure exchange of administrative data. One group proposed a simple checklist that any agency could use before publishing a new data set, and another mapped the legal steps needed to open data to researchers.

- Clear legal mandates for each agency that collects personal data.
- Independent oversight and regular audits of data practices.
- Open standards so that systems can work together over time.
- Training for civil servants at every level of government.

On the final day, participants visited public service centres in Songdo and met officials who manage the city's integrated service platform. They saw how residents can apply for more than 200 services online or with the help of staff at a single counter. The visit showed how digital and in-person channels can support each other rather than compete.

The workshop closed with a session on next steps. UNPOG will publish a summary report and a collection of country practices in early 2025, and it will offer follow-up coaching to the teams that asked for it. Participants agreed to form an informal network to share lessons and to meet again at the next regional forum. The Head of UNPOG thanked all delegations for their active participation and their openness.

Speaking on behalf of UN DESA, a senior adviser underlined that the next edition of the United Nations E-Government Survey will pay closer attention to data governance and to the inclusion of older people, persons with disabilities and rural communities. She encouraged the delegations to take part in the survey's consultations and to share the results of their own assessments. Several participants said that the regional exchange had helped them to prepare for these consultations and to compare their plans with those of their neighbours.

For more information, please contact the UNPOG secretariat or visit the workshop page on the UNPOG website. Presentations and photographs from the three days will be available online in the coming weeks, together with a short video prepared by the organisers.
"""


def build_model(workdir: Path):
    from publisher.translate.packages import find_package, install_from_file
    from publisher.translate.synthetic import ARGOS_BASE, build_argos_package

    archive = build_argos_package(workdir / "translate-en_ko.argosmodel", "en", "ko", shape=ARGOS_BASE,
                                  package_version="1.0", quantization="int8")
    packages = workdir / "packages"
    install_from_file(archive, packages)
    return find_package(packages, "en", "ko")


def build_folder(kind: str, workdir: Path):
    """A Marian- or NLLB-shape folder at Argos size, installed (copied) as `models install --dir` does."""
    from publisher.translate.ct2models import install_folder
    from publisher.translate.synthetic import ARGOS_BASE, build_marian_model, build_nllb_model

    if kind == "marian":
        folder = build_marian_model(workdir / "opus-mt-en-ko", "en", "ko", shape=ARGOS_BASE, quantization="int8")
    else:
        folder = build_nllb_model(workdir / "nllb-200-bench", shape=ARGOS_BASE, quantization="int8")
    return install_folder(folder, workdir / "ct2models", source_lang="en", target_lang="ko")


def make_article():
    from publisher.article import Article

    return Article(slug="bench", lang="en", title="UNPOG hosts regional workshop on digital government",
                   date=datetime(2024, 5, 3, tzinfo=timezone.utc), body=ARTICLE)


def paragraphs_of(template) -> list[list[str]]:
    """The model inputs of each paragraph (a literal holding a blank line or line end closes a block)."""
    from publisher.translate.segment import MarkedSentence, Segment
    from publisher.translate.workflow import model_input

    blocks: list[list[str]] = [[]]
    for part in template.parts:
        if isinstance(part, Segment):
            blocks[-1].append(model_input(part))
        elif isinstance(part, MarkedSentence):
            blocks[-1].extend(dict.fromkeys(model_input(s) for s in part.segments))
        elif "\n" in part and blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


class BoundedTranslator:
    """The CTranslate2 translator argostranslate is given, with the same decoding bound as our path."""

    def __init__(self, translator, max_tokens: int) -> None:
        self.translator = translator
        self.max_tokens = max_tokens

    def translate_batch(self, *args, **kwargs):
        kwargs["max_decoding_length"] = self.max_tokens
        return self.translator.translate_batch(*args, **kwargs)


class GivenSentences:
    """A sentencizer for argostranslate that returns the sentences our splitter found for this paragraph."""

    def __init__(self, by_paragraph: dict[str, list[str]]) -> None:
        self.by_paragraph = by_paragraph

    def split_sentences(self, text: str) -> list[str]:
        return self.by_paragraph[text]


def timed(run) -> tuple[float, float]:
    """Wall-clock and CPU seconds (every thread of this process) of one run."""
    cpu = time.process_time()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started, time.process_time() - cpu


def interleaved_best(repeat: int, *runs, report=None) -> list[float]:
    """Fastest time of each run over ``repeat`` rounds, the runs taking turns within a round.

    Taking turns matters on a shared machine: a burst of load from elsewhere then slows every path alike
    instead of whichever happened to run during it. ``report`` gets each round's (wall, CPU) times.
    """
    best = [float("inf")] * len(runs)
    for round_ in range(repeat):
        times = [timed(run) for run in runs]
        best = [min(b, wall) for b, (wall, _) in zip(best, times)]
        if report is not None:
            report(round_, times)
    return best


def round_report(names: list[str]):
    """Print each round's times and its ratios to the baseline (the first run), with the load it ran under."""
    def report(round_: int, times: list[tuple[float, float]]) -> None:
        (wall, cpu), rest = times[0], times[1:]
        ratios = "; ".join(f"{name} {w:.2f} s {wall / w:.1f}x (CPU {c:.2f} s {cpu / c:.1f}x)"
                           for name, (w, c) in zip(names[1:], rest))
        print(f"  round {round_ + 1}: {load_line()}\n    baseline {wall:.2f} s (CPU {cpu:.2f} s); {ratios}")
    return report


def main() -> None:
    from publisher.translate.threads import DEFAULT_BEAM_SIZE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beam-size", type=int, default=DEFAULT_BEAM_SIZE,
                        help=f"beam size of our path (default {DEFAULT_BEAM_SIZE}, the setting's)")
    parser.add_argument("--baseline-beam-size", type=int, default=4,
                        help="beam size of argostranslate's path (default 4, its own)")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_decoding_length for both paths")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each path; the fastest counts")
    parser.add_argument("--shapes", default="argos,marian,nllb", help="which models to run, comma-separated")
    parser.add_argument("--variants", action="store_true",
                        help="also time our path with other thread, batch and beam settings (Argos shape)")
    parser.add_argument("--only", default="", help="with --variants: only the variants whose name holds this text")
    options = parser.parse_args()
    shapes = [shape.strip() for shape in options.shapes.split(",") if shape.strip()]

    passed = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("ARGOS_PACKAGES_DIR", str(workdir / "packages"))
        if "argos" in shapes:
            passed.append(bench_argos(workdir, options))
        for kind in ("marian", "nllb"):
            if kind in shapes:
                passed.append(bench_folder(kind, workdir, options))
    print(f"\n{'PASS' if all(passed) else 'FAIL'}: {sum(passed)} of {len(passed)} models met the goals")
    sys.exit(0 if all(passed) else 1)


def bench_folder(kind: str, workdir: Path, options) -> bool:
    """Batched against paragraph by paragraph for one CTranslate2 folder shape."""
    from publisher.store.sqlite import SqliteStore
    from publisher.translate.ct2 import translator_for
    from publisher.translate.glossary import Glossary
    from publisher.translate.segment import segment_markdown
    from publisher.translate.workflow import translate_templates

    started = time.perf_counter()
    model = build_folder(kind, workdir)
    print(f"\nmodel: {model.model_id('en', 'ko')} ({kind} shape), 6 layers, 8 heads, d_model 512, FFN 2048, "
          f"vocabulary 8000, int8 (built and installed in {time.perf_counter() - started:.1f} s)")
    glossary = Glossary.load()
    article = make_article()
    print(load_line())
    translator = translator_for(model, "en", "ko", beam_size=options.beam_size, max_tokens=options.max_tokens)
    translator._loaded()   # the threads are chosen now, from the load before we run
    # the baseline's own instance with argostranslate's thread settings (CTranslate2's defaults) and beam
    argos_like = translator_for(model, "en", "ko", beam_size=options.baseline_beam_size,
                                max_tokens=options.max_tokens, threads=0)
    print(f"publisher: {translator.threads} intra thread(s), batches of {translator.max_batch_size} "
          f"{translator.batch_type}, beam {translator.beam_size}; baseline: CTranslate2's default threads, batches "
          f"of 32 tokens, beam {argos_like.beam_size}")

    def template():
        return segment_markdown(article.body, "en", lambda text: glossary.find(text, "en", "ko"))

    paragraphs = paragraphs_of(template())
    sentences = sum(len(p) for p in paragraphs)

    def baseline() -> None:
        for paragraph in paragraphs:
            argos_like.run(paragraph, max_batch_size=32, batch_type="tokens", length_penalty=0.2)

    def batched() -> None:
        memory = SqliteStore(Path(":memory:"), state_dir=workdir).translation_memory
        translate_templates([template()], translator, memory)

    translator.translate_batch(["Warm up."])
    argos_like.translate_batch(["Warm up."])
    baseline_s, batched_s = interleaved_best(options.repeat, baseline, batched,
                                             report=round_report(["baseline", "batched"]))
    ratio = baseline_s / batched_s
    print(f"baseline (paragraph by paragraph, Argos's batching): {baseline_s:8.3f} s   "
          f"{sentences / baseline_s:6.1f} sentences/s")
    print(f"batched  (publisher, one translate_batch call):      {batched_s:8.3f} s   "
          f"{sentences / batched_s:6.1f} sentences/s   {ratio:5.1f}x faster than baseline "
          f"(goal >= 3x: {verdict(ratio, 3)})")
    print(f"after the run: {load_line()}")
    return ratio >= 3


# Our path with other CTranslate2 settings, each timed in the same rounds as the baseline (--variants):
# name -> ArgosTranslator keyword arguments. Beams 1 and 2 are compared with the beam-4 baseline: they buy speed
# with search quality, which a random-weight model cannot measure (``publisher models evaluate --beam-size``
# can, on real sentences); "beam 4" is our path searching as widely as the baseline.
VARIANTS: dict[str, dict[str, object]] = {
    "before: CT2 default threads, 64 sentences": {"threads": 0, "max_batch_size": 64, "batch_type": "examples"},
    "1 thread, 64 sentences": {"threads": 1, "max_batch_size": 64, "batch_type": "examples"},
    "1 thread x 2 replicas, 1024 tokens": {"threads": 1, "replicas": 2, "max_batch_size": 1024, "batch_type": "tokens"},
    "1 thread, 2048 tokens (auto under load)": {"threads": 1, "max_batch_size": 2048, "batch_type": "tokens"},
    "2 threads, 2048 tokens": {"threads": 2, "max_batch_size": 2048, "batch_type": "tokens"},
    "1 thread x 2 replicas, 512 tokens": {"threads": 1, "replicas": 2, "max_batch_size": 512, "batch_type": "tokens"},
    "auto threads, 2048 tokens, beam 1": {"beam_size": 1},
    "auto threads, 2048 tokens, beam 4 (the baseline's)": {"beam_size": 4},
}


BASELINE_1_THREAD = "argostranslate's path with intra_threads=1"


def load_line() -> str:
    from publisher.translate.threads import choose_threads, usable_cores

    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {usable_cores()} cores "
            f"(os.cpu_count() {os.cpu_count()}); auto threads now: {choose_threads(usable_cores(), one)}")


def verdict(ratio: float, goal: float) -> str:
    return "PASS" if ratio >= goal else "FAIL"


def bench_argos(workdir: Path, options) -> bool:
    """Our one-batch path against argostranslate's own paragraph-by-paragraph path, and the memory."""
    started = time.perf_counter()
    package = build_model(workdir)
    print(f"model: {package.model_id}, 6 layers, 8 heads, d_model 512, FFN 2048, vocabulary 8000, int8 "
          f"(built and installed in {time.perf_counter() - started:.1f} s)")

    import ctranslate2
    from argostranslate import package as argos_package
    from argostranslate import settings as argos_settings
    from argostranslate.translate import apply_packaged_translation

    from publisher.translate.argos import ArgosTranslator
    from publisher.translate.glossary import Glossary
    from publisher.store.sqlite import SqliteStore
    from publisher.store import TranslationMemory
    from publisher.translate.segment import segment_markdown
    from publisher.translate.workflow import translate_templates

    glossary = Glossary.load()
    article = make_article()
    words = len(article.body.split())
    print(load_line())
    translator = ArgosTranslator(package, beam_size=options.beam_size, max_tokens=options.max_tokens)
    translator._model()   # loaded once per process; the threads are chosen now, from the load before we run
    print(f"publisher: {translator.threads} intra thread(s), {translator.replicas} replica(s), batches of "
          f"{translator.max_batch_size} {translator.batch_type}")
    # argostranslate's own translator, made as argostranslate.translate makes it (its settings, its defaults)
    argos_model = ctranslate2.Translator(str(package.model_dir), device=argos_settings.device,
                                         inter_threads=argos_settings.inter_threads,
                                         intra_threads=argos_settings.intra_threads,
                                         compute_type=argos_settings.compute_type)
    print(f"argostranslate: inter_threads {argos_settings.inter_threads}, intra_threads "
          f"{argos_settings.intra_threads} (0: CTranslate2's default), batches of {argos_settings.batch_size} tokens")

    def template():
        return segment_markdown(article.body, "en", lambda text: glossary.find(text, "en", "ko"))

    paragraphs = paragraphs_of(template())
    sentences = sum(len(p) for p in paragraphs)
    print(f"article: {words} words, {len(paragraphs)} paragraphs, {sentences} sentences; beam size "
          f"{options.beam_size} (baseline {options.baseline_beam_size}), max_decoding_length {options.max_tokens}")

    argos_settings.beam_size = options.baseline_beam_size
    pkg = argos_package.Package(package.path)
    by_paragraph = {" ".join(p): p for p in paragraphs}
    sentencizer = GivenSentences(by_paragraph)
    bounded = BoundedTranslator(argos_model, options.max_tokens)

    def argos_path(model) -> None:
        for paragraph in by_paragraph:
            apply_packaged_translation(pkg, paragraph, model, sentencizer, num_hypotheses=1)

    def baseline() -> None:
        argos_path(bounded)

    def fresh_memory() -> TranslationMemory:
        return SqliteStore(Path(":memory:"), state_dir=workdir).translation_memory

    def ours(chosen: ArgosTranslator):
        def run() -> None:
            translate_templates([template()], chosen, fresh_memory())
        return run

    remembered = fresh_memory()
    translate_templates([template()], translator, remembered)

    def from_memory() -> None:
        _, counts = translate_templates([template()], translator, remembered)
        assert counts.sent_to_model == 0

    runs = {"baseline": baseline, "batched": ours(translator)}
    if options.variants:
        for name, settings in VARIANTS.items():
            if options.only not in name:
                continue
            keywords = {"beam_size": options.beam_size, "max_tokens": options.max_tokens, **settings}
            variant = ArgosTranslator(package, **keywords)  # type: ignore[arg-type]
            variant.translate_batch(["Warm up."])
            runs[name] = ours(variant)
        # Not a baseline for the goal (argostranslate's users get its defaults): it tells how much of the
        # gain is batching and how much the thread count.
        if options.only in BASELINE_1_THREAD:
            one_thread = BoundedTranslator(ctranslate2.Translator(str(package.model_dir), device="cpu",
                                                                  intra_threads=1, compute_type="auto"),
                                           options.max_tokens)
            runs[BASELINE_1_THREAD] = lambda: argos_path(one_thread)
    translator.translate_batch(["Warm up."])
    argos_model.translate_batch([["▁Warm", "▁up", "."]], max_decoding_length=4)
    best = interleaved_best(options.repeat, *runs.values(), report=round_report(list(runs)))
    timings = dict(zip(runs, best))
    baseline_s, batched_s = timings["baseline"], timings["batched"]
    (memory_s,) = interleaved_best(max(options.repeat, 5), from_memory)

    ratio = baseline_s / batched_s
    print(f"baseline (argostranslate, paragraph by paragraph): {baseline_s:8.3f} s   "
          f"{sentences / baseline_s:6.1f} sentences/s")
    print(f"batched  (publisher, one translate_batch call):     {batched_s:8.3f} s   "
          f"{sentences / batched_s:6.1f} sentences/s   "
          f"{ratio:6.1f}x faster than baseline (goal >= 3x: {verdict(ratio, 3)})")
    print(f"memory   (publisher, re-run from the memory):       {memory_s:8.3f} s   "
          f"{batched_s / memory_s:6.0f}x faster than batched (goal >= 100x: {verdict(batched_s / memory_s, 100)}), "
          f"{baseline_s / memory_s:.0f}x faster than baseline")
    for name in (name for name in VARIANTS if name in timings):
        print(f"  variant {name + ':':42s} {timings[name]:8.3f} s   {baseline_s / timings[name]:6.1f}x baseline")
    if BASELINE_1_THREAD in timings:
        print(f"  {BASELINE_1_THREAD}: {timings[BASELINE_1_THREAD]:8.3f} s; batched is "
              f"{timings[BASELINE_1_THREAD] / batched_s:.1f}x faster than it")
    print(f"after the run: {load_line()}")
    return ratio >= 3 and batched_s / memory_s >= 100


if __name__ == "__main__":
    main()
