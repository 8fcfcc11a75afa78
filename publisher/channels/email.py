"""The email channel: a bulletin to every active subscriber in their language, over SMTP or into the Maildir outbox.

The pipeline keeps the "never twice" rule (``publisher/pipeline.py``); what this channel adds to it:

* one delivery per subscriber, keyed (article or digest id, subscriber language, "email", address), planned
  by streaming the subscribers in batches (``deliveries``);
* ``in_doubt = "resend"``: a recipient left ``in_flight`` by a crash gets the bulletin again (a reader would
  rather get it twice than never) and is reported as a possible duplicate, as is a message re-sent after a
  connection was lost once the whole message had left;
* the sending session (``open``) keeps at most ``SMTP_CONNECTIONS`` x (``SMTP_MESSAGES_PER_CONNECTION`` + 1)
  recipients in flight (its ``capacity``: those on the wire and one per connection claimed ahead, waiting for
  it; ``SMTP_CONNECTIONS`` x 2 when the server does not offer PIPELINING),
  so a crash or ``kill -9`` leaves at most that many in doubt, paced to ``SMTP_RATE_PER_SECOND`` (a rate every
  worker shares, through a token bucket in the database: ``ctx.rates``, bucket ``rate_bucket()``); a 5xx about
  the recipient is a permanent failure (a 550/551/553 to RCPT also marks the address bounced);
* a refusal of the sender (a 5xx to MAIL FROM, a sending quota, a policy) and ``SMTP_BREAKER_FAILURES``
  failures in a row (the server is down) stop the run: the recipients in hand are ``Outcome.deferred`` with
  ``halt``, the rest stay pending, and a later run sends to them;
* ``EMAIL_TRANSPORT=ses|postmark|mailgun`` sends through that provider's HTTP API instead
  (``publisher/mail/esp.py``): the same claims and marks, the provider's accepted id as the row's
  ``remote_id``, and a call that got no answer ``unconfirmed`` (resent by the next run);
* one process at a time sends a given bulletin (``lock_for``): a second run started meanwhile stops with one
  line instead of sending the rows the first one has not reached yet;
* with BOUNCE_ADDRESS each message's envelope sender is a VERP address naming its subscriber
  (``publisher.bounces.verp``), and hard bounces over BOUNCE_GUARD_RATE stop the run like a sender refusal
  (``publisher.bounces.guard``), the rest left pending.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from publisher.bounces.settings import BOUNCE_SETTINGS
from publisher.channels.base import Channel, ChannelContext, Result, Sender, done_before
from publisher.delivery import (Attempt, DeliveryKey, DeliveryReport, LockRequest, Outcome, Planned, RenderedFile,
                                Rendition)
from publisher.mail.settings import DNS_SETTINGS, ESP_SETTINGS, SMTP_CONNECTIONS, SMTP_RATE_PER_SECOND, SMTP_SETTINGS

if TYPE_CHECKING:
    from types import TracebackType

    from publisher.article import Article, Story
    from publisher.bounces.guard import BounceGuard
    from publisher.bounces.verp import Verp
    from publisher.config import Config
    from publisher.formatters.email import Bulletin
    from publisher.mail.message import MessageBuilder
    from publisher.mail.smtp import SendJob, SendOutcome
    from publisher.site import Site

SUBSCRIBER_BATCH = 1000
RATE_CHUNK_SECONDS = 0.1   # tokens of the shared send rate taken at a time: a tenth of a second's worth
TARGET = "subscribers"
STATE_ORDER = ("sent", "resent", "would_send", "would_resend", "already_sent", "failed", "bounced", "deferred",
               "unconfirmed", "skipped", "not_retried", "in_doubt", "leased")
WORDS = {
    "sent": "sent", "resent": "re-sent after an interruption (possible duplicates)",
    "already_sent": "already sent", "failed": "failed", "bounced": "bounced (address marked bounced)",
    "skipped": "skipped", "not_retried": "failed before (5xx), not retried",
    "would_send": "would be sent", "would_resend": "would be sent again (possible duplicates)",
    "in_doubt": "being sent by another run", "deferred": "left pending for a later run",
    "unconfirmed": "unconfirmed (no answer from the provider; the next run sends them again)",
    "leased": "being sent by another worker",
}


@dataclass
class BulletinReport(DeliveryReport):
    """A line of the report for one bulletin language, with how many of its messages may have arrived twice."""

    possible_duplicates: int = 0


@dataclass
class RunSummary:
    """Counts per subscriber language, and the first errors of each language, for the report table."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    possible_duplicates: Counter[str] = field(default_factory=Counter)

    def add(self, lang: str, what: str, error: str | None = None) -> None:
        self.counts.setdefault(lang, Counter())[what] += 1
        if error:
            found = self.errors.setdefault(lang, [])
            if len(found) < 3 and error not in found:
                found.append(error)

    def note(self, lang: str) -> str:
        counts = self.counts.get(lang, Counter())
        parts = [f"{counts[k]} {WORDS[k]}" for k in STATE_ORDER if counts.get(k)]
        text = ", ".join(parts) or "no subscribers"
        if self.errors.get(lang):
            text += "; " + "; ".join(self.errors[lang])
        return text

    def state(self, lang: str) -> str:
        counts = self.counts.get(lang, Counter())
        if counts.get("failed") or counts.get("bounced"):
            return "failed"
        if counts.get("unconfirmed"):
            return "unconfirmed"
        if counts.get("deferred"):
            return "pending"
        if counts.get("would_send") or counts.get("would_resend"):
            return "dry-run"
        if counts.get("sent") or counts.get("resent") or counts.get("already_sent"):
            return "sent"
        if counts.get("leased"):   # every one of them in another worker's hands
            return "in_flight"
        return "skipped"


