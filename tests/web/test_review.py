"""The review page: every rendition of one article per language, and who may open it."""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.site import Site
from tests.web.conftest import LOCAL_CLIENT, REMOTE_CLIENT, form_token, heading, make_client

SLUG = "2024-unpsf-incheon"


def column(page_html: str, lang: str) -> str:
    """The HTML of one language column of the review page."""
    match = re.search(rf'<section class="column" lang="{lang}".*?</section>', page_html, re.S)
    assert match, f"no {lang} column"
    return match.group(0)


def test_index_lists_every_article(client, site: Site) -> None:
    page = client.get("/review?lang=en")
    assert page.status_code == 200
    for slug in site.articles().stories:
        assert f'href="/review/{slug}?lang=en"' in page.text


def test_both_languages_side_by_side_with_every_rendition(client, site: Site) -> None:
    story = site.articles().story(SLUG)
    page = client.get(f"/review/{SLUG}?lang=en")
    assert page.status_code == 200
    for lang in ("en", "ko"):
        part = column(page.text, lang)
        article = story.get(lang)
        # the email as rendered, in sandboxed iframes at desktop and phone widths, and its plain-text part
        frames = re.findall(r'<iframe title="[^"]+" sandbox srcdoc="([^"]*)" width="(\d+)"', part)
        assert [width for _, width in frames] == ["600", "375"]
        srcdoc = html.unescape(frames[0][0])
        assert srcdoc.startswith("<!DOCTYPE html>") and html.escape(article.title, quote=False) in srcdoc
        assert "Plain-text part" in part and html.escape(article.title) in part
        assert "<strong>Preheader:</strong>" in part
        # each social post with its weighted length against its limit
        lengths = re.findall(r'<p class="length (?:over|within)">(\d+) of (\d+) characters</p>', part)
        assert {int(limit) for _, limit in lengths} >= {280, 500, 300}     # X, Mastodon, Bluesky at least
        assert all(int(length) <= int(limit) for length, limit in lengths)
        # the feed entry, for this article's own URL
        entry = re.search(r'Feed entry</h3>\s*<pre tabindex="0" class="code">(.*?)</pre>', part, re.S)
        assert entry and json.loads(html.unescape(entry.group(1)))["url"] == article.url
    assert "Original" in column(page.text, "en") and "Human translation" in column(page.text, "ko")
    assert "Original text: nothing to check." in column(page.text, "en")
    assert re.search(r"All \d+ glossary terms of the source are rendered", column(page.text, "ko"))


def test_the_glossary_check_names_the_terms_a_translation_misses(client, site: Site) -> None:
    path = site.content_dir / f"{SLUG}.ko.md"
    path.write_text(path.read_text(encoding="utf-8").replace("유엔거버넌스센터", "유엔 사무소"), encoding="utf-8")
    part = column(client.get(f"/review/{SLUG}?lang=en").text, "ko")
    assert "Glossary terms not rendered as the glossary says:" in part
    assert "UNPOG -&gt; 유엔거버넌스센터" in part


def test_a_missing_or_unpublishable_version_is_explained(client, site: Site) -> None:
    part = column(client.get("/review/2024-sdg16-knowledge-forum?lang=en").text, "ko")
    assert "No version in this language." in part and "publisher translate" in part
    machine = site.content_dir / f"{SLUG}.ko.md"
    machine.write_text(machine.read_text(encoding="utf-8").replace("status: human", "status: machine"), encoding="utf-8")
    part = column(client.get(f"/review/{SLUG}?lang=en").text, "ko")
    assert "Machine translation" in part and "Will not be published." in part
    assert "PUBLISHER_ALLOW_MACHINE_TRANSLATION" in part


