"""``publisher bounces process``: each message of the bounce mailbox classified once and acted on.

The rules (issue 13): a hard bounce suppresses the address at once, soft bounces after BOUNCE_SOFT_LIMIT in
BOUNCE_SOFT_DAYS days, a complaint unsubscribes and suppresses (``complained``); delays and auto-replies
suppress nobody. Each message is acted on once, remembered by its Message-ID (the same message delivered
again changes nothing). A message nobody can classify is kept for a person and reported, never deleted.
Nothing is changed for a message that does not name a subscriber we can trust: a VERP token that does not
verify (forged, too old, or for an address erased since) or an address not on the list is one log line and
a count.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from publisher.bounces.classify import Verdict, classify

if TYPE_CHECKING:
    from publisher.bounces.verp import Verp
    from publisher.config import Config
    from publisher.site import Site
    from publisher.subscribers import Subscriber

log = logging.getLogger("publisher.bounces")

Action = Literal["done", "keep"]


class Source(Protocol):
    """A bounce mailbox: its messages, and what becomes of each once handled."""

    def describe(self) -> str: ...
    def messages(self) -> Iterable[tuple[str, bytes]]: ...        # (key, raw message)
    def done(self, key: str) -> None: ...                         # handled: marked read / removed
    def keep(self, key: str) -> None: ...                         # unclassified: kept for a person
    def close(self) -> None: ...


@dataclass
class Tally:
    """What one run did, for the command's summary line."""

    kinds: Counter[str] = field(default_factory=Counter)   # verdicts: bounce, complaint, delayed, ...
    hard: int = 0
    soft: int = 0
    suppressed: int = 0       # addresses whose status changed
    duplicates: int = 0       # messages acted on before (same Message-ID)
    unknown: int = 0          # naming nobody on the list
    untrusted: int = 0        # a VERP token that does not verify
    notes: list[str] = field(default_factory=list)   # one line per message kept or not acted on

    @property
    def read(self) -> int:
        return sum(self.kinds.values()) + self.duplicates

    def summary(self) -> str:
        k = self.kinds
        return (f"{self.read} messages read: {k['bounce']} bounces ({self.hard} hard, {self.soft} soft), "
                f"{k['complaint']} complaints, {k['delayed']} delay notices, {k['auto_reply']} auto-replies, "
                f"{k['ignored']} ignored, {k['unclassified']} unclassified (kept), {self.duplicates} already "
                f"handled; {self.suppressed} addresses suppressed, {self.unknown} not on the list, "
                f"{self.untrusted} with a VERP token that does not verify.")


