"""The send rate shared by every worker: a token bucket in the database (``store.token_buckets``), taken from
in chunks by ``BulletinSender._pace``, on both databases, with a fake clock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from publisher.channels.base import ChannelContext
from publisher.channels.email import EmailChannel
from publisher.delivery import Attempt
from publisher.site import Site
from publisher.store.interfaces import take_tokens
from tests.email.conftest import set_settings, story_for
from tests.databases import open_test_store

pytestmark = pytest.mark.both_databases


def test_a_bucket_starts_full_grants_whole_tokens_and_refills_at_its_rate(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    buckets = store.token_buckets
    assert buckets.take("email:smtp:relay:25", 3, rate=10, burst=3, now=100.0) == (3, 0.0)   # new: full
    granted, wait = buckets.take("email:smtp:relay:25", 3, rate=10, burst=3, now=100.0)
    assert granted == 0 and wait == pytest.approx(0.3)        # three tokens at 10/s: 0.3 s, no longer
    assert buckets.take("email:smtp:relay:25", 3, rate=10, burst=3, now=100.15)[0] == 1   # 1.5 tokens: one whole
    assert buckets.take("email:smtp:relay:25", 3, rate=10, burst=3, now=200.0) == (3, 0.0)   # capped at the burst
    assert buckets.take("email:smtp:relay:25", 3, rate=10, burst=3, now=200.0)[0] == 0
    assert buckets.take("email:ses:eu-west-1", 2, rate=14, burst=2, now=200.0) == (2, 0.0)   # its own bucket
    store.close()


def test_a_clock_set_back_never_makes_a_bucket_wait_for_the_old_time(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    buckets = store.token_buckets
    assert buckets.take("b", 2, rate=20, burst=2, now=5000.0) == (2, 0.0)
    granted, wait = buckets.take("b", 2, rate=20, burst=2, now=1400.0)   # the wall clock went back an hour
    assert granted == 0 and wait <= 2 / 20 + 1e-9
    assert buckets.take("b", 2, rate=20, burst=2, now=1400.0 + wait)[0] == 2   # counted from the new time
    # A clock a little behind another machine's (within the slack) counts from the bucket's time.
    tokens, updated, granted, wait = take_tokens(0.0, 10.5, want=1, rate=2, burst=1, now=10.0)
    assert (granted, updated) == (0, 10.5) and wait == pytest.approx(0.5)
    store.close()


def test_two_stores_taking_at_once_never_get_more_than_the_bucket_holds(tmp_path: Path) -> None:
    """Atomic across connections: with time standing still, every taker together gets the burst, no more."""
    first = open_test_store(tmp_path)
    first.token_buckets.take("shared", 1, rate=1, burst=40, now=0.0)   # made (full) before the race
    granted: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        store = open_test_store(tmp_path)   # each thread a connection of its own, as each worker has
        try:
            for _ in range(30):
                got, _ = store.token_buckets.take("shared", 1, rate=1, burst=40, now=0.0)
                with lock:
                    granted.append(got)
        finally:
            store.close()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 120 and sum(granted) == 39       # 40, less the one taken before
    first.close()


class FakeTime:
    """One clock for every sender of a test: time passes only when one of them waits."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def paced_site(site: Site, readers: int, rate: str = "20") -> Site:
    paced = set_settings(site, SMTP_RATE_PER_SECOND=rate)   # no SMTP_HOST: the Maildir, paced all the same
    subscribers = paced.subscribers()
    with paced.store().transaction():
        for i in range(readers):
            subscribers.add(f"reader{i:02d}@example.org", lang="en")
    return paced


def sender_of(site: Site, time: FakeTime, *, shared: bool = True) -> tuple[Any, list[Attempt]]:
    channel = EmailChannel(site)
    ctx = ChannelContext(audience=site.subscribers(), clock=time.clock, sleep=time.sleep,
                         rates=site.store().token_buckets if shared else None)
    renditions = channel.render(story_for(site, "2024-unpsf-incheon"), ["en"])
    attempts = [Attempt(p.key, p.rendition, p.recipient) for p in channel.deliveries(renditions, ctx)]
    return channel.open(renditions, ctx), attempts


def test_two_senders_on_one_database_together_stay_within_the_rate(site: Site) -> None:
    paced = paced_site(site, 20)
    other = Site(paced.root)          # a second process: its own store, the same database
    time = FakeTime(1000.0)
    first, first_attempts = sender_of(paced, time)
    second, second_attempts = sender_of(other, time)
    sent_at: list[float] = []
    with first, second:
        # Each takes half the readers, in turn, as two workers sharing one bulletin would.
        for one, two in zip(first_attempts[0::2], second_attempts[1::2]):
            for sender, attempt in ((first, one), (second, two)):
                sender.submit(attempt)
                sent_at.append(time.now)
                sender.collect(wait=True)
    assert len(sent_at) == 20
    burst = first.chunk          # a tenth of a second's worth: 2 at 20/s
    assert burst == 2
    # 20 messages at 20/s between the two, less the burst the bucket starts with: 0.9 s at least (each paced
    # alone would have taken 0.45 s).
    assert sent_at[-1] - sent_at[0] >= (20 - burst) / 20 - 1e-9
    # In any window, no more than the rate allows plus the burst.
    for i, start in enumerate(sent_at):
        within = [t for t in sent_at[i:] if t - start < 0.5]
        assert len(within) <= 0.5 * 20 + burst
    assert all(wait <= burst / 20 + 1e-9 for wait in time.waits)   # never longer than the rate needs
    assert len(list((paced.outbox_dir / "mail" / "new").iterdir())) == 20
    other.close()
    paced.close()


def test_one_sender_alone_keeps_its_pace_with_the_bucket(site: Site) -> None:
    paced = paced_site(site, 6)
    shared, alone = FakeTime(1000.0), FakeTime(1000.0)
    for time, use_bucket in ((shared, True), (alone, False)):
        sender, attempts = sender_of(paced, time, shared=use_bucket)
        with sender:
            for attempt in attempts:
                sender.submit(attempt)
                sender.collect(wait=True)
    # The bucket adds no wait to a process that has it to itself: 5 gaps of 50 ms, as without it.
    assert shared.waits == pytest.approx(alone.waits) and len(shared.waits) == 5
    assert shared.now == pytest.approx(alone.now)
    paced.close()


def test_with_the_bucket_a_clock_set_back_still_waits_no_longer_than_the_rate_needs(site: Site) -> None:
    paced = paced_site(site, 6, rate="10")
    time = FakeTime(5000.0)
    sender, attempts = sender_of(paced, time)
    with sender:
        for i, attempt in enumerate(attempts):
            sender.submit(attempt)
            sender.collect(wait=True)
            if i == 1:
                time.now = 1400.0           # the wall clock is set back an hour mid-run
    assert all(wait <= 0.1 + 1e-9 for wait in time.waits)
    assert time.now < 1400.0 + 1.0          # the run went on at its pace, never waiting for the old time
    assert len(list((paced.outbox_dir / "mail" / "new").iterdir())) == 6
    paced.close()


def test_the_bucket_is_named_by_the_transport_and_its_host(site: Site) -> None:
    assert EmailChannel(site).rate_bucket() == "email:maildir"
    relayed = set_settings(site, SMTP_HOST="mail.example.org", SMTP_PORT="587", BULLETIN_FROM="news@example.org")
    assert EmailChannel(relayed).rate_bucket() == "email:smtp:mail.example.org:587"
    relayed.close()
