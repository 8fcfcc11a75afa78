"""The feeds channel: publishing an article rebuilds the feeds, index page and article pages it appears in.

Feeds are local by nature: the files under ``public/`` are the delivery, so there is no remote adapter and
no fallback. Each delivery is one (article, language, "feeds", feed path); its detail holds the entry id handed
out at first publication, so an edited or re-published article keeps its id and feed readers never show it
twice. Rebuilding a feed is idempotent, so publishing again simply refreshes it (``idempotent``: every publish
delivers again; ``--force`` changes nothing here). A delivery left ``in_flight`` by a crash is safe to publish
again, with the same entry id; builds in between leave that version out, and no reader ever sees half a file.

A run makes one build: ``render_many`` plans it over the versions already published (read through
``ctx.published``) and the ones being published, the pipeline claims every delivery, and the ``Sender`` writes
the files once, then answers for every delivery at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from publisher.channels.base import Channel, ChannelContext, Result, Sender
from publisher.delivery import Attempt, DeliveryReport, LockRequest, Outcome, Rendition
from publisher.errors import PublisherError

if TYPE_CHECKING:
    from publisher.article import Article, Library, Listed, Story
    from publisher.config import Config
    from publisher.delivery import PublishedVersions, RenderCache
    from publisher.formatters.site_feeds import OutputFile, SiteFeeds
    from publisher.site import Site

CHANNEL = "feeds"
MANIFEST = "feeds-files.json"   # in .publisher/: every file under public/ that a feeds build wrote
BUILT = "feeds-built.json"      # in .publisher/: what the last full build was made from, and the files it left
WRITING = "feeds-writing"      # in .publisher/: present while a build writes (so a stopped one is swept after)


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
    has any more) are removed, and so are the temporary files a killed build left (the caller holds the feeds
    lock, so no other build is writing); nothing else under ``public/`` is ever touched.

    Those temporary files are looked for (a walk of all ``public/``, seconds on a site of 20,000 pages) on a
    full build, and when ``.publisher/feeds-writing`` says an earlier build stopped part-way: it is written
    before the first file and removed once the manifest is.
    """
    from publisher.fsutil import atomic_write_text, sweep_temporary_files, write_if_changed

    writing = site.state_dir / WRITING
    if site.public_dir.is_dir() and (full_build or writing.exists()):
        sweep_temporary_files(site.public_dir)
    atomic_write_text(writing, "a feeds build is writing under public/, or was stopped part-way\n")
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
    writing.unlink(missing_ok=True)
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


def forget_build(site: Site) -> None:
    """The next ``feeds build`` renders everything: the files may no longer be what the last full build left."""
    (site.state_dir / BUILT).unlink(missing_ok=True)


def _build_inputs(site: Site) -> list[Path]:
    """The files besides content that a build's output depends on: templates and UI strings (the site's and the
    packaged ones), and the code that renders them."""
    import publisher
    from publisher.resources import locales_dir, templates_dir

    package = Path(publisher.__file__).resolve().parent
    folders = [site.templates_dir, site.root / "locales", templates_dir(), locales_dir(), package / "formatters"]
    found = [package / name for name in ("markup.py", "i18n.py", "templating.py", "article.py")]
    found.append(Path(__file__))
    for folder in folders:
        if folder.is_dir():   # sources, not the bytecode Python leaves beside them
            found += sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return found


