"""The storage interfaces: what the rest of the package may ask of the site's storage, in value types only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from publisher.delivery import Delivery, DeliveryKey, Lease

if TYPE_CHECKING:
    from publisher.subscribers import Subscriber

# (key, state, remote_id, remote_url, error, detail): None keeps the row's remote_id, remote_url and detail.
Mark = tuple[DeliveryKey, str, str | None, str | None, str | None, dict[str, Any] | None]
# What the store asks the time (an aware datetime), injected by tests.
Clock = Callable[[], datetime]


def format_time(moment: datetime) -> str:
    """The one timestamp format the store writes: ISO 8601 in UTC with an offset, to the millisecond
    (``2026-12-01T10:00:00.123+00:00``)."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone")
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# The channel with a row per recipient (each written three times: pending, in_flight, sent). The two indexes
# that only the per-version channels (feeds) read, deliveries_with_detail and deliveries_channel_versions, hold
# none of its rows (migration 0090); a query of another channel repeats their `channel <> 'email'`.
BULK_CHANNEL = "email"


def pick_version_details(
    rows: Iterable[Sequence[Any]]
) -> dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """(id, article, lang, state, detail) rows -> per version (the oldest row's non-empty detail, the oldest sent
    row's detail or {}): the rules of ``PublishedVersions.first_details`` and ``published`` over a few versions'
    rows (``version_details`` of both stores)."""
    found: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    for _, article, lang, state, detail in sorted(rows, key=lambda row: int(row[0])):
        first, sent = found.get((article, lang), (None, None))
        if first is None and detail not in (None, "", "{}"):
            first = json.loads(detail)
        if sent is None and state == "sent":
            sent = json.loads(detail or "{}")
        found[(article, lang)] = (first, sent)
    return found



