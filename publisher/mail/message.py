"""The one mail builder: MIME structure, inlined CSS, the sender's headers, List-Unsubscribe and DKIM, for bulletins
and transactional mail alike.

A bulletin (``formatters.email.Bulletin``) is serialized once per language by the email package
(``WireTemplate``); each recipient's message is then that template with the recipient's headers and the two
bodies holding their own signed unsubscribe and preferences links (``tokens.link_maker``), made here at send
time from the recipient. Transactional mail (a confirmation request, a note to a reader) is one
``EmailMessage`` from ``compose``. Both are signed with DKIM when it is configured.
"""

from __future__ import annotations

import email
import hashlib
import html as html_lib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import TYPE_CHECKING, Any, Protocol

from publisher.errors import ConfigError
from publisher.formatters.email import PREFERENCES_MARKER, UNSUBSCRIBE_MARKER

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.formatters.email import Bulletin
    from publisher.site import Site

# What a header value must never carry: control characters (C0, DEL, C1: a line break would start a header of
# its own, a NUL truncates it in some clients) and the bidi embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069), which make a Subject or sender name read differently from what it is.
_UNSAFE_IN_HEADER = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# Headers DKIM signs: the ones a forwarder or list manager must not change, RFC 8058 ones included.
DKIM_SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-unsubscribe",
    b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type",
)


class Recipient(Protocol):
    """Who a message is for: a subscriber, or anyone with an address and maybe a name."""

    @property
    def email(self) -> str: ...

    @property
    def name(self) -> str | None: ...


@dataclass(frozen=True)
class Reader:
    """A recipient that is not (or not yet) a subscriber row: a preview's sample reader, a form's address."""

    email: str
    name: str | None = None


def inline_css(html: str) -> str:
    """The ``<style>`` rules moved onto the elements, the block kept for the ``@media`` rules that only work there."""
    import css_inline

    # load_remote_stylesheets is off: the tool is offline and the templates have none.
    inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
    return str(inliner.inline(html))


