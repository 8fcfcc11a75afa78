"""Scheduling: when an article may go out (``publish_at``), and the jobs that publish it later."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import InputError

if TYPE_CHECKING:
    from publisher.article import Article, Story
    from publisher.site import Site
    from publisher.store.interfaces import Job

Now = Callable[[], datetime]

PUBLISH = "publish"
DIGEST = "digest"
RETRY_UNCONFIRMED = "retry_unconfirmed"
PURGE_PENDING = "purge_pending"
# A bulletin queued for the workers (publish --queue): shared by every worker, claimed by none.
SEND = "send"


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def after_every_embargo() -> datetime:
    """The clock of ``publish --now``: a time after any ``publish_at``."""
    return datetime.max.replace(tzinfo=timezone.utc)


def parse_when(text: str, tz: tzinfo, field: str = "--at") -> datetime:
    """ISO 8601 with or without seconds and with or without an offset (``2026-12-02 09:00``,
    ``2026-12-02T09:00:00+09:00``); without an offset, in ``tz`` (the site's ``PUBLISHER_TIMEZONE``)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(field, f"expected a time like 2026-12-02 09:00 or 2026-12-02T09:00:00+09:00, "
                                f"got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def embargo(story: Story, lang: str) -> datetime | None:
    """When the ``lang`` version may go out: its own ``publish_at``, else the original's (a translation made
    before the release waits with it)."""
    version = story.get(lang)
    if version is None:
        return None
    return version.publish_at or story.original.publish_at


def is_public(article: Article, story: Story | None, now: datetime) -> bool:
    """False while the version is under embargo."""
    held = article.publish_at or (story.original.publish_at if story is not None else None)
    return held is None or held <= now


@dataclass(frozen=True)
class Held:
    """A version held back by its ``publish_at``."""

    story: Story
    lang: str
    until: datetime


def split_embargoed(stories: Sequence[Story], langs: Sequence[str], now: datetime
                    ) -> tuple[list[Story], list[Held]]:
    """The stories restricted to the versions that may go out now, and the versions held back."""
    ready: list[Story] = []
    held: list[Held] = []
    for story in stories:
        free = []
        for lang in story.languages:
            until = embargo(story, lang)
            if until is not None and until > now:
                if lang in langs:
                    held.append(Held(story, lang, until))
            else:
                free.append(lang)
        if free:
            ready.append(story if len(free) == len(story.languages) else story.only(free))
    return ready, held


def released(batch: Sequence[tuple[Story, Sequence[str]]], now: datetime) -> list[tuple[Story, list[str]]]:
    """A run's (story, languages) pairs without the versions still under embargo."""
    kept: list[tuple[Story, list[str]]] = []
    for story, langs in batch:
        free = [lang for lang in langs if (until := embargo(story, lang)) is None or until <= now]
        if free:
            kept.append((story, free))
    return kept


def show_time(moment: datetime, tz: tzinfo) -> str:
    """``2026-12-02 09:00 KST``: a time as the office reads it, in the site's zone."""
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M") + (f" {local.tzname()}" if local.tzname() else "")


def site_path(site: Site, path: Path) -> str:
    """A content path as a job stores it: relative to the site folder when inside it (the site may move)."""
    if not path.exists() and not path.is_absolute() and (site.root / path).exists():
        path = site.root / path   # as load_stories reads it: relative to the working folder, else the site's
    resolved = path.resolve()
    try:
        return resolved.relative_to(site.root).as_posix()
    except ValueError:
        return str(resolved)


def publish_key(paths: Sequence[str], channels: Sequence[str] | None, langs: Sequence[str] | None) -> str:
    """What a scheduled publish does, so scheduling the same thing again moves it."""
    return "publish:" + "|".join([",".join(sorted(paths)), ",".join(sorted(channels or [])),
                                  ",".join(sorted(langs or []))])


def schedule_publish(site: Site, paths: Sequence[str], due_at: datetime, *, channels: Sequence[str] | None = None,
                     langs: Sequence[str] | None = None) -> tuple[Job, bool]:
    """A job that publishes ``paths`` (site-relative) at ``due_at``; the same publish scheduled again is moved."""
    payload: dict[str, Any] = {"paths": sorted(paths), "channels": list(channels or []), "langs": list(langs or [])}
    return site.store().jobs.schedule(PUBLISH, publish_key(paths, channels, langs), payload, due_at)


def schedule_embargoed(site: Site, held: Sequence[Held], *, channels: Sequence[str] | None = None
                       ) -> list[tuple[Job, bool]]:
    """One job per (article file, release time) held back by ``publish_at``: the worker publishes it then."""
    by_time: dict[tuple[str, datetime], list[Held]] = {}
    for one in held:
        by_time.setdefault((one.story.slug, one.until), []).append(one)
    jobs = []
    for (_, until), versions in sorted(by_time.items()):
        files = [v.path for one in versions if (v := one.story.get(one.lang)) is not None and v.path is not None]
        jobs.append(schedule_publish(site, [site_path(site, path) for path in files], until, channels=channels,
                                     langs=sorted(one.lang for one in versions)))
    return jobs


def window_open(window: tuple[time, time], moment: datetime, tz: tzinfo) -> bool:
    """True when ``moment`` falls in the daily window (``opens``-``closes`` in ``tz``; it may cross midnight)."""
    opens, closes = window
    local = moment.astimezone(tz).time().replace(tzinfo=None)
    return opens <= local < closes if opens < closes else local >= opens or local < closes


def next_opening(window: tuple[time, time], moment: datetime, tz: tzinfo) -> datetime:
    """When the window next opens after ``moment`` (``moment`` itself if it is open)."""
    if window_open(window, moment, tz):
        return moment
    local = moment.astimezone(tz)
    today = datetime.combine(local.date(), window[0], tzinfo=tz)
    return today if today > local else datetime.combine(local.date() + timedelta(days=1), window[0], tzinfo=tz)


def retry_delay(attempts: int, base: timedelta = timedelta(minutes=5), most: timedelta = timedelta(hours=6)
                ) -> timedelta:
    """How long a deferred delivery waits before the next try: doubling from ``base``, at most ``most``."""
    return min(base * (1 << min(max(attempts - 1, 0), 30)), most)   # 2**30 x base is past any ``most``


@dataclass(frozen=True)
class RetryPolicy:
    """When a run a channel stopped (``Outcome.deferred(halt=True)``) is tried again by the worker:
    ``SCHEDULE_RETRY_DELAY`` (the backoff's first wait), ``SCHEDULE_RETRY_MIN_DELAY``, ``SCHEDULE_RETRY_MAX_DELAY``."""

    base: timedelta = timedelta(minutes=5)
    least: timedelta = timedelta(minutes=1)
    most: timedelta = timedelta(hours=6)

    @classmethod
    def of(cls, site: Site) -> RetryPolicy:
        return cls(site.config.get("SCHEDULE_RETRY_DELAY"), site.config.get("SCHEDULE_RETRY_MIN_DELAY"),
                   site.config.get("SCHEDULE_RETRY_MAX_DELAY"))

    def due(self, now: datetime, retry_at: datetime | None, attempts: int) -> datetime:
        """At the platform's reset time when it gave one, else after the doubling backoff (``attempts`` runs so
        far); never sooner than ``least`` from now (a reset already past must not make a busy loop), never later
        than ``most`` (a bogus far-off reset must not park the job for days)."""
        most = max(self.most, self.least)
        wanted = retry_at if retry_at is not None else now + retry_delay(attempts, self.base, most)
        return min(max(wanted, now + self.least), now + most)


def retry_key(slug: str, channel: str) -> str:
    """The retry job of one article through one channel: a second stop moves it instead of adding one."""
    return f"retry:{slug}|{channel}"


def schedule_retry(site: Site, story: Story, langs: Sequence[str], channel: str, due_at: datetime
                   ) -> tuple[Job, bool] | None:
    """A publish job for what a stopped run left pending of ``story`` through ``channel``, due at ``due_at``;
    an open retry job for the same article and channel is moved (its languages kept beside these). None when
    the story has no file to publish it from (the job must never fall back to "every article")."""
    whole = site.articles().stories.get(story.slug, story)   # the run may have held only some versions
    files = {site_path(site, version.path) for version in (*story.versions.values(), *whole.versions.values())
             if version.path is not None}
    if not files:
        return None
    key = retry_key(story.slug, channel)
    jobs = site.store().jobs
    waiting = [job for job in jobs.list(["pending", "overdue"], kind=PUBLISH) if job.key == key]
    wanted = set(langs).union(*(job.payload.get("langs") or [] for job in waiting))
    payload: dict[str, Any] = {"paths": sorted(files), "channels": [channel], "langs": sorted(wanted),
                               "retry": True}
    return jobs.schedule(PUBLISH, key, payload, due_at)


__all__ = ["DIGEST", "after_every_embargo", "PUBLISH", "PURGE_PENDING", "RETRY_UNCONFIRMED", "Held", "RetryPolicy",
           "embargo", "is_public", "next_opening", "parse_when", "publish_key", "released", "retry_delay", "retry_key",
           "schedule_embargoed", "schedule_publish", "schedule_retry", "show_time", "site_path", "split_embargoed",
           "wall_clock", "window_open"]
