"""Issue 11, the web app: dot-files, trusted proxies, security headers, links on error pages, tokens in the log,
and confirmation links replayed after an unsubscribe."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import itsdangerous.timed
import pytest

from publisher.site import Site
from publisher.tokens import link
from tests.conftest import set_settings
from tests.web.conftest import (
    LOCAL_CLIENT,
    REMOTE_CLIENT,
    add_subscriber,
    form_token,
    heading,
    link_in,
    mails,
    make_client,
    subscriber,
    uvicorn_server,
)

BASE = "http://localhost:8000"


@pytest.fixture
def built_site(site: Site) -> Site:
    from publisher.pipeline import build_feeds

    build_feeds(site, include_unpublished=True)
    return site


# --- 11: nothing whose name starts with a dot is served ---------------------------------------------------


@pytest.mark.parametrize("path", [
    "/.env", "/%2eenv", "/%2Eenv", "/.git/config", "/%2egit/config", "/en/.rss.xml.ab12cd_3.tmp",
    "/en/%2erss.xml.ab12cd_3.tmp", "/en/.hidden/page.html", "/en/%2ehidden/page.html", "/en/.hidden/",
])
def test_dot_files_and_dot_folders_are_404_encoded_or_not(built_site: Site, path: str) -> None:
    public = built_site.public_dir
    for planted in (".env", ".git/config", "en/.rss.xml.ab12cd_3.tmp", "en/.hidden/page.html",
                    "en/.hidden/index.html"):
        (public / planted).parent.mkdir(parents=True, exist_ok=True)
        (public / planted).write_text("SECRET=do-not-serve\n")
    with make_client(built_site, client=REMOTE_CLIENT) as client:
        response = client.get(BASE + path)
        assert client.get("/en/rss.xml").status_code == 200      # the rest of public/ is still served
    assert response.status_code == 404
    assert "do-not-serve" not in response.text


# --- 14: forwarding headers only from the proxies named in PUBLISHER_FORWARDED_ALLOW_IPS -------------------


def subscribe_with(client: httpx.Client | object, forwarded_for: str) -> int:
    page = client.get("/subscribe?lang=en")  # type: ignore[attr-defined]
    data = {"csrf_token": form_token(page.text), "ui_lang": "en", "lang": "en",
            "email": f"r{forwarded_for.replace('.', '-')}@example.org"}
    return int(client.post("/subscribe", data=data,  # type: ignore[attr-defined]
                           headers={"X-Forwarded-For": forwarded_for}).status_code)


@pytest.fixture
def serve_url(site: Site) -> Iterator[str]:
    """The app as ``publisher serve`` runs it (``server_config``) under a real uvicorn on 127.0.0.1."""
    with uvicorn_server(Site(site.root), as_served=True) as url:
        yield url


def test_rotating_x_forwarded_for_from_127_0_0_1_does_not_bypass_the_subscribe_limit(
    site: Site, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("PUBLISHER_SUBSCRIBE_RATE_LIMIT", "3")
    base = request.getfixturevalue("serve_url")
    with httpx.Client(base_url=base) as client:
        answers = [subscribe_with(client, f"198.51.100.{n}") for n in range(1, 6)]
    assert answers == [200, 200, 200, 429, 429]


def test_rotating_x_forwarded_for_does_not_bypass_the_login_limit(
    site: Site, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from publisher.web.review import LOGIN_ATTEMPTS

    monkeypatch.setenv("PUBLISHER_ADMIN_TOKEN", "correct horse battery staple")
    base = request.getfixturevalue("serve_url")
    with httpx.Client(base_url=base) as client:
        token = form_token(client.get("/review/login").text)
        answers = [client.post("/review/login", headers={"X-Forwarded-For": f"198.51.100.{n}"},
                               data={"csrf_token": token, "token": "guess", "next": "/review"}).status_code
                   for n in range(LOGIN_ATTEMPTS + 2)]
    assert answers == [403] * LOGIN_ATTEMPTS + [429, 429]


def test_a_named_proxy_is_believed_and_nobody_else(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_SUBSCRIBE_RATE_LIMIT", "1")
    monkeypatch.setenv("PUBLISHER_FORWARDED_ALLOW_IPS", "127.0.0.1, 10.0.0.0/8")
    with make_client(Site(site.root), client=LOCAL_CLIENT) as proxy:     # each visitor counted on their own
        assert [subscribe_with(proxy, f"198.51.100.{n}") for n in range(1, 4)] == [200, 200, 200]
        assert subscribe_with(proxy, "198.51.100.1") == 429
    with make_client(Site(site.root), client=REMOTE_CLIENT) as stranger:  # not a proxy: its header is ignored
        assert [subscribe_with(stranger, f"192.0.2.{n}") for n in range(1, 3)] == [200, 429]


def test_no_proxy_is_trusted_by_default(site: Site) -> None:
    assert site.config.get("PUBLISHER_FORWARDED_ALLOW_IPS") == ()


def test_the_proxy_setting_is_read_as_uvicorn_matches_it() -> None:
    from publisher.settings import parse_proxy_addresses

    assert parse_proxy_addresses(" 127.0.0.1, 10.0.0.1/8 ,::1") == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert parse_proxy_addresses("*") == ("*",) and parse_proxy_addresses("") == ()
    for bad in ("nginx", "*, 10.0.0.1", "300.1.1.1"):
        with pytest.raises(ValueError, match="expected IP addresses"):
            parse_proxy_addresses(bad)


# --- 15: security headers on every kind of answer ---------------------------------------------------------


def assert_security_headers(response: httpx.Response, *, referrer: str | None = None) -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", response.url
    assert headers.get("referrer-policy") in ({referrer} if referrer else {"no-referrer",
                                                                           "strict-origin-when-cross-origin"})
    policy = {part.split()[0]: part.split()[1:] for part in headers["content-security-policy"].split(";")
              if part.strip()}
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy           # no script at all, inline or not
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]


def test_public_files_feeds_opml_and_redirects_carry_the_security_headers(built_site: Site) -> None:
    with make_client(built_site, client=REMOTE_CLIENT) as client:
        answers = {
            "index page": client.get("/en/"),
            "article page": client.get(next(p for p in ("/en/" + d.name + "/" for d in
                                                        (built_site.public_dir / "en").iterdir() if d.is_dir()))),
            "rss": client.get("/en/rss.xml"), "atom": client.get("/ko/atom.xml"), "json": client.get("/en/feed.json"),
            "opml": client.get("/feeds.opml"),
            "image": client.get("/images/unpsf-2024.png"),
            "home redirect": client.get("/", follow_redirects=False),
            "language redirect": client.get("/en", follow_redirects=False),
            "missing file": client.get("/en/nothing-here.xml"),
        }
        etag = answers["rss"].headers["etag"]
        answers["not modified"] = client.get("/en/rss.xml", headers={"If-None-Match": etag})
    assert answers["home redirect"].status_code == 302 and answers["language redirect"].status_code in (301, 307)
    assert answers["not modified"].status_code == 304 and answers["image"].status_code == 200
    for kind, response in answers.items():
        assert_security_headers(response), kind


def test_the_static_policy_allows_what_the_generated_pages_use(built_site: Site) -> None:
    """The pages' one stylesheet is an inline <style>; their images are local or https; there is no script."""
    with make_client(built_site) as client:
        response = client.get("/en/")
        policy = response.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in policy and "img-src 'self' https:" in policy
    for page in built_site.public_dir.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html and 'rel="stylesheet"' not in html, page
        for src in re.findall(r'<img[^>]* src="([^"]+)"', html):
            parts = urlsplit(src)   # 'self' (relative, or the site's own address) or https
            assert (not parts.scheme and not parts.netloc) or parts.scheme == "https" \
                or parts.netloc == urlsplit(built_site.url).netloc, src


