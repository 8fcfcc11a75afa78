"""Cut Markdown into sentences to translate while every piece of markup, code, URL and glossary term stays in place."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

# A text run with no letter in any script (only digits, punctuation, symbols) is copied, not translated.
_HAS_LETTER = re.compile(r"[^\W\d_]")
NUMBER = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*(?!\d)")
_URL_OR_EMAIL = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]]*[^\s<>()\[\].,;:!?'\"]|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Characters that would turn translated prose back into markup; a backslash makes them literal in CommonMark.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~]|&(?=#?\w+;))")
_BLOCK_START_MARKUP = re.compile(r"^(?:(?P<mark>#{1,6}|[-+=])(?=\s|$)|(?P<number>\d+)(?P<dot>[.)])(?=\s|$))")


def escape_markdown(text: str, *, at_block_start: bool = False) -> str:
    """Make plain text safe to place inside Markdown: it renders as exactly these characters."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    if at_block_start:
        escaped = _BLOCK_START_MARKUP.sub(
            lambda m: "\\" + m["mark"] if m["mark"] else m["number"] + "\\" + m["dot"], escaped, count=1
        )
    return escaped


@dataclass(frozen=True)
class Protected:
    """A span the model must not translate: it is replaced by a placeholder and put back afterwards."""

    source: str  # as it appears in the source text
    target: str  # what the translation shows in its place (differs from source only for glossary terms)
    kind: str  # "code", "html", "url", "term"
    markdown: bool = False  # target is raw Markdown (code span, inline HTML) and must not be escaped


@dataclass
class Segment:
    """One sentence (or a sentence fragment between two pieces of markup): the unit the model translates."""

    pieces: list[str | Protected]
    markdown: bool = True  # output goes into Markdown and needs escaping
    at_block_start: bool = False

    @property
    def text(self) -> str:
        """The sentence as the reader sees it in the source."""
        return "".join(p if isinstance(p, str) else p.source for p in self.pieces)

    @property
    def protected(self) -> list[Protected]:
        return [p for p in self.pieces if isinstance(p, Protected)]


@dataclass(frozen=True)
class Markup:
    """Inline markup around translated text: "**", "[", "](https://...)", "![" ... kept as written."""

    literal: str
    opens: bool


_TRAILING_PUNCTUATION = ".!?。…:;, "


@dataclass
class MarkedSentence:
    """A sentence with inline markup (emphasis, a link) inside it.

    The model translates the whole sentence without its markup, which reads far better than separate
    fragments; each marked fragment is translated on its own too, and the markup is put back around the
    place where that translation occurs in the sentence's. When a fragment cannot be found there, the
    sentence is rendered from its fragments instead (``structure``), so the markup is never lost.
    """

    whole: Segment
    structure: list[str | Segment]  # the fallback: markup literals and fragment segments in source order
    marked: list[tuple[str, str | Segment, str]] | None  # (opening markup, inner text, closing markup)

    @property
    def segments(self) -> list[Segment]:
        inner = [part for _, part, _ in self.marked or [] if isinstance(part, Segment)]
        return [self.whole, *inner, *(p for p in self.structure if isinstance(p, Segment))]

    def render(self, translation: Callable[[Segment], str], used: set[int]) -> str:
        if self.marked is not None:
            projected = self._project(translation)
            if projected is not None:
                used.add(id(self.whole))
                return projected
        used.update(id(p) for p in self.structure if isinstance(p, Segment))
        return "".join(p if isinstance(p, str) else translation(p) for p in self.structure)

    def _project(self, translation: Callable[[Segment], str]) -> str | None:
        full = translation(self.whole)
        folded = full.casefold()
        pieces, cursor = [], 0
        for opening, inner, closing in self.marked or []:
            wanted = inner if isinstance(inner, str) else translation(inner).rstrip(_TRAILING_PUNCTUATION)
            wanted = wanted.strip()
            start = folded.find(wanted.casefold(), cursor) if wanted else -1
            if start < 0:
                return None
            end = start + len(wanted)
            pieces += [full[cursor:start], opening, full[start:end], closing]
            cursor = end
        return "".join(pieces) + full[cursor:]


