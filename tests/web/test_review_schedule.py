"""The review page shows an article's schedule and sets it, behind the review page's access rule."""

from __future__ import annotations

from datetime import datetime, timezone

from publisher.site import Site
from tests.web.conftest import REMOTE_CLIENT, form_token, make_client

SLUG = "2024-unpsf-incheon"


def test_the_review_page_schedules_a_publish_and_shows_it(client, site: Site) -> None:
    confirm = client.get(f"/review/{SLUG}/publish?lang=en")
    assert confirm.status_code == 200 and f'action="/review/{SLUG}/schedule"' in confirm.text
    assert client.post(f"/review/{SLUG}/schedule", data={"at": "2999-12-02T09:00"}).status_code == 403   # no CSRF
    token = form_token(confirm.text)
    done = client.post(f"/review/{SLUG}/schedule?lang=en", data={"csrf_token": token, "at": "2999-12-02T09:00"})
    assert done.status_code == 200 and "2999-12-02 09:00 KST" in done.text
    [job] = site.store().jobs.list(["pending"], kind="publish")
    assert job.due_at == datetime(2999, 12, 2, 0, 0, tzinfo=timezone.utc)
    assert job.payload["paths"] == [f"content/{SLUG}.en.md", f"content/{SLUG}.ko.md"]
    moved = client.post(f"/review/{SLUG}/schedule?lang=en", data={"csrf_token": token, "at": "2999-12-03T10:00"})
    assert moved.status_code == 200
    [job] = site.store().jobs.list(["pending"], kind="publish")   # moved, not added
    shown = client.get(f"/review/{SLUG}/publish?lang=en").text
    assert f'id="job-{job.id}"' in shown and "2999-12-03 10:00 KST" in shown


def test_a_past_or_bad_time_is_refused(client, site: Site) -> None:
    token = form_token(client.get(f"/review/{SLUG}/publish?lang=en").text)
    for value in ("2020-01-01T09:00", "soon"):
        answer = client.post(f"/review/{SLUG}/schedule?lang=en", data={"csrf_token": token, "at": value})
        assert answer.status_code == 400
    assert site.store().jobs.list() == []


def test_scheduling_is_closed_to_a_visitor_the_review_page_does_not_let_in(site: Site) -> None:
    with make_client(site, client=REMOTE_CLIENT, review_local_only=False) as remote:
        answer = remote.post(f"/review/{SLUG}/schedule", data={"at": "2999-12-02T09:00"}, follow_redirects=False)
        assert answer.status_code in (303, 403)
    assert site.store().jobs.list() == []
