"""Benchmark: social post formatting (X, Mastodon, Bluesky, Threads, Telegram) against plain template rendering.

Usage: python bench/social.py [--articles 500] [--repeat 3]

Synthetic stories in English and Korean, with summaries long enough that most X posts must be shortened or
threaded, are formatted for each platform. The baseline, measured in the same run on the same articles, is
rendering the X template once with no length rule (what any formatter must do at least). Prints the best of
``--repeat`` times, the ratio of each to the baseline (the price of measuring, shortening at whole sentences
and splitting into threads), the time per post and, for shortened posts, how many end in "…" (cut inside a
sentence). X shortening is measured three ways: at sentences found by pysbd/kiwipiepy, at sentences found by
the rule-based splitter used without the `translate` extra, and at words only (the shortening before issue
15, kept here as a subclass for comparison). Then the weighted-length function alone against Python's
``len`` on the same texts.
Goal: formatting a post stays far below the time of posting it (a network round trip, ~100 ms): < 5 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

# The repository instead of this folder: its email.py would hide the standard library's email package, which
# kiwipiepy needs (through importlib.metadata), so Korean would be measured with the fallback splitter.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from publisher.article import Article  # noqa: E402
from publisher.formatters.social import (  # noqa: E402
    BLUESKY_RULE,
    TELEGRAM_RULE,
    THREADS_RULE,
    X_RULE,
    SocialFormatter,
    hashtags,
    mastodon_rule,
    plain_text,
    sentence_ends,
    shorten_to_fit,
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


class WordCutFormatter(SocialFormatter):
    """The shortening before issue 15: the summary cut at a word (with "…") before any hashtag was dropped."""

    def shortened_text(self, article: Article, **extra: object) -> str:
        title, summary, tags = article.title, plain_text(article.summary_html), hashtags(article.tags)

        def render(t: str = title, s: str = summary, h: Sequence[str] = tags) -> str:
            return self.render_text(article, title=t, summary=s, tags=h, **extra)

        summary = shorten_to_fit(summary, lambda s: self.rule.fits(render(s=s)))
        if self.rule.fits(render(s=summary)):
            return render(s=summary)
        while tags and not self.rule.fits(render(s=summary, h=tags)):
            tags = tags[:-1]
        if self.rule.fits(render(s=summary, h=tags)):
            return render(s=summary, h=tags)
        title = shorten_to_fit(title, lambda t: self.rule.fits(render(t=t, s=summary, h=tags)))
        return render(t=title, s=summary, h=tags)


@contextlib.contextmanager
def without_sentence_libraries() -> Iterator[None]:
    """As without the `translate` extra: pysbd and kiwipiepy cannot be imported, so the rules split sentences."""
    saved = {name: sys.modules.get(name) for name in ("pysbd", "kiwipiepy")}
    sys.modules.update({name: None for name in saved})  # type: ignore[misc]
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


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
        formatters: list[tuple[str, SocialFormatter, bool]] = [  # label, formatter, without pysbd/kiwipiepy
            ("X shorten", x_short, False),
            ("X shorten, rule-based sentences", x_short, True),
            ("X shorten, word cut (before)", WordCutFormatter(site.templates, "x", X_RULE), False),
            ("X thread", x_thread, False),
            ("Mastodon", SocialFormatter(site.templates, "mastodon", mastodon_rule()), False),
            ("Bluesky", SocialFormatter(site.templates, "bluesky", BLUESKY_RULE), False),
            ("Threads (reply chain)", SocialFormatter(site.templates, "threads", THREADS_RULE, long_text="thread"),
             False),
            ("Telegram (message)", SocialFormatter(site.templates, "telegram", TELEGRAM_RULE, long_text="thread"),
             False),
        ]
        # compile the templates and load the sentence splitters (kiwipiepy's model: seconds) outside the timings
        for _, formatter, _ in formatters:
            formatter.render_text(articles[0])
        sentence_ends("One. Two.", "en"), sentence_ends("하나다. 둘이다.", "ko")

        baseline = best_of(args.repeat, lambda: [x_short.render_text(a) for a in articles])
        posts = len(articles)
        print(f"{posts} article versions ({args.articles} stories x 2 languages); best of {args.repeat}")
        print(f"{'baseline: the X template, no length rule':40} {baseline:8.3f} s "
              f"({baseline / posts * 1000:.3f} ms per article)")
        for label, formatter, rules_only in formatters:
            results: list[list[str]] = []

            def work(f: SocialFormatter = formatter) -> None:
                results.append([post.text for a in articles for post in f.posts(a)])

            with without_sentence_libraries() if rules_only else contextlib.nullcontext():
                elapsed = best_of(args.repeat, work)
            made = results[-1]
            cut = sum("…" in text for text in made)  # the synthetic summaries have none of their own
            cut_note = f", {cut} with a \"…\"" if formatter.long_text == "shorten" else ""
            print(f"{label:40} {elapsed:8.3f} s = {elapsed / baseline:5.1f} x baseline "
                  f"({elapsed / posts * 1000:.3f} ms per article, {len(made)} posts{cut_note})")

        texts = [x_thread.render_text(a) for a in articles]
        plain = best_of(args.repeat, lambda: [len(t) for t in texts])
        weighted = best_of(args.repeat, lambda: [x_weighted_length(t) for t in texts])
        print(f"x_weighted_length on {len(texts)} texts: {weighted:.4f} s = {weighted / plain:.0f} x len() "
              f"({weighted / len(texts) * 1e6:.0f} µs per text)")
        site.close()


if __name__ == "__main__":
    main()
