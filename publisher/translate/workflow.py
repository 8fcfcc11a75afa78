"""Translate an article into its sibling language file: segment, protect, look up the memory, batch the rest, restore."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import ContentError, PublisherError
from publisher.translate.segment import NUMBER, Segment, TextTemplate, escape_markdown

if TYPE_CHECKING:
    from publisher.article import Article
    from publisher.site import Site
    from publisher.translate.base import Translator
    from publisher.translate.glossary import Glossary, MissingTerm
    from publisher.store import TranslationMemory

# How a protected span is written in the model's input. Letters and digits only: SentencePiece models
# split unknown symbols into <unk>, but copy short Latin codes like this through.
PLACEHOLDER = "ZQ{}"
_PLACEHOLDER_IN_OUTPUT = re.compile(r"Z\s*Q\s*(\d+)", re.IGNORECASE)
PROTECTED_STATUSES = ("original", "human", "reviewed")
# Front-matter key of a translation: a digest of the source text it was made from, to notice later edits.
SOURCE_DIGEST_KEY = "source_digest"


@dataclass
class TranslationReport:
    """What one translation did: how many sentences, how many from memory, and what needs an editor's eye."""

    source: Article
    article: Article
    model: str
    sentences: int = 0
    from_memory: int = 0
    sent_to_model: int = 0
    from_other_models: int = 0  # of from_memory: sentences another model translated (reuse asked for)
    repaired: list[str] = field(default_factory=list)  # sentences whose protected spans the model dropped
    missing_terms: list[MissingTerm] = field(default_factory=list)
    path: Path | None = None

    def summary(self) -> str:
        """E.g. "12 sentences: 1 by the model, 11 from memory"."""
        plural = "" if self.sentences == 1 else "s"
        others = f" ({self.from_other_models} of them by other models)" if self.from_other_models else ""
        return (f"{self.sentences} sentence{plural}: {self.sent_to_model} by the model, "
                f"{self.from_memory} from memory{others}")


def model_input(segment: Segment) -> str:
    """The sentence as the model sees it: protected spans replaced by numbered placeholders."""
    numbered = iter(range(len(segment.pieces)))
    return "".join(p if isinstance(p, str) else PLACEHOLDER.format(next(numbered)) for p in segment.pieces)


def _numbers(text: str) -> list[tuple[str, str]]:
    """(as written, compared form) of each number: "2,000" and "2000" are the same number."""
    return [(m.group(), m.group().replace(",", "")) for m in NUMBER.finditer(text)]


def restore(segment: Segment, output: str, target_lang: str | None = None) -> tuple[str, bool]:
    """Put the protected spans back into the model's output and escape its text for Markdown.

    Anything the model dropped (a placeholder, a number) is appended at the end of the sentence, so
    nothing of the source is lost; the second value says whether that happened (the sentence needs review).
    In Korean, the particle after a restored glossary term is made to agree with the term.
    """
    from publisher.translate.korean import agree_particle

    protected = segment.protected
    used: set[int] = set()
    rendered: list[str] = []
    position = 0
    previous_term: str | None = None

    def text(chunk: str) -> str:
        if previous_term is not None and target_lang == "ko":
            chunk = agree_particle(previous_term, chunk)
        if not segment.markdown:
            return chunk
        return escape_markdown(chunk, at_block_start=segment.at_block_start and not rendered)

    def span(index: int) -> str:
        item = protected[index]
        return item.target if (item.markdown or not segment.markdown) else escape_markdown(item.target)

    for match in _PLACEHOLDER_IN_OUTPUT.finditer(output):
        index = int(match.group(1))
        if index >= len(protected) or index in used:
            continue  # an invented or repeated placeholder: drop it
        rendered.append(text(output[position : match.start()]))
        rendered.append(span(index))
        previous_term = protected[index].target if protected[index].kind == "term" else None
        used.add(index)
        position = match.end()
    tail = output[position:]
    tail = _PLACEHOLDER_IN_OUTPUT.sub("", tail) if used or protected else tail
    rendered.append(text(tail))
    restored = "".join(rendered)
    dropped = [span(i) for i in range(len(protected)) if i not in used]
    present = [value for _, value in _numbers(restored)]
    for written, value in _numbers("".join(p for p in segment.pieces if isinstance(p, str))):
        if value in present:
            present.remove(value)
        else:
            dropped.append(written)
    if dropped:
        restored = " ".join([restored.rstrip(), *dropped]) if restored.strip() else " ".join(dropped)
    return restored, bool(dropped)


