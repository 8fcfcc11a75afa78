"""The email channel: bulletins to every active subscriber in their language, over SMTP or into the Maildir outbox.

Crash safety, the rule this module keeps:

* Each recipient of a bulletin has one ledger row, keyed (article or digest id, subscriber language, "email",
  address). Rows are created ``pending`` in bulk, one batch of subscribers at a time.
* A row is marked ``in_flight`` (``ledger.begin``, committed) before its SMTP transaction starts and ``sent``
  only after the server answered 250 to the message. Every ledger write happens on the thread that streams
  the subscribers (one SQLite writer); the outcomes that arrived together and the recipients about to start
  are written in one transaction, so a commit carries several deliveries.
* At most ``SMTP_CONNECTIONS`` rows are in flight at any moment (a recipient is begun only when a connection is
  free for it), so a crash or ``kill -9`` leaves at most that many rows in doubt.
* A re-run skips ``sent`` rows, sends ``pending`` ones and failed ones that may succeed now (4xx, lost
  connection), and **re-sends rows left ``in_flight``**: the server may or may not have accepted them, and a
  reader would rather get a bulletin twice than never. Those re-sends are counted and reported as possible
  duplicates, as are messages re-sent after a connection was lost once the whole message had left. Permanent
  failures (5xx) are not retried unless ``--force``.
* One process at a time sends a given bulletin (``_one_sender``): a second run started meanwhile stops with one
  line instead of sending the rows the first one has not reached yet.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from publisher.channels.base import Channel, DeliveryReport, PublishContext, Rendition
from publisher.settings import (Setting, parse_non_negative_float, parse_non_negative_int, parse_positive_float,
                                parse_positive_int)

if TYPE_CHECKING:
    from email.message import EmailMessage

    from publisher.article import Article, Story
    from publisher.channels.smtp_pool import SendJob, SendOutcome
    from publisher.formatters.email import Bulletin
    from publisher.delivery import Delivery, DeliveryKey
    from publisher.site import Site
    from publisher.subscribers import Subscriber

SMTP_HOST = Setting("SMTP_HOST", "SMTP server for bulletins; without it mail goes to the Maildir outbox/mail/.")
SMTP_PORT = Setting("SMTP_PORT", "SMTP port. Default: 465 with SMTP_SECURITY=ssl, 587 with starttls, 25 with none.",
                    parse=parse_positive_int)
SMTP_USERNAME = Setting("SMTP_USERNAME", "SMTP login name (no login when unset).")
SMTP_PASSWORD = Setting("SMTP_PASSWORD", "SMTP password.", secret=True)
SMTP_SECURITY = Setting("SMTP_SECURITY", "How the connection is protected: starttls, ssl or none.",
                        default="starttls", choices=("starttls", "ssl", "none"))
SMTP_CONNECTIONS = Setting("SMTP_CONNECTIONS", "Parallel SMTP connections (also the most recipients that can be "
                           "in doubt after a crash).", default=4, parse=parse_positive_int)
SMTP_RATE_PER_SECOND = Setting("SMTP_RATE_PER_SECOND", "Most messages per second (0: as fast as the server takes "
                               "them).", default=0.0, parse=parse_non_negative_float)
SMTP_TIMEOUT = Setting("SMTP_TIMEOUT", "Seconds to wait for the SMTP server to answer.", default=30.0,
                       parse=parse_positive_float)
SMTP_RETRIES = Setting("SMTP_RETRIES", "How many times a message refused with a 4xx reply is tried again.",
                       default=3, parse=parse_non_negative_int)
SMTP_RETRY_DELAY = Setting("SMTP_RETRY_DELAY", "Seconds before the first retry after a 4xx reply; doubles each time.",
                           default=5.0, parse=parse_non_negative_float)

SUBSCRIBER_BATCH = 1000
STATE_ORDER = ("sent", "resent", "would_send", "would_resend", "already_sent", "failed", "bounced", "skipped",
               "not_retried")


@dataclass
class BulletinRun:
    """One bulletin to send: the ledger id, the rendered bulletin per language, and who gets which."""

    delivery_id: str                          # ledger "article": the story slug, or "digest-2026-11-01[-theme]"
    bulletins: dict[str, Bulletin]            # by language of the version
    theme: str | None = None                  # only subscribers following this theme (or every theme)
    fallback_lang: str | None = None          # BULLETIN_FALLBACK=original: the original's language

    def bulletin_for(self, lang: str) -> Bulletin | None:
        if lang in self.bulletins:
            return self.bulletins[lang]
        return self.bulletins.get(self.fallback_lang) if self.fallback_lang else None


@dataclass
class RunSummary:
    """Counts per subscriber language, and the first error of each kind, for the report table."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    possible_duplicates: int = 0

    def add(self, lang: str, what: str, error: str | None = None) -> None:
        self.counts.setdefault(lang, Counter())[what] += 1
        if error:
            found = self.errors.setdefault(lang, [])
            if len(found) < 3 and error not in found:
                found.append(error)

    def note(self, lang: str) -> str:
        counts = self.counts.get(lang, Counter())
        words = {
            "sent": "sent", "resent": "re-sent after an interruption (possible duplicates)",
            "already_sent": "already sent", "failed": "failed", "bounced": "bounced (address marked bounced)",
            "skipped": "skipped", "not_retried": "failed before (5xx), not retried",
            "would_send": "would be sent", "would_resend": "would be sent again (possible duplicates)",
        }
        parts = [f"{counts[k]} {words[k]}" for k in STATE_ORDER if counts.get(k)]
        text = ", ".join(parts) or "no subscribers"
        if self.errors.get(lang):
            text += "; " + "; ".join(self.errors[lang])
        return text

    def state(self, lang: str) -> str:
        counts = self.counts.get(lang, Counter())
        if counts.get("failed") or counts.get("bounced"):
            return "failed"
        if counts.get("would_send") or counts.get("would_resend"):
            return "dry-run"
        if counts.get("sent") or counts.get("resent") or counts.get("already_sent"):
            return "sent"
        return "skipped"