@dataclass
class TextTemplate:
    """A text cut into literal parts (kept) and segments (translated), rendered back in the same order."""

    parts: list[str | Segment | MarkedSentence] = field(default_factory=list)

    @property
    def segments(self) -> list[Segment]:
        """Every segment the model may be asked for (a marked sentence has several)."""
        found: list[Segment] = []
        for part in self.parts:
            if isinstance(part, Segment):
                found.append(part)
            elif isinstance(part, MarkedSentence):
                found.extend(part.segments)
        return found

    def render(self, translation: Callable[[Segment], str], used: set[int] | None = None) -> str:
        """Join literals and translations (already escaped by ``translation``); ``used`` collects the ids of
        the segments whose translation ended up in the text."""
        used = used if used is not None else set()
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, MarkedSentence):
                out.append(part.render(translation, used))
            else:
                used.add(id(part))
                out.append(translation(part))
        return "".join(out)


# ---------------------------------------------------------------- sentence splitting


class _SentenceSpan(Protocol):
    """What pysbd's TextSpan and kiwipiepy's Sentence share: the sentence's character offsets in the text."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


class _EnglishSegmenter(Protocol):
    """The part of pysbd's Segmenter used here (pysbd ships no type hints)."""

    def segment(self, text: str) -> Iterable[_SentenceSpan]: ...


class _KoreanSplitter(Protocol):
    """The part of kiwipiepy's Kiwi used here (kiwipiepy ships no type hints)."""

    def split_into_sents(self, text: str) -> Iterable[_SentenceSpan]: ...


@functools.cache
def _english_segmenter() -> _EnglishSegmenter:
    import pysbd

    segmenter: _EnglishSegmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return segmenter


@functools.cache
def _kiwi() -> _KoreanSplitter:
    from kiwipiepy import Kiwi

    kiwi: _KoreanSplitter = Kiwi()
    return kiwi


def sentence_spans(text: str, lang: str) -> list[tuple[int, int]]:
    """Offsets of each sentence in text, split offline: kiwipiepy for Korean, pysbd's rules for English."""
    if not text.strip():
        return []
    if lang == "ko":
        spans = [(s.start, s.end) for s in _kiwi().split_into_sents(text)]
    else:
        spans = [(s.start, s.end) for s in _english_segmenter().segment(text)]
    # Trim whitespace into the gaps so that spacing between sentences is copied, not translated.
    trimmed = []
    for start, end in spans:
        chunk = text[start:end]
        start += len(chunk) - len(chunk.lstrip())
        end -= len(chunk) - len(chunk.rstrip())
        if end > start:
            trimmed.append((start, end))
    return trimmed


# ---------------------------------------------------------------- protecting spans inside text

TermMatcher = Callable[[str], list[tuple[int, int, str]]]  # text -> [(start, end, target term)]


def _protect_text(text: str, match_terms: TermMatcher | None) -> list[str | Protected]:
    """Replace URLs, e-mail addresses and glossary terms in plain text by Protected spans."""
    found: list[tuple[int, int, Protected]] = []
    for m in _URL_OR_EMAIL.finditer(text):
        # written back raw: escaping a URL's underscores would change the Markdown source the author wrote
        found.append((m.start(), m.end(), Protected(m.group(), m.group(), "url", markdown=True)))
    taken = [(s, e) for s, e, _ in found]
    for start, end, target in match_terms(text) if match_terms else []:
        if not any(s < end and start < e for s, e in taken):
            found.append((start, end, Protected(text[start:end], target, "term")))
            taken.append((start, end))
    found.sort(key=lambda item: item[0])
    pieces: list[str | Protected] = []
    position = 0
    for start, end, protected in found:
        if start > position:
            pieces.append(text[position:start])
        pieces.append(protected)
        position = end
    if position < len(text):
        pieces.append(text[position:])
    return pieces


