"""Telegram channels through the Bot API over the real httpx, answered by a Bot API in memory (MockTransport)."""

from __future__ import annotations

import json
import logging
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import pytest

from publisher import pipeline
from publisher.channels.telegram import TelegramChannel, split_caption
from publisher.delivery import DeliveryKey
from publisher.errors import ConfigError
from publisher.formatters.social import TELEGRAM_CAPTION_LIMIT, TELEGRAM_CAPTION_RULE, telegram_length
from tests.social.conftest import FakeClock, publish_with, story_of
from tests.test_media_fetch import PNG, PUBLIC_IP, Web, image

SLUG = "2024-unpsf-incheon"
TOKEN = "123456:AAE-secret_token"
CHATS = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID_EN": "@unpog_news", "TELEGRAM_CHAT_ID_KO": "-1001234567890"}
IMAGE = "image:\n  src: images/unpsf-2024.png\n  alt: Participants of the forum\n"


class FakeBotAPI:
    """api.telegram.org in memory: sendMessage and sendPhoto, answered as the Bot API does."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.messages: list[dict[str, Any]] = []  # every message made: chat, method, fields
        self.failures: list[Any] = []  # answers (status, body) or exceptions to play first
        self.store_then_fail = False
        self._next = 40

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        match = re.fullmatch(r"/bot(?P<token>[^/]+)/(?P<method>\w+)", request.url.path)
        if match is None or match["token"] != TOKEN:
            return httpx.Response(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})
        method = match["method"]
        fields = self._fields(request)
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and not self.store_then_fail:
            return _play(failure)
        chat = str(fields["chat_id"])
        self._next += 1
        message: dict[str, Any] = {"message_id": self._next, "date": 1_700_000_000,
                                   "chat": ({"id": -1009876543210, "type": "channel", "title": "UNPOG",
                                             "username": chat[1:]} if chat.startswith("@") else
                                            {"id": int(chat), "type": "channel", "title": "유엔거버넌스센터"})}
        self.messages.append({"method": method, "message_id": self._next, **fields})
        if failure is not None:
            return _play(failure)
        return httpx.Response(200, json={"ok": True, "result": message})

    def _fields(self, request: httpx.Request) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return dict(json.loads(request.content))
        assert content_type.startswith("multipart/form-data"), content_type
        parsed = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.content)
        fields: dict[str, Any] = {}
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                fields[name] = {"filename": part.get_filename(), "type": part.get_content_type(),
                                "data": part.get_payload(decode=True)}
            else:
                fields[name] = part.get_payload(decode=True).decode("utf-8")
        return fields


def _play(failure: Any) -> httpx.Response:
    if isinstance(failure, BaseException):
        raise failure
    status, body = failure
    return httpx.Response(status, json=body)


@pytest.fixture
def bot() -> FakeBotAPI:
    return FakeBotAPI()


def channel_for(site: Any, bot: FakeBotAPI, clock: FakeClock | None = None) -> TelegramChannel:
    channel = TelegramChannel(site)
    channel.transport = bot.transport
    clock = clock or FakeClock()
    channel.clock, channel.sleep = clock.clock, clock.sleep
    return channel


def key(lang: str = "en") -> DeliveryKey:
    return DeliveryKey(SLUG, lang, "telegram", lang)


def test_each_language_goes_to_its_channel_as_a_photo_with_an_escaped_html_caption(make_site, bot) -> None:
    site = make_site(**CHATS)
    story = story_of(site, SLUG)
    image = (site.content_dir / "images" / "unpsf-2024.png").read_bytes()

    reports = publish_with(channel_for(site, bot), story, ["en", "ko"])

    assert [(r.lang, r.state) for r in reports] == [("en", "sent"), ("ko", "sent")]
    english, korean = bot.messages
    assert (english["chat_id"], korean["chat_id"]) == ("@unpog_news", "-1001234567890")
    for message, lang in ((english, "en"), (korean, "ko")):
        article = story.get(lang)
        assert message["method"] == "sendPhoto" and message["parse_mode"] == "HTML"
        assert message["photo"]["data"] == image and message["photo"]["type"] == "image/png"
        assert message["caption"].startswith(f"<b>{article.title}</b>") and article.url in message["caption"]
        assert telegram_length(message["caption"]) - len("<b></b>") <= TELEGRAM_CAPTION_LIMIT
    assert [r.where for r in reports] == [f"https://t.me/unpog_news/{english['message_id']}",
                                          f"https://t.me/c/1234567890/{korean['message_id']}"]
    assert site.ledger().get(key("ko")).remote_id == str(korean["message_id"])

    again = publish_with(channel_for(site, bot), story_of(site, SLUG), ["en", "ko"])
    assert [r.state for r in again] == ["sent", "sent"] and len(bot.messages) == 2


def test_text_is_escaped_never_sent_as_raw_html_and_the_link_preview_is_on(make_site, write_article, bot) -> None:
    write_article(SLUG, "en", "R&D <b>bold</b> & <script>alert(1)</script>", "Costs < benefits & more.",
                  tags=["UNPOG"])
    site = make_site(**CHATS)
    article = story_of(site, SLUG).get("en")

    [report] = publish_with(channel_for(site, bot), story_of(site, SLUG), ["en"])

    [message] = bot.messages
    assert report.state == "sent" and message["method"] == "sendMessage" and message["parse_mode"] == "HTML"
    assert message["text"].startswith(
        "<b>R&amp;D &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;</b>")
    assert "Costs &lt; benefits &amp; more." in message["text"] and "<script>" not in message["text"]
    assert message["link_preview_options"] == {"is_disabled": False, "url": article.url}


def test_a_caption_over_1024_characters_goes_on_as_a_reply_to_the_photo(make_site, write_article, bot) -> None:
    summary = " ".join(f"이것은 인천 포럼에 관한 긴 요약의 {n}번째 문장입니다." for n in range(1, 60))
    write_article(SLUG, "ko", "긴 기사", summary, tags=["유엔거버넌스센터"], extra=IMAGE)
    site = make_site(**CHATS)

    [report] = publish_with(channel_for(site, bot), story_of(site, SLUG), ["ko"])

    assert report.state == "sent"
    photo, rest = bot.messages
    assert photo["method"] == "sendPhoto" and rest["method"] == "sendMessage"
    caption_text = photo["caption"].replace("<b>", "").replace("</b>", "")
    assert telegram_length(caption_text) <= TELEGRAM_CAPTION_LIMIT and caption_text.endswith("문장입니다.")
    assert rest["reply_parameters"] == {"message_id": photo["message_id"]}
    assert rest["link_preview_options"]["is_disabled"] is False
    assert caption_text.split()[-2:] != rest["text"].split()[:2]  # nothing posted twice, nothing lost
    row = site.ledger().get(key("ko"))
    assert [p["id"] for p in row.detail["parts"]] == [str(photo["message_id"]), str(rest["message_id"])]


def test_a_429_waits_for_retry_after_then_posts(make_site, bot) -> None:
    site = make_site(**CHATS)
    clock = FakeClock()
    bot.failures = [(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                           "parameters": {"retry_after": 7}})]

    [report] = publish_with(channel_for(site, bot, clock), story_of(site, SLUG), ["en"])

    assert report.state == "sent" and clock.sleeps == [8.0] and len(bot.messages) == 1


def test_more_than_20_messages_a_minute_to_one_channel_are_paced(make_site, write_article, bot) -> None:
    slugs = [f"2025-note-{n:02d}" for n in range(22)]
    for slug in slugs:
        write_article(slug, "en", f"Note {slug}", "A short note.")
    site = make_site(**CHATS)
    clock = FakeClock()
    stories = [(story_of(site, slug), ["en"]) for slug in slugs]

    reports = pipeline.deliver(site, channel_for(site, bot, clock), stories, pipeline.RunOptions())

    assert [r.state for r in reports] == ["sent"] * 22 and len(bot.messages) == 22
    assert clock.sleeps == [60.0]  # the 21st message waited for the first minute to pass; the 22nd did not


@pytest.mark.parametrize("failure", [
    (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
    httpx.ReadTimeout("read timed out"),
], ids=["502", "timeout"])
def test_an_unconfirmed_post_is_posted_again_only_with_retry_unconfirmed_and_says_why(make_site, bot,
                                                                                      failure) -> None:
    site = make_site(**CHATS)
    bot.failures = [failure]
    bot.store_then_fail = True
    channel = channel_for(site, bot)

    [report] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert report.state == "unconfirmed" and len(bot.messages) == 1
    [blind] = publish_with(channel, story_of(site, SLUG), ["en"])
    assert blind.state == "unconfirmed" and len(bot.messages) == 1
    assert "Telegram lets no bot list a channel's posts" in blind.note

    [retried] = publish_with(channel, story_of(site, SLUG), ["en"], retry_unconfirmed=True)

    assert retried.state == "sent" and len(bot.messages) == 2
    assert "posted again at your request (the platform cannot list recent posts)" in retried.note


def test_a_bot_that_may_not_post_fails_with_telegrams_reason_and_no_token(make_site, bot) -> None:
    site = make_site(**CHATS)
    bot.failures = [(403, {"ok": False, "error_code": 403,
                           "description": "Forbidden: bot is not a member of the channel chat"})]

    [report] = publish_with(channel_for(site, bot), story_of(site, SLUG), ["en"])

    assert report.state == "failed" and "bot is not a member" in report.note and TOKEN not in report.note


def test_the_token_never_appears_in_httpx_log_lines(make_site, bot, caplog) -> None:
    site = make_site(**CHATS)
    with caplog.at_level(logging.INFO, logger="httpx"):
        publish_with(channel_for(site, bot), story_of(site, SLUG), ["en"])
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert lines and all(TOKEN not in line and "/bot<token>/sendPhoto" in line for line in lines)


def test_without_settings_both_languages_go_to_the_outbox(make_site, bot) -> None:
    site = make_site()
    channel = channel_for(site, bot)
    assert not channel.is_configured()
    assert channel.missing_settings() == ["TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID_<LANG>"]

    reports = publish_with(channel, story_of(site, SLUG), ["en", "ko"])

    assert [r.where for r in reports] == ["outbox/telegram/2024-unpsf-incheon.en.json",
                                          "outbox/telegram/2024-unpsf-incheon.ko.json"]
    written = json.loads((site.outbox_dir / "telegram" / f"{SLUG}.ko.json").read_text(encoding="utf-8"))
    assert written["requests"][0]["method"] == "sendPhoto" and written["requests"][0]["parse_mode"] == "HTML"
    assert "TELEGRAM_CHAT_ID_<LANG>" in written["note"] and not bot.requests


def test_a_language_without_its_channel_goes_to_the_outbox(make_site, bot) -> None:
    site = make_site(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID_EN="@unpog_news")

    reports = publish_with(channel_for(site, bot), story_of(site, SLUG), ["en", "ko"])

    assert [(r.lang, r.where.startswith("https://t.me/")) for r in reports] == [("en", True), ("ko", False)]
    assert (site.outbox_dir / "telegram" / f"{SLUG}.ko.json").is_file() and len(bot.messages) == 1


def test_a_chat_without_a_bot_token_is_a_config_error(make_site) -> None:
    site = make_site(TELEGRAM_CHAT_ID_EN="@unpog_news")
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        TelegramChannel(site).render(story_of(site, SLUG), ["en"])


def test_a_chat_id_that_is_neither_a_username_nor_a_number_is_a_config_error(make_site) -> None:
    site = make_site(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID_EN="https://t.me/unpog")
    with pytest.raises(ConfigError, match="TELEGRAM_CHAT_ID_EN"):
        TelegramChannel(site).render(story_of(site, SLUG), ["en"])


def test_split_caption_prefers_a_paragraph_then_a_sentence_then_a_word() -> None:
    paragraph = "Title\n\n" + "word " * 150 + "\n\n" + "tail " * 200
    caption, rest = split_caption(paragraph, TELEGRAM_CAPTION_RULE)
    assert caption.endswith("word") and rest.startswith("tail")
    sentences = "Title. " + "One short sentence here. " * 60
    caption, rest = split_caption(sentences, TELEGRAM_CAPTION_RULE)
    assert caption.endswith(".") and TELEGRAM_CAPTION_RULE.fits(caption) and rest
    assert caption + " " + rest == sentences.strip()


# --- remote images, through SocialChannel.load_image (publisher.media_fetch) ---------------------------------


@pytest.fixture
def web() -> Web:
    return Web()


def test_a_remote_image_is_uploaded_by_a_platform_through_load_image(make_site: Any, web: Web) -> None:
    web.routes[(PUBLIC_IP, "/forum.png")] = image()
    site = make_site(**CHATS)
    path = site.content_dir / "2024-unpsf-incheon.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace("src: images/unpsf-2024.png",
                                                             "src: https://cdn.example.org/forum.png"),
                    encoding="utf-8")
    bot = FakeBotAPI()
    channel = channel_for(site, bot)
    channel.media_fetcher = web.fetcher(site.root)

    [report] = publish_with(channel, story_of(site, "2024-unpsf-incheon"), ["en"])

    assert report.state == "sent"
    [photo] = bot.messages
    assert photo["method"] == "sendPhoto" and photo["photo"]["data"] == PNG
    assert len(list((site.state_dir / "media").glob("*.png"))) == 1


def test_a_hostile_remote_image_fails_the_post_and_sends_nothing(make_site: Any, web: Web) -> None:
    site = make_site(**CHATS)
    path = site.content_dir / "2024-unpsf-incheon.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "src: images/unpsf-2024.png", "src: https://169.254.169.254/latest/meta-data/iam"), encoding="utf-8")
    bot = FakeBotAPI()
    channel = channel_for(site, bot)
    channel.media_fetcher = web.fetcher(site.root)

    [report] = publish_with(channel, story_of(site, "2024-unpsf-incheon"), ["en"])

    assert report.state == "failed" and "not a public address" in report.note
    assert not bot.requests and not web.requests


def test_an_image_without_alt_text_is_posted_with_a_warning_in_the_report(make_site, bot) -> None:
    from publisher.article import Image, Story

    site = make_site(**CHATS)
    story = story_of(site, SLUG)
    english = story.get("en")
    # article files must give alt text, but an article built in code (a translation, a plugin) may lack it
    bare = Story(SLUG, {"en": english.with_changes(image=Image(english.image.src, ""))})

    [report] = publish_with(channel_for(site, bot), bare, ["en"])

    assert report.state == "sent" and "warning: image images/unpsf-2024.png has no alt text" in report.note
    [clean] = publish_with(channel_for(site, bot), story_of(site, "2024-digital-government-workshop"), ["en"])
    assert "alt text" not in clean.note
