"""Both databases in the tests: a test marked ``both_databases`` runs once on SQLite and once on PostgreSQL.

The PostgreSQL half needs a server: ``PUBLISHER_TEST_POSTGRES_URL`` (``bash .ci/postgres.sh COMMAND`` starts a
throwaway one and sets it; ``.ci/run`` does). Each PostgreSQL test gets a fresh schema of that database,
chosen with ``search_path`` in the URL it puts in ``PUBLISHER_DATABASE_URL`` (so the site, and any process the
test starts, use it), and dropped afterwards. Without a server the PostgreSQL half is skipped with the reason;
with ``CI`` set it fails instead, so CI can never pass without having run it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

BACKENDS = ("sqlite", "postgresql")
SERVER_VARIABLE = "PUBLISHER_TEST_POSTGRES_URL"
# Read once, at import: the conftest's clean environment removes every PUBLISHER_ variable before each test.
_SERVER_URL = os.environ.get(SERVER_VARIABLE) or None
# Why .ci/postgres.sh could not start one, when it could not.
_SERVER_PROBLEM = os.environ.get("PUBLISHER_TEST_POSTGRES_PROBLEM") or None
# Where .ci/postgres.sh's server lives, for the tests that restart it (pg_ctl).
_SERVER_CONTROL = {name: os.environ.get(f"PUBLISHER_TEST_POSTGRES_{name}", "")
                   for name in ("DATA", "PG_CTL", "LOG", "OPTIONS", "AS_OWNER")}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def server_url() -> str:
    """The test server's URL, or skip (fail under CI) saying why there is none."""
    url = _SERVER_URL
    reason = None
    if not url and _SERVER_PROBLEM:
        reason = f"PostgreSQL tests need a server, and .ci/postgres.sh could not start one: {_SERVER_PROBLEM}"
    elif not url:
        reason = (f"PostgreSQL tests need a server: set {SERVER_VARIABLE}, or run the tests under "
                  "`bash .ci/postgres.sh` (needs Debian's postgresql: initdb and pg_ctl)")
    else:
        problem = _server_problem(url)
        if problem:
            reason = f"PostgreSQL at {SERVER_VARIABLE} cannot be reached: {problem}"
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the PostgreSQL half: {reason}", pytrace=False)
        pytest.skip(reason)
    assert url is not None
    return url


def pg_ctl(*args: str) -> None:
    """Run pg_ctl on the test server of .ci/postgres.sh (``pg_ctl("-m", "fast", "restart")``); skip (fail under
    CI) outside it, since only it says where the server lives."""
    import shlex
    import subprocess

    server_url()
    data, path, log = _SERVER_CONTROL["DATA"], _SERVER_CONTROL["PG_CTL"], _SERVER_CONTROL["LOG"]
    if not (data and path and log):
        reason = ("restarting PostgreSQL needs the server of .ci/postgres.sh (PUBLISHER_TEST_POSTGRES_DATA, "
                  "PUBLISHER_TEST_POSTGRES_PG_CTL, PUBLISHER_TEST_POSTGRES_LOG)")
        if in_ci():
            pytest.fail(f"CI must run the PostgreSQL half: {reason}", pytrace=False)
        pytest.skip(reason)
    owner = shlex.split(_SERVER_CONTROL["AS_OWNER"])
    subprocess.run([*owner, path, "-D", data, "-l", log, "-w", "-t", "60", *args], check=True,
                   stdout=subprocess.DEVNULL, timeout=90)


def restart_server(mode: str = "fast") -> None:
    """Restart the test server (``pg_ctl restart -m MODE``): every connection to it is dropped."""
    pg_ctl("-m", mode, "restart")


@contextmanager
def server_stopped(mode: str = "fast") -> Iterator[None]:
    """The test server stopped for the block, started again after it whatever happens."""
    pg_ctl("-m", mode, "stop")
    try:
        yield
    finally:
        pg_ctl("-o", _SERVER_CONTROL["OPTIONS"], "start")   # the port and options .ci/postgres.sh gave it


