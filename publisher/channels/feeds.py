"""The feeds channel: publishing an article rebuilds the feeds, index page and article pages it appears in.

Feeds are local by nature: the files under ``public/`` are the delivery, so there is no remote adapter and
no fallback. The ledger keeps one row per (article, language, "feeds", feed path); the row's detail holds the
entry id handed out at first publication, so an edited or re-published article keeps its id and feed
readers never show it twice. Rebuilding a feed is idempotent, so publishing again simply refreshes it
(``--force`` changes nothing here). A row left ``in_flight`` by a crash is safe to publish again, with the
same entry id; builds in between leave that version out, and no reader ever sees half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, ClassVar

from publisher.channels.base import Channel, DeliveryReport, PublishContext, Rendition
from publisher.errors import PublisherError

if TYPE_CHECKING:
    from publisher.article import Article, Library, Story
    from publisher.config import Config
    from publisher.formatters.feeds import OutputFile, SiteFeeds
    from publisher.delivery import DeliveryKey
    from publisher.ledger import Ledger
    from publisher.site import Site

CHANNEL = "feeds"
MANIFEST = "feeds-files.json"   # in .publisher/: every file under public/ that a feeds build wrote


@dataclass
class BuildResult:
    """What a build did: files written because their bytes changed, files left alone, stale files removed."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return self.written + self.unchanged


