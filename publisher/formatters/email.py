"""Email bulletins: an alert or a digest rendered once per language, then one personalized message per subscriber.

Rendering (jinja2 + css-inline) and MIME structure (the email package) happen once per bulletin and language.
The per-subscriber parts, the signed unsubscribe and preferences links, are left as markers and filled in by
`MessageBuilder.wire`, which also writes the headers the Gmail and Yahoo bulk-sender rules ask for (Message-ID,
Date, List-Unsubscribe with RFC 8058 one-click) and signs with DKIM when it is configured.
"""

from __future__ import annotations

import email
import html as html_lib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from publisher.errors import ConfigError

if TYPE_CHECKING:
    from publisher.article import Article
    from publisher.config import Config
    from publisher.site import Site
    from publisher.subscribers import Subscriber

# Stand-ins for the per-subscriber links; plain ASCII so neither autoescaping nor css-inline changes them.
UNSUBSCRIBE_MARKER = "PUBLISHER-UNSUBSCRIBE-URL-4e1b"
PREFERENCES_MARKER = "PUBLISHER-PREFERENCES-URL-4e1b"

# Headers DKIM signs: the ones a forwarder or list manager must not change, RFC 8058 ones included.
DKIM_SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-unsubscribe",
    b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type",
)


@dataclass
class Bulletin:
    """One bulletin rendered in one language, with markers where each subscriber's own links go."""

    kind: str                      # "alert" or "digest"
    lang: str
    subject: str
    preheader: str
    html: str
    text: str
    articles: list[str] = field(default_factory=list)   # slugs, newest first

    def personalize(self, unsubscribe_url: str, preferences_url: str) -> tuple[str, str]:
        """The HTML and text bodies with this subscriber's links in place of the markers."""
        html_body = self.html.replace(UNSUBSCRIBE_MARKER, html_lib.escape(unsubscribe_url)).replace(
            PREFERENCES_MARKER, html_lib.escape(preferences_url)
        )
        text_body = self.text.replace(UNSUBSCRIBE_MARKER, unsubscribe_url).replace(
            PREFERENCES_MARKER, preferences_url
        )
        return html_body, text_body


class BulletinFormatter:
    """Renders alerts (one article) and digests (several) from the `templates/email/` templates."""

    def __init__(self, site: Site, config: Config | None = None) -> None:
        self.site = site
        self.config = config if config is not None else site.config

    def alert(self, article: Article, *, original: Article | None = None) -> Bulletin:
        """A bulletin announcing one article, body included."""
        from publisher.markup import html_to_text

        item = self._item(article, original)
        preheader = _shorten(html_to_text(article.summary_html) or item["body_text"], 140)
        return self._render("alert", article.lang, article.title, preheader, [item], {"intro": ""})

    def digest(
        self,
        articles: Sequence[Article],
        lang: str,
        *,
        since: date | datetime,
        originals: dict[str, Article] | None = None,
    ) -> Bulletin:
        """A bulletin listing several articles (newest first) with their summaries."""
        from publisher.i18n import format_date

        ordered = sorted(articles, key=lambda a: a.date, reverse=True)
        items = [self._item(a, (originals or {}).get(a.slug)) for a in ordered]
        ui = self.site.ui
        since_text = format_date(since, lang)
        subject = ui.gettext(lang, "{site}: news since {date}", site=self.site.title(lang), date=since_text)
        intro = ui.gettext(lang, "{count} new articles since {date}.", count=len(items), date=since_text)
        preheader = _shorten(" · ".join(a.title for a in ordered), 140)
        return self._render("digest", lang, subject, preheader, items, {"intro": intro})

    # -- internals ---------------------------------------------------------------------------

    def _render(
        self, kind: str, lang: str, subject: str, preheader: str, items: list[dict[str, Any]], extra: dict[str, Any]
    ) -> Bulletin:
        import css_inline

        # A header is one line: a title written over two lines in the front matter must not break the Subject.
        subject = " ".join(subject.split())
        context = {
            "lang": lang,
            "subject": subject,
            "preheader": preheader,
            "articles": items,
            "site_name": self.site.title(lang),
            "site_url": f"{self.site.url}/{lang}/",
            "unsubscribe_url": UNSUBSCRIBE_MARKER,
            "preferences_url": PREFERENCES_MARKER,
            "postal_address": self.config.get("BULLETIN_POSTAL_ADDRESS") or "",
            **extra,
        }
        env = self.site.templates
        html_page = env.get_template(f"email/{kind}.html.j2").render(context)
        # keep_style_tags: the @media rules only work from a <style> block; load_remote_stylesheets is off
        # because the tool is offline and the templates have none.
        inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
        html_page = inliner.inline(html_page)
        text = env.get_template(f"email/{kind}.txt.j2").render(context)
        return Bulletin(kind, lang, subject, preheader, html_page, _tidy_text(text), [i["slug"] for i in items])

    def _item(self, article: Article, original: Article | None) -> dict[str, Any]:
        from publisher.i18n import machine_notice
        from publisher.markup import html_to_text

        body_html = absolute_links(article.body_html, article.url or self.site.url_for(article.lang, article.slug))
        summary_html = article.summary_html
        image_src = image_alt = ""
        if article.image is not None:
            image_src = self.site.media_url(article.image.src)   # the address the feeds build publishes it at
            image_alt = article.image.alt
        return {
            "slug": article.slug,
            "title": article.title,
            "url": article.url or self.site.url_for(article.lang, article.slug),
            "date": article.date,
            "author": article.author,
            "summary_html": summary_html,
            "summary_text": html_to_text(summary_html),
            "body_html": body_html,
            "body_text": html_to_text(body_html, link_urls=True),
            "image_src": image_src,
            "image_alt": image_alt,
            "machine_translated": article.is_machine_translation,
            "machine_notice": machine_notice(article, self.site) or "",
            "original_url": original.url if original is not None and original is not article else "",
        }


