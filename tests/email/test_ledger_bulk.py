"""The ledger's bulk helpers that the pipeline uses for email: get_many, batch, begin_many, mark_many."""

from __future__ import annotations

import pytest

from publisher.delivery import DeliveryKey
from publisher.site import Site


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