_checked: dict[str, str | None] = {}


def _server_problem(url: str) -> str | None:
    if url not in _checked:
        try:
            import psycopg

            with psycopg.connect(url, connect_timeout=5):
                _checked[url] = None
        except Exception as exc:   # noqa: BLE001 - any reason is the reason to report
            from publisher.settings import redact_secret_text

            _checked[url] = redact_secret_text(" ".join(str(exc).split()), url)
    return _checked[url]


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (``options=-csearch_path=...``)."""
    option = quote(f"-csearch_path={schema}", safe="")
    return url + ("&" if "?" in url else "?") + f"options={option}"


def create_schema() -> tuple[str, str]:
    """A new empty schema on the test server: (its name, a URL that uses it)."""
    import psycopg

    url = server_url()
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, with_schema(url, schema)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty schema on the test server (dropped after the test)."""
    schema, url = create_schema()
    try:
        yield url
    finally:
        drop_schema(schema)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, clean_environment: None) -> Iterator[str]:
    """``sqlite`` or ``postgresql``: the database this test's site uses (``PUBLISHER_DATABASE_URL``).

    Parametrized by ``pytest_generate_tests`` for tests marked ``both_databases``; every other test is on
    SQLite, as before.
    """
    name = getattr(request, "param", "sqlite")
    if name != "postgresql":
        yield name
        return
    schema, url = create_schema()
    # A patch of its own: a test's ``monkeypatch.undo()`` must not move its site back to SQLite halfway.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBLISHER_DATABASE_URL", url)
        try:
            yield name
        finally:
            drop_schema(schema)


def generate_backends(metafunc: pytest.Metafunc) -> None:
    """Run a test marked ``both_databases`` (and not ``sqlite_only``) once per backend."""
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("both_databases") is None:
        return
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        return
    metafunc.parametrize("backend", BACKENDS, indirect=True)


def database_url() -> str | None:
    """The database URL the current test's site uses (None: the site's SQLite file)."""
    return os.environ.get("PUBLISHER_DATABASE_URL") or None


def open_test_store(state_dir: Path, **options: Any) -> Any:
    """``open_store`` on the current test's database (SQLite in ``state_dir`` or the test's PostgreSQL schema)."""
    from publisher.store import open_store

    return open_store(database_url(), state_dir=state_dir, **options)


def integrity_error(store: object) -> type[Exception]:
    """The driver's exception for a broken constraint, for the store's database."""
    if type(store).__name__ == "PostgresStore":
        import psycopg

        return psycopg.IntegrityError
    import sqlite3

    return sqlite3.IntegrityError


def execute(store: object, sql: str, params: Any = ()) -> Any:
    """Run raw SQL written with ``?`` placeholders on the store's own connection, either database (a test's
    look at, or bulk fill of, a table; the store's code never does this)."""
    conn: Any = getattr(store, "connection")
    if type(store).__name__ == "PostgresStore":
        return conn.execute(sql.replace("?", "%s"), params or None)
    return conn.execute(sql, params)


def fresh_site(root: Path) -> Any:
    """A Site at ``root`` with an empty database of its own: on PostgreSQL a SQLite file in its folder would
    not be the same backend, so it gets a new schema, dropped at the end of the session's test run."""
    from publisher.config import Config
    from publisher.site import Site

    url = database_url()
    if url is None:
        return Site(root)
    schema, own = create_schema()
    _fresh_schemas.append(schema)
    return Site(root, Config.from_mapping({"PUBLISHER_DATABASE_URL": own}))


_fresh_schemas: list[str] = []


@pytest.fixture(autouse=True, scope="session")
def _drop_fresh_schemas() -> Iterator[None]:
    yield
    for schema in _fresh_schemas:
        drop_schema(schema)
