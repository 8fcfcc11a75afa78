"""Languages come from PUBLISHER_LANGUAGES: a third one works once it has UI strings, and says so when not."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from publisher.errors import ConfigError
from publisher.resources import locales_dir
from publisher.settings import parse_languages
from publisher.site import Site
from publisher.translate.glossary import Glossary, read_glossary

THREE = {"PUBLISHER_LANGUAGES": "en,ko,fr"}


def give_french_ui_strings(site_dir: Path) -> None:
    """The site's own locales/fr: the English catalogs stand in for translated ones."""
    shutil.copytree(locales_dir() / "en" / "LC_MESSAGES", site_dir / "locales" / "fr" / "LC_MESSAGES")


@pytest.mark.parametrize("args", [("publish", "--lang", "fr"), ("preview", "content", "--out", "x", "--lang", "fr"),
                                  ("translate", "content/2024-unpsf-incheon.en.md", "--to", "fr"),
                                  ("subscribers", "add", "a@example.org", "--lang", "fr")])
def test_a_language_the_site_does_not_declare_is_one_line(cli: Callable[..., Result], args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    option = "--to" if "--to" in args else "--lang"
    assert result.stderr == (f"Error: {option}: 'fr' is not a language of this site; expected one of en, ko "
                             "(PUBLISHER_LANGUAGES)\n")


def test_subscribers_get_the_site_s_first_language_by_default(cli: Callable[..., Result], site: Site) -> None:
    assert cli("subscribers", "add", "a@example.org").exit_code == 0
    assert cli("subscribers", "add", "b@example.org", env={"PUBLISHER_LANGUAGES": "ko,en"}).exit_code == 0
    subscribers = site.subscribers()
    found = [subscribers.get(email) for email in ("a@example.org", "b@example.org")]
    assert [s.lang if s is not None else None for s in found] == ["en", "ko"]


def test_a_third_language_without_ui_strings_is_one_line_at_config_check(cli: Callable[..., Result]) -> None:
    result = cli("config", "check", env=THREE)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: PUBLISHER_LANGUAGES")]
    assert len(errors) == 1
    assert errors[0].startswith("Error: PUBLISHER_LANGUAGES (from environment): fr: no UI strings")
    assert "locales/fr/LC_MESSAGES/*.po" in errors[0]
    # every other command stops at the same line instead of publishing English text labelled French
    published = cli("publish", "--dry-run", env=THREE)
    assert published.exit_code == 2 and published.stderr.startswith("Error: PUBLISHER_LANGUAGES")


def test_a_third_language_with_ui_strings_but_no_model_is_a_warning(cli: Callable[..., Result], site_dir: Path,
                                                                     write_article: Callable[..., Path]) -> None:
    give_french_ui_strings(site_dir)
    result = cli("config", "check", env=THREE)
    assert result.exit_code == 0, result.output
    if importlib.util.find_spec("argostranslate") is not None:
        assert "Warning: no en->fr translation model in " in result.stderr
        assert "run: publisher models install en fr" in result.stderr
    else:
        assert "Warning: offline translation is not installed" in result.stderr
    write_article("bonjour", "fr", title="Bonjour", date="2025-01-02")
    dry_run = cli("publish", "content/bonjour.fr.md", "--lang", "fr", "--channel", "feeds", "--dry-run", env=THREE)
    assert dry_run.exit_code == 0, dry_run.output
    assert "bonjour" in dry_run.output


def test_a_site_in_two_languages_reads_as_before(site: Site) -> None:
    assert site.languages == ("en", "ko")
    assert {story.original.lang for story in site.articles().stories.values()} <= {"en", "ko"}


@pytest.mark.parametrize(("text", "message"), [
    ("en,english", "expected language codes such as en, ko or fr, got 'english'"),
    ("en,ko,en", "expected each language once"),
    (" , ", "expected at least one language"),
])
def test_bad_language_lists_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_languages(text)
    assert parse_languages("en, ko ,fr") == ("en", "ko", "fr")


def test_a_language_without_strings_names_the_setting_and_its_source(site_dir: Path) -> None:
    (site_dir / ".env").write_text("PUBLISHER_LANGUAGES=en,fr\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^PUBLISHER_LANGUAGES \(from \.env\): fr: no UI strings"):
        Site(site_dir).languages   # noqa: B018 - the property is the check


def test_the_glossary_header_names_its_languages(tmp_path: Path, site: Site) -> None:
    path = tmp_path / "glossary.tsv"
    path.write_text("en\tko\tfr\tnote\nUNPOG\t유엔거버넌스센터\tUNPOG\tacronym\n"
                    "United Nations\t유엔\tNations Unies\t\n", encoding="utf-8")
    entries = read_glossary(path)
    assert entries[1].terms == {"en": "United Nations", "ko": "유엔", "fr": "Nations Unies"}
    assert entries[0].note == "acronym" and entries[1].note == ""
    glossary = Glossary(entries)
    assert glossary.targets("fr", "en") == {"UNPOG": "UNPOG", "Nations Unies": "United Nations"}
    text = "Les Nations Unies et UNPOG."
    assert [(text[start:end], target) for start, end, target in glossary.find(text, "fr", "ko")] == [
        ("Nations Unies", "유엔"), ("UNPOG", "유엔거버넌스센터")]
    # a site glossary in three languages overrides the packaged en/ko rows that share a term
    site.locales_dir.mkdir(exist_ok=True)
    shutil.copy(path, site.locales_dir / "glossary.tsv")
    loaded = Glossary.load(site)
    assert loaded.targets("en", "ko")["UNPOG"] == "유엔거버넌스센터"
    assert loaded.targets("en", "fr") == {"UNPOG": "UNPOG", "United Nations": "Nations Unies"}
    assert len(loaded.targets("en", "ko")) > 2   # the packaged rows it does not replace are kept


def test_a_glossary_without_a_note_column_and_a_row_missing_a_language(tmp_path: Path) -> None:
    path = tmp_path / "glossary.tsv"
    path.write_text("en\tfr\nUNPOG\tUNPOG\n", encoding="utf-8")
    assert read_glossary(path)[0].terms == {"en": "UNPOG", "fr": "UNPOG"}
    path.write_text("en\tko\tfr\tnote\nUNPOG\t유엔거버넌스센터\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"glossary.tsv:2: fr: is missing \(columns are separated by a TAB\)$"):
        read_glossary(path)
