"""Telegram channels through the Bot API over httpx: a bot posts each language version to that language's channel.

Settings: ``TELEGRAM_BOT_TOKEN`` (from @BotFather; the bot must be an administrator of each channel, allowed to
post) and ``TELEGRAM_CHAT_ID_<LANG>`` for each of the site's languages (``PUBLISHER_LANGUAGES``): the channel's
``@username`` or numeric id (``-100…``). A language without a channel goes to the JSON outbox.

- Text is sent with ``parse_mode=HTML`` and escaped here (the title in bold): never the article's own HTML.
- With an image: ``sendPhoto`` with the start of the post as its caption (1,024 characters at most, cut at a
  paragraph, sentence or word), the rest as a ``sendMessage`` replying to the photo. Without: one ``sendMessage``.
  Link previews stay on, for the article's URL.
- Flood limits: at most ``FLOOD_MESSAGES`` messages per ``FLOOD_WINDOW`` seconds to one channel, paced with the
  channel's clock; a 429's ``parameters.retry_after`` is waited out like any platform's reset
  (``SOCIAL_RATE_LIMIT_*``).
- Unconfirmed: the Bot API cannot list a channel's past messages, so ``find_existing`` raises
  ``LookupUnsupported``: a post left unconfirmed (a timeout, a 5xx) is posted again only with
  ``publish --retry-unconfirmed``, after checking the channel by eye, and the report says so.
- The token is part of every Bot API URL, so no URL is ever put in a message, and httpx's request log lines
  have it masked.
"""

from __future__ import annotations

import html
import re
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from publisher.channels.social import (
    DEFAULT_ACCOUNT,
    PostNotSent,
    RateLimited,
    RemotePost,
    SocialAccount,
    SocialChannel,
    SocialPayload,
    default_languages,
    json_or_none,
    language_name,
    network_failure,
    refused,
)
from publisher.errors import ConfigError
from publisher.settings import Setting

if TYPE_CHECKING:  # httpx is imported only when a post is made
    from collections.abc import Callable, Sequence

    import httpx

    from publisher.article import Article
    from publisher.channels.social import LocalImage
    from publisher.delivery import Attempt
    from publisher.formatters.social import LengthRule, PostText

BOT_API_URL = "https://api.telegram.org"
FLOOD_MESSAGES = 20  # Telegram's advice: about 20 messages a minute to one group or channel
FLOOD_WINDOW = 60.0
DEFAULT_RATE_LIMIT_WAIT = 30.0
TOKEN_SETTING = "TELEGRAM_BOT_TOKEN"
_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


def parse_chat_id(text: str) -> str:
    value = text.strip()
    if re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{3,31}", value) or re.fullmatch(r"-?\d+", value):
        return value
    raise ValueError(f"expected the channel's @username or its numeric id (-100...), got {text!r}")


def chat_setting(lang: str) -> Setting:
    language = language_name(lang)
    return Setting(f"TELEGRAM_CHAT_ID_{lang.upper()}", f"Telegram channel for posts in {language}: its @username "
                   f"or numeric id (-100...); the bot must be one of its administrators, allowed to post",
                   secret=False, parse=parse_chat_id)


class TelegramSettings:
    """The channel's settings: the bot token and one chat per default language, built on first read (Babel
    names the languages, which a plain import of this module should not pay for)."""

    def __init__(self) -> None:
        self._built: tuple[Setting, ...] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> tuple[Setting, ...]:
        if self._built is None:
            token = Setting(TOKEN_SETTING, "Telegram bot token, from @BotFather (one bot posts to every "
                            "language's channel)", secret=True)
            self._built = (token, *(chat_setting(lang) for lang in default_languages()))
        return self._built


def message_url(message: dict[str, Any]) -> str | None:
    """The t.me address of a channel message: ``t.me/<username>/<id>``, or ``t.me/c/<id>/<id>`` if private."""
    chat = message.get("chat") or {}
    message_id = message.get("message_id")
    if message_id is None:
        return None
    if chat.get("username"):
        return f"https://t.me/{chat['username']}/{message_id}"
    chat_id = str(chat.get("id") or "")
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    return None


def post_html(text: str, title: str) -> str:
    """``text`` escaped for ``parse_mode=HTML``, its leading title in bold. Only ``<``, ``>`` and ``&`` need it."""
    if title and text.startswith(title):
        return f"<b>{html.escape(title, quote=False)}</b>{html.escape(text[len(title):], quote=False)}"
    return html.escape(text, quote=False)


def split_caption(text: str, rule: LengthRule) -> tuple[str, str]:
    """``text`` as a caption within ``rule`` and the rest: cut at a paragraph, else a sentence, else a word, the
    first that keeps the caption at least half full (else the last word that fits; else between graphemes)."""
    if rule.fits(text):
        return text, ""
    best_word: tuple[int, int] | None = None
    for pattern in (r"\n\s*\n", r"(?<=[.!?。！？])\s+", r"\s+"):
        fitting = [(m.start(), m.end()) for m in re.finditer(pattern, text) if rule.fits(text[:m.start()].rstrip())]
        if not fitting:
            continue
        start, end = fitting[-1]
        if pattern == r"\s+":
            best_word = (start, end)
        if rule.measure(text[:start].rstrip()) * 2 >= rule.limit:
            return text[:start].rstrip(), text[end:].strip()
    if best_word is not None and best_word[0] > 0:
        return text[:best_word[0]].rstrip(), text[best_word[1]:].strip()
    import regex  # grapheme clusters: a Hangul syllable or an emoji is never cut in two

    caption = ""
    for cluster in regex.findall(r"\X", text):
        if not rule.fits(caption + cluster):
            break
        caption += cluster
    return caption, text[len(caption):].strip()


