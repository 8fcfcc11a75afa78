"""The email report through the pipeline: one line per bulletin and reader language, even with nobody to send to."""

from __future__ import annotations

from typing import Any

from publisher.channels.email import EmailChannel
from publisher.site import Site
from tests.email.conftest import add_subscribers, publish, story_for


def test_a_bulletin_without_subscribers_says_so_and_a_reused_channel_reports_only_its_run(site: Site) -> None:
    channel = EmailChannel(site)
    first = publish(site, story_for(site, "2024-unpsf-incheon"), channel=channel)
    assert {(r.article, r.lang, r.state, r.note) for r in first} == {
        ("2024-unpsf-incheon", "en", "skipped", "no subscribers"),
        ("2024-unpsf-incheon", "ko", "skipped", "no subscribers")}

    site.subscribers().add("reader@example.org", lang="en")
    second = publish(site, story_for(site, "2024-sdg16-knowledge-forum"), channel=channel)
    assert [(r.article, r.lang, r.note) for r in second] == [("2024-sdg16-knowledge-forum", "en", "1 sent")]


def test_a_bulletin_run_keeps_counts_not_one_result_per_recipient(smtp_site: Site, smtp_server: Any) -> None:
    """Memory flat in the audience: the run's results hold one result per kind of outcome and language, and
    the report still counts every recipient; a refused recipient keeps its own reason."""
    from publisher import pipeline
    from publisher.channels.base import Results

    addresses = add_subscribers(smtp_site, 60)   # 20 Korean, 40 English
    smtp_server.handler.refuse_rcpt["reader001@example.org"] = "550 5.1.1 no such user"
    channel = EmailChannel(smtp_site)
    story = story_for(smtp_site, "2024-unpsf-incheon")
    batch = [(story, list(story.languages))]
    ctx = pipeline.channel_context(smtp_site, pipeline.RunOptions())
    results = pipeline.send_all(smtp_site, channel, channel.render_many(batch, ctx), ctx)

    assert isinstance(results, Results)
    assert len(results) == len(list(results)) == 60
    assert results.kept == 3   # sent in English, sent in Korean, the one refused
    assert sorted(r.key.lang for r in results) == ["en"] * 40 + ["ko"] * 20
    refused = [r for r in results if r.outcome is not None and r.outcome.state == "failed"]
    assert [r.key.target for r in refused] == ["reader001@example.org"]
    assert "550 5.1.1 no such user" in (refused[0].outcome.error or "")
    lines = {(r.lang, r.note) for r in channel.report(results, ctx)}
    assert ("ko", "20 sent") in lines
    assert ("en", "39 sent, 1 bounced (address marked bounced); 550 5.1.1 no such user (at RCPT TO)") in lines
    assert len(smtp_server.handler.messages) == 59 and len(addresses) == 60
