"""``SocialChannel``: the base of every social network channel: a post thread per language and account.

A platform module (x.py, mastodon.py, ...) subclasses ``SocialChannel`` and writes four small hooks:

- ``length_rule(account)``: how the platform measures a post (``publisher.formatters.social``);
- ``open_client(account)``: the platform's client library, logged in as ``account``;
- ``post(client, article, post, ...)``: make one post (or thread part) and return its ``RemotePost``, translating
  the library's errors into ``RateLimited``, ``OutcomeUnknown``, ``DuplicatePost`` or ``PostNotSent``;
- ``recent_posts(client, account)``: the account's latest posts, or ``None`` where the API cannot list them.

Accounts per language. Settings are ``<PREFIX>_<FIELD>`` for the default account and ``<PREFIX>_<LANG>_<FIELD>``
for an account of one of the site's languages (``PUBLISHER_LANGUAGES``): ``X_API_KEY``, ``X_KO_API_KEY``. A post
in language L goes to L's account when all of its fields are set, else to the default account, else to the JSON
outbox (``outbox/<channel>/<slug>.<lang>.json``). The delivery's target is the account's label: ``default`` or the
language code (``en``, ``ko``), or ``outbox``.

Never a duplicate. The pipeline keeps one delivery row per (article, language, channel, account), claims it
before ``send`` and records the ``Outcome``; ``in_doubt = "verify"`` makes it never post a row left in doubt
again blindly. This module maps what the platform said to that outcome, and keeps the row's ``detail``: the
thread parts posted so far (``{"parts": [{"id", "url"}], "total": 3, "generation": 0}``):

- 429: wait until the reset (``SOCIAL_RATE_LIMIT_MAX_WAIT`` seconds at most) and retry, at most
  ``SOCIAL_RATE_LIMIT_RETRIES`` times; after that the outcome is ``failed`` (nothing was posted);
- a 5xx or a timeout after the request left: ``unconfirmed``. ``publish --retry-unconfirmed`` first looks for
  the post among the account's recent posts (``find_existing``: by the article's URL, else by its text);
- a platform's "duplicate content" refusal counts as posted;
- the circuit breaker: after ``SOCIAL_BREAKER_FAILURES`` posts in a row in one run got a 5xx, no answer or no
  connection, the platform is taken to be down: the next delivery is ``Outcome.deferred`` with ``halt``
  (nothing posted; the run stops and the rest stays pending for a later run);
- a thread resumes after its last posted part (``ctx.checkpoint`` records each part as it is posted).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from publisher.channels.base import Channel, ChannelContext, DeliveryReport, Rendition, Result, Sender
from publisher.delivery import Attempt, Found, LookupFailed, LookupUnsupported, Outcome, RenderedFile
from publisher.errors import ChannelError, ConfigError
from publisher.settings import Setting

if TYPE_CHECKING:
    from datetime import date

    import requests

    from publisher.channels.api_versions import PinnedVersion

    from publisher.article import Article, Story
    from publisher.delivery import DeliveryKey
    from publisher.formatters.social import LengthRule, LongTextMode, PostText

DEFAULT_ACCOUNT = "default"
OUTBOX_TARGET = "outbox"
DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds, when a 429 does not say when to come back


# --- what a platform hook returns or raises ---------------------------------------------------------------


@dataclass(frozen=True)
class SocialAccount:
    """One account on one platform: its label (the delivery's target) and its credentials by field name."""

    channel: str
    label: str  # "default" or a language code
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


class NoConnection(PostNotSent):
    """The request never left (no connection, TLS refused, connect timeout): counts for the circuit breaker."""


class RateLimited(SocialPostError):
    """429: nothing was posted; ``reset_at`` (Unix time) is when the platform accepts posts again, if it said."""

    def __init__(self, message: str, reset_at: float | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


def _moment(unix: float | None) -> datetime | None:
    """A platform's reset time (Unix time from the channel's clock) as an aware datetime, for the retry job."""
    return None if unix is None else datetime.fromtimestamp(unix, timezone.utc)


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


def default_languages() -> tuple[str, ...]:
    """The languages of ``PUBLISHER_LANGUAGES``'s default value: the per-language accounts declared for
    ``.env.example`` and ``config check`` (a site's other languages are read at run time all the same)."""
    from publisher.settings import CORE_SETTINGS

    default = next(setting.default for setting in CORE_SETTINGS if setting.name == "PUBLISHER_LANGUAGES")
    return tuple(part.strip() for part in str(default).split(",") if part.strip())


def language_name(lang: str) -> str:
    """The language's English name, "Korean" for ``ko`` (Babel's data; the code itself if Babel has none)."""
    from babel import Locale, UnknownLocaleError

    try:
        return str(Locale.parse(lang).get_display_name("en"))
    except (UnknownLocaleError, ValueError):
        return lang


def account_setting(prefix: str, lang: str | None, field: CredentialField, platform: str) -> Setting:
    """One credential's setting: ``X_API_KEY`` for the default account, ``X_KO_API_KEY`` for Korean's."""
    if lang is None:
        help_text = f"{field.help}, for the default {platform} account (posts in any language)."
    else:
        language = language_name(lang)
        help_text = f"{field.help}, for the {language} {platform} account (posts in {language})."
    return Setting(_setting_name(prefix, lang, field.name), help_text, secret=field.secret, parse=field.parse)


def account_settings(prefix: str, fields: Sequence[CredentialField], platform: str,
                     langs: Sequence[str] | None = None) -> tuple[Setting, ...]:
    """The settings of the default account and of one account per language (default: ``default_languages()``):
    X_API_KEY, X_EN_API_KEY, X_KO_API_KEY."""
    return tuple(account_setting(prefix, lang, field, platform)
                 for lang in (None, *(default_languages() if langs is None else langs)) for field in fields)


class AccountSettings:
    """A social channel's ``settings``: its accounts' and ``extra``, built on first read.

    Built lazily because the help text names each language through Babel, which a plain import of the channel
    module (``publisher --help``, ``config check`` of another channel) should not pay for.
    """

    def __init__(self, prefix: str, fields: Sequence[CredentialField], platform: str,
                 extra: Sequence[Setting] = ()) -> None:
        self.prefix, self.fields, self.platform, self.extra = prefix, tuple(fields), platform, tuple(extra)
        self._built: tuple[Setting, ...] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> tuple[Setting, ...]:
        if self._built is None:
            self._built = account_settings(self.prefix, self.fields, self.platform) + self.extra
        return self._built


def _setting_name(prefix: str, lang: str | None, field: str) -> str:
    return f"{prefix}_{lang.upper()}_{field}" if lang else f"{prefix}_{field}"


def idempotency_key(key: DeliveryKey, part: int, generation: int = 0) -> str:
    """A stable key for one post of one delivery: the same request retried is recognised by the platform.

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


def network_failure(exc: BaseException, action: str = "post", *, may_have_posted: bool = True) -> SocialPostError:
    """A network error from requests or httpx as ``PostNotSent`` (the request never left: no connection,
    TLS refused, connect timeout) or ``OutcomeUnknown`` (it may have arrived: read timeout, dropped connection).

    A call that cannot have made a post (a lookup, an upload, a login: ``may_have_posted=False``) is never
    ``OutcomeUnknown``: what would be is ``PostNotSent`` with the same message."""
    failure = _network_failure(exc, action)
    if isinstance(failure, OutcomeUnknown) and not may_have_posted:
        return PostNotSent(str(failure))
    return failure


def _network_failure(exc: BaseException, action: str) -> SocialPostError:
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
            return NoConnection(f"could not {action}: no connection ({type(current).__name__})")
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return OutcomeUnknown(f"no answer to the {action} ({type(exc).__name__}); it may have been made")


def refused(status: int, action: str, said: str, *, may_have_posted: bool) -> SocialPostError:
    """A platform's error answer (``said``: "X answered 503: ...") to ``action``: a 5xx to a call that may have
    made a post is ``OutcomeUnknown`` (the platform may have stored it before failing), anything else
    ``PostNotSent``."""
    if status >= 500 and may_have_posted:
        return OutcomeUnknown(f"could not {action}: {said}; the post may exist")
    return PostNotSent(f"could not {action}: {said}")


def json_or_none(response: Any) -> Any:
    """A requests or httpx response's JSON body, or None when it has none (or not JSON)."""
    try:
        return response.json()
    except ValueError:
        return None


def retry_after_wait(headers: Any, now: float, default: float = DEFAULT_RATE_LIMIT_WAIT) -> float:
    """Seconds to wait after a 429: its ``Retry-After`` header, else ``default``."""
    from publisher.http_retry import retry_after

    wait = retry_after(headers.get("Retry-After"), now)
    return default if wait is None else wait


def send_request(session: requests.Session, method: str, url: str, action: str, *, timeout: float,
                 may_have_posted: bool, **kwargs: Any) -> requests.Response:
    """``session.request`` (a ``requests.Session``), a network error raised as ``network_failure`` says."""
    import requests

    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise network_failure(exc, action, may_have_posted=may_have_posted) from None


def graph_version(text: str, api: str, example: str) -> str:
    """A Meta Graph API version setting (``v24.0``) checked, for the ``api`` named in the error: "Graph API"."""
    value = text.strip()
    if not value.startswith("v") or not value[1:].replace(".", "", 1).isdigit():
        raise ValueError(f"expected a {api} version such as {example}, got {text!r}")
    return value


GRAPH_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})  # Meta's app, user, Page (account) and action throttling


