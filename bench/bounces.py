"""Benchmark: `publisher bounces process` over a Maildir of DSNs, against parsing them with the email package alone.

Usage: python bench/bounces.py [--messages 10000]

A copy of the sample site with ``--messages`` active subscribers, and a Maildir holding one Postfix-style DSN
(RFC 3464, status 5.1.1) for each, half of them sent to the reader's VERP address (BOUNCE_ADDRESS), half
naming the reader only in the report:

(a) Baseline: each file read and parsed with ``email.message_from_bytes`` alone.
(b) ``publisher.bounces.process`` with the Maildir source, as the command runs it: each message read,
    classified (flufl.bounce, the DSN's status), its Message-ID remembered, the VERP token verified or the
    address looked up, the subscriber suppressed with the event recorded (one SQLite transaction a message),
    and the file moved to cur/.

Prints messages per second for each and the ratio (a)/(b): what the classification and the bookkeeping cost
on top of parsing. Every address must end up bounced (checked), or the figures mean nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where bench/email.py would hide the standard library's
# email package; the project root goes there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import email  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from publisher.site import Site  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "unpog"
sys.path.insert(1, str(ROOT))
from tests.bounces.mail import dsn  # noqa: E402  - the tests' realistic DSN


def prepare(root: Path, count: int) -> Path:
    """The site with ``count`` readers and a Maildir of one DSN for each; the Maildir's path."""
    import mailbox

    from publisher.bounces.verp import Verp

    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("public", "outbox", ".publisher", ".env"))
    (root / ".env").write_text("PUBLISHER_SECRET_KEY=bench-secret\nBOUNCE_ADDRESS=bounces@unpog.example\n",
                               encoding="utf-8")
    site = Site(root)
    readers = site.subscribers()
    verp = Verp.from_config(site)
    assert verp is not None
    box = mailbox.Maildir(root / "bounce-mail", create=True)
    with site.store().transaction():
        for n in range(count):
            reader = readers.add(f"reader{n}@example.org", lang="en")
            assert reader.id is not None
            to = verp.address(reader.id, reader.email) if n % 2 else "bounces@unpog.example"
            box.add(dsn(reader.email, to=to, message_id=f"<dsn{n}@mx.example.org>"))
    site.close()
    return root / "bounce-mail"


def baseline(folder: Path) -> float:
    started = time.perf_counter()
    for name in os.listdir(folder / "new"):
        email.message_from_bytes((folder / "new" / name).read_bytes())
    return time.perf_counter() - started


def processed(root: Path, folder: Path, count: int) -> float:
    from publisher.bounces.process import process
    from publisher.bounces.sources import MaildirSource

    site = Site(root)
    started = time.perf_counter()
    tally = process(site, MaildirSource(folder, site.state_dir / "bounces" / "unclassified"))
    elapsed = time.perf_counter() - started
    bounced = site.subscribers().count(status="bounced")
    site.close()
    if tally.hard != count or bounced != count:
        raise SystemExit(f"expected {count} hard bounces, got {tally.hard} ({bounced} bounced): {tally.summary()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        folder = prepare(root, args.messages)
        base = baseline(folder)
        full = processed(root, folder, args.messages)
    n = args.messages
    print(f"{n} DSNs in a Maildir")
    print(f"(a) email.message_from_bytes alone: {n / base:9.0f} messages/s ({base:.2f} s)")
    print(f"(b) publisher bounces process:      {n / full:9.0f} messages/s ({full:.2f} s)")
    print(f"ratio (a)/(b): {full / base:.1f}x")


if __name__ == "__main__":
    main()
