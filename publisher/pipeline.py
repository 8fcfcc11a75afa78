"""The whole pipeline in one place: Article -> Translator -> Formatter -> Channel -> Ledger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.channels.base import DeliveryReport, PublishContext, Rendition

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.channels.base import Channel
    from publisher.site import Site


def channels_for(site: Site, names: Sequence[str] | None) -> list[Channel]:
    from publisher.channels.registry import channel_names, get_channel

    return [get_channel(name, site) for name in (names or channel_names())]


def publish(
    site: Site,
    paths: Sequence[Path],
    *,
    channels: Sequence[str] | None = None,
    langs: Sequence[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    retry_unconfirmed: bool = False,
    console: Console | None = None,
) -> list[DeliveryReport]:
    """Publish the articles at ``paths`` through ``channels`` (default: all) in ``langs`` (default: the site's)."""
    from publisher.article import load_stories
    from publisher.translate.policy import select_versions

    stories = load_stories(list(paths), site)                                    # Article
    chosen = channels_for(site, channels)
    ctx = PublishContext(site, site.config, site.ledger(), force=force, dry_run=dry_run,
                         retry_unconfirmed=retry_unconfirmed, console=console)
    reports: list[DeliveryReport] = []
    batch = []
    for story in stories:
        story, notes = select_versions(story, langs or site.languages, site, ctx)  # Translator + publishing rule
        reports += notes
        if story.versions:
            batch.append((story, story.languages))
    for channel in chosen:
        if dry_run:                                                               # Formatter only
            for story, story_langs in batch:
                reports += _would_send(story.slug, channel.render(story, story_langs), channel)
        else:                                                                     # Formatter -> Channel -> Ledger
            reports += channel.publish_many(batch, ctx)
    return reports


def _would_send(slug: str, renditions: list[Rendition], channel: Channel) -> list[DeliveryReport]:
    where = channel.destination()
    return [DeliveryReport(slug, r.lang, r.channel, f"{r.target} ({where})", "dry-run", r.filename)
            for r in renditions]


def preview(
    site: Site, paths: Sequence[Path], out_dir: Path, *, channels: Sequence[str] | None = None,
    langs: Sequence[str] | None = None,
) -> list[tuple[Rendition, Path]]:
    """Write every rendition of every language version to ``out_dir/<slug>/<lang>/<channel>/``; send nothing.

    Machine translations are previewed too (with their notice), whatever the publishing rule says.
    """
    from publisher.article import load_stories
    from publisher.channels.outbox import safe_name
    from publisher.fsutil import atomic_write_bytes

    written: list[tuple[Rendition, Path]] = []
    chosen = channels_for(site, channels)
    for story in load_stories(list(paths), site):
        if langs:
            story = story.only(langs)
        for channel in chosen:
            for rendition in channel.render(story, story.languages):
                path = out_dir / story.slug / rendition.lang / rendition.channel / safe_name(rendition.filename)
                data = rendition.content if isinstance(rendition.content, bytes) else rendition.content.encode()
                atomic_write_bytes(path, data)
                written.append((rendition, path))
    return written
