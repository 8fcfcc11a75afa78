"""An in-memory channel, shipped as httpx ships ``MockTransport``: a whole publish without a network.

Tests and third-party authors pass it to the pipeline (``publish(site, paths, channels=[MemoryChannel(site)])``)
and read what arrived in ``channel.delivered``. ``respond`` scripts the remote side: return an ``Outcome`` to
answer an attempt that way (``Outcome.unconfirmed`` with ``arrived=True`` in its detail plays a post that was
made but whose answer was lost), or None to accept it. It is not registered as an entry point, so a plain
``publisher publish`` never sends to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from publisher.channels.base import Channel, ChannelContext
from publisher.delivery import Attempt, Found, Outcome, Rendition

if TYPE_CHECKING:
    from publisher.article import Story
    from publisher.config import Config
    from publisher.site import Site


@dataclass(frozen=True)
class Arrived:
    """One delivery the remote side holds: what was sent, under which id."""

    attempt: Attempt
    remote_id: str
    text: str


class MemoryChannel(Channel):
    """Keeps every delivery in ``delivered``; a post left in doubt is verified against that list."""

    name: ClassVar[str] = "memory"
    title: ClassVar[str] = "In-memory channel"
    in_doubt: ClassVar[Literal["resend", "verify"]] = "verify"

    def __init__(self, site: Site, config: Config | None = None, *,
                 respond: Callable[[Attempt], Outcome | None] | None = None, listable: bool = True) -> None:
        super().__init__(site, config)
        self.respond = respond
        self.listable = listable
        self.delivered: list[Arrived] = []
        self.attempts: list[Attempt] = []

    def is_configured(self) -> bool:
        return True

    def destination(self) -> str:
        return "memory"

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        renditions = []
        for lang in langs:
            article = story.get(lang)
            if article is not None:
                text = f"{article.title}\n{article.url}"
                renditions.append(Rendition(self.name, lang, "inbox", "message.txt", text, article=story.slug,
                                            meta={"length": len(text)}))
        return renditions

    def send(self, attempt: Attempt, ctx: ChannelContext) -> Outcome:
        self.attempts.append(attempt)
        answer = self.respond(attempt) if self.respond is not None else None
        remote_id = f"memory-{len(self.delivered) + 1}"
        text = str(attempt.rendition.content)
        if answer is None:
            self.delivered.append(Arrived(attempt, remote_id, text))
            return Outcome.sent(remote_id, f"memory://{attempt.key}",
                                detail={"generation": attempt.generation})
        if answer.state in ("sent", "unconfirmed") and (answer.detail or {}).get("arrived", answer.state == "sent"):
            self.delivered.append(Arrived(attempt, remote_id, text))
        return answer

    def find_existing(self, attempt: Attempt, ctx: ChannelContext) -> Found | None:
        from publisher.delivery import LookupUnsupported

        if not self.listable:
            raise LookupUnsupported(self.name)
        for arrived in self.delivered:
            if arrived.attempt.key == attempt.key and arrived.text == str(attempt.rendition.content):
                return Found({"found": arrived.remote_id},
                             done=Outcome.sent(arrived.remote_id, f"memory://{attempt.key}"))
        return None

    def delivered_keys(self) -> list[str]:
        return [str(arrived.attempt.key) for arrived in self.delivered]
