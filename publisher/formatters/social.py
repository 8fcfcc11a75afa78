"""Social post text: per-platform templates, hashtags per language, weighted lengths, shortening and threads.

Every platform counts length its own way, so a post is measured with that platform's ``LengthRule``:

- X: twitter-text v3 weights. Code points in 0-4351, 8192-8205, 8208-8223 and 8242-8247 weigh 1, every other
  code point 2 (a Hangul syllable weighs 2, so 140 syllables fill a tweet), an emoji sequence weighs 2 and a
  URL 23, all after NFC normalization; 280 at most.
- Mastodon: user-perceived characters (grapheme clusters, as Mastodon 4 counts them), a URL 23; 500 or the
  instance's ``max_characters``.
- Bluesky: 300 graphemes, URLs at their written length.
- Threads: 500 characters (graphemes), an emoji counted as its UTF-8 bytes, as Meta's documentation says.
- Telegram: 4,096 characters, 1,024 in a photo's caption, counted in UTF-16 code units as the Bot API does.

A text that is too long is shortened, or split into a numbered thread; neither ever yields a post over the
limit. Shortening drops the hashtags first (from the last), then ends the summary at the last whole sentence
that fits (pysbd for English, kiwipiepy for Korean, or a small rule-based splitter without the ``translate``
extra); only when not even the first sentence fits is the summary cut at a word, with "…", and then the
title. A word, URL, hashtag or Hangul syllable is never cut.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import jinja2

    from publisher.article import Article

LongTextMode = Literal["shorten", "thread"]
LONG_TEXT_MODES: tuple[str, ...] = ("shorten", "thread")

ELLIPSIS = "…"
X_LIMIT = 280
MASTODON_DEFAULT_LIMIT = 500
BLUESKY_LIMIT = 300
THREADS_LIMIT = 500
TELEGRAM_MESSAGE_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
URL_WEIGHT = 23  # X's transformedURLLength; Mastodon counts every URL as 23 characters too

# twitter-text v3 (config/v3.json): weights are in hundredths; ranges of weight 100, everything else 200.
_X_LIGHT_RANGES: tuple[tuple[int, int], ...] = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

# URLs as twitter-text finds them. With "http(s)://", anything up to whitespace. Without, a domain ending in a
# generic top-level domain ("unpog.org"), or in a country code when a path follows ("korea.kr/news") or
# the name has two labels before it ("www.korea.kr", "foo.co.jp"), or in .co/.tv. Any TLD of three letters
# or more is taken as generic: that may count a file name such as "report.pdf" as a URL (23), which only
# makes the estimate longer, never too short.
_LABEL = r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\."
_PATH = r"/[^\s<>\"']*"
_URL_PATTERN = (
    r"(?:https?://[^\s<>\"']+)"
    r"|(?<![\w@.#/:-])(?:"
    rf"(?:{_LABEL})+(?:[a-z]{{3,63}}|co|tv)(?:{_PATH})?"
    rf"|(?:{_LABEL}){{2,}}[a-z]{{2}}(?:{_PATH})?"
    rf"|(?:{_LABEL})+[a-z]{{2}}{_PATH}"
    r")(?!\.?[a-z0-9_-])"
)
_TRAILING_PUNCTUATION = ".,;:!?'\")]}…"
_CUT_PUNCTUATION = ".,;:!?'\"…-–—([{ \n"  # dropped before the ellipsis of a shortened text


@lru_cache(maxsize=None)
def _regex(pattern: str, flags: int = 0) -> Any:
    import regex  # third-party `regex`: grapheme clusters (\X) and Unicode emoji properties

    return regex.compile(pattern, flags)


def find_urls(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the URLs in ``text``, trailing sentence punctuation left out."""
    spans = []
    for match in _regex(_URL_PATTERN, re.IGNORECASE).finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in _TRAILING_PUNCTUATION:
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _without_urls(text: str) -> tuple[str, int]:
    """``text`` with its URLs removed, and how many there were."""
    spans = find_urls(text)
    pieces, last = [], 0
    for start, end in spans:
        pieces.append(text[last:start])
        pieces.append(" ")
        last = end
    pieces.append(text[last:])
    return "".join(pieces), len(spans)


