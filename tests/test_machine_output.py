"""Machine output: every --json is JSON Lines, timestamps have one format, and a closed pipe ends quietly."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result

from publisher.cli import EXIT_OUTPUT_CLOSED
from publisher.site import Site
from publisher.timefmt import iso, iso_text, parse_iso

ROOT = Path(__file__).resolve().parent.parent
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def test_one_timestamp_format() -> None:
    seoul = timezone(timedelta(hours=9))
    assert iso(datetime(2024, 6, 28, 9, 0, 0, 123456, tzinfo=seoul)) == "2024-06-28T09:00:00+09:00"
    assert iso(datetime(2024, 6, 28, 0, 0, tzinfo=timezone.utc)) == "2024-06-28T00:00:00+00:00"
    with pytest.raises(ValueError, match="no time zone"):
        iso(datetime(2024, 6, 28))
    # what the storage layer keeps: SQLite's strftime(...Z) and Python's isoformat
    assert iso_text("2024-06-28T09:00:00.123Z") == "2024-06-28T09:00:00+00:00"
    assert iso_text("2024-06-28T09:00:00+00:00") == "2024-06-28T09:00:00+00:00"
    assert iso_text(None) is None
    assert parse_iso("2024-06-28 09:00:00").tzinfo is timezone.utc


def test_every_json_option_prints_json_lines_with_one_timestamp_format(cli: Callable[..., Result]) -> None:
    assert cli("subscribers", "add", "jane@example.org", "--name", "Jane").exit_code == 0
    publish = cli("publish", "--channel", "feeds", "--json")
    assert publish.exit_code == 0, publish.output
    reports = [json.loads(line) for line in publish.stdout.splitlines()]   # the report, nothing else
    assert reports and all(set(r) == {"article", "lang", "channel", "where", "state", "note", "done_before"}
                           for r in reports)
    assert {r["note"] for r in reports if r["channel"] == "feeds"} == {"added"}
    outputs = {"status": cli("status", "--json"), "subscribers": cli("subscribers", "list", "--json")}
    for name, result in outputs.items():
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines, f"{name} --json printed nothing"
        records = [json.loads(line) for line in lines]     # each line is one whole JSON object
        assert all(isinstance(record, dict) for record in records), name
        stamps = [value for record in records for key, value in record.items()
                  if key.endswith("_at") and value is not None]
        assert stamps and all(ISO.match(stamp) for stamp in stamps), (name, stamps)
    assert json.loads(outputs["subscribers"].stdout.splitlines()[0])["email"] == "jane@example.org"


def console_script() -> str:
    """The installed ``publisher`` script (pip install -e .), next to this Python."""
    found = shutil.which("publisher", path=str(Path(sys.executable).parent))
    assert found, f"the publisher console script is not installed next to {sys.executable}"
    return found


def run_into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the console script with its standard output a pipe nobody reads any more, as `| head -1` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    # this tree's package first, whichever checkout the script was installed from
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        return subprocess.run([console_script(), *args], stdout=write_end, stderr=subprocess.PIPE, env=env,
                              timeout=120, check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [("subscribers", "list", "--json"), ("feeds", "list")])
def test_a_closed_pipe_ends_quietly(site: Site, site_dir: Path, args: tuple[str, ...]) -> None:
    subscribers = site.subscribers()
    # more than a pipe buffer of JSON: that write fails inside the command; the feeds list, small, at the flush
    for number in range(400):
        subscribers.add(f"reader{number}@example.org", name=f"Reader {number}", lang="en", status="active")
    finished = run_into_a_closed_pipe("--site", str(site_dir), *args)
    assert finished.stderr.decode() == ""
    assert finished.returncode == EXIT_OUTPUT_CLOSED