class _Transport(Protocol):
    """The SMTP sender and the Maildir, as the sending session sees them (``capacity`` is known once entered:
    it depends on whether the server offers PIPELINING)."""

    capacity: int

    def describe(self) -> str: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...
    def submit(self, job: SendJob) -> None: ...
    def next_outcome(self, timeout: float | None = None) -> SendOutcome | None: ...


@dataclass(frozen=True)
class _SampleReader:
    """The recipient a preview shows a bulletin to."""

    email: str
    name: str | None = None


class EmailChannel(Channel):
    """Email bulletins over SMTP (many connections on one event loop) or an email service provider's HTTP API
    (EMAIL_TRANSPORT), or into the Maildir outbox without SMTP_HOST."""

    name: ClassVar[str] = "email"
    title: ClassVar[str] = "Email bulletin"
    settings = SMTP_SETTINGS + ESP_SETTINGS + DNS_SETTINGS + BOUNCE_SETTINGS
    required: ClassVar[tuple[str, ...]] = ("SMTP_HOST",)
    in_doubt: ClassVar[Literal["resend", "verify"]] = "resend"
    #: The pipeline shows a progress bar for a channel that makes many deliveries.
    progress: ClassVar[bool] = True

    def __init__(self, site: Site, config: Config | None = None) -> None:
        super().__init__(site, config)
        self._digest_id: str | None = None           # set by render_digest: the bulletin lock_for locks
        self._rendered: dict[str, list[str]] = {}    # article -> languages planned, for the report
        #: What an ESP transport talks to instead of the network: a boto3 sesv2 client (tests: botocore's
        #: Stubber on it) or an httpx transport (tests: httpx.MockTransport). None: made from the settings.
        self.esp_client: Any = None

    def _transport(self) -> str:
        """EMAIL_TRANSPORT, or "smtp" while its value is invalid (``check`` reports it)."""
        from publisher.errors import ConfigError
        from publisher.mail.esp import transport_name

        try:
            return transport_name(self.config)
        except ConfigError:
            return "smtp"

    def is_configured(self) -> bool:
        """SMTP_HOST for smtp (else the Maildir); an ESP transport once its settings are all set."""
        transport = self._transport()
        if transport == "smtp":
            return super().is_configured()
        return not self.missing_settings()

    def missing_settings(self) -> list[str]:
        from publisher.mail.esp import missing_for

        transport = self._transport()
        return super().missing_settings() if transport == "smtp" else missing_for(self.config, transport)

    def fallback_description(self) -> str:
        return "Maildir at outbox/mail/"

    def check(self) -> list[str]:
        """The SMTP_* values, plus the bulletin settings that only fail when mail is built (sender, DKIM)."""
        import importlib.util

        from publisher.errors import ConfigError
        from publisher.formatters.email import bulletin_logo
        from publisher.mail.message import MessageBuilder
        from publisher.settings import EMAIL_SETTINGS

        problems = super().check()
        transport = self._transport()
        if transport != "smtp":   # a provider chosen by name must be usable: no silent Maildir fallback
            problems += [f"{name}: needed with EMAIL_TRANSPORT={transport}" for name in self.missing_settings()]
            if transport == "ses" and importlib.util.find_spec("boto3") is None:
                problems.append("EMAIL_TRANSPORT: ses needs boto3: pip install 'publisher[esp]'")
        try:
            for setting in EMAIL_SETTINGS:
                self.config.get(setting)
        except ConfigError:
            return problems       # the core settings check reports it
        try:
            MessageBuilder(self.site, self.config)
            bulletin_logo(self.site, self.config)
        except ConfigError as error:
            problems.append(str(error))
        return problems

    def warnings(self) -> list[str]:
        """SMTP_SECURITY=none with a login to a host other than this machine: the password would go in clear
        (sending refuses to log in)."""
        from publisher.errors import ConfigError
        from publisher.mail.smtp import smtp_server

        if not self.is_configured() or self._transport() != "smtp":
            return []
        try:
            refusal = smtp_server(self.config).refuses_plain_auth()
        except ConfigError:
            return []   # `check()` reports the bad value
        return [refusal] if refusal is not None else []

    def destination(self) -> str:
        from publisher.errors import ConfigError
        from publisher.mail.esp import esp_describe
        from publisher.mail.settings import SMTP_HOST
        from publisher.mail.smtp import smtp_server

        if not self.is_configured():
            return f"local: {self.fallback_description()}"
        if self._transport() != "smtp":
            return f"{esp_describe(self.config, self._transport())} API"
        try:
            return f"SMTP {smtp_server(self.config).describe()}"
        except ConfigError:   # `check()` names the bad value; this line only says where mail would go
            return f"SMTP {self.config.raw(SMTP_HOST.name)} (invalid settings)"

    # --- rendering ------------------------------------------------------------------------------------------

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        """The alert in each language, as a sample subscriber would get it (HTML, text and the whole .eml)."""
        from publisher.formatters.email import BulletinFormatter

        formatter = BulletinFormatter(self.site, self.config)
        original = story.original if story.versions else None
        bulletins = []
        for lang in langs:
            article = story.get(lang)
            if article is not None:
                bulletins.append(formatter.alert(article, original=original))
        theme = original.theme_slug if original is not None else None
        fallback = None
        if original is not None and self._fallback_is_original():
            fallback = original.lang if any(b.lang == original.lang for b in bulletins) else None
        return self._renditions(story.slug, bulletins, theme, fallback)

    def render_digest(self, batch: Sequence[tuple[Story, Sequence[str]]], *, since: datetime,
                      theme: str | None, langs: Sequence[str], originals: dict[str, Article],
                      digest_id: str | None = None) -> list[Rendition]:
        """A digest of the chosen versions of ``batch``, one rendition per language that has any of them
        (delivery id ``digest_id``, else ``digest-YYYY-MM-DD`` of ``since``; then ``-theme``)."""
        from publisher.formatters.email import BulletinFormatter

        formatter = BulletinFormatter(self.site, self.config)
        articles = [article for story, chosen in batch for lang in chosen
                    if (article := story.get(lang)) is not None]
        bulletins = []
        for lang in langs:
            in_lang = [a for a in articles if a.lang == lang]
            if in_lang:
                bulletins.append(formatter.digest(in_lang, lang, since=since, originals=originals))
        digest_id = (digest_id or f"digest-{since:%Y-%m-%d}") + (f"-{theme}" if theme else "")
        fallback = None
        if self._fallback_is_original() and bulletins:
            # For a digest "original" means the language most of its articles were written in.
            rendered = {b.lang for b in bulletins}
            original_langs = Counter(a.lang for a in originals.values() if a.lang in rendered)
            fallback = original_langs.most_common(1)[0][0] if original_langs else bulletins[0].lang
        self._digest_id = digest_id
        return self._renditions(digest_id, bulletins, theme, fallback)

    def _fallback_is_original(self) -> bool:
        return str(self.config.get("BULLETIN_FALLBACK")) == "original"

    def _renditions(self, article: str, bulletins: Sequence[Bulletin], theme: str | None,
                    fallback: str | None) -> list[Rendition]:
        """Each bulletin as a sample reader would get it; ``meta`` says which subscribers it goes to."""
        import email
        from email import policy as email_policy
        from email.message import EmailMessage

        from publisher.mail.message import MessageBuilder, inline_images_as_data

        builder = MessageBuilder(self.site, self.config)
        renditions = []
        for bulletin in bulletins:
            data, _ = builder.wire(bulletin, _SampleReader(f"reader@{builder.domain}"))
            message = email.message_from_bytes(data, policy=email_policy.default)
            assert isinstance(message, EmailMessage)
            html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
            assert isinstance(html_part, EmailMessage) and isinstance(text_part, EmailMessage)
            meta = {"subject": bulletin.subject, "preheader": bulletin.preheader, "from": str(message["From"]),
                    "articles": list(bulletin.articles), "theme": theme, "fallback": bulletin.lang == fallback}
            renditions.append(Rendition(
                # the logo as a data: URL in the preview's HTML, which is shown outside any message
                self.name, bulletin.lang, TARGET, f"{bulletin.kind}.html",
                inline_images_as_data(html_part.get_content(), bulletin), "text/html",
                meta, article=article, payload=bulletin,
                extra=[RenderedFile(f"{bulletin.kind}.txt", text_part.get_content(), "text/plain", meta),
                       RenderedFile(f"{bulletin.kind}.eml", data, "message/rfc822", meta)]))
        return renditions

    # --- planning ---------------------------------------------------------------------------------------------

    def lock_for(self, batch: Sequence[tuple[Story, Sequence[str]]]) -> list[LockRequest]:
        """One sender per bulletin: the pipeline's rule covers a crash, not two runs at once (a cron job and a
        person), which would both send to the readers the other has not reached yet."""
        ids = [self._digest_id] if self._digest_id is not None else [story.slug for story, _ in batch]
        return [LockRequest(f"email-{delivery_id}", wait=False,
                            busy=f"email: another run is sending {delivery_id} right now; run this again when "
                                 "it has finished (it sends only to those still waiting)")
                for delivery_id in ids]

    def deliveries(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Iterator[Planned]:
        """One delivery per active subscriber following the bulletin's theme, in id order, streamed in
        batches: the rendition of their language, else of the fallback language, else a reason to skip."""
        assert ctx.audience is not None, "the email channel needs the subscribers"
        self._rendered = {}    # one run's bulletins: a channel object may serve several runs
        for article, group in _by_article(renditions).items():
            self._rendered[article] = sorted(r.lang for r in group)
            by_lang = {r.lang: r for r in group}
            fallback = next((r for r in group if r.meta.get("fallback")), None)
            for subscriber in ctx.audience.iter_active(theme=group[0].meta.get("theme"),
                                                       batch_size=SUBSCRIBER_BATCH):
                key = DeliveryKey(article, subscriber.lang, self.name, subscriber.email)
                rendition = by_lang.get(subscriber.lang, fallback)
                if rendition is None:
                    yield Planned(key, None, subscriber,
                                  skip=f"no {subscriber.lang} version (BULLETIN_FALLBACK=skip)")
                else:
                    yield Planned(key, rendition, subscriber)

    def expected(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> int | None:
        if ctx.audience is None:
            return None
        return sum(ctx.audience.count(status="active", theme=group[0].meta.get("theme"))
                   for group in _by_article(renditions).values())

    # --- sending ----------------------------------------------------------------------------------------------

    def open(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> BulletinSender:
        """A session over the SMTP sender (SMTP_CONNECTIONS x (SMTP_MESSAGES_PER_CONNECTION + 1) in flight with
        PIPELINING, SMTP_CONNECTIONS x 2 without), an ESP's API (``publisher/mail/esp.py``) or the Maildir (one)."""
        from publisher.mail.maildir import MaildirTransport
        from publisher.mail.message import MessageBuilder
        from publisher.mail.settings import SMTP_MESSAGES_PER_CONNECTION
        from publisher.mail.smtp import SmtpSender, breaker_failures, retry_policy, smtp_server

        builder = MessageBuilder(self.site, self.config, clock=ctx.clock)
        transport: _Transport
        rate = float(self.config.get(SMTP_RATE_PER_SECOND) or 0)
        if self._transport() != "smtp" and self.is_configured():
            from publisher.mail.esp import esp_rate, esp_transport

            transport = esp_transport(self.config, self._transport(), _personalize(builder), sleep=ctx.sleep,
                                      client=self.esp_client)
            rate = esp_rate(self.config, self._transport())
        elif self.is_configured():
            transport = SmtpSender(smtp_server(self.config), _personalize(builder),
                                   int(self.config.get(SMTP_CONNECTIONS)), retry_policy(self.config), sleep=ctx.sleep,
                                   breaker=breaker_failures(self.config),
                                   depth=int(self.config.get(SMTP_MESSAGES_PER_CONNECTION)),
                                   build_data=_personalize(builder, smtp_data=True))
        else:
            transport = MaildirTransport(self.site, _personalize(builder))
        from publisher.bounces.guard import BounceGuard
        from publisher.bounces.settings import BOUNCE_GUARD_AFTER, BOUNCE_GUARD_RATE
        from publisher.bounces.verp import Verp

        verp = Verp.from_config(self.site, self.config, clock=ctx.clock)
        guard = BounceGuard(float(self.config.get(BOUNCE_GUARD_RATE)), int(self.config.get(BOUNCE_GUARD_AFTER)))
        return BulletinSender(self, ctx, transport, builder.sender.addr_spec, rate, verp=verp, guard=guard,
                              bucket=self.rate_bucket())

    def rate_bucket(self) -> str:
        """The name of the shared token bucket of this transport and its host: every worker sending through
        ``email:smtp:mail.example.org:587`` (or ``email:ses:eu-west-1``...) shares that one rate."""
        name = self._transport()
        if name != "smtp" and self.is_configured():
            from publisher.mail.settings import MAILGUN_DOMAIN, POSTMARK_MESSAGE_STREAM, SES_REGION

            where = {"ses": SES_REGION, "postmark": POSTMARK_MESSAGE_STREAM, "mailgun": MAILGUN_DOMAIN}[name]
            return f"email:{name}:{self.config.get(where)}"
        if self.is_configured():
            from publisher.mail.smtp import smtp_server

            server = smtp_server(self.config)
            return f"email:smtp:{server.host}:{server.port}"
        return "email:maildir"

    # --- the report -------------------------------------------------------------------------------------------

    def tally(self, result: Result) -> Hashable | None:
        """A recipient's result counts, it is not a line of its own: what ``report`` reads of it (a halt, with
        its time to retry, is kept whole)."""
        outcome = result.outcome
        if outcome is None:
            return result.key.article, result.key.lang, result.decision, result.previous_state
        if outcome.halt:
            return None
        return (result.key.article, result.key.lang, result.decision, result.previous_state, outcome.state,
                outcome.possible_duplicate, outcome.bounced, outcome.error)

    def report(self, results: Sequence[Result], ctx: ChannelContext) -> list[DeliveryReport]:
        """One line per bulletin and subscriber language: how many were sent, skipped, failed and why."""
        summaries: dict[str, RunSummary] = {article: RunSummary() for article in self._rendered}
        # per (article, language): how many results, and how many of them an earlier run had already done
        seen: Counter[tuple[str, str]] = Counter()
        unchanged: Counter[tuple[str, str]] = Counter()
        for result in results:
            summary = summaries.setdefault(result.key.article, RunSummary())
            lang = result.key.lang
            seen[result.key.article, lang] += 1
            unchanged[result.key.article, lang] += done_before(result)
            outcome = result.outcome
            if outcome is None:
                what = {"send": "would_send", "resend": "would_resend"}.get(result.decision, result.decision)
                summary.add(lang, what)
                continue
            if outcome.possible_duplicate:
                summary.possible_duplicates[lang] += 1
            if outcome.state == "sent":
                summary.add(lang, "resent" if outcome.possible_duplicate else "sent")
            elif outcome.state == "pending":   # the run stopped: the pipeline's "stopped" line says why
                summary.add(lang, "deferred")
            elif outcome.state == "unconfirmed":
                summary.add(lang, "unconfirmed", outcome.error)
            else:
                summary.add(lang, "bounced" if outcome.bounced else "failed", outcome.error)
        where = f"{TARGET} ({self.destination()})"
        reports: list[DeliveryReport] = []
        for article, summary in summaries.items():
            langs = sorted(summary.counts) or self._rendered.get(article, [])
            reports += [BulletinReport(article, lang, self.name, where, summary.state(lang), summary.note(lang),
                                       done_before=unchanged[article, lang]
                                       if unchanged[article, lang] == seen[article, lang] else 0,
                                       possible_duplicates=summary.possible_duplicates[lang]) for lang in langs]
        return reports


class BulletinSender(Sender):
    """The sending session of one run: attempts become jobs of the transport, paced to SMTP_RATE_PER_SECOND.

    Each message is personalized on the transport's thread (the SMTP sender's event loop,
    ``MessageBuilder.wire``): the pipeline's thread only claims, submits and marks.
    """

    def __init__(self, channel: EmailChannel, ctx: ChannelContext, transport: _Transport, sender: str,
                 rate: float, *, verp: Verp | None = None, guard: BounceGuard | None = None,
                 bucket: str = "email") -> None:
        super().__init__(channel, ctx)
        self.transport = transport
        self.capacity = transport.capacity
        self.sender = sender
        self.verp = verp        # BOUNCE_ADDRESS: each message's envelope sender names its subscriber
        self.guard = guard      # BOUNCE_GUARD_RATE: too many hard bounces stop the run
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next_slot: float | None = None
        # The rate is shared by every worker through a token bucket in the database (ctx.rates), taken a tenth
        # of a second's worth at a time: one round trip per chunk, not per message; the burst is one chunk.
        self.rate = rate
        self.bucket = bucket
        self.chunk = max(1, math.ceil(rate * RATE_CHUNK_SECONDS)) if rate > 0 else 0
        self._tokens = 0
        self._in_flight = 0
        self._held: list[tuple[Attempt, Outcome]] = []   # not sent: the guard stopped the run

    def __enter__(self) -> BulletinSender:
        self.transport.__enter__()
        self.capacity = self.transport.capacity
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.transport.__exit__(kind, error, traceback)

    def submit(self, attempt: Attempt) -> None:
        from publisher.mail.smtp import SendJob

        if self.guard is not None and self.guard.tripped:
            # Claimed before the guard's verdict arrived: not sent, left pending with the rest.
            self._held.append((attempt, Outcome.deferred(self.guard.tripped, halt=True)))
            return
        self._pace()
        recipient = attempt.recipient
        self.transport.submit(SendJob(attempt.key, self.envelope_sender(recipient), recipient.email,
                                      payload=(attempt.rendition.payload, recipient), context=attempt))
        self._in_flight += 1

    def envelope_sender(self, recipient: Any) -> str:
        """MAIL FROM (the Return-Path): the VERP address naming this subscriber with BOUNCE_ADDRESS, else the
        From address. The From header, and so the DKIM signature's domain, stay the same."""
        subscriber_id = getattr(recipient, "id", None)
        if self.verp is None or subscriber_id is None:
            return self.sender
        return self.verp.address(subscriber_id, recipient.email)

    def collect(self, *, wait: bool) -> list[tuple[Attempt, Outcome]]:
        done: list[SendOutcome] = []
        if wait and self._in_flight and not self._held:
            first = self.transport.next_outcome()
            if first is not None:
                done.append(first)
        while (ready := self.transport.next_outcome(timeout=0)) is not None:
            done.append(ready)
        self._in_flight -= len(done)
        results = [(outcome.job.context, _outcome(outcome, outcome.job.context.generation)) for outcome in done]
        if self.guard is not None:
            for _, outcome in results:
                self.guard.count(sent=outcome.state == "sent", bounced=outcome.bounced)
        # Once tripped, the next attempts come back unsent with ``halt``: the pipeline stops claiming, and
        # those still in flight finish and are marked as they went.
        held, self._held = self._held, []
        return results + held

    def _pace(self) -> None:
        """Wait for this message's slot: one interval after the last message of this process, and a token of
        the bucket every worker shares (``ctx.rates``). No wait exceeds what the rate needs (one interval; a
        chunk's worth for the bucket), so a clock set back (the context's clock may be the wall clock) cannot
        stall the run."""
        if not self.interval:
            return
        now = self.ctx.clock()
        slot = now if self._next_slot is None else self._next_slot
        if slot > now:
            self.ctx.sleep(min(slot - now, self.interval))
        self._next_slot = max(now, slot) + self.interval
        if self.ctx.rates is None:
            return
        while self._tokens < 1:
            granted, wait = self.ctx.rates.take(self.bucket, self.chunk, rate=self.rate, burst=self.chunk,
                                                now=self.ctx.clock())
            self._tokens += granted
            if not granted:   # the other workers took this moment's tokens
                self.ctx.sleep(min(max(wait, 0.0), self.chunk * self.interval))
        self._tokens -= 1


def _outcome(sent: SendOutcome, generation: int = 0) -> Outcome:
    """What one SMTP (or Maildir) outcome means to the pipeline; the detail is the row's detail (with the
    ``--force`` generation the Message-ID was made from, so the next forced copy gets a new one)."""
    detail: dict[str, Any] = {"message_id": sent.message_id, "attempts": sent.attempts}
    if generation:
        detail["generation"] = generation
    remote_id = getattr(sent, "remote_id", None) or sent.message_id   # an ESP's accepted id, else our Message-ID
    provider = getattr(sent, "provider", "")
    if provider:
        detail["provider"] = provider
    if sent.state == "sent":
        return Outcome.sent(remote_id, detail=detail, possible_duplicate=sent.possible_duplicate)
    if sent.code is not None:
        detail["code"] = sent.code
    if sent.state == "pending":   # the sender halted: not this recipient's fault, a later run sends it
        return Outcome.deferred(sent.error or "the SMTP session stopped", halt=sent.halt,
                                possible_duplicate=sent.possible_duplicate, detail=detail)
    if sent.state == "unconfirmed":   # an ESP's request left and no answer came: the next run resends it
        return Outcome.unconfirmed(sent.error or "no answer", detail=detail)
    return Outcome.failed(sent.error or "not sent", permanent=sent.permanent, bounced=sent.bounced,
                          possible_duplicate=sent.possible_duplicate, detail=detail)


def _personalize(builder: MessageBuilder, *, smtp_data: bool = False) -> Any:
    """``build(job) -> (bytes, Message-ID)`` for the transports: the job's bulletin for the job's recipient, with
    the Message-ID derived from the delivery's key and ``--force`` generation (``smtp_data``: as SMTP's DATA
    body, dot-stuffed)."""
    def build(job: SendJob) -> tuple[bytes, str]:
        bulletin, recipient = job.payload
        generation = job.context.generation if isinstance(job.context, Attempt) else 0
        # The delivery's own Message-ID: a copy re-sent after a crash carries the first copy's.
        return builder.wire(bulletin, recipient, message_id=builder.delivery_message_id(job.key, generation),
                            smtp_data=smtp_data)

    return build


def _by_article(renditions: Iterable[Rendition]) -> dict[str, list[Rendition]]:
    groups: dict[str, list[Rendition]] = {}
    for rendition in renditions:
        groups.setdefault(rendition.article, []).append(rendition)
    return groups


__all__ = ["BulletinReport", "BulletinSender", "EmailChannel", "RunSummary"]
