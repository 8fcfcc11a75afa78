"""Scheduling commands: ``schedule list/cancel/release`` and ``worker``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from publisher.cli import UserError, console, echo_json_lines, get_site

if TYPE_CHECKING:
    from publisher.site import Site
    from publisher.store.interfaces import Job

OPEN_STATES = ("pending", "running", "overdue")


@click.group()
def schedule() -> None:
    """Scheduled jobs: publishes set with `publish --at` or `publish_at:`, digests and deferred retries."""


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job (JSON Lines).")
@click.option("--all", "everything", is_flag=True, help="Done, failed and cancelled jobs too.")
@click.pass_context
def list_jobs(ctx: click.Context, as_json: bool, everything: bool) -> None:
    """Every pending, running and overdue job, by due time."""
    from rich.table import Table
    from rich.text import Text

    from publisher.scheduler import show_time

    site = get_site(ctx)
    jobs = site.store().jobs.list(None if everything else OPEN_STATES)
    if as_json:
        echo_json_lines(job.as_dict() for job in jobs)
        return
    out = console()
    if not jobs:
        out.print("No scheduled jobs.")
        return
    table = Table(title="Scheduled jobs")
    for column in ("id", "kind", "due", "state", "what", "note"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        style = {"overdue": "red", "failed": "red", "running": "yellow", "done": "dim", "cancelled": "dim"}
        note = job.last_error or ""
        if job.state == "overdue":
            note = f"held: run `publisher schedule release {job.id}` to send it now"
        table.add_row(str(job.id), job.kind, show_time(job.due_at, site.timezone),
                      Text(job.state, style=style.get(job.state, "")), describe(job), note)
    out.print(table)


def print_held(site: Site, out: Any) -> None:
    """``publisher status``'s lines for jobs held as overdue, and how many are scheduled."""
    from publisher.scheduler import show_time

    jobs = site.store().jobs
    for job in jobs.list(["overdue"]):
        out.print(f"Overdue: job {job.id} ({job.kind}: {describe(job)}), due {show_time(job.due_at, site.timezone)}, "
                  f"is held; run `publisher schedule release {job.id}` to send it, or `publisher schedule cancel "
                  f"{job.id}`.", style="red")
    waiting = len(jobs.list(["pending", "running"], kind="publish"))
    if waiting:
        out.print(f"{waiting} scheduled publish(es) waiting for `publisher worker` (publisher schedule list).")


def describe(job: Job) -> str:
    """What a job does, in a few words."""
    payload = job.payload
    if job.kind == "publish":
        what = ", ".join(payload.get("paths") or ["all of content/"])
        if payload.get("channels"):
            what += f" via {','.join(payload['channels'])}"
        if payload.get("langs"):
            what += f" in {','.join(payload['langs'])}"
        return f"retry of a stopped run: {what}" if payload.get("retry") else what
    if job.kind == "digest":
        return f"digest of what was published since {payload.get('since', '?')[:16]}"
    return job.kind.replace("_", " ")


@schedule.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
def cancel(ctx: click.Context, job_id: int) -> None:
    """Cancel a pending or overdue job."""
    site = get_site(ctx)
    if site.store().jobs.cancel(job_id) is None:
        raise UserError(f"job {job_id}: no pending or overdue job with this id (see publisher schedule list)")
    click.echo(f"Cancelled job {job_id}.")


@schedule.command("release")
@click.argument("job_id", type=int)
@click.pass_context
def release(ctx: click.Context, job_id: int) -> None:
    """Let an overdue job run though it is late: the worker sends it at its next look."""
    site = get_site(ctx)
    if site.store().jobs.allow_late(job_id) is None:
        raise UserError(f"job {job_id}: no overdue or pending job with this id (see publisher schedule list)")
    click.echo(f"Released job {job_id}: the worker runs it now.")


@click.command()
@click.option("--once", is_flag=True, help="Run what is due now, then exit (for cron or a systemd timer).")
@click.option("--until-idle", is_flag=True, help="Exit when no job is waiting any more (tests, scripts).")
@click.option("--poll", type=click.FloatRange(0.05, 3600), default=None,
              help="Seconds between looks for jobs and queued bulletins other processes added. "
                   "Default: WORKER_POLL_SECONDS (2).")
@click.option("--lease", type=click.FloatRange(1, 86400), default=None,
              help="Seconds a claimed job stays this worker's without renewal; a killed worker's job is taken "
                   "over after that. Default: WORKER_LEASE_SECONDS (60), which also bounds its claims on "
                   "deliveries.")
@click.pass_context
def worker(ctx: click.Context, once: bool, until_idle: bool, poll: float | None, lease: float | None) -> None:
    """Run scheduled publishes, recurring digests (BULLETIN_DIGEST_SCHEDULE) and deferred retries when they are
    due, and share every bulletin queued with `publish --queue` with the other workers (on this machine or
    others, on one PostgreSQL database). SIGTERM lets the job in hand finish, then exits 0.

    Exit code 1 with --once or --until-idle when a job failed.
    """
    import signal
    from datetime import timedelta

    from publisher.pipeline import check_site_settings
    from publisher.worker import Worker, check_worker_settings

    site = get_site(ctx)
    check_site_settings(site)
    check_worker_settings(site)
    runner = Worker(site, poll=poll, lease=timedelta(seconds=lease) if lease is not None else None,
                    console=console(stderr=True))

    def on_term(signum: int, frame: object) -> None:
        runner.stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    previous_int = signal.signal(signal.SIGINT, on_term)
    click.echo(f"Worker {runner.owner} watching {site.root}", err=True)
    try:
        runs = runner.run(once=once, until_idle=until_idle)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    if (once or until_idle) and any(run.outcome == "failed" for run in runs):
        ctx.exit(1)


@contextmanager
def background_worker(site: Site) -> Iterator[None]:
    """``serve --worker``: the worker in a thread of the server's process, on a Site (and database connection)
    of its own; on leaving, it finishes the job in hand and stops."""
    import threading

    from publisher.pipeline import check_site_settings
    from publisher.site import Site as SiteClass
    from publisher.worker import Worker, check_worker_settings

    check_site_settings(site)
    check_worker_settings(site)
    own = SiteClass(site.root)
    runner = Worker(own, console=console(stderr=True))
    failed: list[BaseException] = []

    def work() -> None:
        try:
            runner.run()
        except BaseException as exc:   # shown when the server stops; the server itself keeps serving
            failed.append(exc)
            click.echo(f"worker stopped: {type(exc).__name__}: {exc}", err=True)
        finally:
            own.close()

    import signal

    def on_term(signum: int, frame: object) -> None:
        runner.stop()

    # uvicorn puts back the handlers it found and raises the signal it caught again once it has shut down:
    # found here, it stops the worker instead of killing the process with the job in hand.
    previous = {number: signal.signal(number, on_term) for number in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=work, name="publisher-worker", daemon=True)
    thread.start()
    click.echo(f"Worker {runner.owner} running in this process", err=True)
    try:
        yield
    finally:
        runner.stop()
        thread.join()
        for number, handler in previous.items():
            signal.signal(number, handler)