def translate_templates(
    templates: Sequence[TextTemplate],
    translator: Translator,
    memory: TranslationMemory | None,
) -> tuple[list[str], TranslationCounts]:
    """Translate every segment of every template with ONE model call for what the memory does not know."""
    return translate_template_groups([templates], translator, memory)[0]


def translate_template_groups(
    groups: Sequence[Sequence[TextTemplate]],
    translator: Translator,
    memory: TranslationMemory | None,
    *,
    remember: bool = True,
    reuse_memory: bool = False,
) -> list[tuple[list[str], TranslationCounts]]:
    """Like ``translate_templates`` for several articles at once: still ONE model call for all of them.

    ``remember=False`` reads the memory but adds nothing to it (a dry run changes nothing).
    The memory answers with this model's own sentences only (the memory is keyed by model id), unless
    ``reuse_memory``: then a sentence another model translated is taken too; it stays recorded as that
    model's and is not copied under this one's name.
    """
    model, source, target = translator.model_id, translator.source_lang, translator.target_lang
    group_segments = [[segment for template in group for segment in template.segments] for group in groups]
    all_inputs = list(dict.fromkeys(model_input(s) for segments in group_segments for s in segments))
    known = memory.lookup(model, source, target, all_inputs) if memory is not None else {}
    missing = [text for text in all_inputs if text not in known]
    others: set[str] = set()
    if memory is not None and reuse_memory and missing:
        borrowed = memory.lookup_any_model(source, target, missing)
        known.update((text, translation) for text, (translation, _) in borrowed.items())
        others = set(borrowed)
        missing = [text for text in missing if text not in known]
    remembered = set(known)
    if missing:
        fresh = dict(zip(missing, translator.translate_batch(missing), strict=True))
        if memory is not None and remember:
            memory.remember(model, source, target, fresh)
        known.update(fresh)

    results = []
    for group, segments in zip(groups, group_segments, strict=True):
        inputs = [model_input(segment) for segment in segments]
        unique = list(dict.fromkeys(inputs))
        # Counted in distinct model inputs: a sentence with a link or emphasis also sends its marked fragments.
        from_memory = sum(1 for text in unique if text in remembered)
        counts = TranslationCounts(sentences=len(unique), from_memory=from_memory,
                                   sent_to_model=len(unique) - from_memory,
                                   from_other_models=sum(1 for text in unique if text in others))
        restored: dict[int, tuple[str, bool]] = {
            id(segment): restore(segment, known[text], target) for segment, text in zip(segments, inputs, strict=True)
        }
        used: set[int] = set()
        rendered = [template.render(lambda s: restored[id(s)][0], used) for template in group]
        # Only what reached the text counts: a marked sentence also translates fragments it may not use.
        counts.repaired = [s.text for s in segments if id(s) in used and restored[id(s)][1]]
        results.append((rendered, counts))
    return results


@dataclass
class TranslationCounts:
    sentences: int = 0
    from_memory: int = 0
    sent_to_model: int = 0
    from_other_models: int = 0
    repaired: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- articles


def translate_article(
    article: Article,
    target_lang: str,
    site: Site,
    *,
    translator: Translator | None = None,
    glossary: Glossary | None = None,
    memory: TranslationMemory | None = None,
) -> TranslationReport:
    """The ``target_lang`` version of ``article`` (not written): title, summary, body and image alt translated."""
    return translate_articles([article], target_lang, site, translator=translator, glossary=glossary,
                              memory=memory)[0]


def translate_articles(
    articles: Sequence[Article],
    target_lang: str,
    site: Site,
    *,
    translator: Translator | None = None,
    glossary: Glossary | None = None,
    memory: TranslationMemory | None = None,
    remember: bool = True,
    reuse_memory: bool = False,
) -> list[TranslationReport]:
    """Translate several articles with one model call per source language (none written)."""
    from publisher.translate.glossary import Glossary

    for article in articles:
        check_source(article, target_lang)
    glossary = glossary if glossary is not None else Glossary.load(site)
    memory = memory if memory is not None else site.store().translation_memory
    reports: dict[int, TranslationReport] = {}
    for source_lang in dict.fromkeys(a.lang for a in articles):
        batch = [a for a in articles if a.lang == source_lang]
        backend = translator or get_translator(site, source_lang, target_lang)
        groups = [_templates_of(article, target_lang, glossary) for article in batch]
        results = translate_template_groups(groups, backend, memory, remember=remember, reuse_memory=reuse_memory)
        for article, (rendered, counts) in zip(batch, results, strict=True):
            reports[id(article)] = _translated(article, target_lang, site, rendered, counts, backend, glossary)
    return [reports[id(article)] for article in articles]