# Code points outside twitter-text's light ranges: each weighs 2 (Hangul, CJK, most symbols).
_X_HEAVY_PATTERN = "[^" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _X_LIGHT_RANGES) + "]"
# Where an emoji sequence may start: pictographs (with or without VS16), flags, keycaps (#, *, 0-9 + U+20E3).
_EMOJI_START_PATTERN = r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3"


def _x_code_point_weight(char: str) -> int:
    point = ord(char)
    for low, high in _X_LIGHT_RANGES:
        if low <= point <= high:
            return 1
    return 2


def x_weighted_length(text: str) -> int:
    """The length X counts (twitter-text v3): Hangul 2, Latin 1, an emoji 2, a URL 23."""
    text = unicodedata.normalize("NFC", text)
    plain, url_count = _without_urls(text)
    # Every code point weighs 1, plus 1 more for each heavy one; both counts run in C, not in a Python loop.
    total = url_count * (URL_WEIGHT - 1) + len(plain) + len(_regex(_X_HEAVY_PATTERN).findall(plain))
    if _regex(_EMOJI_START_PATTERN).search(plain):
        # An emoji sequence (ZWJ family, flag, skin tone, keycap) weighs 2 whatever its code points weigh.
        for cluster in _regex(r"\X").findall(plain):
            if _regex(_EMOJI_START_PATTERN).search(cluster):
                total += 2 - sum(_x_code_point_weight(char) for char in cluster)
    return total


def grapheme_length(text: str) -> int:
    """User-perceived characters: a Hangul syllable, "é" and a family emoji each count 1."""
    return len(_regex(r"\X").findall(unicodedata.normalize("NFC", text)))


def mastodon_length(text: str) -> int:
    """The length Mastodon counts: graphemes, with every http(s) URL as 23."""
    spans = [(s, e) for s, e in find_urls(text) if text[s:e].lower().startswith(("http://", "https://"))]
    total, last = 0, 0
    for start, end in spans:
        total += grapheme_length(text[last:start]) + URL_WEIGHT
        last = end
    return total + grapheme_length(text[last:])


def threads_length(text: str) -> int:
    """The length Threads counts: graphemes, except that an emoji weighs its UTF-8 bytes (a flag 8)."""
    text = unicodedata.normalize("NFC", text)
    total = grapheme_length(text)
    if _regex(_EMOJI_START_PATTERN).search(text):
        for cluster in _regex(r"\X").findall(text):
            if _regex(_EMOJI_START_PATTERN).search(cluster):
                total += len(cluster.encode("utf-8")) - 1
    return total


