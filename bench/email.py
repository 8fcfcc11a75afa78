"""Benchmark: a personalized bulletin to N subscribers over SMTP, against smtplib sending one message in a loop.

Usage: python bench/email.py [--n 20000] [--connections 4] [--baseline-n 20000] [--sinks 0]

Both sends go to the same discarding SMTP sink: aiosmtpd's SMTP protocol in separate processes sharing one port
(SO_REUSEPORT, one process per connection), with a lean DATA handler that reads the message in one call
instead of line by line and throws it away (aiosmtpd's own DATA loop, a Python loop over every line, would
otherwise be what is measured).

(a) Baseline: smtplib, one connection, the same pre-rendered alert (12 KB) sent to each recipient in a loop:
    no personalization, no ledger, no database.
(b) publisher: `EmailChannel.publish()` of the same article to N subscribers stored in the site database:
    recipients streamed in batches, one ledger row per recipient (pending, in flight, sent), each message
    personalized (To:, Message-ID, signed unsubscribe and preferences links in the headers and both bodies),
    SMTP_CONNECTIONS connections. Run in a child process whose peak memory (VmHWM) is reported.

Prints messages per second for both, the ratio (b)/(a), and the peak resident memory of (b).
Goals: ratio >= 2, (b) >= 1,000 msg/s, peak memory <= 150 MB at 1,000,000 subscribers.
The baseline's rate does not depend on N, so it sends min(N, --baseline-n) messages.
"""

from __future__ import annotations

import os
import sys

# This file is named email.py: drop bench/ from the import path so `import email` finds the standard library.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ARTICLE = "2024-unpsf-incheon"


# --- the sink ----------------------------------------------------------------------------------------------


