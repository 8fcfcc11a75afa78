"""The bulletin formatter and MIME builder: structure, encodings, headers, sanitizing, DKIM."""

from __future__ import annotations

import email
import subprocess
from email import policy
from pathlib import Path

import pytest

from publisher import tokens
from publisher.site import Site
from publisher.subscribers import Subscriber
from tests.email.conftest import set_settings, story_for


def subscriber(address: str, lang: str, name: str | None = None) -> Subscriber:
    return Subscriber(address, name, lang, "active", [], None, None)  # type: ignore[arg-type]


def wire(site: Site, lang: str, slug: str = "2024-unpsf-incheon", name: str | None = "김민수",
         address: str = "kim@example.kr") -> email.message.EmailMessage:
    """The alert for `slug` in `lang` as it goes on the wire, parsed back by the standard library."""
    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder

    article = story_for(site, slug).get(lang)
    bulletin = BulletinFormatter(site).alert(article)
    builder = MessageBuilder(site)
    data, _ = builder.wire(bulletin, subscriber(address, lang, name))
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")    # CRLF only, as SMTP wants
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    return email.message_from_bytes(data, policy=policy.default)


@pytest.fixture
def mail_site(site: Site) -> Site:
    (site.root / ".env").write_text("PUBLISHER_SECRET_KEY=format-test-key\n", encoding="utf-8")
    return set_settings(site, PUBLISHER_SITE_URL="https://news.unpog.example",
                        BULLETIN_FROM="유엔거버넌스센터 <news@unpog.example>", BULLETIN_REPLY_TO="info@unpog.example")


def test_korean_alert_is_multipart_alternative_with_encoded_korean_headers(mail_site: Site) -> None:
    message = wire(mail_site, "ko")

    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "multipart/related"]  # the richest part last (RFC 2046)
    # the sample's logo (BULLETIN_LOGO) travels with the HTML it belongs to (RFC 2387)
    related = list(message.iter_parts())[1]
    assert [part.get_content_type() for part in related.iter_parts()] == ["text/html", "image/png"]
    assert related.get_param("type") == "text/html"

    raw_headers = message.as_bytes().split(b"\n\n")[0]
    assert raw_headers.isascii()                          # nothing 8-bit in the header block
    assert b"=?utf-8?" in raw_headers                     # RFC 2047 encoded words for Korean
    assert message["Subject"] == "세계 공공행정의 역량 강화: 2024 유엔 공공행정포럼(인천)이 남긴 시사점"
    assert message["To"].addresses[0].display_name == "김민수"
    assert message["To"].addresses[0].addr_spec == "kim@example.kr"
    # SITE_TITLE_KO names the Korean sender before BULLETIN_FROM's name does (BULLETIN_FROM_NAME_KO before both)
    assert message["From"].addresses[0].display_name == "유엔거버넌스센터 소식"
    assert message["From"].addresses[0].addr_spec == "news@unpog.example"
    assert str(message["Reply-To"]) == "info@unpog.example"
    assert message["Content-Language"] == "ko"

    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "2024년 6월 28일" in text and "2024년 6월 28일" in html      # dates as Korean readers write them
    assert "구독 해지" in text and "구독 해지" in html                  # Korean UI strings
    assert "word-break: keep-all" in html


def test_headers_required_by_bulk_sender_rules(mail_site: Site) -> None:
    message = wire(mail_site, "en", name=None, address="reader@example.org")

    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@unpog.example>")
    assert message["Date"].datetime.tzinfo is not None
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://news.unpog.example/unsubscribe/") and unsubscribe.endswith(">")
    token = unsubscribe[1:-1].rsplit("/", 1)[1]
    assert tokens.verify("unsubscribe", token, mail_site) == {"email": "reader@example.org"}
    with pytest.raises(Exception):
        tokens.verify("confirm", token, mail_site)       # a token made for one purpose is no good for another

    # The same signed link is visible in both bodies, and the preferences link too.
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert unsubscribe[1:-1] in text and unsubscribe[1:-1] in html
    assert "https://news.unpog.example/preferences/" in text
    assert "PUBLISHER-" not in html + text               # every marker was replaced


