"""Fixtures for the feeds tests: a copy of the UNPOG sample site, article writing, the CLI bound to the site."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from publisher.site import Site

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "unpog"


@pytest.fixture
def feeds_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """A fresh copy of examples/unpog, with no setting leaking in from the developer's environment."""
    for name in list(os.environ):
        if name.startswith(("PUBLISHER_", "SITE_", "FEED_")):
            monkeypatch.delenv(name)
    root = tmp_path / "site"
    shutil.copytree(EXAMPLE_SITE, root, ignore=shutil.ignore_patterns("public", ".publisher", "outbox"))
    return Site(root)


def set_settings(site: Site, **values: str) -> Site:
    """Set values in the site's publisher.toml (replacing earlier ones) and return a Site that reads them."""
    path = site.root / "publisher.toml"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line.split("=", 1)[0].strip() not in values]
    lines += [f'{name} = "{value}"' for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    site.close()
    return Site(site.root)


@pytest.fixture
def write_article(feeds_site: Site) -> Callable[..., Path]:
    """Write content/<slug>.<lang>.md from front-matter keys and a Markdown body."""

    def write(slug: str, lang: str, body: str = "Body text.\n", site: Site | None = None, **front: Any) -> Path:
        target = site or feeds_site
        path = target.content_dir / f"{slug}.{lang}.md"
        meta = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
        path.write_text(f"---\n{meta}---\n\n{body}", encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Run ``publisher --site <root> ...`` in-process, as a user would."""
    from publisher.cli import cli

    def run(site: Site, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--site", str(site.root), *args], catch_exceptions=False)

    return run