def telegram_length(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji outside the BMP weighs 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class LengthRule:
    """How one platform measures a post, and its maximum."""

    platform: str
    limit: int
    measure: Callable[[str], int]
    unit: str = "characters"

    def fits(self, text: str) -> bool:
        return self.measure(text) <= self.limit


X_RULE = LengthRule("x", X_LIMIT, x_weighted_length, "weighted characters")
BLUESKY_RULE = LengthRule("bluesky", BLUESKY_LIMIT, grapheme_length, "graphemes")
THREADS_RULE = LengthRule("threads", THREADS_LIMIT, threads_length, "characters")
TELEGRAM_RULE = LengthRule("telegram", TELEGRAM_MESSAGE_LIMIT, telegram_length, "UTF-16 code units")
TELEGRAM_CAPTION_RULE = LengthRule("telegram", TELEGRAM_CAPTION_LIMIT, telegram_length, "UTF-16 code units")


def mastodon_rule(limit: int = MASTODON_DEFAULT_LIMIT) -> LengthRule:
    """Mastodon's rule for an instance whose ``max_characters`` is ``limit``."""
    return LengthRule("mastodon", limit, mastodon_length, "characters")


# --- hashtags and plain text ------------------------------------------------------------------------------


def hashtag(tag: str) -> str | None:
    """``"public administration"`` -> ``"#publicadministration"``, ``"공공 행정"`` -> ``"#공공행정"``.

    Only letters, digits, marks and underscores survive (anything else would end the hashtag early);
    a tag of digits alone is dropped because no platform links it.
    """
    body = "".join(_regex(r"[\p{L}\p{M}\p{N}_]+").findall(unicodedata.normalize("NFC", tag)))
    if not body or body.isdigit():
        return None
    return "#" + body


def hashtags(tags: Sequence[str]) -> list[str]:
    """The article's tags as hashtags, in order, each once (case-insensitively)."""
    seen: set[str] = set()
    result = []
    for tag in tags:
        tagged = hashtag(tag)
        if tagged and tagged.casefold() not in seen:
            seen.add(tagged.casefold())
            result.append(tagged)
    return result


# C0 controls other than tab and newline, DEL, C1 controls, and the bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069): a platform shows them as boxes, cuts the post at a NUL, or lets them make
# a post (or its link) read in another order than it was written. Joiners and marks (U+200D, U+200E) stay:
# emoji sequences and right-to-left text need them.
_HIDDEN_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """``text`` without the control and bidi-override characters that must never reach a plain-text post."""
    return _HIDDEN_CONTROLS.sub("", text)


def plain_text(html_text: str) -> str:
    """Sanitized HTML (an article's ``summary_html``) as one line of plain text (``markup.html_to_text``)."""
    from publisher.markup import html_to_text

    return " ".join(strip_controls(html_to_text(html_text)).split())


# --- shortening and threads -------------------------------------------------------------------------------


def _words_and_spaces(text: str) -> list[str]:
    """Alternating runs of non-space and space; a URL or hashtag never holds whitespace, so stays whole."""
    return [piece for piece in re.split(r"(\s+)", text) if piece]


def shorten_to_fit(text: str, fits: Callable[[str], bool], ellipsis: str = ELLIPSIS) -> str:
    """The longest whole-word prefix of ``text`` (plus an ellipsis) for which ``fits`` holds, or ``""``.

    ``fits`` judges the candidate in place (usually the whole rendered post), so the ellipsis and whatever
    surrounds the text are counted.
    """
    if fits(text):
        return text
    pieces = _words_and_spaces(text.strip())
    word_ends = [index + 1 for index, piece in enumerate(pieces) if not piece.isspace()]

    def prefix(count: int) -> str:
        if count == 0:
            return ""
        kept = "".join(pieces[: word_ends[count - 1]])
        return kept.rstrip(_CUT_PUNCTUATION) + ellipsis

    # More words never make a post shorter, so the largest count that fits is found by bisection.
    low, high = 0, len(word_ends) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(prefix(middle)):
            low = middle
        else:
            high = middle - 1
    return prefix(low) if low > 0 and fits(prefix(low)) else ""


# --- sentences --------------------------------------------------------------------------------------------

# Without pysbd or kiwipiepy (the optional `translate` extra), a sentence ends at terminal punctuation, closing
# quotes or brackets after it, then whitespace or the end. In Korean a full stop counts only after a Hangul
# syllable (다. 요. 음.) or a closing quote, so dates written "2024. 6. 28." are not cut; in English not after an
# abbreviation or an initial, nor before a lowercase word ("approx. three").
_CLOSERS = "\"'\u201d\u2019)]}\u300d\u300f"
_EN_SENTENCE_END = re.compile(rf"[.!?\u2026\u3002\uff01\uff1f]+[{re.escape(_CLOSERS)}]*(?=\s|$)")
_KO_SENTENCE_END = re.compile(rf"(?:(?<=[\uac00-\ud7a3{re.escape(_CLOSERS)}])[.!?\u2026]+|[!?\u3002\uff01\uff1f]+)"
                              rf"[{re.escape(_CLOSERS)}]*(?=\s|$)")
_TERMINAL = re.compile("[.!?\u2026\u3002\uff01\uff1f]")
_SPLITTER_CONTEXT = 150  # characters a sentence splitter reads before the last sentence end it is asked for
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "mt", "sr", "jr", "no", "nos", "vs", "etc", "approx", "dept", "gov",
    "govt", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "e.g", "i.e", "cf", "al", "fig", "vol", "p", "pp"})
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # "J. Smith", "U.N. Secretary-General"


