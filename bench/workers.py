"""Benchmark: one bulletin shared by 1, 2 and 4 `publisher worker` processes on one PostgreSQL database, against
aiosmtpd sinks in separate processes that delay each reply by 20 ms, as a remote relay would.

Usage: bash .ci/postgres.sh .venv/bin/python bench/workers.py [--n 20000] [--workers 1,2,4] [--connections 4]
       (without PUBLISHER_TEST_POSTGRES_URL in the environment it starts itself under .ci/postgres.sh)

For each worker count: a fresh schema and a copy of the sample site with N active subscribers (1 in 3 Korean),
`publisher publish ARTICLE --channel email --queue` (rows pending, one shared send job), then that many
`publisher worker --until-idle` processes started together; each claims batches of recipients
(WORKER_BATCH_SIZE) and sends them over its own SMTP_CONNECTIONS connections. The sinks are bench/email.py's
(imported, not copied): aiosmtpd's protocol in --sinks processes sharing one port, PIPELINING offered, every
reply 20 ms after its command.

Reported per worker count: messages per second (sent rows over the span of their ledger times, and over the
wall time from the workers' start to the last exit) and the ratio to one worker; the time spent in the claim
query per batch (each worker times its own `claim_queued` calls); PostgreSQL rows written per message
(pg_stat_user_tables n_tup_ins + n_tup_upd + n_tup_del of the schema, before and after) and WAL bytes per
message; the load average. Goals: 2 workers >= 1.8x one, 4 workers >= 3x (the sinks' latency, not the CPU, is
the limit: each worker has few connections, so one is latency bound).
"""

from __future__ import annotations

import os
import sys

# bench/ holds email.py: drop it from the import path so `import email` finds the standard library.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ARTICLE = "2024-unpsf-incheon"


def email_bench() -> Any:
    """bench/email.py as a module (its sinks): loaded by path, since its name would shadow the standard email."""
    spec = importlib.util.spec_from_file_location("bench_email", ROOT / "bench" / "email.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the database ------------------------------------------------------------------------------------------


def with_schema(url: str, schema: str) -> str:
    from urllib.parse import quote

    return url + ("&" if "?" in url else "?") + "options=" + quote(f"-csearch_path={schema}", safe="")


def table_writes(url: str, schema: str) -> tuple[int, int]:
    """Rows inserted, updated and deleted so far in ``schema``'s tables, and the WAL position (bytes)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
                           " WHERE schemaname = %s", (schema,)).fetchone()
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')").fetchone()
    assert row is not None and wal is not None
    return int(row[0]), int(wal[0])


def ledger_span(url: str) -> tuple[int, float]:
    """Sent rows of the bulletin, and the seconds between the first and the last one's update."""
    from datetime import datetime

    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), min(updated_at), max(updated_at) FROM deliveries"
                           " WHERE channel = 'email' AND state = 'sent'").fetchone()
    assert row is not None
    if not row[0]:
        return 0, 0.0
    span = (datetime.fromisoformat(row[2]) - datetime.fromisoformat(row[1])).total_seconds()
    return int(row[0]), span


# --- the site ----------------------------------------------------------------------------------------------


def make_site(folder: Path, name: str, url: str, n: int, port: int, connections: int, batch: int) -> Path:
    """A copy of the sample site on the database at ``url`` with n active subscribers, SMTP to the sinks."""
    from publisher.site import Site

    root = folder / name
    shutil.copytree(ROOT / "examples" / "unpog", root, ignore=shutil.ignore_patterns("public", "outbox", ".publisher"))
    settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
                "SMTP_CONNECTIONS": str(connections), "BULLETIN_FROM": "UNPOG News <news@unpog.example>",
                "PUBLISHER_SITE_URL": "https://news.unpog.example", "WORKER_BATCH_SIZE": str(batch),
                "WORKER_POLL_SECONDS": "0.2"}
    toml = root / "publisher.toml"
    kept = [line for line in toml.read_text(encoding="utf-8").splitlines()
            if line.split("=", 1)[0].strip() not in settings]
    toml.write_text("\n".join(kept + [f'{k} = "{v}"' for k, v in settings.items()]) + "\n", encoding="utf-8")
    (root / ".env").write_text(f"PUBLISHER_SECRET_KEY=bench-secret\nPUBLISHER_DATABASE_URL={url}\n", encoding="utf-8")
    site = Site(root)
    store: Any = site.store()
    conn = store.connection   # setup, not measured: rows straight into the table
    now = "2024-01-01T00:00:00+00:00"
    rows = []
    for i in range(n):
        address = f"reader{i:07d}@example.org"
        korean = i % 3 == 0
        rows.append((address, address, f"독자 {i}" if korean else f"Reader {i}", "ko" if korean else "en", now, now, now))
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany("INSERT INTO subscribers (email, email_key, name, lang, status, themes, created_at,"
                           " confirmed_at, updated_at) VALUES (%s, %s, %s, %s, 'active', '', %s, %s, %s)", rows)
    site.close()
    return root


