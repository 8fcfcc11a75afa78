"""Bulletin subscribers: add, import, confirm, unsubscribe and stream them, each value checked on the way in."""

from __future__ import annotations

import codecs
import functools
import csv
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from publisher.errors import InputError

if TYPE_CHECKING:
    from email_validator import EmailNotValidError, ValidatedEmail

    from publisher.store import SubscriberStore

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained", "suppressed")
#: Statuses never mailed again, whatever asks (an import, ``subscribers add``, a web form): only
#: ``Subscribers.unsuppress`` (``publisher subscribers unsuppress``) brings such an address back.
SUPPRESSED = ("bounced", "complained", "suppressed")


@dataclass
class Subscriber:
    """One address on the bulletin list, with the language it reads and the themes it follows."""

    email: str
    name: str | None
    lang: str
    status: str
    themes: list[str]
    created_at: datetime
    confirmed_at: datetime | None
    updated_at: datetime | None = None   # the last change of any field (a pending address: when it asked)
    status_reason: str | None = None     # why the status last became bounced/complained/suppressed (or came back)
    status_at: datetime | None = None    # and when
    id: int | None = None                # the store's row id (a VERP token names the subscriber by it)

    @property
    def suppressed(self) -> bool:
        """True when nothing may be mailed to this address (see ``SUPPRESSED``)."""
        return self.status in SUPPRESSED

    def follows(self, theme: str | None) -> bool:
        """True when a bulletin on `theme` is for this subscriber (no themes chosen = every theme)."""
        return not self.themes or theme is None or theme in self.themes


@dataclass
class ImportReport:
    """What `Subscribers.import_csv` did: counts, and one line per rejected row."""

    added: int = 0
    already_present: int = 0
    rejected: list[str] = field(default_factory=list)
    status: str = "active"   # of the addresses added
    # Where the list ended before and after the import (``SubscriberStore.position``): the added addresses
    # lie between, and ``Subscribers.added_by`` streams them; no list of them is kept in memory.
    position: int = 0
    through: int = 0


#: Distinct domains whose email-validator check is kept (``_check_each_domain_once``)
DOMAIN_CHECKS_KEPT = 4096


@functools.cache
def _email_validator() -> tuple[Callable[..., ValidatedEmail], type[EmailNotValidError]]:
    """email-validator's ``validate_email`` and its error, imported on first use (not at the CLI's start-up)
    and bound once: an ``import`` statement per address cost an import-system call each (a second a million
    rows of ``subscribers import``). Its domain check is made once per distinct domain from then on."""
    import sys

    from email_validator import EmailNotValidError, validate_email

    _check_each_domain_once(sys.modules["email_validator.validate_email"])
    return validate_email, EmailNotValidError


def _check_each_domain_once(module: Any) -> None:
    """Keep email-validator's check of a domain for the next address at that domain.

    ``validate_email`` checks the part after the @ of every address (the IDNA/UTS-46 mapping, then the rules for
    labels and the top-level domain): about 60% of its time for an address at a plain ASCII domain, and a list
    holds many addresses at few domains. That check depends on the domain's text and two flags only (and on
    email-validator's module-level lists, which publisher leaves as they are), so the last
    ``DOMAIN_CHECKS_KEPT`` valid domains keep their result: ``validate_email`` calls the check by its name in its
    own module, where this puts a cached copy (the result, a dict, is only read there). A domain that fails
    raises, which is never cached: it is checked again each time, with the same message. If an email-validator
    release renames the function, addresses are checked as before, only slower (a test then fails, so the speed
    is not lost unseen).
    """
    check = getattr(module, "validate_email_domain_name", None)
    if check is not None:   # called once per process (``_email_validator``): never wraps its own copy
        module.validate_email_domain_name = functools.lru_cache(maxsize=DOMAIN_CHECKS_KEPT)(check)


def normalize_email(address: str, where: str = "email", *, check_dns: bool = False,
                    dns_resolver: Any = None) -> str:
    """The address as email-validator normalizes it (domain lower-cased, IDNA); InputError if invalid.

    Only the syntax is checked, unless ``check_dns``: deliverability needs DNS, and the tool works offline.
    """
    validate_email, EmailNotValidError = _email_validator()
    candidate = (address or "").strip()
    if not candidate:
        raise InputError(where, "is empty")
    try:
        if check_dns:
            return validate_email(candidate, check_deliverability=True, dns_resolver=dns_resolver).normalized
        return validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InputError(where, f"{candidate!r} is not a valid address ({error})") from None