class MessageBuilder:
    """Builds every message the site sends, from the BULLETIN_* and DKIM_* settings (checked when made)."""

    def __init__(self, site: Site, config: Config | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.site = site
        self.config = config if config is not None else site.config
        self.clock = clock
        self.sender = sender_address(self.site, self.config)   # the envelope's, and the name outside a language
        self._senders: dict[str, Address] = {}
        reply_to = self.config.get("BULLETIN_REPLY_TO")
        self.reply_to = parse_address_header(str(reply_to), "BULLETIN_REPLY_TO") if reply_to else None
        self.domain = self.sender.domain
        self.dkim = DkimSigner.from_config(self.config)
        self._links: tuple[Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], str]] | None = None
        self._templates: dict[int, WireTemplate] = {}
        self._dated: tuple[int | None, str] = (None, "")    # the second of the last Date header, and its text

    def sender_for(self, lang: str) -> Address:
        """The From of mail in ``lang``: the sender's address with the name readers of that language know
        (``BULLETIN_FROM_NAME_<LANG>``, else ``SITE_TITLE_<LANG>``, else BULLETIN_FROM's name)."""
        found = self._senders.get(lang)
        if found is None:
            found = self._senders[lang] = Address(display_name=sender_name(self.site, self.config, lang),
                                                  addr_spec=self.sender.addr_spec)
        return found

    # --- bulletins --------------------------------------------------------------------------------------------

    def links(self, recipient: Recipient) -> tuple[str, str]:
        """This recipient's signed unsubscribe and preferences links (token data: ``{"email": address}``)."""
        if self._links is None:
            from publisher.tokens import link_maker

            self._links = (link_maker(self.site, "unsubscribe"), link_maker(self.site, "preferences"))
        data = {"email": recipient.email}
        return self._links[0](data), self._links[1](data)

    def wire(self, bulletin: Bulletin, recipient: Recipient, *, message_id: str | None = None,
             smtp_data: bool = False) -> tuple[bytes, str]:
        """The message for this recipient as sent on the wire (CRLF, DKIM-signed when configured), and its
        Message-ID (``message_id``, the delivery's own from ``delivery_message_id``; else a new one).
        ``smtp_data``: the message as SMTP's DATA body instead, what ``client.dot_stuffed`` makes of it (every
        line's leading dot doubled, then the final ``.`` line), with the shared parts stuffed once per bulletin.

        The parts every recipient shares were built, serialized and transfer-encoded once per bulletin
        (`WireTemplate`); here only the recipient's headers are written and the few encoded lines that hold the
        recipient's own links are encoded (binascii, in C). Building each message with `EmailMessage`
        costs ~1.5 ms, and encoding both whole bodies per recipient ~300 us.
        """
        template = self._templates.get(id(bulletin))
        if template is None or template.bulletin is not bulletin:
            template = self._templates[id(bulletin)] = WireTemplate.build(bulletin, self)
        unsubscribe_url, preferences_url = self.links(recipient)
        if message_id is None:
            message_id = make_msgid(idstring=bulletin.kind, domain=self.domain)
        head = (
            f"To: {to_header(recipient.name, recipient.email)}\r\n"
            f"Date: {self._date()}\r\n"
            f"Message-ID: {message_id}\r\n"
            # RFC 8058: one-click unsubscribe is an HTTPS POST to this URL; the web app answers it. Written
            # here, unfolded, because the email package would fold a long URL into an unreadable encoded-word.
            f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
        ).encode("utf-8")   # UTF-8 only for an internationalized address (RFC 6532; sent with SMTPUTF8)
        if not smtp_data:
            return self.sign(head + template.fill(unsubscribe_url, preferences_url)), message_id
        if self.dkim is not None:
            # DKIM signs the message as written, not stuffed: signed whole, then stuffed whole (the RSA
            # signature costs far more than the stuffing).
            from publisher.mail.client import dot_stuffed

            return dot_stuffed(self.sign(head + template.fill(unsubscribe_url, preferences_url))), message_id
        pieces = [(head, _stuffed(head)), *template.pieces(unsubscribe_url, preferences_url, stuffed=True)]
        return _join_stuffed(pieces), message_id

    def delivery_message_id(self, key: object, generation: int = 0) -> str:
        """The Message-ID of one delivery (its ledger key) in one ``--force`` generation: the same for every
        copy of that delivery, so a copy re-sent after an interruption folds into the first in mail clients."""
        digest = hashlib.sha256(f"{key}/generation-{generation}".encode()).hexdigest()[:32]
        return f"<{digest}@{self.domain}>"

    def message(self, bulletin: Bulletin, recipient: Recipient) -> EmailMessage:
        """The same message parsed back into an `EmailMessage` (for previews and tests)."""
        data, _ = self.wire(bulletin, recipient)
        parsed = email.message_from_bytes(data, policy=email_policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    # --- transactional mail -----------------------------------------------------------------------------------

    def compose(self, recipient: Recipient, *, subject: str, text: str, html: str, lang: str,
                kind: str = "mail") -> EmailMessage:
        """One message to one reader now (a confirmation request, a note): the sender's headers, both bodies,
        and ``Auto-Submitted`` so that no vacation reply answers it (RFC 3834)."""
        message = EmailMessage()
        message["Subject"] = header_text(subject)
        message["From"] = self.sender_for(lang)
        if self.reply_to is not None:
            message["Reply-To"] = self.reply_to
        message["To"] = Address(display_name=_one_line_name(recipient.name), addr_spec=recipient.email)
        self.stamp(message, kind)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        message.add_alternative(inline_css(html), subtype="html")
        message["Content-Language"] = lang     # after set_content, which clears Content-* headers
        return message

    def stamp(self, message: EmailMessage, kind: str = "mail") -> None:
        """Fill in From, Date and Message-ID where a message has none."""
        if message["From"] is None:
            message["From"] = self.sender
        if message["Date"] is None:
            message["Date"] = format_datetime(self._now())
        if message["Message-ID"] is None:
            message["Message-ID"] = make_msgid(idstring=kind, domain=self.domain)

    def serialize(self, message: EmailMessage) -> bytes:
        """``message`` as sent on the wire: CRLF, UTF-8 headers only for an internationalized address, signed."""
        policy = email_policy.SMTPUTF8 if not _ascii_addresses(message) else email_policy.SMTP
        return self.sign(message.as_bytes(policy=policy))

    def sign(self, data: bytes) -> bytes:
        """``data`` with a DKIM-Signature in front when DKIM is configured."""
        return self.dkim.sign(data) + data if self.dkim is not None else data

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def _date(self) -> str:
        """The Date header's value now: written once a second (it shows whole seconds), not once a message."""
        now = self.clock()
        second, text = self._dated
        if int(now // 1) != second:
            text = format_datetime(datetime.fromtimestamp(now, timezone.utc))
            self._dated = (int(now // 1), text)
        return text


@dataclass
class WireTemplate:
    """A bulletin serialized once with markers in place of the two bodies; `fill` puts encoded bodies in."""

    bulletin: Bulletin
    data: bytes
    text_cte: str
    html_cte: str
    html: str                      # the bulletin's HTML with its CSS inlined (once per bulletin, not per reader)

    TEXT_BODY = b"PUBLISHER-TEXT-BODY-4e1b"
    HTML_BODY = b"PUBLISHER-HTML-BODY-4e1b"

    @classmethod
    def build(cls, bulletin: Bulletin, builder: MessageBuilder) -> WireTemplate:
        html = inline_css(bulletin.html)   # the link markers are plain ASCII: css-inline leaves them as they are
        message = EmailMessage()
        message["Subject"] = header_text(bulletin.subject)
        message["From"] = builder.sender_for(bulletin.lang)
        if builder.reply_to is not None:
            message["Reply-To"] = builder.reply_to
        list_name = header_text(builder.site.title(builder.site.languages[0]))
        message["List-Id"] = f"{list_name} <bulletin.{builder.domain}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text_cte, html_cte = _transfer_encoding(bulletin.text), _transfer_encoding(html)
        # The email package writes every header and boundary; the payloads are then swapped for markers
        # (set_payload keeps the part's headers, Content-Transfer-Encoding included).
        message.set_content(bulletin.text, cte=text_cte)
        message.add_alternative(html, subtype="html", cte=html_cte)
        message["Content-Language"] = bulletin.lang     # after set_content, which clears Content-* headers
        text_part, html_part = message.iter_parts()
        if bulletin.inline_images:
            # multipart/related (RFC 2387): the HTML first, then the images it names by cid: (the logo), so a
            # client shows them without fetching anything.
            for image in bulletin.inline_images:
                maintype, _, subtype = image.content_type.partition("/")
                html_part.add_related(image.data, maintype=maintype, subtype=subtype, cid=f"<{image.cid}>",
                                      disposition="inline", filename=image.filename)
            html_part.set_param("type", "text/html")
            html_part = next(html_part.iter_parts())
        text_part.set_payload(cls.TEXT_BODY.decode() + "\n")
        html_part.set_payload(cls.HTML_BODY.decode() + "\n")
        data = message.as_bytes(policy=email_policy.SMTP)
        return cls(bulletin, data, text_cte, html_cte, html)

    def __post_init__(self) -> None:
        # The serialized message around the two bodies, and each body encoded once but for its link lines.
        head, _, rest = self.data.partition(self.TEXT_BODY + b"\r\n")
        middle, _, tail = rest.partition(self.HTML_BODY + b"\r\n")
        self._frame = (head, middle, tail)
        self._stuffed_frame = (_stuffed(head), _stuffed(middle), _stuffed(tail))
        self._text = EncodedBody.build(self.bulletin.text, self.text_cte, escape=False)
        self._html = EncodedBody.build(self.html, self.html_cte, escape=True)

    def personalize(self, unsubscribe_url: str, preferences_url: str) -> tuple[str, str]:
        """The HTML and text bodies with one recipient's links in place of the markers."""
        html_body = self.html.replace(UNSUBSCRIBE_MARKER, html_lib.escape(unsubscribe_url)).replace(
            PREFERENCES_MARKER, html_lib.escape(preferences_url))
        text_body = self.bulletin.text.replace(UNSUBSCRIBE_MARKER, unsubscribe_url).replace(
            PREFERENCES_MARKER, preferences_url)
        return html_body, text_body

    def fill(self, unsubscribe_url: str, preferences_url: str) -> bytes:
        """The message (from the template's first header on) with one recipient's links in both bodies."""
        head, middle, tail = self._frame
        return b"".join((head, self._text.fill(unsubscribe_url, preferences_url), middle,
                         self._html.fill(unsubscribe_url, preferences_url), tail))

    def pieces(self, unsubscribe_url: str, preferences_url: str, *,
               stuffed: bool = False) -> list[tuple[bytes, bytes]]:
        """What `fill` joins, each piece with its `_stuffed` form (with ``stuffed``; else the piece again): the
        shared pieces were stuffed once, the recipient's few encoded lines are stuffed here."""
        (head, middle, tail), (s_head, s_middle, s_tail) = self._frame, self._stuffed_frame
        return [(head, s_head), *self._text.pieces(unsubscribe_url, preferences_url, stuffed=stuffed),
                (middle, s_middle), *self._html.pieces(unsubscribe_url, preferences_url, stuffed=stuffed),
                (tail, s_tail)]


@dataclass
class EncodedBody:
    """A body transfer-encoded once, except the part that holds the link markers, encoded per recipient.

    Quoted-printable encodes each line on its own, so only the lines holding a marker are encoded again.
    Base64 encodes 57 bytes to a line, so everything before the 57-byte line holding the first marker is kept.
    Either way the bytes are those of encoding the whole personalized body (tested against `_encode_body`).
    """

    cte: str
    parts: list[bytes]            # encoded parts, and raw parts (UTF-8, CRLF) that hold markers
    raw: list[bool]               # which parts are raw
    escape: bool                  # the links go into HTML: escaped

    def __post_init__(self) -> None:
        # The encoded parts as they go into DATA (`_stuffed`): a quoted-printable line may start with a dot.
        self._stuffed = [part if is_raw else _stuffed(part) for part, is_raw in zip(self.parts, self.raw)]

    @classmethod
    def build(cls, body: str, cte: str, *, escape: bool) -> EncodedBody:
        import base64
        import binascii

        data = body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        markers = (UNSUBSCRIBE_MARKER.encode(), PREFERENCES_MARKER.encode())
        parts: list[bytes] = []
        raw: list[bool] = []
        if cte == "base64":
            found = [i for i in (data.find(m) for m in markers) if i >= 0]
            cut = min(found) // 57 * 57 if found else len(data) // 57 * 57
            if cut:
                parts.append(base64.encodebytes(data[:cut]).replace(b"\n", b"\r\n"))
                raw.append(False)
            parts.append(data[cut:])
            raw.append(True)
            return cls(cte, parts, raw, escape)
        static: list[bytes] = []
        for line in data.splitlines(keepends=True):
            if any(m in line for m in markers):
                if static:
                    parts.append(binascii.b2a_qp(b"".join(static), istext=True))
                    raw.append(False)
                    static = []
                parts.append(line)
                raw.append(True)
            else:
                static.append(line)
        if static:
            parts.append(binascii.b2a_qp(b"".join(static), istext=True))
            raw.append(False)
        return cls(cte, parts, raw, escape)

    def fill(self, unsubscribe_url: str, preferences_url: str) -> bytes:
        """The body encoded with one recipient's links in it, ending in CRLF."""
        return b"".join(piece for piece, _ in self.pieces(unsubscribe_url, preferences_url))

    def pieces(self, unsubscribe_url: str, preferences_url: str, *,
               stuffed: bool = False) -> list[tuple[bytes, bytes]]:
        """What `fill` joins, each piece with its `_stuffed` form (with ``stuffed``; else the piece again)."""
        import base64
        import binascii

        if self.escape:
            unsubscribe_url, preferences_url = html_lib.escape(unsubscribe_url), html_lib.escape(preferences_url)
        links = ((UNSUBSCRIBE_MARKER.encode(), unsubscribe_url.encode("utf-8")),
                 (PREFERENCES_MARKER.encode(), preferences_url.encode("utf-8")))
        out = []
        last = b""
        for part, is_raw, stuffed_part in zip(self.parts, self.raw, self._stuffed):
            if is_raw:
                for marker, link in links:
                    part = part.replace(marker, link)
                if self.cte == "base64":
                    part = base64.encodebytes(part).replace(b"\n", b"\r\n")
                else:
                    part = binascii.b2a_qp(part, istext=True)
                # (base64 has no dots: nothing to stuff in the Korean bodies' long personalized tail)
                stuffed_part = _stuffed(part) if stuffed and self.cte != "base64" else part
            elif not stuffed:
                stuffed_part = part
            out.append((part, stuffed_part))
            last = part or last
        if not last.endswith(b"\r\n"):      # every part ends a line but maybe the body's last
            out.append((b"\r\n", b"\r\n"))
        return out


def _stuffed(data: bytes) -> bytes:
    """``data`` with the dot doubled at the start of every line but its first (RFC 5321 4.5.2; the first is
    `_join_stuffed`'s, which knows what came before)."""
    return data.replace(b"\r\n.", b"\r\n..")


def _join_stuffed(pieces: list[tuple[bytes, bytes]]) -> bytes:
    """``client.dot_stuffed(b"".join(piece for piece, _ in pieces))`` from each piece's `_stuffed` form: only
    where a piece meets the one before can a line start that `_stuffed` did not see."""
    out: list[bytes] = []
    tail = b"\r\n"                    # the last two bytes so far: the message's first byte starts a line
    for piece, stuffed in pieces:
        if not piece:
            continue
        if tail == b"\r\n" and piece[:1] == b".":
            out.append(b".")
        elif tail[-1:] == b"\r" and piece[:2] == b"\n.":
            out.append(b"\n.")      # the CRLF split between two pieces: "\n." then the piece from its dot
            stuffed = stuffed[1:]
        out.append(stuffed)
        tail = piece[-2:] if len(piece) > 1 else tail[-1:] + piece
    if tail != b"\r\n" or not out:
        out.append(b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


def to_header(name: str | None, address: str) -> str:
    """The To: value: a Korean display name as RFC 2047 encoded-words of at most 75 characters, folded."""
    name = _one_line_name(name)   # a line break in a name would start a header of its own
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    # By hand, not email.header.Header (~250 us a name): base64 words of whole characters, at most 45 bytes
    # (60 base64 characters, 72 with "=?utf-8?b?" and "?=") each, one per folded line.
    import base64

    words, chunk = [], b""
    for char in name:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    text = "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)
    last = len(text) - text.rfind("\n") + (len("To: ") if len(words) == 1 else 0)
    return f"{text}{' ' if last + len(address) + 3 <= 78 else chr(13) + chr(10) + ' '}<{address}>"


def header_text(text: str) -> str:
    """``text`` fit for a header value: control characters become spaces, bidi controls go, spacing is one
    space (a title or name written by someone else never writes a header of its own or reads backwards)."""
    return " ".join(_UNSAFE_IN_HEADER.sub(lambda m: " " if m.group() < "\u0100" else "", text).split())


def _one_line_name(name: str | None) -> str:
    return header_text(name or "")


def _ascii_addresses(message: EmailMessage) -> bool:
    return all(address.addr_spec.isascii() for header in ("From", "To", "Cc", "Bcc", "Reply-To")
               for address in getattr(message[header], "addresses", ()))


def _transfer_encoding(body: str) -> str:
    """Quoted-printable for mostly-ASCII text (readable, and what filters expect), base64 for Korean (smaller)."""
    non_ascii = sum(1 for char in body if ord(char) > 127)
    return "quoted-printable" if non_ascii * 4 < len(body) else "base64"


def _encode_body(body: str, cte: str) -> bytes:
    """`body` encoded for the wire with CRLF line ends and lines of at most 76 characters."""
    import base64
    import binascii

    data = body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    encoded = binascii.b2a_qp(data, istext=True)
    return encoded if encoded.endswith(b"\r\n") else encoded + b"\r\n"


@dataclass
class DkimSigner:
    """DKIM signing with dkimpy, from DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE."""

    domain: str
    selector: str
    private_key: bytes

    @classmethod
    def from_config(cls, config: Config) -> DkimSigner | None:
        names = ("DKIM_DOMAIN", "DKIM_SELECTOR", "DKIM_PRIVATE_KEY_FILE")
        given = [name for name in names if config.is_set(name)]
        if not given:
            return None
        if len(given) < len(names):
            missing = [name for name in names if name not in given]
            raise ConfigError(missing[0], f"DKIM signing needs {', '.join(names)}; set it or unset the others")
        from pathlib import Path

        key_path = Path(str(config.get("DKIM_PRIVATE_KEY_FILE"))).expanduser()
        try:
            key = key_path.read_bytes()
        except OSError as error:
            raise ConfigError("DKIM_PRIVATE_KEY_FILE", f"{key_path}: {error.strerror or error}",
                              config.source("DKIM_PRIVATE_KEY_FILE")) from None
        if b"PRIVATE KEY" not in key:
            raise ConfigError("DKIM_PRIVATE_KEY_FILE", f"{key_path}: not a PEM private key",
                              config.source("DKIM_PRIVATE_KEY_FILE"))
        return cls(str(config.get("DKIM_DOMAIN")), str(config.get("DKIM_SELECTOR")), key)

    def sign(self, data: bytes) -> bytes:
        """The DKIM-Signature header line(s) for `data`, to put in front of it."""
        import dkim

        wanted = [h for h in DKIM_SIGNED_HEADERS if h + b":" in data.lower().split(b"\r\n\r\n", 1)[0]]
        signature: bytes = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=wanted,
        )
        return signature


def parse_address_header(text: str, name: str) -> Address:
    """`Name <addr@example.org>` or a bare address as an `Address`; ConfigError naming the setting if invalid."""
    from email.utils import parseaddr

    from publisher.subscribers import normalize_email

    display_name, addr_spec = parseaddr(text)
    if not addr_spec:
        raise ConfigError(name, f"expected an address such as 'News <news@example.org>', got {text!r}")
    try:
        normalized = normalize_email(addr_spec, where=name)
    except Exception as error:  # InputError: re-raised as the setting's error
        raise ConfigError(name, str(error).split(": ", 1)[-1]) from None
    return Address(display_name=header_text(display_name), addr_spec=normalized)


def sender_name(site: Site, config: Config, lang: str) -> str:
    """The From name of mail in ``lang``: ``BULLETIN_FROM_NAME_<LANG>``, else ``SITE_TITLE_<LANG>`` when set,
    else the name in BULLETIN_FROM, else the site's title in that language."""
    for name in (f"BULLETIN_FROM_NAME_{lang.upper()}", f"SITE_TITLE_{lang.upper()}"):
        if config.is_set(name):
            value = header_text(str(config.get(name)))
            if value:
                return value
    configured = config.get("BULLETIN_FROM")
    if configured:
        display_name = parse_address_header(str(configured), "BULLETIN_FROM").display_name
        if display_name:
            return display_name
    return header_text(site.title(lang))


def inline_images_as_data(html: str, bulletin: Bulletin) -> str:
    """``html`` with each ``cid:`` image of the bulletin as a ``data:`` URL: what a preview file or the review
    page shows, where no message holds the images."""
    import base64

    for image in bulletin.inline_images:
        data = base64.b64encode(image.data).decode("ascii")
        html = html.replace(f"cid:{image.cid}", f"data:{image.content_type};base64,{data}")
    return html


def sender_address(site: Site, config: Config) -> Address:
    """BULLETIN_FROM, or `<site title> <news@<site host>>` when it is not set (fine for the Maildir outbox)."""
    from urllib.parse import urlsplit

    configured = config.get("BULLETIN_FROM")
    if configured:
        return parse_address_header(str(configured), "BULLETIN_FROM")
    host = urlsplit(site.url).hostname or "localhost"
    if "." not in host:
        host = f"{host}.localdomain"
    return Address(display_name=header_text(site.title(site.languages[0])), addr_spec=f"news@{host}")


__all__ = ["DkimSigner", "MessageBuilder", "Reader", "Recipient", "WireTemplate", "header_text", "inline_css",
           "inline_images_as_data", "parse_address_header", "sender_address", "sender_name", "to_header"]