def run_sink(port: int) -> None:
    """Serve SMTP on 127.0.0.1:port (shared with the other sink processes) and discard every message."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    class DiscardingSMTP(SMTP):
        # The whole message is read with one readuntil(), so the stream limit must hold a message.
        line_length_limit = 1 << 22

        async def smtp_DATA(self, arg: str) -> None:
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n.\r\n")
            self._set_post_data_state()
            await self.push("250 OK")

    class Handler:
        pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: DiscardingSMTP(Handler(), hostname="sink.localdomain"), "127.0.0.1", port, reuse_port=True
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def start_sinks(count: int) -> tuple[int, list[subprocess.Popen[str]]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sinks = [subprocess.Popen([sys.executable, __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True)
             for _ in range(count)]
    for sink in sinks:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return port, sinks


# --- the site ----------------------------------------------------------------------------------------------


def make_site(folder: Path, n: int, port: int, connections: int) -> Path:
    """A copy of the sample site with n active subscribers (1 in 3 Korean) and SMTP pointing at the sink."""
    from publisher.site import Site

    root = folder / "site"
    shutil.copytree(ROOT / "examples" / "unpog", root, ignore=shutil.ignore_patterns("public", "outbox", ".publisher"))
    settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
                "SMTP_CONNECTIONS": str(connections), "BULLETIN_FROM": "UNPOG News <news@unpog.example>",
                "PUBLISHER_SITE_URL": "https://news.unpog.example"}
    toml = root / "publisher.toml"
    kept = [line for line in toml.read_text(encoding="utf-8").splitlines()
            if line.split("=", 1)[0].strip() not in settings]
    toml.write_text("\n".join(kept + [f'{k} = "{v}"' for k, v in settings.items()]) + "\n", encoding="utf-8")
    (root / ".env").write_text("PUBLISHER_SECRET_KEY=bench-secret\n", encoding="utf-8")
    site = Site(root)
    conn = site.store().connection   # the SQLite store's connection: setup writes the table directly
    # Setup, not measured: rows straight into the table (validating a million addresses takes a minute).
    now = "2024-01-01T00:00:00+00:00"
    conn.execute("BEGIN")
    batch = []
    for i in range(n):
        address = f"reader{i:07d}@example.org"
        korean = i % 3 == 0
        batch.append((address, address, f"독자 {i}" if korean else f"Reader {i}", "ko" if korean else "en",
                      now, now, now))
        if len(batch) == 10000:
            conn.executemany("INSERT INTO subscribers (email, email_key, name, lang, status, themes, created_at,"
                             " confirmed_at, updated_at) VALUES (?, ?, ?, ?, 'active', '', ?, ?, ?)", batch)
            batch.clear()
    if batch:
        conn.executemany("INSERT INTO subscribers (email, email_key, name, lang, status, themes, created_at,"
                         " confirmed_at, updated_at) VALUES (?, ?, ?, ?, 'active', '', ?, ?, ?)", batch)
    conn.execute("COMMIT")
    site.close()
    return root


# --- (a) baseline ------------------------------------------------------------------------------------------


def baseline(root: Path, port: int, n: int) -> float:
    """smtplib, one connection, one pre-rendered message to n recipients; returns messages per second."""
    import smtplib

    from publisher.article import load_stories
    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder
    from publisher.site import Site
    from publisher.subscribers import Subscriber

    site = Site(root)
    story = load_stories(sorted(site.content_dir.glob(f"{ARTICLE}.*.md")), site)[0]
    builder = MessageBuilder(site)
    data, _ = builder.wire(BulletinFormatter(site).alert(story.get("en")),
                           Subscriber("reader@example.org", None, "en", "active", [], None, None))  # type: ignore[arg-type]
    conn = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for i in range(n):
        conn.sendmail("news@unpog.example", [f"reader{i:07d}@example.org"], data)
    elapsed = time.perf_counter() - started
    conn.quit()
    site.close()
    return n / elapsed


# --- (b) publisher ---------------------------------------------------------------------------------------


def publisher_send(root: Path) -> None:
    """Child process: publish the article by email to every subscriber; print a JSON line with the figures."""
    from publisher import pipeline
    from publisher.article import load_stories
    from publisher.channels.email import EmailChannel
    from publisher.site import Site

    site = Site(root)
    story = load_stories(sorted(site.content_dir.glob(f"{ARTICLE}.*.md")), site)[0]
    cpu_before = sum(os.times()[:2])
    started = time.perf_counter()
    reports = pipeline.deliver(site, EmailChannel(site), [(story, story.languages)], pipeline.RunOptions())
    elapsed = time.perf_counter() - started
    cpu = sum(os.times()[:2]) - cpu_before
    sent = site.ledger().counts(article=ARTICLE, channel="email")["sent"]
    print(json.dumps({"sent": sent, "seconds": elapsed, "cpu": cpu, "peak_kb": peak_rss_kb(),
                      "notes": [f"{r.lang}: {r.note}" for r in reports]}))


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="subscribers (default 20,000)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP_CONNECTIONS for publisher (default 4)")
    parser.add_argument("--baseline-n", type=int, default=20000, help="most messages the baseline sends")
    parser.add_argument("--sinks", type=int, default=0, help="sink processes (default: one per connection)")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--send", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return
    if args.send:
        publisher_send(Path(args.send))
        return

    port, sinks = start_sinks(args.sinks or args.connections)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-email-") as folder:
            started = time.perf_counter()
            root = make_site(Path(folder), args.n, port, args.connections)
            print(f"setup: {args.n:,} subscribers in {time.perf_counter() - started:.1f} s "
                  f"({len(sinks)} sink processes on port {port})")

            baseline_n = min(args.n, args.baseline_n)
            base_rate = baseline(root, port, baseline_n)
            print(f"(a) baseline, smtplib, 1 connection, one pre-rendered message: "
                  f"{base_rate:,.0f} msg/s ({baseline_n:,} messages)")

            child = subprocess.run([sys.executable, __file__, "--send", str(root)], capture_output=True, text=True)
            if child.returncode != 0:
                raise SystemExit(child.stderr)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            rate = result["sent"] / result["seconds"]
            print(f"(b) publisher, personalized, ledger, {args.connections} connections: {rate:,.0f} msg/s "
                  f"({result['sent']:,} sent in {result['seconds']:.1f} s; {'; '.join(result['notes'])})")
            print(f"    CPU time of (b): {result['cpu'] / result['sent'] * 1e6:.0f} us per message "
                  f"(the sinks need their own; this machine has {os.cpu_count()} cores)")
            print(f"ratio (b)/(a): {rate / base_rate:.2f}x   (goal >= 2x, and >= 1,000 msg/s)")
            print(f"peak memory of (b): {result['peak_kb'] / 1024:.0f} MB at {args.n:,} subscribers "
                  f"(goal <= 150 MB at 1,000,000)")
    finally:
        for sink in sinks:
            sink.terminate()
        for sink in sinks:
            sink.wait()


if __name__ == "__main__":
    main()