def _dns_resolver(resolver: Any = None) -> Any:
    """A resolver that asks about each domain once per import (a list holds many addresses at one domain)."""
    from email_validator import caching_resolver

    return caching_resolver(dns_resolver=resolver)


def _text_lines(handle: BinaryIO, filename: str) -> Iterator[str]:
    """The file's lines as text, one at a time (a BOM dropped); InputError naming the line that is not UTF-8."""
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{filename}:{number}", "not UTF-8 text; save the file as UTF-8 CSV") from None


def _csv_rows(reader: Any, filename: str) -> Iterator[list[str]]:
    """The reader's rows; a row that is not valid CSV becomes an InputError naming the line it starts on."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(f"{filename}:{start}", f"not valid CSV ({error}); nothing was imported") from None
        yield cells


def normalize_name(name: str | None) -> str | None:
    """A display name on one line: line breaks and other control characters (a quoted CSV cell may hold them)
    would let a name write its own mail headers, so each run of them becomes one space."""
    if not name:
        return None
    text = name if name.isprintable() else "".join(" " if unicodedata.category(char) == "Cc" else char
                                                   for char in name)
    return " ".join(text.split()) or None


def normalize_lang(lang: str | None, where: str = "language", languages: Sequence[str] | None = None) -> str:
    """The language code, lower-cased; empty means the site's first language. With ``languages`` (the site's
    ``PUBLISHER_LANGUAGES``), one of them or InputError."""
    value = (lang or "").strip().lower()
    if not value:
        if not languages:
            raise InputError(where, "is empty")
        return languages[0]
    if languages is not None and value not in languages:
        raise InputError(where, f"{lang!r} is not one of {', '.join(languages)}")
    return value


def normalize_themes(themes: Iterable[str] | None, where: str = "themes") -> list[str]:
    """Theme slugs, lower-cased, de-duplicated, in the order given."""
    result: list[str] = []
    for theme in themes or ():
        slug = theme.strip().lower()
        if not slug:
            continue
        if "," in slug:
            raise InputError(where, f"{theme!r} must not contain a comma")
        if slug not in result:
            result.append(slug)
    return result


def link_predates_request(subscriber: Subscriber, link_made: int) -> bool:
    """True when a confirmation link made at ``link_made`` (Unix seconds, as tokens stamp it) is older than the
    subscriber's last change: the request it answered was replaced by a newer one, with a newer link."""
    since = subscriber.updated_at
    return since is not None and link_made < int(since.timestamp())


