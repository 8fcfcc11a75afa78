"""The channel interface: render what would be delivered, and send one delivery; the pipeline does the rest.

A channel is one small module that knows nothing of the other channels and nothing of the ledger: the pipeline
(``publisher/pipeline.py``) claims each delivery before ``send`` and records its ``Outcome`` after. A channel
declares the settings it needs; when the ``required`` ones are missing it falls back to a local adapter (a
Maildir, JSON files, feed files) and says so. Built-in channels are registered through the same entry points as
third-party ones. What a channel needs from storage (subscribers, what was published, a cache) reaches it in
the ``ChannelContext``, through the protocols of ``publisher.delivery``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

from publisher.delivery import (Attempt, Audience, Clock, DeliveryKey, DeliveryReport, Found, Lease, LockRequest,
                                LookupUnsupported, Outcome, Planned, PublishedVersions, RenderCache, Rendition,
                                SendRates, Sleep)
from publisher.settings import Setting

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console

    from publisher.article import Story
    from publisher.config import Config
    from publisher.site import Site

# ``leased``: in flight under another worker's live lease; left to it (neither sent nor in doubt).
Decision = Literal["send", "resend", "verify", "in_doubt", "already_sent", "skipped", "not_retried", "leased"]


@dataclass
class ChannelContext:
    """What a channel may use during one run: the run's options, storage seen through protocols, a clock.

    ``checkpoint(attempt, progress)`` records progress of a delivery made of several remote calls (a thread's
    parts) while ``send`` goes on, so a crash between two parts resumes after the last one.
    """

    force: bool = False
    dry_run: bool = False
    retry_unconfirmed: bool = False
    audience: Audience | None = None
    published: PublishedVersions | None = None
    cache: RenderCache | None = None
    console: Console | None = None
    clock: Clock = time.time
    sleep: Sleep = time.sleep
    rates: SendRates | None = None   # token buckets in the database: a send rate shared by every worker
    checkpoint: Callable[[Attempt, dict[str, Any]], None] = lambda attempt, progress: None
    #: The run's claim on the rows it sends (the pipeline's: who claims, and whether it holds the bulletin's lock).
    lease: Lease | None = None


@dataclass
class Result:
    """What became of one planned delivery in a run: the pipeline's decision and, if sent, the outcome."""

    key: DeliveryKey
    decision: Decision
    outcome: Outcome | None = None
    note: str = ""
    previous_state: str = "pending"
    previous_url: str | None = None
    rendition: Rendition | None = None

    @property
    def state(self) -> str:
        """The report's state: the outcome's, else what the decision leaves the row as."""
        if self.outcome is not None:
            return self.outcome.state
        return {"already_sent": "sent", "in_doubt": "unconfirmed", "verify": "unconfirmed",
                "skipped": "skipped", "not_retried": "failed", "leased": "in_flight"}.get(self.decision, "pending")


class Results(Sequence[Result]):
    """What one channel's run did, in the order it happened. Where the channel says a result only counts
    (``Channel.tally``: a bulletin's recipients), the first of those alike stands for all of them, so a run to
    200,000 subscribers keeps a few results and their counts, not 200,000 (memory flat in the audience)."""

    def __init__(self, tally: Callable[[Result], Hashable | None]) -> None:
        self._tally = tally
        self._items: list[Result | list[Any]] = []   # a result, or [the first of those alike, how many]
        self._alike: dict[Hashable, list[Any]] = {}
        self._len = 0

    def append(self, result: Result) -> None:
        self._len += 1
        key = self._tally(result)
        if key is None:
            self._items.append(result)
        elif (slot := self._alike.get(key)) is not None:
            slot[1] += 1
        else:
            self._alike[key] = slot = [result, 1]
            self._items.append(slot)

    def __iter__(self) -> Iterator[Result]:
        for item in self._items:
            if isinstance(item, Result):
                yield item
            else:
                for _ in range(item[1]):
                    yield item[0]

    def __len__(self) -> int:
        return self._len

    @property
    def kept(self) -> int:
        """How many results are held (the others are counted against one alike)."""
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Result: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | Sequence[Result]:
        return list(self)[index]