def test_the_apps_own_pages_carry_the_security_headers(site: Site) -> None:
    add_subscriber(site, "p@example.org", status="pending")
    confirm = link(site, "confirm", {"email": "p@example.org"}).removeprefix(site.url)
    with make_client(site, client=REMOTE_CLIENT) as client:
        answers = [client.get("/subscribe"), client.get(confirm), client.get("/confirm/not-a-token"),
                   client.get("/review"), client.get("/nowhere"), client.delete("/subscribe")]
    assert [r.status_code for r in answers] == [200, 200, 400, 403, 404, 405]
    for response in answers:
        assert_security_headers(response, referrer="no-referrer")   # these pages hold signed links


# --- 16: links on error pages never leave the site --------------------------------------------------------


def links_in(html: str) -> list[str]:
    return re.findall(r'(?:href|action|src)="([^"]*)"', html)


@pytest.mark.parametrize("path", [
    "//evil.example/x", "///evil.example/x", "/\\evil.example/x", "//evil.example/%2e%2e/x",
    "/%2F%2Fevil.example/x", "//evil.example/confirm/abc", "//evil.example/review",
])
def test_no_link_on_an_error_page_leads_off_site(site: Site, path: str) -> None:
    with make_client(site, client=REMOTE_CLIENT) as client:
        responses = [client.get(BASE + path), client.get(BASE + path + "?lang=ko"), client.post(BASE + path)]
    for response in responses:
        assert response.status_code in (404, 405)
        found = links_in(response.text)
        assert any("lang=" in href for href in found)           # the language switch is there
        for href in found:
            assert not href.startswith(("//", "/\\", "\\")), href
            parts = urlsplit(href)
            assert not parts.scheme and not parts.netloc, href
            assert "evil.example" not in href, href


def test_the_language_switch_keeps_the_route(site: Site) -> None:
    with make_client(site) as client:
        page = client.get("/subscribe?lang=ko").text
        missing = client.get("/en/nothing/").text
    assert 'href="/subscribe?lang=en"' in page
    assert 'href="?lang=ko"' in missing       # this very address, on this site


# --- 17: no token in the access log, whatever the path looks like -----------------------------------------