def test_html_is_responsive_with_inlined_css_and_a_preheader(mail_site: Site) -> None:
    html = wire(mail_site, "en").get_body(("html",)).get_content()
    assert '<meta name="viewport"' in html
    assert 'class="preheader" style="' in html          # css-inline moved the rules onto the elements
    assert "@media (max-width: 480px)" in html           # and kept the media query for clients that use it
    assert 'href="https://news.unpog.example/en/2024-unpsf-incheon/"' in html
    # The article image is made absolute (where the feeds publish it): a mail client has no page to resolve it.
    assert 'src="https://news.unpog.example/images/unpsf-2024.png"' in html


def test_nothing_in_an_article_can_inject_script_or_markup(mail_site: Site, write_article) -> None:
    write_article(
        "hostile", "en",
        body='Hello <script>alert(1)</script><img src="x.png" onerror="alert(2)">\n\n'
             '<a href="javascript:alert(3)">click</a> <iframe src="https://evil.example"></iframe>\n\n'
             '[relative](../other/)\n',
        title='Title </title><script>alert(4)</script>', date="2024-07-01",
        summary='<b onclick="x()">Bold</b> summary',
    )
    html = wire(mail_site, "en", slug="hostile").get_body(("html",)).get_content()
    lowered = html.lower()
    for forbidden in ("<script", "onerror", "onclick", "javascript:", "<iframe"):
        assert forbidden not in lowered
    assert "&lt;/title&gt;&lt;script&gt;" in html        # the title is text, escaped
    assert 'href="https://news.unpog.example/en/other/"' in html


def test_machine_translation_carries_the_notice_and_a_link_to_the_original(mail_site: Site, write_article) -> None:
    write_article("forum", "en", title="Forum", date="2024-07-01", summary="A forum.")
    write_article("forum", "ko", title="포럼", date="2024-07-01", summary="포럼입니다.",
                  translation={"status": "machine", "source": "en", "model": "argos"})
    from publisher.formatters.email import BulletinFormatter

    story = story_for(mail_site, "forum")
    bulletin = BulletinFormatter(mail_site).alert(story.get("ko"), original=story.get("en"))
    assert "기계" in bulletin.text and "원문 보기: https://news.unpog.example/en/forum/" in bulletin.text
    assert 'class="notice"' in bulletin.html
    original = BulletinFormatter(mail_site).alert(story.get("en"), original=story.get("en"))
    assert 'class="notice"' not in original.html


def test_digest_lists_articles_newest_first_with_a_translated_subject(mail_site: Site) -> None:
    from datetime import datetime, timezone

    from publisher.formatters.email import BulletinFormatter

    library = mail_site.articles()
    korean = [a for a in library.articles() if a.lang == "ko"]
    bulletin = BulletinFormatter(mail_site).digest(korean, "ko", since=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert bulletin.subject == "유엔거버넌스센터 소식: 2024년 1월 1일 이후 새 글 모음"   # 소식 once
    assert f"이후 새 글 {len(korean)}건을 모아 보내 드립니다." in bulletin.text
    positions = [bulletin.text.index(a.title) for a in sorted(korean, key=lambda a: a.date, reverse=True)]
    assert positions == sorted(positions)


def test_dkim_signature_verifies_with_dkimpy(mail_site: Site, tmp_path: Path) -> None:
    import dkim

    key_file = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key_file), "2048"], check=True, capture_output=True)
    public_der = subprocess.run(["openssl", "rsa", "-in", str(key_file), "-pubout", "-outform", "DER"],
                                check=True, capture_output=True).stdout
    import base64

    dns_record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    signed_site = set_settings(mail_site, DKIM_DOMAIN="unpog.example", DKIM_SELECTOR="news2024",
                               DKIM_PRIVATE_KEY_FILE=str(key_file))

    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder

    builder = MessageBuilder(signed_site)
    bulletin = BulletinFormatter(signed_site).alert(story_for(signed_site, "2024-unpsf-incheon").get("ko"))
    data, _ = builder.wire(bulletin, subscriber("kim@example.kr", "ko", "김민수"))

    assert data.startswith(b"DKIM-Signature:")
    signature = email.message_from_bytes(data, policy=policy.default)["DKIM-Signature"]
    signed = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].replace("\r\n", "").split(":")}
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news2024._domainkey.unpog.example."
        return dns_record

    assert dkim.verify(data, dnsfunc=dns)
    tampered = data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                            b"List-Unsubscribe-Post: List-Unsubscribe=Two-Click")
    assert not dkim.verify(tampered, dnsfunc=dns)
    # As SMTP's DATA body the message is signed before it is stuffed: un-stuffed, the signature holds.
    stuffed, _ = builder.wire(bulletin, subscriber("kim@example.kr", "ko", "김민수"), smtp_data=True)
    assert stuffed.startswith(b"DKIM-Signature:") and stuffed.endswith(b"\r\n.\r\n")
    assert dkim.verify(stuffed[:-3].replace(b"\r\n..", b"\r\n."), dnsfunc=dns)