class EmailChannel(Channel):
    """Email bulletins over SMTP (a pool of connections), or into the Maildir outbox without SMTP_HOST."""

    name = "email"
    title = "Email bulletin"
    settings = (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_SECURITY, SMTP_CONNECTIONS,
                SMTP_RATE_PER_SECOND, SMTP_TIMEOUT, SMTP_RETRIES, SMTP_RETRY_DELAY)
    required = ("SMTP_HOST",)

    def fallback_description(self) -> str:
        return "Maildir at outbox/mail/"

    def check(self) -> list[str]:
        """The SMTP_* values, plus the bulletin settings that only fail when mail is built (sender, DKIM)."""
        from publisher.errors import ConfigError
        from publisher.formatters.email import MessageBuilder

        from publisher.settings import EMAIL_SETTINGS

        problems = super().check()
        try:
            for setting in EMAIL_SETTINGS:
                self.config.get(setting)
        except ConfigError:
            return problems       # the core settings check reports it
        try:
            MessageBuilder(self.site, self.config)
        except ConfigError as error:
            problems.append(str(error))
        return problems

    def destination(self) -> str:
        from publisher.errors import ConfigError

        if not self.is_configured():
            return f"local: {self.fallback_description()}"
        try:
            return f"SMTP {smtp_server(self.config).describe()}"
        except ConfigError:   # `check()` names the bad value; this line only says where mail would go
            return f"SMTP {self.config.raw(SMTP_HOST.name)} (invalid settings)"

    # -- Channel interface ---------------------------------------------------------------------

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        """The alert in each language, as a sample subscriber would get it (HTML, text and the whole .eml)."""
        import email
        from email import policy as email_policy

        from publisher.formatters.email import MessageBuilder
        from publisher.subscribers import Subscriber

        builder = MessageBuilder(self.site, self.config)
        run = self.alert_run(story, langs)
        renditions = []
        for lang, bulletin in run.bulletins.items():
            sample = Subscriber(f"reader@{builder.domain}", None, lang, "active", [], None, None)  # type: ignore[arg-type]
            data, _ = builder.wire(bulletin, sample)
            message = email.message_from_bytes(data, policy=email_policy.default)
            html_part = message.get_body(("html",))
            text_part = message.get_body(("plain",))
            meta = {"subject": bulletin.subject, "preheader": bulletin.preheader, "from": str(message["From"])}
            target = "subscribers"
            renditions += [
                Rendition(self.name, lang, target, "alert.html", html_part.get_content(), "text/html", meta),
                Rendition(self.name, lang, target, "alert.txt", text_part.get_content(), "text/plain", meta),
                Rendition(self.name, lang, target, "alert.eml", data, "message/rfc822", meta),
            ]
        return renditions

    def publish(self, story: Story, langs: Sequence[str], ctx: PublishContext) -> list[DeliveryReport]:
        """Send the alert for `story` to every active subscriber who follows its theme."""
        run = self.alert_run(story, langs)
        if not run.bulletins:
            return []
        summary = self.deliver(run, ctx)
        return self.reports(run, summary)

    # -- bulletins -----------------------------------------------------------------------------

    def alert_run(self, story: Story, langs: Sequence[str]) -> BulletinRun:
        """The alert for one story, rendered once per language it may be published in."""
        from publisher.formatters.email import BulletinFormatter

        formatter = BulletinFormatter(self.site, self.config)
        original = story.original if story.versions else None
        bulletins = {}
        for lang in langs:
            article = story.get(lang)
            if article is not None:
                bulletins[lang] = formatter.alert(article, original=original)
        theme = original.theme_slug if original is not None else None
        return BulletinRun(story.slug, bulletins, theme=theme, fallback_lang=self._fallback_lang(original, bulletins))

    def digest_run(self, articles: Sequence[Article], *, since: Any, theme: str | None,
                   langs: Sequence[str], originals: dict[str, Article]) -> BulletinRun:
        """A digest of `articles` (already filtered), rendered once per language that has any of them."""
        from publisher.formatters.email import BulletinFormatter

        formatter = BulletinFormatter(self.site, self.config)
        bulletins = {}
        for lang in langs:
            in_lang = [a for a in articles if a.lang == lang]
            if in_lang:
                bulletins[lang] = formatter.digest(in_lang, lang, since=since, originals=originals)
        delivery_id = f"digest-{since:%Y-%m-%d}" + (f"-{theme}" if theme else "")
        fallback = None
        if str(self.config.get("BULLETIN_FALLBACK")) == "original" and bulletins:
            # For a digest "original" means the language most of its articles were written in.
            original_langs = Counter(a.lang for a in originals.values() if a.lang in bulletins)
            fallback = original_langs.most_common(1)[0][0] if original_langs else next(iter(bulletins))
        return BulletinRun(delivery_id, bulletins, theme=theme, fallback_lang=fallback)

    def _fallback_lang(self, original: Article | None, bulletins: dict[str, Bulletin]) -> str | None:
        if original is None or str(self.config.get("BULLETIN_FALLBACK")) != "original":
            return None
        return original.lang if original.lang in bulletins else None

    # -- delivery ------------------------------------------------------------------------------

    def plan(self, run: BulletinRun, ctx: PublishContext) -> RunSummary:
        """What `deliver` would do, read from the subscriber list and the ledger; writes nothing."""
        from publisher.delivery import DeliveryKey

        summary = RunSummary()
        subscribers = self.site.subscribers()
        for batch in _batches(subscribers.iter_active(theme=run.theme, batch_size=SUBSCRIBER_BATCH)):
            keys = [DeliveryKey(run.delivery_id, s.lang, self.name, s.email) for s in batch]
            rows = ctx.ledger.get_many(keys)
            for subscriber, key in zip(batch, keys):
                decision = _decide(rows.get(key), run.bulletin_for(subscriber.lang), ctx.force)
                summary.add(subscriber.lang, {"send": "would_send", "resend": "would_resend"}.get(decision, decision))
        return summary

    def deliver(self, run: BulletinRun, ctx: PublishContext) -> RunSummary:
        """Send `run` to every active subscriber not yet sent, keeping the ledger rule in the module docstring."""
        with _one_sender(self.site, run.delivery_id):
            return self._deliver(run, ctx)

    def _deliver(self, run: BulletinRun, ctx: PublishContext) -> RunSummary:
        from publisher.delivery import DeliveryKey

        ledger = ctx.ledger
        subscribers = self.site.subscribers()
        factory = MessageFactory(self.site, self.config, run.bulletins)
        summary = RunSummary()
        total = subscribers.count(status="active", theme=run.theme)
        rate = float(self.config.get(SMTP_RATE_PER_SECOND) or 0)
        transport = self._transport(factory)

        def recipients() -> Iterator[tuple[Subscriber, DeliveryKey, Bulletin, bool]]:
            """Who gets a message, in id order; decided from the ledger one batch of subscribers at a time."""
            for batch in _batches(subscribers.iter_active(theme=run.theme, batch_size=SUBSCRIBER_BATCH)):
                keys = [DeliveryKey(run.delivery_id, s.lang, self.name, s.email) for s in batch]
                ledger.ensure_pending(keys)
                rows = ledger.get_many(keys)
                chosen, newly_skipped = [], []
                for subscriber, key in zip(batch, keys):
                    row, bulletin = rows.get(key), run.bulletin_for(subscriber.lang)
                    decision = _decide(row, bulletin, ctx.force)
                    if decision in ("send", "resend"):
                        chosen.append((subscriber, key, bulletin, decision == "resend"))
                        continue
                    if decision == "skipped" and (row is None or row.state != "skipped"):
                        newly_skipped.append(key)
                    summary.add(subscriber.lang, decision)
                    progress.advance()
                if newly_skipped:
                    with ledger.batch():
                        for key in newly_skipped:
                            ledger.mark(key, "skipped", error=f"no {key.lang} version (BULLETIN_FALLBACK=skip)")
                yield from chosen

        def count(outcome: SendOutcome) -> None:
            lang = outcome.job.key.lang
            if outcome.possible_duplicate:
                summary.possible_duplicates += 1
            if outcome.state == "sent":
                summary.add(lang, "resent" if outcome.possible_duplicate else "sent")
            else:
                summary.add(lang, "bounced" if outcome.bounced else "failed", outcome.error)
            progress.advance()

        todo = recipients()
        in_flight = 0
        exhausted = False
        next_slot = time.monotonic()
        with transport, _Progress(ctx, total, transport.describe()) as progress:
            while True:
                outcomes: list[SendOutcome] = []
                if in_flight and (exhausted or in_flight >= transport.connections):
                    outcomes.append(transport.next_outcome())
                    outcomes += transport.ready_outcomes()
                # One recipient in flight per connection, never more.
                starting = []
                while not exhausted and in_flight - len(outcomes) + len(starting) < transport.connections:
                    item = next(todo, None)
                    if item is None:
                        exhausted = True
                    else:
                        starting.append(item)
                if not outcomes and not starting:
                    break
                # The outcomes just received and the recipients about to start: one transaction, one commit.
                with ledger.batch():
                    ledger.mark_many([ledger_mark(outcome) for outcome in outcomes])
                    ledger.begin_many([key for _, key, _, _ in starting])
                for outcome in outcomes:
                    if outcome.bounced:
                        subscribers.mark_bounced(outcome.job.recipient)
                for outcome in outcomes:
                    count(outcome)
                in_flight -= len(outcomes)
                for subscriber, key, bulletin, resend in starting:
                    if rate > 0:
                        now = time.monotonic()
                        if next_slot > now:
                            time.sleep(next_slot - now)
                        next_slot = max(now, next_slot) + 1.0 / rate
                    transport.submit(_job(factory.sender, bulletin, subscriber, key, resend=resend))
                    in_flight += 1
        return summary

    def reports(self, run: BulletinRun, summary: RunSummary) -> list[DeliveryReport]:
        where = self.destination()
        langs = sorted(summary.counts) or sorted(run.bulletins)
        return [DeliveryReport(run.delivery_id, lang, self.name, f"subscribers ({where})", summary.state(lang),
                               summary.note(lang)) for lang in langs]

    def _transport(self, factory: MessageFactory) -> Any:
        from publisher.channels.smtp_pool import RetryPolicy, SmtpPool

        if not self.is_configured():
            return MaildirTransport(self.site, factory)
        retry = RetryPolicy(int(self.config.get(SMTP_RETRIES)), float(self.config.get(SMTP_RETRY_DELAY)))
        pool = SmtpPool(smtp_server(self.config), factory, int(self.config.get(SMTP_CONNECTIONS)), retry)
        return _PoolTransport(pool)


