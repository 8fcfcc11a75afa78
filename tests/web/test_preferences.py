"""The preferences page, reached by the signed link in every bulletin: language and themes."""

from __future__ import annotations

import pytest

from publisher.site import Site
from publisher.tokens import link
from tests.web.conftest import add_subscriber, form_token, heading, make_client, subscriber

pytestmark = pytest.mark.both_databases


def preferences_path(site: Site, address: str) -> str:
    return link(site, "preferences", {"email": address}).removeprefix(site.url)


def test_changing_language_and_themes(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org", lang="en", themes=["digital-government"])
    path = preferences_path(site, "reader@example.org")
    page = client.get(path)
    assert page.status_code == 200
    assert heading(page.text) == "Your preferences"
    assert 'value="digital-government" checked' in page.text
    assert 'value="en" checked' in page.text
    saved = client.post(path, data={"csrf_token": form_token(page.text), "lang": "ko",
                                    "themes": ["capacity-development", "public-service-innovation", "made-up"]})
    assert saved.status_code == 200
    assert "설정을 저장했습니다." in saved.text                  # the answer comes in the language just chosen
    stored = subscriber(site, "reader@example.org")
    assert (stored.lang, stored.themes) == ("ko", ["capacity-development", "public-service-innovation"])


def test_no_theme_means_every_theme(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org", themes=["digital-government"])
    path = preferences_path(site, "reader@example.org")
    token = form_token(client.get(path).text)
    assert client.post(path, data={"csrf_token": token, "lang": "en"}).status_code == 200
    assert subscriber(site, "reader@example.org").themes == []


def test_a_forged_form_changes_nothing(site: Site) -> None:
    add_subscriber(site, "reader@example.org", lang="en")
    path = preferences_path(site, "reader@example.org")
    with make_client(site) as client:
        response = client.post(path, data={"lang": "ko"})          # no token: a cross-site form
        assert response.status_code == 403
        token = form_token(client.get(path).text)
        response = client.post(path, data={"csrf_token": token, "lang": "ko"}, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
    assert subscriber(site, "reader@example.org").lang == "en"


def test_an_unsubscribed_reader_is_not_resubscribed_by_the_preferences_link(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org", status="unsubscribed")
    path = preferences_path(site, "reader@example.org")
    page = client.get(path)
    assert page.status_code == 200 and heading(page.text) == "Not subscribed"
    token = form_token(client.get("/subscribe").text)
    assert heading(client.post(path, data={"csrf_token": token, "lang": "ko"}).text) == "Not subscribed"
    stored = subscriber(site, "reader@example.org")
    assert (stored.status, stored.lang) == ("unsubscribed", "en")


def test_an_invalid_language_or_token_is_refused(client, site: Site) -> None:
    add_subscriber(site, "reader@example.org", lang="en")
    path = preferences_path(site, "reader@example.org")
    token = form_token(client.get(path).text)
    assert client.post(path, data={"csrf_token": token, "lang": "fr"}).status_code == 400
    assert client.get(path + "x").status_code == 400
    assert client.post(path + "x", data={"csrf_token": token, "lang": "ko"}).status_code == 400
    assert subscriber(site, "reader@example.org").lang == "en"