def graph_answer(response: Any, platform: str, action: str, *, posting: bool, clock: Callable[[], float],
                 rate_limit_wait: Callable[[Any, float], float], duplicate_code: int | None = None) -> dict[str, Any]:
    """The body of an answer from one of Meta's Graph APIs (Facebook's, Threads'), or what its error means
    raised: throttling (429, or a code of ``GRAPH_RATE_LIMIT_CODES``) as ``RateLimited`` after
    ``rate_limit_wait(response, now)`` seconds, ``duplicate_code`` to a post as ``DuplicatePost``, the rest as
    ``refused`` says."""
    body = json_or_none(response)
    if response.ok and isinstance(body, dict) and "error" not in body:
        return body
    error = body.get("error", {}) if isinstance(body, dict) else {}
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    said = f"{platform} answered {response.status_code}: {error.get('message') or response.reason or 'no reason'}"
    if code is not None:
        said += f" (code {code})"
    if response.status_code == 429 or code in GRAPH_RATE_LIMIT_CODES:
        now = clock()
        raise RateLimited(said, reset_at=now + rate_limit_wait(response, now))
    if posting and duplicate_code is not None and code == duplicate_code:
        raise DuplicatePost(said)
    raise refused(response.status_code, action, said, may_have_posted=posting)


def card_title(article: Article) -> str:
    """The title of an article's link card: the article's, without control characters."""
    from publisher.formatters.social import strip_controls

    return strip_controls(article.title)