def test_the_ledger_state_per_channel(client, site: Site) -> None:
    from publisher.delivery import DeliveryKey

    other = Site(site.root)   # another process's connection
    ledger = other.ledger()
    ledger.begin(DeliveryKey(SLUG, "ko", "x", "@unpog_ko"))
    ledger.mark(DeliveryKey(SLUG, "ko", "x", "@unpog_ko"), "sent", remote_id="1", remote_url="https://x.com/unpog_ko/status/1")
    ledger.ensure_pending([DeliveryKey(SLUG, "ko", "email", f"reader{n}@example.org") for n in range(30)])
    ledger.begin(DeliveryKey(SLUG, "ko", "mastodon", "@unpog@mastodon.example"))
    ledger.mark(DeliveryKey(SLUG, "ko", "mastodon", "@unpog@mastodon.example"), "unconfirmed", error="timed out")
    other.close()
    page = client.get(f"/review/{SLUG}?lang=ko")
    part = column(page.text, "ko")
    assert "발송됨 1" in part and 'href="https://x.com/unpog_ko/status/1"' in part
    assert "대기 30" in part                                    # a bulletin: the count, and a sample of rows
    assert part.count("reader") == 20
    assert "미확인 1" in part and "timed out" in part
    assert "아직 발송한 것이 없습니다." in column(page.text, "en")


BROKEN_PLUGIN = """
from publisher.channels.base import Channel
from publisher.errors import ChannelError


class BrokenChannel(Channel):
    name = "broken"
    title = "Broken plugin"

    def render(self, story, langs):
        raise ChannelError("broken: the template is missing")
"""


@pytest.fixture
def broken_plugin(tmp_path: Path) -> Iterator[None]:
    """A third-party channel whose render fails, installed as a real entry point (a dist-info folder on sys.path)."""
    from publisher.channels import registry

    folder = tmp_path / "plugins"
    dist = folder / "publisher_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (folder / "broken_channel.py").write_text(BROKEN_PLUGIN, encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: publisher-broken\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[publisher.channels]\nbroken = broken_channel:BrokenChannel\n",
                                           encoding="utf-8")
    sys.path.insert(0, str(folder))
    registry.forget_channels()
    yield
    sys.path.remove(str(folder))
    sys.modules.pop("broken_channel", None)
    registry.forget_channels()


def test_a_broken_channel_is_shown_and_the_others_still_render(broken_plugin: None, client) -> None:
    page = client.get(f"/review/{SLUG}?lang=en")
    assert page.status_code == 200
    assert "Broken plugin: broken: the template is missing" in page.text
    assert "<iframe" in page.text


def test_an_unknown_article_is_404(client) -> None:
    response = client.get("/review/no-such-article?lang=ko")
    assert response.status_code == 404 and heading(response.text) == "페이지를 찾을 수 없습니다"


@pytest.mark.parametrize(("client_address", "local_only", "headers"), [
    (REMOTE_CLIENT, True, {}),                               # a visitor from elsewhere
    (LOCAL_CLIENT, False, {}),                               # the server listens beyond loopback
    (LOCAL_CLIENT, True, {"X-Forwarded-For": "203.0.113.7"}),  # through a local reverse proxy
    (LOCAL_CLIENT, True, {"Host": "rebound.example:8000"}),  # a page whose name was rebound to 127.0.0.1
])
def test_without_a_token_only_local_visitors_of_a_local_server_get_in(site: Site, client_address, local_only, headers) -> None:
    with make_client(site, client=client_address, review_local_only=local_only) as client:
        for path in ("/review", f"/review/{SLUG}"):
            response = client.get(path, headers=headers)
            assert response.status_code == 403
            assert "PUBLISHER_ADMIN_TOKEN" in response.text


