"""Benchmark: the ledger's write cost per delivery (issue 17), against a bare table in the same run.

Usage: python bench/ledger.py [--rows 3000] [--batches 25,200] [--repeat 3] [--postgres URL]

Each delivery is written as the email channel writes it: ``ensure_pending`` (the pending row), ``claim_many``
(pending -> in_flight, with a lease) and ``mark_many`` (in_flight -> sent, with a detail), one transaction per
call, ``--batches`` rows per call. The same writes run on the real schema and on a baseline: the same
database with every secondary index and the ``ledger_articles`` trigger dropped (only the primary key and the
unique key left), so the ratio is the cost of the indexes and trigger the reads need. µs per row; the load
average is printed, as the machine is shared; each figure is the best of ``--repeat`` runs. PostgreSQL too with ``--postgres URL`` (or under
``.ci/postgres.sh``, which sets PUBLISHER_TEST_POSTGRES_URL): each variant gets a fresh schema.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)   # not bench/ itself: bench/email.py would shadow the standard library

from publisher.delivery import Delivery, DeliveryKey, Lease  # noqa: E402


def bare_sqlite(store: Any) -> None:
    conn = store.connection
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'"
                                " AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    conn.execute("DROP TRIGGER IF EXISTS ledger_articles_add")


def bare_postgres(url: str) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries'"
                                    " AND indexdef NOT LIKE 'CREATE UNIQUE%%'").fetchall():
            conn.execute(f"DROP INDEX {name}")
        conn.execute("DROP TRIGGER IF EXISTS ledger_articles_add ON deliveries")


def run(ledger: Any, rows: int, batch: int, tag: str, clock: Any = time.process_time) -> float:
    """µs per delivery of pending + claim + mark, ``batch`` rows per call, by ``clock``: this process's CPU
    time for SQLite (all its work is here, and the figure does not move with the other processes' load),
    the wall clock for PostgreSQL (its work is in the server)."""
    lease = Lease("bench:1:0", datetime.now(timezone.utc) + timedelta(minutes=5))
    start = clock()
    for first in range(0, rows, batch):
        keys = [DeliveryKey(f"bulletin-{tag}", "en", "email", f"reader-{n}@example.org")
                for n in range(first, min(first + batch, rows))]
        ledger.ensure_pending(keys)
        claimed = ledger.claim_many([(key, None) for key in keys], lease)
        assert len(claimed) == len(keys)
        ledger.mark_many([(key, "sent", f"<{key.target}>", None, None, {"via": "bench"}) for key in keys])
    return (clock() - start) / rows * 1e6


def sqlite_store(folder: Path, name: str) -> Any:
    from publisher.store.sqlite import SqliteStore
    store = SqliteStore(folder / f"{name}.sqlite", state_dir=folder)
    store.migrate()
    return store


def postgres_store(url: str, folder: Path) -> Any:
    import psycopg
    from publisher.store.postgres import PostgresStore
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    store = PostgresStore(url, state_dir=folder)
    store.migrate()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batches", default="25,200")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("PUBLISHER_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rows} rows per figure; µs per delivery "
          "(ensure_pending + claim_many + mark_many): SQLite CPU time, PostgreSQL wall time")
    assert Delivery   # the rows written are the ledger's own
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for batch in batches:
            real, bare = sqlite_store(folder, f"real{batch}"), sqlite_store(folder, f"bare{batch}")
            bare_sqlite(bare)
            run(real.ledger, 200, 50, "warm")
            run(bare.ledger, 200, 50, "warm")
            r = min(run(real.ledger, args.rows, batch, f"x{n}") for n in range(args.repeat))
            b = min(run(bare.ledger, args.rows, batch, f"x{n}") for n in range(args.repeat))
            print(f"sqlite     {batch:4} rows/txn: schema {r:7.1f}  bare {b:7.1f}  ratio {r / b:.2f}")
            real.close()
            bare.close()
        if args.postgres:
            for batch in batches:
                figures = []
                for bare_schema in (False, True):
                    store = postgres_store(args.postgres, folder)
                    if bare_schema:
                        bare_postgres(args.postgres)
                    run(store.ledger, 200, 50, "warm")
                    figures.append(min(run(store.ledger, args.rows, batch, f"x{n}", time.perf_counter) for n in range(args.repeat)))
                    store.close()
                r, b = figures
                print(f"postgresql {batch:4} rows/txn: schema {r:7.1f}  bare {b:7.1f}  ratio {r / b:.2f}")


if __name__ == "__main__":
    main()
