"""The article model: one language version per content file ``content/<slug>.<lang>.md``, grouped into stories."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date as date_type
from datetime import datetime, time, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from publisher.errors import ContentError, NotFound, PublisherError

if TYPE_CHECKING:
    from publisher.site import Site
    from publisher.store import ContentIndex, IndexedFile, IndexEntry

TRANSLATION_STATUSES = ("original", "human", "machine", "reviewed")
MANDATORY_PROPERTIES = ("title", "date")
KNOWN_KEYS = ("title", "date", "updated", "lang", "slug", "summary", "author", "theme", "tags", "image", "url",
              "translation", "publish_at")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
FILE_RE = re.compile(r"^(?P<slug>.+)\.(?P<lang>[A-Za-z-]+)\.md$")


@dataclass(frozen=True)
class Image:
    src: str
    alt: str


@dataclass(frozen=True)
class TranslationInfo:
    """How this version came to be: written (``original``), translated by a person (``human``), by a model
    (``machine``), or by a model and then checked by an editor (``reviewed``)."""

    status: str = "original"
    source_lang: str | None = None
    model: str | None = None

    @property
    def is_translation(self) -> bool:
        return self.status != "original"


@dataclass
class Article:
    """One language version of an article."""

    slug: str
    lang: str
    title: str
    date: datetime
    body: str = ""
    summary: str = ""
    updated: datetime | None = None
    author: str | None = None
    theme: str | None = None
    tags: list[str] = field(default_factory=list)
    image: Image | None = None
    url: str = ""
    translation: TranslationInfo = field(default_factory=TranslationInfo)
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    publish_at: datetime | None = None   # embargo: held back from every channel until this time

    @property
    def body_html(self) -> str:
        from publisher.markup import markdown_to_html

        return markdown_to_html(self.body)

    @property
    def summary_html(self) -> str:
        from publisher.markup import markdown_to_html

        return markdown_to_html(self.summary) if self.summary else ""

    @property
    def is_machine_translation(self) -> bool:
        return self.translation.status == "machine"

    @property
    def theme_slug(self) -> str | None:
        return _theme_slug(self.theme) if self.theme else None

    def with_changes(self, **changes: Any) -> Article:
        return replace(self, **changes)


class Listed(Protocol):
    """What lists an article version without its body: an ``Article``, or the ``ArticleEntry`` the content index
    gives for an unchanged file (index pages, which versions a feed holds, the OPML list, language links)."""

    @property
    def slug(self) -> str: ...
    @property
    def lang(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def date(self) -> datetime: ...
    @property
    def summary(self) -> str: ...
    @property
    def theme(self) -> str | None: ...
    @property
    def url(self) -> str: ...
    @property
    def translation(self) -> TranslationInfo: ...
    @property
    def theme_slug(self) -> str | None: ...
    @property
    def is_machine_translation(self) -> bool: ...


class ArticleEntry(NamedTuple):
    """An unchanged content file as the content index lists it: its ``Listed`` fields, no body (a named tuple:
    a publish makes 20,000 of them). ``Catalog.full`` gives the whole ``Article``."""

    slug: str
    lang: str
    title: str
    date: datetime
    summary: str
    theme: str | None
    url: str
    translation: TranslationInfo
    file: str                          # the path, as listed
    size: int                          # and the size and modification time it had (those of its index entry)
    mtime_ns: int

    @property
    def path(self) -> Path:
        return Path(self.file)

    @property
    def theme_slug(self) -> str | None:
        return _theme_slug(self.theme) if self.theme else None

    @property
    def is_machine_translation(self) -> bool:
        return self.translation.status == "machine"


@dataclass
class Story:
    """One article in all its languages, keyed by language."""

    slug: str
    versions: dict[str, Article] = field(default_factory=dict)

    @property
    def original(self) -> Article:
        for article in self.versions.values():
            if article.translation.status == "original":
                return article
        return next(iter(self.versions.values()))

    @property
    def languages(self) -> list[str]:
        return list(self.versions)

    def get(self, lang: str) -> Article | None:
        return self.versions.get(lang)

    def only(self, langs: Iterable[str]) -> Story:
        wanted = set(langs)
        return Story(self.slug, {lang: a for lang, a in self.versions.items() if lang in wanted})

    def alternates(self, article: Article) -> list[Article]:
        """The other language versions of ``article``."""
        return [a for lang, a in self.versions.items() if lang != article.lang]


class Library:
    """Every article of a site, grouped into stories."""

    def __init__(self, stories: Mapping[str, Story], *, signature: str = "") -> None:
        self.stories = dict(stories)
        # Of the files it was loaded from (paths, sizes, modification times): equal signatures, equal
        # libraries. Empty when unknown or when a file is too recent to tell (``RACY_SECONDS``).
        self.signature = signature

    def story(self, slug: str) -> Story:
        try:
            return self.stories[slug]
        except KeyError:
            raise NotFound(f"no article with slug {slug!r}") from None

    def articles(self, lang: str | None = None) -> list[Article]:
        """Every version, newest first."""
        found = [a for s in self.stories.values() for a in s.versions.values() if lang is None or a.lang == lang]
        return sorted(found, key=lambda a: (a.date, a.slug), reverse=True)

    def __len__(self) -> int:
        return len(self.stories)


# --- loading ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _theme_slug(theme: str) -> str:
    # A site has a few themes and builds ask each of 20,000 versions for its theme's slug several times.
    return slugify(theme)


def slugify(text: str) -> str:
    """Lower-case words joined by hyphens; Hangul is kept."""
    words = re.findall(r"[0-9a-z\uac00-\ud7a3]+", text.lower())
    return "-".join(words)


def split_front_matter(text: str, path: Path | str) -> tuple[dict[str, Any], str]:
    import yaml

    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.startswith("---"):
        raise ContentError(path, None, "no front matter: the file must start with a '---' line")
    parts = re.split(r"^---[ \t]*$", text, maxsplit=2, flags=re.MULTILINE)
    if len(parts) < 3:
        raise ContentError(path, None, "front matter is not closed by a '---' line")
    try:
        # the C loader is ten times faster: it matters when a build loads thousands of files
        meta = yaml.load(parts[1], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise ContentError(path, None, f"invalid YAML front matter: {where}{problem}") from None
    except (ValueError, OverflowError) as exc:
        # YAML's own timestamp type: "date: 2024-13-45" looks like a date to the parser, then is not one
        raise ContentError(path, _impossible_value_key(parts[1]), f"{exc} (expected a date like 2024-06-28)") from None
    if not isinstance(meta, dict):
        raise ContentError(path, None, "front matter must be a mapping of keys to values")
    return meta, parts[2].lstrip("\n")


def _impossible_value_key(front_matter: str) -> str | None:
    """The top-level key whose value the YAML parser recognised as a date it could not build, if one can be named."""
    import yaml

    try:
        raw = yaml.load(front_matter, Loader=yaml.BaseLoader)   # every value as plain text: nothing to build
    except yaml.YAMLError:
        return None
    for key, value in (raw.items() if isinstance(raw, dict) else ()):
        if isinstance(value, str):
            try:
                yaml.safe_load(value)
            except (ValueError, OverflowError):
                return str(key)
            except yaml.YAMLError:
                continue
    return None


def parse_datetime(value: Any, tz: tzinfo, path: Path | str, field_name: str) -> datetime:
    """A timezone-aware datetime; a date or naive time is taken in the site's time zone."""
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date_type):
        result = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ContentError(path, field_name, f"expected a date like 2024-06-28 or 2024-06-28T09:30:00+09:00, "
                                                 f"got {value!r}") from None
    else:
        raise ContentError(path, field_name, f"expected a date, got {value!r}")
    if result.tzinfo is None:
        result = result.replace(tzinfo=tz)
    return result


