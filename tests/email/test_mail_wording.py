"""Every mail the site sends, rendered in both languages: the wording (issue 16), the sender's name per language,
the postal address, the logo, and images at the published site's address."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import Result

from publisher.errors import ConfigError
from publisher.site import Site
from publisher.subscribers import Subscriber
from tests.email.conftest import set_settings, story_for

POSTAL = "UNPOG, 175 Art center-daero, Yeonsu-gu\\nIncheon 22004, Republic of Korea"   # TOML: \n is a line break
POSTAL_LINES = ["UNPOG, 175 Art center-daero, Yeonsu-gu", "Incheon 22004, Republic of Korea"]
# Wording that issue 16 found wrong; none of it may come back in any mail, in any part.
BAD_WORDING = ["소식 소식지", "subscribed to news from", "news bulletins of", "you will not get any bulletin",
               "구독자이십니다", "본인께서"]


def reader(address: str, lang: str, status: str = "active") -> Subscriber:
    return Subscriber(address, None, lang, status, [], None, None)  # type: ignore[arg-type]


@pytest.fixture
def mail_site(site: Site) -> Site:
    (site.root / ".env").write_text("PUBLISHER_SECRET_KEY=wording-test-key\n", encoding="utf-8")
    return set_settings(site, PUBLISHER_SITE_URL="https://news.unpog.example", BULLETIN_POSTAL_ADDRESS=POSTAL,
                        BULLETIN_FROM="News desk <news@unpog.example>")


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def alert(site: Site, lang: str, slug: str = "2024-unpsf-incheon") -> EmailMessage:
    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder

    bulletin = BulletinFormatter(site).alert(story_for(site, slug).get(lang))
    data, _ = MessageBuilder(site).wire(bulletin, reader(f"reader-{lang}@example.org", lang))
    return parsed(data)


def digest(site: Site, lang: str, count: int | None = None) -> EmailMessage:
    from datetime import datetime, timezone

    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder

    articles = site.articles().articles(lang)[:count]
    bulletin = BulletinFormatter(site).digest(articles, lang, since=datetime(2024, 1, 1, tzinfo=timezone.utc))
    data, _ = MessageBuilder(site).wire(bulletin, reader(f"reader-{lang}@example.org", lang))
    return parsed(data)


def confirmation(site: Site, lang: str) -> EmailMessage:
    from publisher.mail.message import MessageBuilder
    from publisher.mail.send import confirmation_message

    return parsed(MessageBuilder(site).serialize(confirmation_message(site, reader("new@example.org", lang,
                                                                                    "pending"))))


def already_subscribed(site: Site, lang: str) -> EmailMessage:
    from publisher.mail.message import MessageBuilder
    from publisher.web.subscription import reader_mail

    message = reader_mail(site, "already_subscribed", lang, "old@example.org", None,
                          preferences_url="https://news.unpog.example/preferences/t",
                          unsubscribe_url="https://news.unpog.example/unsubscribe/t")
    return parsed(MessageBuilder(site).serialize(message))


MAILS: dict[str, Callable[[Site, str], EmailMessage]] = {
    "alert": alert, "digest": digest, "confirmation": confirmation, "already subscribed": already_subscribed}


def html_text(html: str) -> str:
    """The HTML's words, tags dropped and spacing collapsed (a sentence may be split over lines)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("kind", list(MAILS))
def test_no_mail_says_what_issue_16_found_wrong(mail_site: Site, kind: str, lang: str) -> None:
    message = MAILS[kind](mail_site, lang)
    text, html = parts(message)
    for bad in BAD_WORDING:
        assert bad not in text and bad not in html_text(html), (kind, lang, bad)
    # a text part has no button to press: it speaks of links
    assert "button" not in text.lower() and "버튼" not in text
    assert message["Content-Language"] == lang


@pytest.mark.parametrize(("lang", "footer"), [
    ("en", "You are receiving this bulletin because you subscribed to UNPOG News."),
    ("ko", "유엔거버넌스센터 소식 구독을 신청하신 분께 보내 드리는 메일입니다."),
])
@pytest.mark.parametrize("kind", ["alert", "digest"])
def test_the_bulletin_footer_reads_well_in_both_parts(mail_site: Site, kind: str, lang: str, footer: str) -> None:
    text, html = parts(MAILS[kind](mail_site, lang))
    assert footer in text and footer in html_text(html)