def test_the_admin_token_opens_the_review_page(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_ADMIN_TOKEN", "correct horse battery staple")
    with make_client(site, client=REMOTE_CLIENT, review_local_only=False) as client:
        closed = client.get(f"/review/{SLUG}", follow_redirects=False)
        assert closed.status_code == 303 and closed.headers["location"] == f"/review/login?next=/review/{SLUG}"
        bearer = {"Authorization": "Bearer correct horse battery staple"}
        assert client.get(f"/review/{SLUG}", headers=bearer).status_code == 200
        wrong = {"Authorization": "Bearer guess"}
        assert client.get("/review", headers=wrong, follow_redirects=False).status_code == 303

        login = client.get(f"/review/login?next=/review/{SLUG}")
        token = form_token(login.text)
        refused = client.post("/review/login", data={"csrf_token": token, "token": "guess", "next": "/review"})
        assert refused.status_code == 403 and "publisher_admin" not in refused.headers.get("set-cookie", "")
        signed_in = client.post("/review/login", follow_redirects=False,
                                data={"csrf_token": token, "token": "correct horse battery staple",
                                      "next": "//evil.example/review"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/review"   # no open redirect
        assert client.get(f"/review/{SLUG}").status_code == 200
    # A new token (read when the server restarts) signs every editor out.
    monkeypatch.setenv("PUBLISHER_ADMIN_TOKEN", "a new token")
    with make_client(Site(site.root), client=REMOTE_CLIENT, review_local_only=False) as fresh:
        fresh.cookies.update(client.cookies)
        assert fresh.get("/review", follow_redirects=False).status_code == 303


def test_a_broken_content_file_is_one_line_not_a_traceback(client, site: Site) -> None:
    (site.content_dir / "broken.en.md").write_text("---\ndate: 2024-01-01\n---\n\nNo title.\n", encoding="utf-8")
    response = client.get("/review?lang=en")
    assert response.status_code == 500
    assert "broken.en.md" in response.text and "title" in response.text
    assert "Traceback" not in response.text
    assert client.get("/subscribe").status_code == 200        # readers can still subscribe


def test_publishing_from_the_review_page_asks_first_and_sends_once(client, site: Site) -> None:
    page = client.get(f"/review/{SLUG}?lang=en")
    assert f'href="/review/{SLUG}/publish?lang=en"' in page.text
    confirm = client.get(f"/review/{SLUG}/publish?lang=en")
    assert confirm.status_code == 200
    assert "Yes, publish now" in confirm.text and "local: Maildir at outbox/mail/" in confirm.text
    assert not (site.outbox_dir / "x").exists()                       # asking sends nothing
    assert client.post(f"/review/{SLUG}/publish", data={"lang": "en"}).status_code == 403   # no CSRF token
    assert not (site.outbox_dir / "x").exists()

    token = form_token(confirm.text)
    row = re.compile(r'<tr><td>(en|ko)</td><td>([a-z]+)</td><td>[^<]*</td><td class="(\w+)">[^<]+</td><td>([^<]*)</td>')
    first = {(lang, channel): (state, note) for lang, channel, state, note in
             row.findall(client.post(f"/review/{SLUG}/publish?lang=en", data={"csrf_token": token}).text)}
    assert first[("ko", "x")] == ("sent", "written locally; not posted")
    assert first[("en", "feeds")][0] == "sent"
    posts = sorted((site.outbox_dir / "x").glob("*.json"))
    assert [p.name for p in posts] == [f"{SLUG}.en.json", f"{SLUG}.ko.json"]
    written = [p.stat().st_mtime_ns for p in posts]

    again = {(lang, channel): (state, note) for lang, channel, state, note in
             row.findall(client.post(f"/review/{SLUG}/publish?lang=en", data={"csrf_token": token}).text)}
    assert again[("ko", "x")] == ("sent", f"already written: outbox/x/{SLUG}.ko.json")   # the ledger says: once
    assert [p.stat().st_mtime_ns for p in posts] == written


def test_guessing_the_admin_token_is_rate_limited(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.web.review import LOGIN_ATTEMPTS

    monkeypatch.setenv("PUBLISHER_ADMIN_TOKEN", "correct horse battery staple")
    with make_client(site, client=REMOTE_CLIENT, review_local_only=False) as client:
        token = form_token(client.get("/review/login").text)
        for _ in range(LOGIN_ATTEMPTS):
            guess = client.post("/review/login", data={"csrf_token": token, "token": "guess", "next": "/review"})
            assert guess.status_code == 403
        refused = client.post("/review/login", follow_redirects=False,
                              data={"csrf_token": token, "token": "correct horse battery staple", "next": "/review"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "publisher_admin" not in refused.headers.get("set-cookie", "")   # not even the right token, for now
    with make_client(site, client=LOCAL_CLIENT, review_local_only=False) as other:   # another client is not held up
        token = form_token(other.get("/review/login").text)
        signed_in = other.post("/review/login", follow_redirects=False,
                               data={"csrf_token": token, "token": "correct horse battery staple", "next": "/review"})
        assert signed_in.status_code == 303