class Subscribers:
    """The subscriber list of one site (``site.subscribers()``): checks every value, then stores it.

    ``languages`` are the site's ``PUBLISHER_LANGUAGES``: a subscriber reads one of them, and an empty language
    means the first.
    """

    def __init__(self, store: SubscriberStore, languages: Sequence[str]) -> None:
        self.store = store
        self.languages = tuple(languages)

    # -- one subscriber ------------------------------------------------------------------

    def add(
        self,
        email: str,
        *,
        name: str | None = None,
        lang: str | None = None,
        status: str = "active",
        themes: Iterable[str] = (),
    ) -> Subscriber:
        """Add a subscriber, or return the existing one unchanged (same address in any case)."""
        address = normalize_email(email, where="email")
        if status not in STATUSES:
            raise InputError(f"{address}: status", f"{status!r} is not one of {', '.join(STATUSES)}")
        lang = normalize_lang(lang, where=f"{address}: language", languages=self.languages)
        theme_list = normalize_themes(themes, where=f"{address}: themes")
        self.store.insert(email=address, email_key=address.lower(), name=normalize_name(name), lang=lang,
                          status=status, themes=theme_list, confirmed=status == "active")
        return self._require(address)

    def get(self, email: str) -> Subscriber | None:
        """The subscriber with this address (any case), or None."""
        key = self._key(email)
        return self.store.get(key) if key is not None else None

    def get_many(self, emails: Iterable[str], *, as_stored: bool = False) -> dict[str, Subscriber]:
        """The subscribers with these addresses, by address in lower case (a few queries for a whole batch).

        ``as_stored``: the addresses are as this list stored them (normalized when added: a ledger row's
        target), so each is looked up by its lower case without email-validator's parse again (a queue
        worker's claimed batch: that parse was about 0.4 ms a recipient, bench/workers.py)."""
        if as_stored:
            return self.store.get_many([email.lower() for email in emails])
        keys = [key for key in (self._key(email) for email in emails) if key is not None]
        return self.store.get_many(keys)

    def confirm(self, email: str, *, link_made: int | None = None) -> Subscriber:
        """The subscriber followed a signed confirmation link (made at ``link_made``, Unix seconds): a *pending*
        address becomes active.

        Any other is left as it is: a confirmation link never overrides a later unsubscribe (or bounce); an
        address that left needs a new request (``request_again``) and the new link it brings. A link made
        before the address last became pending belongs to an earlier request, and changes nothing either.
        """
        subscriber = self._require(email)
        if link_made is not None and link_predates_request(subscriber, link_made):
            return subscriber
        self.store.update(subscriber.email.lower(), status="active", confirm=True, only_status="pending")
        return self._require(email)

    def request_again(
        self, email: str, *, lang: str | None = None, themes: Iterable[str] | None = None
    ) -> Subscriber:
        """A new subscription request for an address that is not active: pending again (from now, so links
        made before are refused), with the language and themes asked for. An active address is unchanged."""
        subscriber = self._require(email)
        new_lang = normalize_lang(lang, where="language", languages=self.languages) if lang is not None else None
        new_themes = normalize_themes(themes) if themes is not None else None
        # A suppressed address is never mailed again, a confirmation request included: unchanged.
        self.store.update(subscriber.email.lower(), status="pending", lang=new_lang, themes=new_themes,
                          unless_status=("active", *SUPPRESSED))
        return self._require(email)

    def unsubscribe(self, email: str) -> bool:
        """Stop sending to this address. True if it changed something; calling it again is harmless. A
        suppressed address stays suppressed (as unsubscribed, a web form could bring it back)."""
        key = self._key(email)
        return key is not None and self.store.update(key, status="unsubscribed",
                                                     unless_status=("unsubscribed", *SUPPRESSED))

    # -- the suppression list (issue 13) ----------------------------------------------------------

    def mark_bounced(self, email: str, *, reason: str | None = None, article: str | None = None,
                     source: str = "smtp") -> bool:
        """A hard bounce (a permanent 5xx at RCPT TO, a DSN 5.x.x): the address does not exist, suppressed at
        once (``bounced``; an address that complained stays ``complained``). True if the status changed."""
        key = self._key(email)
        if key is None:
            return False
        with self.store.transaction():
            self.store.record_event(key, "hard", reason=reason, article=article, source=source)
            return self.store.set_status(key, "bounced", reason or "hard bounce",
                                         unless_status=("bounced", "complained"))

    def soft_bounce(self, email: str, *, reason: str | None, limit: int, days: int, article: str | None = None,
                    source: str = "dsn") -> bool:
        """A transient failure (mailbox full, a 4.x.x DSN): remembered, and the address is suppressed
        (``suppressed``) once it had ``limit`` of them in ``days`` days. True if the status changed."""
        from datetime import timedelta

        key = self._key(email)
        if key is None:
            return False
        with self.store.transaction():
            self.store.record_event(key, "soft", reason=reason, article=article, source=source)
            count = self.store.count_events(key, "soft", timedelta(days=days))
            if count < limit:
                return False
            why = f"{count} soft bounces in {days} days" + (f"; last: {reason}" if reason else "")
            return self.store.set_status(key, "suppressed", why, unless_status=SUPPRESSED)

    def complain(self, email: str, *, reason: str | None = None, article: str | None = None,
                 source: str = "arf") -> bool:
        """A spam complaint: unsubscribed and suppressed at once (``complained``). True if the status changed."""
        key = self._key(email)
        if key is None:
            return False
        with self.store.transaction():
            self.store.record_event(key, "complaint", reason=reason, article=article, source=source)
            return self.store.set_status(key, "complained", reason or "spam complaint",
                                         unless_status=("complained",))

    def suppress(self, email: str, *, reason: str) -> Subscriber:
        """An editor's decision (or an ESP's list): never mail this address (``suppressed``). An address
        suppressed already keeps its status and reason."""
        subscriber = self._require(email)
        reason = _reason(reason)
        self.store.set_status(subscriber.email.lower(), "suppressed", reason, unless_status=SUPPRESSED)
        return self._require(email)

    def unsuppress(self, email: str, *, reason: str) -> Subscriber:
        """The one way back from the suppression list: an explicit decision with a reason, recorded. The
        address becomes active, and its earlier soft bounces no longer count."""
        subscriber = self._require(email)
        reason = _reason(reason)
        if not subscriber.suppressed:
            raise InputError(subscriber.email, f"is {subscriber.status}, not suppressed; nothing to undo")
        key = subscriber.email.lower()
        with self.store.transaction():
            self.store.record_event(key, "unsuppress", reason=reason, source="cli")
            self.store.set_status(key, "active", f"unsuppressed: {reason}")
        return self._require(email)

    def get_by_id(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this row id, or None (a VERP token for an address erased since)."""
        return self.store.get_by_id(subscriber_id)

    def set_preferences(
        self, email: str, *, lang: str | None = None, themes: Iterable[str] | None = None
    ) -> Subscriber:
        """Change the language and/or the followed themes (an empty list means every theme)."""
        subscriber = self._require(email)
        new_lang = normalize_lang(lang, where="language", languages=self.languages) if lang is not None else None
        new_themes = normalize_themes(themes) if themes is not None else None
        self.store.update(subscriber.email.lower(), lang=new_lang, themes=new_themes)
        return self._require(email)

    def remove(self, email: str) -> bool:
        """Delete the address from the list entirely (the right to erasure). True if it was there."""
        key = self._key(email)
        return key is not None and self.store.delete(key)

    # -- many subscribers ----------------------------------------------------------------

    def iter_active(
        self, *, lang: str | None = None, theme: str | None = None, batch_size: int = 1000
    ) -> Iterator[Subscriber]:
        """Active subscribers in id order, read `batch_size` at a time so memory stays flat.

        Each batch is its own short query (keyset pagination on id), so no read transaction stays
        open while the caller sends mail and writes the ledger.
        """
        yield from self.store.iterate(status="active", lang=lang, theme=theme, batch_size=batch_size)

    def iter_all(self, *, status: str | None = None, batch_size: int = 1000) -> Iterator[Subscriber]:
        """Every subscriber (optionally of one status), streamed in id order."""
        yield from self.store.iterate(status=status, batch_size=batch_size)

    def count(self, *, status: str | None = None, lang: str | None = None, theme: str | None = None) -> int:
        """How many subscribers match."""
        return self.store.count(status=status, lang=lang, theme=theme)

    def import_csv(self, path: Path, *, status: str = "active", check_dns: bool = False,
                   dns_resolver: Any = None) -> ImportReport:
        """Import `email,name,language` rows (UTF-8, BOM or not, CRLF or LF), streamed: memory stays flat
        however long the file.

        Bad rows are reported by line number and skipped; good rows are imported in one transaction, so a
        file that is not valid CSV or not UTF-8 imports nothing. Existing addresses (in any case) are left
        exactly as they are, so re-importing a file changes nothing and never re-subscribes someone who
        unsubscribed: the database's unique keys find them, and an address repeated in the file (no set of
        every address is kept). ``check_dns``: also ask DNS whether each domain accepts mail
        (email-validator's deliverability check, through ``dns_resolver`` if given).
        """
        path = Path(path)
        resolver = _dns_resolver(dns_resolver) if check_dns else None
        try:
            handle = path.open("rb")
        except OSError as error:
            raise InputError(str(path), f"cannot read: {error.strerror or error}") from None
        with handle:
            # strict: an unclosed quote is an error, not a field that swallows every row after it unreported
            reader = csv.reader(_text_lines(handle, path.name), strict=True)
            rows = _csv_rows(reader, path.name)
            with self.store.transaction():   # an InputError from the file below rolls back everything
                header = next(rows, None)
                if header is None:
                    raise InputError(path.name, "the file is empty; expected a header line: email,name,language")
                columns = [column.strip().lower() for column in header]
                if "email" not in columns:
                    raise InputError(f"{path.name}:1",
                                     "no 'email' column; expected a header line: email,name,language")
                email_at = columns.index("email")
                name_at = columns.index("name") if "name" in columns else None
                lang_at = next((columns.index(c) for c in ("language", "lang") if c in columns), None)
                report = ImportReport(status=status, position=self.store.position())
                self.store.start_import()
                batch = _ImportBatch(self, report, path.name, len(columns), email_at, name_at, lang_at,
                                     check_dns, resolver)
                for cells in rows:
                    batch.add(cells, reader.line_num)
                batch.flush()
                report.through = self.store.position()
        return report

    def added_by(self, report: ImportReport) -> Iterator[Subscriber]:
        """The subscribers an import added, streamed (e.g. to ask each to confirm), as they are now."""
        yield from self.store.iterate(status=report.status, after=report.position, through=report.through)

    def export_csv(self, out: TextIO, *, status: str | None = None) -> int:
        """Write every subscriber as CSV (the import columns plus status, themes and times)."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "name", "language", "status", "themes", "created_at", "confirmed_at"])
        written = 0
        for subscriber in self.iter_all(status=status):
            writer.writerow(
                [
                    subscriber.email,
                    subscriber.name or "",
                    subscriber.lang,
                    subscriber.status,
                    " ".join(subscriber.themes),
                    _timestamp(subscriber.created_at),
                    _timestamp(subscriber.confirmed_at) if subscriber.confirmed_at else "",
                ]
            )
            written += 1
        return written

    def iter_suppressed(self, *, batch_size: int = 1000) -> Iterator[Subscriber]:
        """Every suppressed subscriber (bounced, then complained, then suppressed; each in id order)."""
        for status in SUPPRESSED:
            yield from self.store.iterate(status=status, batch_size=batch_size)

    def export_suppressed(self, out: TextIO) -> int:
        """Write the suppression list as CSV: email, status, reason, since (when it was suppressed): what an
        ESP's suppression list or another tool can read."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "status", "reason", "since"])
        written = 0
        for subscriber in self.iter_suppressed():
            since = subscriber.status_at or subscriber.updated_at or subscriber.created_at
            writer.writerow([subscriber.email, subscriber.status, subscriber.status_reason or "", _timestamp(since)])
            written += 1
        return written

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _key(email: str) -> str | None:
        try:
            return normalize_email(email).lower()
        except InputError:
            return None

    def _require(self, email: str) -> Subscriber:
        from publisher.errors import NotFound

        subscriber = self.get(email)
        if subscriber is None:
            raise NotFound(f"{email}: not on the subscriber list")
        return subscriber



class _ImportBatch:
    """Rows of an import checked one by one, stored ``size`` at a time (a few statements per batch, not per
    row); its rejections are reported in line order."""

    def __init__(self, subscribers: Subscribers, report: ImportReport, filename: str, width: int, email_at: int,
                 name_at: int | None, lang_at: int | None, check_dns: bool, resolver: Any, size: int = 500) -> None:
        self.subscribers, self.report, self.width, self.size = subscribers, report, width, size
        self.filename = filename
        self.email_at, self.name_at, self.lang_at = email_at, name_at, lang_at
        self.check_dns, self.resolver = check_dns, resolver
        self.rows: list[tuple[str, str, str | None, str]] = []
        self.lines: list[int] = []
        self.rejected: list[tuple[int, str]] = []

    def add(self, cells: list[str], line: int) -> None:
        if not any(cell.strip() for cell in cells):
            return
        where = f"{self.filename}:{line}"
        try:
            if len(cells) > self.width:
                raise InputError(where, f"{len(cells)} fields, the header has {self.width}")
            address = normalize_email(_cell(cells, self.email_at), where=f"{where}: email",
                                      check_dns=self.check_dns, dns_resolver=self.resolver)
            lang = normalize_lang(_cell(cells, self.lang_at), where=f"{where}: language",
                                  languages=self.subscribers.languages)
        except InputError as error:
            self.rejected.append((line, str(error)))
            return
        self.rows.append((address, address.lower(), normalize_name(_cell(cells, self.name_at)), lang))
        self.lines.append(line)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        report = self.report
        if self.rows:
            added, present, repeated = self.subscribers.store.import_batch(
                self.rows, status=report.status, confirmed=report.status == "active")
            report.added += added
            report.already_present += present
            for index in repeated:
                line = self.lines[index]
                self.rejected.append((line, f"{self.filename}:{line}: email: {self.rows[index][0]} appears "
                                            "earlier in the file"))
        report.rejected += [message for _, message in sorted(self.rejected, key=lambda item: item[0])]
        self.rows.clear()
        self.lines.clear()
        self.rejected.clear()


def _reason(text: str) -> str:
    """A reason given on the command line, on one line; InputError when empty."""
    reason = normalize_name(text)
    if not reason:
        raise InputError("--reason", "is empty; say why")
    return reason


def _timestamp(moment: datetime) -> str:
    # The store's one format (ISO 8601 in UTC, milliseconds, with the offset); imported from nowhere, so this
    # module needs nothing of the storage layer at run time.
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _cell(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index]