def _is_text(value: Any) -> bool:
    """A scalar YAML gives for text: a string, or a number written bare ("title: 2024"); never a boolean
    ("title: yes" is YAML's true), a date, a list or a mapping, whose str() would be published as it looks."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(meta: Mapping[str, Any], key: str, path: Path | str, *, required: bool = False,
          field_name: str | None = None) -> str:
    value = meta.get(key)
    name = field_name or key
    if _absent(value):
        if required:
            raise ContentError(path, name, "is required")
        return ""
    if not _is_text(value):
        raise ContentError(path, name, f"expected text, got {_kind(value)}")
    return str(value).strip()


def _kind(value: Any) -> str:
    """What a wrong value is, for a message: "a list", "true", "a date"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (datetime, date_type)):
        return "a date"
    if isinstance(value, (int, float)):
        return "a number"
    return repr(value)


def _tags(meta: Mapping[str, Any], path: Path | str) -> list[str]:
    value = meta.get("tags")
    if _absent(value):
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(_is_text(t) for t in value):
        return [str(t).strip() for t in value if str(t).strip()]
    raise ContentError(path, "tags", f"expected a list of words, got {_kind(value)}")


def _url(meta: Mapping[str, Any], path: Path | str, site: Site, lang: str, slug: str) -> str:
    """``url``: an absolute http(s) URL, or a path on the site (``/en/news/``); default ``{URL}/{lang}/{slug}/``."""
    from publisher.markup import site_path_problem, web_url_problem

    value = meta.get("url")
    if _absent(value):
        return site.url_for(lang, slug)
    if not isinstance(value, str):
        raise ContentError(path, "url", f"expected an http(s) URL, got {_kind(value)}")
    url = value.strip()
    if url.startswith("/") and not url.startswith("//"):
        problem = site_path_problem(url)
        if problem:
            raise ContentError(path, "url", f"{problem}: {url!r}")
        return site.url + url
    problem = web_url_problem(url)
    if problem:
        raise ContentError(path, "url", f"{problem} (or a path on the site such as /en/news/), got {url!r}")
    return url


