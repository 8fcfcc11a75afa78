"""The publishing rule: machine output goes out only when the site allows it; a missing language is made or named."""

from __future__ import annotations

from pathlib import Path

from publisher.article import load_stories
from publisher.site import Site
from publisher.translate.policy import select_versions

from .conftest import front_matter


def allow_machine_translation(site: Site) -> Site:
    with (site.root / "publisher.toml").open("a", encoding="utf-8") as handle:
        handle.write("PUBLISHER_ALLOW_MACHINE_TRANSLATION = true\n")
    site.close()
    return Site(site.root)


def story_of(site: Site, slug: str):
    return next(s for s in load_stories([site.content_dir / f"{slug}.en.md"], site) if s.slug == slug)


def context(site: Site, *, dry_run: bool = False) -> dict[str, bool]:
    """The options of a publish run, as the pipeline passes them."""
    return {"publishing": True, "dry_run": dry_run}


def test_missing_language_names_the_command_when_machine_output_is_not_allowed(site: Site, models_dir: Path) -> None:
    story = story_of(site, "2024-sdg16-knowledge-forum")

    chosen, notes = select_versions(story, ["en", "ko"], site, **context(site))

    assert chosen.languages == ["en"]
    [note] = notes
    assert (note.lang, note.state) == ("ko", "skipped")
    assert note.note.startswith(
        f"no ko version; run: publisher translate {site.content_dir / '2024-sdg16-knowledge-forum.en.md'} --to ko")
    assert not (site.content_dir / "2024-sdg16-knowledge-forum.ko.md").exists()


def test_missing_language_is_translated_and_written_when_allowed(site: Site, models_dir: Path) -> None:
    site = allow_machine_translation(site)
    story = story_of(site, "2024-sdg16-knowledge-forum")

    chosen, notes = select_versions(story, ["en", "ko"], site, **context(site))

    target = site.content_dir / "2024-sdg16-knowledge-forum.ko.md"
    assert chosen.languages == ["en", "ko"]
    assert chosen.get("ko").is_machine_translation
    assert [(n.lang, n.channel, n.where, n.state) for n in notes] == [("ko", "translate", str(target), "translated")]
    assert f"publisher review {target}" in notes[0].note
    assert front_matter(target)["translation"]["status"] == "machine"


def test_a_dry_run_translates_in_memory_and_writes_nothing(site: Site, models_dir: Path) -> None:
    site = allow_machine_translation(site)
    story = story_of(site, "2024-sdg16-knowledge-forum")

    chosen, notes = select_versions(story, ["ko"], site, **context(site, dry_run=True))

    assert chosen.languages == ["ko"] and notes[0].state == "dry-run"
    assert not (site.content_dir / "2024-sdg16-knowledge-forum.ko.md").exists()
    assert site.store().translation_memory.count() == 0  # a dry run changes nothing


def test_allowed_but_no_model_says_how_to_install_one(site: Site, empty_models_dir: Path) -> None:
    site = allow_machine_translation(site)
    story = story_of(site, "2024-sdg16-knowledge-forum")

    chosen, notes = select_versions(story, ["ko"], site, **context(site))

    assert chosen.languages == []
    assert notes[0].state == "skipped"
    assert "no en->ko model installed" in notes[0].note and "publisher models install en ko" in notes[0].note


def test_machine_translation_is_held_back_until_reviewed_or_allowed(cli, site: Site, models_dir: Path) -> None:
    source = site.content_dir / "2024-sdg16-knowledge-forum.en.md"
    assert cli("translate", str(source), "--to", "ko").exit_code == 0
    target = site.content_dir / "2024-sdg16-knowledge-forum.ko.md"

    held, held_notes = select_versions(story_of(site, "2024-sdg16-knowledge-forum"), ["en", "ko"], site)
    assert held.languages == ["en"]
    assert f"review it (publisher review {target})" in held_notes[0].note

    assert cli("review", str(target)).exit_code == 0
    reviewed, reviewed_notes = select_versions(story_of(site, "2024-sdg16-knowledge-forum"), ["en", "ko"], site)
    assert reviewed.languages == ["en", "ko"] and reviewed_notes == []


def test_publish_lang_ko_translates_and_the_feed_carries_the_notice(cli, site_dir: Path, models_dir: Path) -> None:
    import json

    source = site_dir / "content" / "2024-sdg16-knowledge-forum.en.md"
    env = {"PUBLISHER_ALLOW_MACHINE_TRANSLATION": "true"}

    result = cli("publish", str(source), "--lang", "ko", "--channel", "feeds", env=env)

    assert result.exit_code == 0, result.output
    target = site_dir / "content" / "2024-sdg16-knowledge-forum.ko.md"
    assert front_matter(target)["translation"]["status"] == "machine"
    assert "translated" in result.output
    feed = json.loads((site_dir / "public" / "ko" / "feed.json").read_text(encoding="utf-8"))
    [entry] = [item for item in feed["items"] if "2024-sdg16-knowledge-forum" in item["url"]]
    assert "기계 번역" in json.dumps(entry, ensure_ascii=False)


