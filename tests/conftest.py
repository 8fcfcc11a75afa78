"""Shared fixtures: an empty home folder, a temporary copy of the sample site and a CLI runner bound to it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from publisher.site import Site
from tests.databases import _drop_fresh_schemas, backend, generate_backends, postgres_url  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SITE = ROOT / "examples" / "unpog"
# CI lays ../shared beside the clone; a copy of the UNPOG page in tests/samples keeps the suite whole without it.
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"
if not (SHARED_SAMPLES / "unpog-2024-unpsf-incheon.txt").is_file():
    SHARED_SAMPLES = ROOT / "tests" / "samples"
SETTING_PREFIXES = ("PUBLISHER_", "SMTP_", "BULLETIN_", "DKIM_", "X_", "MASTODON_", "BLUESKY_", "FACEBOOK_", "SOCIAL_",
                    "LINKEDIN_", "SITE_", "FEED_", "ARGOS_", "EMAIL_", "ESP_", "SES_", "AWS_", "POSTMARK_",
                    "MAILGUN_", "DNS_")


# Where libraries look for per-user files (argostranslate's models and caches, babel, matplotlib...).
XDG_FOLDERS = {"XDG_DATA_HOME": ".local/share", "XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache",
               "XDG_STATE_HOME": ".local/state"}


@pytest.fixture(scope="session", autouse=True)
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HOME and the XDG folders are empty temporary folders, as on a fresh machine, for the whole session.

    Session-wide because some libraries read them once, at import (argostranslate fixes its package folder
    then): every test must see the same empty home, whichever test imports them first.
    """
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("USERPROFILE", str(home))   # what Path.home() reads on Windows
        for name, folder in XDG_FOLDERS.items():
            patch.setenv(name, str(home / folder))
        yield home


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_home: Path) -> None:
    """No test sees the developer's own settings, nor models a previous test installed."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    # Not created: a test that installs a model makes it; the others see a folder with nothing installed.
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(tmp_path / "argos-packages"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_databases: run once on SQLite and once on PostgreSQL (tests/databases.py)")
    config.addinivalue_line("markers", "sqlite_only: in a both_databases module, a test of SQLite itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    generate_backends(metafunc)


def set_settings(site: Site, **values: object) -> Site:
    """Set values in the site's publisher.toml (replacing earlier ones) and return a Site that reads them."""
    path = site.root / "publisher.toml"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line.split("=", 1)[0].strip() not in values]
    lines += [f'{name} = "{value}"' for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    site.close()
    return Site(site.root)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A fresh copy of examples/unpog (content and publisher.toml, no outputs)."""
    target = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, target, ignore=shutil.ignore_patterns("public", "outbox", ".publisher", ".env"))
    return target


@pytest.fixture
def site(site_dir: Path) -> Site:
    opened = Site(site_dir)
    yield opened
    opened.close()


@pytest.fixture
def write_article(site: Site) -> Callable[..., Path]:
    """Write content/<slug>.<lang>.md from front-matter keys and a Markdown body."""

    def write(slug: str, lang: str, body: str = "Body text.\n", **front: Any) -> Path:
        path = site.content_dir / f"{slug}.{lang}.md"
        meta = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
        path.write_text(f"---\n{meta}---\n\n{body}", encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli(site_dir: Path) -> Callable[..., Result]:
    """Run ``publisher --site <copy> ARGS...`` in-process."""
    from publisher.cli import cli as root

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(root, ["--site", str(site_dir), *args], env=env, input=input, catch_exceptions=False)

    return run