def test_incomplete_dkim_settings_name_the_missing_one(mail_site: Site) -> None:
    from publisher.errors import ConfigError
    from publisher.mail.message import MessageBuilder

    half = set_settings(mail_site, DKIM_DOMAIN="unpog.example")
    with pytest.raises(ConfigError, match="^DKIM_SELECTOR: DKIM signing needs"):
        MessageBuilder(half)


def test_a_title_written_over_two_lines_makes_a_one_line_subject(mail_site: Site) -> None:
    # The email package refuses a header with a line break: before, publishing such an article crashed mid-send
    # and left the recipient's ledger row in flight.
    path = mail_site.root / "content" / "two-lines.en.md"
    path.write_text('---\ntitle: "Forum opens\\nBcc: someone@example.org"\ndate: 2025-01-02\nsummary: "s"\n---\n\n'
                    "Body.\n", encoding="utf-8")
    message = wire(mail_site, "en", slug="two-lines", name=None, address="reader@example.org")
    assert message["Subject"] == "Forum opens Bcc: someone@example.org"
    assert message["Bcc"] is None


def test_the_cover_image_has_the_address_the_feeds_build_publishes_it_at(mail_site: Site) -> None:
    html = wire(mail_site, "en").get_body(("html",)).get_content()
    article = story_for(mail_site, "2024-unpsf-incheon").get("en")
    assert article.image.src == "images/unpsf-2024.png"
    assert 'src="https://news.unpog.example/images/unpsf-2024.png"' in html
    assert mail_site.media_path(article.image.src) is not None   # the file the feeds copy to public/images/


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("link", ["https://news.unpog.example/u/abc.def_ghi-jkl",
                                  "https://news.unpog.example/u/" + "x=y&" * 40 + ".dot"])
def test_bodies_encoded_once_per_bulletin_are_the_bytes_of_encoding_each_whole_body(mail_site: Site, lang: str,
                                                                                   link: str) -> None:
    # Only the lines holding a recipient's links are encoded per recipient; the result must be what encoding
    # the whole personalized body gives (quoted-printable for English, base64 for Korean).
    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder, WireTemplate, _encode_body

    bulletin = BulletinFormatter(mail_site).alert(story_for(mail_site, "2024-unpsf-incheon").get(lang))
    template = WireTemplate.build(bulletin, MessageBuilder(mail_site))
    unsubscribe, preferences = link, link.replace("/u/", "/p/") + "&long=" + "긴" * 30
    html, text = template.personalize(unsubscribe, preferences)
    whole = template.data.replace(WireTemplate.TEXT_BODY + b"\r\n", _encode_body(text, template.text_cte), 1).replace(
        WireTemplate.HTML_BODY + b"\r\n", _encode_body(html, template.html_cte), 1)
    assert template.fill(unsubscribe, preferences) == whole
    assert unsubscribe.encode() not in template.data


@pytest.mark.parametrize("name", ["김민수", "김" * 40 + " Kim", "Zoë Ångström", " ".join(["😀 émoji"] * 9)])
def test_a_non_ascii_name_in_to_is_encoded_words_of_at_most_75_characters_that_read_back(name: str) -> None:
    from email.header import decode_header, make_header

    from publisher.mail.message import to_header

    value = to_header(name, "reader@example.org")
    assert value.isascii() and all(len(line) <= 78 for line in ("To: " + value).split("\r\n"))
    words, address = value.rsplit("<", 1)
    assert address == "reader@example.org>"
    assert all(len(word) <= 75 for word in words.split())
    # RFC 2047: the white space between adjacent encoded-words is not part of the text.
    assert str(make_header(decode_header(words.strip()))) == name


# --- SMTP DATA built from pieces stuffed once per bulletin ------------------------------------------------

