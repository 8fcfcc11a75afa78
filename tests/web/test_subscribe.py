"""Subscribing through the form: double opt-in, the same answer for every address, CSRF and rate limits."""

from __future__ import annotations

import time

import itsdangerous.timed
import pytest

from publisher.site import Site
from publisher.tokens import link, sign
from tests.web.conftest import add_subscriber, form_token, heading, link_in, mails, make_client, subscriber

pytestmark = pytest.mark.both_databases


def subscribe(client, *, lang: str = "ko", **fields: object):
    page = client.get(f"/subscribe?lang={lang}")
    data = {"csrf_token": form_token(page.text), "ui_lang": lang, "lang": lang, **fields}
    return client.post("/subscribe", data=data)


def test_the_form_speaks_the_language_asked_for(client) -> None:
    korean = client.get("/subscribe?lang=ko")
    assert korean.status_code == 200
    assert '<html lang="ko">' in korean.text
    assert "유엔거버넌스센터 소식 구독 신청" in korean.text      # title from SITE_TITLE_KO
    assert "디지털정부" in korean.text                            # theme names from the catalogs
    assert 'value="digital-government"' in korean.text
    english = client.get("/subscribe", headers={"Accept-Language": "en-GB,en;q=0.9,ko;q=0.5"})
    assert "Subscribe to UNPOG News" in english.text
    assert client.get("/subscribe", headers={"Accept-Language": "ko-KR,ko;q=0.9"}).text.count("구독 신청") >= 1


def test_double_opt_in_in_korean(client, site: Site) -> None:
    answer = subscribe(client, email="minji@example.org", name="김민지", themes=["digital-government"])
    assert answer.status_code == 200
    assert heading(answer.text) == "받은편지함을 확인해 주세요"
    pending = subscriber(site, "minji@example.org")
    assert (pending.status, pending.lang, pending.themes) == ("pending", "ko", ["digital-government"])

    [message] = mails(site)
    assert message["To"].addresses[0].addr_spec == "minji@example.org"
    assert message["Content-Language"] == "ko"
    assert "구독" in message["Subject"]
    path = link_in(message, "confirm")
    page = client.get(path)     # what a link scanner fetches: a page with a button, nothing confirmed
    assert page.status_code == 200 and heading(page.text) == "구독 신청을 확인해 주세요"
    assert f'action="{path}"' in page.text
    assert subscriber(site, "minji@example.org").status == "pending"
    confirm = client.post(path)
    assert confirm.status_code == 200
    assert heading(confirm.text) == "구독이 확인되었습니다"
    assert subscriber(site, "minji@example.org").status == "active"
    # The confirmation page hands over working preferences and unsubscribe links.
    assert "/preferences/" in confirm.text and "/unsubscribe/" in confirm.text
    assert heading(client.post(path).text) == "구독이 확인되었습니다"          # a second click: the same answer
    assert heading(client.get(path).text) == "구독이 확인되었습니다"           # no button once active
    assert subscriber(site, "minji@example.org").status == "active"


def test_the_answer_is_the_same_for_new_pending_and_active_addresses(client, site: Site) -> None:
    add_subscriber(site, "known@example.org", lang="en", themes=["capacity-development"])
    add_subscriber(site, "waiting@example.org", status="pending")
    bodies = {}
    for address in ("new@example.org", "waiting@example.org", "known@example.org"):
        response = subscribe(client, lang="en", email=address, themes=["digital-government"])
        assert response.status_code == 200
        bodies[address] = response.text.replace(address, "ADDRESS")
    assert len(set(bodies.values())) == 1

    by_recipient = {m["To"].addresses[0].addr_spec: m for m in mails(site)}
    assert set(by_recipient) == {"new@example.org", "waiting@example.org", "known@example.org"}
    # The active subscriber is told, and its choices are not changed by a form anyone can fill in.
    assert "already" in by_recipient["known@example.org"]["Subject"]
    assert "/preferences/" in by_recipient["known@example.org"].get_body(("plain",)).get_content()
    known = subscriber(site, "known@example.org")
    assert (known.status, known.themes) == ("active", ["capacity-development"])
    assert "/confirm/" in by_recipient["waiting@example.org"].get_body(("plain",)).get_content()


def test_an_invalid_address_is_refused_with_the_field_named_and_nothing_kept(client, site: Site) -> None:
    response = subscribe(client, lang="ko", email="not-an-address", name="X")
    assert response.status_code == 400
    assert "올바른 이메일 주소를 입력해 주세요." in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="not-an-address"' in response.text          # what was typed is kept in the form
    assert mails(site) == []