@contextmanager
def _one_sender(site: Site, delivery_id: str) -> Iterator[None]:
    """Only one process sends a given bulletin at a time.

    The ledger rule covers a crash, not two runs at once: a second run would find the first one's rows
    pending or in flight and send them as well (a cron job and a person, or two terminals). It stops with
    one line instead. The lock is the kernel's, so a killed run never leaves it held.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: runs are not serialized
        yield
        return
    from publisher.errors import ChannelError

    folder = site.state_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"email-{re.sub(r'[^A-Za-z0-9._-]', '_', delivery_id)}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ChannelError(f"email: another run is sending {delivery_id} right now; run this again when it "
                               "has finished (it sends only to those still waiting)") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _decide(row: Delivery | None, bulletin: Bulletin | None, force: bool) -> str:
    """What to do with one recipient, from its ledger row: see the rule in the module docstring."""
    state = row.state if row is not None else "pending"
    if state == "sent" and not force:
        return "already_sent"
    if bulletin is None:
        return "skipped"
    if state in ("in_flight", "unconfirmed"):
        return "resend"
    if state == "failed" and row is not None and row.detail.get("permanent") and not force:
        return "not_retried"
    return "send"


def _job(sender: str, bulletin: Bulletin, subscriber: Subscriber, key: DeliveryKey, *, resend: bool) -> SendJob:
    from publisher.channels.smtp_pool import SendJob

    return SendJob(key, sender, subscriber.email, payload=(bulletin.lang, subscriber), context=resend)


class MessageFactory:
    """Builds a job's message from its (bulletin language, subscriber) payload, on the worker's thread."""

    def __init__(self, site: Site, config: Any, bulletins: dict[str, Bulletin]) -> None:
        from publisher.formatters.email import MessageBuilder

        self.bulletins = {bulletin.lang: bulletin for bulletin in bulletins.values()}
        self.builder = MessageBuilder(site, config)
        self.sender = self.builder.sender.addr_spec

    def __call__(self, job: SendJob) -> tuple[bytes, str]:
        lang, subscriber = job.payload
        return self.builder.wire(self.bulletins[lang], subscriber)


def _batches(subscribers: Iterator[Subscriber]) -> Iterator[list[Subscriber]]:
    batch: list[Subscriber] = []
    for subscriber in subscribers:
        batch.append(subscriber)
        if len(batch) >= SUBSCRIBER_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def ledger_mark(outcome: SendOutcome) -> tuple[DeliveryKey, str, str | None, str | None, dict[str, Any]]:
    """The ledger row an outcome becomes: ``sent`` with the Message-ID, or ``failed`` with the server's words."""
    job = outcome.job
    outcome.possible_duplicate = outcome.possible_duplicate or bool(job.context)   # context: was in flight
    detail: dict[str, Any] = {"message_id": outcome.message_id, "attempts": outcome.attempts}
    if outcome.possible_duplicate:
        detail["possible_duplicate"] = True
    if outcome.state == "sent":
        return job.key, "sent", outcome.message_id, None, detail
    detail["permanent"] = outcome.permanent
    if outcome.code is not None:
        detail["code"] = outcome.code
    return job.key, "failed", None, outcome.error, detail