@pytest.mark.parametrize("title", ["UNPOG News", "News", "UN Project Office on Governance", "Governance Weekly"])
def test_the_english_footer_reads_well_for_every_title(mail_site: Site, title: str) -> None:
    site = set_settings(mail_site, SITE_TITLE_EN=title)
    text, html = parts(alert(site, "en"))
    expected = f"You are receiving this bulletin because you subscribed to {title}."
    assert expected in text and expected in html_text(html)
    assert "news from" not in text


@pytest.mark.parametrize(("lang", "html_words", "text_words"), [
    ("en", "please confirm your subscription with the button below.",
     "please confirm your subscription by opening the link below."),
    ("ko", "아래 버튼을 눌러 구독 신청을 확인해 주시면", "아래 링크를 열어 구독 신청을 확인해 주시면"),
])
def test_the_confirmation_mail_names_a_button_in_html_and_a_link_in_text(
        mail_site: Site, lang: str, html_words: str, text_words: str) -> None:
    message = confirmation(mail_site, lang)
    text, html = parts(message)
    assert html_words in html_text(html) and text_words in text
    title = mail_site.title(lang)
    # the site title is said once, never followed by a second word for news
    assert text.count(title) == 1 and f"{title} 소식지" not in text and f"{title} 소식지" not in html_text(html)
    # the link the text speaks of is on the line below, alone, so that every client makes it clickable
    lines = text.splitlines()
    link_line = next(i for i, line in enumerate(lines) if line.startswith("https://news.unpog.example/confirm/"))
    assert text_words in " ".join(lines[:link_line]) and lines[link_line].split() == [lines[link_line]]


def test_the_korean_confirmation_mail_in_full(mail_site: Site) -> None:
    message = confirmation(mail_site, "ko")
    text, _ = parts(message)
    assert message["Subject"] == "유엔거버넌스센터 소식 구독 신청을 확인해 주세요"
    assert text.startswith("유엔거버넌스센터 소식 구독을 신청해 주셔서 감사합니다. 아래 링크를 열어 구독 신청을 확인해 "
                           "주시면 소식지를 보내 드리겠습니다.\n")
    assert "구독을 신청하지 않으셨다면 이 메일을 무시하셔도 됩니다. 소식지는 발송되지 않습니다." in text


@pytest.mark.parametrize(("lang", "subject", "body"), [
    ("en", "You are already subscribed to UNPOG News", "It already receives our bulletins"),
    ("ko", "이미 유엔거버넌스센터 소식 구독 중입니다", "이 주소로 유엔거버넌스센터 소식 구독 신청이 들어왔습니다"),
])
def test_the_already_subscribed_mail(mail_site: Site, lang: str, subject: str, body: str) -> None:
    message = already_subscribed(mail_site, lang)
    text, html = parts(message)
    assert message["Subject"] == subject and body in text and body in html_text(html)


@pytest.mark.parametrize(("count", "lang", "intro"), [
    (1, "en", "1 new article since 1 January 2024."),
    (None, "en", "new articles since 1 January 2024."),
    (1, "ko", "2024년 1월 1일 이후 새 글 1건을 보내 드립니다."),
    (None, "ko", "건을 모아 보내 드립니다."),
])
def test_the_digest_counts_in_words_that_agree(mail_site: Site, count: int | None, lang: str, intro: str) -> None:
    message = digest(mail_site, lang, count)
    text, html = parts(message)
    assert intro in text and intro in html_text(html)
    if lang == "ko":
        assert message["Subject"] == "유엔거버넌스센터 소식: 2024년 1월 1일 이후 새 글 모음"


# --- the postal address ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("kind", ["alert", "digest", "confirmation"])
def test_the_postal_address_is_in_the_html_and_the_text_part(mail_site: Site, kind: str, lang: str) -> None:
    text, html = parts(MAILS[kind](mail_site, lang))
    text_lines = text.splitlines()
    for line in POSTAL_LINES:
        assert line in text_lines                      # one line each, as written
    assert "<br>".join(POSTAL_LINES) in html and "<address" in html


def test_no_postal_address_no_empty_block(mail_site: Site) -> None:
    site = set_settings(mail_site, BULLETIN_POSTAL_ADDRESS="")
    text, html = parts(alert(site, "en"))
    assert "<address" not in html and not text.endswith("\n\n")