def _templates_of(article: Article, target_lang: str, glossary: Glossary) -> list[TextTemplate]:
    """Title, summary, body and image alt text, cut into what is kept and what is translated."""
    import unicodedata

    from publisher.translate.segment import segment_markdown, segment_plain

    def terms(text: str) -> list[tuple[int, int, str]]:
        return glossary.find(text, article.lang, target_lang)

    def nfc(text: str) -> str:
        # Hangul typed on some systems arrives decomposed (NFD): glossary terms and Kiwi expect composed.
        return unicodedata.normalize("NFC", text)

    return [
        segment_plain(nfc(article.title), article.lang, terms),
        segment_markdown(nfc(article.summary), article.lang, terms) if article.summary else TextTemplate([]),
        segment_markdown(nfc(article.body), article.lang, terms),
        segment_plain(nfc(article.image.alt), article.lang, terms) if article.image else TextTemplate([]),
    ]


def _translated(
    article: Article, target_lang: str, site: Site, rendered: list[str], counts: TranslationCounts,
    translator: Translator, glossary: Glossary,
) -> TranslationReport:
    from publisher.article import Image, TranslationInfo, article_path

    source_lang = article.lang
    title, summary, body, alt = rendered
    translated = article.with_changes(
        lang=target_lang,
        author=glossary_term(glossary, article.author, source_lang, target_lang) if article.author else None,
        tags=[glossary_term(glossary, tag, source_lang, target_lang) for tag in article.tags],
        title=title.strip(),
        summary=summary.strip(),
        body=body,
        image=Image(article.image.src, alt.strip()) if article.image else None,
        url=site.url_for(target_lang, article.slug),
        translation=TranslationInfo("machine", source_lang, translator.model_id),
        path=article_path(site, article.slug, target_lang),
        extra={**article.extra, SOURCE_DIGEST_KEY: source_digest(article)},
    )
    source_text = "\n".join([article.title, article.summary, article.body, article.image.alt if article.image else ""])
    target_text = "\n".join([translated.title, translated.summary, translated.body, alt])
    return TranslationReport(
        source=article, article=translated, model=translator.model_id, sentences=counts.sentences,
        from_memory=counts.from_memory, sent_to_model=counts.sent_to_model,
        from_other_models=counts.from_other_models, repaired=counts.repaired,
        missing_terms=glossary.missing(source_text, _unescape(target_text), source_lang, target_lang),
    )


def source_digest(article: Article) -> str:
    """A short fingerprint of what a translation is made from: title, summary, body and image alt text."""
    import hashlib

    text = "\0".join([article.title, article.summary, article.body, article.image.alt if article.image else ""])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def is_stale(translation: Article, source: Article) -> bool:
    """Whether the source was edited after this translation was made (unknown for a translation without digest)."""
    recorded = translation.extra.get(SOURCE_DIGEST_KEY)
    return bool(recorded) and recorded != source_digest(source)


def glossary_term(glossary: Glossary, text: str, source_lang: str, target_lang: str) -> str:
    """A name or tag in the target language when the glossary has it as a whole, else unchanged.

    Authors and tags are names, not prose: a model would only garble them.
    """
    found = glossary.find(text, source_lang, target_lang)
    if len(found) == 1 and found[0][:2] == (0, len(text)):
        return found[0][2]
    return text


def check_source(article: Article, target_lang: str) -> None:
    """A translation starts from a version a person wrote or checked, into another language."""
    if target_lang == article.lang:
        raise PublisherError(f"{article.path}: is already in {target_lang}")
    if article.is_machine_translation:
        source = f"content/{article.slug}.{article.translation.source_lang}.md"
        raise ContentError(article.path, "translation.status",
                           f"is a machine translation; translate from the original ({source}) instead")


def _unescape(markdown: str) -> str:
    """Markdown text without the backslashes ``escape_markdown`` added, for comparing words."""
    return re.sub(r"\\([\\`*_\[\]<>|~&#+\-.)=!])", r"\1", markdown)


