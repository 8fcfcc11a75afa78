"""The in-run guard: a bulletin run whose hard bounces pass BOUNCE_GUARD_RATE stops, the rest left pending.

A list that suddenly bounces (an old import, a typo'd domain) costs the sending domain its reputation with every
message more; stopping early, as listmonk pauses a campaign after N errors, leaves the rest for after the list
is cleaned. Only deliveries that reached a verdict count (sent, or refused for the recipient); the rate is
judged once BOUNCE_GUARD_AFTER of them have.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BounceGuard:
    """Counts one run's outcomes; ``tripped`` says why the run must stop, once it must."""

    rate: float = 5.0     # percent; 0: never stop
    after: int = 500
    done: int = 0
    bounced: int = 0
    tripped: str | None = None

    def count(self, *, sent: bool, bounced: bool) -> None:
        """One delivery's verdict: sent, or refused (``bounced``: the address does not exist)."""
        if not (sent or bounced):
            return   # deferred, a server error: not the list's fault
        self.done += 1
        self.bounced += bounced
        if self.tripped is None and self.rate > 0 and self.done >= max(self.after, 1) \
                and self.bounced * 100 > self.rate * self.done:
            self.tripped = (f"{self.bounced} of {self.done} messages ({self.bounced * 100 / self.done:.1f}%) bounced "
                            f"as unknown addresses, over BOUNCE_GUARD_RATE={self.rate:g}%: run stopped, the rest "
                            "left pending; clean the list (publisher subscribers list --status bounced), then run "
                            "it again")