def _rule_sentence_ends(text: str, lang: str) -> list[int]:
    """Where each sentence of ``text`` ends, by punctuation rules alone (no library needed)."""
    ends = []
    for match in (_KO_SENTENCE_END if lang == "ko" else _EN_SENTENCE_END).finditer(text):
        if lang != "ko":
            if text[match.end():].lstrip()[:1].islower():  # '"Is it?" he asked.'
                continue
            before = text[: match.start()].split()
            word = before[-1].lstrip(_CLOSERS + "\"'(\u201c\u2018[").lower() if before else ""
            is_full_stop = match.group().rstrip(_CLOSERS) == "."
            if is_full_stop and (word in _ABBREVIATIONS or _INITIALS.fullmatch(word)):
                continue
        ends.append(match.end())
    return ends


def _library_sentence_ends(text: str, lang: str) -> list[int] | None:
    """Where each sentence ends by pysbd (English) or kiwipiepy (Korean), or ``None`` when not installed."""
    try:
        # Checked on every call, not once: importing a module already loaded is a dictionary lookup.
        if lang == "ko":
            import kiwipiepy  # noqa: F401
        else:
            import pysbd  # noqa: F401
    except ImportError:
        return None
    from publisher.translate.segment import sentence_spans

    return [end for _, end in sentence_spans(text, lang)]


def sentence_ends(text: str, lang: str) -> list[int]:
    """Offsets just past each sentence of ``text`` (its closing punctuation and quotes), in order."""
    ends = _library_sentence_ends(text, lang)
    if ends is None:
        return _rule_sentence_ends(text, lang)
    if lang == "ko":
        # kiwipiepy misses an end before an opening quote ('모색했습니다. “세계적 …” 주제로'), and a Hangul
        # syllable, a full stop and a space end a Korean sentence whatever follows: the rules add those.
        return sorted(set(ends) | set(_rule_sentence_ends(text, lang)))
    return ends


def shorten_to_sentences(text: str, fits: Callable[[str], bool], lang: str, ellipsis: str = ELLIPSIS) -> str:
    """The longest run of ``text``'s whole sentences for which ``fits`` holds; only when not even the first
    sentence fits, its longest whole-word prefix with an ellipsis (as ``shorten_to_fit`` cuts), or ``""``.

    ``fits`` judges the candidate in place (usually the whole rendered post) and must hold for every shorter
    run of words when it holds for a longer one, as every platform's length does."""
    text = text.strip()
    if fits(text):
        return text
    word_ends, position = [], 0
    for piece in _words_and_spaces(text):
        position += len(piece)
        if not piece.isspace():
            word_ends.append(position)
    # The longest run of whole words that fits, found first by bisection (more words never make a post
    # shorter): no sentence that ends beyond it can fit, so the splitter reads only up to there. That matters:
    # pysbd's time grows faster than the text (about 2 ms for 400 characters, 14 ms for 900).
    low, high = 0, len(word_ends) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[: word_ends[middle - 1]]):
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return shorten_to_fit(text, fits, ellipsis)
    longest = word_ends[low - 1]
    # Two words past it, so the splitter can tell an abbreviation ("Mr. Lee") from a sentence's end.
    window_end = word_ends[min(low + 2, len(word_ends) - 1)]
    # No terminal punctuation in reach, no sentence to end with: spare the splitter (kiwipiepy analyses the
    # morphemes of all it reads, about 2 ms for 80 characters).
    if _TERMINAL.search(text, 0, longest):
        # Only the last sentence that fits is wanted, so the splitter reads as little as it can. In Korean the
        # rules' ends count anyway (``sentence_ends`` adds them), so kiwipiepy reads only what follows the last
        # of them. In English pysbd first reads from a likely end (by the rules) some way before the cut, and
        # from the start only if it finds none after there.
        by_rules = [end for end in _rule_sentence_ends(text[:window_end], lang) if end <= longest]
        if lang == "ko" and by_rules:
            starts, known = [by_rules[-1]], [by_rules[-1]]
        else:
            early = [end for end in by_rules if end <= longest - _SPLITTER_CONTEXT]
            starts, known = list(dict.fromkeys([early[-1] if early else 0, 0])), []
        for start in starts:
            ends = [*known, *(start + end for end in sentence_ends(text[start:window_end], lang))]
            # Only ends at a space: a splitter that ends a sentence inside a word ('“…”라고') does not end it.
            for end in sorted((end for end in ends if 0 < end <= longest and text[end].isspace()), reverse=True):
                if fits(text[:end].rstrip()):
                    return text[:end].rstrip()
    # Not even the first sentence fits: the words that fit, less the one or two the ellipsis needs room for
    # (a step back from the longest run, rather than another bisection).
    for count in range(low, 0, -1):
        cut = text[: word_ends[count - 1]].rstrip(_CUT_PUNCTUATION) + ellipsis
        if fits(cut):
            return cut
    return ""