def cli(root: Path, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "publisher", "--site", str(root), *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
                          **options)


# --- one worker, timed ---------------------------------------------------------------------------------------


def timed_worker(root: Path, stats: Path, profile: Path | None = None) -> None:
    """``publisher worker --until-idle`` in this process, its claims of queued rows timed: the count, the total
    seconds and the rows they claimed go to ``stats`` (JSON) at the end."""
    import atexit

    from publisher.store import postgres

    claims: list[tuple[float, int]] = []
    original = postgres.PostgresLedger.claim_queued

    def claim_queued(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        rows = original(self, *args, **kwargs)
        claims.append((time.perf_counter() - started, len(rows)))
        return rows

    postgres.PostgresLedger.claim_queued = claim_queued  # type: ignore[method-assign]
    cpu = time.process_time

    def write() -> None:
        batches = [(seconds, rows) for seconds, rows in claims if rows]
        stats.write_text(json.dumps({
            "claims": len(claims), "batches": len(batches), "rows": sum(rows for _, rows in batches),
            "claim_seconds": sum(seconds for seconds, _ in batches),
            "empty_claim_seconds": sum(seconds for seconds, rows in claims if not rows), "cpu": cpu()}))

    atexit.register(write)
    sys.argv = ["publisher", "--site", str(root), "worker", "--until-idle", "--poll", "0.2"]
    from publisher.cli import main

    if profile is None:
        main()
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    try:
        profiler.runcall(main)
    except SystemExit:
        pass
    finally:
        profiler.disable()
        with profile.open("w", encoding="utf-8") as out:
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)


# --- a round -----------------------------------------------------------------------------------------------


