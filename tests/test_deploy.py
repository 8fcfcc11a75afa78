"""The deployment files under deploy/: each command they run is a command and options this publisher has, and
what the Containerfile copies exists."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.cli import cli

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def unit_values(name: str, key: str) -> list[str]:
    return [line.split("=", 1)[1].strip() for line in (DEPLOY / name).read_text(encoding="utf-8").splitlines()
            if line.startswith(f"{key}=")]


def accepted(args: list[str]) -> None:
    """The arguments parse: ``--help`` after them exits 0 only if every option before it exists."""
    result = CliRunner().invoke(cli, [*args, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("unit, expected", [("publisher.service", ["serve", "--worker"]),
                                            ("publisher-worker.service", ["worker", "--once"])])
def test_each_unit_runs_a_real_command(unit: str, expected: list[str]) -> None:
    [command] = unit_values(unit, "ExecStart")
    args = shlex.split(command)
    assert args[0].endswith("/publisher") and args[1:3] == expected
    accepted(args[1:])
    assert unit_values(unit, "Environment")[0].startswith("PUBLISHER_SITE_DIR=")


def test_the_timer_starts_the_once_service_every_minute() -> None:
    assert unit_values("publisher-worker.timer", "OnCalendar") == ["*-*-* *:*:00"]
    assert unit_values("publisher-worker.timer", "Persistent") == ["true"]


def test_the_containerfile_copies_what_exists_and_runs_serve_with_the_worker() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    root = DEPLOY.parent
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        *sources, _ = line.split()
        assert all((root / source).exists() for source in sources), line
    [cmd] = re.findall(r"^CMD (.+)$", text, flags=re.M)
    args = json.loads(cmd)
    assert args[:3] == ["publisher", "serve", "--worker"] and 'VOLUME ["/site"]' in text
    accepted(args[1:])


def test_the_readme_says_how_to_run_the_service_in_three_lines() -> None:
    readme = (DEPLOY.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run it as a service", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 3
