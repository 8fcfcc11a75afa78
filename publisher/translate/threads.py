"""How CTranslate2 runs on this machine: how many threads one translation uses, and how sentences are batched.

Measured with ``bench/translate.py --variants`` on the 2-core machine the project is built on, under a load
average of 4 to 10 from other work (the figures are in README.md, "Translation speed"):

- Threads: on a loaded 2-core machine a second OpenMP thread cost our call 15-25% more CPU (the threads meet
  at a barrier after every layer of every decoding step and wait there for one that is descheduled) and was
  slower in 6 of 7 rounds; CTranslate2's default of 4 threads (``intra_threads=0``, what argostranslate uses)
  outnumbers the cores. So: one thread per core that is actually free, one on a busy machine.
- Batches: one call per article still sorts its sentences by length (CTranslate2 does, given
  ``max_batch_size``) and decodes them in batches capped in source tokens. A batch is as long as its longest
  sentence, so one batch of every sentence pads a short sentence to the longest; token batches took 5-17%
  less CPU, and bound memory for a long article.
- Beam: 2, CTranslate2's own default, where argostranslate searches with 4. Each decoding step carries
  ``beam_size`` hypotheses per sentence, so a beam of 2 does about half the work: 2.6-2.9 s of CPU for the
  article against 4.8-5.0 s at beam 4 (ctranslate2 4.8.5, quiet machine). Under a load of 4-7 our call stayed
  3.8-6.6x faster than argostranslate's paragraph path in every round (three model shapes), where at beam 4 it fell
  to 2.5-3.2x (the baseline's 4 threads get more of a busy machine's turns than our one). What it costs in quality
  depends on the model and the text: ``publisher models evaluate --beam-size 2 --beam-size 4`` scores both on an
  office's own sentences.
"""

from __future__ import annotations

import functools
import math
import os

#: CTranslate2's ``max_batch_size`` in source tokens (``batch_type="tokens"``) for one article's call
MAX_BATCH_TOKENS = 2048
#: Hypotheses a beam search keeps per sentence (``PUBLISHER_TRANSLATION_BEAM_SIZE``'s default; 1 is greedy)
DEFAULT_BEAM_SIZE = 2
#: More threads than this gains little for a model of Argos size (CTranslate2's own default is at most 4)
MAX_THREADS = 4


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or taskset limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # not on Linux
        return os.cpu_count() or 1


def load_average() -> float:
    """The last minute's load average: the runnable processes competing for those cores."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):   # not available on this platform
        return 0.0


def choose_threads(cores: int, load: float) -> int:
    """Threads for one translation: the cores nobody else keeps busy, at least 1, at most MAX_THREADS.

    ``load`` is read before the translation starts, so it counts the other processes only; it is rounded
    (background noise of a few tenths leaves a core free). With 2 cores: an idle machine (load below 0.5) gets
    2 threads, a machine with one busy process or more gets 1.
    """
    idle = math.floor(cores - max(load, 0.0) + 0.5)
    return max(1, min(idle, cores, MAX_THREADS))


@functools.lru_cache(maxsize=1)
def auto_threads() -> int:
    """The choice for this machine when the process first loads a model, kept for the process's life.

    Kept because CTranslate2 fixes the threads when it loads a model: choosing afresh for each translator
    (a worker translates job after job) would load the model again whenever the load crossed a threshold.
    """
    return choose_threads(usable_cores(), load_average())


def resolve_threads(setting: int) -> int:
    """PUBLISHER_TRANSLATION_THREADS's number, or for ``auto`` (0) the process's choice (``auto_threads``)."""
    return setting if setting > 0 else auto_threads()


class CT2Options:
    """How a CTranslate2 backend (Argos's packages, the Marian and NLLB folders) runs its model, besides the
    model itself: the beam search, the threads it is loaded with, and how its sentences are batched."""

    def __init__(self, *, beam_size: int = DEFAULT_BEAM_SIZE, max_tokens: int = 256, threads: int | None = None,
                 replicas: int = 1, max_batch_size: int = MAX_BATCH_TOKENS, batch_type: str = "tokens") -> None:
        self.beam_size = beam_size
        self.max_tokens = max_tokens
        # None: chosen from the cores and the load when the model is first used (``resolve_threads``);
        # 0: CTranslate2's own default (the benchmark compares with it)
        self.threads = threads
        self.replicas = replicas
        self.max_batch_size = max_batch_size
        self.batch_type = batch_type

    def load_threads(self) -> int:
        """The intra threads to load the model with, chosen on first use and then kept (a translator keeps
        one loaded model)."""
        if self.threads is None:
            self.threads = resolve_threads(0)
        return self.threads
