"""Unsubscribing: a page with a button for people, and the RFC 8058 one-click POST for mail providers."""

from __future__ import annotations

import pytest

from publisher.site import Site
from publisher.tokens import link
from tests.web.conftest import add_subscriber, heading, make_client, subscriber

pytestmark = pytest.mark.both_databases

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def unsubscribe_path(site: Site, address: str) -> str:
    return link(site, "unsubscribe", {"email": address}).removeprefix(site.url)


def test_the_page_shows_a_button_and_changes_nothing(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org", lang="ko")
    page = client.get(unsubscribe_path(site, "reader@example.org") + "?lang=ko")
    assert page.status_code == 200
    assert "reader@example.org" in page.text and "구독 해지" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert subscriber(site, "reader@example.org").status == "active"   # mail scanners follow every GET


def test_one_click_post_without_cookies_unsubscribes_and_is_idempotent(site: Site) -> None:
    add_subscriber(site, "reader@example.org")
    path = unsubscribe_path(site, "reader@example.org")
    with make_client(site, client=("74.125.0.9", 41000)) as mail_provider:   # Gmail's servers, not the reader
        first = mail_provider.post(path, data=ONE_CLICK)
        assert first.status_code == 200
        assert "set-cookie" not in first.headers
        assert subscriber(site, "reader@example.org").status == "unsubscribed"
        second = mail_provider.post(path, data=ONE_CLICK)
    assert second.status_code == 200 and heading(second.text) == heading(first.text)
    assert subscriber(site, "reader@example.org").status == "unsubscribed"


def test_one_click_accepts_multipart_bodies_too(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org")
    response = client.post(unsubscribe_path(site, "reader@example.org"), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert subscriber(site, "reader@example.org").status == "unsubscribed"


def test_a_post_without_the_one_click_body_changes_nothing(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org")
    response = client.post(unsubscribe_path(site, "reader@example.org"), data={"something": "else"})
    assert response.status_code == 400
    assert subscriber(site, "reader@example.org").status == "active"


def test_forged_or_misused_tokens_get_400_and_change_nothing(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org")
    path = unsubscribe_path(site, "reader@example.org")
    altered = path[:-3] + ("xyz" if not path.endswith("xyz") else "abc")
    preferences_token = link(site, "preferences", {"email": "reader@example.org"}).rsplit("/", 1)[1]
    for bad in (altered, f"/unsubscribe/{preferences_token}", "/unsubscribe/not-a-token"):
        assert client.get(bad).status_code == 400
        response = client.post(bad, data=ONE_CLICK)
        assert response.status_code == 400
        assert "This link is not valid." in response.text
    assert subscriber(site, "reader@example.org").status == "active"


def test_the_list_unsubscribe_header_of_a_real_bulletin_works(client, site: Site) -> None:
    """The List-Unsubscribe URL in the email channel's own message is answered here, as RFC 8058 asks."""
    import email
    from email import policy

    from publisher.channels.email import EmailChannel

    story = site.articles().story("2024-unpsf-incheon")
    [eml] = [f for r in EmailChannel(site).render(story, ["ko"]) for f in r.files if f.filename.endswith(".eml")]
    message = email.message_from_bytes(eml.content, policy=policy.default)
    address = message["To"].addresses[0].addr_spec
    add_subscriber(site, address, lang="ko")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert url.startswith(site.url + "/unsubscribe/")
    response = client.post(url.removeprefix(site.url), data=ONE_CLICK)
    assert response.status_code == 200
    assert subscriber(site, address).status == "unsubscribed"


def test_an_address_no_longer_on_the_list_gets_the_same_answer(client, site: Site) -> None:
    response = client.post(unsubscribe_path(site, "gone@example.org"), data=ONE_CLICK)
    assert response.status_code == 200
    assert subscriber(site, "gone@example.org") is None       # unsubscribing never adds anyone



def test_the_answer_is_in_the_readers_language_whatever_the_provider_asks(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org", lang="ko")
    path = unsubscribe_path(site, "reader@example.org")
    assert heading(client.get(path, headers={"Accept-Language": "en"}).text) == "구독 해지"
    response = client.post(path, data=ONE_CLICK, headers={"Accept-Language": "en-US"})
    assert heading(response.text) == "구독이 해지되었습니다"


def test_concurrent_one_click_posts_on_a_real_server_all_land(site: Site) -> None:
    """Uvicorn runs requests on a thread pool over one SQLite connection: 60 at once must all be recorded."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.web.conftest import uvicorn_server

    addresses = [f"reader{n}@example.org" for n in range(60)]
    for address in addresses:
        add_subscriber(site, address)
    paths = [unsubscribe_path(site, address) for address in addresses]
    with uvicorn_server(site) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(lambda path: http.post(path, data=ONE_CLICK).status_code, paths + paths))
    assert statuses == [200] * 120
    assert {subscriber(site, address).status for address in addresses} == {"unsubscribed"}