def _segments_of_run(
    run: Sequence[str | Protected],
    lang: str,
    match_terms: TermMatcher | None,
    *,
    markdown: bool,
    at_block_start: bool,
) -> list[str | Segment]:
    """Split one run of inline text into sentences; whitespace between them and letterless runs stay literal."""
    pieces: list[str | Protected] = []
    for piece in run:
        pieces.extend(_protect_text(piece, match_terms) if isinstance(piece, str) else [piece])
    # Stand-in characters from the Unicode private use area let the sentence splitter see protected spans
    # as words without being able to split inside them.
    stand_ins = {chr(0xE000 + i): p for i, p in enumerate(pieces) if isinstance(p, Protected)}
    flat = "".join(
        p if isinstance(p, str) else chr(0xE000 + i) for i, p in enumerate(pieces)
    )

    def unflatten(chunk: str) -> list[str | Protected]:
        out: list[str | Protected] = []
        for part in re.split(r"([\ue000-\uf8ff])", chunk):
            if part in stand_ins:
                out.append(stand_ins[part])
            elif part:
                out.append(part)
        return out

    def literal(chunk: str, first: bool) -> str:
        parts = unflatten(chunk)
        rendered: list[str] = []
        for part in parts:
            if isinstance(part, str):
                rendered.append(escape_markdown(part, at_block_start=first and not rendered) if markdown else part)
            else:
                rendered.append(part.target if (part.markdown or not markdown) else escape_markdown(part.target))
        return "".join(rendered)

    result: list[str | Segment] = []
    position = 0
    for start, end in sentence_spans(flat, lang):
        if start > position:
            result.append(literal(flat[position:start], at_block_start and position == 0))
        sentence = flat[start:end]
        plain = re.sub(r"[\ue000-\uf8ff]", "", sentence)
        if _HAS_LETTER.search(plain):
            result.append(
                Segment(unflatten(sentence), markdown=markdown, at_block_start=at_block_start and start == 0)
            )
        else:
            result.append(literal(sentence, at_block_start and start == 0))
        position = end
    if position < len(flat):
        result.append(literal(flat[position:], at_block_start and position == 0))
    return result


def _fragments(
    pieces: Sequence[str | Protected | Markup], lang: str, at_block_start: bool
) -> list[str | Segment | Markup]:
    """Fragment by fragment: the marks, and between them runs that are each split into sentences."""
    parts: list[str | Segment | Markup] = []
    run: list[str | Protected] = []

    def flush() -> None:
        if run:
            parts.extend(_segments_of_run(run, lang, None, markdown=True, at_block_start=at_block_start and not parts))
            run.clear()

    for piece in pieces:
        if isinstance(piece, Markup):
            flush()
            parts.append(piece)
        else:
            run.append(piece)
    flush()
    return parts


def _as_literals(parts: list[str | Segment | Markup]) -> list[str | Segment]:
    return [p.literal if isinstance(p, Markup) else p for p in parts]


def _marked_sentence(pieces: list[str | Protected | Markup], lang: str, at_block_start: bool) -> MarkedSentence:
    whole = Segment([p for p in pieces if not isinstance(p, Markup)], markdown=True, at_block_start=at_block_start)
    fragments = _fragments(pieces, lang, at_block_start)
    return MarkedSentence(whole, _as_literals(fragments), _projection(fragments))


def _projection(fragments: list[str | Segment | Markup]) -> list[tuple[str, str | Segment, str]] | None:
    """Projection handles marks that hold one fragment each and do not nest ("**a** and [b](u)");
    for anything else (None) the sentence is rendered fragment by fragment."""
    marked: list[tuple[str, str | Segment, str]] = []
    index = 0
    while index < len(fragments):
        part = fragments[index]
        if isinstance(part, Markup):
            inner = fragments[index + 1] if index + 1 < len(fragments) else None
            closing = fragments[index + 2] if index + 2 < len(fragments) else None
            if (part.opens and isinstance(closing, Markup) and not closing.opens
                    and isinstance(inner, (str, Segment))):
                marked.append((part.literal, inner, closing.literal))
                index += 3
                continue
            return None
        index += 1
    return marked


def _segments_of_inline(
    run: Sequence[str | Protected | Markup], lang: str, match_terms: TermMatcher | None, *, at_block_start: bool
) -> list[str | Segment | MarkedSentence]:
    """Split inline content into sentences; a sentence with markup inside becomes a MarkedSentence."""
    unmarked = [p for p in run if not isinstance(p, Markup)]
    if len(unmarked) == len(run):
        return list(_segments_of_run(unmarked, lang, match_terms, markdown=True, at_block_start=at_block_start))
    pieces: list[str | Protected | Markup] = []
    for piece in run:
        pieces.extend(_protect_text(piece, match_terms) if isinstance(piece, str) else [piece])
    stand_ins = {chr(0xE000 + i): p for i, p in enumerate(pieces) if not isinstance(p, str)}
    flat = "".join(p if isinstance(p, str) else chr(0xE000 + i) for i, p in enumerate(pieces))

    def unflatten(chunk: str) -> list[str | Protected | Markup]:
        return [stand_ins.get(part, part) for part in re.split(r"([\ue000-\uf8ff])", chunk) if part]

    spans = sentence_spans(flat, lang)
    sentences = [unflatten(flat[start:end]) for start, end in spans]
    gaps = [flat[end:start] for (_, end), (start, _) in zip([(0, 0), *spans], [*spans, (len(flat), 0)])]
    balanced = all(_balanced(sentence) for sentence in sentences)
    if not balanced or any(not gap.isspace() and gap for gap in gaps):
        # A mark that spans a sentence boundary: translate fragment by fragment.
        return list(_as_literals(_fragments(pieces, lang, at_block_start)))
    parts: list[str | Segment | MarkedSentence] = []
    for gap, sentence, (start, _) in zip(gaps, sentences, spans):
        if gap:
            parts.append(gap)
        first = at_block_start and start == 0
        plain = "".join(p for p in sentence if isinstance(p, str))
        unmarked_sentence = [p for p in sentence if not isinstance(p, Markup)]
        if len(unmarked_sentence) == len(sentence):
            parts.extend(_segments_of_run(unmarked_sentence, lang, None, markdown=True, at_block_start=first))
        elif not _HAS_LETTER.search(plain):
            parts.extend(_as_literals(_fragments(sentence, lang, first)))  # "**2024**": nothing to translate
        else:
            parts.append(_marked_sentence(sentence, lang, first))
    if gaps[-1]:
        parts.append(gaps[-1])
    return parts