# --- the sender's name per language -----------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "english", "korean"), [
    ({}, "UNPOG News", "유엔거버넌스센터 소식"),                                   # SITE_TITLE_<LANG>
    ({"BULLETIN_FROM_NAME_KO": "유엔거버넌스센터", "BULLETIN_FROM_NAME_EN": "UNPOG"}, "UNPOG", "유엔거버넌스센터"),
    ({"SITE_TITLE_KO": "", "SITE_TITLE_EN": ""}, "News desk", "News desk"),        # BULLETIN_FROM's name
])
def test_the_sender_name_is_the_one_of_the_mails_language(mail_site: Site, settings: dict[str, str], english: str,
                                                          korean: str) -> None:
    site = set_settings(mail_site, **settings)
    for lang, name in (("en", english), ("ko", korean)):
        for message in (alert(site, lang), confirmation(site, lang)):
            [sender] = message["From"].addresses
            assert (sender.display_name, sender.addr_spec) == (name, "news@unpog.example"), lang


def test_without_bulletin_from_the_korean_sender_is_still_korean(site: Site) -> None:
    [sender] = alert(site, "ko")["From"].addresses
    assert sender.display_name == "유엔거버넌스센터 소식"


def test_a_sender_name_with_a_line_break_is_refused(mail_site: Site) -> None:
    from publisher.config import Config

    config_site = Site(mail_site.root, Config.load(mail_site.root,
                                                   environ={"BULLETIN_FROM_NAME_KO": "유엔\r\nBcc: x@example.org"}))
    with pytest.raises(ConfigError, match=r"^BULLETIN_FROM_NAME_KO \(from environment\): expected one line"):
        alert(config_site, "ko")


# --- images at the published site's address ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_images_and_links_point_at_the_published_site_never_localhost(mail_site: Site, lang: str) -> None:
    for message in (alert(mail_site, lang), digest(mail_site, lang)):
        text, html = parts(message)
        assert "localhost" not in html and "localhost" not in text
        sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
        assert sources, "the sample bulletin shows its cover image and logo"
        for src in sources:
            assert src.startswith(("https://news.unpog.example/", "cid:logo-")), src


# --- the logo -----------------------------------------------------------------------------------------------------


def test_the_logo_file_travels_inline_and_shows_without_the_site(mail_site: Site) -> None:
    from publisher.formatters.email import LOGO_HEIGHT

    logo = mail_site.root / "content" / "images" / "unpog-logo.png"
    message = alert(mail_site, "ko")
    related = next(part for part in message.walk() if part.get_content_type() == "multipart/related")
    html_part, image_part = list(related.iter_parts())
    cid = image_part["Content-ID"].strip("<>")
    assert image_part.get_content() == logo.read_bytes()
    assert image_part.get_content_disposition() == "inline" and image_part.get_filename() == "unpog-logo.png"
    html = html_part.get_content()
    [tag] = re.findall(rf'<img[^>]* src="cid:{re.escape(cid)}"[^>]*>', html)
    assert 'alt="유엔거버넌스센터 소식"' in tag and f'height="{LOGO_HEIGHT}"' in tag
    # the same file makes the same Content-ID: a bulletin sent again after a crash is the same message
    again = alert(mail_site, "ko")
    assert next(p for p in again.walk() if p.get_content_type() == "image/png")["Content-ID"] == image_part["Content-ID"]


def test_each_reader_still_gets_their_own_links_inside_the_related_part(mail_site: Site) -> None:
    from publisher import tokens

    _, html = parts(alert(mail_site, "en"))
    [link] = re.findall(r'href="(https://news.unpog.example/unsubscribe/[^"]+)"', html)
    assert tokens.verify("unsubscribe", link.rsplit("/", 1)[1], mail_site) == {"email": "reader-en@example.org"}


def test_a_logo_url_is_used_as_it_is(mail_site: Site) -> None:
    site = set_settings(mail_site, BULLETIN_LOGO="https://cdn.unpog.example/logo.png")
    message = alert(site, "en")
    assert not any(part.get_content_maintype() == "image" for part in message.walk())
    _, html = parts(message)
    assert '<img src="https://cdn.unpog.example/logo.png" alt="UNPOG News"' in html