def _image(meta: Mapping[str, Any], path: Path, site: Site) -> Image | None:
    """``image: {src, alt}``, checked as the channels will use it: a remote http(s) URL, or a file inside the
    site that exists now (``Site.media_path``), so that ``publish`` stops before any channel writes."""
    raw = meta.get("image")
    if _absent(raw):
        return None
    if isinstance(raw, str):
        raise ContentError(path, "image", "expected {src: ..., alt: ...}: an image needs alt text")
    if not isinstance(raw, Mapping):
        raise ContentError(path, "image", f"expected {{src: ..., alt: ...}}, got {_kind(raw)}")
    src_value = raw.get("src")
    if _absent(src_value):
        raise ContentError(path, "image.src", "is required")
    if not isinstance(src_value, str):
        raise ContentError(path, "image.src", f"expected a file path or an http(s) URL, got {_kind(src_value)}")
    alt = _text(raw, "alt", path, field_name="image.alt") if not _absent(raw.get("alt")) else ""
    if not alt:
        raise ContentError(path, "image.alt", "is required (describe the image for readers who cannot see it)")
    src = src_value.strip()
    try:
        found = site.media_path(src, near=path.parent)
    except ValueError as exc:
        raise ContentError(path, "image.src", str(exc)) from None
    if found is None and not src.lower().startswith(("http://", "https://")):
        raise ContentError(path, "image.src", f"file not found: {src} (looked next to the article, in content/, "
                                              "the site folder and public/)")
    return Image(src, alt)


def _translation(meta: Mapping[str, Any], path: Path | str, lang: str,
                 languages: tuple[str, ...]) -> TranslationInfo:
    raw = meta.get("translation")
    if _absent(raw):
        raw = {}
    elif isinstance(raw, str):
        raw = {"status": raw}
    if not isinstance(raw, Mapping):
        raise ContentError(path, "translation", f"expected {{status: ..., source: ...}}, got {_kind(raw)}")
    status = _text(raw, "status", path, field_name="translation.status") or "original"
    if status not in TRANSLATION_STATUSES:
        raise ContentError(path, "translation.status",
                           f"unknown status {status!r}; expected one of {', '.join(TRANSLATION_STATUSES)}")
    source: str | None = _text(raw, "source", path, field_name="translation.source") or None
    if source is not None and source not in languages:
        raise ContentError(path, "translation.source", f"unknown language {source!r}")
    if status != "original" and source is None:
        # unsaid: the site's first other language (the other one, on a two-language site)
        source = next((other for other in languages if other != lang), None)
    model = _text(raw, "model", path, field_name="translation.model") or None
    return TranslationInfo(status, source, model)


def article_from_text(text: str, path: Path, site: Site) -> Article:
    """Parse a content file's text; every problem names the file and the field."""
    match = FILE_RE.match(path.name)
    if not match:
        raise ContentError(path, None, "expected a file name like <slug>.<lang>.md, e.g. my-news.en.md")
    file_slug, file_lang = match["slug"], match["lang"]
    meta, body = split_front_matter(text, path)
    for key in MANDATORY_PROPERTIES:
        if meta.get(key) in (None, ""):
            raise ContentError(path, key, "is required")

    languages = site.known_languages
    lang = _text(meta, "lang", path) or file_lang
    if lang not in languages:
        raise ContentError(path, "lang", f"unknown language {lang!r}; expected one of {', '.join(languages)}")
    if lang != file_lang:
        raise ContentError(path, "lang", f"says {lang!r} but the file name says {file_lang!r}")
    slug = _text(meta, "slug", path) or file_slug
    if not SLUG_RE.match(slug):
        raise ContentError(path, "slug", f"{slug!r} must be lower-case letters, digits and hyphens")

    tz = site.timezone
    date = parse_datetime(meta["date"], tz, path, "date")
    updated = parse_datetime(meta["updated"], tz, path, "updated") if not _absent(meta.get("updated")) else None
    if updated is not None and updated < date:
        raise ContentError(path, "updated", "is earlier than date")

    publish_at = None if _absent(meta.get("publish_at")) else parse_datetime(meta["publish_at"], tz, path,
                                                                              "publish_at")
    extra = {k: v for k, v in meta.items() if k not in KNOWN_KEYS}
    return Article(
        slug=slug, lang=lang, title=_text(meta, "title", path, required=True), date=date, body=body.rstrip() + "\n",
        summary=_text(meta, "summary", path), updated=updated, author=_text(meta, "author", path) or None,
        theme=_text(meta, "theme", path) or None, tags=_tags(meta, path), image=_image(meta, path, site),
        url=_url(meta, path, site, lang, slug), translation=_translation(meta, path, lang, languages),
        path=path, extra=extra, publish_at=publish_at,
    )


def load_article(path: Path | str, site: Site) -> Article:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ContentError(path, None, "is a folder, not an article file") from None
    except UnicodeDecodeError:
        raise ContentError(path, None, "is not UTF-8 text") from None
    except OSError as exc:
        raise ContentError(path, None, f"cannot read: {exc.strerror}") from None
    return article_from_text(text, path, site)


