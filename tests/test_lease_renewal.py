"""The send loop renews its lease (issue 14) by the run's injected clock: rows a slow sender keeps in flight for
longer than WORKER_LEASE_SECONDS stay the run's own, and another worker reading them sees them taken; a run
that ends on an error gives its rows back at once, in doubt."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

import pytest

from publisher import pipeline
from publisher.channels.base import ChannelContext, Sender
from publisher.channels.memory import MemoryChannel
from publisher.delivery import Attempt, DeliveryKey, Lease, Outcome, Planned, Rendition
from publisher.site import Site
from tests.conftest import set_settings

pytestmark = pytest.mark.both_databases

SLUG = "2024-unpsf-incheon"
TARGETS = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class SlowSender(Sender):
    """Keeps every attempt in flight; each wait for an outcome takes 25 s of the fake clock and gives one."""

    capacity = TARGETS

    def __init__(self, channel: Fanout, ctx: ChannelContext) -> None:
        super().__init__(channel, ctx)
        self.waiting: list[Attempt] = []

    def submit(self, attempt: Attempt) -> None:
        self.waiting.append(attempt)

    def collect(self, *, wait: bool) -> list[tuple[Attempt, Outcome]]:
        if not wait or not self.waiting:
            return []
        channel = self.channel
        assert isinstance(channel, Fanout)
        channel.clock.now += 25
        channel.look()   # what another worker sees of the rows still in flight, at this moment
        if channel.crash_after is not None and len(channel.seen) >= channel.crash_after:
            raise RuntimeError("the connection broke")
        return [(self.waiting.pop(0), Outcome.sent("ok"))]


class Fanout(MemoryChannel):
    """One rendition, delivered to several targets (as email is to subscribers)."""

    name: ClassVar[str] = "memory"

    def __init__(self, site: Site, clock: Clock, crash_after: int | None = None) -> None:
        super().__init__(site)
        self.clock = clock
        self.crash_after = crash_after
        self.seen: list[dict[str, bool]] = []

    def deliveries(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Iterator[Planned]:
        for rendition in renditions:
            for i in range(TARGETS):
                yield Planned(DeliveryKey(rendition.article, rendition.lang, self.name, f"t{i}"), rendition)

    def open(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Any:
        return SlowSender(self, ctx)

    def look(self) -> None:
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        thief = Lease("another-worker", now)
        rows = self.site.ledger().rows(article=SLUG, channel=self.name, state="in_flight")
        self.seen.append({row.key.target: row.leased_elsewhere(thief, now) for row in rows})


def run(site: Site, channel: Fanout) -> list[Any]:
    from publisher.article import load_stories

    [story] = load_stories([site.content_dir / f"{SLUG}.en.md"], site)
    ctx = pipeline.channel_context(site, pipeline.RunOptions(worker="this-run"))
    ctx.clock = channel.clock
    return pipeline.send_all(site, channel, channel.render(story, ["en"]), ctx)


def test_rows_in_flight_longer_than_the_lease_stay_the_runs_own(site: Site) -> None:
    site = set_settings(site, WORKER_LEASE_SECONDS="60")
    channel = Fanout(site, Clock())
    results = run(site, channel)
    assert [r.outcome.state for r in results if r.outcome is not None] == ["sent"] * TARGETS
    # the last row waited 125 s in flight, twice the lease: renewed meanwhile, another worker saw it taken
    assert [len(seen) for seen in channel.seen] == [5, 4, 3, 2, 1]
    assert all(all(seen.values()) for seen in channel.seen)
    rows = list(site.ledger().rows(article=SLUG, channel="memory"))
    assert {(row.state, row.worker) for row in rows} == {("sent", "this-run")}


def test_a_short_lease_is_renewed_a_third_of_it_at_a_time(site: Site) -> None:
    """The same run with a lease of 30 s: the lease written at the claim alone would end 30 s after it, so
    only the renewals keep the rows through 125 s of waiting."""
    site = set_settings(site, WORKER_LEASE_SECONDS="30")
    channel = Fanout(site, Clock())
    start = channel.clock()
    run(site, channel)
    assert all(all(seen.values()) for seen in channel.seen) and len(channel.seen) == TARGETS
    last = max(row.lease_until or "" for row in site.ledger().rows(article=SLUG, channel="memory"))
    assert datetime.fromisoformat(last).timestamp() > start + 30   # renewed past the first lease


def test_a_run_that_fails_gives_its_rows_back_in_doubt_at_once(site: Site) -> None:
    channel = Fanout(site, Clock(), crash_after=2)
    with pytest.raises(RuntimeError):
        run(site, channel)
    now = datetime.fromtimestamp(channel.clock(), timezone.utc)
    left = list(site.ledger().rows(article=SLUG, channel="memory", state="in_flight"))
    assert left and not any(row.leased_elsewhere(Lease("next-run", now), now) for row in left)


def test_a_row_another_worker_holds_is_left_to_it_and_once_its_lease_ran_out_is_in_doubt(site: Site) -> None:
    """decide(): in flight under a live lease of another worker, "leased" (not sent, not in doubt); the same row
    once that lease has run out is in doubt as before leases (a social channel: checked, never posted blindly)."""
    from datetime import timedelta

    key = DeliveryKey(SLUG, "en", "memory", "inbox")
    site.ledger().ensure_pending([key])
    now = datetime.now(timezone.utc)
    assert site.ledger().claim_many([(key, None)], Lease("elsewhere:1:abc", now + timedelta(seconds=60))) == {key}
    channel = MemoryChannel(site)
    [line] = [r for r in pipeline.publish(site, [site.content_dir / f"{SLUG}.en.md"], channels=[channel],
                                          langs=["en"]) if r.channel == "memory"]
    assert (line.state, line.note) == ("in_flight", "another worker is sending it") and channel.delivered == []
    site.ledger().renew("elsewhere:1:abc", now - timedelta(seconds=1))   # its worker died: the lease ran out
    [line] = [r for r in pipeline.publish(site, [site.content_dir / f"{SLUG}.en.md"], channels=[channel],
                                          langs=["en"]) if r.channel == "memory"]
    assert line.state == "unconfirmed" and channel.delivered == []
    row = site.ledger().get(key)
    assert row is not None and row.state == "in_flight" and row.worker == "elsewhere:1:abc"
