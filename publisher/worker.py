"""``publisher worker``: run the jobs that are due (scheduled publishes, digests, retries) through the pipeline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher import scheduler
from publisher.errors import ConnectionLost, DatabaseUnreachable, NotFound, PublisherError

if TYPE_CHECKING:
    from rich.console import Console

    from publisher.delivery import DeliveryReport
    from publisher.site import Site
    from publisher.store.interfaces import Job, Jobs

ONE_OFF = (scheduler.PUBLISH,)   # a publish --at, a publish_at, a deferred retry: they run once and are gone
# What a reader sees: sent hours late it should be a person's choice. Housekeeping just runs late.
HELD_WHEN_LATE = (scheduler.PUBLISH, scheduler.DIGEST)
PROCESS_BOUNCES = "process_bounces"   # issue 13: `publisher bounces process` every BOUNCE_INTERVAL minutes
# The jobs one worker claims and runs alone; a queued bulletin (scheduler.SEND) is shared by every worker instead.
CLAIMED = (scheduler.PUBLISH, scheduler.DIGEST, scheduler.RETRY_UNCONFIRMED, scheduler.PURGE_PENDING, PROCESS_BOUNCES)
SHARED = (scheduler.SEND,)


@dataclass
class JobRun:
    """What the worker did with one job: ``done``, ``failed``, ``retry`` (deferred: due again later),
    ``released`` (given back on SIGTERM), ``lost`` (another worker took the job over) or, for a queued
    bulletin shared by the workers, ``shared`` (this worker's part done, others still sending); ``sent``: how
    many deliveries this worker sent."""

    job: Job
    outcome: str
    note: str = ""
    reports: list[DeliveryReport] = field(default_factory=list)
    retry_at: datetime | None = None   # ``retry``: when the platform said it takes requests again, if it said
    sent: int = 0


def digest_schedule(site: Site) -> str:
    """``BULLETIN_DIGEST_SCHEDULE`` (a checked cron expression), or "" for none."""
    value: str = site.config.get("BULLETIN_DIGEST_SCHEDULE")
    return value


def digest_id(firing: datetime | None, site: Site) -> str | None:
    """The ledger id of the digest of one firing: ``digest-2026-12-07-0900`` (the firing in the site's zone), so
    a schedule firing twice a day makes two digests. None for a job planned before firings had ids (no
    ``firing`` in its payload): it keeps the per-day id ``digest-<since's date>`` it may have half sent under,
    so an upgrade never sends that digest again to the readers who had it."""
    return None if firing is None else f"digest-{firing.astimezone(site.timezone):%Y-%m-%d-%H%M}"


def next_digest(expression: str, after: datetime, site: Site) -> tuple[datetime, datetime]:
    """The first time ``expression`` fires after ``after`` (in the site's zone), and the time it fired before."""
    from croniter import croniter

    local = after.astimezone(site.timezone)
    upcoming: datetime = croniter(expression, local).get_next(datetime)
    previous: datetime = croniter(expression, upcoming).get_prev(datetime)
    return upcoming, previous


class Worker:
    """Claims due jobs with a lease, runs each through ``publisher.pipeline`` and records how it ended.

    ``clock`` and ``sleep`` are injected (tests drive a fake clock); ``stop()`` (SIGTERM) lets the job in hand
    finish and claims nothing more. A job whose worker was killed is taken over when its lease runs out, and
    the ledger makes the second run skip every delivery the first one made.
    """

    def __init__(self, site: Site, *, clock: scheduler.Now = scheduler.wall_clock,
                 sleep: Callable[[float], None] | None = None, owner: str | None = None,
                 lease: timedelta | None = None, poll: float | None = None, console: Console | None = None,
                 batch_size: int | None = None) -> None:
        from publisher.pipeline import worker_id

        self.site = site
        self.clock = clock
        self.stopping = threading.Event()
        self.sleep = sleep or self._wait
        self.owner = owner or worker_id()
        # WORKER_LEASE_SECONDS and WORKER_POLL_SECONDS unless given (the command's --lease and --poll)
        self.lease = lease if lease is not None else timedelta(seconds=float(site.config.get("WORKER_LEASE_SECONDS")))
        self.poll = poll if poll is not None else float(site.config.get("WORKER_POLL_SECONDS"))
        self.batch_size = batch_size or int(site.config.get("WORKER_BATCH_SIZE"))
        self.console = console
        self.max_late: timedelta | None = site.config.get("SCHEDULE_MAX_LATE") or None
        self.retry = scheduler.RetryPolicy.of(site)
        self.digests = digest_schedule(site)   # read now: a bad expression stops the worker at start

    def _wait(self, seconds: float) -> None:
        self.stopping.wait(seconds)   # SIGTERM ends the wait at once

    @property
    def jobs(self) -> Jobs:
        return self.site.store().jobs

    def stop(self) -> None:
        """Finish the job in hand, then return (SIGTERM)."""
        self.stopping.set()

    # --- the loop ---------------------------------------------------------------------------------------

    def run(self, *, once: bool = False, until_idle: bool = False) -> list[JobRun]:
        """Run due jobs; ``once``: what is due now, then return; ``until_idle``: until no scheduled publish is
        waiting (the recurring digest and housekeeping always are)."""
        runs: list[JobRun] = []
        while not self.stopping.is_set():
            try:
                self.plan_recurring()
                runs += self.run_due()
                runs += self.run_shared()
                if once or self.stopping.is_set():
                    break
                if until_idle and self.jobs.next_due(ONE_OFF) is None and not self._shared_jobs():
                    break   # recurring jobs never run out; a queued bulletin does
                upcoming = self.jobs.next_due(CLAIMED)
            except ConnectionLost:   # the server restarted under a claim (rolled back): look again, reconnected
                continue
            wait = self.poll if upcoming is None else (upcoming - self.clock()).total_seconds()
            self.sleep(min(max(wait, 0.05), self.poll))
        return runs

    def run_due(self) -> list[JobRun]:
        """Claim and run every job due now, one at a time."""
        runs: list[JobRun] = []
        while not self.stopping.is_set():
            job = self.jobs.claim(self.owner, self.clock(), self.lease, max_late=self.max_late, hold=HELD_WHEN_LATE,
                                  kinds=CLAIMED)
            if job is None:
                break
            runs.append(self.run_job(job))
            if job.kind != scheduler.PUBLISH:
                self.plan_recurring(just_ran=job.kind)   # the next one is due from this one
        return runs

    def run_shared(self) -> list[JobRun]:
        """Join every queued bulletin (``publish --queue``) that is due and has work left: claim batches of its
        rows and send them beside the other workers (``pipeline.send_queue``). A bulletin whose only rows left
        are in other workers' hands is left to them: this worker looks again at its next poll."""
        runs: list[JobRun] = []
        for job in self._shared_jobs():
            if self.stopping.is_set():
                break
            if job.due_at <= self.clock():
                run = self._share(job)
                if run.sent or run.outcome != "shared":   # a look that found only others' rows is no run
                    runs.append(run)
        return runs

    def _shared_jobs(self) -> list[Job]:
        return [job for kind in SHARED for job in self.jobs.list(["pending"], kind=kind)]

    def _share(self, job: Job) -> JobRun:
        import time

        from publisher import pipeline

        paths = [self.site.root / Path(p) for p in job.payload.get("paths", [])]
        looked = [time.monotonic(), False]

        def stopping() -> bool:
            """SIGTERM, or the job cancelled (``schedule cancel``): looked up once per poll interval."""
            if self.stopping.is_set():
                return True
            if time.monotonic() - looked[0] >= self.poll:
                now = self.jobs.get(job.id)
                looked[:] = [time.monotonic(), now is None or now.state != "pending"]
            return bool(looked[1])

        def turn_at_it() -> pipeline.QueueRun:
            return pipeline.send_queue(self.site, paths, article=str(job.payload["article"]),
                                       channel=str(job.payload.get("channel", "email")),
                                       langs=job.payload.get("langs") or None, worker=self.owner,
                                       batch_size=self.batch_size, console=self.console, stopping=stopping)

        try:
            # A turn cut by a lost connection (a PostgreSQL restart) is taken again at once; a database that
            # stays away (DatabaseUnreachable) stops the worker with its one line, as in a claimed job.
            turn = pipeline.again_if_lost(turn_at_it)
        except DatabaseUnreachable:
            raise
        except Exception as exc:   # the content, the settings, a bug: said, and tried again after the backoff
            problem = str(exc) if isinstance(exc, PublisherError) else f"internal error: {type(exc).__name__}: {exc}"
            due = self.retry.due(self.clock(), None, job.attempts + 1)
            try:
                self.jobs.schedule(job.kind, job.key, job.payload, due)
            except PublisherError:   # the database itself is away: the job stays due, the next poll tries again
                due = self.clock()
            run = JobRun(job, "failed", f"{problem}; tried again at {scheduler.show_time(due, self.site.timezone)}")
            self._say(run)
            return run
        mine = f"{turn.sent} sent by this worker ({self.owner})"
        now = self.jobs.get(job.id)
        if now is not None and now.state == "cancelled":
            run = JobRun(job, "released", f"{mine}; the job was cancelled: the rest is left pending", turn.reports,
                         sent=turn.sent)
        elif turn.stopped is not None:   # the channel stopped the run (a quota, a server down): all wait, later
            due = self.retry.due(self.clock(), turn.stopped.retry_at, job.attempts + 1)
            self.jobs.schedule(job.kind, job.key, job.payload, due)
            run = JobRun(job, "retry", f"{mine}; {turn.stopped.note.split(';')[0]}; tried again at "
                                       f"{scheduler.show_time(due, self.site.timezone)}", turn.reports,
                         turn.stopped.retry_at, sent=turn.sent)
        elif turn.finished:
            self.jobs.finish_shared(job.id)   # False: another worker saw it finished first
            run = JobRun(job, "done", f"{mine}; the bulletin is finished", turn.reports, sent=turn.sent)
        else:
            run = JobRun(job, "shared", f"{mine}; other workers are sending the rest", turn.reports, sent=turn.sent)
        if run.sent or run.outcome != "shared":
            self._say(run)
        return run

    def plan_recurring(self, just_ran: str | None = None) -> None:
        """Keep one pending job for each recurring task the settings ask for (the next digest...); the task
        ``just_ran`` is next due one period from now."""
        now = self.clock()
        if self.digests and not self.jobs.list(["pending", "running", "overdue"], kind=scheduler.DIGEST):
            last = self.jobs.last_done(scheduler.DIGEST)
            due, previous = next_digest(self.digests, last.due_at if last is not None else now, self.site)
            since = last.due_at if last is not None else previous
            tz = self.site.timezone
            self.jobs.schedule(scheduler.DIGEST, f"digest:{self.digests}",
                               {"since": since.astimezone(tz).isoformat(), "firing": due.astimezone(tz).isoformat()},
                               due)
        for kind, name in ((scheduler.RETRY_UNCONFIRMED, "SCHEDULE_RETRY_UNCONFIRMED_EVERY"),
                           (scheduler.PURGE_PENDING, "SCHEDULE_PURGE_PENDING_EVERY")):
            every: timedelta | None = self.site.config.get(name)
            if every and not self.jobs.list(["pending", "running", "overdue"], kind=kind):
                last = self.jobs.last_done(kind)
                # housekeeping is never held as overdue: after a pause it simply runs now
                due = now + every if kind == just_ran else now if last is None else max(last.due_at + every, now)
                self.jobs.schedule(kind, kind, {"every": every.total_seconds()}, due)
        bounce_every = self._bounce_interval()
        if bounce_every and not self.jobs.list(["pending", "running", "overdue"], kind=PROCESS_BOUNCES):
            last = self.jobs.last_done(PROCESS_BOUNCES)
            due = now + bounce_every if just_ran == PROCESS_BOUNCES else now if last is None \
                else max(last.due_at + bounce_every, now)
            self.jobs.schedule(PROCESS_BOUNCES, PROCESS_BOUNCES, {"every": bounce_every.total_seconds()}, due)

    def _bounce_interval(self) -> timedelta | None:
        """BOUNCE_INTERVAL when a bounce mailbox is configured (BOUNCE_MAILDIR or BOUNCE_IMAP_HOST), else None."""
        from publisher.bounces.settings import BOUNCE_IMAP_HOST, BOUNCE_INTERVAL, BOUNCE_MAILDIR

        config = self.site.config
        if not (config.get(BOUNCE_MAILDIR) or config.get(BOUNCE_IMAP_HOST)):
            return None
        minutes = int(config.get(BOUNCE_INTERVAL))
        return timedelta(minutes=minutes) if minutes else None

    def run_job(self, job: Job) -> JobRun:
        """Run one claimed job, renewing its lease meanwhile, and record how it ended."""
        if self.stopping.is_set():
            self.jobs.release(job.id, self.owner)
            return JobRun(job, "released", "the worker was asked to stop before it started")
        from publisher.pipeline import again_if_lost

        with _LeaseKeeper(self, job):
            run = self._run_resuming(job)
        if run.outcome == "retry":   # at the platform's reset time when it gave one, else after the backoff
            due = self.retry.due(self.clock(), run.retry_at, job.attempts)
            kept = again_if_lost(lambda: self.jobs.retry(job.id, self.owner, due, run.note))
            run.note = f"{run.note}; tried again at {scheduler.show_time(due, self.site.timezone)}"
        else:
            kept = again_if_lost(lambda: self.jobs.finish(job.id, self.owner,
                                                          error=run.note if run.outcome == "failed" else None))
        if not kept:
            run.outcome, run.note = "lost", "its lease ran out and another worker took it over"
        self._say(run)
        return run

    def _run_resuming(self, job: Job) -> JobRun:
        """Run the job; when the database server dropped the connection mid-run (a restart: ``ConnectionLost``)
        run it again, as the same owner: the ledger skips every delivery already made, the ones in flight are
        sent again flagged as possible duplicates. A server that stays away (``DatabaseUnreachable``) stops
        the worker with that one line; the job's lease then runs out and any worker takes it over."""
        from publisher.pipeline import LOST_RETRIES

        for resumed in range(LOST_RETRIES + 1):
            try:
                run = self._dispatch(job)
            except ConnectionLost as exc:
                if resumed < LOST_RETRIES:
                    self._note(f"job {job.id}: {exc}; resuming it")
                    continue
                run = JobRun(job, "failed", str(exc))
            except DatabaseUnreachable:
                raise
            except PublisherError as exc:
                run = JobRun(job, "failed", str(exc))
            except Exception as exc:   # a bug in one job must not stop the worker; the job says what it was
                run = JobRun(job, "failed", f"internal error: {type(exc).__name__}: {exc}")
            if resumed:
                run.note = "; ".join(part for part in (run.note, f"resumed {resumed} time(s) after the database "
                                                                 "connection was lost") if part)
            return run
        raise AssertionError("unreachable")   # the loop always returns

    def _note(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, style="yellow", markup=False)

    # --- the kinds of job -------------------------------------------------------------------------------

    def _dispatch(self, job: Job) -> JobRun:
        if job.kind == scheduler.PUBLISH:
            return self._publish(job)
        if job.kind == scheduler.DIGEST:
            return self._digest(job)
        if job.kind == scheduler.RETRY_UNCONFIRMED:
            return self._retry_unconfirmed(job)
        if job.kind == scheduler.PURGE_PENDING:
            return self._purge_pending(job)
        if job.kind == PROCESS_BOUNCES:
            return self._process_bounces(job)
        return JobRun(job, "failed", f"unknown job kind {job.kind!r}")

    def _publish(self, job: Job, *, retry_unconfirmed: bool = False) -> JobRun:
        from publisher import pipeline

        channels, waiting = self._in_window(job)
        if not channels:
            return JobRun(job, "done", waiting)
        paths = [self.site.root / Path(p) for p in job.payload.get("paths", [])]
        reports = pipeline.publish(self.site, paths, channels=channels or None,
                                   langs=job.payload.get("langs") or None, console=self.console, clock=self.clock,
                                   worker=self.owner,
                                   retry_unconfirmed=retry_unconfirmed or bool(job.payload.get("retry_unconfirmed")),
                                   retry_jobs=False)   # a stop retries this job (run_job), not a second one
        run = _judged(job, reports)
        run.note = "; ".join(part for part in (run.note, waiting) if part)
        return run

    def _in_window(self, job: Job) -> tuple[list[str] | None, str]:
        """The job's channels whose send window (``SCHEDULE_SEND_WINDOWS``) is open now (None: every channel,
        no window in the way), and a note; each closed channel's part becomes a job due at its next opening."""
        windows: dict[str, Any] = self.site.config.get("SCHEDULE_SEND_WINDOWS") or {}
        named: list[str] = list(job.payload.get("channels") or [])
        if not windows or (named and not set(named) & set(windows)):
            return named or None, ""
        if not named:
            from publisher.channels.registry import channel_names

            named = list(channel_names())
        now, tz = self.clock(), self.site.timezone
        closed = [name for name in named if name in windows and not scheduler.window_open(windows[name], now, tz)]
        if not closed:
            return named if job.payload.get("channels") else None, ""
        later: dict[datetime, list[str]] = {}
        for name in closed:
            later.setdefault(scheduler.next_opening(windows[name], now, tz), []).append(name)
        for opening, names in sorted(later.items()):
            scheduler.schedule_publish(self.site, job.payload.get("paths", []), opening, channels=sorted(names),
                                       langs=job.payload.get("langs") or None)
        note = "; ".join(f"{','.join(names)} waits for its send window ({scheduler.show_time(opening, tz)})"
                         for opening, names in sorted(later.items()))
        return [name for name in named if name not in closed], note

    def _digest(self, job: Job) -> JobRun:
        from publisher import pipeline

        since = datetime.fromisoformat(job.payload["since"])
        firing = datetime.fromisoformat(job.payload["firing"]) if job.payload.get("firing") else None
        try:
            reports, _, _ = pipeline.bulletin(self.site, since=since, console=self.console, clock=self.clock,
                                              until=firing, digest_id=digest_id(firing, self.site))
        except NotFound as exc:
            return JobRun(job, "done", f"no digest: {exc}")
        return _judged(job, reports)

    def _retry_unconfirmed(self, job: Job) -> JobRun:
        """``publish --retry-unconfirmed`` for each article with deliveries in doubt: only its languages and
        channels in doubt, never a version or channel it was not published to."""
        doubtful: dict[str, list[Any]] = {}
        for row in self.site.ledger().rows(state=("unconfirmed", "in_flight")):
            doubtful.setdefault(row.key.article, []).append(row.key)
        library = self.site.articles()
        reports: list[DeliveryReport] = []
        for slug, keys in sorted(doubtful.items()):
            story = library.stories.get(slug)
            if story is None:   # a digest, or an article since removed: nothing to publish it from
                continue
            payload = {"paths": [scheduler.site_path(self.site, a.path) for a in story.versions.values()
                                 if a.path is not None],
                       "langs": sorted({key.lang for key in keys}), "channels": sorted({key.channel for key in keys})}
            reports += self._publish(_with_payload(job, payload), retry_unconfirmed=True).reports
        if not reports:
            return JobRun(job, "done", "nothing in doubt")
        return _judged(job, reports)

    def _purge_pending(self, job: Job) -> JobRun:
        """Delete the subscribers who asked but never confirmed before their link expired."""
        hours = int(self.site.config.get("PUBLISHER_CONFIRM_LINK_HOURS"))
        cutoff = self.clock() - timedelta(hours=hours)
        subscribers = self.site.subscribers()
        expired = [s.email for s in subscribers.iter_all(status="pending") if (s.updated_at or s.created_at) < cutoff]
        for email in expired:
            subscribers.remove(email)
        return JobRun(job, "done", f"{len(expired)} unconfirmed subscriber(s) removed")

    def _process_bounces(self, job: Job) -> JobRun:
        """Read the bounce mailbox (BOUNCE_MAILDIR, else BOUNCE_IMAP_*) as `publisher bounces process` does."""
        from publisher.bounces.process import process
        from publisher.bounces.settings import BOUNCE_MAILDIR
        from publisher.bounces.sources import source_from_config

        config = self.site.config
        source = source_from_config(self.site, config, "maildir" if config.get(BOUNCE_MAILDIR) else "imap")
        return JobRun(job, "done", process(self.site, source).summary())

    def _say(self, run: JobRun) -> None:
        if self.console is not None:
            style = {"failed": "red", "retry": "yellow", "lost": "yellow", "shared": "dim"}.get(run.outcome, "")
            self.console.print(f"job {run.job.id} ({run.job.kind}, due {scheduler.show_time(run.job.due_at, self.site.timezone)}): "
                               f"{run.outcome}" + (f": {run.note}" if run.note else ""), style=style, markup=False)


def _with_payload(job: Job, payload: dict[str, Any]) -> Job:
    from dataclasses import replace

    return replace(job, payload=payload)


def _judged(job: Job, reports: list[DeliveryReport]) -> JobRun:
    """How a publish or digest job ended, from its report lines: a run a channel stopped (rate limit, platform
    down, quota) is tried again later; a failed or unconfirmed delivery fails the job (the ledger keeps it)."""
    stopped = [r for r in reports if r.state == "stopped"]
    if stopped:
        resets = [r.retry_at for r in stopped if r.retry_at is not None]
        return JobRun(job, "retry", stopped[0].note.split(";")[0], reports, max(resets) if resets else None)
    bad = [r for r in reports if r.state in ("failed", "unconfirmed")]
    if bad:
        return JobRun(job, "failed", f"{len(bad)} delivery line(s) {bad[0].state}: {bad[0].article} ({bad[0].lang}) "
                                     f"{bad[0].channel}: {bad[0].note}", reports)
    sent = sum(1 for r in reports if r.state == "sent")
    return JobRun(job, "done", f"{sent} line(s) sent", reports)


class _LeaseKeeper:
    """Renews the job's lease from a thread of its own (its own database connection) while the job runs."""

    def __init__(self, worker: Worker, job: Job) -> None:
        self.worker, self.job = worker, job
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._renew, name=f"lease-{job.id}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _renew(self) -> None:
        from publisher.store import open_store

        interval = max(self.worker.lease.total_seconds() / 3, 0.05)
        store = None
        try:
            while not self.done.wait(interval):
                try:
                    if store is None:
                        url = self.worker.site.config.get("PUBLISHER_DATABASE_URL")
                        # waits no longer than one renewal for a server that went away: the next one tries again
                        store = open_store(str(url) if url else None, state_dir=self.worker.site.state_dir,
                                           reconnect=interval)
                    store.jobs.renew(self.job.id, self.worker.owner, self.worker.clock() + self.worker.lease)
                except PublisherError:
                    # The job's own run reports storage problems; a missed renewal only risks a takeover, and
                    # the next one may succeed (the server restarted).
                    continue
        finally:
            if store is not None:
                store.close()


def check_worker_settings(site: Site) -> None:
    """The worker's settings, parsed before it starts: a bad one is one line, exit 2."""
    for name in ("SCHEDULE_MAX_LATE", "BULLETIN_DIGEST_SCHEDULE", "SCHEDULE_RETRY_DELAY", "SCHEDULE_RETRY_MIN_DELAY",
                 "SCHEDULE_RETRY_MAX_DELAY",
                 "SCHEDULE_RETRY_UNCONFIRMED_EVERY", "SCHEDULE_PURGE_PENDING_EVERY", "WORKER_LEASE_SECONDS",
                 "WORKER_BATCH_SIZE", "WORKER_POLL_SECONDS"):
        site.config.get(name)   # ConfigError names the setting and where it came from


__all__ = ["JobRun", "Worker", "check_worker_settings", "digest_id", "digest_schedule", "next_digest"]
