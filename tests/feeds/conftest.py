"""Feeds test helpers on top of the shared ``site`` and ``cli`` fixtures: writing articles, changing settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.site import Site
from tests.conftest import set_settings  # noqa: F401 - re-exported for this folder's tests


@pytest.fixture
def write_article(site: Site) -> Callable[..., Path]:
    """Write content/<slug>.<lang>.md from front-matter keys and a Markdown body."""

    def write(slug: str, lang: str, body: str = "Body text.\n", **front: Any) -> Path:
        path = site.content_dir / f"{slug}.{lang}.md"
        meta = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
        path.write_text(f"---\n{meta}---\n\n{body}", encoding="utf-8")
        return path

    return write