def content_files(site: Site) -> list[Path]:
    """Every ``*.md`` under ``content/`` (not hidden), in path order, as ``rglob`` finds them."""
    return [Path(path) for path, _ in _scan_content(site.content_dir)]


def _scan_content(folder: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """``content_files`` as (path, DirEntry) pairs, with ``os.scandir``: a tenth of the time of ``Path.rglob`` on
    a folder of 20,000 files, and the entry's ``stat()`` follows symbolic links as ``Path.stat`` does.
    Symbolic links to folders are not entered (as ``rglob`` does not)."""
    found: list[tuple[str, os.DirEntry[str]]] = []
    pending = [str(folder)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):   # as rglob: skipped
            continue
        for entry in entries:
            if entry.name.endswith(".md") and not entry.name.startswith("."):
                found.append((entry.path, entry))
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
            except OSError:
                continue
    # Path order, part by part: the separator made the lowest character compares as the parts do, and costs
    # no list per path (a path never holds a NUL)
    found.sort(key=lambda pair: pair[0].replace(os.sep, "\0"))
    return found


def _scan_and_stat(folder: Path) -> list[tuple[str, int, int]]:
    """``content_files`` as (path, size, mtime_ns), in the same order (size and time -1 for a file that cannot be
    stat'ed). Each folder is opened once and its files stat'ed relative to it (``fstatat``): the kernel looks up
    one name per file, not the whole path (a quarter less time on 20,000 files); the stat follows symbolic links
    as ``Path.stat`` does. Where ``os.scandir`` takes no descriptor, ``_scan_content``'s entries are stat'ed."""
    if os.scandir not in os.supports_fd or os.stat not in os.supports_dir_fd:
        return [(name, *_stat_entry(entry)) for name, entry in _scan_content(folder)]
    found: list[tuple[str, int, int]] = []
    pending = [str(folder)]
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    while pending:
        path = pending.pop()
        try:
            fd = os.open(path, flags)
        except (FileNotFoundError, NotADirectoryError, PermissionError):   # as rglob: skipped
            continue
        try:
            try:
                entries = list(os.scandir(fd))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            prefix = f"{path}{os.sep}"
            for entry in entries:   # stat'ed while ``fd`` is open: an entry of a descriptor is relative to it
                name = entry.name
                if name.endswith(".md") and not name.startswith("."):
                    found.append((prefix + name, *_stat_entry(entry)))
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(prefix + name)
                except OSError:
                    continue
        finally:
            os.close(fd)
    found.sort(key=lambda row: row[0].replace(os.sep, "\0"))   # as _scan_content sorts
    return found


def _stat_entry(entry: os.DirEntry[str]) -> tuple[int, int]:
    try:
        stat = entry.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def group_stories(articles: list[Article]) -> dict[str, Story]:
    """Group versions by slug; two files giving the same slug in one language is an error."""
    stories: dict[str, Story] = {}
    for article in articles:
        story = stories.setdefault(article.slug, Story(article.slug))
        if article.lang in story.versions:
            first = story.versions[article.lang].path
            raise ContentError(article.path, "slug",
                               f"duplicate slug {article.slug!r} in {article.lang!r}: also used by {first}")
        story.versions[article.lang] = article
    return stories


# --- the content index: each file parsed once per process, and across runs only when it changed -------------

# A file modified this recently may be modified again within the file system's timestamp granularity, keeping
# its size and modification time: it is parsed every time until it is older (git's "racy clean" rule).
RACY_SECONDS = 2.0

# Per process: str(path) -> (size, mtime_ns, context, article). Articles are shared, never changed in place
# (``with_changes`` makes a copy); each load makes its own stories.
_PARSED: dict[str, tuple[int, int, str, Article]] = {}


def index_context(site: Site) -> str:
    """What parsing a file depends on besides its bytes: the site's URL, languages and time zone, and this parser
    (a digest of them: the index keeps it with each of 20,000 entries)."""
    import hashlib
    import json

    described = json.dumps([site.url, site.url_for("xx", "slug"), list(site.known_languages), str(site.timezone),
                            _parser_version()])
    return hashlib.blake2b(described.encode("utf-8"), digest_size=12).hexdigest()


_PARSER_VERSION: list[str] = []


def _parser_version() -> str:
    """A hash of the modules that turn a file into an Article: editing them parses every file again."""
    if not _PARSER_VERSION:
        import hashlib

        import publisher.markup

        digest = hashlib.blake2b(Path(__file__).read_bytes(), digest_size=12)
        digest.update(Path(publisher.markup.__file__).read_bytes())
        _PARSER_VERSION.append(digest.hexdigest())
    return _PARSER_VERSION[0]


def _moment(value: datetime) -> list[Any] | None:
    """A datetime as JSON that gives back an equal one with the same kind of time zone; None if it cannot."""
    from datetime import timezone
    from zoneinfo import ZoneInfo

    if isinstance(value.tzinfo, ZoneInfo):
        return [value.replace(tzinfo=None).isoformat(), value.tzinfo.key, value.fold]
    if isinstance(value.tzinfo, timezone):
        return [value.isoformat(), None, 0]
    return None


def _from_moment(value: list[Any]) -> datetime:
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(value[0])
    if value[1] is not None:
        moment = moment.replace(tzinfo=ZoneInfo(value[1]), fold=value[2])
    return moment


def article_fields(article: Article) -> str | None:
    """The parsed front matter as JSON for the index; None when it would not come back equal (a YAML value of
    its own in ``extra``, an unusual time zone): such a file is parsed every time."""
    import json

    date = _moment(article.date)
    updated = _moment(article.updated) if article.updated is not None else None
    publish_at = _moment(article.publish_at) if article.publish_at is not None else None
    if date is None or (article.updated is not None and updated is None) \
            or (article.publish_at is not None and publish_at is None):
        return None
    try:
        extra = json.dumps(article.extra, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    if json.loads(extra) != article.extra:
        return None
    image = [article.image.src, article.image.alt] if article.image else None
    tr = article.translation
    return json.dumps({
        "slug": article.slug, "lang": article.lang, "title": article.title, "date": date, "updated": updated,
        "summary": article.summary, "author": article.author, "theme": article.theme, "tags": article.tags,
        "image": image, "url": article.url, "translation": [tr.status, tr.source_lang, tr.model],
        "extra": json.loads(extra), "publish_at": publish_at,
    }, ensure_ascii=False)


def article_from_fields(fields: str, body: str, path: Path, site: Site) -> Article | None:
    """The Article an index entry describes, or None when it must be parsed again: the entry cannot be read,
    or its local image is no longer there (parsing says so, naming the file)."""
    import json

    try:
        f = json.loads(fields)
        image = Image(f["image"][0], f["image"][1]) if f["image"] else None
        article = Article(
            slug=f["slug"], lang=f["lang"], title=f["title"], date=_from_moment(f["date"]), body=body,
            summary=f["summary"], updated=_from_moment(f["updated"]) if f["updated"] else None,
            author=f["author"], theme=f["theme"], tags=list(f["tags"]), image=image, url=f["url"],
            translation=TranslationInfo(*f["translation"]), path=path, extra=dict(f["extra"]),
            publish_at=_from_moment(f["publish_at"]) if f["publish_at"] else None,
        )
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return article if _image_still_there(article, site) else None


def _image_still_there(article: Article, site: Site) -> bool:
    """A local image is looked up again (a stat): loading stops at a missing one, as a parse would."""
    image = article.image
    if image is None or image.src.lower().startswith(("http://", "https://")) or article.path is None:
        return True
    try:
        return site.media_path(image.src, near=article.path.parent) is not None
    except ValueError:
        return False


def _open_index(site: Site) -> ContentIndex:
    """The site's content index (a cache file: see ``publisher.store.open_content_index``)."""
    from publisher.store import open_content_index

    return open_content_index(site.state_dir)


@dataclass(frozen=True)
class ContentListing:
    """The files of ``content/`` with their sizes and modification times, and the signature they give: what a
    run needs to tell whether anything changed, without reading a file (``Site.content_signature``)."""

    files: list[tuple[str, int, int]]   # (path, size, mtime_ns); size -1 when the file could not be stat'ed
    signature: str                      # "" when a file is too recent to tell (``RACY_SECONDS``) or unreadable
    trusted_before: int                 # ns: a file modified since may change again unnoticed (not indexed)


def list_content(site: Site) -> ContentListing:
    """``content/`` listed and each file stat'ed (no file is opened): about a tenth of ``load_library``."""
    import hashlib
    import time as clock

    context = index_context(site)
    trusted_before = clock.time_ns() - int(RACY_SECONDS * 1e9)
    signature = hashlib.blake2b(context.encode("utf-8"), digest_size=16)
    racy = False
    files: list[tuple[str, int, int]] = []
    lines: list[str] = []   # hashed at once: one update, not one per file
    for name, size, mtime_ns in _scan_and_stat(site.content_dir):
        files.append((name, size, mtime_ns))
        if size < 0:   # load_article says what is wrong with it
            racy = True
            continue
        lines.append(f"{name}\0{size}\0{mtime_ns}\n")
        racy = racy or mtime_ns >= trusted_before
    signature.update("".join(lines).encode("utf-8", "surrogateescape"))
    return ContentListing(files, "" if racy else signature.hexdigest(), trusted_before)


def load_library(site: Site, listing: ContentListing | None = None) -> Library:
    """Every article in ``content/`` (the files of ``listing``, default a new one). A file is read only when
    this process has not parsed it yet and the content index has no entry for its size and modification time:
    unchanged files come from the index."""
    from publisher.errors import StorageError

    if listing is None:
        listing = list_content(site)
    prefix = f"{site.content_dir}{os.sep}"
    context = index_context(site)
    trusted_before = listing.trusted_before
    found: dict[int, Article] = {}
    missed: list[tuple[int, Path, int, int, str]] = []   # (position, path, size, mtime_ns, key in the index)
    names = [name for name, _, _ in listing.files]
    for position, (name, size, mtime_ns) in enumerate(listing.files):
        if size < 0:
            missed.append((position, Path(name), -1, -1, ""))
            continue
        known = _PARSED.get(name)
        if known is not None and known[:3] == (size, mtime_ns, context) and _image_still_there(known[3], site):
            found[position] = known[3]
        else:
            missed.append((position, Path(name), size, mtime_ns, _relative_key(prefix, name)))
    if missed:
        index: ContentIndex | None = _open_index(site)
        try:
            try:
                entries = index.get_many(key for *_, key in missed if key) if index is not None else {}
            except (StorageError, OSError):   # a cache that cannot be read: every file is parsed
                index, entries = None, {}
            fresh = []
            for position, path, size, mtime_ns, key in missed:
                entry = entries.get(key)
                article = None
                if entry is not None and (entry.size, entry.mtime_ns, entry.context) == (size, mtime_ns, context):
                    article = article_from_fields(entry.fields, entry.body, path, site)
                if article is None:
                    article = load_article(path, site)
                    fields = article_fields(article) if key and mtime_ns < trusted_before else None
                    if fields is not None:
                        from publisher.store import IndexedFile

                        fresh.append(IndexedFile(key, size, mtime_ns, context, fields, article.body,
                                                 _index_entry(key, size, mtime_ns, context, article)))
                if key and mtime_ns < trusted_before:
                    _PARSED[names[position]] = (size, mtime_ns, context, article)   # str(path): 15 us
                found[position] = article
            if index is not None:
                try:
                    if fresh:
                        index.put_many(fresh)
                        # something changed: forget the files deleted since (their entries would only take room)
                        index.keep_only(key for key in (_relative_key(prefix, name) for name, _, _ in listing.files)
                                        if key)
                except (StorageError, OSError):
                    pass   # a cache that cannot be written costs time next run, nothing else
        finally:
            if index is not None:
                index.close()
    return Library(group_stories([found[position] for position in range(len(listing.files))]),
                   signature=listing.signature)


# --- the site listed from the index: what a publish reads ---------------------------------------------------


@lru_cache(maxsize=256)
def _translation_info(status: str, source_lang: str | None, model: str | None) -> TranslationInfo:
    return TranslationInfo(status, source_lang, model)   # a site has a few kinds: one object each


def _index_entry(key: str, size: int, mtime_ns: int, context: str, article: Article) -> IndexEntry | None:
    """The index's listing of a parsed file (None when its date cannot be kept: such a file is parsed again)."""
    import json

    from publisher.store import IndexEntry

    date = _moment(article.date)
    if date is None:
        return None
    # "ISO|zone key|fold" for a named zone, else the ISO time with its offset: no JSON to decode 20,000 times
    text = f"{date[0]}|{date[1]}|{date[2]}" if date[1] is not None else str(date[0])
    tr = article.translation
    return IndexEntry(key, size, mtime_ns, context, article.slug, article.lang, article.title, text,
                      article.summary, article.theme, article.url, tr.status, tr.source_lang, tr.model)


def _listed(entry: IndexEntry, file: str) -> ArticleEntry | None:
    try:
        if "|" in entry.date:
            moment, zone, fold = entry.date.split("|")
            date = _from_moment([moment, zone, int(fold)])
        else:
            date = datetime.fromisoformat(entry.date)
    except (ValueError, TypeError, KeyError):
        return None
    return ArticleEntry(entry.slug, entry.lang, entry.title, date, entry.summary, entry.theme, entry.url,
                        _translation_info(entry.status, entry.source_lang, entry.model), file, entry.size,
                        entry.mtime_ns)


class Catalog:
    """Every content file of a site, listed: parsed ``Article``s for the files this process read, and
    ``ArticleEntry``s (no body) for those the content index had unchanged. What a publish of one article needs of
    the other 20,000 versions (which are published where, their titles and dates); ``full`` makes the whole
    ``Article`` of only the versions rendered in full (a feed's newest entries, the pages rewritten).

    ``stories``: slug -> lang -> version, in the order ``load_library`` groups them (a slug given twice in one
    language is the same ``ContentError``)."""

    def __init__(self, site: Site, listed: Sequence[Listed], *, signature: str = "", trusted_before: int = 0,
                 files: Sequence[str] | None = None) -> None:
        self.site = site
        self.signature = signature
        self.stories: dict[str, dict[str, Listed]] = {}
        self._trusted_before = trusted_before
        self._full: dict[str, Article] = {}
        # each version by the path it was listed at (``files``, in the same order), else made when asked
        self._files = files
        self._by_file: dict[str, Listed] | None = None
        self._listed = listed
        for version in listed:
            versions = self.stories.setdefault(version.slug, {})
            if version.lang in versions:
                raise ContentError(_path_of(version), "slug", f"duplicate slug {version.slug!r} in {version.lang!r}: "
                                   f"also used by {_path_of(versions[version.lang])}")
            versions[version.lang] = version

    def full(self, versions: Iterable[Listed]) -> list[Article]:
        """The whole ``Article`` of each version (from the index, one look-up for all; a file whose entry no
        longer reads, or whose local image is gone, is parsed, and says what is wrong with it)."""
        chosen = list(versions)
        missing = [v for v in chosen if isinstance(v, ArticleEntry) and v.file not in self._full]
        if missing:
            self._resolve(missing)
        whole: list[Article] = []
        for version in chosen:
            if isinstance(version, ArticleEntry):
                whole.append(self._full[version.file])
            elif isinstance(version, Article):
                whole.append(version)
            else:
                raise TypeError(f"not a version this catalog lists: {version!r}")
        return whole

    def _resolve(self, entries: list[ArticleEntry]) -> None:
        from publisher.errors import StorageError

        prefix = f"{self.site.content_dir}{os.sep}"
        context = index_context(self.site)
        keys = {entry.file: _relative_key(prefix, entry.file) for entry in entries}
        index = _open_index(self.site)
        try:
            found = index.get_many(key for key in keys.values() if key)
        except (StorageError, OSError):
            found = {}
        finally:
            index.close()
        for entry in entries:
            indexed = found.get(keys[entry.file])
            size, mtime_ns = entry.size, entry.mtime_ns
            article = None
            if indexed is not None and (indexed.size, indexed.mtime_ns, indexed.context) == (size, mtime_ns, context):
                article = article_from_fields(indexed.fields, indexed.body, entry.path, self.site)
            if article is None:
                article = load_article(entry.path, self.site)
            if 0 <= mtime_ns < self._trusted_before:
                _PARSED[entry.file] = (size, mtime_ns, context, article)
            self._full[entry.file] = article

    def story(self, slug: str) -> Story:
        """The story of ``slug`` with its whole Articles (NotFound without one)."""
        return self.full_stories([slug])[0]

    def full_stories(self, slugs: Iterable[str]) -> list[Story]:
        """The stories of ``slugs``, their versions made whole in one look-up."""
        wanted = list(dict.fromkeys(slugs))
        for slug in wanted:
            if slug not in self.stories:
                raise NotFound(f"no article with slug {slug!r}")
        self.full(v for slug in wanted for v in self.stories[slug].values())
        return [Story(slug, dict(zip(self.stories[slug], self.full(self.stories[slug].values()))))
                for slug in wanted]

    def library(self) -> Library:
        """Every version made whole: the ``Library`` these files give."""
        return Library({story.slug: story for story in self.full_stories(self.stories)}, signature=self.signature)

    def listed(self) -> Iterator[Listed]:
        for versions in self.stories.values():
            yield from versions.values()

    def at(self, path: str) -> Listed | None:
        """The version listed at ``path`` (as ``str(Path)`` gives it), if any."""
        if self._by_file is None:
            names = self._files if self._files is not None else [str(_path_of(v)) for v in self._listed]
            self._by_file = dict(zip(names, self._listed))
        return self._by_file.get(path)


def _path_of(version: Listed) -> Path | None:
    return version.path if isinstance(version, (Article, ArticleEntry)) else None


def catalog_of(site: Site, library: Library) -> Catalog:
    """The ``Catalog`` of a library already loaded (every version whole)."""
    catalog = Catalog(site, [v for story in library.stories.values() for v in story.versions.values()],
                      signature=library.signature)
    return catalog


def load_catalog(site: Site, listing: ContentListing | None = None) -> Catalog:
    """Every file of ``content/`` (those of ``listing``, default a new one), each as this process parsed it,
    else as the content index lists it when unchanged (no body read), else parsed (and indexed). One pass over
    the files: the index is read at the first file this process has not parsed (every file, in a new one)."""
    from publisher.errors import StorageError

    if listing is None:
        listing = list_content(site)
    prefix = f"{site.content_dir}{os.sep}"
    context = index_context(site)
    trusted_before = listing.trusted_before
    versions: list[Listed] = []
    names: list[str] = []
    fresh: list[IndexedFile] = []
    index: ContentIndex | None = None
    indexed: dict[str, IndexEntry] | None = None   # None: not read yet
    parsed = _PARSED.get
    try:
        for name, size, mtime_ns in listing.files:
            known = parsed(name)
            if size >= 0 and known is not None and known[:3] == (size, mtime_ns, context) \
                    and _image_still_there(known[3], site):
                versions.append(known[3])
                names.append(name)
                continue
            if indexed is None:
                index = _open_index(site)
                try:
                    indexed = index.entries()
                except (StorageError, OSError):   # a cache that cannot be read: every file is parsed
                    index, indexed = None, {}
            key = _relative_key(prefix, name) if size >= 0 else ""
            entry = indexed.get(key) if key else None
            listed: Listed | None = None
            if entry is not None and (entry.size, entry.mtime_ns, entry.context) == (size, mtime_ns, context):
                listed = _listed(entry, name)
            if listed is None:
                article = load_article(Path(name), site)
                if key and mtime_ns < trusted_before:
                    fields = article_fields(article)
                    if fields is not None:
                        from publisher.store import IndexedFile

                        fresh.append(IndexedFile(key, size, mtime_ns, context, fields, article.body,
                                                 _index_entry(key, size, mtime_ns, context, article)))
                    _PARSED[name] = (size, mtime_ns, context, article)
                listed = article
            versions.append(listed)
            names.append(name)
        if index is not None and fresh:
            try:
                index.put_many(fresh)
                # forget the files deleted since (their entries would only take room), when there are any
                present = {_relative_key(prefix, name) for name, _, _ in listing.files} - {""}
                if not present.issuperset(indexed or ()):
                    index.keep_only(present)
            except (StorageError, OSError):
                pass   # a cache that cannot be written costs time next run, nothing else
    finally:
        if index is not None:
            index.close()
    return Catalog(site, versions, signature=listing.signature, trusted_before=trusted_before, files=names)


def _relative_key(prefix: str, text: str) -> str:
    """The path ``text`` relative to ``prefix`` (``content/`` and a separator), POSIX; "" outside it (a string
    prefix: ``Path.relative_to`` costs 20 us a file)."""
    if not text.startswith(prefix):
        return ""
    return text[len(prefix):].replace(os.sep, "/")


def load_stories(paths: list[Path], site: Site) -> list[Story]:
    """The stories that the given files or folders belong to, each with every language found in the site.

    No paths means every article in ``content/``; a relative path is tried against the site folder too.
    """
    catalog = site.catalog()
    # every file under content/ was just listed; only a file outside it is read again
    content_dir = site.content_dir.resolve()

    def known(file: Path) -> Listed | None:
        found = catalog.at(str(file))
        if found is None:
            resolved = file.resolve()
            if resolved.is_relative_to(content_dir):
                found = catalog.at(str(site.content_dir / resolved.relative_to(content_dir)))
        return found
    chosen: dict[str, Story | None] = {}   # None: the story is the catalog's, made whole below
    for raw in paths or [site.content_dir]:
        path = Path(raw)
        if not path.exists() and not path.is_absolute() and (site.root / path).exists():
            path = site.root / path  # "content/x.en.md" relative to the site folder
        if path.is_dir():
            files = sorted(path.rglob("*.md"))
            if not files and paths:   # a folder named on purpose that holds no article is a mistake, said aloud
                raise NotFound(f"{path}: no content files (<slug>.<lang>.md) in this folder")
        elif path.exists():
            files = [path]
        else:
            raise NotFound(f"{path}: file not found")
        for file in files:
            listed = known(file)
            if listed is not None or (article := load_article(file, site)).slug in catalog.stories:
                chosen[listed.slug if listed is not None else article.slug] = None
            else:
                chosen[article.slug] = Story(article.slug, {article.lang: article})
    whole = {story.slug: story for story in catalog.full_stories(slug for slug, s in chosen.items() if s is None)}
    return [story if story is not None else whole[slug] for slug, story in chosen.items()]


# --- writing ----------------------------------------------------------------------------------------------


def article_front_matter(article: Article) -> dict[str, Any]:
    meta: dict[str, Any] = {"title": article.title, "date": article.date.isoformat()}
    if article.updated:
        meta["updated"] = article.updated.isoformat()
    if article.summary:
        meta["summary"] = article.summary
    if article.author:
        meta["author"] = article.author
    if article.theme:
        meta["theme"] = article.theme
    if article.tags:
        meta["tags"] = list(article.tags)
    if article.image:
        meta["image"] = {"src": article.image.src, "alt": article.image.alt}
    if article.translation.status != "original":
        tr: dict[str, Any] = {"status": article.translation.status, "source": article.translation.source_lang}
        if article.translation.model:
            tr["model"] = article.translation.model
        meta["translation"] = tr
    if article.publish_at:
        meta["publish_at"] = article.publish_at.isoformat()
    meta.update(article.extra)
    return meta


def dump_article(article: Article) -> str:
    import yaml

    front = yaml.safe_dump(article_front_matter(article), allow_unicode=True, sort_keys=False, width=100)
    return f"---\n{front}---\n\n{article.body.strip()}\n"


def article_path(site: Site, slug: str, lang: str) -> Path:
    return site.content_dir / f"{slug}.{lang}.md"


def write_article(article: Article, path: Path, *, force: bool = False) -> Path:
    """Write atomically; an existing file is only replaced with ``force``."""
    from publisher.fsutil import atomic_write_text

    if path.exists() and not force:
        raise PublisherError(f"{path}: already exists (use --force to overwrite)")
    return atomic_write_text(path, dump_article(article))
