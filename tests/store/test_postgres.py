"""What only the PostgreSQL store has: its URL and password handling, its errors, migrations, lock numbers,
and the test harness that must fail, not skip, under CI without a server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from publisher.delivery import DeliveryKey
from publisher.errors import ConfigError, StorageError
from publisher.settings import parse_database_url, redact_database_url, redact_secret_text
from publisher.site import Site
from publisher.store import dialect, open_store
from tests.databases import server_url

ROOT = Path(__file__).resolve().parents[2]


# --- the URL and its password (no server needed) -----------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://editor:s3cr%40t@db.example.org:5432/site", "postgresql://editor:***@db.example.org:5432/site"),
    ("postgres://editor:pw@db/site?sslmode=require", "postgres://editor:***@db/site?sslmode=require"),
    ("postgresql://editor@db/site", "postgresql://editor@db/site"),
    ("postgresql://db/site?user=editor&password=pw&sslmode=require",
     "postgresql://db/site?user=editor&password=***&sslmode=require"),
    ("host=db user=editor password='a b' dbname=site", "host=db user=editor password=*** dbname=site"),
    ("sqlite:////var/lib/publisher/site.db", "sqlite:////var/lib/publisher/site.db"),
])
def test_the_password_of_a_database_url_is_redacted(url: str, shown: str) -> None:
    assert redact_database_url(url) == shown


def test_a_driver_message_loses_the_password_raw_and_decoded() -> None:
    url = "postgresql://editor:s3cr%40t@db/site"
    text = redact_secret_text(f"connection to {url} failed: password s3cr@t or s3cr%40t refused", url)
    assert "s3cr" not in text and text.startswith("connection to postgresql://editor:***@db/site failed")


def test_the_setting_accepts_postgresql_urls_and_says_what_it_expects() -> None:
    assert parse_database_url(" postgres://u:p@h:5432/d ") == "postgres://u:p@h:5432/d"
    with pytest.raises(ValueError, match=r"port number in postgresql://u:\*\*\*@h:x/d"):
        parse_database_url("postgresql://u:secret@h:x/d")
    with pytest.raises(ValueError, match="expected sqlite:///PATH"):
        parse_database_url("mysql://u@h/d")
    assert (dialect(None), dialect("sqlite:///x.db"), dialect("postgres://h/d")) == ("sqlite", "sqlite", "postgresql")


def test_config_check_shows_the_url_without_its_password(cli: Callable[..., Result]) -> None:
    result = cli("config", "check", env={"PUBLISHER_DATABASE_URL": "postgresql://editor:hunter2@db.example.org/site",
                                          "COLUMNS": "300"})
    assert "hunter2" not in result.output
    assert "postgresql://editor:***@db.example.org/site" in result.output


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:          # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = open_store(f"postgresql://editor:hunter2@127.0.0.1:{port}/site?connect_timeout=2", state_dir=tmp_path)
    with pytest.raises(StorageError) as raised:
        store.ledger.get(DeliveryKey("a", "en", "x", "t"))
    message = str(raised.value)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith(f"postgresql://editor:***@127.0.0.1:{port}/site?connect_timeout=2: PostgreSQL: ")
    store.close()


def test_psycopg_is_not_imported_to_open_a_sqlite_site(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from publisher.store import open_store; "
            f"open_store(None, state_dir=Path({str(tmp_path)!r})).migrate(); print('psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "False"


# --- the harness: the PostgreSQL half fails under CI without a server ----------------------------------------

PROBE = '''
import pytest
pytestmark = pytest.mark.both_databases

def test_probe(backend):
    assert backend in ("sqlite", "postgresql")
'''


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_without_a_server_the_postgresql_half_skips_or_fails_under_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    probe = ROOT / "tests" / f"test_probe_{os.getpid()}_{ci or 'dev'}.py"
    probe.write_text(PROBE, encoding="utf-8")
    try:
        env = {name: value for name, value in os.environ.items()
               if name not in ("PUBLISHER_TEST_POSTGRES_URL", "PUBLISHER_TEST_POSTGRES_PROBLEM")}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
             str(probe)], capture_output=True, text=True, cwd=ROOT, env={**env, "CI": ci}, timeout=300)
    finally:
        probe.unlink()
    assert f"1 passed, {outcome}" in result.stdout or f"{outcome}, 1 passed" in result.stdout, result.stdout
    assert "PUBLISHER_TEST_POSTGRES_URL" in result.stdout
    if ci:
        assert "CI must run the PostgreSQL half" in result.stdout and result.returncode == 1


# --- against the server ------------------------------------------------------------------------------------


def test_a_wrong_password_is_one_line_without_it(tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(server_url())
    wrong = parts._replace(netloc=f"{parts.username}:not-the-password-42@{parts.hostname}:{parts.port}").geturl()
    with pytest.raises(StorageError) as raised:
        open_store(wrong, state_dir=tmp_path).migrate()
    assert "not-the-password-42" not in str(raised.value) and "password authentication failed" in str(raised.value)


def test_migrations_apply_once_even_when_several_open_a_new_database_together(postgres_url: str,
                                                                              tmp_path: Path) -> None:
    import psycopg

    from publisher.store.postgres import migrations

    errors: list[BaseException] = []
    applied: list[list[str]] = []

    def open_and_close() -> None:
        try:
            store = open_store(postgres_url, state_dir=tmp_path)
            applied.append(store.migrate())
            store.close()
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    every = [name for _, name, _ in migrations()]
    assert sorted(name for names in applied for name in names) == sorted(every)   # each once, by someone
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert [row[1] for row in rows] == every
    assert all(row[2].endswith("+00:00") for row in rows)


def test_the_same_names_lock_apart_in_two_schemas(tmp_path: Path, postgres_url: str) -> None:
    from tests.databases import create_schema, drop_schema

    schema, other_url = create_schema()
    try:
        first = open_store(postgres_url, state_dir=tmp_path / "a")
        second = open_store(other_url, state_dir=tmp_path / "b")
        with first.lock("feeds", wait=False), second.lock("feeds", wait=False):
            pass   # two sites, one database: their locks never meet
        first.close()
        second.close()
    finally:
        drop_schema(schema)


def test_a_dropped_connection_is_replaced_between_statements(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    store = open_store(postgres_url, state_dir=tmp_path)
    key = DeliveryKey("a", "en", "x", "t")
    store.ledger.mark(key, "sent")
    pid = store.connection.info.backend_pid  # type: ignore[attr-defined]
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # The statement that meets the dropped connection runs again on a new one (tests/store/test_reconnect.py).
    assert store.ledger.get(key).state == "sent"
    assert store.connection.info.backend_pid != pid  # type: ignore[attr-defined]
    store.close()


def test_a_transaction_is_invisible_to_another_store_until_committed(postgres_url: str, tmp_path: Path) -> None:
    first, second = open_store(postgres_url, state_dir=tmp_path), open_store(postgres_url, state_dir=tmp_path)
    key = DeliveryKey("a", "en", "x", "t")
    with first.transaction():
        first.ledger.mark(key, "sent")
        assert second.ledger.get(key) is None
    assert second.ledger.get(key).state == "sent"
    first.close()
    second.close()


def test_an_unknown_scheme_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PUBLISHER_DATABASE_URL"):
        open_store("mysql://h/d", state_dir=tmp_path)


def test_the_site_reads_the_url_from_the_environment(site_dir: Path, postgres_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", postgres_url)
    site = Site(site_dir)
    assert type(site.store()).__name__ == "PostgresStore"
    assert not (site.state_dir / "publisher.db").exists()
    site.close()
