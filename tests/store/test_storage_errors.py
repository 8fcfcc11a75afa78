"""Disk and file problems of the database are one line naming the file and the cause, exit 2 (issue 11 item 10).

Each fault is real: a file and folder SQLite may not write, a file that is not a database, a database SQLite
finds full (``PRAGMA max_page_count``, which gives SQLITE_FULL as a full disk does). Nothing is mocked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import Result

from publisher.errors import StorageError
from publisher.store.sqlite import SqliteStore

READ_ONLY = ("the database is read-only; check the permissions of the file and of its folder (SQLite writes a "
             "-wal and a -shm file beside it) (attempt to write a readonly database)")
NOT_A_DATABASE = "not a SQLite database; check PUBLISHER_DATABASE_URL, or move the file away (file is not a database)"
FULL = ("the disk is full, or the database has reached its size limit; free some space and run again "
        "(database or disk is full)")


# --- a real read-only file, also for root --------------------------------------------------------------------

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@contextmanager
def permissions_apply() -> Iterator[None]:
    """File permissions hold for this thread, even when the tests run as root (as in a container): root ignores
    them through the capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, dropped here from the thread's
    effective set (it keeps them in its permitted set, so they come back at the end)."""
    if os.geteuid() != 0:
        yield
        return
    if not sys.platform.startswith("linux"):
        pytest.skip("running as root on a system without Linux capabilities: permissions cannot apply")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    try:
        yield
    finally:
        data[0].effective = saved
        if libc.capset(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), "capset failed restoring the capabilities")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    """Where the site's database lives (PUBLISHER_DATABASE_URL), in a folder of its own; writable again after."""
    folder = tmp_path / "db"
    folder.mkdir()
    yield folder / "site.db"
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def _env(database: Path) -> dict[str, str]:
    return {"PUBLISHER_DATABASE_URL": f"sqlite:///{database}"}


