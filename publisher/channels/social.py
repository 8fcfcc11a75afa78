"""``SocialChannel``: the base of every social network channel, which never posts the same article twice.

A platform module (x.py, mastodon.py, ...) subclasses ``SocialChannel`` and writes four small hooks:

- ``length_rule(account)``: how the platform measures a post (``publisher.formatters.social``);
- ``open_client(account)``: the platform's client library, logged in as ``account``;
- ``send(client, post, ...)``: make one post (or thread part) and return its ``RemotePost``, translating the
  library's errors into ``RateLimited``, ``OutcomeUnknown``, ``DuplicatePost`` or ``PostNotSent``;
- ``recent_posts(client, account)``: the account's latest posts, or ``None`` where the API cannot list them.

Accounts per language. Settings are ``<PREFIX>_<FIELD>`` for the default account and ``<PREFIX>_EN_<FIELD>`` /
``<PREFIX>_KO_<FIELD>`` for an account of one language (``X_API_KEY``, ``X_KO_API_KEY``). A post in language L
goes to L's account when all of its fields are set, else to the default account, else to the JSON outbox
(``outbox/<channel>/<slug>.<lang>.json``). The ledger target is the account's label: ``default``, ``en`` or ``ko``.

Never a duplicate. One ledger row per (article, language, channel, account); its ``detail`` holds the ids of
the thread parts posted so far (``{"parts": [{"id", "url"}], "total": 3}``):

- ``sent`` is never posted again unless ``--force``;
- 429: wait until the reset (``SOCIAL_RATE_LIMIT_MAX_WAIT`` seconds at most) and retry, at most
  ``SOCIAL_RATE_LIMIT_RETRIES`` times; after that the row is ``failed`` (nothing was posted, so a later run retries);
- a 5xx or a timeout after the request left: ``unconfirmed``, and so is a row left ``in_flight`` by a crash.
  Neither is retried unless ``publish --retry-unconfirmed``, which first looks for the post among the account's
  recent posts (by the article's URL, else by its text) and posts only if it is absent;
- a platform's "duplicate content" refusal counts as posted;
- a thread resumes after its last posted part.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from publisher.channels.base import Channel, DeliveryReport, PublishContext, Rendition
from publisher.errors import ChannelError, ConfigError
from publisher.settings import Setting

if TYPE_CHECKING:
    from publisher.article import Article, Story
    from publisher.formatters.social import LengthRule, LongTextMode, PostText
    from publisher.delivery import DeliveryKey

ACCOUNT_LANGUAGES: tuple[str, ...] = ("en", "ko")
DEFAULT_ACCOUNT = "default"
OUTBOX_TARGET = "outbox"


# --- what a platform hook returns or raises ---------------------------------------------------------------


@dataclass(frozen=True)
class SocialAccount:
    """One account on one platform: its label (the ledger target) and its credentials by field name."""

    channel: str
    label: str  # "default", "en" or "ko"
    credentials: dict[str, str]

    def __getitem__(self, field: str) -> str:
        return self.credentials[field]

    def get(self, field: str, default: str | None = None) -> str | None:
        return self.credentials.get(field, default)

    def __repr__(self) -> str:  # credentials are secrets: never in a log or a traceback
        return f"SocialAccount({self.channel!r}, {self.label!r})"


@dataclass(frozen=True)
class RemotePost:
    """A post on the platform: its id and address, and (from ``recent_posts``) its text and links."""

    id: str
    url: str | None = None
    text: str = ""
    links: tuple[str, ...] = ()

    def as_detail(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url}


class SocialPostError(ChannelError):
    """A post could not be made; the subclass says whether it may have been made anyway."""


class PostNotSent(SocialPostError):
    """The platform refused the post or it never left (4xx, connection refused): safe to try again later."""


class OutcomeUnknown(SocialPostError):
    """A 5xx or a timeout after the request left: the post may exist. Never retried blindly."""


class RateLimited(SocialPostError):
    """429: nothing was posted; ``reset_at`` (Unix time) is when the platform accepts posts again, if it said."""

    def __init__(self, message: str, reset_at: float | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


class DuplicatePost(SocialPostError):
    """The platform refused the text as already posted (X's 403); ``existing`` is that post when known."""

    def __init__(self, message: str, existing: RemotePost | None = None) -> None:
        super().__init__(message)
        self.existing = existing


# --- settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialField:
    """One credential of an account, e.g. ``CredentialField("API_KEY", "X API key (consumer key)")``."""

    name: str
    help: str
    secret: bool = True
    parse: Callable[[str], Any] = str


def account_settings(prefix: str, fields: Sequence[CredentialField], platform: str) -> tuple[Setting, ...]:
    """The settings of the default account and of one account per language: X_API_KEY, X_EN_API_KEY, X_KO_API_KEY."""
    declared: list[Setting] = []
    for lang in (None, *ACCOUNT_LANGUAGES):
        for field in fields:
            if lang is None:
                help_text = f"{field.help}, for the default {platform} account (posts in any language)."
            else:
                language = {"en": "English", "ko": "Korean"}[lang]
                help_text = f"{field.help}, for the {language} {platform} account (posts in {language})."
            declared.append(Setting(_setting_name(prefix, lang, field.name), help_text, secret=field.secret,
                                    parse=field.parse))
    return tuple(declared)


def _setting_name(prefix: str, lang: str | None, field: str) -> str:
    return f"{prefix}_{lang.upper()}_{field}" if lang else f"{prefix}_{field}"


def idempotency_key(key: DeliveryKey, part: int, generation: int = 0) -> str:
    """A stable key for one post of one ledger row: the same request retried is recognised by the platform.

    ``generation`` grows with each ``--force`` re-post, so a deliberate second post is not taken for a retry.
    """
    return hashlib.sha256(f"{key}/part-{part}/generation-{generation}".encode()).hexdigest()[:32]


def _comparable_text(text: str) -> str:
    """Text as a platform may give it back: without URLs (X shortens them), markup or spacing differences."""
    from publisher.formatters.social import find_urls

    spans = find_urls(text)
    for start, end in reversed(spans):
        text = text[:start] + " " + text[end:]
    return " ".join(re.sub(r"[…\s]+", " ", text).split()).casefold()


def network_failure(exc: BaseException, action: str = "post") -> SocialPostError:
    """A network error from requests or httpx as ``PostNotSent`` (the request never left: no connection,
    TLS refused, connect timeout) or ``OutcomeUnknown`` (it may have arrived: read timeout, dropped connection)."""
    never_left: list[type[BaseException]] = []
    try:
        import requests
        import urllib3.exceptions

        never_left += [requests.exceptions.ConnectTimeout, requests.exceptions.SSLError,
                       urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError]
    except ImportError:  # pragma: no cover - requests is a dependency
        pass
    try:
        import httpx

        never_left += [httpx.ConnectError, httpx.ConnectTimeout]
    except ImportError:  # pragma: no cover - httpx is a dependency
        pass
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, tuple(never_left)):
            return PostNotSent(f"could not {action}: no connection ({type(current).__name__})")
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return OutcomeUnknown(f"no answer to the {action} ({type(exc).__name__}); it may have been made")


