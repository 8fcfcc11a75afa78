"""The review page names a job's state in the reader's language: "running" and "overdue" too, not the raw
state (Korean: 실행 중, 기한 지남)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from publisher.scheduler import schedule_publish
from publisher.site import Site
from tests.web.conftest import make_client

SLUG = "2024-unpsf-incheon"


@pytest.mark.parametrize("lang, running, overdue", [("en", "(Running)", "(Overdue)"),
                                                     ("ko", "(실행 중)", "(기한 지남)")])
def test_running_and_overdue_jobs_are_named_in_the_pages_language(site: Site, lang: str, running: str,
                                                                  overdue: str) -> None:
    now = datetime(2999, 12, 2, 0, 0, tzinfo=timezone.utc)
    paths = [f"content/{SLUG}.en.md", f"content/{SLUG}.ko.md"]
    held, _ = schedule_publish(site, paths, now - timedelta(hours=3), channels=["x"])
    taken, _ = schedule_publish(site, paths, now, channels=["mastodon"])
    claimed = site.store().jobs.claim("worker", now, timedelta(minutes=1), max_late=timedelta(hours=1))
    assert claimed is not None and claimed.id == taken.id
    assert site.store().jobs.get(held.id).state == "overdue"   # type: ignore[union-attr]
    with make_client(site) as client:
        page = client.get(f"/review/{SLUG}/publish?lang={lang}").text   # type: ignore[attr-defined]
    assert f'id="job-{taken.id}"' in page and f'id="job-{held.id}"' in page
    assert running in page and overdue in page
    assert "(running)" not in page and "(overdue)" not in page


def test_every_state_label_has_a_korean_string() -> None:
    import re

    from publisher.i18n import _packaged
    from publisher.resources import templates_dir

    macro = (templates_dir() / "web" / "_states.html.j2").read_text(encoding="utf-8")
    labels = re.findall(r'_\("([^"]+)"\)', macro)
    korean = _packaged("ko")
    assert "Running" in labels and "Overdue" in labels
    assert [label for label in labels if not korean.get(label)] == []