def translate_file(
    site: Site,
    path: Path,
    target_lang: str,
    *,
    force: bool = False,
    write: bool = True,
    translator: Translator | None = None,
    reuse_memory: bool = False,
) -> TranslationReport:
    """``publisher translate PATH --to LANG``: write ``content/<slug>.<lang>.md`` with ``translation: machine``.

    An existing ``original``, ``human`` or ``reviewed`` version is only replaced with ``force``; an older
    machine translation is replaced (it is the same command run again).
    """
    return translate_files(site, [path], target_lang, force=force, write=write, translator=translator,
                           reuse_memory=reuse_memory)[0]


def translate_files(
    site: Site,
    paths: Sequence[Path],
    target_lang: str,
    *,
    force: bool = False,
    write: bool = True,
    translator: Translator | None = None,
    reuse_memory: bool = False,
) -> list[TranslationReport]:
    """``translate_file`` for several files: every check passes before anything is translated or written,
    and all their sentences go to the model in one call. ``write=False`` (a dry run) writes nothing at all,
    not even to the translation memory."""
    from publisher.article import article_path, load_article, write_article

    articles = [load_article(path, site) for path in paths]
    for article in articles:
        check_source(article, target_lang)
        check_can_overwrite(site, article_path(site, article.slug, target_lang), force=force)
    reports = translate_articles(articles, target_lang, site, translator=translator, remember=write,
                                 reuse_memory=reuse_memory)
    if write:
        for report in reports:
            target_path = article_path(site, report.article.slug, target_lang)
            write_article(report.article, target_path, force=True)
            report.path = target_path
    return reports


def check_can_overwrite(site: Site, target_path: Path, *, force: bool) -> None:
    """Refuse to replace a version a person wrote or checked, unless forced."""
    from publisher.article import load_article

    if force or not target_path.exists():
        return
    existing = load_article(target_path, site)
    if existing.translation.status in PROTECTED_STATUSES:
        raise PublisherError(
            f"{target_path}: is {'an' if existing.translation.status == 'original' else 'a'} "
            f"{existing.translation.status} version; "
            f"it is not replaced by a machine translation without --force"
        )


@dataclass
class ReviewResult:
    article: Article
    missing_terms: list[MissingTerm] = field(default_factory=list)
    source_changed: bool = False  # the original had been edited since the machine translation was made


def mark_reviewed(site: Site, path: Path) -> ReviewResult:
    """``publisher review PATH``: an editor has checked a translation against the current original.

    Its status becomes ``reviewed`` and its source digest that of the current original, so later edits of
    the original are noticed again.
    """
    from dataclasses import replace

    from publisher.article import article_path, load_article, write_article
    from publisher.translate.glossary import Glossary

    article = load_article(path, site)
    status = article.translation.status
    if status == "original":
        raise ContentError(path, "translation.status", "is original: only a machine translation is reviewed")
    if status == "human":
        raise ContentError(path, "translation.status", "is a human translation: only a machine translation is reviewed")
    source_lang = article.translation.source_lang
    source_path = article_path(site, article.slug, source_lang) if source_lang else None
    source = load_article(source_path, site) if source_path is not None and source_path.exists() else None
    result = ReviewResult(article)
    extra = dict(article.extra)
    if source is not None:
        result.missing_terms = Glossary.load(site).missing(
            "\n".join([source.title, source.summary, source.body]),
            _unescape("\n".join([article.title, article.summary, article.body])),
            source.lang, article.lang,
        )
        result.source_changed = is_stale(article, source)
        extra[SOURCE_DIGEST_KEY] = source_digest(source)
    if status != "reviewed" or extra != article.extra:
        reviewed = article.with_changes(translation=replace(article.translation, status="reviewed"), extra=extra)
        write_article(reviewed, Path(path), force=True)
        result.article = reviewed
    return result


# ---------------------------------------------------------------- backends


def get_translator(site: Site, source_lang: str, target_lang: str, name: str | None = None) -> Translator:
    """The backend for a pair (``name``, else TRANSLATION_MODEL_<FROM>_<TO>, else Argos); TranslationUnavailable
    (with the install command) when it is not installed."""
    from publisher.translate.registry import get_translator as chosen

    return chosen(site, source_lang, target_lang, name)