def one_round(folder: Path, server: str, workers: int, n: int, port: int, connections: int,
              batch: int, profile: Path | None = None) -> dict[str, Any]:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        url = with_schema(server, schema)
        root = make_site(folder, f"site-{workers}", url, n, port, connections, batch)
        queued = cli(root, "publish", f"content/{ARTICLE}.en.md", f"content/{ARTICLE}.ko.md", "--channel", "email",
                     "--queue")
        if queued.returncode != 0:
            raise SystemExit(f"publish --queue failed:\n{queued.stdout}{queued.stderr}")
        writes_before, wal_before = table_writes(server, schema)
        load_before = os.getloadavg()
        started = time.perf_counter()
        stats = [folder / f"stats-{workers}-{i}.json" for i in range(workers)]
        procs = [subprocess.Popen([sys.executable, __file__, "--timed-worker", str(root), "--stats", str(path)]
                                  + (["--profile-to", str(profile / f"worker-{workers}-{i}.txt")] if profile else []),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
                 for i, path in enumerate(stats)]
        outputs = [proc.communicate(timeout=3600) for proc in procs]
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
        for proc, (out, err) in zip(procs, outputs):
            if proc.returncode != 0:
                raise SystemExit(f"a worker failed ({proc.returncode}):\n{out}{err}")
        writes_after, wal_after = table_writes(server, schema)
        sent, span = ledger_span(url)
        each = [json.loads(path.read_text(encoding="utf-8")) for path in stats]
        batches = sum(one["batches"] for one in each)
        return {
            "workers": workers, "sent": sent, "span": span, "wall": wall,
            "rate": sent / span if span else 0.0, "wall_rate": sent / wall,
            "per_worker_rows": [one["rows"] for one in each],
            "claim_ms": 1000 * sum(one["claim_seconds"] for one in each) / max(batches, 1),
            "batches": batches, "rows_per_batch": sum(one["rows"] for one in each) / max(batches, 1),
            "empty_claims": sum(one["claims"] - one["batches"] for one in each),
            "cpu_us": 1e6 * sum(one["cpu"] for one in each) / max(sent, 1),
            "rows_written": (writes_after - writes_before) / max(sent, 1),
            "wal_bytes": (wal_after - wal_before) / max(sent, 1),
            "load": (load_before, load_after),
        }
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="subscribers (default 20,000)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated (default 1,2,4)")
    parser.add_argument("--connections", type=int, default=4, help="SMTP_CONNECTIONS of each worker (default 4)")
    parser.add_argument("--batch", type=int, default=200, help="WORKER_BATCH_SIZE (default 200)")
    parser.add_argument("--latency", type=float, default=20.0, help="the sinks' reply latency in ms (default 20)")
    parser.add_argument("--sinks", type=int, default=2, help="sink processes sharing the port (default 2)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write each worker's cProfile (cumulative and own time) into this folder")
    parser.add_argument("--timed-worker", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timed_worker:
        timed_worker(Path(args.timed_worker), args.stats, args.profile_to)
        return
    server = os.environ.get("PUBLISHER_TEST_POSTGRES_URL")
    if not server:   # a throwaway server of our own, as the tests get one
        os.execvp("bash", ["bash", str(ROOT / ".ci" / "postgres.sh"), sys.executable, __file__, *sys.argv[1:]])
    counts = [int(x) for x in args.workers.split(",")]
    sinks_module = email_bench()
    port, sinks = sinks_module.start_sinks(args.sinks, args.latency, True)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
            for count in counts:
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                result = one_round(Path(folder), server, count, args.n, port, args.connections, args.batch,
                                   args.profile)
                results.append(result)
                print(f"{count} worker(s): {result['sent']:,} sent in {result['span']:.1f} s "
                      f"({result['rate']:,.0f} msg/s; wall {result['wall']:.1f} s with start-up, "
                      f"{result['wall_rate']:,.0f} msg/s), rows per worker {result['per_worker_rows']}, "
                      f"load {result['load'][0][0]:.1f} -> {result['load'][1][0]:.1f}", flush=True)
    finally:
        sinks_module.stop_sinks(sinks)
    base = results[0]["rate"] if results and results[0]["workers"] == 1 else None
    print()
    print(f"N = {args.n:,} recipients, {args.sinks} sink processes at {args.latency:g} ms per reply (PIPELINING), "
          f"SMTP_CONNECTIONS={args.connections} per worker, WORKER_BATCH_SIZE={args.batch}, {os.cpu_count()} cores")
    print("| workers | msg/s (ledger span) | ratio to 1 | msg/s (wall, with start-up) | claim per batch | rows/batch "
          "| empty claims | rows written/msg | WAL bytes/msg | client CPU/msg | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r['rate'] / base:.2f}x" if base else "-"
        print(f"| {r['workers']} | {r['rate']:,.0f} | {ratio} | {r['wall_rate']:,.0f} | {r['claim_ms']:.1f} ms "
              f"| {r['rows_per_batch']:.0f} | {r['empty_claims']} | {r['rows_written']:.2f} | {r['wal_bytes']:,.0f} "
              f"| {r['cpu_us']:,.0f} us | {r['load'][0][0]:.1f} -> {r['load'][1][0]:.1f} |")
    print("Goals: 2 workers >= 1.8x one worker, 4 workers >= 3x.")
    if base:
        verdicts = {r["workers"]: r["rate"] / base for r in results}
        missed = [f"{w} workers {v:.2f}x (goal {goal}x)" for w, goal in ((2, 1.8), (4, 3.0))
                  if w in verdicts and (v := verdicts[w]) < goal]
        print("Goal missed: " + "; ".join(missed) if missed else "Goals met.")


if __name__ == "__main__":
    main()
