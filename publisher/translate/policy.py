"""The publishing rule for translations: which language versions of a story may go out, and why not the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from publisher.article import Article, Story
from publisher.delivery import DeliveryReport
from publisher.translate.workflow import is_stale

if TYPE_CHECKING:
    from publisher.article import Listed
    from publisher.site import Site


def select_versions(
    story: Story, langs: Sequence[str], site: Site, *, publishing: bool = False, dry_run: bool = False
) -> tuple[Story, list[DeliveryReport]]:
    """Keep the versions in ``langs`` that may be published; explain each one left out.

    A ``machine`` translation is published only when ``PUBLISHER_ALLOW_MACHINE_TRANSLATION`` is true (its
    renditions then carry a notice). A missing language is then translated on the spot, written to its
    sibling file by the same code as ``publisher translate``, and so is a machine translation whose
    original was edited since; otherwise the note says which command makes it.

    Only a publish (``publishing``) translates, and writes files unless ``dry_run``; otherwise (a review page,
    a feed rebuild) this only answers, with no side effect.
    """
    allow_machine = bool(site.config.get("PUBLISHER_ALLOW_MACHINE_TRANSLATION"))
    kept: dict[str, Article] = {}
    notes: list[DeliveryReport] = []
    for lang in langs:
        article = story.get(lang)
        stale = article is not None and article is not story.original and is_stale(article, story.original)
        if publishing and (article is None or (stale and article.is_machine_translation and allow_machine)):
            # missing, or a machine translation of an older text: (re)translate; the memory makes a
            # re-translation cost only the edited sentences
            article, note = _missing_version(story, lang, site, dry_run, allow_machine, stale=stale)
            notes.append(note)
            if article is not None:
                kept[lang] = article
        elif article is None:
            source = story.original.path or f"content/{story.slug}.{story.original.lang}.md"
            how = ("publishing translates it (PUBLISHER_ALLOW_MACHINE_TRANSLATION=true)" if allow_machine
                   else "machine translations are not published")
            notes.append(DeliveryReport(story.slug, lang, "-", "-", "skipped",
                                        f"no {lang} version ({how}); run: publisher translate {source} --to {lang}"))
        elif not may_publish(article, allow_machine):
            notes.append(DeliveryReport(
                story.slug, lang, "-", "-", "skipped",
                f"machine translation not published; review it (publisher review {article.path}) "
                f"or set PUBLISHER_ALLOW_MACHINE_TRANSLATION=true"))
        else:
            kept[lang] = article
            if stale and article.is_machine_translation:
                notes.append(DeliveryReport(
                    story.slug, lang, "-", str(article.path), "stale",
                    f"the {story.original.lang} original changed since this machine translation; publishing "
                    f"translates the edited sentences again"))
            elif stale:
                notes.append(DeliveryReport(
                    story.slug, lang, "-", str(article.path), "stale",
                    f"published as {article.translation.status}, but the {story.original.lang} original changed "
                    f"since; update it, or re-translate: publisher translate {story.original.path} --to {lang} "
                    f"--force"))
    return Story(story.slug, kept), notes


def may_publish(version: Listed, allow_machine: bool) -> bool:
    """Whether ``select_versions`` keeps a version that exists when not publishing (a feeds build, the review
    page): every one but a machine translation while those are not published. It reads only what the content
    index lists, so a publish decides it for 20,000 versions without loading them."""
    return allow_machine or not version.is_machine_translation


def _missing_version(
    story: Story, lang: str, site: Site, dry_run: bool, allow_machine: bool, *, stale: bool = False
) -> tuple[Article | None, DeliveryReport]:
    """Translate the original into ``lang`` when machine translations may be published; else say how to."""
    from publisher.errors import PublisherError
    from publisher.translate.workflow import translate_file

    original = story.original
    source = original.path or f"content/{story.slug}.{original.lang}.md"
    command = f"publisher translate {source} --to {lang}"
    if not allow_machine:
        return None, DeliveryReport(
            story.slug, lang, "-", "-", "skipped",
            f"no {lang} version; run: {command}, then publisher review it "
            f"(or set PUBLISHER_ALLOW_MACHINE_TRANSLATION=true to translate when publishing)")
    if original.path is None:
        return None, DeliveryReport(story.slug, lang, "-", "-", "skipped", f"no {lang} version; run: {command}")
    try:
        # A dry run translates in memory (to show what would go out) and writes no file.
        report = translate_file(site, original.path, lang, write=not dry_run)
    except PublisherError as exc:
        return None, DeliveryReport(story.slug, lang, "translate", "-", "skipped", f"no {lang} version: {exc}")
    where = str(report.article.path)
    why = f"the {original.lang} original changed: re-translated" if stale else "machine translation"
    note = f"{why} ({report.model}, {report.summary()}); review it with: publisher review {where}"
    return report.article, DeliveryReport(story.slug, lang, "translate", where,
                                          "dry-run" if dry_run else "translated", note)