def _one_line_exit_2(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    # publish shows its progress bar on stderr above the error
    assert [line for line in result.stderr.splitlines() if not line.startswith("email local")] == [
        f"Error: {message}"]
    assert "internal error" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("folder_writable", [False, True])
def test_a_read_only_database_is_one_line_naming_it(database: Path, site_dir: Path, cli: Callable[..., Result],
                                                     folder_writable: bool) -> None:
    csv = str(site_dir / "subscribers.csv")
    assert cli("subscribers", "import", csv, env=_env(database)).exit_code == 0   # creates the database
    (site_dir / "more.csv").write_text("email,name,language\nnew.one@example.org,New One,en\n", encoding="utf-8")
    database.chmod(0o444)
    if not folder_writable:
        database.parent.chmod(0o555)
    with permissions_apply():
        result = cli("subscribers", "import", str(site_dir / "more.csv"), env=_env(database))
    _one_line_exit_2(result, f"{database}: {READ_ONLY}")


def test_a_read_only_database_stops_publish_before_anything_is_sent(
        database: Path, site_dir: Path, cli: Callable[..., Result]) -> None:
    csv = str(site_dir / "subscribers.csv")
    assert cli("subscribers", "import", csv, env=_env(database)).exit_code == 0   # creates the database
    database.chmod(0o444)
    database.parent.chmod(0o555)
    with permissions_apply():
        result = cli("publish", "--channel", "email", env=_env(database))
    _one_line_exit_2(result, f"{database}: {READ_ONLY}")
    assert not (site_dir / "outbox" / "mail").exists() or not any((site_dir / "outbox" / "mail").rglob("*.eml"))


@pytest.mark.parametrize("command", [("status",), ("publish",), ("subscribers", "list")])
def test_a_file_that_is_not_a_database_is_one_line_naming_it(
        command: tuple[str, ...], database: Path, cli: Callable[..., Result]) -> None:
    database.write_text("email,name\nthis is a CSV file saved under the database's name\n" * 50, encoding="utf-8")
    result = cli(*command, env=_env(database))
    _one_line_exit_2(result, f"{database}: {NOT_A_DATABASE}")
    assert database.read_text(encoding="utf-8").startswith("email,name")   # left as it was


def test_the_default_database_that_is_not_a_database_is_named_too(site_dir: Path,
                                                                  cli: Callable[..., Result]) -> None:
    database = site_dir / ".publisher" / "publisher.db"
    database.parent.mkdir()
    database.write_bytes(b"\x00garbage" * 1000)
    _one_line_exit_2(cli("status"), f"{database}: {NOT_A_DATABASE}")


@pytest.fixture
def fill_the_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Once called, every database the store opens is full after its migrations: SQLite may add no page to
    it and answers SQLITE_FULL, as on a full disk (the limit holds for that connection only)."""
    import publisher.store.sqlite as sqlite_store

    opened = sqlite_store.connect

    def connect_full(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = opened(*args, **kwargs)   # type: ignore[arg-type]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    return lambda: monkeypatch.setattr(sqlite_store, "connect", connect_full)


def _many_readers(site_dir: Path, count: int = 3000) -> str:
    path = site_dir / "many.csv"
    rows = "".join(f"reader{n}@example.org,Reader {n},en\n" for n in range(count))
    path.write_text("email,name,language\n" + rows, encoding="utf-8")
    return str(path)


def test_a_full_disk_is_one_line_naming_the_database(database: Path, site_dir: Path,
                                                      fill_the_disk: Callable[[], None],
                                                      cli: Callable[..., Result]) -> None:
    fill_the_disk()
    result = cli("subscribers", "import", _many_readers(site_dir), env=_env(database))
    _one_line_exit_2(result, f"{database}: {FULL}")


def test_a_full_disk_during_publish_is_one_line(database: Path, site_dir: Path, fill_the_disk: Callable[[], None],
                                                cli: Callable[..., Result]) -> None:
    assert cli("subscribers", "import", _many_readers(site_dir), env=_env(database)).exit_code == 0
    fill_the_disk()
    result = cli("publish", "--channel", "email", env=_env(database))
    _one_line_exit_2(result, f"{database}: {FULL}")
    assert not (site_dir / "outbox" / "mail").exists() or not any((site_dir / "outbox" / "mail").rglob("*.eml"))


def test_the_store_raises_storage_error_and_leaves_no_transaction_open(database: Path, tmp_path: Path) -> None:
    store = SqliteStore(database, state_dir=tmp_path / "state")
    conn = store.connection
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(StorageError) as raised:
        with store.subscribers.transaction():
            for n in range(3000):
                store.subscribers.insert(email=f"r{n}@example.org", email_key=f"r{n}@example.org", name=None,
                                         lang="en", status="active", themes=(), confirmed=True)
    assert raised.value.path == database and raised.value.code == sqlite3.SQLITE_FULL
    assert str(raised.value) == f"{database}: {FULL}"
    assert not conn.in_transaction
    assert store.subscribers.count() == 0    # the whole transaction was rolled back
    store.close()


def test_a_constraint_is_not_a_storage_error(database: Path, tmp_path: Path) -> None:
    # Only the disk's and the file's problems are translated: a broken rule still says what it is.
    store = SqliteStore(database, state_dir=tmp_path / "state")
    with pytest.raises(sqlite3.IntegrityError):
        store.connection.execute("INSERT INTO deliveries (article) VALUES (NULL)")
    store.close()


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="needs /dev/full, where every write fails")
@pytest.mark.parametrize("args", [("subscribers", "export"), ("config", "check"), ("--version",)])
def test_output_on_a_full_disk_is_one_line_exit_2(args: tuple[str, ...], site_dir: Path, tmp_path: Path) -> None:
    # /dev/full answers every write with ENOSPC, as a full disk does: a real error, met by click's echo or by
    # the last flush of standard output.
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "HOME": str(tmp_path)}
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "publisher", "--site", str(site_dir), *args], stdout=full,
                              stderr=subprocess.PIPE, env=env, cwd=root, timeout=120, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "Error: cannot write: No space left on device\n"