@dataclass(frozen=True)
class LocalImage:
    """An article's image read from disk, for upload."""

    data: bytes
    filename: str
    alt: str
    media_type: str


# --- the base class ---------------------------------------------------------------------------------------


class SocialChannel(Channel):
    """A social network: posts per language to the account of that language, each recorded in the ledger."""

    setting_prefix: ClassVar[str] = ""  # "X", "MASTODON"
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    #: the tests make waits instant by replacing these two on the instance
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.credential_fields and "required" not in cls.__dict__:
            cls.required = cls._declared_required()

    # --- hooks a platform writes ---------------------------------------------------------------------
    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        """How this platform measures a post for ``account`` (``None``: the outbox)."""
        raise NotImplementedError

    def long_text_mode(self) -> LongTextMode:
        """What to do with a post over the limit: ``shorten`` it, or post a numbered ``thread``."""
        return "shorten"

    def open_client(self, account: SocialAccount) -> Any:
        """The platform's client, logged in as ``account``. Called only when a post is to be made, before the
        posts are formatted, so it may ask the platform for its limits."""
        raise NotImplementedError

    def send(self, client: Any, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str) -> RemotePost:
        """Make one post (``reply_to`` is the previous thread part). Raise a ``SocialPostError`` on failure."""
        raise NotImplementedError

    def recent_posts(self, client: Any, account: SocialAccount) -> list[RemotePost] | None:
        """The account's latest posts (text and links), or ``None`` where the API cannot list them."""
        return None

    def outbox_payload(self, article: Article, posts: Sequence[PostText]) -> dict[str, Any]:
        """What the JSON outbox file holds; a platform may add its own fields (facets, link card)."""
        return {
            "channel": self.name, "article": article.slug, "lang": article.lang, "url": article.url,
            "posts": [{"text": p.text, "length": p.length, "limit": p.limit} for p in posts],
            "image": ({"src": article.image.src, "alt": article.image.alt} if article.image else None),
            "note": f"not posted: set {', '.join(self.required)} (or the _EN_/_KO_ variants) to post",
        }

    # --- accounts ------------------------------------------------------------------------------------
    @classmethod
    def _declared_required(cls) -> tuple[str, ...]:
        return tuple(_setting_name(cls.setting_prefix, None, f.name) for f in cls.credential_fields)

    def account_for(self, lang: str) -> SocialAccount | None:
        """The account that posts in ``lang``: its own, else the default one, else None (the outbox)."""
        for label in (lang, DEFAULT_ACCOUNT):
            if label != DEFAULT_ACCOUNT and label not in ACCOUNT_LANGUAGES:
                continue
            account = self._account(None if label == DEFAULT_ACCOUNT else label)
            if account is not None:
                return account
        return None

    def accounts(self) -> list[SocialAccount]:
        """Every configured account."""
        found = [self._account(lang) for lang in (None, *ACCOUNT_LANGUAGES)]
        return [account for account in found if account is not None]

    def _account(self, lang: str | None) -> SocialAccount | None:
        names = {f.name: _setting_name(self.setting_prefix, lang, f.name) for f in self.credential_fields}
        given = {field: name for field, name in names.items() if self.config.is_set(name)}
        if not given:
            return None
        missing = [name for field, name in names.items() if field not in given]
        if missing:
            first_given = next(iter(given.values()))
            raise ConfigError(missing[0], f"is required because {first_given} is set", None)
        credentials = {field: str(self.option(name)) for field, name in names.items()}
        return SocialAccount(self.name, lang or DEFAULT_ACCOUNT, credentials)

    def option(self, name: str) -> Any:
        """The parsed value of one of this channel's settings (its declared parser and choices applied)."""
        for setting in self.settings:
            if setting.name == name:
                return self.config.get(setting)
        return self.config.get(name)

    def is_configured(self) -> bool:
        return bool(self.accounts())

    def missing_settings(self) -> list[str]:
        return [] if self.is_configured() else list(self._declared_required())

    def fallback_description(self) -> str:
        return f"JSON files in outbox/{self.name}/"

    # --- formatting ----------------------------------------------------------------------------------
    def format_posts(self, article: Article, account: SocialAccount | None) -> list[PostText]:
        """The posts (thread parts) for ``article`` on ``account``, each within the platform's limit."""
        from publisher.formatters.social import SocialFormatter

        formatter = SocialFormatter(self.site.templates, self.name, self.length_rule(account),
                                    long_text=self.long_text_mode())
        try:
            return formatter.posts(article)
        except ValueError as exc:
            raise ChannelError(f"{self.name}: {article.slug}.{article.lang}: {exc}") from None

    def render(self, story: Story, langs: Sequence[str]) -> list[Rendition]:
        renditions = []
        for lang in langs:
            article = story.get(lang)
            if article is None:
                continue
            account = self.account_for(lang)
            target = account.label if account else OUTBOX_TARGET
            for post in self.format_posts(article, account):
                renditions.append(Rendition(
                    channel=self.name, lang=lang, target=target, filename=f"post-{post.part}.txt",
                    content=post.text, media_type="text/plain",
                    meta={"length": post.length, "limit": post.limit, "part": post.part, "parts": post.parts,
                          "account": target},
                ))
        return renditions

    # --- publishing ----------------------------------------------------------------------------------
    def publish(self, story: Story, langs: Sequence[str], ctx: PublishContext) -> list[DeliveryReport]:
        reports = []
        for lang in langs:
            article = story.get(lang)
            if article is None:
                continue
            account = self.account_for(lang)
            if account is None:
                reports.append(self._publish_to_outbox(article, ctx))
            else:
                reports.append(self._publish_to_account(article, account, ctx))
        return reports

    def _report(self, article: Article, where: str, state: str, note: str = "") -> DeliveryReport:
        return DeliveryReport(article.slug, article.lang, self.name, where, state, note)

    def _publish_to_outbox(self, article: Article, ctx: PublishContext) -> DeliveryReport:
        from publisher.channels.outbox import write_json_outbox
        from publisher.delivery import DeliveryKey

        key = DeliveryKey(article.slug, article.lang, self.name, OUTBOX_TARGET)
        where = f"outbox/{self.name}/"
        row = ctx.ledger.get(key)
        if row is not None and row.state == "sent" and not ctx.force:
            return self._report(article, where, "sent", f"already written: {row.remote_url}")
        posts = self.format_posts(article, None)
        if ctx.dry_run:
            return self._report(article, where, "pending", f"dry run: would write {len(posts)} post(s)")
        ctx.ledger.begin(key)
        path = write_json_outbox(self.site, self.name, f"{article.slug}.{article.lang}",
                                 self.outbox_payload(article, posts))
        shown = _relative(path, self.site.root)
        ctx.ledger.mark(key, "sent", remote_url=shown)
        return self._report(article, shown, "sent", "written locally; not posted")

    def _publish_to_account(self, article: Article, account: SocialAccount, ctx: PublishContext) -> DeliveryReport:
        from publisher.delivery import DeliveryKey

        key = DeliveryKey(article.slug, article.lang, self.name, account.label)
        where = f"{self.name}:{account.label}"
        row = ctx.ledger.get(key)
        done: list[RemotePost] = []
        generation = int(row.detail.get("generation", 0)) if row is not None else 0
        if row is not None and row.state == "sent" and not ctx.force:
            return self._report(article, row.remote_url or where, "sent", "already posted")
        # --force posts anew, even over a post in doubt; a new generation of idempotency keys says so.
        fresh = ctx.force and row is not None and row.state in ("sent", "unconfirmed", "in_flight")
        if fresh:
            generation += 1
        elif row is not None:  # a thread resumes after its last posted part
            done = [RemotePost(p["id"], p.get("url")) for p in row.detail.get("parts", [])]
        in_doubt = not fresh and row is not None and row.state in ("unconfirmed", "in_flight")
        if in_doubt and not ctx.retry_unconfirmed:
            return self._report(article, where, "unconfirmed",
                                "the post may exist: check the account, then run publish --retry-unconfirmed")
        if ctx.dry_run:
            posts = self.format_posts(article, account)
            return self._report(article, where, "pending",
                                f"dry run: would post {len(posts) - len(done)} of {len(posts)} post(s)")

        client = self.open_client(account)  # may learn the platform's limit (Mastodon's max_characters)
        posts = self.format_posts(article, account)
        note = ""
        if in_doubt and len(done) < len(posts):
            try:
                found = self._find_existing(client, account, article, posts[len(done)])
            except SocialPostError as exc:  # could not check, so still in doubt: post nothing
                return self._report(article, where, "unconfirmed", f"could not check recent posts: {exc}")
            if found is None:
                note = "not found among recent posts, so posted"
            elif found is _LOOKUP_UNSUPPORTED:
                note = "posted again at your request (the platform cannot list recent posts)"
            else:
                done.append(found)
                note = "found among recent posts; not posted again"

        before = ctx.ledger.begin(key)
        if before.state != (row.state if row is not None else "pending"):
            # Another publish run got here between our read and begin(): never post in parallel with it.
            if before.state == "sent":
                ctx.ledger.mark(key, "sent", error=None)  # undo begin(); id, URL and parts are kept
                return self._report(article, before.remote_url or where, "sent", "already posted by another run")
            return self._report(article, where, "unconfirmed", "another publish run is posting this right now")
        progress = _Progress(ctx, key, posts, generation)
        for post in posts[len(done):]:
            reply_to = done[-1] if done else None
            try:
                remote = self._send_within_rate_limit(client, article, post, reply_to,
                                                      idempotency_key(key, post.part, generation))
            except DuplicatePost as exc:
                remote = exc.existing or self._lookup_or_none(client, account, article, post)
                if remote is None:
                    if post.part < post.parts:  # later parts must reply to this one, whose id is unknown
                        progress.mark("unconfirmed", done, error=str(exc))
                        return self._report(article, where, "unconfirmed",
                                            f"part {post.part} refused as a duplicate and not found; check it")
                    done.append(RemotePost("", None))
                    note = f"already posted ({exc})"
                    continue
            except RateLimited as exc:
                progress.mark("failed", done, error=str(exc))
                return self._report(article, where, "failed", f"{exc}; nothing posted, run publish again later")
            except OutcomeUnknown as exc:
                progress.mark("unconfirmed", done, error=str(exc))
                return self._report(article, where, "unconfirmed",
                                    f"{exc}; the post may exist: check, then publish --retry-unconfirmed")
            except PostNotSent as exc:
                progress.mark("failed", done, error=str(exc))
                return self._report(article, where, "failed", str(exc))
            done.append(remote)
            if len(done) < len(posts):  # progress survives a crash between two thread parts
                progress.mark("in_flight", done)
        first = next((p for p in done if p.id), None)
        progress.mark("sent", done, remote=first)
        return self._report(article, (first.url if first and first.url else where), "sent", note)

    def _send_within_rate_limit(self, client: Any, article: Article, post: PostText,
                                reply_to: RemotePost | None, key: str) -> RemotePost:
        retries = int(self.config.get("SOCIAL_RATE_LIMIT_RETRIES") or 0)
        max_wait = float(self.config.get("SOCIAL_RATE_LIMIT_MAX_WAIT") or 0)
        attempt = 0
        while True:
            try:
                return self.send(client, article, post, reply_to=reply_to, idempotency_key=key)
            except RateLimited as exc:
                wait = 60.0 if exc.reset_at is None else max(0.0, exc.reset_at - self.clock()) + 1.0
                if attempt >= retries or wait > max_wait:
                    raise RateLimited(f"rate limited ({exc}); gave up after {attempt} retr{'y' if attempt == 1 else 'ies'}",
                                      exc.reset_at) from None
                self.sleep(wait)
                attempt += 1

    def _lookup_or_none(self, client: Any, account: SocialAccount, article: Article,
                        post: PostText) -> RemotePost | None:
        try:
            found = self._find_existing(client, account, article, post)
        except SocialPostError:
            return None
        return found if isinstance(found, RemotePost) else None

    def _find_existing(self, client: Any, account: SocialAccount, article: Article,
                       post: PostText) -> RemotePost | None | object:
        """The post among the account's recent ones (by the article's URL, else by text), None, or unsupported."""
        recent = self.recent_posts(client, account)
        if recent is None:
            return _LOOKUP_UNSUPPORTED
        wanted_text = _comparable_text(post.text)
        wanted_url = article.url.rstrip("/")
        for remote in recent:
            if article.url in post.text:
                links = {link.rstrip("/") for link in remote.links}
                if wanted_url in links or wanted_url in remote.text:
                    return remote
            elif wanted_text and _comparable_text(remote.text) == wanted_text:
                return remote
        return None

    # --- helpers for platforms -----------------------------------------------------------------------
    @property
    def http_timeout(self) -> float:
        """Seconds to wait for an answer (``SOCIAL_HTTP_TIMEOUT``); a later answer leaves the post unconfirmed."""
        return float(self.config.get("SOCIAL_HTTP_TIMEOUT") or 30.0)

    def load_image(self, article: Article) -> LocalImage | None:
        """The article's image from disk (``Site.media_path``'s rule); None if remote or absent."""
        import mimetypes

        if article.image is None:
            return None
        try:
            found = self.site.media_path(article.image.src, near=article.path.parent if article.path else None)
        except ValueError:
            raise PostNotSent(f"image {article.image.src}: must stay inside the site folder") from None
        if found is None:
            return None
        media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return LocalImage(found.read_bytes(), found.name, article.image.alt, media_type)


@dataclass
class _Progress:
    """Writes a ledger row's state with the thread parts posted so far."""

    ctx: PublishContext
    key: DeliveryKey
    posts: Sequence[PostText]
    generation: int

    def mark(self, state: str, done: Sequence[RemotePost], *,
             error: str | None = None, remote: RemotePost | None = None) -> None:
        detail = {"parts": [p.as_detail() for p in done], "total": len(self.posts), "generation": self.generation}
        self.ctx.ledger.mark(self.key, state, remote_id=remote.id if remote else None,
                             remote_url=remote.url if remote else None, error=error, detail=detail)


class _LookupUnsupported:
    def __repr__(self) -> str:
        return "LOOKUP_UNSUPPORTED"


_LOOKUP_UNSUPPORTED: Any = _LookupUnsupported()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


__all__ = [
    "ACCOUNT_LANGUAGES", "CredentialField", "DuplicatePost", "LocalImage", "OutcomeUnknown", "PostNotSent",
    "RateLimited", "RemotePost", "SocialAccount", "SocialChannel", "SocialPostError", "account_settings",
    "idempotency_key", "network_failure",
]