@dataclass(frozen=True)
class LocalImage:
    """An article's image read from disk, for upload."""

    data: bytes
    filename: str
    alt: str
    media_type: str

    @property
    def digest(self) -> str:
        """What a client remembers an upload by: two articles' ``cover.png`` are not the same image."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class SocialPayload:
    """What ``send`` needs of a rendition: the article version, and the account it goes to (None: the outbox)."""

    article: Article
    account: SocialAccount | None


# --- the base class ---------------------------------------------------------------------------------------


class SocialChannel(Channel):
    """A social network: posts per language to the account of that language, one delivery per account."""

    #: taken from the class's ``settings = AccountSettings(prefix, fields, ...)`` where it has one
    setting_prefix: ClassVar[str] = ""  # "X", "MASTODON"
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    in_doubt: ClassVar[Literal["resend", "verify"]] = "verify"
    notes: ClassVar[dict[str, str]] = {
        "already_sent": "already posted",
        "in_doubt": "the post may exist: check the account, then run publish --retry-unconfirmed",
        "not_retried": "failed permanently before; not retried without --force",
        "leased": "another worker is posting it",
    }
    #: the tests make waits instant by replacing these two on the instance
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.time)
    #: fetches remote images (``publisher.media_fetch.MediaFetcher``); the tests give one with a mock transport
    media_fetcher: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("settings")
        if isinstance(declared, AccountSettings):  # the prefix and fields are said once, there
            cls.setting_prefix, cls.credential_fields = declared.prefix, declared.fields
        if cls.credential_fields and "required" not in cls.__dict__:
            cls.required = cls._declared_required()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[str, Any] = {}  # account label -> client, opened once per run
        self._down: list[str] = []  # the circuit breaker: why each post in a row failed for want of an answer

    # --- hooks a platform writes ---------------------------------------------------------------------
    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        """How this platform measures a post for ``account`` (``None``: the outbox)."""
        raise NotImplementedError

    def long_text_mode(self) -> LongTextMode:
        """What to do with a post over the limit: ``shorten`` it, or post a numbered ``thread``."""
        return "shorten"

    def open_client(self, account: SocialAccount) -> Any:
        """The platform's client, logged in as ``account``. Called once per account and run, when a post is to
        be made or looked for, before the posts are formatted, so it may ask the platform for its limits."""
        raise NotImplementedError

    def post(self, client: Any, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        """Make one post (``reply_to`` is the previous thread part). Raise a ``SocialPostError`` on failure.
        ``attempt`` is the delivery (its row before the claim is ``attempt.previous``)."""
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
            "note": f"not posted: set {', '.join(self.required)} (or the {self.setting_prefix}_<LANG>_ variants) to post",
        }

    # --- accounts ------------------------------------------------------------------------------------
    @classmethod
    def _declared_required(cls) -> tuple[str, ...]:
        return tuple(_setting_name(cls.setting_prefix, None, f.name) for f in cls.credential_fields)

    def languages(self) -> tuple[str, ...]:
        """The languages that may have an account of their own: the site's ``PUBLISHER_LANGUAGES``."""
        return tuple(self.config.get("PUBLISHER_LANGUAGES") or default_languages())

    def account_for(self, lang: str) -> SocialAccount | None:
        """The account that posts in ``lang``: its own, else the default one, else None (the outbox)."""
        if lang in self.languages():
            account = self._account(lang)
            if account is not None:
                return account
        return self._account(None)

    def accounts(self) -> list[SocialAccount]:
        """Every configured account."""
        found = [self._account(lang) for lang in (None, *self.languages())]
        return [account for account in found if account is not None]

    def _account(self, lang: str | None) -> SocialAccount | None:
        # Built here rather than looked up among ``settings``: a language the site declares beyond the
        # defaults has its <PREFIX>_<LANG>_<FIELD> settings too, with the field's parser.
        settings = {f.name: account_setting(self.setting_prefix, lang, f, self.title) for f in self.credential_fields}
        given = {field: s.name for field, s in settings.items() if self.config.is_set(s.name)}
        if not given:
            return None
        missing = [s.name for field, s in settings.items() if field not in given]
        if missing:
            first_given = next(iter(given.values()))
            raise ConfigError(missing[0], f"is required because {first_given} is set", None)
        credentials = {field: str(self.config.get(s)) for field, s in settings.items()}
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
        """One rendition per language and account: part 1 as its file, the later thread parts as ``extra``."""
        renditions = []
        for lang in langs:
            article = story.get(lang)
            if article is None:
                continue
            account = self.account_for(lang)
            target = account.label if account else OUTBOX_TARGET
            files = [RenderedFile(f"post-{post.part}.txt", post.text, "text/plain",
                                  {"length": post.length, "limit": post.limit, "part": post.part,
                                   "parts": post.parts, "account": target})
                     for post in self.format_posts(article, account)]
            first, *later = files
            renditions.append(Rendition(
                channel=self.name, lang=lang, target=target, filename=first.filename, content=first.content,
                media_type=first.media_type, meta=first.meta, article=story.slug, extra=later,
                payload=SocialPayload(article, account),
            ))
        return renditions

    # --- sending -------------------------------------------------------------------------------------
    def open(self, renditions: Sequence[Rendition], ctx: ChannelContext) -> Sender:
        """A run's session: every setting a post needs is read now, so a bad one stops the run before any
        row is claimed; clients are opened on first use, once per account."""
        self._clients = {}
        self._down = []
        if any(_payload(r).account is not None for r in renditions):
            self.check_sending_settings()
        return Sender(self, ctx)

    def check_sending_settings(self) -> None:
        """Parse every setting ``send`` reads (raises ``ConfigError``): the channel's own and SOCIAL_*."""
        credentials = {name for name in (_setting_name(self.setting_prefix, lang, f.name)
                                         for lang in (None, *default_languages()) for f in self.credential_fields)}
        for setting in self.settings:
            if setting.name not in credentials:
                self.config.get(setting)
        self._rate_limit_policy()
        self.config.get("SOCIAL_BREAKER_FAILURES")
        _ = self.http_timeout

    def client_for(self, account: SocialAccount) -> Any:
        """The account's client, opened once per run."""
        if account.label not in self._clients:
            self._clients[account.label] = self.open_client(account)
        return self._clients[account.label]

    def send(self, attempt: Attempt, ctx: ChannelContext) -> Outcome:
        """Post the thread (or what is left of it after ``attempt.progress``), or write the outbox file."""
        payload = _payload(attempt.rendition)
        if payload.account is None:
            return self._write_outbox(payload.article)
        article, account = payload.article, payload.account
        limit = int(self.config.get("SOCIAL_BREAKER_FAILURES") or 0)
        if limit and len(self._down) >= limit:   # the platform looks down: post nothing more this run
            return Outcome.deferred(f"{self.name}: {len(self._down)} posts in a row got a 5xx, no answer or no "
                                    f"connection (last: {self._down[-1]}); the platform looks down", halt=True)
        client = self.client_for(account)  # may learn the platform's limit (Mastodon's max_characters)
        posts = self.format_posts(article, account)
        done = _parts(attempt.progress)
        note = ""

        def detail() -> dict[str, Any]:
            return _detail(done, posts, attempt.generation)

        for post in posts[len(done):]:
            reply_to = done[-1] if done else None
            try:
                remote = self._post_within_rate_limit(client, article, post, reply_to, attempt)
            except DuplicatePost as exc:
                found = exc.existing or self._lookup_or_none(client, account, article, post)
                if found is None:
                    if post.part < post.parts:  # later parts must reply to this one, whose id is unknown
                        return Outcome.unconfirmed(str(exc), detail=detail(),
                                                   note=f"part {post.part} refused as a duplicate and not found; check it")
                    done.append(RemotePost("", None))
                    note = f"already posted ({exc})"
                    continue
                remote = found
            except RateLimited as exc:   # nothing posted; the rest of the run would be refused too: stop it
                return Outcome.deferred(f"{self.name}: {exc}", halt=True, retry_at=_moment(exc.reset_at),
                                        detail=detail(), note=f"{exc}; nothing posted")
            except OutcomeUnknown as exc:
                self._down.append(str(exc))
                return Outcome.unconfirmed(str(exc), detail=detail(),
                                           note=f"{exc}; the post may exist: check, then publish --retry-unconfirmed")
            except PostNotSent as exc:
                if isinstance(exc, NoConnection):
                    self._down.append(str(exc))
                else:   # the platform answered: it is up
                    self._down = []
                return Outcome.failed(str(exc), detail=detail(), note=str(exc))
            self._down = []
            done.append(remote)
            if len(done) < len(posts):  # progress survives a crash between two thread parts
                ctx.checkpoint(attempt, detail())
        first = next((p for p in done if p.id), None)
        return Outcome.sent(first.id if first else None, first.url if first else None, note=note, detail=detail())

    def find_existing(self, attempt: Attempt, ctx: ChannelContext) -> Found | None:
        """The first part not yet recorded, among the account's recent posts (by the article's URL, else by
        its text); the outbox file, for the outbox."""
        payload = _payload(attempt.rendition)
        if payload.account is None:
            path = self._outbox_path(payload.article)
            if not path.is_file():
                return None
            shown = _relative(path, self.site.root)
            return Found({}, note="already written", done=Outcome.sent(None, shown, note=f"already written: {shown}"))
        article, account = payload.article, payload.account
        try:
            client = self.client_for(account)
            posts = self.format_posts(article, account)
            done = _parts(attempt.progress)
            if len(done) >= len(posts):  # every part was recorded: nothing to look for, nothing to post
                return Found(_detail(done, posts, attempt.generation), note="",
                             done=_sent(done, posts, attempt.generation, note=""))
            found = self._find_post(client, account, article, posts[len(done)])
        except SocialPostError as exc:  # could not check, so still in doubt: post nothing
            raise LookupFailed(str(exc)) from None
        if found is _LOOKUP_UNSUPPORTED:
            raise LookupUnsupported(self.name)
        if not isinstance(found, RemotePost):
            return None
        done.append(found)
        note = "found among recent posts; not posted again"
        if len(done) >= len(posts):
            return Found(_detail(done, posts, attempt.generation), note=note,
                         done=_sent(done, posts, attempt.generation, note=note))
        return Found(_detail(done, posts, attempt.generation), note=note)

    # --- the report ----------------------------------------------------------------------------------
    def where(self, result: Result) -> str:
        if result.key.target == OUTBOX_TARGET:
            if result.outcome is not None and result.outcome.remote_url:
                return result.outcome.remote_url
            return f"outbox/{self.name}/"
        return super().where(result)

    def report(self, results: Sequence[Result], ctx: ChannelContext) -> list[DeliveryReport]:
        reports = super().report(results, ctx)
        for result, line in zip(results, reports):
            if result.key.target == OUTBOX_TARGET and result.decision == "already_sent":
                line.note = f"already written: {result.previous_url}"
            payload = result.rendition.payload if result.rendition is not None else None
            image = payload.article.image if isinstance(payload, SocialPayload) else None
            if image is not None and not image.alt.strip():  # every platform here takes alt text: say so
                line.note = "; ".join(filter(None, [line.note, f"warning: image {image.src} has no alt text"]))
        return reports

    # --- the pieces ----------------------------------------------------------------------------------
    def _outbox_path(self, article: Article) -> Path:
        from publisher.channels.outbox import json_outbox_path

        return json_outbox_path(self.site, self.name, f"{article.slug}.{article.lang}")

    def _write_outbox(self, article: Article) -> Outcome:
        from publisher.channels.outbox import write_json_outbox

        posts = self.format_posts(article, None)
        path = write_json_outbox(self.site, self.name, f"{article.slug}.{article.lang}",
                                 self.outbox_payload(article, posts))
        return Outcome.sent(None, _relative(path, self.site.root), note="written locally; not posted")

    def _rate_limit_policy(self) -> tuple[int, float]:
        return (int(self.config.get("SOCIAL_RATE_LIMIT_RETRIES") or 0),
                float(self.config.get("SOCIAL_RATE_LIMIT_MAX_WAIT") or 0))

    def _post_within_rate_limit(self, client: Any, article: Article, post: PostText,
                                reply_to: RemotePost | None, attempt: Attempt) -> RemotePost:
        retries, max_wait = self._rate_limit_policy()
        key = idempotency_key(attempt.key, post.part, attempt.generation)
        tries = 0
        while True:
            try:
                return self.post(client, article, post, reply_to=reply_to, idempotency_key=key, attempt=attempt)
            except RateLimited as exc:
                wait = DEFAULT_RATE_LIMIT_WAIT if exc.reset_at is None else max(0.0, exc.reset_at - self.clock()) + 1.0
                if tries >= retries or wait > max_wait:
                    raise RateLimited(f"rate limited ({exc}); gave up after {tries} retr{'y' if tries == 1 else 'ies'}",
                                      exc.reset_at) from None
                self.sleep(wait)
                tries += 1

    def _lookup_or_none(self, client: Any, account: SocialAccount, article: Article,
                        post: PostText) -> RemotePost | None:
        try:
            found = self._find_post(client, account, article, post)
        except SocialPostError:
            return None
        return found if isinstance(found, RemotePost) else None

    def _find_post(self, client: Any, account: SocialAccount, article: Article,
                   post: PostText) -> RemotePost | _LookupUnsupported | None:
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
    def version_warnings(self, pinned: PinnedVersion, released: Callable[[str], date | None]) -> list[str]:
        """The warning for the API version of ``pinned``'s setting in use, when over a year old (``released``:
        a version's release date, where known); none for a channel not in use or a bad value (``check``
        reports it)."""
        from publisher.channels.api_versions import age_warning, today

        try:
            if not (self.config.is_set(pinned.setting) or self.is_configured()):
                return []  # a channel not in use has no version to grow old
            version = str(self.option(pinned.setting))
        except ConfigError:  # check() reports the bad value
            return []
        warning = age_warning(pinned, version, released(version), today(self.clock))
        return [warning] if warning else []

    @property
    def http_timeout(self) -> float:
        """Seconds to wait for an answer (``SOCIAL_HTTP_TIMEOUT``); a later answer leaves the post unconfirmed."""
        return float(self.config.get("SOCIAL_HTTP_TIMEOUT") or 30.0)

    def load_image(self, article: Article) -> LocalImage | None:
        """The article's image from disk (``Site.media_path``'s rule), or downloaded once if remote
        (``publisher.media_fetch``: https and public addresses only); None if absent."""
        import mimetypes

        if article.image is None:
            return None
        try:
            found = self.site.media_path(article.image.src, near=article.path.parent if article.path else None)
        except ValueError:
            raise PostNotSent(f"image {article.image.src}: must stay inside the site folder") from None
        if found is None and ("://" in article.image.src or article.image.src.startswith("//")):
            return self._remote_image(article.image.src, article.image.alt)
        if found is None:
            return None
        media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return LocalImage(found.read_bytes(), found.name, article.image.alt, media_type)

    def _remote_image(self, src: str, alt: str) -> LocalImage:
        from publisher.media_fetch import MediaFetcher, MediaFetchError

        fetcher = self.media_fetcher or MediaFetcher(self.site.state_dir / "media")
        try:
            fetched = fetcher.fetch(src)
        except MediaFetchError as exc:  # nothing was posted: the post waits for a fixed image or a later run
            raise PostNotSent(str(exc)) from None
        return LocalImage(fetched.data, fetched.filename, alt, fetched.media_type)