def _mask_bot_token(record: Any) -> bool:
    """A ``logging`` filter: httpx logs each request's URL at INFO; a Bot API URL holds the token. (A function,
    so this module does not import ``logging`` until a client is made: a feeds-only publish loads every channel.)"""
    message = record.getMessage()
    if "/bot" in message:
        record.msg, record.args = _TOKEN_IN_URL.sub("/bot<token>/", message), ()
    return True


class BotClient:
    """The Bot API for one bot, over httpx; ``transport`` is an ``httpx.MockTransport`` in the tests."""

    def __init__(self, token: str, *, timeout: float, transport: httpx.BaseTransport | None,
                 clock: Callable[[], float], base_url: str = BOT_API_URL) -> None:
        import logging

        import httpx

        logger = logging.getLogger("httpx")
        if _mask_bot_token not in logger.filters:
            logger.addFilter(_mask_bot_token)
        self.clock = clock
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/bot{token}/", timeout=timeout,
                                  transport=transport)

    def __repr__(self) -> str:  # the token is a secret: never in a traceback
        return "BotClient()"

    def send_message(self, chat_id: str, text_html: str, *, link: str | None,
                     reply_to: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"chat_id": chat_id, "text": text_html, "parse_mode": "HTML",
                                "link_preview_options": {"is_disabled": False, **({"url": link} if link else {})}}
        if reply_to:
            body["reply_parameters"] = {"message_id": int(reply_to)}
        return self._call("sendMessage", "post to the Telegram channel", json=body)

    def send_photo(self, chat_id: str, image: LocalImage, caption_html: str, *,
                   reply_to: str | None) -> dict[str, Any]:
        import json

        data: dict[str, str] = {"chat_id": chat_id, "caption": caption_html, "parse_mode": "HTML"}
        if reply_to:
            data["reply_parameters"] = json.dumps({"message_id": int(reply_to)})
        return self._call("sendPhoto", "post the photo to the Telegram channel", data=data,
                          files={"photo": (image.filename, image.data, image.media_type)})

    def _call(self, method: str, action: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self._http.post(method, **kwargs)
        except httpx.HTTPError as exc:
            raise network_failure(exc, action) from None
        body = json_or_none(response)
        if isinstance(body, dict) and body.get("ok") and isinstance(body.get("result"), dict):
            return dict(body["result"])
        body = body if isinstance(body, dict) else {}
        code = body.get("error_code") or response.status_code
        said = f"Telegram answered {code}: {body.get('description') or response.reason_phrase or 'no reason'}"
        if code == 429 or response.status_code == 429:
            raise RateLimited(said, reset_at=self.clock() + self._retry_after(response, body))
        raise refused(response.status_code, action, said, may_have_posted=True)

    def _retry_after(self, response: httpx.Response, body: dict[str, Any]) -> float:
        from publisher.http_retry import rate_limit_wait, retry_after

        now = self.clock()
        given = (body.get("parameters") or {}).get("retry_after")
        wait = retry_after(str(given), now) if given is not None else rate_limit_wait(response.headers, now)
        return DEFAULT_RATE_LIMIT_WAIT if wait is None else wait


class TelegramChannel(SocialChannel):
    """Posts each language version to the Telegram channel of that language, through one bot."""

    name: ClassVar[str] = "telegram"
    title: ClassVar[str] = "Telegram"
    setting_prefix: ClassVar[str] = "TELEGRAM"
    required: ClassVar[tuple[str, ...]] = (TOKEN_SETTING, "TELEGRAM_CHAT_ID_EN")
    settings = TelegramSettings()
    notes: ClassVar[dict[str, str]] = {
        **SocialChannel.notes,
        "in_doubt": "the post may exist, and Telegram lets no bot list a channel's posts: check the channel; "
                    "publish --retry-unconfirmed posts it again",
    }
    #: httpx transport under the Bot API client; the tests put an ``httpx.MockTransport`` here
    transport: httpx.BaseTransport | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent_at: dict[str, deque[float]] = {}  # chat -> when its latest messages were sent

    # --- accounts: one bot, a chat per language ------------------------------------------------------
    def account_for(self, lang: str) -> SocialAccount | None:
        return self._account(lang) if lang in self.languages() else None

    def accounts(self) -> list[SocialAccount]:
        found = [self._account(lang) for lang in self.languages()]
        return [account for account in found if account is not None]

    def _account(self, lang: str | None) -> SocialAccount | None:
        if lang is None:
            return None  # no default chat: each language has its own channel
        setting = chat_setting(lang)
        if not self.config.is_set(setting.name):
            return None
        if not self.config.is_set(TOKEN_SETTING):
            raise ConfigError(TOKEN_SETTING, f"is required because {setting.name} is set", None)
        return SocialAccount(self.name, lang or DEFAULT_ACCOUNT,
                             {"BOT_TOKEN": str(self.config.get(TOKEN_SETTING)),
                              "CHAT_ID": str(self.config.get(setting))})

    def missing_settings(self) -> list[str]:
        return [] if self.is_configured() else [TOKEN_SETTING, "TELEGRAM_CHAT_ID_<LANG>"]

    def fallback_description(self) -> str:
        return "JSON files in outbox/telegram/ (set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID_<LANG> to post)"

    # --- formatting ----------------------------------------------------------------------------------
    def length_rule(self, account: SocialAccount | None) -> LengthRule:
        from publisher.formatters.social import TELEGRAM_RULE

        return TELEGRAM_RULE

    def format_posts(self, article: Article, account: SocialAccount | None) -> list[PostText]:
        """One message; with an image, the photo's caption (1,024) and, if longer, the rest as a reply."""
        from publisher.formatters.social import TELEGRAM_CAPTION_RULE, TELEGRAM_RULE, PostText, SocialFormatter

        if article.image is None:
            formatter = SocialFormatter(self.site.templates, self.name, TELEGRAM_RULE, long_text="thread")
            return formatter.posts(article)
        text = SocialFormatter(self.site.templates, self.name, TELEGRAM_RULE).render_text(article)
        caption, rest = split_caption(text, TELEGRAM_CAPTION_RULE)
        from publisher.formatters.social import split_into_thread

        texts = [caption, *(split_into_thread(rest, TELEGRAM_RULE) if rest else [])]
        rules = [TELEGRAM_CAPTION_RULE] + [TELEGRAM_RULE] * (len(texts) - 1)
        return [PostText(t, rule.measure(t), rule.limit, part, len(texts))
                for part, (t, rule) in enumerate(zip(texts, rules), start=1)]

    # --- sending -------------------------------------------------------------------------------------
    def open_client(self, account: SocialAccount) -> BotClient:
        return BotClient(account["BOT_TOKEN"], timeout=self.http_timeout, transport=self.transport,
                         clock=self.clock)

    def client_for(self, account: SocialAccount) -> BotClient:
        # one bot for every language: one client, opened once per run
        if TOKEN_SETTING not in self._clients:
            self._clients[TOKEN_SETTING] = self.open_client(account)
        client: BotClient = self._clients[TOKEN_SETTING]
        return client

    def post(self, client: BotClient, article: Article, post: PostText, *, reply_to: RemotePost | None,
             idempotency_key: str, attempt: Attempt) -> RemotePost:
        payload = attempt.rendition.payload
        if not isinstance(payload, SocialPayload) or payload.account is None:  # pragma: no cover - send checks
            raise PostNotSent("telegram: a post without its channel")
        chat = payload.account["CHAT_ID"]
        text_html = post_html(post.text, article.title if post.part == 1 else "")
        replying = reply_to.id if reply_to is not None and reply_to.id else None
        image = self.load_image(article) if post.part == 1 else None
        self._pace(chat)
        if image is not None:
            message = client.send_photo(chat, image, text_html, reply_to=replying)
        else:
            message = client.send_message(chat, text_html, link=article.url, reply_to=replying)
        return RemotePost(str(message.get("message_id", "")), message_url(message), post.text)

    def recent_posts(self, client: BotClient, account: SocialAccount) -> list[RemotePost] | None:
        return None  # the Bot API has no way to read a channel's history: see the module docstring

    def outbox_payload(self, article: Article, posts: Sequence[PostText]) -> dict[str, Any]:
        payload = super().outbox_payload(article, posts)
        payload["note"] = "not posted: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID_<LANG> to post"
        requests: list[dict[str, Any]] = []
        for post in posts:
            text_html = post_html(post.text, article.title if post.part == 1 else "")
            if post.part == 1 and article.image is not None:
                requests.append({"method": "sendPhoto", "photo": article.image.src, "caption": text_html,
                                 "parse_mode": "HTML"})
            else:
                requests.append({"method": "sendMessage", "text": text_html, "parse_mode": "HTML",
                                 "link_preview_options": {"is_disabled": False, "url": article.url},
                                 **({"reply_parameters": {"message_id": f"<part {post.part - 1}>"}}
                                    if post.part > 1 else {})})
        payload["requests"] = requests
        return payload

    def _pace(self, chat: str) -> None:
        """Wait, if need be, so that no more than ``FLOOD_MESSAGES`` go to ``chat`` within ``FLOOD_WINDOW``."""
        sent = self._sent_at.setdefault(chat, deque())
        now = self.clock()
        while sent and sent[0] <= now - FLOOD_WINDOW:
            sent.popleft()
        if len(sent) >= FLOOD_MESSAGES:
            self.sleep(sent[0] + FLOOD_WINDOW - now)
            now = self.clock()
            sent.popleft()
        sent.append(now)
