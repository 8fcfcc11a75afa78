"""A PostgreSQL store whose server drops its connections (a restart, a terminated backend): statements and new
transactions go on over a new connection, a transaction cut in the middle is ``ConnectionLost`` (rolled back),
and a server that stays away is one line after PUBLISHER_DATABASE_RECONNECT_SECONDS. PostgreSQL only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from publisher.delivery import DeliveryKey
from publisher.errors import ConnectionLost, DatabaseUnreachable
from publisher.store import open_store
from tests.databases import restart_server, server_stopped, server_url

KEY = DeliveryKey("a", "en", "email", "reader@example.org")


def terminate(store: Any) -> int:
    """Drop the store's connection from the server's side, as a restart does; return the old backend's pid."""
    import psycopg

    pid = int(store.connection.info.backend_pid)
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return pid


def test_a_transaction_begun_on_a_dropped_connection_starts_on_a_new_one(postgres_url: str,
                                                                          tmp_path: Path) -> None:
    store = open_store(postgres_url, state_dir=tmp_path)
    store.ledger.ensure_pending([KEY])
    terminate(store)
    with store.transaction():                 # its BEGIN met the dead connection: nothing had run yet
        store.ledger.begin_many([KEY])
    assert store.ledger.get(KEY).state == "in_flight"
    store.close()


def test_a_transaction_cut_in_the_middle_is_connection_lost_and_rolled_back(postgres_url: str,
                                                                            tmp_path: Path) -> None:
    store = open_store(postgres_url, state_dir=tmp_path)
    store.ledger.ensure_pending([KEY])
    with pytest.raises(ConnectionLost, match="the connection was lost during a transaction; it was rolled back"):
        with store.transaction():
            store.ledger.begin_many([KEY])
            terminate(store)
            store.ledger.mark(KEY, "sent")
    assert store.ledger.get(KEY).state == "pending"     # nothing of it stayed; the store has reconnected
    store.close()


def test_a_server_restart_mid_use_is_invisible_to_statements_and_new_transactions(postgres_url: str,
                                                                                  tmp_path: Path) -> None:
    store = open_store(postgres_url, state_dir=tmp_path)
    store.ledger.mark(KEY, "sent")
    assert store.token_buckets.take("email:smtp:relay:25", 2, rate=10, burst=2, now=0.0) == (2, 0.0)
    restart_server("fast")
    assert store.ledger.get(KEY).state == "sent"
    restart_server("immediate")               # a crash, as far as the server's clients can tell
    granted, wait = store.token_buckets.take("email:smtp:relay:25", 2, rate=10, burst=2, now=0.1)
    assert granted == 1 and wait == 0.0       # the bucket kept its state across both restarts
    with store.transaction():
        store.ledger.mark(KEY, "failed", error="x")
    assert store.ledger.get(KEY).state == "failed"
    store.close()


def test_a_server_that_stays_away_is_one_line_after_the_reconnect_time(postgres_url: str, tmp_path: Path) -> None:
    store = open_store(postgres_url, state_dir=tmp_path, reconnect=0.5)
    store.ledger.mark(KEY, "sent")
    password = server_url().split(":")[2].split("@")[0]
    with server_stopped():
        with pytest.raises(DatabaseUnreachable) as raised:
            store.ledger.get(KEY)
    message = str(raised.value)
    assert "\n" not in message and password not in message
    assert "the connection was lost" in message
    assert "could not be reached again within 0.5 s (PUBLISHER_DATABASE_RECONNECT_SECONDS)" in message
    assert store.ledger.get(KEY).state == "sent"     # the server is back: so is the store
    store.close()