def test_no_logo_the_title_in_the_masthead(mail_site: Site) -> None:
    site = set_settings(mail_site, BULLETIN_LOGO="")
    message = alert(site, "en")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert '<a href="https://news.unpog.example/en/"' in parts(message)[1]


def test_the_preview_shows_the_logo_as_a_data_url(mail_site: Site) -> None:
    from publisher.channels.email import EmailChannel

    [rendition] = EmailChannel(mail_site).render(story_for(mail_site, "2024-unpsf-incheon"), ["en"])
    html = rendition.content if isinstance(rendition.content, str) else rendition.content.decode()
    assert "cid:" not in html and 'src="data:image/png;base64,' in html


@pytest.mark.parametrize(("make", "value", "message"), [
    (None, "images/missing.png", "file not found: images/missing.png"),
    (None, "../outside.png", "must stay inside the site folder"),
    (None, ".publisher/logo.png", "hidden file or folder"),
    (None, "javascript:alert(1)", "expected a path inside the site folder or an http(s) URL"),
    ("symlink", "images/linked.png", "must stay inside the site folder"),
    ("text", "images/fake.png", "expected a PNG, JPEG or GIF image"),
    ("large", "images/large.png", "keep it under 200 KB"),
])
def test_a_bad_logo_is_one_error_naming_the_setting(mail_site: Site, tmp_path: Path, make: str | None, value: str,
                                                    message: str) -> None:
    from publisher.formatters.email import bulletin_logo

    images = mail_site.root / "content" / "images"
    if make == "symlink":
        outside = tmp_path / "secret.png"
        outside.write_bytes((images / "unpog-logo.png").read_bytes())
        (images / "linked.png").symlink_to(outside)
    elif make == "text":
        (images / "fake.png").write_text("not an image", encoding="utf-8")
    elif make == "large":
        import os

        (images / "large.png").write_bytes((images / "unpog-logo.png").read_bytes() + os.urandom(210_000))
    site = set_settings(mail_site, BULLETIN_LOGO=value)
    with pytest.raises(ConfigError, match=rf"^BULLETIN_LOGO \(from publisher.toml\): .*{re.escape(message)}"):
        bulletin_logo(site)


def test_publish_stops_before_writing_anything_on_a_bad_logo(site_dir: Path, cli: Callable[..., Result]) -> None:
    result = cli("publish", env={"BULLETIN_LOGO": "../../etc/passwd.png"})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: BULLETIN_LOGO (from environment): must stay")
    for folder in ("public", "outbox"):
        assert not (site_dir / folder).exists() or not any((site_dir / folder).iterdir()), folder


# --- the Korean catalogs --------------------------------------------------------------------------------------


def korean_messages() -> dict[str, str]:
    from babel.messages.pofile import read_po

    from publisher.resources import locales_dir

    found: dict[str, str] = {}
    for path in sorted((locales_dir() / "ko" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale="ko"):
                if message.id and isinstance(message.id, str):
                    found[message.id] = str(message.string)
    return found


def test_every_korean_string_keeps_the_placeholders_of_its_english() -> None:
    for msgid, msgstr in korean_messages().items():
        assert msgstr, f"untranslated: {msgid!r}"
        english, korean = set(re.findall(r"{\w+}", msgid)), set(re.findall(r"{\w+}", msgstr))
        assert korean <= english, msgid          # a placeholder the code does not give would fail at format()
        # Only the site title may go (a few page sentences read better without it; the page names the site).
        assert english - korean <= {"{site}"}, msgid


def test_no_korean_string_puts_a_word_for_news_after_the_site_title() -> None:
    # Korean site titles end in 소식 often (유엔거버넌스센터 소식): "{site} 소식", "{site} 소식지" say it twice.
    for msgid, msgstr in korean_messages().items():
        assert not re.search(r"{site}\s*소식", msgstr), msgid


def test_a_message_shared_by_two_catalogs_says_the_same_in_both() -> None:
    # Every catalog of a language is merged into one: the last one read would win, silently.
    from babel.messages.pofile import read_po

    from publisher.resources import locales_dir

    seen: dict[str, tuple[str, str]] = {}
    for path in sorted((locales_dir() / "ko" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale="ko"):
                if not message.id or not isinstance(message.id, str):
                    continue
                if message.id in seen:
                    assert seen[message.id][1] == message.string, (message.id, seen[message.id][0], path.name)
                seen[message.id] = (path.name, str(message.string))