def absolute_links(html: str, base_url: str) -> str:
    """Sanitized HTML with relative href/src made absolute: a mail client has no page to resolve them against."""
    from publisher.markup import sanitize_html

    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src") and not value.startswith(("#", "mailto:")):
            return urljoin(base_url, value)
        return value

    return sanitize_html(html, attribute_filter=resolve)


class MessageBuilder:
    """Builds the personalized, optionally DKIM-signed message for one subscriber from a `Bulletin`."""

    def __init__(self, site: Site, config: Config | None = None) -> None:
        self.site = site
        self.config = config if config is not None else site.config
        self.sender = sender_address(self.site, self.config)
        reply_to = self.config.get("BULLETIN_REPLY_TO")
        self.reply_to = parse_address_header(str(reply_to), "BULLETIN_REPLY_TO") if reply_to else None
        self.domain = self.sender.domain
        self.dkim = DkimSigner.from_config(self.config)
        self._links: tuple[Any, Any] | None = None
        self._templates: dict[int, WireTemplate] = {}

    def links(self, subscriber: Subscriber) -> tuple[str, str]:
        """This subscriber's signed unsubscribe and preferences links (token data: ``{"email": address}``)."""
        if self._links is None:
            from publisher.tokens import link_maker

            self._links = (link_maker(self.site, "unsubscribe"), link_maker(self.site, "preferences"))
        data = {"email": subscriber.email}
        return self._links[0](data), self._links[1](data)

    def wire(self, bulletin: Bulletin, subscriber: Subscriber) -> tuple[bytes, str]:
        """The message for this subscriber as sent on the wire (CRLF, DKIM-signed when configured), and its Message-ID.

        The parts every subscriber shares were built and serialized once per bulletin by the email package
        (`WireTemplate`); here only the recipient's headers are written and the two bodies, which hold the
        recipient's own links, are encoded (binascii, in C). Building each message with `EmailMessage`
        costs ~1.5 ms, which caps a sender at a few hundred messages a second.
        """
        template = self._templates.get(id(bulletin))
        if template is None or template.bulletin is not bulletin:
            template = self._templates[id(bulletin)] = WireTemplate.build(bulletin, self)
        unsubscribe_url, preferences_url = self.links(subscriber)
        html_body, text_body = bulletin.personalize(unsubscribe_url, preferences_url)
        message_id = make_msgid(idstring=bulletin.kind, domain=self.domain)
        head = (
            f"To: {to_header(subscriber.name, subscriber.email)}\r\n"
            f"Date: {format_datetime(datetime.now(timezone.utc))}\r\n"
            f"Message-ID: {message_id}\r\n"
            # RFC 8058: one-click unsubscribe is an HTTPS POST to this URL; the web app answers it. Written
            # here, unfolded, because the email package would fold a long URL into an unreadable encoded-word.
            f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
        ).encode("utf-8")   # UTF-8 only for an internationalized address (RFC 6532; sent with SMTPUTF8)
        data = head + template.fill(text_body, html_body)
        if self.dkim is not None:
            data = self.dkim.sign(data) + data
        return data, message_id

    def message(self, bulletin: Bulletin, subscriber: Subscriber) -> EmailMessage:
        """The same message parsed back into an `EmailMessage` (for previews and tests)."""
        data, _ = self.wire(bulletin, subscriber)
        return email.message_from_bytes(data, policy=email_policy.default)  # type: ignore[return-value]