def _balanced(pieces: Sequence[str | Protected | Markup]) -> bool:
    depth = 0
    for piece in pieces:
        if isinstance(piece, Markup):
            depth += 1 if piece.opens else -1
            if depth < 0:
                return False
    return depth == 0


# ---------------------------------------------------------------- plain text and Markdown


def segment_plain(text: str, lang: str, match_terms: TermMatcher | None = None) -> TextTemplate:
    """Cut plain text (a title, an image's alt text) into sentences; nothing is escaped."""
    return TextTemplate(list(_segments_of_run([text], lang, match_terms, markdown=False, at_block_start=False)))


@functools.cache
def _markdown_parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    class VerbatimLinks(MarkdownIt):
        """Keeps link destinations byte for byte: the translation must carry the very URL the author wrote."""

        def normalizeLink(self, url: str) -> str:
            return url

        def normalizeLinkText(self, link: str) -> str:
            return link

        def validateLink(self, url: str) -> bool:
            return True

    return VerbatimLinks("commonmark").enable(["table", "strikethrough"])


def _link_destination(href: str, title: str | None) -> str:
    destination = f"<{href}>" if re.search(r"[\s<>]", href) or href.count("(") != href.count(")") else href
    if title:
        destination += ' "' + title.replace('"', '\\"') + '"'
    return destination


def _title(token: Token) -> str | None:
    """A link's or an image's title; markdown-it's attrs are typed str | int | float, the parser sets str."""
    title = token.attrs.get("title")
    return None if title is None else str(title)


def _code_span(content: str, fence: str) -> str:
    pad = " " if content.startswith(("`", " ")) or content.endswith(("`", " ")) else ""
    return f"{fence}{pad}{content}{pad}{fence}"


class _InlineBuilder:
    """Walks markdown-it's inline tokens and emits literals and segments in source order."""

    def __init__(self, lang: str, match_terms: TermMatcher | None, continuation_prefix: str) -> None:
        self.lang = lang
        self.match_terms = match_terms
        self.continuation_prefix = continuation_prefix
        self.parts: list[str | Segment | MarkedSentence] = []
        self.run: list[str | Protected | Markup] = []
        self.links: list[tuple[str, str | None]] = []

    def flush(self) -> None:
        if self.run:
            at_start = not self.parts
            self.parts.extend(_segments_of_inline(self.run, self.lang, self.match_terms, at_block_start=at_start))
            self.run = []

    def literal(self, markup: str) -> None:
        self.flush()
        self.parts.append(markup)

    def walk(self, tokens: Sequence[Token]) -> None:
        inside_autolink = False
        for token in tokens:
            kind = token.type
            if inside_autolink:
                # The autolink's text is its URL, already protected as a whole.
                inside_autolink = kind != "link_close"
            elif kind == "text":
                self.run.append(token.content)
            elif kind == "softbreak":
                # Translation reflows a paragraph: its source line breaks are spaces.
                self.run.append(" ")
            elif kind == "hardbreak":
                self.literal("\\\n" + self.continuation_prefix)
            elif kind == "code_inline":
                code = _code_span(token.content, token.markup)
                self.run.append(Protected(code, code, "code", markdown=True))
            elif kind == "html_inline":
                self.run.append(Protected(token.content, token.content, "html", markdown=True))
            elif kind == "link_open" and token.markup in ("autolink", "linkify"):
                href = str(token.attrs.get("href", ""))
                markup = f"<{href}>" if token.markup == "autolink" else href
                self.run.append(Protected(markup, markup, "url", markdown=True))
                inside_autolink = True
            elif kind == "link_open":
                self.links.append((str(token.attrs.get("href", "")), _title(token)))
                self.run.append(Markup("[", opens=True))
            elif kind == "link_close":
                href, title = self.links.pop()
                self.run.append(Markup("](" + _link_destination(href, title) + ")", opens=False))
            elif kind == "image":
                self.run.append(Markup("![", opens=True))
                self.walk(token.children or [])
                src, title = str(token.attrs.get("src", "")), _title(token)
                self.run.append(Markup("](" + _link_destination(src, title) + ")", opens=False))
            elif kind.endswith(("_open", "_close")):
                # Emphasis written with * rather than _: in a translation it may end inside a word
                # (Korean particles: **센터**는), where CommonMark does not close an underscore.
                self.run.append(Markup(token.markup.replace("_", "*"), opens=kind.endswith("_open")))

    def build(self, tokens: Sequence[Token]) -> list[str | Segment | MarkedSentence]:
        self.walk(tokens)
        self.flush()
        return self.parts