class EntryIds:
    """Which article versions are in the feeds, and the entry id each was given, as the pipeline hands them over.

    The id is the one recorded at first publication (``first_details``), else the one of a delivered row,
    else a new tag: URI; so it never changes once handed out. Read lazily: ``versions`` from an index alone,
    the ids of only the versions asked for (``prefetch``: a publish renders about a hundred items of 20,000),
    or of all at once (``load_all``: a full build renders every page).
    """

    def __init__(self, site_url: str, published: PublishedVersions | None) -> None:
        self.site_url = site_url
        self.store = published
        self._versions: set[tuple[str, str]] | None = None if published else set()
        self._ids: dict[tuple[str, str], str | None] = {}
        self._all = published is None

    @property
    def versions(self) -> set[tuple[str, str]]:
        """The (slug, lang) of every version with a delivered row."""
        if self._versions is None:
            assert self.store is not None
            self._versions = self.store.published_versions(CHANNEL)
        return self._versions

    def load_all(self) -> None:
        """Every version's id, in two passes over the channel's rows (cheaper than per version for all)."""
        if self._all or self.store is None:
            return
        sent = self.store.published(CHANNEL)
        first = self.store.first_details(CHANNEL)
        self._versions = set(sent)
        self._ids = {key: _guid(first.get(key), sent.get(key)) for key in {*sent, *first}}
        self._all = True

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the ids of ``keys`` not known yet, in one look-up."""
        if self._all or self.store is None:
            return
        wanted = [key for key in keys if key not in self._ids]
        if not wanted:
            return
        found = self.store.version_details(CHANNEL, wanted)
        for key in wanted:
            first, sent = found.get(key, (None, None))
            self._ids[key] = _guid(first, sent)

    def guid(self, article: Article) -> str:
        from publisher.formatters.feeds import tag_uri

        return self.guid_of((article.slug, article.lang)) or tag_uri(self.site_url, article)

    def guid_of(self, key: tuple[str, str]) -> str | None:
        """The id recorded for (slug, lang), if any."""
        if key not in self._ids:
            self.prefetch([key])
        return self._ids.get(key)


def _guid(first: dict[str, Any] | None, sent: dict[str, Any] | None) -> str | None:
    for detail in (first, sent):
        if detail and detail.get("guid"):
            return str(detail["guid"])
    return None


class FeedsBuild:
    """One build of a run, shared by every rendition of it (their ``payload``): the versions being published
    on top of those already published, rendered once and written once."""

    def __init__(self, channel: FeedsChannel, versions: Sequence[Article], ids: EntryIds,
                 cache: RenderCache | None, *, full: bool) -> None:
        self.channel = channel
        self.versions = list(versions)
        self.ids = ids
        self.cache = cache
        self.full = full
        self.by_version = {(a.slug, a.lang): a for a in self.versions}
        if full:
            ids.load_all()   # every page is rendered: every version's id
        self._feeds: SiteFeeds | None = None
        self._files: list[OutputFile] | None = None
        self.result: BuildResult | None = None

    @property
    def feeds(self) -> SiteFeeds:
        if self._feeds is None:
            self._feeds = self.channel.site_feeds_for(self.ids, self.versions, cache=self.cache)
        return self._feeds

    def files(self) -> list[OutputFile]:
        """Every file of the build (a full build), or those that publishing the versions rewrites. Raises a
        ``PublisherError`` for content a person must fix (a missing image), before anything is written."""
        if self._files is None:
            feeds = self.feeds
            self._files = feeds.render() if self.full else self.channel.files_for(feeds, self.versions)
        return self._files

    def write(self) -> BuildResult:
        """Write the files (atomically, only those that changed, the manifest), then keep the rendered bodies."""
        if self.result is None:
            files = self.files()
            forget_build(self.channel.site)   # whatever a full build left, this one changes
            self.result = write_outputs(self.channel.site, files, full_build=self.full)
            self.feeds.keep_rendered_bodies(full_build=self.full)
        return self.result

    def detail(self, article: Article) -> dict[str, Any]:
        return {"guid": self.feeds.item_id(article), "url": article.url}


class FeedsSender(Sender):
    """Waits until every delivery of the run is claimed, then builds and writes once and answers for all."""

    capacity: int = 1 << 30   # every delivery is claimed before the one build

    def __init__(self, channel: FeedsChannel, ctx: ChannelContext) -> None:
        super().__init__(channel, ctx)
        self.site = channel.site
        self._waiting: list[Attempt] = []

    def submit(self, attempt: Attempt) -> None:
        self._waiting.append(attempt)

    def collect(self, *, wait: bool) -> list[tuple[Attempt, Outcome]]:
        if not wait or not self._waiting:
            return []   # nothing is written before every delivery of the build is claimed
        attempts, self._waiting = self._waiting, []
        builds: dict[int, tuple[FeedsBuild, list[Attempt]]] = {}
        for attempt in attempts:
            build = attempt.rendition.payload
            builds.setdefault(id(build), (build, []))[1].append(attempt)
        done: list[tuple[Attempt, Outcome]] = []
        for build, group in builds.values():
            try:
                build.write()
            except PublisherError as exc:
                # Nothing was half-written (every file is renamed into place); the rows say why, to retry.
                done += [(attempt, Outcome.failed(str(exc), detail=_kept(attempt))) for attempt in group]
                continue
            for attempt in group:
                article = build.by_version[(attempt.key.article, attempt.key.lang)]
                done.append((attempt, Outcome.sent(remote_url=f"{self.site.url}/{attempt.key.target}",
                                                   detail=build.detail(article))))
        return done


def _kept(attempt: Attempt) -> dict[str, Any] | None:
    """A failed delivery keeps the entry id its row already had (the pipeline replaces the detail)."""
    previous = attempt.previous.detail if attempt.previous is not None else {}
    kept: dict[str, Any] = {name: previous[name] for name in ("guid", "url") if name in previous}
    return kept or None


class FeedsChannel(Channel):
    """RSS 2.0, Atom and JSON Feed per language and per theme, an OPML list, and the pages they link to.

    ``full_build`` (``publisher feeds build --all``): the build writes every file and removes stale ones, and
    is rendered before any delivery is claimed, so content to fix stops the run with nothing recorded.
    ``published`` is what ``render`` (preview, the review page) shows besides the story; without it the feeds
    are shown with the story's versions only.
    """

    name: ClassVar[str] = CHANNEL
    title: ClassVar[str] = "RSS, Atom and JSON feeds"
    idempotent: ClassVar[bool] = True

    def __init__(self, site: Site, config: Config | None = None, *, full_build: bool = False,
                 published: PublishedVersions | None = None) -> None:
        super().__init__(site, config)
        self.full_build = full_build
        self.published = published
        self.last_build: FeedsBuild | None = None
        self._library: Library | None = None

    def is_configured(self) -> bool:
        # Nothing to configure: the feed files are the delivery.
        return True

    def fallback_description(self) -> str:
        return "feed files in public/"

    def destination(self) -> str:
        return f"{self.title} in public/<lang>/ (rss.xml, atom.xml, feed.json)"

    # --- building ------------------------------------------------------------------------------------------

    def library(self) -> Library:
        """Every content file; the same Library as the last call while no file was added, removed or changed."""
        library = self.site.articles()   # from the content index: only changed files are read
        if self._library is None or not library.signature or library.signature != self._library.signature:
            self._library = library
        return self._library

    def site_feeds(self, published: PublishedVersions | None, including: Iterable[Article] = (), *,
                   cache: RenderCache | None = None) -> SiteFeeds:
        """The site's feeds over every published version, plus ``including`` (the versions being published now)."""
        return self.site_feeds_for(EntryIds(self.site.url, published), including, cache=cache)

    def site_feeds_for(self, ids: EntryIds, including: Iterable[Article] = (), *,
                       cache: RenderCache | None = None) -> SiteFeeds:
        """``site_feeds`` from what was already read. The publishing rule for translations is applied again, so
        turning machine translations off takes them out of the feeds at the next build.

        The other versions come from the site's ``Catalog`` (unchanged files as the content index lists them,
        no body read); only those rendered in full (a feed's newest entries, the pages rewritten) are made whole.
        """
        from publisher.formatters.site_feeds import SiteFeeds
        from publisher.translate.policy import may_publish

        catalog = self.site.catalog()
        allow_machine = bool(self.site.config.get("PUBLISHER_ALLOW_MACHINE_TRANSLATION"))
        with self.site.kept_for_the_run():   # 20,000 versions read and grouped: not walked by the collector
            published = ids.versions
            languages = self.site.languages
            chosen: dict[tuple[str, str], Listed] = {}
            for slug, versions in catalog.stories.items():
                for lang in languages:
                    version = versions.get(lang)
                    if version is not None and (slug, lang) in published and may_publish(version, allow_machine):
                        chosen[(slug, lang)] = version
            for article in including:
                chosen[(article.slug, article.lang)] = article
            return SiteFeeds(self.site, chosen.values(), item_id=ids.guid, cache=cache,
                             prefetch_ids=ids.prefetch, full_articles=catalog.full)

    @staticmethod
    def files_for(feeds: SiteFeeds, versions: Sequence[Article]) -> list[OutputFile]:
        """The files that publishing ``versions`` rewrites: feeds of their languages and themes, pages, OPML.
        The pages of the story's other published versions too: their language switch and hreflang links now
        point at the new version."""
        return feeds.render(
            langs={a.lang for a in versions},
            themes={a.theme_slug for a in versions if a.theme_slug},
            pages=list(dict.fromkeys((a.slug, lang) for a in versions for lang in feeds.versions.get(a.slug, {}))),
        )

    def unpublished(self, published: PublishedVersions | None) -> list[tuple[Story, list[str]]]:
        """Every version in ``content/`` that may be published and is not in the feeds yet (``feeds build --all``)."""
        from publisher.translate.policy import select_versions

        ids = EntryIds(self.site.url, published)
        batch: list[tuple[Story, list[str]]] = []
        for story in self.library().stories.values():
            allowed, _ = select_versions(story, self.site.languages, self.site)
            langs = [lang for lang in self.site.languages
                     if lang in allowed.versions and (story.slug, lang) not in ids.versions]
            if langs:
                batch.append((allowed, langs))
        return batch

    def rebuild(self, ctx: ChannelContext) -> BuildResult:
        """``publisher feeds build``: every file from the published versions, written at once; stale files removed.
        Records nothing (the caller holds ``lock_for``).

        When nothing it is made from changed since the last full build (``build_key``: the content files, what
        is published with which entry ids, the settings, the templates and the code) and every file that build
        left is still there with its size, nothing is rendered: the files are what it would write again.
        """
        ids = EntryIds(self.site.url, ctx.published)
        key = self.build_key(ids)
        unchanged = self._still_built(key)
        if unchanged is not None:
            return BuildResult(unchanged=unchanged)
        self.last_build = FeedsBuild(self, [], ids, ctx.cache, full=True)
        result = self.last_build.write()
        if key:
            self._remember_build(key, result)
        return result

    def build_key(self, ids: EntryIds) -> str:
        """A digest of everything a full build is made from; empty when the content cannot tell (a file too
        recent: it may change again unnoticed)."""
        import hashlib

        from publisher.fsutil import files_signature
        from publisher.settings import CORE_SETTINGS, site_settings

        signature = self.site.content_signature()   # the files listed, none read: a build that is still in place
        if not signature:                            # needs no article
            return ""
        digest = hashlib.blake2b(signature.encode("ascii"), digest_size=16)
        # What was published: the channel's rows per state, not each version's id (ids never change once
        # handed out, and every build that records deliveries forgets the last full build: ``forget_build``)
        if ids.store is not None:
            digest.update(ids.store.channel_fingerprint(CHANNEL).encode())
        # the settings a feeds build reads: the core ones and its own; another channel's settings never change
        # these files (and reading them all would import every channel module)
        names = sorted({setting.name for setting in (*CORE_SETTINGS, *self.settings,
                                                     *site_settings(self.site.languages))})
        digest.update(json.dumps([(name, self.site.config.raw(name)) for name in names]).encode())
        digest.update(files_signature(_build_inputs(self.site)).encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def _still_built(self, key: str) -> list[str] | None:
        """The files of the last full build, if it was made from ``key`` and they are all still in place."""
        if not key:
            return None
        try:
            built = json.loads((self.site.state_dir / BUILT).read_text(encoding="utf-8"))
            if built.get("key") != key:
                return None
            files: dict[str, int] = built["files"]
            # relative to public/ opened once (no Path, not even a joined string, per file: 20,000 of them)
            public = os.open(self.site.public_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                for path, size in files.items():
                    if os.stat(path, dir_fd=public).st_size != size:
                        return None
            finally:
                os.close(public)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, NotImplementedError):
            return None
        return sorted(files)

    def _remember_build(self, key: str, result: BuildResult) -> None:
        from publisher.fsutil import atomic_write_text

        try:
            files = {path: (self.site.public_dir / path).stat().st_size for path in result.files}
            atomic_write_text(self.site.state_dir / BUILT, json.dumps({"key": key, "files": files}) + "\n")
        except OSError:
            forget_build(self.site)

    # --- the Channel interface ---------------------------------------------------------------------------

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        versions = _versions(story, langs)
        build = FeedsBuild(self, versions, EntryIds(self.site.url, self.published), None, full=False)
        return [
            # The whole path in the file name: every language and theme has its own rss.xml.
            Rendition(channel=CHANNEL, lang=output.lang or "", target=output.path,
                      filename=_filename(output.path), content=output.content,
                      media_type=output.media_type, meta={"items": output.items}, article=story.slug)
            for output in build.files()
        ]

    def validate(self, batch: Sequence[tuple[Story, Sequence[str]]]) -> list[str]:
        """What can stop a feeds build is an article's own: its image (checked, copied to ``public/``). Each
        version's feed item and page are made over its story alone; the feeds around them, over every published
        article, are rendered once, when written (rendering them here too cost as much as the build)."""
        from publisher.formatters.site_feeds import SiteFeeds

        problems: list[str] = []
        for story, langs in batch:
            versions = _versions(story, langs)
            try:
                feeds = SiteFeeds(self.site, versions)
                for article in versions:
                    feeds.article_file(article)
                feeds.image_files()
            except PublisherError as exc:
                problems.append(str(exc))
        return problems

    def lock_for(self, batch: Sequence[tuple[Story, Sequence[str]]]) -> LockRequest:
        """One feeds build at a time per site, across processes.

        A build reads what was published, renders and writes; without the lock, two publishes running at once
        could each write a feed that lacks the other's article (the later rename wins). With it the second
        waits, then sees the first one's deliveries as sent.
        """
        return LockRequest(CHANNEL, wait=True)

    def render_many(self, batch: Sequence[tuple[Story, Sequence[str]]], ctx: ChannelContext) -> list[Rendition]:
        """One rendition per (version, feed path), all sharing one build (``payload``) that the ``Sender``
        writes. Their ``content`` is empty: the files are rendered once, for the whole run."""
        from publisher.formatters.feeds import MEDIA_TYPES

        versions = list({(a.slug, a.lang): a for story, langs in batch for a in _versions(story, langs)}.values())
        build = FeedsBuild(self, versions, EntryIds(self.site.url, ctx.published), ctx.cache, full=self.full_build)
        if self.full_build and not ctx.dry_run:
            build.files()   # content to fix stops the run before anything is claimed
        self.last_build = build
        media_types = {"rss.xml": MEDIA_TYPES["rss"], "atom.xml": MEDIA_TYPES["atom"], "feed.json": MEDIA_TYPES["json"]}
        return [Rendition(channel=CHANNEL, lang=article.lang, target=target, filename=_filename(target), content=b"",
                          media_type=media_types.get(PurePosixPath(target).name, "application/octet-stream"),
                          article=article.slug, payload=build)
                for article in versions for target in feed_targets(article)]

    def open(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Sender:
        return FeedsSender(self, ctx)

    def send(self, attempt: Attempt, ctx: ChannelContext) -> Outcome:
        """One delivery alone: a build for its rendition (the ``Sender`` builds once for every delivery)."""
        sender = FeedsSender(self, ctx)
        sender.submit(attempt)
        [(_, outcome)] = sender.collect(wait=True)
        return outcome

    def where(self, result: Result) -> str:
        return result.key.target

    def report(self, results: Sequence[Result], ctx: ChannelContext) -> list[DeliveryReport]:
        """One line per feed path: "added" (new in the feed), "refreshed" (the file was rewritten) or "already
        up to date"."""
        reports = []
        rewritten: dict[int, set[str]] = {}
        for result in results:
            note = result.note
            if result.outcome is not None and result.outcome.state == "sent":
                build = result.rendition.payload if result.rendition is not None else None
                if id(build) not in rewritten:
                    done = build.result if isinstance(build, FeedsBuild) else None
                    rewritten[id(build)] = set(done.written) if done is not None else set()
                written = rewritten[id(build)]
                if result.previous_state != "sent":
                    note = "added"
                else:
                    note = "refreshed" if result.key.target in written else "already up to date"
            elif result.outcome is not None:
                note = result.outcome.note or result.outcome.error or note
            reports.append(DeliveryReport(result.key.article, result.key.lang, CHANNEL, self.where(result),
                                          result.state, note, done_before=int(note == "already up to date")))
        return reports


def _versions(story: Story, langs: Sequence[str]) -> list[Article]:
    return [story.versions[lang] for lang in langs if lang in story.versions]


def _filename(path: str) -> str:
    return "-".join(PurePosixPath(path).parts)