def _payload(rendition: Rendition) -> SocialPayload:
    if not isinstance(rendition.payload, SocialPayload):
        raise ChannelError(f"{rendition.channel}: a rendition without its article (render it with the channel)")
    return rendition.payload


def _parts(progress: dict[str, Any]) -> list[RemotePost]:
    """The thread parts a row records as posted (its detail, or what a look-up found)."""
    return [RemotePost(str(p["id"]), p.get("url")) for p in progress.get("parts", [])]


def _detail(done: Sequence[RemotePost], posts: Sequence[PostText], generation: int) -> dict[str, Any]:
    return {"parts": [p.as_detail() for p in done], "total": len(posts), "generation": generation}


def _sent(done: Sequence[RemotePost], posts: Sequence[PostText], generation: int, *, note: str) -> Outcome:
    first = next((p for p in done if p.id), None)
    return Outcome.sent(first.id if first else None, first.url if first else None, note=note,
                        detail=_detail(done, posts, generation))


class _LookupUnsupported:
    def __repr__(self) -> str:
        return "LOOKUP_UNSUPPORTED"


_LOOKUP_UNSUPPORTED: Final = _LookupUnsupported()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


__all__ = [
    "AccountSettings", "CredentialField", "DuplicatePost", "LocalImage", "NoConnection", "OutcomeUnknown",
    "PostNotSent",
    "RateLimited", "RemotePost", "SocialAccount", "SocialChannel", "SocialPayload", "SocialPostError",
    "GRAPH_RATE_LIMIT_CODES", "account_setting", "account_settings", "card_title", "default_languages",
    "graph_answer", "graph_version", "idempotency_key", "json_or_none", "language_name", "network_failure", "refused",
    "retry_after_wait", "send_request",
]