def _inline_parts(
    token: Token, lang: str, match_terms: TermMatcher | None, continuation_prefix: str
) -> list[str | Segment | MarkedSentence]:
    return _InlineBuilder(lang, match_terms, continuation_prefix).build(token.children or [])


def segment_markdown(text: str, lang: str, match_terms: TermMatcher | None = None) -> TextTemplate:
    """Cut a Markdown document into literals and sentences; block structure, code blocks and URLs are literals.

    Each paragraph, heading, list item and table row keeps its line prefix; a paragraph that spans
    several source lines becomes one line (line breaks inside a paragraph carry no meaning).
    """
    lines = text.splitlines(keepends=True)
    tokens = _markdown_parser().parse(text)
    # line index -> (number of lines replaced, template parts for the replacement)
    replacements: dict[int, tuple[int, list[str | Segment | MarkedSentence]]] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "tr_open" and token.map:
            cells = []
            index += 1
            while tokens[index].type != "tr_close":
                if tokens[index].type == "inline":
                    cells.append(tokens[index])
                index += 1
            row_line = lines[token.map[0]]
            indent = row_line[: len(row_line) - len(row_line.lstrip())]
            parts: list[str | Segment | MarkedSentence] = [indent + "|"]
            for cell in cells:
                parts.append(" ")
                parts.extend(_inline_parts(cell, lang, match_terms, ""))
                parts.append(" |")
            parts.append(_line_ending(row_line))
            replacements[token.map[0]] = (1, parts)
        elif token.type == "inline" and token.map and tokens[index - 1].type in ("paragraph_open", "heading_open"):
            start = token.map[0]
            content_lines = token.content.split("\n")
            first, last = lines[start], lines[start + len(content_lines) - 1]
            prefix = _prefix(first, content_lines[0])
            last_body = last.rstrip("\r\n")
            found = last_body.rfind(content_lines[-1]) if content_lines[-1] else -1
            suffix = last_body[found + len(content_lines[-1]) :] if found >= 0 else ""
            continuation = _prefix(lines[start + 1], content_lines[1]) if len(content_lines) > 1 else ""
            parts = [prefix]
            parts.extend(_inline_parts(token, lang, match_terms, continuation))
            parts.append(suffix.rstrip() + _line_ending(last))
            replacements[start] = (len(content_lines), parts)
        index += 1

    template = TextTemplate()
    line_number = 0
    while line_number < len(lines):
        if line_number in replacements:
            count, parts = replacements[line_number]
            template.parts.extend(parts)
            line_number += count
        else:
            template.parts.append(lines[line_number])
            line_number += 1
    return template


_CONTAINER_MARKERS = re.compile(r"^(?:[ \t]*(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t]))?[ \t]*)*(?:#{1,6}[ \t]+)?")


def _prefix(line: str, content: str) -> str:
    """The markers before a block's text on its source line ("> ", "- ", "## ", indentation)."""
    found = line.rfind(content) if content else -1
    if found >= 0:
        return line[:found]
    # markdown-it changed the text (a tab expanded, say): fall back to the markers themselves
    markers = _CONTAINER_MARKERS.match(line)
    return markers.group() if markers else ""  # every part of the pattern is optional: it always matches


def _line_ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]
