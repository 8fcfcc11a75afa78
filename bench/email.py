"""Benchmark: a personalized bulletin to N subscribers over SMTP at 0, 5 and 20 ms of reply latency, with and
without PIPELINING offered, against smtplib sending one message in a loop.

Usage: python bench/email.py [--n 3000] [--connections N] [--latencies 0,5,20] [--sinks 2]
                             [--before /tmp/main-tree ...] [--repeat K] [--offer both|yes|no]
                             [--profile folder] [--verp]

Every send goes to a discarding SMTP sink: aiosmtpd's SMTP protocol in separate processes sharing one port
(SO_REUSEPORT), with a lean DATA handler that reads the message in one call and throws it away. Each reply
leaves `latency` ms after its command arrived (replies to pipelined commands leave together, as over a link
with that round trip); PIPELINING is offered in the EHLO reply or not.

(a) Baseline: smtplib, one connection, the same pre-rendered alert (12 KB) sent to each recipient in a loop:
    no personalization, no ledger, no database (at most --baseline-n messages or 6 seconds).
(b) publisher: `pipeline.deliver` of the same article by email to N subscribers stored in the site database:
    recipients streamed in batches, one ledger row per recipient (pending, in flight, sent), each message
    personalized (To:, Message-ID, signed unsubscribe and preferences links in the headers and both bodies),
    the default settings unless --connections is given; with --verp, BOUNCE_ADDRESS is set, so each message's
    envelope sender is a signed VERP address. Run in a child process whose CPU time (and the part of it spent
    on the pipeline's own thread: claiming, submitting, ledger writes; the rest is the SMTP event loop's thread,
    which builds and sends) and peak memory (VmHWM) are reported, whole and after start-up (up to the sending
    session made by EmailChannel.open: imports, templates, rendering, the plan). With --before, the same for
    another source tree (e.g. a `git archive` of the main branch), in the same run. The load average is printed
    with each figure: on a shared machine compare only figures of the same run.

Prints a table of messages per second (and the ratio to (a) at the same latency), the client's CPU per
message and its peak memory. Goals: >= 1,000 msg/s at 20 ms with default settings, >= 1.5x the baseline at
0 ms, <= 350 us of client CPU per message, peak memory flat in N.
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


def run_sink(port: int, latency_ms: float, pipelining: bool) -> None:
    """Serve SMTP on 127.0.0.1:port (shared with the other sink processes) and discard every message.

    ``latency_ms``: each reply leaves that long after its command arrived, as over a link with that round trip:
    replies to commands that arrived together (pipelined) leave together, not one delay after another, and in
    one write, as an MTA's do (Postfix flushes its replies once it has read every command that came in): the
    replies due at the same moment (at 0 ms, those of one read) are joined, not sent a segment each.
    ``pipelining``: PIPELINING is offered in the EHLO reply (aiosmtpd reads pipelined commands in order anyway).
    """
    import asyncio

    from aiosmtpd.smtp import SMTP

    delay = latency_ms / 1000.0

    class DiscardingSMTP(SMTP):
        # The whole message is read with one readuntil(), so the stream limit must hold a message.
        line_length_limit = 1 << 22

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # asyncio reads a stream socket 256 KiB at a time: a new bytes object that size per read (above
            # malloc's mmap threshold) costs the sink more than the rest of a reply; 64 KiB reads are plenty.
            if hasattr(transport, "max_size"):
                transport.max_size = 1 << 16  # type: ignore[attr-defined]
            super().connection_made(transport)
            loop = asyncio.get_running_loop()
            self._arrived = self._read_at = loop.time()   # the last bytes' arrival; the command's
            self._last_write = 0.0
            self._out: list[tuple[float, bytes]] = []   # replies not yet written: (when due, bytes)
            self._flushing = False
            reader = self._reader
            readuntil, readline = reader.readuntil, reader.readline

            # A command arrived with the bytes that ended it: commands that came in one segment (pipelined)
            # share the moment, so their replies are due together.
            async def timed_readuntil(separator: bytes = b"\n") -> bytes:
                line = await readuntil(separator)
                self._read_at = self._arrived
                return line

            async def timed_readline() -> bytes:
                line = await readline()
                self._read_at = self._arrived
                return line

            reader.readuntil = timed_readuntil  # type: ignore[method-assign]
            reader.readline = timed_readline  # type: ignore[method-assign]

        def data_received(self, data: bytes) -> None:
            self._arrived = asyncio.get_running_loop().time()
            super().data_received(data)

        async def push(self, status: str | bytes) -> None:
            data = (status.encode("utf-8") if isinstance(status, str) else status) + b"\r\n"
            loop = asyncio.get_running_loop()
            # In order, and never before its command's arrival + the latency (at 0 ms: once the commands read
            # so far are answered).
            when = max(self._read_at + delay, self._last_write)
            self._last_write = when
            self._out.append((when, data))
            if not self._flushing:
                self._flushing = True
                if delay:
                    loop.call_at(when, self._flush)
                else:
                    loop.call_soon(self._flush)

        def _flush(self) -> None:
            """Write every reply now due in one write; wait for the next one's moment if any is left."""
            loop = asyncio.get_running_loop()
            now = loop.time()
            due = 0
            while due < len(self._out) and self._out[due][0] <= now:
                due += 1
            if due and not self._writer.is_closing():
                self._writer.write(b"".join(data for _, data in self._out[:due]))
            del self._out[:due]
            if self._out:
                loop.call_at(self._out[0][0], self._flush)
            else:
                self._flushing = False

        async def smtp_EHLO(self, hostname: str) -> None:
            if not pipelining:
                await super().smtp_EHLO(hostname)
                return
            pushed = self.push

            async def push(status: str | bytes) -> None:
                if status == "250 HELP":
                    await pushed("250-PIPELINING")
                await pushed(status)

            self.push = push  # type: ignore[method-assign]
            try:
                await super().smtp_EHLO(hostname)
            finally:
                del self.push

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
            lambda: DiscardingSMTP(Handler(), hostname="sink.localdomain"), "127.0.0.1", port, reuse_port=True,
            backlog=512,
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def start_sinks(count: int, latency_ms: float, pipelining: bool) -> tuple[int, list[subprocess.Popen[str]]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sinks = [subprocess.Popen([sys.executable, __file__, "--sink", str(port), "--latency", str(latency_ms)]
                              + (["--pipelining"] if pipelining else []), stdout=subprocess.PIPE, text=True)
             for _ in range(count)]
    for sink in sinks:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return port, sinks


def sink_cpu(sinks: list[subprocess.Popen[str]]) -> float:
    """CPU seconds (user + system) the sink processes have used so far (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for sink in sinks:
        try:
            fields = Path(f"/proc/{sink.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def stop_sinks(sinks: list[subprocess.Popen[str]]) -> None:
    for sink in sinks:
        sink.terminate()
    for sink in sinks:
        sink.wait()


# --- the site ----------------------------------------------------------------------------------------------


def make_site(folder: Path, n: int, port: int, connections: int | None, name: str = "site", *,
              verp: bool = False) -> Path:
    """A copy of the sample site with n active subscribers (1 in 3 Korean) and SMTP pointing at the sink
    (``connections`` None: the SMTP_CONNECTIONS default; ``verp``: with BOUNCE_ADDRESS)."""
    from publisher.site import Site

    root = folder / name
    shutil.copytree(ROOT / "examples" / "unpog", root, ignore=shutil.ignore_patterns("public", "outbox", ".publisher"))
    settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
                "BULLETIN_FROM": "UNPOG News <news@unpog.example>",
                "PUBLISHER_SITE_URL": "https://news.unpog.example"}
    if connections is not None:
        settings["SMTP_CONNECTIONS"] = str(connections)
    if verp:
        settings["BOUNCE_ADDRESS"] = "bounces@unpog.example"
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


def baseline(root: Path, port: int, n: int, seconds: float = 6.0) -> tuple[float, int]:
    """smtplib, one connection, one pre-rendered message to n recipients (or as many as `seconds` allow);
    returns messages per second and how many were sent."""
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
    sent = 0
    for i in range(n):
        conn.sendmail("news@unpog.example", [f"reader{i:07d}@example.org"], data)
        sent += 1
        if time.perf_counter() - started > seconds:
            break
    elapsed = time.perf_counter() - started
    conn.close()
    site.close()
    return sent / elapsed, sent


# --- (b) publisher ---------------------------------------------------------------------------------------


def publisher_send(root: Path, profile: Path | None = None) -> None:
    """Child process: publish the article by email to every subscriber; print a JSON line with the figures
    (with ``profile``, a pyinstrument profile of the run written there as text)."""
    from publisher import pipeline
    from publisher.article import load_stories
    from publisher.channels.email import EmailChannel
    from publisher.site import Site

    site = Site(root)
    story = load_stories(sorted(site.content_dir.glob(f"{ARTICLE}.*.md")), site)[0]
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    opened: list[float] = []

    class Timed(EmailChannel):
        def open(self, renditions, ctx):  # type: ignore[no-untyped-def]
            session = super().open(renditions, ctx)
            # Start-up done: imports (those of the sending modules too, which open() makes: with
            # PYTHONDONTWRITEBYTECODE they are compiled again every run, ~0.1 s), templates, rendering, the plan.
            opened.append(sum(os.times()[:2]))
            opened.append(time.thread_time())
            return session

    cpu_before = sum(os.times()[:2])
    main_before = time.thread_time()
    started = time.perf_counter()
    reports = pipeline.deliver(site, Timed(site), [(story, story.languages)], pipeline.RunOptions())
    elapsed = time.perf_counter() - started
    cpu = sum(os.times()[:2]) - cpu_before
    main_cpu = time.thread_time() - main_before
    main_sending_cpu = time.thread_time() - opened[1]   # the pipeline's thread once the session was open
    if profiler is not None:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, show_all=False), encoding="utf-8")
    sent = site.ledger().counts(article=ARTICLE, channel="email")["sent"]
    print(json.dumps({"sent": sent, "seconds": elapsed, "cpu": cpu, "startup_cpu": opened[0] - cpu_before,
                      "main_cpu": main_cpu, "main_sending_cpu": main_sending_cpu,
                      "peak_kb": peak_rss_kb(),
                      "notes": [f"{r.lang}: {r.note}" for r in reports]}))


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_publisher(root: Path, src: Path | None, profile: Path | None) -> dict[str, object]:
    command = [sys.executable, __file__, "--send", str(root)]
    if src is not None:
        command += ["--src", str(src)]
    if profile is not None:
        command += ["--profile-to", str(profile)]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(child.stderr)
    result: dict[str, object] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="subscribers (default 3,000)")
    parser.add_argument("--connections", type=int, default=None,
                        help="SMTP_CONNECTIONS for publisher (default: the setting's default)")
    parser.add_argument("--latencies", default="0,5,20", help="reply latencies of the sinks in ms (default 0,5,20)")
    parser.add_argument("--baseline-n", type=int, default=3000, help="most messages the baseline sends")
    parser.add_argument("--sinks", type=int, default=2, help="sink processes sharing the port (default 2)")
    parser.add_argument("--before", type=Path, action="append", default=[],
                        help="also run the publisher source tree at this path (e.g. a `git archive` of the main "
                             "branch) for comparison, right after this tree at each latency; may be given again")
    parser.add_argument("--before-connections", type=int, default=None,
                        help="SMTP_CONNECTIONS for --before (default: that tree's default)")
    parser.add_argument("--offer", choices=("both", "yes", "no"), default="both",
                        help="run with PIPELINING offered (yes), not offered (no) or both (default)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each tree this many times at each latency, interleaved (default 1)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a pyinstrument profile of each publisher run into this folder")
    parser.add_argument("--verp", action="store_true",
                        help="set BOUNCE_ADDRESS: each message's envelope sender is a signed VERP address")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--pipelining", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--send", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--make-site", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink, args.latency, args.pipelining)
        return
    if args.send:
        if args.src:
            sys.path.insert(0, args.src)
            for name in [m for m in sys.modules if m == "publisher" or m.startswith("publisher.")]:
                del sys.modules[name]
        publisher_send(Path(args.send), args.profile_to)
        return
    if args.make_site:   # the site of another tree (--before), made and migrated by that tree's own code
        sys.path.insert(0, args.src)
        for name in [m for m in sys.modules if m == "publisher" or m.startswith("publisher.")]:
            del sys.modules[name]
        made = json.loads(args.make_site)
        make_site(Path(made.pop("folder")), **made)
        return

    latencies = [float(x) for x in args.latencies.split(",")]
    rows: dict[str, dict[tuple[float, bool], str]] = {}
    figures: list[str] = []
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-email-") as folder:
        run = 0
        for latency in latencies:
            base_rate = None
            for offered in [o for o in (False, True) if args.offer in ("both", "yes" if o else "no")]:
                port, sinks = start_sinks(args.sinks, latency, offered)
                try:
                    if base_rate is None:   # smtplib never pipelines: one baseline per latency
                        run += 1
                        root = make_site(Path(folder), 1, port, args.connections, f"base{run}")
                        base_rate, base_sent = baseline(root, port, args.baseline_n)
                        rows.setdefault("smtplib loop, 1 connection", {})[(latency, False)] = f"{base_rate:,.1f} (1.00)"
                        rows["smtplib loop, 1 connection"][(latency, True)] = "(same)"
                        figures.append(f"{latency:g} ms: smtplib baseline {base_rate:,.1f} msg/s ({base_sent:,} sent)")
                    trees: list[tuple[str, Path | None, int | None]] = [
                        (f"publisher, {args.connections or 'default'} connections", None, args.connections)]
                    for before in args.before:
                        trees.append((f"{before} (--before), {args.before_connections or 'default'} connections",
                                      before, args.before_connections))
                    for label, src, connections in trees * args.repeat:   # interleaved: new, before, new, before...
                        run += 1
                        if src is None:
                            root = make_site(Path(folder), args.n, port, connections, f"site{run}", verp=args.verp)
                        else:   # its database made by its own migrations: an older tree may not know ours
                            root = Path(folder) / f"site{run}"
                            subprocess.run([sys.executable, __file__, "--src", str(src), "--make-site", json.dumps(
                                {"folder": folder, "n": args.n, "port": port, "connections": connections,
                                 "name": f"site{run}", "verp": args.verp})], check=True)
                        profile = None
                        if args.profile is not None:
                            profile = args.profile / f"{run}-{'before' if src else 'new'}-{latency:g}ms-" \
                                                     f"{'pipelining' if offered else 'plain'}.txt"
                        sink_before = sink_cpu(sinks)
                        result = run_publisher(root, src, profile)
                        sink_us = (sink_cpu(sinks) - sink_before) / max(int(result["sent"]), 1) * 1e6  # type: ignore[call-overload]
                        sent = int(result["sent"])  # type: ignore[call-overload]
                        rate = sent / float(result["seconds"])  # type: ignore[arg-type]
                        cpu_us = float(result["cpu"]) / max(sent, 1) * 1e6  # type: ignore[arg-type]
                        startup = float(result.get("startup_cpu", 0.0))  # type: ignore[arg-type]
                        sending_us = (float(result["cpu"]) - startup) / max(sent, 1) * 1e6  # type: ignore[arg-type]
                        peak = int(result["peak_kb"]) / 1024  # type: ignore[call-overload]
                        main_us = float(result.get("main_cpu", 0.0)) / max(sent, 1) * 1e6  # type: ignore[arg-type]
                        main_sending = float(result.get("main_sending_cpu", 0.0))  # type: ignore[arg-type]
                        main_sending_us = main_sending / max(sent, 1) * 1e6
                        cell = rows.setdefault(label, {}).get((latency, offered))
                        rows[label][(latency, offered)] = (cell + ", " if cell else "") + \
                            f"{rate:,.0f} ({rate / base_rate:.1f})"
                        figures.append(f"{latency:g} ms, PIPELINING {'offered' if offered else 'not offered'}, "
                                       f"{label}: {rate:,.0f} msg/s, {sent:,} sent of {args.n:,}, "
                                       f"client CPU {cpu_us:,.0f} us/msg ({sending_us:,.0f} us/msg after the "
                                       f"{startup:.1f} s of start-up: {main_sending_us:,.0f} on the pipeline's "
                                       f"thread, {sending_us - main_sending_us:,.0f} on the SMTP loop's; "
                                       f"{main_us:,.0f} us/msg on the pipeline's thread, start-up included), "
                                       f"peak {peak:.0f} MB; the sinks' CPU {sink_us:,.0f} us/msg; load {os.getloadavg()[0]:.1f}")
                        print(figures[-1], flush=True)
                finally:
                    stop_sinks(sinks)
    print()
    print(f"N = {args.n:,} subscribers, {args.sinks} sink processes, {os.cpu_count()} cores; "
          "msg/s (ratio to the smtplib loop at the same latency)")
    header = "| sender | " + " | ".join(f"{lat:g} ms {'pipelining' if p else 'no pipelining'}"
                                        for lat in latencies for p in (False, True)) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(latencies)))
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells.get((lat, p), "-") for lat in latencies for p in (False, True))
              + " |")
    print()
    for line in figures:
        print(line)
    print("Goals: >= 1,000 msg/s at 20 ms with default settings; >= 1.5x the baseline at 0 ms; client CPU "
          "<= 350 us per message; peak memory flat in N.")


if __name__ == "__main__":
    main()
