"""Local adapters: deliveries written to files under ``outbox/`` when a channel has no remote settings."""

from __future__ import annotations

import json
import mailbox
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.fsutil import atomic_write_text

if TYPE_CHECKING:
    from publisher.site import Site


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text).strip("._") or "item"


def json_outbox_path(site: Site, channel: str, name: str) -> Path:
    """Where ``write_json_outbox`` writes ``name`` of ``channel``: ``outbox/<channel>/<name>.json``."""
    return site.outbox_dir / safe_name(channel) / f"{safe_name(name)}.json"


def write_json_outbox(site: Site, channel: str, name: str, payload: dict[str, Any]) -> Path:
    """Write ``outbox/<channel>/<name>.json`` atomically and return its path."""
    path = json_outbox_path(site, channel, name)
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
    return path


def maildir(site: Site) -> mailbox.Maildir:
    """The Maildir at ``outbox/mail/`` (messages are written to tmp/ and renamed into new/, so never half-written)."""
    path = site.outbox_dir / "mail"
    # Made here with exist_ok: mailbox's own create=True fails with FileExistsError when two threads (the web
    # app's background mails) make the folder at the same moment.
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)