class BounceProcessor:
    """Applies verdicts to the subscriber list of one site."""

    def __init__(self, site: Site, config: Config | None = None, *, clock: Callable[[], float] = time.time) -> None:
        from publisher.bounces.settings import BOUNCE_SOFT_DAYS, BOUNCE_SOFT_LIMIT
        from publisher.bounces.verp import Verp

        self.site = site
        config = config if config is not None else site.config
        self.subscribers = site.subscribers()
        self.store = site.store().subscribers
        self.verp: Verp | None = Verp.from_config(site, config, clock=clock)
        self.soft_limit = int(config.get(BOUNCE_SOFT_LIMIT))
        self.soft_days = int(config.get(BOUNCE_SOFT_DAYS))
        self.tally = Tally()

    def run(self, source: Source) -> Tally:
        """Every message of ``source``, each handled in its own transaction (a crash loses at most one)."""
        try:
            for key, data in source.messages():
                action = self.handle(data, where=f"{source.describe()}: {key}")
                if action == "keep":
                    source.keep(key)
                else:
                    source.done(key)
        finally:
            source.close()
        return self.tally

    def handle(self, data: bytes, *, where: str = "message") -> Action:
        """Classify one message and act on it once; what the source should do with it."""
        verdict = classify(data, self.verp)
        with self.store.transaction():
            before = self.store.remember_message(verdict.message_id, verdict.kind)
            if before is not None:
                self.tally.duplicates += 1
                return "keep" if before == "unclassified" else "done"
            self.tally.kinds[verdict.kind] += 1
            if verdict.kind == "bounce":
                self._bounce(verdict, where)
            elif verdict.kind == "complaint":
                self._complaint(verdict, where)
            elif verdict.kind == "unclassified":
                self._note(f"{where}: unclassified, kept: {verdict.reason}")
                return "keep"
        return "done"

    def apply_event(self, event_id: str, kind: str, email: str, reason: str, *, source: str) -> str:
        """One ESP webhook event (already verified): ``hard``, ``soft``, ``complaint`` or ``unsubscribe`` for
        ``email``, acted on once per ``event_id``. What happened: ``done``, ``duplicate`` or ``unknown``."""
        with self.store.transaction():
            if self.store.remember_message(f"{source}:{event_id}", kind) is not None:
                self.tally.duplicates += 1
                return "duplicate"
            subscriber = self.subscribers.get(email)
            if subscriber is None:
                self.tally.unknown += 1
                self._note(f"{source} webhook: a {kind} event for an address not on the subscriber list; nothing "
                           "changed")
                return "unknown"
            article = self.store.last_bulletin(subscriber.email)
            if kind == "hard":
                self.tally.hard += 1
                changed = self.subscribers.mark_bounced(subscriber.email, reason=reason, article=article,
                                                        source=source)
            elif kind == "soft":
                self.tally.soft += 1
                changed = self.subscribers.soft_bounce(subscriber.email, reason=reason, limit=self.soft_limit,
                                                       days=self.soft_days, article=article, source=source)
            elif kind == "complaint":
                self.tally.kinds["complaint"] += 1
                changed = self.subscribers.complain(subscriber.email, reason=reason, article=article, source=source)
            else:
                changed = self.subscribers.unsubscribe(subscriber.email)
            self.tally.suppressed += changed and kind != "unsubscribe"
        return "done"

    # --- the verdicts ---------------------------------------------------------------------------------------

    def _bounce(self, verdict: Verdict, where: str) -> None:
        # A hard failure outweighs a soft one when a report names several problems.
        finding = next((f for f in verdict.findings if f.severity == "hard"), verdict.findings[0])
        subscriber = self._from_tokens(verdict, where)
        if subscriber is None:
            subscriber = self._first_on_list(address for f in verdict.findings for address in f.addresses)
        if subscriber is None:
            self.tally.unknown += 1
            named = ", ".join(a for f in verdict.findings for a in f.addresses) or "no address"
            self._note(f"{where}: a bounce for {named}, not on the subscriber list; nothing changed")
            return
        article = self.store.last_bulletin(subscriber.email)
        if finding.severity == "hard":
            self.tally.hard += 1
            changed = self.subscribers.mark_bounced(subscriber.email, reason=finding.reason, article=article,
                                                    source="dsn")
        else:
            self.tally.soft += 1
            changed = self.subscribers.soft_bounce(subscriber.email, reason=finding.reason, limit=self.soft_limit,
                                                   days=self.soft_days, article=article, source="dsn")
        self.tally.suppressed += changed

    def _complaint(self, verdict: Verdict, where: str) -> None:
        # Original-Rcpt-To first, then the VERP token, then the original's To: (the order of issue 13).
        subscriber = self._first_on_list(verdict.complainants)
        if subscriber is None:
            subscriber = self._from_tokens(verdict, where)
        if subscriber is None:
            subscriber = self._first_on_list(verdict.fallback)
        if subscriber is None:
            self.tally.unknown += 1
            named = ", ".join(verdict.complainants + verdict.fallback) or "no address"
            self._note(f"{where}: a complaint about {named}, not on the subscriber list; nothing changed")
            return
        article = self.store.last_bulletin(subscriber.email)
        self.tally.suppressed += self.subscribers.complain(subscriber.email, reason=verdict.reason, article=article,
                                                           source="arf")

    # --- who -----------------------------------------------------------------------------------------------

    def _from_tokens(self, verdict: Verdict, where: str) -> Subscriber | None:
        if self.verp is None or not verdict.tokens:
            return None
        for token in verdict.tokens:
            subscriber = self.subscribers.get_by_id(token.subscriber_id)
            if subscriber is not None and self.verp.believe(token, subscriber.email):
                return subscriber
        self.tally.untrusted += 1
        self._note(f"{where}: a VERP token that does not verify (forged, older than BOUNCE_TOKEN_DAYS, or for "
                   "an address erased since); not believed")
        return None

    def _first_on_list(self, addresses: Iterable[str]) -> Subscriber | None:
        for address in addresses:
            subscriber = self.subscribers.get(address)
            if subscriber is not None:
                return subscriber
        return None

    def _note(self, line: str) -> None:
        log.warning("%s", line)
        self.tally.notes.append(line)


def process(site: Site, source: Source, *, config: Config | None = None,
            clock: Callable[[], float] = time.time) -> Tally:
    """Handle every message of ``source`` for ``site``; the counts and the notes."""
    return BounceProcessor(site, config, clock=clock).run(source)
