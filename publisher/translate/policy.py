"""The publishing rule for translations: which language versions of a story may go out, and why not the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from publisher.article import Story
from publisher.channels.base import DeliveryReport

if TYPE_CHECKING:
    from publisher.channels.base import PublishContext
    from publisher.site import Site


def select_versions(
    story: Story, langs: Sequence[str], site: Site, ctx: PublishContext | None = None
) -> tuple[Story, list[DeliveryReport]]:
    """Keep the versions in ``langs`` that may be published; explain each one left out.

    A ``machine`` translation is published only when ``PUBLISHER_ALLOW_MACHINE_TRANSLATION`` is true (its
    renditions then carry a notice); a missing language says which command makes it.
    """
    allow_machine = bool(site.config.get("PUBLISHER_ALLOW_MACHINE_TRANSLATION"))
    original = story.original
    kept: dict[str, object] = {}
    notes: list[DeliveryReport] = []
    for lang in langs:
        article = story.get(lang)
        if article is None:
            source = original.path or f"content/{story.slug}.{original.lang}.md"
            notes.append(DeliveryReport(story.slug, lang, "-", "-", "skipped",
                                        f"no {lang} version; run: publisher translate {source} --to {lang}"))
        elif article.is_machine_translation and not allow_machine:
            notes.append(DeliveryReport(
                story.slug, lang, "-", "-", "skipped",
                f"machine translation not published; review it (publisher review {article.path}) "
                f"or set PUBLISHER_ALLOW_MACHINE_TRANSLATION=true"))
        else:
            kept[lang] = article
    return Story(story.slug, dict(kept)), notes  # type: ignore[arg-type]
