"""CTranslate2's threads: the choice from cores and load, and the PUBLISHER_TRANSLATION_THREADS setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.config import Config
from publisher.site import Site
from publisher.translate.registry import get_translator
from publisher.translate.threads import MAX_THREADS, choose_threads, usable_cores


@pytest.mark.parametrize("cores, load, threads", [
    (2, 0.0, 2),     # an idle 2-core machine: both cores
    (2, 0.4, 2),     # background noise leaves both free
    (2, 0.6, 1),     # the other core is mostly busy: a second thread would wait for it at every layer
    (2, 1.0, 1),
    (2, 8.0, 1),     # heavily loaded: one thread, never oversubscribed by us
    (1, 0.0, 1),
    (8, 0.0, MAX_THREADS),   # more cores than a model of this size uses well
    (8, 5.4, 3),
    (4, -1.0, 4),    # a nonsense load (negative) counts as idle
])
def test_threads_are_the_idle_cores(cores: int, load: float, threads: int) -> None:
    assert choose_threads(cores, load) == threads


def test_usable_cores_is_the_affinity() -> None:
    import os

    assert usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("text, value", [("auto", 0), ("AUTO", 0), ("1", 1), (" 2 ", 2)])
def test_the_setting_reads_auto_or_a_number(text: str, value: int) -> None:
    assert Config.from_mapping({"PUBLISHER_TRANSLATION_THREADS": text}).get("PUBLISHER_TRANSLATION_THREADS") == value
    assert Config.from_mapping({}).get("PUBLISHER_TRANSLATION_THREADS") == 0


@pytest.mark.parametrize("bad", ["0", "-2", "many", "1.5"])
def test_a_bad_thread_count_is_one_line_naming_the_setting(cli, bad: str) -> None:
    result = cli("config", "check", env={"PUBLISHER_TRANSLATION_THREADS": bad})

    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: PUBLISHER_TRANSLATION_THREADS")]
    assert len(errors) == 1 and "expected auto or a whole number of at least 1" in errors[0]
    assert "Traceback" not in result.output


def test_translate_refuses_a_bad_thread_count_and_writes_nothing(cli, site: Site, models_dir: Path,
                                                                 write_article) -> None:
    source = write_article("workshop", "en", "UNPOG met in Incheon.")

    result = cli("translate", str(source), "--to", "ko", env={"PUBLISHER_TRANSLATION_THREADS": "none"})

    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "PUBLISHER_TRANSLATION_THREADS" in lines[0], result.output
    assert not (site.content_dir / "workshop.ko.md").exists()


def test_the_translator_takes_the_setting_or_chooses_when_it_loads(site_dir: Path, models_dir: Path) -> None:
    settings = {"ARGOS_PACKAGES_DIR": str(models_dir)}
    fixed = get_translator(Site(site_dir, Config.from_mapping({**settings, "PUBLISHER_TRANSLATION_THREADS": "1"})),
                           "en", "ko")
    auto = get_translator(Site(site_dir, Config.from_mapping(settings)), "en", "ko")

    assert fixed.threads == 1   # type: ignore[attr-defined]
    assert auto.threads is None   # type: ignore[attr-defined]
    assert len(auto.translate_batch(["UNPOG met in Incheon."])) == 1
    assert 1 <= auto.threads <= min(usable_cores(), MAX_THREADS)   # type: ignore[attr-defined]