@pytest.mark.parametrize("case", ["no token", "no cookie", "other browser", "other site"])
def test_a_forged_form_is_refused(site: Site, case: str) -> None:
    with make_client(site) as client:
        token = form_token(client.get("/subscribe").text)
        data = {"csrf_token": token, "email": "victim@example.org", "lang": "en"}
        headers = {}
        if case == "no token":
            data.pop("csrf_token")
        elif case == "no cookie":
            client.cookies.clear()
        elif case == "other browser":
            with make_client(site) as other:
                data["csrf_token"] = form_token(other.get("/subscribe").text)
        elif case == "other site":
            headers["Origin"] = "https://evil.example"
        response = client.post("/subscribe", data=data, headers=headers)
    assert response.status_code == 403
    assert subscriber(site, "victim@example.org") is None
    assert mails(site) == []


def test_subscribing_is_rate_limited_per_client(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_SUBSCRIBE_RATE_LIMIT", "2")
    with make_client(site) as client:
        statuses = [subscribe(client, lang="en", email=f"reader{n}@example.org").status_code for n in range(3)]
        refused = subscribe(client, lang="ko", email="reader9@example.org")
    assert statuses == [200, 200, 429]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "잠시 뒤에 다시 시도해 주세요." in refused.text
    assert len(mails(site)) == 2
    with make_client(site, client=("198.51.100.20", 40000)) as elsewhere:   # another client is not affected
        assert subscribe(elsewhere, lang="en", email="reader5@example.org").status_code == 200


def test_one_address_gets_a_bounded_number_of_confirmation_mails(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_CONFIRM_MAILS_PER_ADDRESS", "2")
    with make_client(site) as client:
        answers = {subscribe(client, lang="en", email="target@example.org").text for _ in range(4)}
    assert len(answers) == 1                      # the form answers the same way every time
    assert len(mails(site)) == 2


def test_a_bot_filling_the_hidden_field_gets_the_same_answer_and_nothing(client, site: Site) -> None:
    response = subscribe(client, lang="en", email="bot@example.org", website="http://spam.example")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert subscriber(site, "bot@example.org") is None and mails(site) == []


def test_forged_altered_expired_or_misused_confirm_links_change_nothing(
    client, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscriber(site, "p@example.org", status="pending")
    good = link(site, "confirm", {"email": "p@example.org"}).split("/confirm/")[1]
    head, _, signature = good.rpartition(".")
    altered = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = sign("confirm", {"email": "p@example.org"}, _FixedKeySite(site.root, "another key"))
    misused = sign("unsubscribe", {"email": "p@example.org"}, site)
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 73 * 3600)
    expired = sign("confirm", {"email": "p@example.org"}, site)
    monkeypatch.undo()
    for token, words in ((altered, "올바른 링크가 아닙니다."), (forged, "올바른 링크가 아닙니다."),
                         (misused, "올바른 링크가 아닙니다."), (expired, "링크의 유효 기간이 지났습니다.")):
        for response in (client.get(f"/confirm/{token}?lang=ko"), client.post(f"/confirm/{token}?lang=ko")):
            assert response.status_code == 400, token
            assert words in response.text
        assert subscriber(site, "p@example.org").status == "pending"
    assert client.post(f"/confirm/{good}").status_code == 200
    assert subscriber(site, "p@example.org").status == "active"


class _FixedKeySite(Site):
    """The same site signing with another key: what a forger without our key can make."""

    def __init__(self, root, key: str) -> None:
        super().__init__(root)
        self._key = key

    @property
    def secret_key(self) -> str:
        return self._key


def test_a_site_in_one_language_offers_only_that_language(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_LANGUAGES", "en")
    with make_client(Site(site.root)) as client:
        page = client.get("/subscribe", headers={"Accept-Language": "ko"})
        assert '<html lang="en">' in page.text and 'value="ko"' not in page.text
        refused = client.post("/subscribe", data={"csrf_token": form_token(page.text), "email": "a@example.org",
                                                  "lang": "ko"})
    assert refused.status_code == 400 and "Please choose a language." in refused.text
    assert mails(site) == []


def test_a_bad_setting_gives_readers_an_apology_and_the_log_its_line(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PUBLISHER_CONFIRM_LINK_HOURS", "soon")
    add_subscriber(site, "p@example.org", status="pending")
    path = link(site, "confirm", {"email": "p@example.org"}).removeprefix(site.url)
    with make_client(Site(site.root)) as client:
        response = client.get(path, headers={"Accept-Language": "ko"})
    assert response.status_code == 500
    assert "잠시 뒤에 다시 시도해 주세요." in response.text
    assert "PUBLISHER_CONFIRM_LINK_HOURS" not in response.text and "Traceback" not in response.text
    assert "PUBLISHER_CONFIRM_LINK_HOURS" in caplog.text and "expected a whole number" in caplog.text
    assert subscriber(site, "p@example.org").status == "pending"
