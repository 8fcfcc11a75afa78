"""Embargo: an article with ``publish_at`` ahead is sent by no channel, shown in no feed or page, and still
previewed; the clock is injected, never the wall time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result

from publisher import pipeline
from publisher.errors import ContentError
from publisher.site import Site

SLUG = "2025-public-service-day"
RELEASE = datetime(2026, 12, 2, 0, 0, tzinfo=timezone.utc)   # 09:00 KST


def embargo(site: Site, when: str = "2026-12-02 09:00") -> list[Path]:
    paths = [site.content_dir / f"{SLUG}.{lang}.md" for lang in ("en", "ko")]
    for path in paths:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                 if not line.startswith("publish_at:")]
        path.write_text("".join([lines[0], f"publish_at: {when}\n", *lines[1:]]), encoding="utf-8")
    return paths


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def feed_text(site: Site) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in site.public_dir.rglob("*") if p.is_file()
                   and p.suffix in (".xml", ".json", ".html"))


def test_before_publish_at_nothing_is_sent_and_the_feeds_leave_it_out(site: Site) -> None:
    paths = embargo(site)
    reports = pipeline.publish(site, paths, channels=["feeds", "email"], clock=at(RELEASE - timedelta(minutes=1)))
    assert {(r.lang, r.state, r.note) for r in reports if r.article == SLUG} == {
        ("en", "scheduled", "scheduled for 2026-12-02 09:00 KST"),
        ("ko", "scheduled", "scheduled for 2026-12-02 09:00 KST")}
    assert [row for row in site.ledger().rows(article=SLUG)] == []
    assert [p for p in site.outbox_dir.rglob("*") if p.is_file()] == []
    assert SLUG not in feed_text(site)
    assert not (site.public_dir / "en" / SLUG).exists()
    [job] = site.store().jobs.list(["pending"])
    assert job.kind == "publish" and job.due_at == RELEASE and job.payload["langs"] == ["en", "ko"]
    assert job.payload["channels"] == ["feeds", "email"]


def test_publishing_again_moves_the_job_instead_of_adding_one(site: Site) -> None:
    paths = embargo(site)
    pipeline.publish(site, paths, channels=["feeds"], clock=at(RELEASE - timedelta(hours=2)))
    embargo(site, "2026-12-02T10:30:00+09:00")   # a later release
    pipeline.publish(site, paths, channels=["feeds"], clock=at(RELEASE - timedelta(hours=1)))
    jobs = site.store().jobs.list(["pending"])
    assert [(j.key, j.due_at) for j in jobs] == [(jobs[0].key, RELEASE + timedelta(minutes=90))]


def test_at_publish_at_it_goes_out_and_into_the_feeds(site: Site) -> None:
    paths = embargo(site)
    pipeline.publish(site, paths, channels=["feeds"], clock=at(RELEASE - timedelta(seconds=1)))
    assert SLUG not in feed_text(site)
    reports = pipeline.publish(site, paths, channels=["feeds"], clock=at(RELEASE))
    assert {r.state for r in reports if r.article == SLUG} == {"sent"}
    assert SLUG in feed_text(site)
    assert [p.name for p in (site.public_dir / "en").rglob("*") if SLUG in str(p)]


def test_feeds_build_all_leaves_an_embargoed_article_out(site: Site) -> None:
    embargo(site)
    pipeline.build_feeds(site, include_unpublished=True, clock=at(RELEASE - timedelta(minutes=5)))
    assert SLUG not in feed_text(site)
    assert "2024-unpsf-incheon" in feed_text(site)


def test_preview_still_shows_it(site: Site, tmp_path: Path) -> None:
    paths = embargo(site)
    written = pipeline.preview(site, paths, tmp_path / "preview", channels=["feeds"])
    assert {(r.article, r.lang) for r, _ in written if r.article == SLUG and r.lang} == {(SLUG, "en"), (SLUG, "ko")}


def test_a_korean_version_an_hour_later(site: Site) -> None:
    en, ko = embargo(site)
    ko.write_text(ko.read_text(encoding="utf-8").replace("publish_at: 2026-12-02 09:00", "publish_at: 2026-12-02 10:00"),
                  encoding="utf-8")
    reports = pipeline.publish(site, [en, ko], channels=["feeds"], clock=at(RELEASE))
    assert {(r.lang, r.state) for r in reports if r.article == SLUG} == {("en", "sent"), ("ko", "scheduled")}


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-02 09:00", "'2026-12-02 25:00'"])
def test_a_bad_publish_at_names_the_file_and_the_field(site: Site, value: str) -> None:
    [path, _] = embargo(site, value)
    with pytest.raises(ContentError) as caught:
        pipeline.publish(site, [path], channels=["feeds"])
    assert f"{SLUG}.en.md" in str(caught.value) and "publish_at" in str(caught.value)


def test_the_cli_reports_scheduled_and_exits_0(site: Site, cli: Callable[..., Result]) -> None:
    embargo(site, "2999-01-01 09:00")
    result = cli("publish", f"content/{SLUG}.en.md", "--channel", "feeds", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "scheduled for 2999-01-01" in result.output and "09:00 KST" in result.output


def test_publish_now_releases_an_embargoed_article_early(site: Site, cli: Callable[..., Result]) -> None:
    embargo(site, "2999-01-01 09:00")
    result = cli("publish", f"content/{SLUG}.en.md", "--channel", "feeds", "--now", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "scheduled" not in result.output and SLUG in feed_text(site)
