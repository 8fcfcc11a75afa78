"""The channel interface: render an article for preview, publish it, record every delivery in the ledger.

A channel is one small module that knows nothing of the other channels. It declares the settings it needs;
when the ``required`` ones are missing it falls back to a local adapter (a Maildir, JSON files, feed files)
and says so. Built-in channels are registered through the same entry points as third-party ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from publisher.settings import Setting

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.article import Story
    from publisher.config import Config
    from publisher.ledger import Ledger
    from publisher.site import Site


@dataclass
class Rendition:
    """One thing a channel would send: shown by ``publisher preview`` and the review page, never sent."""

    channel: str
    lang: str
    target: str
    filename: str
    content: str | bytes
    media_type: str = "text/plain"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeliveryReport:
    """One line of the table that ``publisher publish`` ends with."""

    article: str
    lang: str
    channel: str
    where: str
    state: str
    note: str = ""


@dataclass
class PublishContext:
    """What a channel needs to publish: the site, its settings, the ledger and the run's options."""

    site: Site
    config: Config
    ledger: Ledger
    force: bool = False
    dry_run: bool = False
    retry_unconfirmed: bool = False
    console: Console | None = None


class Channel:
    """Base class of every channel. Subclasses set ``name``, ``title``, ``settings``, ``required``."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, site: Site, config: Config | None = None) -> None:
        self.site = site
        self.config = config if config is not None else site.config

    def is_configured(self) -> bool:
        """True when every required setting is present, so the remote adapter is used."""
        return bool(self.required) and all(self.config.is_set(name) for name in self.required)

    def missing_settings(self) -> list[str]:
        return [name for name in self.required if not self.config.is_set(name)]

    def fallback_description(self) -> str:
        """Where deliveries go when the channel is not configured, e.g. "JSON files in outbox/x/"."""
        return f"JSON files in outbox/{self.name}/"

    def destination(self) -> str:
        """One line for ``config check`` and ``publish``: the remote place or the local fallback."""
        return self.title if self.is_configured() else f"local: {self.fallback_description()}"

    def check(self) -> list[str]:
        """Problems with this channel's settings (invalid values); parses every declared setting."""
        from publisher.errors import ConfigError

        problems = []
        for setting in self.settings:
            try:
                self.config.get(setting)
            except ConfigError as exc:
                problems.append(str(exc))
        return problems

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        raise NotImplementedError

    def publish(self, story: Story, langs: Sequence[str], ctx: PublishContext) -> list[DeliveryReport]:
        raise NotImplementedError

    def publish_many(self, batch: Sequence[tuple[Story, Sequence[str]]], ctx: PublishContext) -> list[DeliveryReport]:
        """Publish every story of one run. The default publishes them one by one; a channel whose output is
        shared by all stories (the feeds) overrides it to build once."""
        reports: list[DeliveryReport] = []
        for story, langs in batch:
            reports += self.publish(story, langs, ctx)
        return reports