def _split_long_word(word: str, fits: Callable[[str], bool]) -> list[str]:
    """A word longer than a whole post, in pieces at grapheme boundaries (a Hangul syllable stays whole)."""
    pieces, current = [], ""
    for cluster in _regex(r"\X").findall(word):
        if current and not fits(current + cluster):
            pieces.append(current)
            current = ""
        current += cluster
    if current:
        pieces.append(current)
    return pieces


def _sentence_break(pieces: list[str], measure: Callable[[str], int], room: int) -> int | None:
    """Where to end a thread part early so it ends with a sentence or paragraph, if that keeps it half full."""
    for index in range(len(pieces) - 1, 0, -1):
        piece = pieces[index]
        ends_sentence = not piece.isspace() and piece[-1] in ".!?。！？"
        ends_paragraph = piece.isspace() and "\n" in piece
        if (ends_sentence or ends_paragraph) and measure("".join(pieces[: index + 1]).rstrip()) * 2 >= room:
            return index + 1
    return None


def _fill_parts(text: str, measure: Callable[[str], int], room: int) -> list[str]:
    """``text`` in parts of at most ``room``, filled word by word, ending at a sentence where that is cheap."""

    def fits(candidate: str) -> bool:
        return measure(candidate) <= room

    parts: list[str] = []
    current: list[str] = []
    for piece in _words_and_spaces(text):
        if piece.isspace():
            if current:
                current.append(piece)
            continue
        if fits("".join([*current, piece]).rstrip()):
            current.append(piece)
            continue
        if current:
            cut = _sentence_break(current, measure, room)
            tail = current[cut:] if cut is not None else []
            while tail and tail[0].isspace():
                tail.pop(0)
            if cut is not None and fits("".join([*tail, piece]).rstrip()):
                parts.append("".join(current[:cut]).rstrip())
                current = [*tail, piece]
                continue
            parts.append("".join(current).rstrip())
            current = []
        if fits(piece):
            current = [piece]
        else:
            *whole, last = _split_long_word(piece, fits)
            parts.extend(whole)
            current = [last]
    if current:
        parts.append("".join(current).rstrip())
    return [part for part in parts if part]


def split_into_thread(text: str, rule: LengthRule, numbering: str = "{part}/{parts}") -> list[str]:
    """``text`` as one post if it fits, else numbered parts ("… 1/3"), each within ``rule``, cut at whitespace."""
    text = text.strip()
    if rule.fits(text):
        return [text]
    for widest in (9, 99, 999):
        room = rule.limit - rule.measure(" " + numbering.format(part=widest, parts=widest))
        parts = _fill_parts(text, rule.measure, room)
        if len(parts) <= widest:
            return [f"{part} {numbering.format(part=index, parts=len(parts))}"
                    for index, part in enumerate(parts, start=1)]
    raise ValueError("text too long for a thread of 999 posts")


# --- posts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostText:
    """One post, or one part of a thread, with its measured length."""

    text: str
    length: int
    limit: int
    part: int = 1
    parts: int = 1


