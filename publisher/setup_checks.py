"""Settings that are valid but will bite: what ``publisher config check`` warns about beyond invalid values.

Each warning is one line saying what happens with the value as it is and what to set. None of them stops a run:
the sample site works on this machine with all of them, and a real site should have none.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING

from publisher.errors import ConfigError, PublisherError

if TYPE_CHECKING:
    from publisher.site import Site

# Hosts a reader's mail client can never reach: this machine.
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def setting_warnings(site: Site) -> list[str]:
    """Every warning for ``site``, in the order a reader of ``config check`` fixes them: sender, key, site URL,
    postal address, then the articles' images. A setting that is invalid gives none (it is an error)."""
    return [*_sender_warnings(site), *_secret_key_warnings(site), *_site_url_warnings(site),
            *_postal_address_warnings(site), *alt_text_warnings(site)]


def mail_transport(site: Site) -> str | None:
    """How mail leaves when it does not go to the Maildir: ``SMTP <host>``, or the ESP named by EMAIL_TRANSPORT
    (ses, postmark, mailgun); None for the Maildir outbox."""
    from publisher.errors import ConfigError
    from publisher.mail.esp import transport_name

    config = site.config
    try:
        transport = transport_name(config)   # the setting's own parser, as the email channel reads it
    except ConfigError:                      # an invalid value: reported as an error by config check itself
        transport = "smtp"
    if transport != "smtp":
        return f"EMAIL_TRANSPORT={transport}"
    host = config.raw("SMTP_HOST")
    return f"SMTP_HOST={host.strip()}" if host else None


def _sender_warnings(site: Site) -> list[str]:
    from publisher.mail.message import sender_address

    config = site.config
    if config.is_set("BULLETIN_FROM"):
        return []
    try:
        sender = sender_address(site, config)
    except ConfigError:
        return []   # the site URL is invalid: reported as an error
    address = sender.addr_spec
    local = address.endswith((".localdomain", "@localhost")) or address.split("@", 1)[1] in _LOCAL_HOSTS
    consequence = ("an address no mail server takes mail from and no reader can answer" if local else
                   "an address made from the site's host name, which may not exist or pass SPF and DMARC")
    return [f"BULLETIN_FROM is not set: mail goes out from {address}, {consequence}; set it in publisher.toml, "
            "e.g. BULLETIN_FROM = \"UNPOG News <news@unpog.org>\""]


def _secret_key_warnings(site: Site) -> list[str]:
    if site.config.is_set("PUBLISHER_SECRET_KEY"):
        return []
    path = site.state_dir / "secret_key"
    where = "a key generated in" if path.is_file() else "a key that will be generated in"
    return [f"PUBLISHER_SECRET_KEY is not set: the links in mails (unsubscribe, confirm, preferences) are signed "
            f"with {where} {path}; if that file is lost, or another machine serves the site, every link already "
            "sent stops working; set a long random value in .env, e.g. the output of "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"]


def _site_url_warnings(site: Site) -> list[str]:
    from urllib.parse import urlsplit

    try:
        url = site.url
    except ConfigError:
        return []   # reported as an invalid setting
    given = "" if site.config.is_set("PUBLISHER_SITE_URL") else " (not set: the default)"
    host = (urlsplit(url).hostname or "").lower()
    transport = mail_transport(site)
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        sending = f", but {transport} is set" if transport else ""
        return [f"PUBLISHER_SITE_URL is {url}{given}{sending}: the unsubscribe and confirmation links and the images "
                "in mails would point at this machine, which readers cannot reach; set the public address "
                "(https://...)"]
    if url.startswith("http://"):
        return [f"PUBLISHER_SITE_URL is {url}: Gmail and Yahoo require an https one-click unsubscribe link "
                "(RFC 8058) for bulk mail; serve the site over HTTPS"]
    return []


def _postal_address_warnings(site: Site) -> list[str]:
    if str(site.config.raw("BULLETIN_POSTAL_ADDRESS") or "").strip():
        return []
    transport = mail_transport(site)
    if transport is None:
        return []   # the Maildir outbox: nobody receives these yet; the warning comes with the transport
    return [f"BULLETIN_POSTAL_ADDRESS is empty, but {transport} sends mail out: anti-spam laws (the US CAN-SPAM "
            "Act, Canada's CASL and others) require the sender's postal address in every bulletin; set it, "
            "e.g. BULLETIN_POSTAL_ADDRESS = \"UNPOG, 175 Art center-daero, Incheon 22004, Republic of Korea\""]


class _ImagesWithoutAlt(HTMLParser):
    """The ``src`` of every ``<img>`` whose alt text is missing or empty."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            values = dict(attrs)
            if not (values.get("alt") or "").strip():
                self.found.append(values.get("src") or "")


def images_without_alt(html: str) -> list[str]:
    """The ``src`` of each image in ``html`` that has no alt text (or an empty one)."""
    parser = _ImagesWithoutAlt()
    parser.feed(html)
    parser.close()
    return parser.found


def alt_text_warnings(site: Site) -> list[str]:
    """One warning per article file with images that readers of a screen reader (and mail clients that block
    images) get nothing for. The front matter's image needs alt text to load at all; these are the body's."""
    try:
        articles = site.articles().articles()
    except PublisherError as error:
        return [f"the articles could not be checked for alt text: {error}"]
    warnings = []
    for article in articles:
        missing = images_without_alt(article.body_html)
        if missing:
            where = str(article.path.relative_to(site.root)) if article.path is not None and \
                article.path.is_relative_to(site.root) else f"{article.slug}.{article.lang}"
            listed = ", ".join(src or "(no src)" for src in missing)
            warnings.append(f"{where}: {len(missing)} image(s) without alt text ({listed}); describe each for "
                            "readers who cannot see it: ![what it shows](path)")
    return warnings


__all__ = ["alt_text_warnings", "images_without_alt", "mail_transport", "setting_warnings"]
