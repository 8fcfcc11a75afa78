"""The local mail transport: each message written to the Maildir at outbox/mail/ (tmp/ then new/, never half-written)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mailbox

    from publisher.mail.smtp import SendJob, SendOutcome
    from publisher.site import Site


def write_to_maildir(site: Site, data: bytes) -> str:
    """Write one message to ``outbox/mail/`` and return the path of its file."""
    from publisher.channels.outbox import maildir

    box = maildir(site)
    try:
        key = box.add(data)
    finally:
        box.close()
    return str(site.outbox_dir / "mail" / "new" / key)


class MaildirTransport:
    """The SMTP sender's interface over the Maildir: one in flight, each job written as soon as it is submitted."""

    capacity = 1

    def __init__(self, site: Site, build: Callable[[SendJob], tuple[bytes, str]]) -> None:
        self.site = site
        self.build = build
        self._done: list[SendOutcome] = []
        self._box: mailbox.Maildir | None = None

    def describe(self) -> str:
        return "Maildir outbox/mail/"

    def __enter__(self) -> MaildirTransport:
        from publisher.channels.outbox import maildir

        self._box = maildir(self.site)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None

    def submit(self, job: SendJob) -> None:
        from publisher.mail.smtp import SendOutcome

        assert self._box is not None, "submit() outside `with`"
        data, message_id = self.build(job)
        self._box.add(data)
        self._done.append(SendOutcome(job, "sent", message_id=message_id))

    def next_outcome(self, timeout: float | None = None) -> SendOutcome | None:
        """The next outcome (each is ready as soon as its job was submitted), or None when there is none."""
        return self._done.pop(0) if self._done else None
