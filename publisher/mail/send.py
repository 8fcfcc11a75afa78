"""Transactional mail, one message now: a confirmation request or a note to a reader, over SMTP or into the Maildir."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from email.message import EmailMessage

    from publisher.site import Site
    from publisher.subscribers import Subscriber


def send_message(site: Site, message: EmailMessage, *, esp_client: Any = None) -> str:
    """Send ``message`` now: through the provider's API with EMAIL_TRANSPORT=ses|postmark|mailgun (configured),
    over SMTP when SMTP_HOST is set, else into the Maildir outbox.

    Fills in From (BULLETIN_FROM), Date and Message-ID when missing, and signs with DKIM when configured.
    Returns where it went: ``"smtp://host:port"``, ``"<provider> <its id>"`` or the path of the Maildir file.
    ``esp_client`` replaces what a provider's transport talks to (see ``publisher.mail.esp.esp_transport``).
    """
    from publisher.errors import ChannelError
    from publisher.mail.esp import missing_for, transport_name
    from publisher.mail.maildir import write_to_maildir
    from publisher.mail.message import MessageBuilder
    from publisher.mail.settings import SMTP_HOST
    from publisher.mail.smtp import one_line, smtp_server

    config = site.config
    builder = MessageBuilder(site, config)
    builder.stamp(message)
    data = builder.serialize(message)
    transport = transport_name(config)
    if transport != "smtp" and not missing_for(config, transport):
        return _send_through_esp(site, message, data, builder.sender.addr_spec, transport, esp_client)
    if not config.is_set(SMTP_HOST.name):
        return write_to_maildir(site, data)
    server = smtp_server(config)
    recipients = [address.addr_spec for header in ("To", "Cc", "Bcc")
                  for address in getattr(message[header], "addresses", ())]
    options = [] if all(a.isascii() for a in [builder.sender.addr_spec, *recipients]) else ["SMTPUTF8"]
    try:
        conn = server.connect()
        try:
            conn.sendmail(builder.sender.addr_spec, recipients, data, mail_options=options)
        finally:
            conn.quit()
    except OSError as error:   # smtplib's exceptions are OSErrors
        raise ChannelError(f"SMTP {server.describe()}: {one_line(error)}") from None
    return f"smtp://{server.describe()}"


def _send_through_esp(site: Site, message: EmailMessage, data: bytes, sender: str, transport: str,
                      client: Any) -> str:
    """One message through the provider (Postmark: its transactional stream), each recipient a job."""
    from publisher.errors import ChannelError
    from publisher.mail.esp import esp_transport
    from publisher.mail.smtp import SendJob

    recipients = [address.addr_spec for header in ("To", "Cc", "Bcc")
                  for address in getattr(message[header], "addresses", ())]
    esp = esp_transport(site.config, transport, lambda job: (data, str(message["Message-ID"])), client=client,
                        transactional=True)
    ids = []
    with esp:
        for recipient in recipients:
            esp.submit(SendJob(recipient, sender, recipient))
        for _ in recipients:
            outcome = esp.next_outcome()
            assert outcome is not None
            if outcome.state != "sent":
                raise ChannelError(f"{esp.describe()}: {outcome.error or outcome.state}")
            ids.append(str(getattr(outcome, "remote_id", None) or outcome.message_id))
    return f"{esp.describe()} {', '.join(ids)}"


def confirmation_message(site: Site, subscriber: Subscriber) -> EmailMessage:
    """The double opt-in request for a pending subscriber, in their language, with a signed confirm link."""
    from publisher.formatters.email import postal_lines
    from publisher.mail.message import MessageBuilder
    from publisher.tokens import link

    lang = subscriber.lang
    site_name = site.title(lang)
    subject = site.ui.gettext(lang, "Please confirm your subscription to {site}", site=site_name)
    context = {"lang": lang, "subject": subject, "site_name": site_name, "postal_lines": postal_lines(site.config),
               "confirm_url": link(site, "confirm", {"email": subscriber.email})}
    env = site.templates
    return MessageBuilder(site).compose(
        subscriber, subject=subject, lang=lang, kind="confirm",
        text=env.get_template("email/confirm.txt.j2").render(context),
        html=env.get_template("email/confirm.html.j2").render(context))


__all__ = ["confirmation_message", "send_message"]