def write_outputs(site: Site, files: Iterable[OutputFile], *, full_build: bool = False) -> BuildResult:
    """Write each file atomically under ``public/``, skipping those whose bytes did not change.

    Every path written is remembered in ``.publisher/feeds-files.json``. After a full build, files that an
    earlier build wrote and this one did not (the page of a deleted article, the feed of a theme no article
    has any more) are removed; nothing else under ``public/`` is ever touched.
    """
    from publisher.fsutil import atomic_write_text, write_if_changed

    result = BuildResult()
    for output in files:
        changed = write_if_changed(site.public_dir / output.path, output.content)
        (result.written if changed else result.unchanged).append(output.path)
    manifest = site.state_dir / MANIFEST
    try:
        earlier = set(json.loads(manifest.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        earlier = set()
    current = set(result.files)
    if full_build:
        for path in sorted(earlier - current):
            _remove_with_empty_parents(site.public_dir, path)
            result.removed.append(path)
        known = current
    else:
        known = earlier | current
    if known != earlier:
        atomic_write_text(manifest, json.dumps(sorted(known), ensure_ascii=False, indent=0) + "\n")
    return result


def _remove_with_empty_parents(public: Path, relative: str) -> None:
    target = public / relative
    if not target.resolve().is_relative_to(public.resolve()):
        return  # a damaged manifest must never make a build delete outside public/
    target.unlink(missing_ok=True)
    folder = target.parent
    while folder != public and folder.is_relative_to(public):
        try:
            folder.rmdir()   # only succeeds when empty
        except OSError:
            break
        folder = folder.parent


def feed_targets(article: Article) -> list[str]:
    """The feed files (paths under ``public/``) an article version appears in: its language's, its theme's."""
    from publisher.formatters.feeds import FILENAMES

    targets = [f"{article.lang}/{FILENAMES[fmt]}" for fmt in ("rss", "atom", "json")]
    if article.theme_slug:
        targets += [f"{article.lang}/themes/{article.theme_slug}/{FILENAMES[fmt]}" for fmt in ("rss", "atom")]
    return targets


class PublishedVersions:
    """Which article versions are in the feeds, and the entry id each was given, read from the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ids: dict[tuple[str, str], str] = {}
        self.published: set[tuple[str, str]] = set()
        for row in ledger.rows(channel=CHANNEL):
            key = (row.key.article, row.key.lang)
            guid = row.detail.get("guid")
            if guid and key not in self.ids:
                self.ids[key] = str(guid)
            if row.state == "sent":
                self.published.add(key)


class FeedsChannel(Channel):
    """RSS 2.0, Atom and JSON Feed per language and per theme, an OPML list, and the pages they link to."""

    name: ClassVar[str] = CHANNEL
    title: ClassVar[str] = "RSS, Atom and JSON feeds"

    def __init__(self, site: Site, config: Config | None = None) -> None:
        super().__init__(site, config)
        self._library: Library | None = None
        self._library_signature: list[tuple[str, int, int]] = []

    def is_configured(self) -> bool:
        # Nothing to configure: the feed files are the delivery.
        return True

    def fallback_description(self) -> str:
        return "feed files in public/"

    def destination(self) -> str:
        return f"{self.title} in public/<lang>/ (rss.xml, atom.xml, feed.json)"

    # --- building ------------------------------------------------------------------------------------------

    def library(self) -> Library:
        """Every content file, loaded again only when one was added, removed or changed since the last call.

        ``publisher publish`` with many articles calls ``publish()`` once per story; reading thousands of
        front matters each time would make that quadratic.
        """
        from publisher.article import content_files

        signature = []
        for path in content_files(self.site):
            stat = path.stat()
            signature.append((str(path), stat.st_mtime_ns, stat.st_size))
        if self._library is None or signature != self._library_signature:
            self._library = self.site.articles()
            self._library_signature = signature
        return self._library

    def site_feeds(self, ledger: Ledger, including: Iterable[Article] = (), *, everything: bool = False) -> SiteFeeds:
        """The site's feeds over every published version, plus ``including`` (the versions being published now).

        ``everything`` takes every version in ``content/`` instead of the ledger's published ones. Either way
        the publishing rule for translations is applied again, so turning machine translations off takes them
        out of the feeds at the next build.
        """
        from publisher.formatters.feeds import SiteFeeds, tag_uri
        from publisher.translate.policy import select_versions

        state = PublishedVersions(ledger)
        chosen: dict[tuple[str, str], Article] = {}
        for story in self.library().stories.values():
            allowed, _ = select_versions(story, self.site.languages, self.site)
            for article in allowed.versions.values():
                if everything or (article.slug, article.lang) in state.published:
                    chosen[(article.slug, article.lang)] = article
        for article in including:
            chosen[(article.slug, article.lang)] = article
        site_url = self.site.url

        def item_id(article: Article) -> str:
            return state.ids.get((article.slug, article.lang)) or tag_uri(site_url, article)

        return SiteFeeds(self.site, chosen.values(), item_id=item_id)

    @staticmethod
    def files_for(feeds: SiteFeeds, versions: Sequence[Article]) -> list[OutputFile]:
        """The files that publishing ``versions`` rewrites: feeds of their languages and themes, pages, OPML."""
        return feeds.render(
            langs={a.lang for a in versions},
            themes={a.theme_slug for a in versions if a.theme_slug},
            pages=[(a.slug, a.lang) for a in versions],
        )

    # --- the Channel interface ---------------------------------------------------------------------------

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        versions = _versions(story, langs)
        files = self.files_for(self.site_feeds(self.site.ledger(), versions), versions)
        return [
            # The whole path in the file name: every language and theme has its own rss.xml.
            Rendition(channel=CHANNEL, lang=output.lang or "", target=output.path,
                      filename="-".join(PurePosixPath(output.path).parts), content=output.content,
                      media_type=output.media_type, meta={"items": output.items})
            for output in files
        ]

    def publish(self, story: Story, langs: Sequence[str], ctx: PublishContext) -> list[DeliveryReport]:
        return self._publish_versions(_versions(story, langs), ctx)

    def publish_many(self, batch: Sequence[tuple[Story, Sequence[str]]], ctx: PublishContext) -> list[DeliveryReport]:
        """Every story of a run in one build: each feed is written once, not once per story."""
        return self._publish_versions([a for story, langs in batch for a in _versions(story, langs)], ctx)

    def _publish_versions(self, versions: Sequence[Article], ctx: PublishContext) -> list[DeliveryReport]:
        keys = _delivery_keys(versions)
        if ctx.dry_run:
            return [DeliveryReport(k.article, k.lang, CHANNEL, k.target, "pending", "dry run: not written")
                    for k in keys]
        with build_lock(self.site):
            before = {key: ctx.ledger.begin(key) for key in keys}
            try:
                feeds = self.site_feeds(ctx.ledger, versions)
                result = write_outputs(self.site, self.files_for(feeds, versions))
                feeds.keep_rendered_bodies(full_build=False)
            except PublisherError as exc:
                # Nothing was half-written (every file is renamed into place); the rows say why, to retry.
                for key in keys:
                    ctx.ledger.mark(key, "failed", error=str(exc))
                return [DeliveryReport(k.article, k.lang, CHANNEL, k.target, "failed", str(exc)) for k in keys]
            reports = []
            by_version = {(a.slug, a.lang): a for a in versions}
            for key in keys:
                article = by_version[(key.article, key.lang)]
                ctx.ledger.mark(key, "sent", remote_url=f"{self.site.url}/{key.target}",
                                detail={"guid": feeds.item(article).id, "url": article.url})
                if before[key].state == "sent":
                    note = "refreshed" if key.target in result.written else "already up to date"
                else:
                    note = "added"
                reports.append(DeliveryReport(key.article, key.lang, CHANNEL, key.target, "sent", note))
        return reports


@contextmanager
def build_lock(site: Site) -> Iterator[None]:
    """One feeds build at a time per site, across processes.

    A build reads the ledger, renders and writes; without the lock, two publishes running at once could each
    write a feed that lacks the other's article (the later rename wins). With it the second waits, then sees
    the first one's rows as sent.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: builds are not serialized
        yield
        return
    site.state_dir.mkdir(parents=True, exist_ok=True)
    with open(site.state_dir / "feeds.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def build_site(site: Site, *, include_unpublished: bool = False) -> BuildResult:
    """``publisher feeds build``: rebuild every feed and page from the published versions (or all of them).

    With ``include_unpublished`` every version that may be published is added and recorded in the ledger as
    published to the feeds, so later builds and publishes keep it.
    """
    with build_lock(site):
        return _build_site(site, include_unpublished)


def _build_site(site: Site, include_unpublished: bool) -> BuildResult:
    channel = FeedsChannel(site)
    ledger = site.ledger()
    feeds = channel.site_feeds(ledger, everything=include_unpublished)
    result = write_outputs(site, feeds.render(), full_build=True)
    feeds.keep_rendered_bodies(full_build=True)
    if include_unpublished:
        state = PublishedVersions(ledger)
        versions = [a for lang in feeds.languages for a in feeds.by_lang[lang] if (a.slug, a.lang) not in state.published]
        for key in _delivery_keys(versions):
            ledger.begin(key)
        for article in versions:
            for key in _delivery_keys([article]):
                ledger.mark(key, "sent", remote_url=f"{site.url}/{key.target}",
                            detail={"guid": feeds.item_id(article), "url": article.url})
    return result


def _versions(story: Story, langs: Sequence[str]) -> list[Article]:
    return [story.versions[lang] for lang in langs if lang in story.versions]


def _delivery_keys(versions: Sequence[Article]) -> list[DeliveryKey]:
    from publisher.delivery import DeliveryKey

    return [DeliveryKey(a.slug, a.lang, CHANNEL, target) for a in versions for target in feed_targets(a)]
