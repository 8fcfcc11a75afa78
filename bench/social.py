"""Benchmark: social post formatting (X shortened, X thread, Mastodon) against plain template rendering.

Usage: python bench/social.py [--articles 500] [--repeat 3]

Synthetic stories in English and Korean, with summaries long enough that most X posts must be shortened or
threaded, are formatted for each platform. The baseline, measured in the same run on the same articles, is
rendering the same template once with no length rule (what any formatter must do at least). Prints the best of
``--repeat`` times, the ratio of each to the baseline (the price of measuring, shortening without cutting a
word and splitting into threads), and the time per post; then the weighted-length function alone against
Python's ``len`` on the same texts.
Goal: formatting a post stays far below the time of posting it (a network round trip, ~100 ms): < 5 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.article import Article  # noqa: E402
from publisher.formatters.social import (  # noqa: E402
    X_RULE,
    SocialFormatter,
    mastodon_rule,
    x_weighted_length,
)
from publisher.site import Site  # noqa: E402

EN_WORDS = ("public", "service", "governance", "digital", "institution", "capacity", "workshop", "forum", "data",
            "citizen", "trust", "innovation", "Incheon", "policy", "officials", "regional", "learning.")
KO_WORDS = ("공공", "서비스", "거버넌스", "디지털", "기관의", "역량을", "워크숍", "포럼에서", "데이터", "시민", "신뢰",
            "혁신", "인천", "정책", "공무원", "지역", "논의했습니다.")
EMOJI = ("\U0001F1F0\U0001F1F7", "\U0001F30F", "\U0001F468\u200D\U0001F4BB")


def synthetic_articles(count: int, seed: int = 6) -> list[Article]:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    articles = []
    for n in range(count):
        slug = f"story-{n:05d}"
        for lang, words in (("en", EN_WORDS), ("ko", KO_WORDS)):
            summary = " ".join(rng.choice(words) for _ in range(rng.randint(20, 90)))
            if n % 4 == 0:
                summary += " " + rng.choice(EMOJI)
            articles.append(Article(
                slug=slug, lang=lang, title=" ".join(rng.choice(words) for _ in range(8)).rstrip("."),
                date=start + timedelta(days=n), summary=summary,
                tags=[rng.choice(words).rstrip(".") + " " + rng.choice(words).rstrip(".") for _ in range(4)],
                url=f"https://news.example.org/{lang}/{slug}/",
            ))
    return articles


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=500, help="stories (each in English and Korean)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        site = Site(Path(folder))
        articles = synthetic_articles(args.articles)
        x_short = SocialFormatter(site.templates, "x", X_RULE, long_text="shorten")
        x_thread = SocialFormatter(site.templates, "x", X_RULE, long_text="thread")
        mastodon = SocialFormatter(site.templates, "mastodon", mastodon_rule())
        x_short.render_text(articles[0])  # compile the templates outside the timings

        baseline = best_of(args.repeat, lambda: [x_short.render_text(a) for a in articles])
        posts = len(articles)
        print(f"{posts} article versions ({args.articles} stories x 2 languages); best of {args.repeat}")
        print(f"baseline  render the X template, no length rule: {baseline:8.3f} s "
              f"({baseline / posts * 1000:.3f} ms per post)")
        for label, formatter in (("X shorten", x_short), ("X thread", x_thread), ("Mastodon", mastodon)):
            results: list[int] = []
            elapsed = best_of(args.repeat, lambda f=formatter: results.append(sum(len(f.posts(a)) for a in articles)))
            made = results[-1]
            print(f"{label:9} fit to the limit:                 {elapsed:8.3f} s  = {elapsed / baseline:5.1f} x "
                  f"baseline ({elapsed / posts * 1000:.3f} ms per article, {made} posts)")

        texts = [x_thread.render_text(a) for a in articles]
        plain = best_of(args.repeat, lambda: [len(t) for t in texts])
        weighted = best_of(args.repeat, lambda: [x_weighted_length(t) for t in texts])
        print(f"x_weighted_length on {len(texts)} texts: {weighted:.4f} s = {weighted / plain:.0f} x len() "
              f"({weighted / len(texts) * 1e6:.0f} µs per text)")
        site.close()


if __name__ == "__main__":
    main()