def _tidy(text: str) -> str:
    # the whole post, so the title, the template's own text and every value it shows are cleaned alike
    lines = [line.rstrip() for line in unicodedata.normalize("NFC", strip_controls(text)).strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class SocialFormatter:
    """Renders ``templates/social/<platform>.txt.j2`` for an article and fits it to a ``LengthRule``.

    The template gets ``article``, ``lang``, ``title``, ``summary`` (plain text), ``url`` (the article in this
    post's language), ``hashtags`` (a list such as ``["#UNPOG", "#공공행정"]``) and ``_`` for UI strings.
    """

    def __init__(self, templates: jinja2.Environment, platform: str, rule: LengthRule,
                 long_text: LongTextMode = "shorten", template_name: str | None = None) -> None:
        if long_text not in LONG_TEXT_MODES:
            raise ValueError(f"long_text must be one of {LONG_TEXT_MODES}, got {long_text!r}")
        self.templates = templates
        self.platform = platform
        self.rule = rule
        self.long_text = long_text
        self.template_name = template_name or f"social/{platform}.txt.j2"

    def render_text(self, article: Article, *, title: str | None = None, summary: str | None = None,
                    tags: Sequence[str] | None = None, **extra: Any) -> str:
        """The template's text for ``article``, untouched by any length rule."""
        template = self.templates.get_template(self.template_name)
        return _tidy(template.render(
            article=article,
            lang=article.lang,
            title=article.title if title is None else title,
            summary=plain_text(article.summary_html) if summary is None else summary,
            url=article.url,
            hashtags=hashtags(article.tags) if tags is None else list(tags),
            **extra,
        ))

    def posts(self, article: Article, **extra: Any) -> list[PostText]:
        """The posts for ``article``: one that fits, or (X with ``thread``) a numbered thread."""
        full = self.render_text(article, **extra)
        if self.rule.fits(full):
            return [self._post(full)]
        if self.long_text == "thread":
            # A single post with fewer hashtags reads better than a last thread part made of hashtags.
            tags = hashtags(article.tags)
            while tags:
                tags = tags[:-1]
                fewer = self.render_text(article, tags=tags, **extra)
                if self.rule.fits(fewer):
                    return [self._post(fewer)]
            parts = split_into_thread(full, self.rule)
            return [self._post(text, index, len(parts)) for index, text in enumerate(parts, start=1)]
        return [self._post(self.shortened_text(article, **extra))]

    def shortened_text(self, article: Article, **extra: Any) -> str:
        """The template's text made to fit: hashtags dropped from the last, then the summary ended at the last
        whole sentence that fits (cut at a word, with "…", only if not even the first fits), then the title
        shortened."""
        title = article.title
        summary = plain_text(article.summary_html)
        tags = hashtags(article.tags)

        def render(t: str = title, s: str = summary, h: Sequence[str] = tags) -> str:
            return self.render_text(article, title=t, summary=s, tags=h, **extra)

        # The hashtags go before any of the summary: a post reads as its sentences, not as its tags.
        if tags and not self.rule.fits(render(h=[])):
            tags = []  # the summary must be cut anyway: no need to measure the long post once per hashtag
        while tags and not self.rule.fits(render(h=tags)):
            tags = tags[:-1]
        if self.rule.fits(render(h=tags)):
            return render(h=tags)
        summary = shorten_to_sentences(summary, lambda s: self.rule.fits(render(s=s, h=tags)), article.lang)
        if self.rule.fits(render(s=summary, h=tags)):
            return render(s=summary, h=tags)
        title = shorten_to_fit(title, lambda t: self.rule.fits(render(t=t, s=summary, h=tags)))
        text = render(t=title, s=summary, h=tags)
        if self.rule.fits(text):
            return text
        if self.rule.fits(article.url):
            return article.url
        raise ValueError(f"{self.platform}: even the article's URL is longer than {self.rule.limit}")

    def _post(self, text: str, part: int = 1, parts: int = 1) -> PostText:
        return PostText(text=text, length=self.rule.measure(text), limit=self.rule.limit, part=part, parts=parts)
