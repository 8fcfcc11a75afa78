"""A site: the folder that holds content, outputs, state and settings, like a Pelican or Hugo project."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.config import Config
from publisher.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    import jinja2

    from publisher.article import Catalog, ContentListing, Library
    from publisher.i18n import UIStrings
    from publisher.store import FeedCache, Ledger, Store
    from publisher.subscribers import Subscribers


# "javascript:", "data:", "file:", "C:" ...: a scheme is letters, digits, "+", "-", "." before the first colon
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _is_remote(src: str) -> bool:
    return src.lower().startswith(("http://", "https://"))


def _is_image_name(name: str) -> bool:
    import mimetypes

    return (mimetypes.guess_type(name)[0] or "").startswith("image/")


class Site:
    """Paths and services of one site folder.

    ``content/`` articles (``<slug>.<lang>.md``), ``public/`` web output and feeds, ``outbox/`` local
    deliveries, ``.publisher/`` state (the SQLite database, locks and caches), ``templates/`` and ``locales/``
    overrides, ``publisher.toml`` (settings that are not secret) and ``.env`` (secrets).
    """

    def __init__(self, root: Path | str, config: Config | None = None) -> None:
        self.root = Path(root).resolve()
        self._config = config
        self._store: Store | None = None
        self._content_view: list[Library] | None = None   # inside one_content_view(): the library, once read
        self._content_listing: ContentListing | None = None   # inside one_content_view(): the files, once listed
        self._catalog: Catalog | None = None   # inside one_content_view(): the files, listed from the index
        self._freezing = False   # inside one_content_view(): what lives until the run ends is frozen (gc)

    @classmethod
    def discover(cls, path: Path | str | None = None) -> Site:
        """``--site DIR``, else ``$PUBLISHER_SITE_DIR``, else the working directory."""
        chosen = path or os.environ.get("PUBLISHER_SITE_DIR") or os.getcwd()
        root = Path(chosen)
        if not root.is_dir():
            raise NotFound(f"{root}: site folder not found (set --site or PUBLISHER_SITE_DIR)")
        return cls(root)

    # --- folders --------------------------------------------------------------------------------------
    @property
    def content_dir(self) -> Path:
        return self.root / "content"

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def state_dir(self) -> Path:
        return self.root / ".publisher"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def locales_dir(self) -> Path:
        return self.root / "locales"

    # --- settings -------------------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config.load(self.root)
        return self._config

    @property
    def url(self) -> str:
        return str(self.config.get("PUBLISHER_SITE_URL"))

    @cached_property
    def languages(self) -> tuple[str, ...]:
        """``PUBLISHER_LANGUAGES``; a language without UI strings is a ConfigError, not English text under its name."""
        from publisher.i18n import catalog_languages

        languages = tuple(self.config.get("PUBLISHER_LANGUAGES"))
        missing = [lang for lang in languages if lang not in catalog_languages(self)]
        if missing:
            raise ConfigError("PUBLISHER_LANGUAGES", f"{', '.join(missing)}: no UI strings in publisher or in "
                              f"{self.locales_dir}; add {self.locales_dir}/{missing[0]}/LC_MESSAGES/*.po "
                              f"(translated from publisher's en catalogs) or remove {missing[0]!r}",
                              self.config.source("PUBLISHER_LANGUAGES"))
        return languages

    @property
    def known_languages(self) -> tuple[str, ...]:
        """The site's languages, then any other with UI strings: a content file in one of those is read (as
        before a site chose fewer languages), but only the site's languages are published."""
        from publisher.i18n import catalog_languages

        return self.languages + tuple(lang for lang in catalog_languages(self) if lang not in self.languages)

    @property
    def timezone(self) -> ZoneInfo:
        zone: ZoneInfo = self.config.get("PUBLISHER_TIMEZONE")
        return zone

    def url_for(self, lang: str, slug: str) -> str:
        return f"{self.url}/{lang}/{slug}/"

    def media_path(self, src: str, *, near: Path | None = None) -> Path | None:
        """The local file behind an image ``src``, the one rule every channel uses: looked up next to the article
        (``near``), under ``content/``, the site folder, then ``public/``. None for a remote (``http(s)``) URL or a
        missing file.

        ``ValueError`` for anything no channel may read, let alone copy to ``public/`` or upload: another scheme
        (``file:``, ``data:``), a path that leaves the site (``..``, or a symlink whose target is outside the site
        folder, its ``content/`` or its ``public/``), a hidden file or folder (``.env``, ``.publisher/``), the
        state and outbox folders, and a file that is not an image.
        """
        from pathlib import PurePosixPath

        from publisher.markup import web_url_problem

        text = src.strip()
        if _is_remote(text):
            problem = web_url_problem(text)
            if problem:
                raise ValueError(f"{problem}: {src}")
            return None
        if (text.startswith("//") or "\\" in text or _SCHEME.match(text)
                or any(ord(c) < 32 or c == "\x7f" for c in text)):
            raise ValueError(f"expected a path inside the site folder or an http(s) URL: {src}")
        relative = text.lstrip("/")
        parts = PurePosixPath(relative).parts
        if ".." in parts:
            raise ValueError(f"must stay inside the site folder: {src}")
        if any(part.startswith(".") for part in parts):
            raise ValueError(f"a hidden file or folder is never published: {src}")
        if not _is_image_name(relative):
            raise ValueError(f"not an image file (expected a name such as photo.png or photo.jpg): {src}")
        folders = [near] if near is not None else []
        for folder in (*folders, self.content_dir, self.root, self.public_dir):
            candidate = folder / relative
            if candidate.is_file():
                self._check_media_target(candidate, src)
                return candidate
        return None

    def _check_media_target(self, candidate: Path, src: str) -> None:
        """Refuse a file whose real location (symlinks followed) is not one a site may publish."""
        target = candidate.resolve()
        roots = (self.root, self.content_dir.resolve(), self.public_dir.resolve())
        inside = next((root for root in roots if target.is_relative_to(root)), None)
        if inside is None:
            raise ValueError(f"must stay inside the site folder (the file, or the file it links to, is outside): "
                             f"{src}")
        private = (self.state_dir.resolve(), self.outbox_dir.resolve())
        if any(target.is_relative_to(folder) for folder in private) or any(
                part.startswith(".") for part in target.relative_to(inside).parts):
            raise ValueError(f"a hidden or private file (settings, state, outbox) is never published: {src}")
        if not _is_image_name(target.name):
            raise ValueError(f"not an image file (it is a link to {target.name}): {src}")

    def media_url(self, src: str) -> str:
        """Public URL of an image: remote ``http(s)`` URLs as they are, a local file at ``{URL}/<src>`` (the feeds
        build copies it to ``public/<src>``); ``ValueError`` for any other scheme or a protocol-relative URL."""
        text = src.strip()
        if _is_remote(text):
            from publisher.markup import web_url_problem

            problem = web_url_problem(text)
            if problem:
                raise ValueError(f"{problem}: {src}")
            return text
        if text.startswith("//") or "\\" in text or _SCHEME.match(text):
            raise ValueError(f"expected a path inside the site folder or an http(s) URL: {src}")
        return f"{self.url}/{text.lstrip('/')}"

    def title(self, lang: str) -> str:
        return str(self.config.get(f"SITE_TITLE_{lang.upper()}") or self.config.get("SITE_TITLE_EN"))

    def description(self, lang: str) -> str:
        return str(self.config.get(f"SITE_DESCRIPTION_{lang.upper()}") or "")

    @property
    def secret_key(self) -> str:
        """``PUBLISHER_SECRET_KEY``, else a random key generated once and kept in ``.publisher/secret_key``."""
        key = self.config.get("PUBLISHER_SECRET_KEY")
        if key:
            return str(key)
        path = self.state_dir / "secret_key"
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
        from publisher.fsutil import atomic_write_text

        key = secrets.token_urlsafe(48)
        atomic_write_text(path, key + "\n", mode=0o600)
        return key

    # --- services -------------------------------------------------------------------------------------
    def store(self) -> Store:
        """The site's storage (ledger, subscribers, translation memory, web state, locks): one per Site, opened
        on first use, for this thread."""
        if self._store is None:
            self._store = self._open_store(shared=False)
        return self._store

    def open_shared_database(self) -> Store:
        """Open this Site's store for a thread pool (the web server): any thread may use it, one at a time.

        Call it before anything else opens the store; the caller serializes access (``publisher.web`` holds
        a lock), and every later ``store()``, ``ledger()`` or ``subscribers()`` returns this store.
        """
        if self._store is None:
            self._store = self._open_store(shared=True)
        return self._store

    def _open_store(self, *, shared: bool) -> Store:
        from publisher.store import open_store

        url = self.config.get("PUBLISHER_DATABASE_URL")
        return open_store(str(url) if url else None, state_dir=self.state_dir, shared=shared,
                          reconnect=float(self.config.get("PUBLISHER_DATABASE_RECONNECT_SECONDS")))

    def ledger(self) -> Ledger:
        return self.store().ledger

    def subscribers(self) -> Subscribers:
        """The bulletin subscriber list, in the languages the site declares."""
        from publisher.subscribers import Subscribers

        return Subscribers(self.store().subscribers, self.languages)

    def feed_cache(self) -> FeedCache:
        """The rendered-bodies cache of the feeds (a new handle: close it when done)."""
        return self.store().feed_cache()

    def lock(self, name: str, *, wait: bool) -> AbstractContextManager[None]:
        """Hold the lock ``name`` across processes (``LockBusy`` if ``wait`` is false and it is held)."""
        return self.store().lock(name, wait=wait)

    def articles(self) -> Library:
        """Every article of ``content/`` (from the content index where the files are unchanged); inside
        ``one_content_view()`` the library the first call read, from the files ``content_signature`` listed."""
        from publisher.article import load_library

        if self._content_view is not None:
            if not self._content_view:
                if self._catalog is not None:   # listed already: the same files, made whole
                    self._content_view.append(self._catalog.library())
                else:
                    self.content_signature()
                    self._content_view.append(load_library(self, self._content_listing))
            return self._content_view[0]
        return load_library(self)

    def catalog(self) -> Catalog:
        """Every content file listed, unchanged ones from the content index without their bodies
        (``publisher.article.Catalog``): what a publish reads of the other articles. Inside
        ``one_content_view()``, one per run (of the library when ``articles()`` was read first)."""
        from publisher.article import catalog_of, load_catalog

        if self._content_view is None:
            return load_catalog(self)
        if self._catalog is None:
            if self._content_view:
                self._catalog = catalog_of(self, self._content_view[0])
            else:
                with self.kept_for_the_run():
                    self.content_signature()
                    self._catalog = load_catalog(self, self._content_listing)
        return self._catalog

    @contextmanager
    def kept_for_the_run(self) -> Iterator[None]:
        """What the block makes lives until the run ends (the listing, the catalog's 20,000 entries): the
        garbage collector is kept from walking it, over and over, while the run goes on. Collections wait
        during the block; then what it left is frozen (``gc.freeze``: never walked) until the run's
        ``one_content_view`` ends and unfreezes it. Only a run that found nothing frozen does so (a process
        that freezes for its own reasons keeps them); nothing is kept out of memory: refcounts still free
        what the run drops, and a cycle among what was frozen is collected after the run."""
        import gc

        if not self._freezing:
            yield
            return
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            gc.freeze()
            if enabled:
                gc.enable()

    def content_signature(self) -> str:
        """The signature ``articles()`` would give (of the files' paths, sizes and modification times; "" when
        it cannot tell), from a listing of ``content/`` alone: no file is read. Inside ``one_content_view()``
        the listing is kept, and ``articles()`` loads those very files."""
        from publisher.article import list_content

        if self._content_view is None:
            return list_content(self).signature
        if self._content_listing is None:
            self._content_listing = list_content(self)
        return self._content_listing.signature

    @contextmanager
    def one_content_view(self) -> Iterator[None]:
        """Within this block every ``articles()`` returns the library read by the first: one run (a publish, a
        build) sees one set of files, read once, even when several of its steps ask for it."""
        import gc

        if self._content_view is not None:    # nested: the outer block's view
            yield
            return
        self._content_view = []
        self._freezing = gc.get_freeze_count() == 0   # see kept_for_the_run
        try:
            yield
        finally:
            self._content_view = None
            self._content_listing = None
            self._catalog = None
            if self._freezing:
                self._freezing = False
                gc.unfreeze()

    @cached_property
    def ui(self) -> UIStrings:
        from publisher.i18n import UIStrings

        return UIStrings(self)

    @cached_property
    def templates(self) -> jinja2.Environment:
        from publisher.templating import make_environment

        return make_environment(self)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