class Ledger(Protocol):
    """Delivery rows, one per (article, language, channel, target): the only place delivery state changes.

    States: ``pending`` (known, not tried), ``in_flight`` (the remote call has started), ``sent`` (the remote
    side accepted), ``failed`` (it refused; safe to try again), ``unconfirmed`` (the outcome is unknown: a
    timeout or a 5xx after the request left; never retried blindly), ``skipped`` (deliberately not sent, e.g.
    no version in the reader's language; the reason is in ``last_error``).

    ``begin()`` comes before the remote call and ``mark(key, "sent")`` only after the remote side accepted, so
    a crash can leave at most the rows that were in flight in doubt, never skip a row. A write outside
    ``transaction()`` is committed at once; inside, with the transaction.
    """

    def get(self, key: DeliveryKey) -> Delivery | None:
        """The row of ``key``, or None."""
        ...

    def get_many(self, keys: Iterable[DeliveryKey]) -> dict[DeliveryKey, Delivery]:
        """The rows of ``keys`` that exist."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group several writes in one transaction, committed on success and rolled back on any error."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """The same as ``transaction()`` (the name the bulk sender used)."""
        ...

    def begin(self, key: DeliveryKey) -> Delivery:
        """Mark ``key`` in flight (attempts + 1, the row made if new); return the row as it was before."""
        ...

    def begin_many(self, keys: list[DeliveryKey]) -> None:
        """``begin`` for several rows that exist (``ensure_pending``), in one statement."""
        ...

    def claim_many(self, claims: Sequence[tuple[DeliveryKey, Delivery | None]], lease: Lease) -> set[DeliveryKey]:
        """Mark in flight under ``lease`` (attempts + 1) each row still as it was read (``Delivery`` given: the
        same state, holder and lease expiry; None: pending, never leased): a compare-and-set, so two runs never
        both claim one row. Return the keys claimed."""
        ...

    def claim_queued(self, article: str, channel: str, lease: Lease, now: datetime, limit: int) -> list[Delivery]:
        """The shared queue: claim up to ``limit`` rows of one bulletin that are in flight under a lease that ran
        out before ``now`` (or none: in doubt) or ``pending``, in that order and by id, for ``lease``;
        rows another worker is claiming at the same moment are skipped (PostgreSQL: ``FOR UPDATE SKIP LOCKED``;
        SQLite: one write transaction). Return them as they were before the claim."""
        ...

    def renew(self, worker: str, until: datetime) -> int:
        """Extend to ``until`` the lease of every row ``worker`` holds in flight (one statement); how many."""
        ...

    def mark(
        self,
        key: DeliveryKey,
        state: str,
        *,
        remote_id: str | None = None,
        remote_url: str | None = None,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record an outcome (the row made if new); ``remote_id``/``remote_url``/``detail`` None keep the old.
        The row's ``worker`` stays: who sent it."""
        ...

    def mark_many(self, marks: Iterable[Mark]) -> None:
        """``mark`` for several rows that exist: ``(key, state, remote_id, remote_url, error, detail)`` each."""
        ...

    def ensure_pending(self, keys: Iterable[DeliveryKey], *, batch_size: int = 5000) -> int:
        """Add the keys not yet in the ledger, state pending; return how many were new."""
        ...

    def rows(
        self,
        article: str | None = None,
        channel: str | None = None,
        state: str | Iterable[str] | None = None,
        lang: str | None = None,
        *,
        batch_size: int = 1000,
    ) -> Iterator[Delivery]:
        """Matching rows in the order they were made, streamed in batches."""
        ...

    def counts(
        self, article: str | None = None, channel: str | None = None, lang: str | None = None,
        *, states: Iterable[str] | None = None,
    ) -> dict[str, int]:
        """How many matching rows are in each state (every state present, 0 if none); with ``states``, in
        those states only (the others are not counted at all)."""
        ...

    def summary(
        self, article: str | None = None, channel: str | None = None
    ) -> dict[tuple[str, str, str], dict[str, int]]:
        """``(article, lang, channel)`` -> rows per state (only the states present), sorted by the key."""
        ...

    def articles(self, limit: int | None = None) -> Iterator[str]:
        """The ledger's articles, the one that appeared last first (at most ``limit``), streamed."""
        ...

    def published(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``(slug, lang)`` -> the detail of the first ``sent`` row of ``channel`` (``PublishedVersions``)."""
        ...

    def first_details(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``(slug, lang)`` -> the detail of the first row of ``channel`` with a non-empty detail, any state."""
        ...

    def published_versions(self, channel: str) -> set[tuple[str, str]]:
        """The ``(slug, lang)`` of ``published`` without their details, from the index on (channel, state,
        article, lang) alone."""
        ...

    def version_details(
        self, channel: str, versions: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """``first_details`` and ``published`` of ``versions`` only (``pick_version_details``), each version's
        rows found through the unique key's prefix: publishing one article reads a few rows, not the channel's."""
        ...

    def channel_fingerprint(self, channel: str) -> str:
        """The channel's rows per state and the last id of each: it changes when a row is added or changes
        state (the feeds build's key)."""
        ...


class SubscriberStore(Protocol):
    """The subscriber table. Addresses are looked up by ``email_key`` (the normalized address, lower case);
    checking what goes in is ``publisher.subscribers.Subscribers``'s job."""

    def transaction(self) -> AbstractContextManager[None]:
        ...

    def insert(self, *, email: str, email_key: str, name: str | None, lang: str, status: str,
               themes: Sequence[str], confirmed: bool) -> bool:
        """Add a subscriber unless ``email_key`` is taken (the row is then left exactly as it is); True if added.
        ``confirmed``: record now as the confirmation time."""
        ...

    def get(self, email_key: str) -> Subscriber | None:
        ...

    def position(self) -> int:
        """Where the list ends now: every subscriber inserted later comes after it (in ``iterate``'s order)."""
        ...

    def start_import(self) -> None:
        """Forget the addresses met by an earlier import (``import_batch``); call it in the transaction."""
        ...

    def import_batch(self, rows: Sequence[tuple[str, str, str | None, str]], *, status: str,
                     confirmed: bool) -> tuple[int, int, list[int]]:
        """Insert ``(email, email_key, name, lang)`` rows, in file order, unless their key is taken (the row
        there is left as it is). Return how many were added, how many were already on the list, and the
        indexes in ``rows`` of those met earlier in this import: the database's unique keys find them all."""
        ...

    def update(
        self,
        email_key: str,
        *,
        status: str | None = None,
        lang: str | None = None,
        themes: Sequence[str] | None = None,
        confirm: bool = False,
        unless_status: str | Sequence[str] | None = None,
        only_status: str | None = None,
    ) -> bool:
        """Change the given fields and ``updated_at`` (``confirm``: ``confirmed_at`` too); with
        ``unless_status``, only a row not in that status (or any of those); with ``only_status``, only a row in
        that status. True if a row changed."""
        ...

    def delete(self, email_key: str) -> bool:
        """Erase the row and its bounce history."""
        ...

    def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this row id (``Subscriber.id``), or None (never was, or erased)."""
        ...

    def get_many(self, email_keys: Iterable[str]) -> dict[str, Subscriber]:
        """``email_key`` -> subscriber, for the keys on the list (a few statements, not one per key)."""
        ...

    def set_status(self, email_key: str, status: str, reason: str | None, *,
                   unless_status: Sequence[str] = ()) -> bool:
        """Set the status with the reason and now as ``status_reason`` / ``status_at`` (and ``updated_at``),
        unless the row is in one of ``unless_status``. True if a row changed."""
        ...

    def record_event(self, email_key: str, kind: str, *, reason: str | None = None, article: str | None = None,
                     source: str | None = None) -> None:
        """Remember a bounce (``hard``/``soft``), a ``complaint`` or an ``unsuppress`` of the address, now."""
        ...

    def count_events(self, email_key: str, kind: str, within: timedelta) -> int:
        """How many ``kind`` events the address had in the last ``within`` (by the store's clock), after its
        last ``unsuppress``."""
        ...

    def event_counts(self, articles: Sequence[str]) -> dict[str, dict[str, int]]:
        """article -> events per kind (``hard``, ``soft``, ``complaint``), for the articles that have any."""
        ...

    def last_bulletin(self, target: str) -> str | None:
        """The article (or digest id) of the last email delivery ``sent`` to this address, or None."""
        ...

    def remember_message(self, message_id: str, outcome: str) -> str | None:
        """Note that the bounce message ``message_id`` was handled with ``outcome``: None if it is new, else
        the outcome it was handled with before (and nothing is changed)."""
        ...

    def iterate(
        self, *, status: str | None = None, lang: str | None = None, theme: str | None = None,
        batch_size: int = 1000, after: int = 0, through: int | None = None,
    ) -> Iterator[Subscriber]:
        """Matching subscribers in id order, one short query per batch (no read stays open meanwhile).
        ``theme``: those following it, or every theme (no themes chosen). ``after`` / ``through``: only those
        inserted after one ``position()`` and up to another."""
        ...

    def count(self, *, status: str | None = None, lang: str | None = None, theme: str | None = None) -> int:
        ...


class TranslationMemory(Protocol):
    """Sentences a model translated, keyed by model (name, pair, version) and source text."""

    def lookup(self, model: str, source_lang: str, target_lang: str, sentences: Iterable[str]) -> dict[str, str]:
        """The remembered translation of each sentence that has one (and a hit recorded for each)."""
        ...

    def lookup_any_model(self, source_lang: str, target_lang: str, sentences: Iterable[str]) -> dict[str, tuple[str, str]]:
        """(translation, model) of each sentence any model translated (where several did, the entry used last);
        only when the user asks to reuse other models' sentences. Records no hit."""
        ...

    def remember(self, model: str, source_lang: str, target_lang: str, translations: Mapping[str, str]) -> None:
        """Store translations in one transaction; a sentence translated again replaces the old entry."""
        ...

    def count(self, model: str | None = None) -> int:
        ...

    def forget(self, model: str | None = None) -> int:
        """Drop the memory of one model (or all); return how many sentences were dropped."""
        ...


class FeedCache(Protocol):
    """Rendered article bodies kept between builds, keyed by a hash of what they were rendered from
    (``publisher.delivery.RenderCache``, plus ``close``). Losing it costs only time."""

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        ...

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        ...

    def keep_only(self, keys: Iterable[str]) -> None:
        """Drop every entry whose key is not among ``keys`` (after a full build)."""
        ...

    def close(self) -> None:
        ...


@dataclass(frozen=True)
class IndexedFile:
    """One content file as the content index keeps it: where it is (``path``, relative to ``content/``, POSIX),
    the size and modification time it had when parsed, what its parse depended on besides the file
    (``context``: the site's URL, languages, time zone and the parser's own version), the parsed front matter
    (``fields``, JSON) and the body."""

    path: str
    size: int
    mtime_ns: int
    context: str
    fields: str
    body: str
    entry: IndexEntry | None = None   # written with the file; read back by ``entries`` only


class IndexEntry(NamedTuple):
    """What lists a content file without reading it: the fields an index page, a feed's choice of entries and
    the OPML list use (``publisher.article.ArticleEntry``), each a column, so reading 20,000 of them decodes no
    JSON (``date``: ``ISO|zone|fold`` in a named zone, else ISO 8601 with its offset). A named tuple, made
    20,000 times a publish."""

    path: str
    size: int
    mtime_ns: int
    context: str
    slug: str
    lang: str
    title: str
    date: str
    summary: str
    theme: str | None
    url: str
    status: str
    source_lang: str | None
    model: str | None


class ContentIndex(Protocol):
    """Parsed content files kept between runs, so that an unchanged file is not read again. Losing it costs
    only time (a cache, like ``FeedCache``)."""

    def get_many(self, paths: Iterable[str]) -> dict[str, IndexedFile]:
        ...

    def entries(self) -> dict[str, IndexEntry]:
        """Every file's ``IndexEntry`` (no body, no front matter) by its path: what a publish lists the site
        from."""
        ...

    def put_many(self, entries: Iterable[IndexedFile]) -> None:
        ...

    def keep_only(self, paths: Iterable[str]) -> None:
        """Drop every entry whose path is not among ``paths`` (files deleted since)."""
        ...

    def close(self) -> None:
        ...


class RateLimits(Protocol):
    """Hit counters in fixed windows, per (bucket, client); ``client`` is already a keyed hash."""

    def hit(self, bucket: str, client: str, window_start: int) -> int:
        """Count one hit in the window starting at ``window_start`` (Unix time) and drop the bucket's older
        windows, atomically; return the hits of this window so far."""
        ...


# How far behind a bucket's time a taker's clock may be and still count from the bucket's time (another
# machine's clock a little ahead); further behind, the clock was set back and the bucket counts from now.
BUCKET_CLOCK_SLACK = 1.0


def take_tokens(tokens: float | None, updated: float | None, *, want: int, rate: float, burst: float,
                now: float) -> tuple[float, float, int, float]:
    """One take from a token bucket holding ``tokens`` counted at ``updated`` (None, None: a new bucket, full):
    ``(tokens, updated, granted, wait)`` after it. The bucket refills at ``rate`` per second up to ``burst``;
    ``granted`` is at most ``want`` whole tokens, and when none is left ``wait`` says how long until ``want``
    (at most the burst) would be there: never longer than the rate needs, whatever the clock did. Pure
    arithmetic, the same for both stores (each runs it inside its own row lock)."""
    if rate <= 0:
        raise ValueError("a token bucket needs a rate above 0")
    burst = max(float(burst), 1.0)
    if tokens is None or updated is None:
        tokens, updated = burst, now
    if now >= updated:
        tokens, updated = tokens + (now - updated) * rate, now
    elif updated - now > BUCKET_CLOCK_SLACK:
        updated = now   # the clock was set back: count from now rather than wait for the old time to come back
    tokens = min(max(tokens, 0.0), burst)
    whole = int(tokens + 1e-9)   # 1.9999999 tokens after a wait computed to the token are 2 (float rounding)
    if whole >= 1:
        granted = min(int(want), whole)
        return max(tokens - granted, 0.0), updated, granted, 0.0
    return tokens, updated, 0, (min(float(want), burst) - tokens) / rate


class TokenBuckets(Protocol):
    """Token buckets shared by every process on the site's database: a transport's send rate holds for all the
    workers together (``publisher.delivery.SendRates``, as the email channel sees it)."""

    def take(self, bucket: str, want: int, *, rate: float, burst: float, now: float) -> tuple[int, float]:
        """Take up to ``want`` tokens from ``bucket`` (created full on first use), atomically across processes:
        ``(granted, wait)``, ``wait`` seconds until ``want`` are there when nothing was granted (see
        ``take_tokens``). ``now`` is the caller's clock (Unix seconds)."""
        ...


JOB_STATES = ("pending", "running", "done", "cancelled", "overdue", "failed")


@dataclass(frozen=True)
class Job:
    """One job the worker runs when it is due: a scheduled publish, a digest, a deferred retry.

    ``state``: ``pending`` (waiting for ``due_at``), ``running`` (a worker holds its lease until ``lease_until``),
    ``done``, ``cancelled``, ``overdue`` (more than ``SCHEDULE_MAX_LATE`` past due when a worker saw it: held
    until a person releases it), ``failed`` (gave up; ``last_error`` says why).
    """

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    due_at: datetime
    state: str = "pending"
    lease_owner: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    late_ok: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        def text(moment: datetime | None) -> str | None:
            return format_time(moment) if moment is not None else None

        return {"id": self.id, "kind": self.kind, "key": self.key, "payload": self.payload,
                "due_at": text(self.due_at), "state": self.state, "lease_owner": self.lease_owner,
                "lease_until": text(self.lease_until), "attempts": self.attempts, "last_error": self.last_error,
                "late_ok": self.late_ok, "created_at": text(self.created_at), "updated_at": text(self.updated_at)}


class Jobs(Protocol):
    """The job queue. A worker ``claim``s a job with a lease in one write transaction, so two workers on one
    database never hold the same job; it ``renew``s the lease while working and ``finish``es or ``release``s
    the job. A job whose lease ran out (its worker was killed) may be claimed again."""

    def schedule(self, kind: str, key: str, payload: Mapping[str, Any], due_at: datetime) -> tuple[Job, bool]:
        """Add a pending job, or move the open (pending or overdue) job with the same ``key`` to ``due_at``
        with this payload; return it and whether it was moved."""
        ...

    def claim(self, owner: str, now: datetime, lease: timedelta, *, max_late: timedelta | None = None,
              hold: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> Job | None:
        """Take the oldest due job (of ``kinds``): pending and due, or running with a lease that ran out. A
        pending job (of the kinds in ``hold``; None: any) more than ``max_late`` past due and not released is set
        ``overdue`` instead of being taken."""
        ...

    def renew(self, job_id: int, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease; False if the job is no longer ``owner``'s."""
        ...

    def finish(self, job_id: int, owner: str, *, error: str | None = None) -> bool:
        """``done`` (or ``failed`` with ``error``) if ``owner`` still holds it."""
        ...

    def finish_shared(self, job_id: int) -> bool:
        """A shared job (several workers work on it at once, none claims it: the queue of a bulletin) ``done``,
        if it is still pending; False if another worker finished it first, or it was cancelled."""
        ...

    def retry(self, job_id: int, owner: str, due_at: datetime, error: str) -> bool:
        """Put a job ``owner`` holds back to pending, due at ``due_at`` (a deferred delivery)."""
        ...

    def release(self, job_id: int, owner: str) -> bool:
        """Give a held job back (pending, lease cleared, the attempt not counted), as on SIGTERM."""
        ...

    def cancel(self, job_id: int) -> Job | None:
        """Cancel a pending or overdue job; None if there is no such open job."""
        ...

    def allow_late(self, job_id: int) -> Job | None:
        """Release an overdue (or pending) job to run though late; None if there is no such job."""
        ...

    def get(self, job_id: int) -> Job | None:
        ...

    def list(self, states: Iterable[str] | None = None, kind: str | None = None) -> list[Job]:
        """Jobs in these states (default: every state), by due time."""
        ...

    def next_due(self, kinds: Sequence[str] | None = None) -> datetime | None:
        """When the earliest pending job (of ``kinds``) is due, or a running job's lease runs out."""
        ...

    def last_done(self, kind: str) -> Job | None:
        """The most recently due job of ``kind`` that ran to its end (done or failed): when a recurring job
        is due next."""
        ...


class Store(Protocol):
    """One site's storage: its parts, transactions across them, named locks, and closing."""

    @property
    def ledger(self) -> Ledger:
        ...

    @property
    def subscribers(self) -> SubscriberStore:
        ...

    @property
    def translation_memory(self) -> TranslationMemory:
        ...

    @property
    def rate_limits(self) -> RateLimits:
        ...

    @property
    def jobs(self) -> Jobs:
        ...

    @property
    def token_buckets(self) -> TokenBuckets:
        ...

    def feed_cache(self) -> FeedCache:
        """The rendered-bodies cache (a new handle; the caller closes it)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction over every part; nested, it is a savepoint of the outer one."""
        ...

    def lock(self, name: str, *, wait: bool) -> AbstractContextManager[None]:
        """Hold the lock ``name`` across processes; ``wait`` false raises ``LockBusy`` when it is held."""
        ...

    def migrate(self) -> list[str]:
        """Apply the migrations not yet applied; return their names (opening the store does it too)."""
        ...

    def close(self) -> None:
        ...
