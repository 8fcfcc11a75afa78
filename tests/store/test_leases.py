"""Delivery leases (issue 14) on SQLite and PostgreSQL: the shared queue's claim of disjoint batches by two
stores at once, a lease that ran out taken over (an injected clock), a renewed lease kept, the compare-and-set
claim of an in-process run, and the worker kept on the row once it is marked."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from publisher.delivery import DeliveryKey, Lease
from publisher.site import Site
from tests.databases import open_test_store

pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
ARTICLE = "bulletin"


def keys(count: int, article: str = ARTICLE) -> list[DeliveryKey]:
    return [DeliveryKey(article, "en", "email", f"reader{i:04d}@example.org") for i in range(count)]


def lease(worker: str, at: datetime, seconds: float = 60, exclusive: bool = False) -> Lease:
    return Lease(worker, at + timedelta(seconds=seconds), exclusive)


def test_two_stores_claiming_at_once_get_disjoint_batches_and_together_every_row(site: Site) -> None:
    site.ledger().ensure_pending(keys(300))
    site.ledger().ensure_pending(keys(20, article="another"))   # another bulletin's rows are never taken
    taken: dict[str, list[DeliveryKey]] = {"a": [], "b": []}
    start, first = threading.Barrier(2), threading.Barrier(2)

    def claim(name: str) -> None:
        store = open_test_store(site.state_dir)   # a connection of its own, as another process has
        try:
            start.wait()
            taken[name] += [row.key for row in store.ledger.claim_queued(ARTICLE, "email", lease(name, T0), T0, 7)]
            first.wait()   # each has a batch in hand; then both go on as fast as they can
            while rows := store.ledger.claim_queued(ARTICLE, "email", lease(name, T0), T0, 7):
                assert {row.state for row in rows} == {"pending"}   # as they were before the claim
                taken[name] += [row.key for row in rows]
        finally:
            store.close()

    threads = [threading.Thread(target=claim, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not set(taken["a"]) & set(taken["b"])
    assert sorted(taken["a"] + taken["b"], key=str) == sorted(keys(300), key=str)
    assert taken["a"] and taken["b"]
    rows = site.ledger().get_many(keys(300))
    assert {row.state for row in rows.values()} == {"in_flight"}
    assert {row.key for row in rows.values() if row.worker == "a"} == set(taken["a"])
    assert all(row.lease_until == "2026-12-02T09:01:00.000+00:00" and row.attempts == 1 for row in rows.values())
    assert site.ledger().counts("another", "email", states=["pending"])["pending"] == 20


def test_a_lease_that_ran_out_is_taken_over_and_a_live_one_never(site: Site) -> None:
    site.ledger().ensure_pending(keys(5))
    ledger = site.ledger()
    first = ledger.claim_queued(ARTICLE, "email", lease("dead", T0, 60), T0, 3)
    assert [row.key for row in first] == keys(3)
    # 59 s later the first worker's lease still holds: only the rows nobody holds are claimed
    second = ledger.claim_queued(ARTICLE, "email", lease("alive", T0 + timedelta(seconds=59)),
                                 T0 + timedelta(seconds=59), 10)
    assert [row.key for row in second] == keys(5)[3:]
    assert ledger.claim_queued(ARTICLE, "email", lease("other", T0), T0 + timedelta(seconds=59), 10) == []
    # after 61 s it has run out (the worker died): another takes the rows, as they were (in flight, "dead"'s)
    later = T0 + timedelta(seconds=61)
    taken = ledger.claim_queued(ARTICLE, "email", lease("heir", later), later, 10)
    assert [row.key for row in taken] == keys(3)
    assert {(row.state, row.worker) for row in taken} == {("in_flight", "dead")}
    after = ledger.get_many(keys(3))
    assert {(row.worker, row.attempts) for row in after.values()} == {("heir", 2)}


def test_renewing_keeps_a_live_workers_rows_its_own(site: Site) -> None:
    ledger = site.ledger()
    ledger.ensure_pending(keys(4))
    ledger.claim_queued(ARTICLE, "email", lease("alive", T0, 60), T0, 4)
    assert ledger.renew("alive", T0 + timedelta(seconds=110)) == 4
    assert ledger.renew("nobody", T0 + timedelta(seconds=500)) == 0
    at = T0 + timedelta(seconds=100)   # past the first lease, within the renewed one
    assert ledger.claim_queued(ARTICLE, "email", lease("other", at), at, 10) == []
    row = ledger.get(keys(1)[0])
    assert row is not None and not row.leased_elsewhere(Lease("alive", at), at)   # its own
    assert row.leased_elsewhere(Lease("other", at), at)
    assert not row.leased_elsewhere(Lease("other", at), T0 + timedelta(seconds=111))
    # a mark keeps the worker (who sent it); the renewal no longer touches a marked row
    ledger.mark_many([(keys(1)[0], "sent", "id-1", None, None, None)])
    assert ledger.renew("alive", T0 + timedelta(seconds=200)) == 3
    sent = ledger.get(keys(1)[0])
    assert sent is not None and sent.state == "sent" and sent.worker == "alive"
    assert sent.as_dict()["worker"] == "alive"


def test_claim_many_is_a_compare_and_set_on_the_row_as_it_was_read(site: Site, tmp_path: Path) -> None:
    ledger = site.ledger()
    ledger.ensure_pending(keys(3))
    read = ledger.get_many(keys(3))
    # another worker claims the first row between our read and our claim
    other = open_test_store(site.state_dir)
    try:
        assert [r.key for r in other.ledger.claim_queued(ARTICLE, "email", lease("w2", T0), T0, 1)] == keys(1)
    finally:
        other.close()
    won = ledger.claim_many([(key, read[key]) for key in keys(3)], lease("run", T0, exclusive=True))
    assert won == set(keys(3)[1:])
    rows = ledger.get_many(keys(3))
    assert rows[keys(1)[0]].worker == "w2" and not rows[keys(1)[0]].lease_exclusive
    assert {(rows[k].worker, rows[k].lease_exclusive) for k in keys(3)[1:]} == {("run", True)}
    # claimed again from a stale read: nothing (the lease it read is gone)
    assert ledger.claim_many([(key, read[key]) for key in keys(3)], lease("late", T0)) == set()


def test_an_exclusive_lease_is_no_claim_against_a_run_that_holds_the_bulletins_lock(site: Site) -> None:
    ledger = site.ledger()
    ledger.ensure_pending(keys(1))
    ledger.claim_many([(keys(1)[0], None)], lease("killed-run", T0, exclusive=True))
    row = ledger.get(keys(1)[0])
    assert row is not None
    assert row.leased_elsewhere(Lease("queue-worker", T0), T0)          # a worker without the lock waits
    assert not row.leased_elsewhere(Lease("next-run", T0, exclusive=True), T0)   # the lock's holder knows


def test_subscribers_are_fetched_many_at_once(site: Site) -> None:
    subscribers = site.subscribers()
    for i in range(5):
        subscribers.add(f"Reader{i}@Example.org", lang="en")
    found = subscribers.get_many([f"reader{i}@example.org" for i in range(7)] + ["not an address"])
    assert sorted(found) == [f"reader{i}@example.org" for i in range(5)]
    assert found["reader3@example.org"].email == "Reader3@example.org"


def test_subscribers_fetched_by_their_stored_addresses_skip_the_parse(site: Site) -> None:
    """A queue worker looks its claimed rows' targets up ``as_stored``: the same subscribers, by lower case,
    with no address parsed again (a target that is no stored address simply finds nobody)."""
    subscribers = site.subscribers()
    for i in range(3):
        subscribers.add(f"Reader{i}@Example.org", lang="en")
    stored = [subscriber.email for subscriber in subscribers.iter_active()]
    found = subscribers.get_many(stored + ["not an address"], as_stored=True)
    assert sorted(found) == [f"reader{i}@example.org" for i in range(3)]
    assert {s.email for s in found.values()} == set(stored)
    assert found == subscribers.get_many(stored)


def test_a_bulletin_of_two_languages_is_claimed_in_the_order_its_rows_were_made(site: Site) -> None:
    # SQLite reads each language's rows on its own and merges them: the claim still takes the oldest first,
    # expired leases before pending rows, and never more than asked.
    mixed = [DeliveryKey(ARTICLE, ("en", "ko", "ko")[i % 3], "email", f"reader{i:04d}@example.org")
             for i in range(12)]
    ledger = site.ledger()
    ledger.ensure_pending(mixed)
    ledger.ensure_pending([DeliveryKey(ARTICLE, "en", "x", "account"), DeliveryKey("other", "ko", "email", "a")])
    first = ledger.claim_queued(ARTICLE, "email", lease("dead", T0, 60), T0, 4)
    assert [row.key for row in first] == mixed[:4]
    later = T0 + timedelta(seconds=61)
    taken = ledger.claim_queued(ARTICLE, "email", lease("heir", later), later, 6)
    assert [row.key for row in taken] == mixed[:6]
    assert [row.state for row in taken] == ["in_flight"] * 4 + ["pending"] * 2
    rest = ledger.claim_queued(ARTICLE, "email", lease("heir", later), later, 100)
    assert [row.key for row in rest] == mixed[6:]
    assert ledger.counts(ARTICLE, "email", states=["in_flight", "pending"]) == {"in_flight": 12, "pending": 0}
    assert ledger.counts(ARTICLE, states=["pending"]) == {"pending": 1}