_DOTTY_TEXT = (".A line that starts with a dot\n..two dots\n.\nMid.\n{unsub}\n.{unsub}\n"
               "A long line to wrap" + " word." * 20 + "." * 30 + "\n.Then {pref}.\nEnd without a newline .")
_DOTTY_HTML = ("<p>x</p>\n.<p>dot</p>\n<a href=\"{unsub}\">.unsubscribe</a>\n.<a href=\"{pref}\">p</a>\n"
               + "<p>" + "." * 150 + "</p>\n.")


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("text,html", [
    ("plain text {unsub} {pref}\n", "<p><a href=\"{unsub}\">u</a> <a href=\"{pref}\">p</a></p>\n"),
    (_DOTTY_TEXT, _DOTTY_HTML),
    ("{unsub}\n" + "한국어 본문. " * 40 + "\n.{pref}", ".<p>{unsub}</p>" + "<p>한국어</p>\n." * 20 + "{pref}"),
])
@pytest.mark.parametrize("link", ["https://news.unpog.example/u/abc", "https://news.unpog.example/u/" + "." * 200,
                                  "https://news.unpog.example/u/" + "x.y=" * 60])
def test_a_message_as_smtp_data_is_the_message_dot_stuffed(mail_site: Site, lang: str, text: str, html: str,
                                                          link: str) -> None:
    # wire(smtp_data=True) stuffs the shared pieces once per bulletin and the recipient's lines per message; it
    # must be byte for byte what client.dot_stuffed makes of the whole message: a dot at the start of a line
    # in a shared part, in a personalized line (a link's dots wrapped by quoted-printable to a line start) and
    # where two pieces meet are all doubled.
    from publisher.formatters.email import PREFERENCES_MARKER, UNSUBSCRIBE_MARKER, Bulletin
    from publisher.mail.client import dot_stuffed
    from publisher.mail.message import MessageBuilder, WireTemplate

    def marked(body: str) -> str:
        return body.format(unsub=UNSUBSCRIBE_MARKER, pref=PREFERENCES_MARKER)

    bulletin = Bulletin("alert", lang, "Subject", "preheader", marked(html), marked(text))
    builder = MessageBuilder(mail_site)
    builder.links = lambda recipient: (link, link.replace("/u/", "/p/"))  # type: ignore[method-assign]
    reader = subscriber("reader@example.org", lang, "김민수")
    plain, message_id = builder.wire(bulletin, reader, message_id="<m@x>")
    data, same_id = builder.wire(bulletin, reader, message_id="<m@x>", smtp_data=True)
    assert same_id == message_id
    assert data == dot_stuffed(plain)
    template = builder._templates[id(bulletin)]
    assert isinstance(template, WireTemplate)
    if text is _DOTTY_TEXT and template.text_cte == "quoted-printable":
        assert b"\r\n..A line that starts with a dot\r\n...two dots\r\n" in data   # a shared part, stuffed
    if "." * 200 in link and template.text_cte == "quoted-printable":
        # The link's line is encoded per reader; quoted-printable wraps it so that a line starts with a dot.
        personal = [piece for piece, is_raw in zip(template._text.parts, template._text.raw) if is_raw]
        encoded = [p for p, _ in template._text.pieces(link, link.replace("/u/", "/p/")) if p not in personal
                   and p not in template._text.parts]
        assert any(b"\r\n." in piece for piece in encoded)
        assert all(piece.replace(b"\r\n.", b"\r\n..") in data for piece in encoded)
    assert data.endswith(b"\r\n.\r\n") and not data[:-5].endswith(b"\r\n.")


@pytest.mark.parametrize("pieces", [
    [b".a\r\n", b".b"], [b"x\r", b"\n.y\r\n"], [b"x\r", b"\n", b".z"], [b"", b".", b"\r\n", b"..\r\n.."],
    [b"a\r\n.b\r\n", b"c"], [], [b"\r\n"], [b".\r\n"], [b"abc"], [b"\n.", b"\r\n."],
])
def test_joining_stuffed_pieces_stuffs_where_the_pieces_meet(pieces: list[bytes]) -> None:
    from publisher.mail.client import dot_stuffed
    from publisher.mail.message import _join_stuffed, _stuffed

    assert _join_stuffed([(piece, _stuffed(piece)) for piece in pieces]) == dot_stuffed(b"".join(pieces))
