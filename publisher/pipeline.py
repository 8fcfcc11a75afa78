"""The whole pipeline in one place: Article -> Translator -> Formatter -> Channel -> Ledger.

``publish()`` reads top to bottom as the story of a run: load the articles, choose the versions that may go out
(translating missing ones), then for each channel render, plan the deliveries, claim each in the ledger, send it
and mark what happened. Channels render and send; only this module claims and marks, so the "never twice" rule
is written once, for email (one delivery per recipient, in batches), feeds and social posts alike:

* a row ``sent`` is not sent again unless ``--force`` (or the channel is ``idempotent``: feed files);
* a row is claimed (``in_flight``, committed) before ``send`` and marked only with the outcome ``send`` gave;
  the claim is a lease (the worker's id and an expiry, renewed while it sends): a row in flight under another
  worker's live lease is left to that worker, one whose lease ran out (its worker died) is in doubt;
* at most ``Sender.capacity`` rows are in flight at once, so a crash leaves at most that many in doubt;
* a row left in doubt is re-sent by ``in_doubt = "resend"`` channels (reported as a possible duplicate) and
  never blindly by ``"verify"`` channels: only under ``--retry-unconfirmed``, after ``find_existing``;
* a permanent failure is not retried without ``--force``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from publisher.channels.base import Channel, ChannelContext, Decision, Result, Results, iter_batches
from publisher.delivery import (Attempt, Delivery, DeliveryReport, Lease, LockRequest, LookupFailed,
                                LookupUnsupported, Outcome, Planned, Rendition)

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.article import Story
    from publisher.channels.feeds import BuildResult
    from publisher.scheduler import Held, Now
    from publisher.site import Site
    from publisher.store import Mark

CLAIM_BATCH = 500
LOST_RETRIES = 5   # a transaction run again after a lost connection at most this many times (a flapping server)
Batch = list[tuple["Story", Sequence[str]]]


@dataclass(frozen=True)
class RunOptions:
    """The options of one run, as ``publish`` and ``bulletin`` take them."""

    force: bool = False
    dry_run: bool = False
    retry_unconfirmed: bool = False
    console: Console | None = None
    worker: str = ""   # the id the run's leases carry (a worker's own); "" gives the run one of its own


def worker_id() -> str:
    """A new id for a sender (``host:pid:hex``): a worker's, or an in-process run's. It names the machine and
    the process, so an operator reading ``status`` sees who sent what."""
    import os
    import secrets
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


# --- the story of a run ---------------------------------------------------------------------------------------


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _one_content_view(run: Callable[Concatenate[Site, _P], _T]) -> Callable[Concatenate[Site, _P], _T]:
    """Run ``run(site, ...)`` inside ``site.one_content_view()``: content/ is read once per run, whichever steps
    (loading the stories, the feeds' other articles, the pages) ask for it."""
    @functools.wraps(run)
    def wrapper(site: Site, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        with site.one_content_view(), fewer_collections():
            return run(site, *args, **kwargs)

    return wrapper


# Objects made between two runs of the cyclic garbage collector, during a run (Python's default is 700).
RUN_GC_THRESHOLD = 50_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The garbage collector's first threshold raised to ``RUN_GC_THRESHOLD`` for a run, then restored.

    A run on a large site makes objects that live until it ends (20,000 Articles, 100,000 ledger rows, the pages'
    strings); at the default threshold the collector walks them again and again: about a tenth of a publish into
    10,000 x 2 versions (bench/large_site.py). Cycles are still collected, less often. Runs overlapping in
    threads (``publisher serve``) may leave the raised threshold in place: fewer collections, nothing lost."""
    import gc

    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], RUN_GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@_one_content_view
def publish(
    site: Site,
    paths: Sequence[Path],
    *,
    channels: Sequence[str | Channel] | None = None,
    langs: Sequence[str] | None = None,
    force: bool = False,
    dry_run: bool = False,
    retry_unconfirmed: bool = False,
    console: Console | None = None,
    clock: Now | None = None,
    retry_jobs: bool = True,
    worker: str = "",
) -> list[DeliveryReport]:
    """Publish the articles at ``paths`` through ``channels`` (default: all) in ``langs`` (default: the site's).

    A version whose ``publish_at`` is still ahead (by ``clock``) is not sent: it gets a job that the worker
    runs at that time, and a "scheduled for" line. A channel that stops the run (a 429, a platform down)
    leaves a retry job for the worker (``retry_jobs``; the worker, which retries its own job, passes False).
    ``worker``: the id the run's leases carry (the worker's own; default: one for this run).
    """
    from publisher.article import load_stories
    from publisher.scheduler import after_every_embargo, split_embargoed, wall_clock

    options = RunOptions(force, dry_run, retry_unconfirmed, console, worker or worker_id())   # one id a run
    check_site_settings(site)
    stories = load_stories(list(paths), site)                                     # Article
    stories, held = split_embargoed(stories, langs or site.languages, (clock or wall_clock)())   # publish_at
    # --now's clock is "after every embargo", not a time to schedule a retry from
    retry_from = None if dry_run or not retry_jobs else (
        wall_clock() if clock is None or clock is after_every_embargo else clock())
    batch, reports = choose_versions(site, stories, langs or site.languages, options)  # Translator
    chosen = channels_for(site, channels)
    validate(site, chosen, batch)                                                   # nothing written before this
    reports = schedule_held(site, held, channels, reports, dry_run=dry_run)        # -> the worker, later
    for channel in chosen:
        reports += deliver(site, channel, batch, options, retry_from=retry_from)   # Formatter -> Channel -> Ledger
    return reports


def schedule_held(site: Site, held: Sequence[Held], channels: Sequence[str | Channel] | None,
                  reports: list[DeliveryReport], *, dry_run: bool = False) -> list[DeliveryReport]:
    """A job for each story's versions held back by ``publish_at`` (moved, not added, when it exists): the
    reports with one "scheduled for" line per held version instead of any other note about it."""
    from publisher.scheduler import schedule_embargoed, show_time

    names = [c.name if isinstance(c, Channel) else c for c in channels] if channels else None
    if not dry_run:
        schedule_embargoed(site, held, channels=names)
    waiting = {(one.story.slug, one.lang) for one in held}
    return [r for r in reports if (r.article, r.lang) not in waiting] + [
        DeliveryReport(one.story.slug, one.lang, ",".join(names) if names else "all", "worker", "scheduled",
                       f"scheduled for {show_time(one.until, site.timezone)}") for one in held]


def validate(site: Site, channels: Sequence[Channel], batch: Batch) -> None:
    """Check the whole run before any channel writes: the core settings, every chosen channel's settings, then
    what each would render. The first problem stops the run as one line (exit 2), with nothing sent or written."""
    from publisher.errors import PublisherError
    from publisher.settings import CORE_SETTINGS

    problems = [str(problem) for problem in site.config.problems(CORE_SETTINGS)]
    for channel in channels:
        found = channel.check()
        problems += [problem for problem in found if problem not in problems]
        if not found:
            problems += [problem for problem in channel.validate(batch) if problem not in problems]
    if problems:
        more = f" (and {len(problems) - 1} more problem(s): run publisher config check)" if len(problems) > 1 else ""
        raise PublisherError(f"{problems[0]}{more}; nothing was sent")


def check_site_settings(site: Site) -> None:
    """The settings every channel reads (site URL, titles, descriptions...), parsed before anything is written:
    a bad one is one ``ConfigError`` rather than a failure after the first channel's files."""
    from publisher.settings import site_settings

    site.config.validate(site_settings(site.languages))


def choose_versions(site: Site, stories: Sequence[Story], langs: Sequence[str],
                    options: RunOptions) -> tuple[Batch, list[DeliveryReport]]:
    """The versions of each story that may go out, translating missing ones (one explicit call), and a
    report line for each version left out."""
    from publisher.translate.policy import select_versions

    batch: Batch = []
    notes: list[DeliveryReport] = []
    for story in stories:
        allowed, skipped = select_versions(story, langs, site, publishing=True, dry_run=options.dry_run)
        notes += skipped
        if allowed.versions:
            batch.append((allowed, allowed.languages))
    return batch, notes


def deliver(site: Site, channel: Channel, batch: Batch, options: RunOptions,
            renditions: list[Rendition] | None = None, *, retry_from: datetime | None = None
            ) -> list[DeliveryReport]:
    """One channel's part of a run: render, then claim, send and mark every delivery (``renditions`` given:
    already rendered, as a digest is). ``retry_from`` (now): a run the channel stops leaves retry jobs."""
    locks = None if options.dry_run else channel.lock_for(batch)
    ctx = channel_context(site, options, exclusive=bool(locks))   # holding them: its leases say so
    with _locked(site, locks):
        if renditions is None:
            renditions = channel.render_many(batch, ctx)                           # Formatter
        if options.dry_run:
            return _would_send(channel, plan(site, channel, renditions, ctx), renditions)
        results = send_all(site, channel, renditions, ctx)                         # Channel -> Ledger
    return channel.report(results, ctx) + _halted(channel, results, retry=(site, batch, retry_from))


def bulletin(site: Site, *, since: datetime, theme: str | None = None, langs: Sequence[str] | None = None,
             force: bool = False, dry_run: bool = False, console: Console | None = None,
             clock: Now | None = None, until: datetime | None = None, digest_id: str | None = None
             ) -> tuple[list[DeliveryReport], list[Rendition], list[DeliveryReport]]:
    """A digest of the articles dated ``since`` or later (and before ``until``) (on ``theme``) to every
    subscriber, through the same claim, send and mark as ``publish``. Returns the email reports, the digest
    renditions and the notes of versions left out. Versions still under embargo (``publish_at``) are left out.
    ``digest_id``: its ledger id (the worker's: one per firing), else ``digest-<since's date>``."""
    from publisher.channels.email import EmailChannel
    from publisher.errors import NotFound
    from publisher.scheduler import split_embargoed, wall_clock

    options = RunOptions(force, dry_run, False, console)
    check_site_settings(site)
    wanted = list(langs or site.languages)
    stories = [story for story in site.articles().stories.values()
               if story.original.date >= since and (until is None or story.original.date < until)
               and (theme is None or story.original.theme_slug == theme)]
    stories, _ = split_embargoed(stories, wanted, (clock or wall_clock)())
    batch, notes = choose_versions(site, stories, wanted, options)                 # Translator
    if not batch:
        raise NotFound(f"no articles dated {since:%Y-%m-%d} or later" + (f" on the theme {theme!r}" if theme else ""))
    channel = EmailChannel(site)
    validate(site, [channel], [])                                                   # its settings, before any mail
    originals = {story.slug: story.original for story in stories if any(s.slug == story.slug for s, _ in batch)}
    renditions = channel.render_digest(batch, since=since, theme=theme, langs=wanted,
                                       originals=originals, digest_id=digest_id)   # Formatter
    if dry_run:
        ctx = channel_context(site, options)
        return channel.report(plan(site, channel, renditions, ctx), ctx), renditions, notes
    return deliver(site, channel, batch, options, renditions), renditions, notes   # Channel -> Ledger


@_one_content_view
def build_feeds(site: Site, *, include_unpublished: bool = False, clock: Now | None = None) -> BuildResult:
    """``publisher feeds build``: rebuild every feed and page from the published versions (or all of them).

    With ``include_unpublished`` every version that may be published and is not in the feeds yet is published
    to them like any delivery (claimed, built once with everything else, marked sent), so later builds and
    publishes keep it. Otherwise the build writes files only, from what the ledger says was published.
    """
    from publisher.channels.feeds import FeedsChannel
    from publisher.errors import PublisherError
    from publisher.scheduler import released, wall_clock

    options = RunOptions()
    check_site_settings(site)
    channel = FeedsChannel(site, full_build=True)
    ctx = channel_context(site, options)
    batch = channel.unpublished(ctx.published) if include_unpublished else []
    batch = released(batch, (clock or wall_clock)())                                # not before publish_at
    if batch:
        reports = deliver(site, channel, list(batch), options)                      # Formatter -> Channel -> Ledger
        failed = next((r for r in reports if r.state != "sent"), None)
        if failed is not None:
            raise PublisherError(f"{failed.article} ({failed.lang}) {failed.where}: {failed.note}")
        assert channel.last_build is not None and channel.last_build.result is not None
        return channel.last_build.result
    with _locked(site, channel.lock_for([])):
        return channel.rebuild(ctx)                                                 # files only


def preview(
    site: Site, paths: Sequence[Path], out_dir: Path, *, channels: Sequence[str | Channel] | None = None,
    langs: Sequence[str] | None = None,
) -> list[tuple[Rendition, Path]]:
    """Write every file of every rendition of every language version to ``out_dir/<slug>/<lang>/<channel>/``;
    send nothing. Machine translations are previewed too (with their notice), whatever the publishing rule."""
    from publisher.article import load_stories
    from publisher.channels.outbox import safe_name
    from publisher.fsutil import atomic_write_bytes

    written: list[tuple[Rendition, Path]] = []
    chosen = channels_for(site, channels)
    for channel in chosen:
        channel.published = site.ledger()   # a feed shows what was published besides the story
    for story in load_stories(list(paths), site):
        if langs:
            story = story.only(langs)
        for channel in chosen:
            for rendition in channel.render(story, story.languages):
                for shown in rendition.files:
                    path = out_dir / story.slug / rendition.lang / rendition.channel / safe_name(shown.filename)
                    data = shown.content if isinstance(shown.content, bytes) else shown.content.encode()
                    atomic_write_bytes(path, data)
                    written.append((rendition, path))
    return written


# --- the pieces -----------------------------------------------------------------------------------------------


def channels_for(site: Site, names: Sequence[str | Channel] | None) -> list[Channel]:
    """The channels of a run: registered names, or channel objects (tests and scripts pass their own)."""
    from publisher.channels.registry import channel_names, get_channel

    return [name if isinstance(name, Channel) else get_channel(name, site) for name in (names or channel_names())]


def channel_context(site: Site, options: RunOptions, *, exclusive: bool = False) -> ChannelContext:
    """What a channel may use in a run: the options, and storage through the protocols of publisher.delivery.
    ``exclusive``: the run holds the channel's locks for its bulletins (``lock_for``), and its leases say so."""
    ledger = site.ledger()

    def checkpoint(attempt: Attempt, progress: dict[str, Any]) -> None:
        ledger.mark(attempt.key, "in_flight", detail=progress)

    ctx = ChannelContext(force=options.force, dry_run=options.dry_run,
                         retry_unconfirmed=options.retry_unconfirmed, audience=site.subscribers(),
                         published=ledger, cache=site.feed_cache(),
                         console=options.console, checkpoint=checkpoint,
                         rates=site.store().token_buckets)
    ctx.lease = Lease(options.worker or worker_id(), _now(ctx), exclusive)   # its expiry: _Leases.lease()
    return ctx


@contextmanager
def _locked(site: Site, request: LockRequest | Sequence[LockRequest] | None) -> Iterator[None]:
    """Hold the channel's locks for its part of the run; a busy lock that must not be waited for stops the run
    with the channel's own line."""
    from publisher.errors import LockBusy

    requests = [] if request is None else [request] if isinstance(request, LockRequest) else list(request)
    with ExitStack() as held:
        for one in requests:
            try:
                held.enter_context(site.lock(one.name, wait=one.wait))
            except LockBusy as exc:
                raise LockBusy(one.name, one.busy or str(exc)) from None
        yield


def _would_send(channel: Channel, results: Sequence[Result],
                renditions: Sequence[Rendition] = ()) -> list[DeliveryReport]:
    """``--dry-run``: one line per rendition, saying what a run would do with it as the ledger stands: how many
    recipients a bulletin would go to, which feed file would be written, how many posts of what length. (The
    rendition's file names, ``alert.eml`` or ``post-1.txt``, exist only in a preview: they are not shown.)"""
    import re
    from collections import Counter

    from publisher.channels.base import done_before

    groups: dict[tuple[str, str, int], list[Result]] = {}
    for result in results:   # a feed build's files together: one line names them all
        which = 0 if channel.idempotent else id(result.rendition)
        groups.setdefault((result.key.article, result.key.lang, which), []).append(result)
    reports = []
    for (article, lang, _), group in groups.items():
        rendition = group[0].rendition
        decisions: Counter[str] = Counter(r.decision for r in group)
        would = decisions["send"] + decisions["resend"] + decisions["verify"]
        targets = {r.key.target for r in group}
        target = rendition.target if rendition is not None else next(iter(targets))
        fanned_out = len(targets) > 1 or target not in targets   # one rendition, many recipients (email)
        if fanned_out and rendition is None:
            target = "recipients"
        parts = []
        if channel.idempotent:   # files by nature: which ones
            again = all(r.previous_state == "sent" for r in group)
            files = ", ".join(dict.fromkeys(r.key.target for r in group))
            parts.append(f"already in (rewritten if changed), in public/: {files}" if again
                         else f"would write in public/: {files}")
        elif would:
            parts.append(_would_do(channel, rendition, would, fanned_out))
        for decision, words in (("already_sent", "already sent"), ("skipped", "skipped"),
                                ("in_doubt", "in doubt (publish --retry-unconfirmed)"),
                                ("leased", "being sent by another worker"),
                                ("not_retried", "failed before, not retried")):
            if decisions[decision]:
                reason = next((r.note for r in group if r.decision == decision and r.note != "dry run"), "")
                words = f"{words}: {reason}" if reason and decision == "skipped" else words
                parts.append(f"{decisions[decision]} {words}" if fanned_out or decisions[decision] > 1 else words)
        state = "dry-run" if would else group[0].state
        # the destination without the settings it lacks ("(set X_API_KEY ... to post)": config check says so)
        shown = re.sub(r" \(set [^()]*\)$", "", channel.destination())
        where = "public/" if channel.idempotent else f"{target} ({shown})"
        unchanged = sum(done_before(r) for r in group)
        reports.append(DeliveryReport(article, lang, channel.name, where, state, "; ".join(parts),
                                      done_before=unchanged if unchanged == len(group) else 0))
    planned = {(r.key.article, r.key.lang) for r in results}
    for rendition in renditions:   # rendered, but nobody to deliver it to (a bulletin without subscribers)
        if (rendition.article, rendition.lang) not in planned and not channel.idempotent:
            reports.append(DeliveryReport(rendition.article, rendition.lang, channel.name,
                                          f"{rendition.target} ({channel.destination()})", "skipped",
                                          "no recipients"))
    return reports


def _would_do(channel: Channel, rendition: Rendition | None, count: int, fanned_out: bool) -> str:
    """The dry run's note for deliveries a run would make (short: it shares an 80-column line)."""
    if fanned_out:
        return f"to {count} recipient{'s' if count != 1 else ''}"
    files = rendition.files if rendition is not None else []
    lengths = [f"{f.meta['length']}/{f.meta['limit']}" if "limit" in f.meta else str(f.meta["length"])
               for f in files if "length" in f.meta]
    if len(lengths) == 1:
        return f"{lengths[0]} chars"
    if lengths:   # a thread
        return f"{len(lengths)} posts: {', '.join(lengths)} chars"
    return "would be sent"


def decide(channel: Channel, row: Delivery | None, planned: Planned, ctx: ChannelContext) -> Decision:
    """What to do with one planned delivery, from its ledger row: the rule in the module docstring."""
    state = row.state if row is not None else "pending"
    if state == "sent" and not ctx.force and not channel.idempotent:
        return "already_sent"
    if planned.skip is not None or planned.rendition is None:
        return "skipped"
    # (the clock read only for a row in flight: a bulletin decides every recipient's row, most of them pending)
    if state == "in_flight" and not channel.idempotent and row is not None \
            and row.leased_elsewhere(ctx.lease, _now(ctx)):
        return "leased"   # its worker is alive and sending it: neither ours nor in doubt
    if state in ("in_flight", "unconfirmed") and not channel.idempotent:
        if channel.in_doubt == "resend":
            return "resend"
        if not ctx.force:
            return "verify" if ctx.retry_unconfirmed else "in_doubt"
    if state == "failed" and row is not None and row.detail.get("permanent") and not ctx.force:
        return "not_retried"
    return "send"


def plan(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext) -> list[Result]:
    """What ``send_all`` would do, read from the ledger; writes nothing (``--dry-run`` of a bulletin)."""
    ledger = site.ledger()
    results: list[Result] = []
    for batch in iter_batches(channel.deliveries(renditions, ctx), CLAIM_BATCH):
        rows = ledger.get_many([p.key for p in batch])
        for planned in batch:
            row = rows.get(planned.key)
            decision = decide(channel, row, planned, ctx)
            results.append(Result(planned.key, decision, note=planned.skip or "dry run", previous_state=_state(row),
                                  rendition=planned.rendition))
    return results


def send_all(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext) -> Results:
    """Claim, send and mark every delivery the renditions make, at most ``sender.capacity`` in flight.

    The outcomes that arrived together and the attempts about to start are written in one transaction, so a
    commit carries several deliveries (bulk email), and each attempt is claimed before it is submitted.
    """
    ledger = site.ledger()
    audience = site.subscribers()
    results = Results(channel.tally)   # a bulletin's recipients as counts: memory flat in the audience
    with _Leases(site, ctx) as leases, channel.open(renditions, ctx) as sender, \
            _progress(channel, renditions, ctx) as advance:
        todo = _attempts(site, channel, renditions, ctx, results, advance)
        in_flight, exhausted = 0, False
        while True:
            finished: list[tuple[Attempt, Outcome]] = []
            if in_flight and (exhausted or in_flight >= sender.capacity):
                finished += sender.collect(wait=True)
            finished += sender.collect(wait=False) if in_flight else []
            if any(outcome.halt for _, outcome in finished):   # the rest waits for a later run: claim nothing more
                exhausted = True
            starting: list[Attempt] = []
            while not exhausted and in_flight - len(finished) + len(starting) < sender.capacity:
                attempt = next(todo, None)
                if attempt is None:
                    exhausted = True
                else:
                    starting.append(attempt)
            if not finished and not starting and not in_flight:   # (claims lost to another run: wait for ours)
                break

            tries = 0

            def mark_and_claim() -> tuple[dict[Any, Delivery], list[Attempt]]:
                nonlocal tries
                tries += 1
                with ledger.transaction():
                    ledger.mark_many([_mark(channel, attempt, outcome) for attempt, outcome in finished])
                    won = ledger.claim_many([(a.key, a.previous) for a in starting], leases.lease())
                    now = ledger.get_many([a.key for a in starting if a.key not in won]) if len(won) < len(starting) else {}
                if tries > 1:   # run again after a lost connection: a claim of ours may have committed before it
                    won |= {a.key for a in starting if _claimed_by(now.get(a.key), a, leases.holder.worker)}
                return now, [a for a in starting if a.key in won]   # the others: another run got there first

            now, claimed = again_if_lost(mark_and_claim)
            for attempt, outcome in finished:
                if outcome.bounced:
                    audience.mark_bounced(attempt.key.target, reason=outcome.error, article=attempt.key.article)
                results.append(_result(attempt, outcome))
                advance(attempted=True)
            in_flight -= len(finished)
            claimed_now = {id(a) for a in claimed}   # by identity: `in` a list compares every field, n x n
            for attempt in starting:
                if id(attempt) not in claimed_now:   # another run changed the row between our read and the claim
                    results.append(_conflict(attempt, now.get(attempt.key)))
                    advance()
            for attempt in claimed:
                sender.submit(attempt)
                in_flight += 1
            leases.tick()
    return results


def _claimed_by(row: Delivery | None, attempt: Attempt, worker: str) -> bool:
    """True when ``row`` is the claim of ``attempt`` by ``worker`` itself: in flight under its id, one attempt
    after the row it was decided from (a claim committed just before the connection was lost)."""
    before = attempt.previous.attempts if attempt.previous is not None else 0
    return row is not None and row.state == "in_flight" and row.worker == worker and row.attempts == before + 1


def again_if_lost(unit: Callable[[], _T]) -> _T:
    """Run ``unit`` (one transaction of marks and claims, which the ledger rules make safe to run twice) again
    when the database server dropped the connection in its middle (``ConnectionLost``: rolled back): the store
    reconnects first, waiting up to PUBLISHER_DATABASE_RECONNECT_SECONDS, or stops the run with one line
    (``DatabaseUnreachable``). The outcomes that arrived meanwhile wait in the sender, so nothing is lost."""
    from publisher.errors import ConnectionLost

    for _ in range(LOST_RETRIES):
        try:
            return unit()
        except ConnectionLost:
            continue
    return unit()


def _now(ctx: ChannelContext) -> datetime:
    """The run's time, by the context's clock (tests inject it), as leases compare it."""
    return _utc(ctx.clock())


def _utc(seconds: float) -> datetime:
    from datetime import timezone

    return datetime.fromtimestamp(seconds, timezone.utc)


class _Leases:
    """The run's lease on the rows it claims: ``lease()`` for a claim (now + WORKER_LEASE_SECONDS), and
    ``tick()``, called from the send loop, renews every row the run holds in flight (one UPDATE) once a third
    of the lease has gone by, by the context's clock. A worker that dies stops renewing; its rows are free to
    another once the lease runs out. (A wait for one answer longer than the lease, e.g. an SMTP_TIMEOUT above
    WORKER_LEASE_SECONDS, would let another worker take rows still being sent: the setting says to keep it
    above.)"""

    def __init__(self, site: Site, ctx: ChannelContext) -> None:
        if ctx.lease is None:   # a context made by hand (a script, a test): a run of its own
            ctx.lease = Lease(worker_id(), _now(ctx))
        self.ledger = site.ledger()
        self.ctx = ctx
        self.holder = ctx.lease
        self.seconds = float(site.config.get("WORKER_LEASE_SECONDS"))
        self.renew_at = ctx.clock() + self.seconds / 3

    def now(self) -> datetime:
        return _now(self.ctx)

    def lease(self) -> Lease:
        from datetime import timedelta

        return replace(self.holder, until=self.now() + timedelta(seconds=self.seconds))

    def tick(self) -> None:
        if self.ctx.clock() >= self.renew_at:
            self.ledger.renew(self.holder.worker, self.lease().until)
            self.renew_at = self.ctx.clock() + self.seconds / 3

    def __enter__(self) -> _Leases:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        """A run that ends on an error gives its rows back at once, in doubt (a killed one cannot: its
        rows wait for the lease to run out)."""
        if kind is None:
            return
        from publisher.errors import PublisherError

        try:
            self.ledger.renew(self.holder.worker, self.now())
        except PublisherError:
            pass   # the database is what failed: the lease runs out on its own


# --- the shared queue: publish --queue, and the workers that share a bulletin ---------------------------------

QUEUE_MARK_EVERY = 50       # a queue worker marks its outcomes this many at a time...
QUEUE_MARK_SECONDS = 0.25   # ...or this often, and before each claim
QUEUE_CHANNELS = ("email",)   # channels whose deliveries a queue can share out: one per recipient, in-doubt resent


@dataclass
class QueueRun:
    """One worker's turn at a queued bulletin: what it did (``results``, ``reports``), how many it sent, and
    whether the bulletin is finished (no row left pending or in flight)."""

    results: list[Result]
    reports: list[DeliveryReport]
    finished: bool
    stopped: DeliveryReport | None = None

    @property
    def sent(self) -> int:
        return sum(1 for r in self.results if r.outcome is not None and r.outcome.state == "sent")


@_one_content_view
def queue(site: Site, paths: Sequence[Path], *, channels: Sequence[str], langs: Sequence[str] | None = None,
          dry_run: bool = False, console: Console | None = None, clock: Now | None = None
          ) -> list[DeliveryReport]:
    """``publish --queue``: check and render the run as ``publish`` does, then write every delivery row
    (pending; the skipped ones skipped) and one shared send job per bulletin for the workers
    (``send_queue``); send nothing."""
    from publisher.article import load_stories
    from publisher.errors import ConfigError
    from publisher.scheduler import split_embargoed, wall_clock

    if not channels or any(name not in QUEUE_CHANNELS for name in channels):
        raise ConfigError("--queue", f"only {', '.join(QUEUE_CHANNELS)} bulletins can be queued for the workers; "
                                     "add --channel email (and no other channel)")
    options = RunOptions(dry_run=dry_run, console=console)
    check_site_settings(site)
    stories = load_stories(list(paths), site)
    stories, held = split_embargoed(stories, langs or site.languages, (clock or wall_clock)())
    batch, reports = choose_versions(site, stories, langs or site.languages, options)
    chosen = channels_for(site, channels)
    validate(site, chosen, batch)                                                   # nothing written before this
    reports = schedule_held(site, held, channels, reports, dry_run=dry_run)
    for channel in chosen:
        reports += _enqueue(site, channel, batch, options)
    return reports


def _enqueue(site: Site, channel: Channel, batch: Batch, options: RunOptions) -> list[DeliveryReport]:
    """Render, then write the rows of every delivery the workers are to make (a failed one back to pending; one
    in doubt, unconfirmed or left in flight by a run that is gone, in flight: the workers take it once its lease,
    if any, has run out, and re-send it as a possible duplicate) and a send job per bulletin; one line per
    bulletin and language: how many are queued. (An ``unconfirmed`` outcome during the queue's run stays
    unconfirmed: the queue does not retry it within the run, as ``send_all`` does not.)"""
    from collections import Counter

    from publisher.scheduler import SEND, site_path, wall_clock

    locks = None if options.dry_run else channel.lock_for(batch)   # not beside a run sending it in-process
    ctx = channel_context(site, options, exclusive=bool(locks))
    ledger = site.ledger()
    with _locked(site, locks):
        renditions = channel.render_many(batch, ctx)                               # Formatter
        results: list[Result] = []
        queued: Counter[tuple[str, str]] = Counter()
        if options.dry_run:
            results = plan(site, channel, renditions, ctx)
            queued.update((r.key.article, r.key.lang) for r in results if r.decision in ("send", "resend"))
            results = [r for r in results if r.decision not in ("send", "resend")]
        else:
            marks: list[Mark] = []
            for attempt in _attempts(site, channel, renditions, ctx, results, lambda attempted=False: None):
                queued[attempt.key.article, attempt.key.lang] += 1
                state = _state(attempt.previous)
                if state == "failed":
                    marks.append((attempt.key, "pending", None, None, attempt.previous.last_error
                                  if attempt.previous else None, None))
                elif state == "unconfirmed":   # in doubt: in flight for the queue, re-sent as a possible duplicate
                    marks.append((attempt.key, "in_flight", None, None, attempt.previous.last_error
                                  if attempt.previous else None, None))
                if len(marks) >= CLAIM_BATCH:
                    ledger.mark_many(marks)
                    marks = []
            ledger.mark_many(marks)
            langs = {story.slug: list(chosen) for story, chosen in batch}
            stories = {story.slug: story for story, _ in batch}
            for article in sorted({article for article, _ in queued}):
                story = stories.get(article)
                paths = [site_path(site, a.path) for a in story.versions.values() if a.path is not None] if story else []
                site.store().jobs.schedule(SEND, f"send:{channel.name}:{article}",
                                           {"paths": paths, "langs": langs.get(article, []), "article": article,
                                            "channel": channel.name}, wall_clock())
    decided = {(r.key.article, r.key.lang) for r in results}   # lines with rows not queued (sent, skipped)
    others = {(r.article, r.lang): r for r in channel.report(results, ctx) if (r.article, r.lang) in decided}
    reports: list[DeliveryReport] = []
    where = f"recipients ({channel.destination()})"
    for rendition in renditions:
        line = (rendition.article, rendition.lang)
        count = queued[line]
        words = f"{'would queue' if options.dry_run else 'queued'} for the workers: {count} " \
                f"recipient{'s' if count != 1 else ''}"
        other = others.get(line)
        note = words + (f"; {other.note}" if other is not None and other.note else "")
        reports.append(DeliveryReport(rendition.article, rendition.lang, channel.name, where,
                                      "dry-run" if options.dry_run else "queued", note))
    return reports


@_one_content_view
def send_queue(site: Site, paths: Sequence[Path], *, article: str, channel: str = "email",
               langs: Sequence[str] | None = None, worker: str = "", batch_size: int | None = None,
               console: Console | None = None, stopping: Callable[[], bool] = lambda: False,
               clock: Callable[[], float] | None = None) -> QueueRun:
    """A worker's turn at a queued bulletin (``publish --queue``): render it as the queue did, then claim
    batches of its rows (``Ledger.claim_queued``: pending, or in flight under a lease that ran out, or none),
    send them with this worker's own connections and mark each outcome, until no row is left to claim (or
    ``stopping()``, or the channel stops the run). Other workers do the same at the same time: the claims
    never overlap, and the leases keep a live worker's rows its own."""
    import time

    from publisher.article import load_stories

    options = RunOptions(console=console, worker=worker)
    check_site_settings(site)
    ledger = site.ledger()
    left = ledger.counts(article, channel, states=("pending", "in_flight"))
    if not left["pending"]:   # a cheap look first: a worker polling a bulletin others finish renders nothing
        now = _utc((clock or time.time)())
        mine = Lease(worker or "?", now)
        if not any(not row.leased_elsewhere(mine, now)
                   for row in ledger.rows(article=article, channel=channel, state="in_flight")):
            return QueueRun([], [], finished=not left["in_flight"])
    stories = [story for story in load_stories(list(paths), site) if story.slug == article]
    batch, _ = choose_versions(site, stories, langs or site.languages, options)
    [chosen] = channels_for(site, [channel])
    validate(site, [chosen], batch)
    ctx = channel_context(site, options)          # no lock: the leases share the bulletin out
    if clock is not None:
        ctx.clock = clock
    renditions = [r for r in chosen.render_many(batch, ctx) if r.article == article]     # Formatter
    size = batch_size or int(site.config.get("WORKER_BATCH_SIZE"))
    results = _send_queued(site, chosen, renditions, ctx, article, size, stopping) if renditions else []
    left = ledger.counts(article, chosen.name, states=("pending", "in_flight"))
    stopped = _halted(chosen, results)
    return QueueRun(results, chosen.report(results, ctx) + stopped, finished=not any(left.values()),
                    stopped=stopped[0] if stopped else None)


def _send_queued(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext,
                 article: str, batch_size: int, stopping: Callable[[], bool]) -> list[Result]:
    """``send_all``'s loop over claimed batches: at most ``sender.capacity`` in flight, the lease renewed from the
    loop. The outcomes are marked together, every ``QUEUE_MARK_EVERY`` of them or ``QUEUE_MARK_SECONDS``, and
    before the next claim: the batch's rows are already in flight under this worker's lease, so a mark made a
    moment later changes nothing a crash could leave (at most the claimed batch, re-sent as possible duplicates),
    and a transaction per outcome was most of a worker's time (bench/workers.py)."""
    from collections import deque

    ledger = site.ledger()
    audience = site.subscribers()
    results: list[Result] = []
    todo: deque[Attempt] = deque()
    waiting: list[Mark] = []   # outcomes not yet marked
    marked_at = ctx.clock()

    def flush() -> None:
        nonlocal waiting, marked_at
        if waiting:   # one transaction (mark_many's), made again if the server dropped the connection in it
            done, waiting = waiting, []
            again_if_lost(lambda: ledger.mark_many(done))
        marked_at = ctx.clock()

    with _Leases(site, ctx) as leases, channel.open(renditions, ctx) as sender:
        in_flight, exhausted = 0, False
        while True:
            finished: list[tuple[Attempt, Outcome]] = []
            if in_flight and (in_flight >= sender.capacity or (exhausted and not todo)):
                finished += sender.collect(wait=True)
            finished += sender.collect(wait=False) if in_flight else []
            marks = [_mark(channel, attempt, outcome) for attempt, outcome in finished]
            halt = next((outcome for _, outcome in finished if outcome.halt), None)
            if not exhausted and (halt is not None or stopping()):
                exhausted = True   # claim nothing more; what was claimed and not sent goes back to pending
                reason = halt.error if halt is not None and halt.error else "the worker stopped"
                while todo:   # never submitted: back as they were (in doubt stays in flight, taken after the lease)
                    attempt = todo.popleft()
                    marks.append((attempt.key, "in_flight" if attempt.in_doubt else "pending", None, None,
                                  reason, None))
                    results.append(_result(attempt, Outcome.deferred(reason)))
            waiting += marks
            if not exhausted and not todo:
                flush()   # what this worker holds in flight stays within one batch
                todo.extend(_claim_queued(site, channel, renditions, ctx, leases, article, batch_size, results))
                exhausted = not todo
            if len(waiting) >= QUEUE_MARK_EVERY or ctx.clock() - marked_at >= QUEUE_MARK_SECONDS:
                flush()
            for attempt, outcome in finished:
                if outcome.bounced:
                    audience.mark_bounced(attempt.key.target, reason=outcome.error, article=attempt.key.article)
                results.append(_result(attempt, outcome))
            in_flight -= len(finished)
            while todo and in_flight < sender.capacity:
                sender.submit(todo.popleft())
                in_flight += 1
            leases.tick()
            if exhausted and not todo and not in_flight:
                flush()
                break
    return results


def _claim_queued(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext,
                  leases: _Leases, article: str, batch_size: int, results: list[Result]) -> list[Attempt]:
    """Claim the next batch of the bulletin's rows, fetch their subscribers in one go, and make each an attempt
    the way ``send_all`` would (``channel.deliveries`` for their rendition, ``decide``); a subscriber who
    unsubscribed (or stopped following the theme) since the queueing is marked skipped with a note. A batch
    that holds nobody to send to is followed by the next; [] only when nothing is left to claim."""
    while True:
        # A claim cut by a lost connection is rolled back and made again (one committed just before the loss
        # leaves its rows in flight under this worker's lease: re-sent as possible duplicates once it runs out).
        rows = again_if_lost(lambda: site.ledger().claim_queued(article, channel.name, leases.lease(), leases.now(),
                                                                batch_size))
        if not rows:
            return []
        attempts = _queued_attempts(site, channel, renditions, ctx, rows, results)
        if attempts:
            return attempts


def _queued_attempts(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext,
                     rows: Sequence[Delivery], results: list[Result]) -> list[Attempt]:
    ledger = site.ledger()
    found = site.subscribers().get_many((row.key.target for row in rows), as_stored=True)   # the targets came from the list
    claimed_ctx = replace(ctx, audience=_Claimed(list(found.values())))
    planned = {p.key: p for p in channel.deliveries(renditions, claimed_ctx)}
    attempts: list[Attempt] = []
    marks: list[Mark] = []
    for row in rows:
        one = planned.get(row.key)
        decision = decide(channel, row, one, ctx) if one is not None else "skipped"
        if one is not None and decision in ("send", "resend"):
            attempts.append(_attempt(one, row, decision, ctx))
            continue
        note = (one.skip if one is not None else None) or "not sent: unsubscribed since it was queued"
        marks.append((row.key, "skipped", None, None, note, None))
        results.append(Result(row.key, "skipped", note=note, previous_state=row.state,
                              rendition=one.rendition if one is not None else None))
    if marks:
        ledger.mark_many(marks)
    return attempts


class _Claimed:
    """The claimed batch's subscribers as the channel's audience (``Audience``): ``channel.deliveries`` plans
    exactly them, with the rules it plans the whole list by (active, following the theme, their language)."""

    def __init__(self, subscribers: list[Any]) -> None:
        self.subscribers = sorted(subscribers, key=lambda one: one.id or 0)

    def iter_active(self, *, theme: str | None = None, batch_size: int = 1000) -> Iterator[Any]:
        return (one for one in self.subscribers if one.status == "active" and one.follows(theme))

    def count(self, *, status: str | None = None, lang: str | None = None, theme: str | None = None) -> int:
        return sum(1 for one in self.subscribers if (status is None or one.status == status)
                   and (lang is None or one.lang == lang) and one.follows(theme))


def _halted(channel: Channel, results: Sequence[Result],
            retry: tuple[Site, Batch, datetime | None] | None = None) -> list[DeliveryReport]:
    """One line for a run a channel stopped (``Outcome.halt``): why, and that the rest is left pending; with
    ``retry`` (the site, the batch and now), the retry jobs that send the rest (``_schedule_retries``) and when
    they run."""
    halting = [r.outcome for r in results if r.outcome is not None and r.outcome.halt]
    if not halting:
        return []
    resets = [outcome.retry_at for outcome in halting if outcome.retry_at is not None]
    retry_at = max(resets) if resets else None   # accounts limited until different times: the latest
    waiting = sum(1 for r in results if r.outcome is not None and r.outcome.state == "pending")
    then = "run publish again later"
    if retry is not None and retry[2] is not None:
        then = _schedule_retries(retry[0], channel, retry[1], results, retry[2], retry_at) or then
    return [DeliveryReport("-", "-", channel.name, channel.destination(), "stopped",
                           f"{halting[0].error}; the run stopped and every delivery not yet made is left pending "
                           f"({waiting} returned unsent): {then}", retry_at=retry_at)]


# --- a stopped run, retried by the worker ---------------------------------------------------------------------


def _schedule_retries(site: Site, channel: Channel, batch: Batch, results: Sequence[Result], now: datetime,
                      retry_at: datetime | None) -> str:
    """A retry job (``scheduler.schedule_retry``) for each story of ``batch`` the stopped channel left unsent,
    due when the platform said (``retry_at``) or after the backoff; what the stopped line says ("" if none)."""
    from publisher.scheduler import PUBLISH, RetryPolicy, retry_key, schedule_retry, show_time

    reached = {r.key.article for r in results}
    ledger = site.ledger()
    unsent = [(story, langs) for story, langs in batch
              if story.slug not in reached   # never reached: nothing of it was tried
              or ledger.counts(story.slug, channel.name, states=["pending"])["pending"]]
    if not unsent:
        return ""
    policy = RetryPolicy.of(site)
    tries = {job.key: job.attempts for job in site.store().jobs.list(["pending", "overdue"], kind=PUBLISH)}
    jobs = []
    for story, langs in unsent:
        # the backoff goes on doubling from the tries the worker already made of an open retry job
        attempts = tries.get(retry_key(story.slug, channel.name), 0) + 1
        made = schedule_retry(site, story, langs, channel.name, policy.due(now, retry_at, attempts))
        if made is not None:
            jobs.append(made[0])
    if not jobs:
        return ""
    due = max(job.due_at for job in jobs)
    ids = ", ".join(str(job.id) for job in jobs[:3]) + (f" and {len(jobs) - 3} more" if len(jobs) > 3 else "")
    return f"the worker retries at {show_time(due, site.timezone)} (job{'s' if len(jobs) > 1 else ''} {ids})"


def _attempts(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext,
              results: Results | list[Result], advance: Any) -> Iterator[Attempt]:
    """The attempts to make, in plan order, decided from the ledger one batch of planned deliveries at a time;
    every other decision becomes a result (and a ``skipped`` row) at once."""
    ledger = site.ledger()
    for batch in iter_batches(channel.deliveries(renditions, ctx), CLAIM_BATCH):
        keys = [planned.key for planned in batch]
        again_if_lost(lambda: ledger.ensure_pending(keys))
        rows = ledger.get_many(keys)
        chosen: list[Attempt] = []
        newly_skipped: list[Mark] = []
        for planned in batch:
            row = rows.get(planned.key)
            decision = decide(channel, row, planned, ctx)
            if decision in ("send", "resend", "verify"):
                attempt = _attempt(planned, row, decision, ctx)
                note = ""
                if decision == "verify":
                    found_attempt, note, failure, done = _verify(channel, attempt, ctx)
                    if found_attempt is None:
                        results.append(Result(planned.key, "in_doubt", note=failure, previous_state=_state(row),
                                              rendition=planned.rendition))
                        advance()
                        continue
                    attempt = replace(found_attempt, note=note)
                    if done is not None:   # found whole on the platform: nothing left to send
                        ledger.mark_many([_mark(channel, attempt, done)])
                        results.append(_result(attempt, done))
                        advance()
                        continue
                chosen.append(attempt)
                continue
            if decision == "skipped" and _state(row) != "skipped":
                newly_skipped.append((planned.key, "skipped", None, None, planned.skip or "nothing to send", None))
            results.append(Result(planned.key, decision, note=planned.skip or channel.notes.get(decision, ""),
                                  previous_state=_state(row), previous_url=row.remote_url if row else None,
                                  rendition=planned.rendition))
            advance()
        if newly_skipped:
            with ledger.transaction():
                ledger.mark_many(newly_skipped)
        yield from chosen


def _attempt(planned: Planned, row: Delivery | None, decision: Decision, ctx: ChannelContext) -> Attempt:
    assert planned.rendition is not None
    state = _state(row)
    generation = int(row.detail.get("generation", 0)) if row is not None else 0
    fresh = ctx.force and state in ("sent", "unconfirmed", "in_flight")   # a deliberate re-send
    progress = {} if fresh or row is None else dict(row.detail)
    return Attempt(planned.key, planned.rendition, planned.recipient, row, in_doubt=decision in ("resend", "verify"),
                   force=ctx.force, generation=generation + 1 if fresh else generation, progress=progress)


def _verify(channel: Channel, attempt: Attempt, ctx: ChannelContext
            ) -> tuple[Attempt | None, str, str, Outcome | None]:
    """Look for a delivery left in doubt before sending it again: (attempt to make, note, why not, the outcome
    when it was found whole)."""
    try:
        found = channel.find_existing(attempt, ctx)
    except LookupUnsupported:
        return attempt, "posted again at your request (the platform cannot list recent posts)", "", None
    except LookupFailed as exc:
        return None, "", f"could not check recent posts: {exc}", None
    if found is None:
        return attempt, "not found among recent posts, so posted", "", None
    return attempt.resumed(found.progress), found.note, "", found.done


def _mark(channel: Channel, attempt: Attempt, outcome: Outcome) -> Mark:
    """The ledger row an outcome becomes."""
    detail = dict(outcome.detail) if outcome.detail is not None else None
    if attempt.in_doubt and channel.in_doubt == "resend":   # re-sent after an interruption
        outcome.possible_duplicate = True
    if outcome.possible_duplicate:
        detail = {**(detail or {}), "possible_duplicate": True}
    if outcome.state == "failed":
        detail = {**(detail or {}), "permanent": outcome.permanent}
    error = None if outcome.state == "sent" else outcome.error
    return attempt.key, outcome.state, outcome.remote_id, outcome.remote_url, error, detail


def _result(attempt: Attempt, outcome: Outcome) -> Result:
    previous = attempt.previous
    return Result(attempt.key, "resend" if attempt.in_doubt else "send", outcome, note=attempt.note,
                  previous_state=_state(previous), previous_url=previous.remote_url if previous else None,
                  rendition=attempt.rendition)


def _conflict(attempt: Attempt, now: Delivery | None) -> Result:
    """Another run claimed or finished this delivery between our read and our claim: never send beside it."""
    if now is not None and now.state == "sent":
        return Result(attempt.key, "already_sent", note="already sent by another run", previous_state="sent",
                      previous_url=now.remote_url, rendition=attempt.rendition)
    if now is not None and now.state == "in_flight" and now.worker:
        return Result(attempt.key, "leased", note="another worker is sending it", previous_state="in_flight",
                      rendition=attempt.rendition)
    return Result(attempt.key, "in_doubt", note="another publish run is sending this right now",
                  previous_state=_state(now), rendition=attempt.rendition)


def _state(row: Delivery | None) -> str:
    return row.state if row is not None else "pending"


RATE_MIN_MESSAGES = 20    # a rate over fewer deliveries, or
RATE_MIN_SECONDS = 1.0    # a shorter time, says nothing ("36,193 msg/s" for 4 rows already done)


def rate_text(count: int, seconds: float) -> str:
    """The progress bar's rate: deliveries attempted per second, once there are enough of them over long
    enough for the figure to mean something; else nothing."""
    if count < RATE_MIN_MESSAGES or seconds < RATE_MIN_SECONDS:
        return ""
    rate = count / seconds
    return f"{rate:,.1f} msg/s" if rate < 10 else f"{rate:,.0f} msg/s"


@contextmanager
def _progress(channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext,
              clock: Any = None) -> Iterator[Any]:
    """A rich progress bar with rate and time left on the run's console for channels that send many
    deliveries (``Channel.progress``); silent otherwise.

    The bar appears with the first delivery actually attempted (``advance(attempted=True)``), counting what
    was decided before it (already sent, skipped) as done: a re-run that sends nothing shows no bar. Its rate
    counts attempts only, from the first one (``rate_text``)."""
    import time

    total = channel.expected(renditions, ctx) if ctx.console is not None and channel.progress else 0
    if not total:
        yield lambda attempted=False: None
        return
    now = clock or time.monotonic
    counts = {"done": 0, "attempted": 0}
    started: list[float] = []
    shown: list[Any] = []   # the bar and its task, once there is one

    def advance(attempted: bool = False) -> None:
        counts["done"] += 1
        if attempted:
            counts["attempted"] += 1
            if not started:
                started.append(now())
        if not shown:
            if not attempted:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(TextColumn(f"[bold]{channel.name}[/] {{task.description}}"), BarColumn(),
                           MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                           console=ctx.console, transient=False)
            task = bar.add_task(channel.destination(), total=total, completed=counts["done"] - 1, rate="")
            bar.start()
            shown.extend((bar, task))
        bar, task = shown
        bar.update(task, advance=1, rate=rate_text(counts["attempted"], now() - started[0]) if started else "")

    try:
        yield advance
    finally:
        if shown:
            shown[0].stop()


__all__ = ["QueueRun", "RunOptions", "bulletin", "channel_context", "channels_for", "choose_versions", "decide",
           "deliver", "plan", "preview", "publish", "queue", "send_all", "send_queue", "worker_id"]

