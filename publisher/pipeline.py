"""The whole pipeline in one place: Article -> Translator -> Formatter -> Channel -> Ledger.

``publish()`` reads top to bottom as the story of a run: load the articles, choose the versions that may go out
(translating missing ones), then for each channel render, plan the deliveries, claim each in the ledger, send it
and mark what happened. Channels render and send; only this module claims and marks, so the "never twice" rule
is written once, for email (one delivery per recipient, in batches), feeds and social posts alike:

* a row ``sent`` is not sent again unless ``--force`` (or the channel is ``idempotent``: feed files);
* a row is claimed (``in_flight``, committed) before ``send`` and marked only with the outcome ``send`` gave;
* at most ``Sender.capacity`` rows are in flight at once, so a crash leaves at most that many in doubt;
* a row left in doubt is re-sent by ``in_doubt = "resend"`` channels (reported as a possible duplicate) and
  never blindly by ``"verify"`` channels: only under ``--retry-unconfirmed``, after ``find_existing``;
* a permanent failure is not retried without ``--force``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.channels.base import Channel, ChannelContext, Decision, Result, iter_batches
from publisher.delivery import (Attempt, Delivery, DeliveryReport, LockRequest, LookupFailed,
                                LookupUnsupported, Outcome, Planned, Rendition)

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.article import Story
    from publisher.channels.feeds import BuildResult
    from publisher.scheduler import Held, Now
    from publisher.site import Site
    from publisher.store import Mark

CLAIM_BATCH = 500
Batch = list[tuple["Story", Sequence[str]]]


@dataclass(frozen=True)
class RunOptions:
    """The options of one run, as ``publish`` and ``bulletin`` take them."""

    force: bool = False
    dry_run: bool = False
    retry_unconfirmed: bool = False
    console: Console | None = None


# --- the story of a run ---------------------------------------------------------------------------------------


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
) -> list[DeliveryReport]:
    """Publish the articles at ``paths`` through ``channels`` (default: all) in ``langs`` (default: the site's).

    A version whose ``publish_at`` is still ahead (by ``clock``) is not sent: it gets a job that the worker
    runs at that time, and a "scheduled for" line.
    """
    from publisher.article import load_stories
    from publisher.scheduler import split_embargoed, wall_clock

    options = RunOptions(force, dry_run, retry_unconfirmed, console)
    check_site_settings(site)
    stories = load_stories(list(paths), site)                                     # Article
    stories, held = split_embargoed(stories, langs or site.languages, (clock or wall_clock)())   # publish_at
    batch, reports = choose_versions(site, stories, langs or site.languages, options)  # Translator
    chosen = channels_for(site, channels)
    validate(site, chosen, batch)                                                   # nothing written before this
    reports = schedule_held(site, held, channels, reports, dry_run=dry_run)        # -> the worker, later
    for channel in chosen:
        reports += deliver(site, channel, batch, options)                          # Formatter -> Channel -> Ledger
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
            renditions: list[Rendition] | None = None) -> list[DeliveryReport]:
    """One channel's part of a run: render, then claim, send and mark every delivery (``renditions`` given:
    already rendered, as a digest is)."""
    ctx = channel_context(site, options)
    with _locked(site, None if options.dry_run else channel.lock_for(batch)):
        if renditions is None:
            renditions = channel.render_many(batch, ctx)                           # Formatter
        if options.dry_run:
            return _would_send(channel, renditions)
        results = send_all(site, channel, renditions, ctx)                         # Channel -> Ledger
    return channel.report(results, ctx) + _halted(channel, results)


def bulletin(site: Site, *, since: datetime, theme: str | None = None, langs: Sequence[str] | None = None,
             force: bool = False, dry_run: bool = False, console: Console | None = None,
             clock: Now | None = None) -> tuple[list[DeliveryReport], list[Rendition], list[DeliveryReport]]:
    """A digest of the articles dated ``since`` or later (on ``theme``) to every subscriber, through the same
    claim, send and mark as ``publish``. Returns the email reports, the digest renditions and the notes of
    versions left out. Versions still under embargo (``publish_at``) are left out."""
    from publisher.channels.email import EmailChannel
    from publisher.errors import NotFound
    from publisher.scheduler import split_embargoed, wall_clock

    options = RunOptions(force, dry_run, False, console)
    check_site_settings(site)
    wanted = list(langs or site.languages)
    stories = [story for story in site.articles().stories.values()
               if story.original.date >= since and (theme is None or story.original.theme_slug == theme)]
    stories, _ = split_embargoed(stories, wanted, (clock or wall_clock)())
    batch, notes = choose_versions(site, stories, wanted, options)                 # Translator
    if not batch:
        raise NotFound(f"no articles dated {since:%Y-%m-%d} or later" + (f" on the theme {theme!r}" if theme else ""))
    channel = EmailChannel(site)
    validate(site, [channel], [])                                                   # its settings, before any mail
    originals = {story.slug: story.original for story in stories if any(s.slug == story.slug for s, _ in batch)}
    renditions = channel.render_digest(batch, since=since, theme=theme, langs=wanted,
                                       originals=originals)                        # Formatter
    if dry_run:
        ctx = channel_context(site, options)
        return channel.report(plan(site, channel, renditions, ctx), ctx), renditions, notes
    return deliver(site, channel, batch, options, renditions), renditions, notes   # Channel -> Ledger


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


def channel_context(site: Site, options: RunOptions) -> ChannelContext:
    """What a channel may use in a run: the options, and storage through the protocols of publisher.delivery."""
    ledger = site.ledger()

    def checkpoint(attempt: Attempt, progress: dict[str, Any]) -> None:
        ledger.mark(attempt.key, "in_flight", detail=progress)

    return ChannelContext(force=options.force, dry_run=options.dry_run,
                          retry_unconfirmed=options.retry_unconfirmed, audience=site.subscribers(),
                          published=ledger, cache=site.feed_cache(),
                          console=options.console, checkpoint=checkpoint)


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


def _would_send(channel: Channel, renditions: list[Rendition]) -> list[DeliveryReport]:
    where = channel.destination()
    return [DeliveryReport(r.article, r.lang, r.channel, f"{r.target} ({where})", "dry-run", r.filename)
            for r in renditions]


def decide(channel: Channel, row: Delivery | None, planned: Planned, ctx: ChannelContext) -> Decision:
    """What to do with one planned delivery, from its ledger row: the rule in the module docstring."""
    state = row.state if row is not None else "pending"
    if state == "sent" and not ctx.force and not channel.idempotent:
        return "already_sent"
    if planned.skip is not None or planned.rendition is None:
        return "skipped"
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
            decision = decide(channel, rows.get(planned.key), planned, ctx)
            results.append(Result(planned.key, decision, note="dry run", rendition=planned.rendition))
    return results


def send_all(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext) -> list[Result]:
    """Claim, send and mark every delivery the renditions make, at most ``sender.capacity`` in flight.

    The outcomes that arrived together and the attempts about to start are written in one transaction, so a
    commit carries several deliveries (bulk email), and each attempt is claimed before it is submitted.
    """
    ledger = site.ledger()
    audience = site.subscribers()
    results: list[Result] = []
    with channel.open(renditions, ctx) as sender, _progress(channel, renditions, ctx) as advance:
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
            if not finished and not starting:
                break
            with ledger.transaction():
                ledger.mark_many([_mark(channel, attempt, outcome) for attempt, outcome in finished])
                now = ledger.get_many([a.key for a in starting])
                claimed = [a for a in starting if _state(now.get(a.key)) == _state(a.previous)]
                ledger.begin_many([a.key for a in claimed])
            for attempt, outcome in finished:
                if outcome.bounced:
                    audience.mark_bounced(attempt.key.target, reason=outcome.error, article=attempt.key.article)
                results.append(_result(attempt, outcome))
                advance()
            in_flight -= len(finished)
            claimed_now = {id(a) for a in claimed}   # by identity: `in` a list compares every field, n x n
            for attempt in starting:
                if id(attempt) not in claimed_now:   # another run changed the row between our read and the claim
                    results.append(_conflict(attempt, now.get(attempt.key)))
                    advance()
            for attempt in claimed:
                sender.submit(attempt)
                in_flight += 1
    return results


def _halted(channel: Channel, results: Sequence[Result]) -> list[DeliveryReport]:
    """One line for a run a channel stopped (``Outcome.halt``): why, and that the rest is left pending."""
    reason = next((r.outcome.error for r in results if r.outcome is not None and r.outcome.halt), None)
    if reason is None:
        return []
    waiting = sum(1 for r in results if r.outcome is not None and r.outcome.state == "pending")
    return [DeliveryReport("-", "-", channel.name, channel.destination(), "stopped",
                           f"{reason}; the run stopped and every delivery not yet made is left pending "
                           f"({waiting} returned unsent): run publish again later")]


def _attempts(site: Site, channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext,
              results: list[Result], advance: Any) -> Iterator[Attempt]:
    """The attempts to make, in plan order, decided from the ledger one batch of planned deliveries at a time;
    every other decision becomes a result (and a ``skipped`` row) at once."""
    ledger = site.ledger()
    for batch in iter_batches(channel.deliveries(renditions, ctx), CLAIM_BATCH):
        keys = [planned.key for planned in batch]
        ledger.ensure_pending(keys)
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
    return Result(attempt.key, "in_doubt", note="another publish run is sending this right now",
                  previous_state=_state(now), rendition=attempt.rendition)


def _state(row: Delivery | None) -> str:
    return row.state if row is not None else "pending"


@contextmanager
def _progress(channel: Channel, renditions: Sequence[Rendition], ctx: ChannelContext) -> Iterator[Any]:
    """A rich progress bar with rate and time left on the run's console for channels that send many
    deliveries (``Channel.progress``); silent otherwise."""
    total = channel.expected(renditions, ctx) if ctx.console is not None and channel.progress else 0
    if not total:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(f"[bold]{channel.name}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=ctx.console, transient=False)
    task = bar.add_task(channel.destination(), total=total, rate="")

    def advance() -> None:
        speed = bar.tasks[0].speed
        bar.update(task, advance=1, rate=f"{speed:,.0f}/s" if speed else "")

    bar.start()
    try:
        yield advance
    finally:
        bar.stop()


__all__ = ["RunOptions", "bulletin", "channel_context", "channels_for", "choose_versions", "decide", "deliver",
           "plan", "preview", "publish", "send_all"]