def test_tokens_are_cut_out_of_the_access_log(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    add_subscriber(site, "reader@example.org")
    token = link(site, "unsubscribe", {"email": "reader@example.org"}).rsplit("/", 1)[1]
    payload, stamp, signature = token.split(".")
    paths = [f"/unsubscribe/{token}", f"/unsubscribe//{token}", f"//confirm/{token}", f"/Confirm/{token}",
             f"/UNSUBSCRIBE/{token}/", f"/unsubscribe%2F{token}", f"/unsubscribe%252F{token}",
             f"/preferences/%2F{token}", f"/confirm/{token}/more", f"/elsewhere/{token}", f"/{token}",
             f"/x{token}.html", f"/unsubscribe/{payload}.{stamp}", f"/%2Funsubscribe/{signature}"]
    with caplog.at_level(logging.INFO, logger="publisher.web.access"), make_client(site) as client:
        for path in paths:
            client.get(BASE + path)
    lines = [record.getMessage() for record in caplog.records if record.name == "publisher.web.access"]
    assert len(lines) == len(paths)
    for line in lines:
        assert payload not in line and signature not in line, line
        assert "<token>" in line, line


def test_a_broken_setting_logged_on_a_link_page_has_no_token(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = link(site, "confirm", {"email": "p@example.org"}).rsplit("/", 1)[1]
    monkeypatch.setenv("PUBLISHER_CONFIRM_LINK_HOURS", "soon")
    with caplog.at_level(logging.INFO), make_client(Site(site.root)) as client:
        assert client.get(f"//confirm/{token}").status_code in (404, 500)
        assert client.get(f"/confirm/{token}").status_code == 500
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("publisher"))
    assert "PUBLISHER_CONFIRM_LINK_HOURS" in ours
    assert token.split(".")[2] not in ours


# --- 18: a confirmation link never overrides a later unsubscribe ------------------------------------------


def subscribe(client: object, address: str) -> None:
    page = client.get("/subscribe?lang=en")  # type: ignore[attr-defined]
    answer = client.post("/subscribe", data={  # type: ignore[attr-defined]
        "csrf_token": form_token(page.text), "ui_lang": "en", "lang": "en", "email": address})
    assert answer.status_code == 200


def unsubscribe(client: object, site: Site, address: str) -> None:
    path = link(site, "unsubscribe", {"email": address}).removeprefix(site.url)
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # type: ignore[attr-defined]


def test_an_old_confirm_link_replayed_after_unsubscribing_changes_nothing(site: Site) -> None:
    with make_client(site) as client:
        subscribe(client, "reader@example.org")
        old_link = link_in(mails(site)[-1], "confirm")
        assert heading(client.post(old_link).text) == "Subscription confirmed"
        unsubscribe(client, site, "reader@example.org")
        assert subscriber(site, "reader@example.org").status == "unsubscribed"

        replayed_get, replayed_post = client.get(old_link), client.post(old_link)
    assert subscriber(site, "reader@example.org").status == "unsubscribed"
    for response in (replayed_get, replayed_post):
        assert heading(response.text) == "Not subscribed"
        assert 'href="/subscribe?lang=en"' in response.text       # the way back is a new request
        assert "confirm" not in links_in(response.text)


def test_a_confirm_link_of_a_pending_address_that_unsubscribed_changes_nothing(site: Site) -> None:
    add_subscriber(site, "p@example.org", status="pending")
    confirm = link(site, "confirm", {"email": "p@example.org"}).removeprefix(site.url)
    with make_client(site) as client:
        unsubscribe(client, site, "p@example.org")
        assert heading(client.post(confirm).text) == "Not subscribed"
    assert subscriber(site, "p@example.org").status == "unsubscribed"


def test_after_unsubscribing_a_new_request_brings_a_new_link_and_only_it_confirms(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscriber(site, "reader@example.org", status="pending")
    # The first request's link, made an hour ago (the signer's clock is the only one tokens read).
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600)
    old_link = link(site, "confirm", {"email": "reader@example.org"}).removeprefix(site.url)
    monkeypatch.undo()
    with make_client(site) as client:
        unsubscribe(client, site, "reader@example.org")
        subscribe(client, "reader@example.org")     # anyone can fill in the form with this address
        assert subscriber(site, "reader@example.org").status == "pending"
        replayed = client.post(old_link)
        assert replayed.status_code == 400 and "This link has expired." in replayed.text
        assert subscriber(site, "reader@example.org").status == "pending"

        new_link = link_in(mails(site)[-1], "confirm")
        assert heading(client.post(new_link).text) == "Subscription confirmed"
    assert subscriber(site, "reader@example.org").status == "active"


def test_confirm_moves_only_pending_to_active(site: Site) -> None:
    subscribers = site.subscribers()
    for status in ("unsubscribed", "bounced"):
        subscribers.add(f"{status}@example.org", status=status)
        assert subscribers.confirm(f"{status}@example.org").status == status
    subscribers.add("pending@example.org", status="pending")
    assert subscribers.confirm("pending@example.org").status == "active"
    assert subscribers.request_again("pending@example.org").status == "active"   # an active address stays
