"""The ledger rule, once, at the pipeline level: claim before send, mark after, never twice, never blindly.

Every test runs a real publish of the sample site through ``MemoryChannel`` (the package's in-memory channel)
against the real site database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import pytest

from publisher import pipeline
from publisher.channels.base import ChannelContext
from publisher.channels.memory import MemoryChannel
from publisher.delivery import Attempt, DeliveryKey, Outcome
from publisher.site import Site

pytestmark = pytest.mark.both_databases

SLUG = "2024-unpsf-incheon"


def publish(site: Site, channel: MemoryChannel, **options: Any) -> dict[str, Any]:
    reports = pipeline.publish(site, [site.content_dir / f"{SLUG}.en.md"], channels=[channel], langs=["en"],
                               **options)
    [report] = [r for r in reports if r.channel == channel.name]
    return {"state": report.state, "note": report.note, "where": report.where}


def key() -> DeliveryKey:
    return DeliveryKey(SLUG, "en", "memory", "inbox")


def test_a_second_publish_sends_nothing(site: Site) -> None:
    channel = MemoryChannel(site)
    first = publish(site, channel)
    again = publish(site, channel)
    assert first["state"] == "sent" and first["where"] == f"memory://{key()}"
    assert again == {"state": "sent", "note": "already sent", "where": f"memory://{key()}"}
    assert channel.delivered_keys() == [str(key())]
    row = site.ledger().get(key())
    assert row is not None and row.state == "sent" and row.remote_id == "memory-1" and row.attempts == 1


def test_the_row_is_in_flight_while_send_runs(site: Site) -> None:
    seen: list[str] = []

    def respond(attempt: Attempt) -> None:
        row = site.ledger().get(attempt.key)
        seen.append(row.state if row else "missing")

    publish(site, MemoryChannel(site, respond=respond))
    assert seen == ["in_flight"]


def test_force_sends_again_with_a_new_generation(site: Site) -> None:
    channel = MemoryChannel(site)
    publish(site, channel)
    forced = publish(site, channel, force=True)
    assert forced["state"] == "sent"
    assert [a.generation for a in channel.attempts] == [0, 1]
    assert len(channel.delivered) == 2


def test_a_failure_is_retried_by_the_next_run(site: Site) -> None:
    answers = [Outcome.failed("connection refused")]
    channel = MemoryChannel(site, respond=lambda attempt: answers.pop() if answers else None)
    first = publish(site, channel)
    assert first["state"] == "failed" and first["note"] == "connection refused"
    assert site.ledger().get(key()).state == "failed"
    assert publish(site, channel)["state"] == "sent"
    assert len(channel.delivered) == 1


def test_a_permanent_failure_waits_for_force(site: Site) -> None:
    answers = [Outcome.failed("550 no such user", permanent=True)]
    channel = MemoryChannel(site, respond=lambda attempt: answers.pop() if answers else None)
    publish(site, channel)
    again = publish(site, channel)
    assert again["state"] == "failed" and "not retried" in again["note"]
    assert channel.attempts and len(channel.attempts) == 1
    assert publish(site, channel, force=True)["state"] == "sent"


def test_an_unknown_outcome_is_never_sent_again_blindly(site: Site) -> None:
    answers = [Outcome.unconfirmed("read timeout", detail={"arrived": True})]
    channel = MemoryChannel(site, respond=lambda attempt: answers.pop() if answers else None)
    first = publish(site, channel)
    assert first["state"] == "unconfirmed"
    blind = publish(site, channel)
    assert blind["state"] == "unconfirmed" and "--retry-unconfirmed" in blind["note"]
    assert len(channel.attempts) == 1
    # It did arrive: the look-up finds it, and nothing is sent again.
    retried = publish(site, channel, retry_unconfirmed=True)
    assert retried["state"] == "sent" and retried["note"] == "found among recent posts; not posted again"
    assert len(channel.attempts) == 1 and len(channel.delivered) == 1
    assert site.ledger().get(key()).state == "sent"


def test_an_unknown_outcome_that_did_not_arrive_is_sent_on_retry(site: Site) -> None:
    answers = [Outcome.unconfirmed("502 bad gateway", detail={"arrived": False})]
    channel = MemoryChannel(site, respond=lambda attempt: answers.pop() if answers else None)
    publish(site, channel)
    retried = publish(site, channel, retry_unconfirmed=True)
    assert retried == {"state": "sent", "note": "not found among recent posts, so posted",
                       "where": f"memory://{key()}"}
    assert len(channel.delivered) == 1


def test_a_platform_that_cannot_list_posts_is_posted_again_only_on_request(site: Site) -> None:
    answers = [Outcome.unconfirmed("timeout", detail={"arrived": True})]
    channel = MemoryChannel(site, respond=lambda attempt: answers.pop() if answers else None, listable=False)
    publish(site, channel)
    retried = publish(site, channel, retry_unconfirmed=True)
    assert retried["state"] == "sent" and "cannot list recent posts" in retried["note"]
    assert len(channel.delivered) == 2


class Crash(BaseException):
    """Stands for kill -9 in the middle of a send: nothing after it runs."""


class ResendingChannel(MemoryChannel):
    """A channel for which a duplicate beats a reader never getting it (email's rule)."""

    name: ClassVar[str] = "memory"
    in_doubt: ClassVar[Literal["resend", "verify"]] = "resend"


@pytest.mark.parametrize("channel_class, resent", [(MemoryChannel, False), (ResendingChannel, True)])
def test_a_crash_during_send_leaves_the_row_in_doubt(site: Site, channel_class: type[MemoryChannel],
                                                     resent: bool) -> None:
    def crash(attempt: Attempt) -> Outcome:
        raise Crash

    with pytest.raises(Crash):
        publish(site, channel_class(site, respond=crash))
    assert site.ledger().get(key()).state == "in_flight"
    after = channel_class(site)
    report = publish(site, after)
    if resent:
        assert report["state"] == "sent" and len(after.delivered) == 1
        assert site.ledger().get(key()).detail.get("possible_duplicate") is True
    else:
        assert report["state"] == "unconfirmed" and after.delivered == []


def test_another_run_claiming_first_is_never_sent_beside(site: Site) -> None:
    """Between our read of the ledger and our claim another run posts it: we report that and send nothing."""

    class Racing(MemoryChannel):
        def find_existing(self, attempt: Attempt, ctx: ChannelContext) -> Any:
            ledger = site.ledger()   # the other run, while we look
            ledger.begin(attempt.key)
            ledger.mark(attempt.key, "sent", remote_url="memory://other-run")
            return None

    answers = [Outcome.unconfirmed("timeout", detail={"arrived": False})]
    publish(site, MemoryChannel(site, respond=lambda attempt: answers.pop()))
    channel = Racing(site)
    report = publish(site, channel, retry_unconfirmed=True)
    assert report == {"state": "sent", "note": "already sent by another run", "where": "memory://other-run"}
    assert channel.attempts == []


def test_a_dry_run_changes_nothing(site: Site) -> None:
    channel = MemoryChannel(site)
    reports = pipeline.publish(site, [site.content_dir / f"{SLUG}.en.md"], channels=[channel], dry_run=True)
    assert {r.state for r in reports if r.channel == "memory"} == {"dry-run"}
    assert channel.attempts == [] and site.ledger().get(key()) is None


def test_no_more_than_capacity_in_flight(site: Site, write_article: Callable[..., Any]) -> None:
    """A sender with room for two: the pipeline claims a third only after an outcome came back."""
    from publisher.channels.base import Sender

    for n in range(7):
        write_article(f"note-{n}", "en", title=f"Note {n}", date="2025-01-0" + str(n + 1))
    in_flight_seen: list[int] = []

    class TwoAtATime(Sender):
        capacity = 2

        def __init__(self, channel: MemoryChannel, ctx: ChannelContext) -> None:
            super().__init__(channel, ctx)
            self.queue: list[Attempt] = []

        def submit(self, attempt: Attempt) -> None:
            self.queue.append(attempt)
            in_flight_seen.append(site.ledger().counts(channel="memory")["in_flight"])

        def collect(self, *, wait: bool) -> list[tuple[Attempt, Outcome]]:
            if not wait or not self.queue:
                return []
            attempt = self.queue.pop(0)
            return [(attempt, self.channel.send(attempt, self.ctx))]

    class Pooled(MemoryChannel):
        def open(self, renditions: Any, ctx: ChannelContext) -> Sender:
            return TwoAtATime(self, ctx)

    channel = Pooled(site)
    reports = pipeline.publish(site, sorted(site.content_dir.glob("note-*.en.md")), channels=[channel])
    assert [r.state for r in reports if r.channel == "memory"] == ["sent"] * 7
    assert max(in_flight_seen) == 2 and len(channel.delivered) == 7


def test_a_deferred_outcome_that_halts_leaves_the_rest_pending(site: Site, write_article: Callable[..., Any]) -> None:
    """A sender-level refusal (a quota) is nobody's fault: the run stops, the rest waits, a later run sends it."""
    for n in range(4):
        write_article(f"note-{n}", "en", title=f"Note {n}", date="2025-01-0" + str(n + 1))
    paths = sorted(site.content_dir.glob("note-*.en.md"))
    quota = [True]

    def respond(attempt: Attempt) -> Outcome | None:
        if attempt.key.article == "note-1" and quota:
            quota.clear()
            return Outcome.deferred("550 5.4.5 daily sending quota exceeded", halt=True)
        return None

    channel = MemoryChannel(site, respond=respond)
    reports = pipeline.publish(site, paths, channels=[channel])
    states = {r.article: r.state for r in reports if r.channel == "memory"}
    assert states == {"note-0": "sent", "note-1": "pending", "-": "stopped"}
    [stopped] = [r for r in reports if r.state == "stopped"]
    assert stopped.note.startswith("550 5.4.5 daily sending quota exceeded; the run stopped")
    ledger = site.ledger()
    assert ledger.get(DeliveryKey("note-1", "en", "memory", "inbox")).state == "pending"
    never_tried = ledger.get(DeliveryKey("note-2", "en", "memory", "inbox"))
    assert never_tried is None or (never_tried.state == "pending" and never_tried.attempts == 0)
    again = pipeline.publish(site, paths, channels=[channel])
    assert {r.article: r.state for r in again if r.channel == "memory"} == {f"note-{n}": "sent" for n in range(4)}
    assert sorted(a.attempt.key.article for a in channel.delivered) == [f"note-{n}" for n in range(4)]


@pytest.mark.parametrize("setting, value", [("SMTP_SECURITY", "tls"), ("SMTP_PORT", "not-a-port"),
                                            ("BULLETIN_FROM", "News <news@@unpog.example>")])
def test_a_bad_setting_of_any_channel_stops_the_run_before_any_channel_writes(
        site_dir: Any, cli: Callable[..., Any], setting: str, value: str) -> None:
    """Feeds come first in a run: with a bad email setting they used to be written before email failed."""
    from tests.conftest import set_settings

    set_settings(Site(site_dir), SMTP_HOST="mail.example.org", **{setting: value})
    result = cli("publish")
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert setting in line and line.endswith("nothing was sent")
    assert not (site_dir / "public").exists() and not (site_dir / "outbox").exists()
    assert not list(Site(site_dir).ledger().rows())


def test_content_a_channel_cannot_render_stops_the_run_before_any_channel_writes(
        site: Site, cli: Callable[..., Any]) -> None:
    """A half-configured account (a key without its secret) is found while checking, not after the feeds."""
    (site.root / ".env").write_text("X_API_KEY=only-the-key\n", encoding="utf-8")
    result = cli("publish")
    assert result.exit_code == 2
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert line == "Error: X_API_SECRET: is required because X_API_KEY is set"
    assert not site.public_dir.exists() and not site.outbox_dir.exists()