@dataclass
class WireTemplate:
    """A bulletin serialized once with markers in place of the two bodies; `fill` puts encoded bodies in."""

    bulletin: Bulletin
    data: bytes
    text_cte: str
    html_cte: str

    TEXT_BODY = b"PUBLISHER-TEXT-BODY-4e1b"
    HTML_BODY = b"PUBLISHER-HTML-BODY-4e1b"

    @classmethod
    def build(cls, bulletin: Bulletin, builder: MessageBuilder) -> WireTemplate:
        message = EmailMessage()
        message["Subject"] = bulletin.subject
        message["From"] = builder.sender
        if builder.reply_to is not None:
            message["Reply-To"] = builder.reply_to
        message["List-Id"] = f"{' '.join(builder.site.title('en').split())} <bulletin.{builder.domain}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text_cte, html_cte = _transfer_encoding(bulletin.text), _transfer_encoding(bulletin.html)
        # The email package writes every header and boundary; the payloads are then swapped for markers
        # (set_payload keeps the part's headers, Content-Transfer-Encoding included).
        message.set_content(bulletin.text, cte=text_cte)
        message.add_alternative(bulletin.html, subtype="html", cte=html_cte)
        message["Content-Language"] = bulletin.lang     # after set_content, which clears Content-* headers
        text_part, html_part = message.iter_parts()
        text_part.set_payload(cls.TEXT_BODY.decode() + "\n")
        html_part.set_payload(cls.HTML_BODY.decode() + "\n")
        data = message.as_bytes(policy=email_policy.SMTP)
        return cls(bulletin, data, text_cte, html_cte)

    def fill(self, text_body: str, html_body: str) -> bytes:
        text = _encode_body(text_body, self.text_cte)
        html = _encode_body(html_body, self.html_cte)
        return self.data.replace(self.TEXT_BODY + b"\r\n", text, 1).replace(self.HTML_BODY + b"\r\n", html, 1)


def to_header(name: str | None, address: str) -> str:
    """The To: value: a Korean display name as RFC 2047 encoded-words of at most 75 characters, folded."""
    from email.header import Header

    from publisher.subscribers import normalize_name

    name = normalize_name(name)   # a line break in a name would start a header of its own
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    encoded = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
    return f"{encoded} <{address}>"


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
        return dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=wanted,
        )


def confirmation_message(site: Site, subscriber: Subscriber) -> EmailMessage:
    """The double opt-in request for a pending subscriber, in their language, with a signed confirm link."""
    from publisher.tokens import link

    lang = subscriber.lang
    site_name = site.title(lang)
    subject = site.ui.gettext(lang, "Please confirm your subscription to {site}", site=site_name)
    context = {"lang": lang, "subject": subject, "site_name": site_name,
               "confirm_url": link(site, "confirm", {"email": subscriber.email})}
    env = site.templates
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender_address(site, site.config)
    message["To"] = Address(display_name=subscriber.name or "", addr_spec=subscriber.email)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(idstring="confirm", domain=message["From"].addresses[0].domain)
    message.set_content(env.get_template("email/confirm.txt.j2").render(context))
    message.add_alternative(env.get_template("email/confirm.html.j2").render(context), subtype="html")
    message["Content-Language"] = lang
    return message


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
    return Address(display_name=display_name, addr_spec=normalized)


def sender_address(site: Site, config: Config) -> Address:
    """BULLETIN_FROM, or `<site title> <news@<site host>>` when it is not set (fine for the Maildir outbox)."""
    from urllib.parse import urlsplit

    configured = config.get("BULLETIN_FROM")
    if configured:
        return parse_address_header(str(configured), "BULLETIN_FROM")
    host = urlsplit(site.url).hostname or "localhost"
    if "." not in host:
        host = f"{host}.localdomain"
    return Address(display_name=site.title("en"), addr_spec=f"news@{host}")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, and a final newline."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip() + "\n"
