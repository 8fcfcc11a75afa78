"""The delivery ledger (``publisher.store.Ledger``, on SQLite and PostgreSQL): the life of a row, streaming, and
the feeds' reads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from publisher.delivery import DeliveryKey
from publisher.site import Site
from publisher.store.sqlite import SqliteStore
from tests.databases import integrity_error, open_test_store

pytestmark = pytest.mark.both_databases

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.sqlite_only
def test_database_url_setting_points_elsewhere(site: Site, tmp_path) -> None:  # noqa: ANN001
    from publisher.config import Config

    other = Site(site.root, Config.from_mapping({"PUBLISHER_DATABASE_URL": f"sqlite:///{tmp_path}/elsewhere.db"}))
    other.ledger().mark(DeliveryKey("a", "en", "feeds", "x"), "sent")
    assert (tmp_path / "elsewhere.db").exists()
    other.close()


def test_begin_then_mark_records_the_life_of_a_delivery(site: Site) -> None:
    ledger = site.ledger()
    key = DeliveryKey("2024-unpsf-incheon", "ko", "x", "ko-account")
    before = ledger.begin(key)
    assert before.state == "pending" and before.attempts == 0
    row = ledger.get(key)
    assert row.state == "in_flight" and row.attempts == 1
    ledger.mark(key, "unconfirmed", error="timeout after 30 s", detail={"parts": ["1"]})
    before = ledger.begin(key)
    assert before.state == "unconfirmed" and before.detail == {"parts": ["1"]}
    ledger.mark(key, "sent", remote_id="123", remote_url="https://x.com/u/status/123")
    row = ledger.get(key)
    assert (row.state, row.remote_id, row.attempts, row.last_error) == ("sent", "123", 2, None)
    assert row.detail == {"parts": ["1"]}  # kept when not given
    ledger.mark(key, "sent")
    assert ledger.get(key).remote_url == "https://x.com/u/status/123"


def test_timestamps_are_iso_8601_with_an_offset_from_the_store_clock(tmp_path) -> None:  # noqa: ANN001
    clock = FakeClock()
    store = open_test_store(tmp_path, clock=clock)
    key = DeliveryKey("a", "en", "x", "default")
    store.ledger.begin(key)
    clock.advance(2.5)
    store.ledger.mark(key, "sent")
    row = store.ledger.get(key)
    assert row.created_at == "2026-12-01T10:00:00.123+00:00"
    assert row.updated_at == "2026-12-01T10:00:02.623+00:00"
    store.ledger.ensure_pending([DeliveryKey("a", "en", "email", "r@example.org")])
    store.ledger.mark_many([(DeliveryKey("a", "en", "email", "r@example.org"), "sent", "<m@x>", None, None, None)])
    assert all(ISO_WITH_OFFSET.match(d.created_at) and ISO_WITH_OFFSET.match(d.updated_at)
               for d in store.ledger.rows())
    store.close()


def test_ensure_pending_is_idempotent_and_rows_stream_in_batches(site: Site) -> None:
    ledger = site.ledger()
    keys = [DeliveryKey("a", "en", "email", f"r{i}@example.org") for i in range(2500)]
    assert ledger.ensure_pending(keys, batch_size=700) == 2500
    assert ledger.ensure_pending(keys, batch_size=700) == 0
    assert ledger.ensure_pending(keys[:10] + [DeliveryKey("a", "en", "email", "new@example.org")]) == 1
    ledger.mark(keys[5], "sent")
    rows = list(ledger.rows(article="a", channel="email", state="pending", batch_size=300))
    assert len(rows) == 2500 and rows[0].key.target == "r0@example.org"
    assert ledger.counts(article="a")["sent"] == 1


def test_summary_counts_per_article_language_and_channel(site: Site) -> None:
    ledger = site.ledger()
    ledger.ensure_pending([DeliveryKey("b", "ko", "email", f"r{i}@example.org") for i in range(3)])
    ledger.mark(DeliveryKey("b", "ko", "email", "r0@example.org"), "sent")
    ledger.mark(DeliveryKey("a", "en", "x", "default"), "failed", error="refused")
    assert ledger.summary() == {("a", "en", "x"): {"failed": 1}, ("b", "ko", "email"): {"pending": 2, "sent": 1}}
    assert ledger.summary(article="b", channel="x") == {}
    assert list(ledger.summary(channel="email")) == [("b", "ko", "email")]


def test_states_are_checked_by_the_schema_and_the_store(site: Site) -> None:
    with pytest.raises(integrity_error(site.store())):
        site.store().connection.execute(  # type: ignore[attr-defined]
            "INSERT INTO deliveries (article, lang, channel, target, state) VALUES ('a','en','x','t','bogus')")
    with pytest.raises(ValueError, match="unknown delivery state 'bogus'"):
        site.ledger().mark(DeliveryKey("a", "en", "x", "t"), "bogus")


def test_a_transaction_commits_together_or_not_at_all_and_nests_as_a_savepoint(site: Site) -> None:
    ledger = site.ledger()
    first, second = DeliveryKey("a", "en", "x", "1"), DeliveryKey("a", "en", "x", "2")
    with pytest.raises(RuntimeError):
        with ledger.transaction():
            ledger.mark(first, "sent")
            raise RuntimeError("crash before the commit")
    assert ledger.get(first) is None
    with ledger.transaction():
        ledger.mark(first, "sent")
        try:
            with ledger.batch():             # the same thing under its older name, nested: a savepoint
                ledger.mark(second, "sent")
                raise RuntimeError("the inner part fails")
        except RuntimeError:
            pass
    assert ledger.get(first).state == "sent" and ledger.get(second) is None
    # Seen from another connection only once committed.
    other = Site(site.root)
    with ledger.transaction():
        ledger.mark(second, "failed", error="x")
        assert other.ledger().get(second) is None
    assert other.ledger().get(second).state == "failed"
    other.close()


def test_published_and_first_details_for_the_feeds(site: Site) -> None:
    ledger = site.ledger()
    feed = "feeds"
    # A story's English version in two feed files; the first row made gave the entry id.
    ledger.begin(DeliveryKey("story", "en", feed, "en/feed.xml"))
    ledger.mark(DeliveryKey("story", "en", feed, "en/feed.xml"), "sent", detail={"guid": "urn:1"})
    ledger.mark(DeliveryKey("story", "en", feed, "en/atom.xml"), "sent", detail={"guid": "urn:1", "n": 2})
    # Korean: failed once with a detail, so its id is fixed but it is not published.
    ledger.mark(DeliveryKey("story", "ko", feed, "ko/feed.xml"), "failed", error="disk full", detail={"guid": "urn:2"})
    # A row without detail is not a first detail; another channel is not seen.
    ledger.mark(DeliveryKey("other", "en", feed, "en/feed.xml"), "sent")
    ledger.mark(DeliveryKey("story", "en", "x", "default"), "sent", detail={"parts": ["1"]})

    assert ledger.published(feed) == {("story", "en"): {"guid": "urn:1"}, ("other", "en"): {}}
    assert ledger.first_details(feed) == {("story", "en"): {"guid": "urn:1"}, ("story", "ko"): {"guid": "urn:2"}}
    assert ledger.published("mastodon") == {} and ledger.first_details("mastodon") == {}
    # The same, per version and from the index alone (what a publish of one article reads).
    assert ledger.published_versions(feed) == {("story", "en"), ("other", "en")}
    assert ledger.published_versions("mastodon") == set()
    assert ledger.version_details(feed, [("story", "en"), ("story", "ko"), ("other", "en"), ("absent", "en")]) == {
        ("story", "en"): ({"guid": "urn:1"}, {"guid": "urn:1"}), ("story", "ko"): ({"guid": "urn:2"}, None),
        ("other", "en"): (None, {})}
    # The fingerprint moves when a row is added or changes state, not when nothing does.
    before = ledger.channel_fingerprint(feed)
    assert before == ledger.channel_fingerprint(feed) and before != ledger.channel_fingerprint("mastodon")
    ledger.mark(DeliveryKey("story", "ko", feed, "ko/feed.xml"), "sent")
    changed = ledger.channel_fingerprint(feed)
    assert changed != before
    ledger.mark(DeliveryKey("third", "ko", feed, "ko/feed.xml"), "pending")
    assert ledger.channel_fingerprint(feed) != changed


def test_the_feeds_reads_of_email_rows_still_answer_without_their_indexes(site: Site) -> None:
    # Email rows are left out of the indexes of the per-version reads (migration 0090: one row per recipient,
    # written three times); asked of email all the same, those reads give the same answers as for any channel.
    ledger = site.ledger()
    ledger.mark(DeliveryKey("story", "en", "email", "a@example.org"), "sent", detail={"message_id": "<1@x>"})
    ledger.mark(DeliveryKey("story", "en", "email", "b@example.org"), "sent", detail={"message_id": "<2@x>"})
    ledger.mark(DeliveryKey("story", "ko", "email", "c@example.org"), "failed", error="550", detail={"code": 550})
    ledger.mark(DeliveryKey("story", "en", "feeds", "en/feed.xml"), "sent", detail={"guid": "urn:1"})
    assert ledger.first_details("email") == {("story", "en"): {"message_id": "<1@x>"}, ("story", "ko"): {"code": 550}}
    assert ledger.published("email") == {("story", "en"): {"message_id": "<1@x>"}}
    assert ledger.published_versions("email") == {("story", "en")}
    assert ledger.published_versions("feeds") == {("story", "en")}
    assert ledger.first_details("feeds") == {("story", "en"): {"guid": "urn:1"}}
    before = ledger.channel_fingerprint("email")
    assert before.startswith("failed=1/") and "sent=2/" in before
    ledger.mark(DeliveryKey("story", "ko", "email", "c@example.org"), "sent")
    assert ledger.channel_fingerprint("email").startswith("sent=3/")


@pytest.mark.sqlite_only
def test_many_processes_opening_a_new_database_at_once(tmp_path) -> None:  # noqa: ANN001
    """The switch to WAL needs an exclusive lock that SQLite refuses at once, busy handler or not."""
    import threading

    for round_number in range(40):
        path = tmp_path / f"new-{round_number}.db"
        errors: list[BaseException] = []

        def open_and_close() -> None:
            try:
                store = SqliteStore(path, state_dir=tmp_path)
                store.migrate()
                store.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_and_close) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors


def test_rows_and_counts_of_a_state_across_every_channel_come_in_id_order(site: Site) -> None:
    # No index on the state alone: a state's rows are read per channel and merged, so the order across
    # channels, a language filter, several states and a channel with no row in that state are all checked.
    ledger = site.ledger()
    keys = [DeliveryKey(f"story-{n % 4}", ("en", "ko")[n % 2], ("x", "email", "feeds", "bluesky")[n % 3],
                        f"t{n}") for n in range(40)]
    ledger.ensure_pending(keys)
    states = ["sent" if n % 5 else "failed" for n in range(40)]
    ledger.mark_many([(key, state, None, None, None, None) for key, state in zip(keys, states)])
    assert [r.key for r in ledger.rows(state="sent", batch_size=3)] == \
        [key for key, state in zip(keys, states) if state == "sent"]
    assert [r.key for r in ledger.rows(state="failed", lang="ko", batch_size=2)] == \
        [key for key, state in zip(keys, states) if state == "failed" and key.lang == "ko"]
    assert [r.key for r in ledger.rows(state=("failed", "sent"), batch_size=4)] == keys
    assert list(ledger.rows(state="in_flight")) == []
    assert ledger.counts(states=["sent", "failed", "pending"]) == {"sent": 32, "failed": 8, "pending": 0}
    assert ledger.counts(lang="en", states=["failed"]) == {"failed": sum(
        1 for key, state in zip(keys, states) if state == "failed" and key.lang == "en")}
