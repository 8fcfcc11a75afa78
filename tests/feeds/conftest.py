"""Feeds test helpers on top of the shared ``site`` and ``cli`` fixtures: writing articles, changing settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.site import Site


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
def write_article(site: Site) -> Callable[..., Path]:
    """Write content/<slug>.<lang>.md from front-matter keys and a Markdown body."""

    def write(slug: str, lang: str, body: str = "Body text.\n", **front: Any) -> Path:
        path = site.content_dir / f"{slug}.{lang}.md"
        meta = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
        path.write_text(f"---\n{meta}---\n\n{body}", encoding="utf-8")
        return path

    return write
