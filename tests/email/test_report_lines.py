"""The email report through the pipeline: one line per bulletin and reader language, even with nobody to send to."""

from __future__ import annotations

from publisher.channels.email import EmailChannel
from publisher.site import Site
from tests.email.conftest import publish, story_for


def test_a_bulletin_without_subscribers_says_so_and_a_reused_channel_reports_only_its_run(site: Site) -> None:
    channel = EmailChannel(site)
    first = publish(site, story_for(site, "2024-unpsf-incheon"), channel=channel)
    assert {(r.article, r.lang, r.state, r.note) for r in first} == {
        ("2024-unpsf-incheon", "en", "skipped", "no subscribers"),
        ("2024-unpsf-incheon", "ko", "skipped", "no subscribers")}

    site.subscribers().add("reader@example.org", lang="en")
    second = publish(site, story_for(site, "2024-sdg16-knowledge-forum"), channel=channel)
    assert [(r.article, r.lang, r.note) for r in second] == [("2024-sdg16-knowledge-forum", "en", "1 sent")]