class Sender:
    """A sending session over one channel's deliveries of a run (an SMTP pool, a feeds build, a client).

    ``capacity`` is how many attempts may be in flight at once: the pipeline claims an attempt only when
    there is room for it, so a crash leaves at most that many in doubt. This default sends each attempt at
    once through ``Channel.send``.
    """

    capacity: int = 1

    def __init__(self, channel: Channel, ctx: ChannelContext) -> None:
        self.channel = channel
        self.ctx = ctx
        self._done: list[tuple[Attempt, Outcome]] = []

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        return None

    def submit(self, attempt: Attempt) -> None:
        """Start one attempt (already claimed in the ledger)."""
        from publisher.errors import PublisherError

        try:
            outcome = self.channel.send(attempt, self.ctx)
        except PublisherError as exc:   # refused before anything was sent (bad image, a post too long)
            outcome = Outcome.failed(str(exc))
        self._done.append((attempt, outcome))

    def collect(self, *, wait: bool) -> list[tuple[Attempt, Outcome]]:
        """Outcomes that arrived; with ``wait``, block until at least one does (when any is in flight)."""
        done, self._done = self._done, []
        return done


class Channel:
    """Base class of every channel. Subclasses set ``name``, ``title``, ``settings``, ``required``."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()
    #: What a row left ``in_flight`` or ``unconfirmed`` means: ``"resend"`` (a duplicate is better than a reader
    #: never getting it: email) or ``"verify"`` (never again blindly: look with ``find_existing`` first, and only
    #: under ``--retry-unconfirmed``; social posts).
    in_doubt: ClassVar[Literal["resend", "verify"]] = "resend"
    #: True when delivering again is harmless and refreshes the output (feed files): every publish sends.
    idempotent: ClassVar[bool] = False
    #: True for a channel that makes many deliveries a run (email): the pipeline shows a progress bar.
    progress: ClassVar[bool] = False
    #: The report's note for each decision the pipeline makes without sending.
    notes: ClassVar[dict[str, str]] = {
        "already_sent": "already sent",
        "in_doubt": "the delivery may have been made: check, then run publish --retry-unconfirmed",
        "not_retried": "failed permanently before; not retried without --force",
        "leased": "another worker is sending it",
    }

    def __init__(self, site: Site, config: Config | None = None) -> None:
        self.site = site
        self.config = config if config is not None else site.config
        #: What was already delivered, for a channel whose rendition shows it (a feed lists the published
        #: entries besides the story's): set by whoever renders for display (preview, the review page).
        self.published: PublishedVersions | None = None

    # --- settings ------------------------------------------------------------------------------------------
    def is_configured(self) -> bool:
        """True when every required setting is present, so the remote adapter is used."""
        return bool(self.required) and all(self.config.is_set(name) for name in self.required)

    def missing_settings(self) -> list[str]:
        return [name for name in self.required if not self.config.is_set(name)]

    def fallback_description(self) -> str:
        """Where deliveries go when the channel is not configured, e.g. "JSON files in outbox/x/"."""
        return f"JSON files in outbox/{self.name}/"

    def destination(self) -> str:
        """One line for ``config check`` and ``publish``: the remote place or the local fallback."""
        return self.title if self.is_configured() else f"local: {self.fallback_description()}"

    def check(self) -> list[str]:
        """Problems with this channel's settings (invalid values); parses every declared setting."""
        from publisher.errors import ConfigError

        problems = []
        for setting in self.settings:
            try:
                self.config.get(setting)
            except ConfigError as exc:
                problems.append(str(exc))
        return problems

    def warnings(self) -> list[str]:
        """Settings that are valid but risky, or work today but may not for long (an old pinned API version):
        ``config check`` prints each as a Warning line."""
        return []

    # --- the interface the pipeline calls ------------------------------------------------------------------
    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        """What this channel would deliver for ``story`` in ``langs``: one rendition per delivery. No side
        effect: ``publisher preview`` and the review page show exactly this."""
        raise NotImplementedError

    def render_many(self, batch: Sequence[tuple[Story, Sequence[str]]], ctx: ChannelContext) -> list[Rendition]:
        """Every rendition of one run; the default renders story by story (the feeds build once for all)."""
        renditions: list[Rendition] = []
        for story, langs in batch:
            for rendition in self.render(story, langs):
                rendition.article = rendition.article or story.slug
                renditions.append(rendition)
        return renditions

    def validate(self, batch: Sequence[tuple[Story, Sequence[str]]]) -> list[str]:
        """Problems that would stop this channel part-way, found before any channel of the run writes: by
        default, whatever rendering each story raises (a post that cannot fit, an account half configured)."""
        from publisher.errors import PublisherError

        problems: list[str] = []
        for story, langs in batch:
            try:
                self.render(story, langs)
            except PublisherError as exc:
                problems.append(str(exc))
        return problems

    def lock_for(self, batch: Sequence[tuple[Story, Sequence[str]]]) -> LockRequest | Sequence[LockRequest] | None:
        """A lock (or several: one per bulletin) the pipeline holds from rendering to the last mark (one
        bulletin sender, one feeds build)."""
        return None

    def deliveries(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Iterable[Planned]:
        """The deliveries the renditions make: by default one per rendition, to its target (email: one per
        subscriber)."""
        return (Planned(rendition.key(), rendition) for rendition in renditions)

    def expected(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> int | None:
        """How many deliveries ``deliveries`` will plan, for a progress bar (None: unknown)."""
        return len(renditions)

    def open(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Sender:
        """A sending session for this run's attempts; the default sends each through ``send``."""
        return Sender(self, ctx)

    def send(self, attempt: Attempt, ctx: ChannelContext) -> Outcome:
        """Make one delivery and say what happened. Raise nothing for a remote failure: return
        ``Outcome.failed`` (it never left, or was refused) or ``Outcome.unconfirmed`` (it may have arrived)."""
        raise NotImplementedError

    def find_existing(self, attempt: Attempt, ctx: ChannelContext) -> Found | None:
        """Look on the platform for a delivery left in doubt (``in_doubt = "verify"`` channels): ``Found`` with
        the progress to resume from, or None. Raise ``LookupUnsupported`` where the platform cannot list what
        was posted, ``LookupFailed`` when the look-up itself failed."""
        raise LookupUnsupported(self.name)

    def where(self, result: Result) -> str:
        """The report's "where" column for one result."""
        if result.outcome is not None and result.outcome.remote_url:
            return result.outcome.remote_url
        if result.decision == "already_sent" and result.previous_url:
            return result.previous_url
        return f"{self.name}:{result.key.target}"

    def tally(self, result: Result) -> Hashable | None:
        """What of ``result`` the report uses, where only that counts (``Results``); None: keep it whole (every
        delivery a line of its own, the default)."""
        return None

    def report(self, results: Sequence[Result], ctx: ChannelContext) -> list[DeliveryReport]:
        """The lines of the ``publish`` table for this channel's results: one per delivery by default."""
        reports = []
        for result in results:
            note = result.note
            if result.outcome is not None:
                note = result.outcome.note or note or (result.outcome.error or "")
            reports.append(DeliveryReport(result.key.article, result.key.lang, self.name, self.where(result),
                                          result.state, note, done_before=int(done_before(result))))
        return reports


def done_before(result: Result) -> bool:
    """True when an earlier run had done this delivery and this run did nothing to it: already sent, or
    skipped again for the same reason (a dry run's plan counts too: it would do nothing)."""
    return result.outcome is None and (result.decision == "already_sent" or (
        result.decision == "skipped" and result.previous_state == "skipped"))


def iter_batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["Channel", "ChannelContext", "Decision", "DeliveryReport", "Result", "Results", "Rendition", "Sender",
           "done_before", "iter_batches"]