class _PoolTransport:
    """The SMTP pool behind the small interface `deliver` uses."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.connections = pool.connections

    def describe(self) -> str:
        return f"SMTP {self.pool.server.describe()}"

    def __enter__(self) -> _PoolTransport:
        from publisher.errors import ChannelError

        try:
            self.pool.__enter__()
        except OSError as error:   # smtplib errors are OSErrors too
            raise ChannelError(f"SMTP {self.pool.server.describe()}: cannot connect: {_one_line(error)}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.__exit__(*exc)

    def submit(self, job: SendJob) -> None:
        self.pool.submit(job)

    def next_outcome(self) -> SendOutcome:
        outcome = self.pool.next_outcome()
        assert outcome is not None
        return outcome

    def ready_outcomes(self) -> list[SendOutcome]:
        ready = []
        while (outcome := self.pool.next_outcome(timeout=0)) is not None:
            ready.append(outcome)
        return ready


class MaildirTransport:
    """The local fallback: each message is written to outbox/mail/ (tmp/ then new/, never half-written)."""

    connections = 1

    def __init__(self, site: Site, build: MessageFactory) -> None:
        self.site = site
        self.build = build
        self._done: list[SendOutcome] = []

    def describe(self) -> str:
        return "Maildir outbox/mail/"

    def __enter__(self) -> MaildirTransport:
        from publisher.channels.outbox import maildir

        self.box = maildir(self.site)
        return self

    def __exit__(self, *exc: object) -> None:
        self.box.close()

    def submit(self, job: SendJob) -> None:
        from publisher.channels.smtp_pool import SendOutcome

        data, message_id = self.build(job)
        self.box.add(data)
        self._done.append(SendOutcome(job, "sent", message_id=message_id))

    def next_outcome(self) -> SendOutcome:
        return self._done.pop(0)

    def ready_outcomes(self) -> list[SendOutcome]:
        ready, self._done = self._done, []
        return ready


class _Progress:
    """A rich progress bar with rate and time left on the context's console; silent without one."""

    def __init__(self, ctx: PublishContext, total: int, where: str) -> None:
        self.console = ctx.console
        self.total = total
        self.where = where
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        if self.console is not None and self.total:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self._bar = Progress(
                TextColumn("[bold]email[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.where, total=self.total, rate="")
        return self

    def advance(self) -> None:
        if self._bar is not None:
            task = self._bar.tasks[0]
            speed = task.speed
            self._bar.update(self._task, advance=1, rate=f"{speed:,.0f} msg/s" if speed else "")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def smtp_server(config: Any) -> Any:
    """The SMTP_* settings as an `SmtpServer`."""
    from publisher.channels.smtp_pool import SmtpServer

    security = str(config.get(SMTP_SECURITY))
    port = config.get(SMTP_PORT) or {"ssl": 465, "starttls": 587, "none": 25}[security]
    return SmtpServer(
        host=str(config.get(SMTP_HOST)),
        port=int(port),
        security=security,
        username=config.get(SMTP_USERNAME) or None,
        password=config.get(SMTP_PASSWORD) or None,
        timeout=float(config.get(SMTP_TIMEOUT)),
    )


def send_transactional(site: Site, message: EmailMessage) -> str:
    """Send one message now (a confirmation mail): over SMTP when configured, else into the Maildir.

    Fills in From (BULLETIN_FROM), Date and Message-ID when missing. Returns where it went:
    ``"smtp://host:port"`` or the path of the Maildir file.
    """
    from email import policy
    from email.utils import format_datetime, make_msgid

    from publisher.channels.outbox import maildir
    from publisher.errors import ChannelError
    from publisher.formatters.email import sender_address

    config = site.config
    sender = sender_address(site, config)
    if message["From"] is None:
        message["From"] = sender
    if message["Date"] is None:
        from datetime import datetime, timezone

        message["Date"] = format_datetime(datetime.now(timezone.utc))
    if message["Message-ID"] is None:
        message["Message-ID"] = make_msgid(domain=sender.domain)
    channel = EmailChannel(site, config)
    if not channel.is_configured():
        box = maildir(site)
        try:
            key = box.add(message.as_bytes(policy=policy.SMTP))
        finally:
            box.close()
        return str(site.outbox_dir / "mail" / "new" / key)
    server = smtp_server(config)
    recipients = [address.addr_spec for header in ("To", "Cc", "Bcc")
                  for address in getattr(message[header], "addresses", ())]
    try:
        conn = server.connect()
        try:
            conn.send_message(message, from_addr=sender.addr_spec, to_addrs=recipients)
        finally:
            conn.quit()
    except OSError as error:   # smtplib's exceptions are OSErrors
        raise ChannelError(f"SMTP {server.describe()}: {_one_line(error)}") from None
    return f"smtp://{server.describe()}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
