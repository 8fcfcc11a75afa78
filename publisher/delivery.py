"""Neutral value types and protocols shared by the pipeline, the channels and the storage layer.

This module imports nothing from ``publisher.channels`` or ``publisher.store``: a channel may import it, and so
may the storage layer, without either knowing the other.

Words used here:

- a **Rendition** is one delivery a channel would make (a post thread for one account, a bulletin in one
  language, a feed file), with the files ``publisher preview`` and the review page show;
- an **Attempt** is one ledger row the pipeline decided to send: its key, the rendition, the recipient (email)
  and the row as it was before the claim;
- an **Outcome** is what ``Channel.send`` says happened;
- a **DeliveryReport** is one line of the table ``publisher publish`` ends with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

STATES = ("pending", "in_flight", "sent", "failed", "unconfirmed", "skipped")


# --- the ledger's vocabulary --------------------------------------------------------------------------------


# One encoder for every row's detail: json.dumps with an option builds a new encoder per call (a third of its
# cost, paid on each delivery marked).
_encode_detail = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class DeliveryKey:
    """One delivery: an article (or digest id) in one language, through one channel, to one target."""

    article: str
    lang: str
    channel: str
    target: str

    def __str__(self) -> str:
        return f"{self.article}/{self.lang}/{self.channel}/{self.target}"


@dataclass
class Delivery:
    """A ledger row as the storage layer returns it."""

    key: DeliveryKey
    state: str = "pending"
    remote_id: str | None = None
    remote_url: str | None = None
    attempts: int = 0
    last_error: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    #: The worker that claimed it last (kept once it is marked: who sent what), and until when its claim holds
    #: (ISO text, as the timestamps); ``lease_exclusive``: that holder also held the bulletin's own lock.
    worker: str | None = None
    lease_until: str | None = None
    lease_exclusive: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "article": self.key.article, "lang": self.key.lang, "channel": self.key.channel,
            "target": self.key.target, "state": self.state, "remote_id": self.remote_id,
            "remote_url": self.remote_url, "attempts": self.attempts, "last_error": self.last_error,
            "created_at": self.created_at, "updated_at": self.updated_at, "detail": self.detail,
            "worker": self.worker,
        }

    def leased_elsewhere(self, lease: Lease | None, now: datetime) -> bool:
        """True when this row is in flight under a live lease of someone else than ``lease``'s holder: its
        holder is sending it. A lease that ran out, or none (a crash before leases existed), is no claim; nor
        is an exclusive lease when ``lease`` is exclusive too: the bulletin's lock is ours, so its holder is
        gone (a killed in-process run)."""
        if self.state != "in_flight" or not self.worker or not self.lease_until:
            return False
        if lease is not None and (self.worker == lease.worker or (lease.exclusive and self.lease_exclusive)):
            return False
        return datetime.fromisoformat(self.lease_until) > now

    @staticmethod
    def detail_json(detail: dict[str, Any] | None) -> str:
        return _encode_detail(detail or {})


@dataclass(frozen=True)
class Lease:
    """A claim on delivery rows: whose (``worker``, ``host:pid:hex``), until when (aware), and whether the
    holder also holds the bulletin's own lock (``exclusive``: an in-process ``publish``; the shared queue's
    workers hold none)."""

    worker: str
    until: datetime
    exclusive: bool = False


# --- what a channel renders ---------------------------------------------------------------------------------


@dataclass
class RenderedFile:
    """One file shown by ``publisher preview`` and the review page."""

    filename: str
    content: str | bytes
    media_type: str = "text/plain"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rendition:
    """One delivery a channel would make, as ``render`` returns it; ``send`` receives it back.

    ``filename``/``content``/``media_type``/``meta`` are the main file shown; ``extra`` holds more files shown
    with it (a bulletin's text part and whole message, a thread's later parts). ``payload`` is whatever
    ``send`` needs and is never shown. ``article`` is the ledger id (the story slug, or a digest id).
    """

    channel: str
    lang: str
    target: str
    filename: str
    content: str | bytes
    media_type: str = "text/plain"
    meta: dict[str, Any] = field(default_factory=dict)
    article: str = ""
    extra: list[RenderedFile] = field(default_factory=list)
    payload: Any = field(default=None, repr=False, compare=False)

    @property
    def files(self) -> list[RenderedFile]:
        """The main file, then the extra ones."""
        return [RenderedFile(self.filename, self.content, self.media_type, self.meta), *self.extra]

    def key(self) -> DeliveryKey:
        """The ledger key of a rendition delivered to its own target (every channel but email)."""
        return DeliveryKey(self.article, self.lang, self.channel, self.target)


# --- what the pipeline hands ``send`` and what it gets back --------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One delivery a channel plans (``Channel.deliveries``): a rendition for a key, or a reason to skip it.

    ``recipient`` is the subscriber of an email delivery (None elsewhere). ``skip`` set means: record the row
    as ``skipped`` with that reason and send nothing (no version in the reader's language).
    """

    key: DeliveryKey
    rendition: Rendition | None
    recipient: Any = None
    skip: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One delivery the pipeline has claimed and hands to ``send``.

    ``previous`` is the ledger row as it was before the claim (None for a new row); ``in_doubt`` is true when
    that row was left ``in_flight`` or ``unconfirmed`` (the remote side may have it already); ``generation``
    counts deliberate re-sends (``--force``), so a platform's idempotency key changes only then.
    """

    key: DeliveryKey
    rendition: Rendition
    recipient: Any = None
    previous: Delivery | None = None
    in_doubt: bool = False
    force: bool = False
    generation: int = 0
    progress: dict[str, Any] = field(default_factory=dict)
    note: str = ""   # what the pipeline learnt before sending (a look-up's result), for the report

    def resumed(self, progress: dict[str, Any]) -> Attempt:
        return replace(self, progress=dict(progress))


OutcomeState = Literal["sent", "failed", "unconfirmed", "skipped", "pending"]


@dataclass
class Outcome:
    """What ``Channel.send`` says happened to one attempt.

    - ``sent``: the remote side accepted (``remote_id``, ``remote_url``);
    - ``failed``: it refused or the request never left; ``permanent`` (a 5xx mail reply) is not retried without
      ``--force``; ``bounced`` marks the subscriber's address bounced;
    - ``unconfirmed``: the outcome is unknown (a timeout, a 5xx after the request left): never sent again
      blindly;
    - ``skipped``: deliberately not sent;
    - ``pending``: not sent and not the recipient's fault (a sender quota, a server gone down): the row waits
      for a later run, and ``halt`` stops this run (no new attempt is claimed; those in flight finish);
      ``retry_at`` (aware) is when the platform said it takes requests again (a 429's reset time), if it said.

    ``detail`` replaces the row's detail when given; ``note`` is the report's text.
    """

    state: OutcomeState
    remote_id: str | None = None
    remote_url: str | None = None
    error: str | None = None
    note: str = ""
    detail: dict[str, Any] | None = None
    permanent: bool = False
    bounced: bool = False
    possible_duplicate: bool = False
    halt: bool = False
    retry_at: datetime | None = None

    @classmethod
    def deferred(cls, reason: str, *, halt: bool = False, retry_at: datetime | None = None,
                 **kwargs: Any) -> Outcome:
        """Not sent, to be tried by a later run; ``halt`` stops this run with ``reason`` as its one line;
        ``retry_at``: not before this time (the platform said so), the retry job's due time."""
        if retry_at is not None and retry_at.utcoffset() is None:
            raise ValueError("Outcome.deferred: retry_at must be an aware datetime")
        return cls("pending", error=reason, halt=halt, retry_at=retry_at, **kwargs)

    @classmethod
    def sent(cls, remote_id: str | None = None, remote_url: str | None = None, **kwargs: Any) -> Outcome:
        return cls("sent", remote_id=remote_id, remote_url=remote_url, **kwargs)

    @classmethod
    def failed(cls, error: str, *, permanent: bool = False, **kwargs: Any) -> Outcome:
        return cls("failed", error=error, permanent=permanent, **kwargs)

    @classmethod
    def unconfirmed(cls, error: str, **kwargs: Any) -> Outcome:
        return cls("unconfirmed", error=error, **kwargs)


@dataclass(frozen=True)
class Found:
    """What ``Channel.find_existing`` found on the platform: the progress to resume from, and a note.

    ``done`` set means nothing is left to send: the pipeline records that outcome without calling ``send``
    (a thread resumes from ``progress`` instead).
    """

    progress: dict[str, Any]
    note: str = "found among recent posts; not posted again"
    done: Outcome | None = None


class LookupUnsupported(Exception):
    """``find_existing``: the platform cannot list recent posts, so whether the post exists cannot be known."""


class LookupFailed(Exception):
    """``find_existing``: the look-up itself failed (a network error); the delivery stays in doubt."""


@dataclass
class DeliveryReport:
    """One line of the table that ``publisher publish`` ends with."""

    article: str
    lang: str
    channel: str
    where: str
    state: str
    note: str = ""
    # a "stopped" line: the latest time a halting outcome said the platform takes requests again; not in as_dict
    retry_at: datetime | None = field(default=None, compare=False)
    #: How many deliveries this line stands for that an earlier run had already done (sent, up to date, or
    #: skipped again) so that this run changed nothing; 0 for a line about new work. A re-run's table folds
    #: such lines into one per article ("nothing new: 7 deliveries already done").
    done_before: int = 0

    def as_dict(self) -> dict[str, str]:
        return {"article": self.article, "lang": self.lang, "channel": self.channel, "where": self.where,
                "state": self.state, "note": self.note}


@dataclass(frozen=True)
class LockRequest:
    """A lock the pipeline holds around one channel's render, claim, send and mark (``Channel.lock_for``).

    ``wait`` false: when another process holds it, the run stops with ``busy`` as its one line.
    """

    name: str
    wait: bool = True
    busy: str = ""


# --- what a channel may read from storage, handed over by the pipeline ----------------------------------------


class Audience(Protocol):
    """The bulletin's subscribers, as the email channel sees them (read only)."""

    def iter_active(self, *, theme: str | None = None, batch_size: int = 1000) -> Iterator[Any]:
        """Active subscribers following ``theme`` (or every theme), in id order, streamed in batches."""
        ...

    def count(self, *, status: str | None = None, lang: str | None = None, theme: str | None = None) -> int:
        """How many subscribers match."""
        ...


class PublishedVersions(Protocol):
    """Which article versions a channel already delivered, with the detail each was recorded with (feeds)."""

    def published(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``(slug, lang)`` -> detail of a ``sent`` row of ``channel`` (e.g. the feed entry id)."""
        ...

    def first_details(self, channel: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``(slug, lang)`` -> the detail of the oldest row of ``channel`` in any state (ids fixed at first use)."""
        ...

    def published_versions(self, channel: str) -> set[tuple[str, str]]:
        """The ``(slug, lang)`` of ``published``, without their details: read from an index alone."""
        ...

    def version_details(
        self, channel: str, versions: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """For each of ``versions`` that has rows of ``channel``: (its ``first_details`` entry, its ``published``
        entry), None where it has none; looked up per version, so publishing one article reads a few rows."""
        ...

    def channel_fingerprint(self, channel: str) -> str:
        """A value that changes when a row of ``channel`` is added or changes state: its rows per state and last
        id (a build made from those rows is still current while it is equal)."""
        ...


class SendRates(Protocol):
    """Token buckets shared by every process on the site's database (a transport's rate for all workers
    together); the storage layer's ``TokenBuckets``."""

    def take(self, bucket: str, want: int, *, rate: float, burst: float, now: float) -> tuple[int, float]:
        """Up to ``want`` tokens of ``bucket``: ``(granted, wait)``, ``wait`` the seconds until ``want`` are
        there when none was granted."""
        ...


class RenderCache(Protocol):
    """Rendered bodies kept between runs, keyed by a fingerprint of what they were rendered from (feeds)."""

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        ...

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        ...

    def keep_only(self, keys: Iterable[str]) -> None:
        ...


Clock = Callable[[], float]
Sleep = Callable[[float], None]


__all__ = [
    "Attempt", "Audience", "Clock", "Delivery", "DeliveryKey", "DeliveryReport", "Found", "Lease", "LockRequest",
    "LookupFailed", "LookupUnsupported", "Outcome", "Planned", "PublishedVersions", "RenderCache",
    "RenderedFile", "Rendition", "STATES", "SendRates", "Sleep",
]
