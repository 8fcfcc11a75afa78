"""A suppressed address cannot come back through the web form, and the form's answer does not tell."""

from __future__ import annotations

import pytest

from publisher.site import Site
from tests.web.conftest import form_token, mails, make_client, subscriber

pytestmark = pytest.mark.both_databases


def subscribe(client, address: str):  # type: ignore[no-untyped-def]
    page = client.get("/subscribe?lang=en")
    return client.post("/subscribe", data={"csrf_token": form_token(page.text), "ui_lang": "en", "lang": "en",
                                           "email": address})


def test_a_suppressed_address_gets_the_usual_answer_and_no_mail(site: Site) -> None:
    subscribers = site.subscribers()
    for address in ("gone@example.org", "angry@example.org", "quiet@example.org", "left@example.org"):
        subscribers.add(address)
    subscribers.mark_bounced("gone@example.org", reason="5.1.1 user unknown")
    subscribers.complain("angry@example.org", reason="abuse report")
    subscribers.suppress("quiet@example.org", reason="ESP suppression list")
    subscribers.unsubscribe("left@example.org")
    bodies = set()
    with make_client(site) as client:
        for address in ("new@example.org", "gone@example.org", "angry@example.org", "quiet@example.org",
                        "left@example.org"):
            answer = subscribe(client, address)
            assert answer.status_code == 200
            bodies.add(answer.text.replace(address, "ADDRESS"))
    assert len(bodies) == 1     # no way to tell from the page who is on the suppression list
    assert {m["To"].addresses[0].addr_spec for m in mails(site)} == {"new@example.org", "left@example.org"}
    assert [subscriber(site, a).status for a in ("gone@example.org", "angry@example.org", "quiet@example.org")] \
        == ["bounced", "complained", "suppressed"]
    assert subscriber(site, "left@example.org").status == "pending"   # an unsubscribed reader may come back