def test_publish_lang_ko_without_permission_names_the_command(cli, site_dir: Path, models_dir: Path) -> None:
    source = site_dir / "content" / "2024-sdg16-knowledge-forum.en.md"

    result = cli("publish", str(source), "--lang", "ko", "--channel", "feeds", env={"COLUMNS": "400"})

    assert result.exit_code == 0, result.output
    assert f"no ko version; run: publisher translate {source} --to ko" in result.output
    assert not (site_dir / "content" / "2024-sdg16-knowledge-forum.ko.md").exists()


def edit_original(site: Site, slug: str, old: str, new: str) -> None:
    path = site.content_dir / f"{slug}.en.md"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_a_machine_translation_of_an_edited_original_is_translated_again(cli, site: Site, models_dir: Path) -> None:
    slug = "2024-sdg16-knowledge-forum"
    assert cli("translate", str(site.content_dir / f"{slug}.en.md"), "--to", "ko").exit_code == 0
    digest = front_matter(site.content_dir / f"{slug}.ko.md")["source_digest"]
    edit_original(site, slug, "More than 120 participants", "More than 130 participants")
    site = allow_machine_translation(site)

    chosen, notes = select_versions(story_of(site, slug), ["ko"], site, **context(site))

    assert chosen.languages == ["ko"]
    [note] = notes
    assert note.state == "translated"
    assert note.note.startswith("the en original changed: re-translated (argos:en-ko@1.0, 13 sentences: 1 by the "
                                "model, 12 from memory)")
    assert front_matter(site.content_dir / f"{slug}.ko.md")["source_digest"] != digest


def test_a_reviewed_translation_of_an_edited_original_is_published_with_a_warning(cli, site: Site,
                                                                                   models_dir: Path) -> None:
    slug = "2024-sdg16-knowledge-forum"
    cli("translate", str(site.content_dir / f"{slug}.en.md"), "--to", "ko")
    cli("review", str(site.content_dir / f"{slug}.ko.md"))
    edit_original(site, slug, "More than 120 participants", "More than 130 participants")

    chosen, notes = select_versions(story_of(site, slug), ["en", "ko"], site, **context(site))

    assert chosen.languages == ["en", "ko"]
    [note] = notes
    assert (note.lang, note.state) == ("ko", "stale")
    assert "the en original changed since" in note.note and "--to ko --force" in note.note


def test_an_unchanged_original_leaves_its_translation_alone(cli, site: Site, models_dir: Path) -> None:
    slug = "2024-sdg16-knowledge-forum"
    cli("translate", str(site.content_dir / f"{slug}.en.md"), "--to", "ko")
    site = allow_machine_translation(site)
    before = (site.content_dir / f"{slug}.ko.md").stat().st_mtime_ns

    chosen, notes = select_versions(story_of(site, slug), ["en", "ko"], site, **context(site))

    assert chosen.languages == ["en", "ko"] and notes == []
    assert (site.content_dir / f"{slug}.ko.md").stat().st_mtime_ns == before


def test_review_after_an_edit_of_the_original_warns_and_takes_the_edit_as_reviewed(cli, site: Site,
                                                                                   models_dir: Path) -> None:
    slug = "2024-sdg16-knowledge-forum"
    cli("translate", str(site.content_dir / f"{slug}.en.md"), "--to", "ko")
    edit_original(site, slug, "More than 120 participants", "More than 130 participants")

    result = cli("review", str(site.content_dir / f"{slug}.ko.md"))

    assert result.exit_code == 0
    assert "the en original was edited after this translation was made" in result.output
    chosen, notes = select_versions(story_of(site, slug), ["en", "ko"], site, **context(site))
    assert chosen.languages == ["en", "ko"] and notes == []  # reviewed against the current original


def test_without_a_publish_context_the_rule_only_answers(site: Site, models_dir: Path) -> None:
    """A review page or a feed rebuild asks the rule; it must not translate or write anything."""
    site = allow_machine_translation(site)
    slug = "2024-sdg16-knowledge-forum"

    chosen, notes = select_versions(story_of(site, slug), ["en", "ko"], site)

    assert chosen.languages == ["en"]
    assert notes[0].note.startswith("no ko version (publishing translates it (PUBLISHER_ALLOW_MACHINE_TRANSLATION"
                                    "=true)); run: publisher translate")
    assert not (site.content_dir / f"{slug}.ko.md").exists()
