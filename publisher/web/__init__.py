"""``publisher serve``: the subscription pages, the public/ folder with its feeds, and the editor's review page."""

from __future__ import annotations

from publisher.web.app import create_app

__all__ = ["create_app"]
