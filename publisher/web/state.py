"""What the web app shares between requests: the site, one store connection, and how far the server is open."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from starlette.requests import Request

    from publisher.site import Site
    from publisher.store import Store

T = TypeVar("T")


class WebState:
    """The site behind the app, and the one store its request threads take turns on.

    Requests run on a thread pool and a SQLite connection belongs to one thread at a time, so every use of
    storage, including a channel's own ``site.ledger()`` while it renders, happens inside ``with_database``,
    which holds a lock. SQLite serializes writers anyway; the lock makes the turns explicit.
    """

    def __init__(self, site: Site, *, review_local_only: bool = True) -> None:
        from publisher.site import Site

        # A Site of our own: the caller's may already hold a connection bound to its thread.
        self.site = Site(site.root, site.config)
        self.review_local_only = review_local_only
        self.publishing = threading.Lock()   # held while the review page publishes an article
        self._lock = threading.Lock()
        # Made once now if it does not exist yet: two first requests at once would each make their own.
        self.site.secret_key  # noqa: B018

    def with_database(self, work: Callable[[Store], T]) -> T:
        """Run ``work`` with the site's store, alone (``site.ledger()``/``site.subscribers()`` inside it are the
        same store)."""
        with self._lock:
            return work(self.site.open_shared_database())

    def close(self) -> None:
        with self._lock:
            self.site.close()


def web_state(request: Request) -> WebState:
    return request.app.state.web  # type: ignore[no-any-return]
