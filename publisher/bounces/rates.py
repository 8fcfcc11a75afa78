"""Each bulletin's bounce and complaint rates, for ``publisher status``.

Gmail, Yahoo and Outlook.com want a spam-complaint rate under 0.3% (0.1% as the target); a hard-bounce rate
over a few percent says the list needs cleaning. A bounce or complaint counts against the bulletin last sent
to that address (``SubscriberStore.last_bulletin``); a 5xx at RCPT TO against the bulletin being sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publisher.site import Site

COMPLAINT_LIMIT = 0.3   # percent: the mailbox providers' line (2024)


@dataclass(frozen=True)
class Rates:
    """One bulletin's deliverability: messages it reached a verdict on, and what came back."""

    article: str
    sent: int
    attempted: int      # sent, plus refused at RCPT TO (failed)
    hard: int
    soft: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return 100.0 * self.hard / self.attempted if self.attempted else 0.0

    @property
    def complaint_rate(self) -> float:
        return 100.0 * self.complaints / self.sent if self.sent else 0.0


def bulletin_rates(site: Site, articles: Sequence[str]) -> list[Rates]:
    """The rates of the given articles (or digests) that went out by email, in the order given."""
    ledger = site.ledger()
    events = site.store().subscribers.event_counts(articles)
    found = []
    for article in articles:
        counts = ledger.counts(article=article, channel="email", states=("sent", "failed"))
        sent, failed = counts.get("sent", 0), counts.get("failed", 0)
        if not sent and not failed:
            continue
        kinds = events.get(article, {})
        found.append(Rates(article, sent, sent + failed, kinds.get("hard", 0), kinds.get("soft", 0),
                           kinds.get("complaint", 0)))
    return found


