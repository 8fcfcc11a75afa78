"""The ledger's bulk helpers for a bulletin's recipients: get_many, batch, begin_many, mark_many."""

from __future__ import annotations

import pytest

from publisher.delivery import DeliveryKey
from publisher.site import Site

pytestmark = pytest.mark.both_databases


def keys(n: int) -> list[DeliveryKey]:
    return [DeliveryKey("digest-2024-06-01", "ko" if i % 2 else "en", "email", f"r{i}@example.org") for i in range(n)]


def test_bulk_changes_match_one_by_one_changes(site: Site) -> None:
    ledger = site.ledger()
    batch = keys(1200)                       # more than one get_many chunk of 500
    assert ledger.ensure_pending(batch) == 1200
    assert len(ledger.get_many(batch + [DeliveryKey("other", "en", "email", "x@example.org")])) == 1200

    with ledger.batch():
        ledger.begin_many(batch[:3])
    rows = ledger.get_many(batch[:4])
    assert [rows[k].state for k in batch[:4]] == ["in_flight", "in_flight", "in_flight", "pending"]
    assert rows[batch[0]].attempts == 1

    with ledger.batch():
        ledger.mark_many([
            (batch[0], "sent", "<id-0@unpog.example>", None, None, {"message_id": "<id-0@unpog.example>"}),
            (batch[1], "failed", None, None, "550 5.1.1 no such user (at RCPT TO)", {"permanent": True}),
        ])
    sent, failed, still = ledger.get(batch[0]), ledger.get(batch[1]), ledger.get(batch[2])
    assert (sent.state, sent.remote_id, sent.detail) == ("sent", "<id-0@unpog.example>",
                                                          {"message_id": "<id-0@unpog.example>"})
    assert (failed.state, failed.last_error, failed.detail) == ("failed", "550 5.1.1 no such user (at RCPT TO)",
                                                                {"permanent": True})
    assert still.state == "in_flight"
    assert ledger.counts(article="digest-2024-06-01") == {
        "pending": 1197, "in_flight": 1, "sent": 1, "failed": 1, "unconfirmed": 0, "skipped": 0}


def test_a_failed_batch_changes_nothing(site: Site) -> None:
    ledger = site.ledger()
    batch = keys(2)
    ledger.ensure_pending(batch)
    with pytest.raises(ValueError, match="unknown delivery state"):
        with ledger.batch():
            ledger.begin_many(batch)
            ledger.mark_many([(batch[0], "delivered", None, None, None, {})])
    assert {row.state for row in ledger.get_many(batch).values()} == {"pending"}
    # begin() inside a batch joins it instead of opening its own transaction.
    with ledger.batch():
        ledger.begin(batch[0])
    assert ledger.get(batch[0]).state == "in_flight"


def test_mark_many_keeps_what_it_is_not_given(site: Site) -> None:
    ledger = site.ledger()
    batch = keys(3)
    for key in batch:
        ledger.mark(key, "unconfirmed", remote_id=f"id-{key.target}", remote_url=f"https://x/{key.target}",
                    detail={"parts": [1]})
    with ledger.transaction():
        ledger.mark_many([
            (batch[0], "sent", None, None, None, None),                       # keeps id, URL and detail
            (batch[1], "sent", "new-id", "https://x/new", None, {"parts": [1, 2]}),
            (batch[2], "failed", None, None, "refused", {}),                  # an empty detail replaces it
        ])
    rows = ledger.get_many(batch)
    kept, replaced, emptied = (rows[k] for k in batch)
    assert (kept.state, kept.remote_id, kept.remote_url, kept.detail) == (
        "sent", f"id-{batch[0].target}", f"https://x/{batch[0].target}", {"parts": [1]})
    assert (replaced.remote_id, replaced.remote_url, replaced.detail) == ("new-id", "https://x/new", {"parts": [1, 2]})
    assert (emptied.state, emptied.last_error, emptied.detail, emptied.remote_id) == (
        "failed", "refused", {}, f"id-{batch[2].target}")


def test_bulk_statements_stay_under_the_bound_parameter_limit(site: Site) -> None:
    ledger = site.ledger()
    batch = keys(9000)                       # 9000 rows x 9 values: far over SQLite's limit in one statement
    ledger.ensure_pending(batch)
    ledger.begin_many(batch)
    ledger.mark_many([(key, "sent", None, None, None, None) for key in batch])
    assert ledger.counts(article="digest-2024-06-01")["sent"] == 9000
