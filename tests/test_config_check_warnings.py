"""`publisher config check` on the sample site: every unset setting that will bite is a warning, and the verdict
counts them (issue 16 item 5, issue 13 item 8)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

# What a site that is ready to send has set: with these, the sample site has nothing to warn about.
READY = {"BULLETIN_FROM": "UNPOG News <news@unpog.example>", "PUBLISHER_SECRET_KEY": "k" * 48,
         "PUBLISHER_SITE_URL": "https://news.unpog.example",
         "BULLETIN_POSTAL_ADDRESS": "UNPOG, 175 Art center-daero, Incheon 22004, Republic of Korea"}


def warnings_of(result: Result) -> list[str]:
    return [line[len("Warning: "):] for line in result.stderr.splitlines() if line.startswith("Warning: ")]


def about(result: Result, name: str) -> list[str]:
    return [warning for warning in warnings_of(result) if warning.startswith(name)]


def test_the_sample_site_is_valid_with_warnings_not_all_valid(cli: Callable[..., Result], site_dir: Path) -> None:
    result = cli("config", "check")
    assert result.exit_code == 0, result.output
    assert "All settings are valid." not in result.stdout
    count = len(warnings_of(result))
    assert f"valid, with {count} warnings" in " ".join(result.stdout.split())

    [sender] = about(result, "BULLETIN_FROM is not set")
    assert "news@localhost.localdomain" in sender
    [key] = about(result, "PUBLISHER_SECRET_KEY is not set")
    assert str(site_dir / ".publisher" / "secret_key") in key and "stops working" in key
    [url] = about(result, "PUBLISHER_SITE_URL is http://localhost:8000")
    assert "images" in url and "would point at this machine" in url
    # the check reads the key's file name; it never makes the key
    assert not (site_dir / ".publisher" / "secret_key").exists()


@pytest.fixture
def models_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both translation pairs installed (package folders as argostranslate reads them): config check has no
    model to warn about, so what is left is this issue's warnings."""
    import json

    folder = tmp_path / "argos-installed"
    for source, target in (("en", "ko"), ("ko", "en")):
        package = folder / f"translate-{source}_{target}"
        package.mkdir(parents=True)
        (package / "metadata.json").write_text(json.dumps(
            {"package_version": "1.0", "from_code": source, "to_code": target, "type": "translate"}), encoding="utf-8")
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(folder))


def test_all_valid_only_when_there_are_no_warnings(cli: Callable[..., Result], models_installed: None) -> None:
    result = cli("config", "check", env=READY)
    assert result.exit_code == 0, result.output
    assert warnings_of(result) == []
    assert "All settings are valid." in result.stdout and "warning" not in result.stdout

    one = cli("config", "check", env={**READY, "PUBLISHER_SECRET_KEY": ""})
    assert one.exit_code == 0, one.output
    assert len(warnings_of(one)) == 1
    assert "All settings are valid, with 1 warning " in " ".join(one.stdout.split())


def test_an_existing_generated_key_is_named_as_in_use(cli: Callable[..., Result], site_dir: Path) -> None:
    (site_dir / ".publisher").mkdir(exist_ok=True)
    (site_dir / ".publisher" / "secret_key").write_text("generated\n", encoding="utf-8")
    [key] = about(cli("config", "check"), "PUBLISHER_SECRET_KEY is not set")
    assert "a key generated in" in key and "generated\n" not in key


def test_an_unset_site_url_says_it_is_the_default(cli: Callable[..., Result], site_dir: Path) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text("\n".join(line for line in toml.read_text(encoding="utf-8").splitlines()
                              if not line.startswith("PUBLISHER_SITE_URL")) + "\n", encoding="utf-8")
    [url] = about(cli("config", "check"), "PUBLISHER_SITE_URL")
    assert url.startswith("PUBLISHER_SITE_URL is http://localhost:8000 (not set: the default)")


def test_an_http_site_url_is_a_warning_even_without_smtp(cli: Callable[..., Result]) -> None:
    [url] = about(cli("config", "check", env={"PUBLISHER_SITE_URL": "http://news.unpog.example"}), "PUBLISHER_SITE_URL")
    assert "https one-click unsubscribe" in url


@pytest.mark.parametrize("transport", [{"SMTP_HOST": "smtp.unpog.example"}, {"EMAIL_TRANSPORT": "postmark"}])
def test_an_empty_postal_address_is_a_warning_when_mail_goes_out(cli: Callable[..., Result],
                                                                  transport: dict[str, str]) -> None:
    ready = {**READY, "BULLETIN_POSTAL_ADDRESS": ""}   # the sample's publisher.toml sets one: the environment wins
    result = cli("config", "check", env={**ready, **transport})
    [postal] = about(result, "BULLETIN_POSTAL_ADDRESS is empty")
    assert next(iter(transport)) in postal and "anti-spam" in postal
    assert about(cli("config", "check", env={**READY, **transport}), "BULLETIN_POSTAL_ADDRESS") == []


def test_an_empty_postal_address_is_no_warning_for_the_maildir_outbox(cli: Callable[..., Result]) -> None:
    assert about(cli("config", "check", env={"BULLETIN_POSTAL_ADDRESS": ""}), "BULLETIN_POSTAL_ADDRESS") == []


def test_the_sample_site_has_a_postal_address_and_a_logo(cli: Callable[..., Result]) -> None:
    result = cli("config", "check", env={"SMTP_HOST": "smtp.unpog.example"})
    assert result.exit_code == 0, result.output
    assert about(result, "BULLETIN_POSTAL_ADDRESS") == [] and about(result, "BULLETIN_LOGO") == []


def test_body_images_without_alt_text_are_named_per_file(cli: Callable[..., Result], site_dir: Path) -> None:
    article = site_dir / "content" / "2025-public-service-day.en.md"
    article.write_text(article.read_text(encoding="utf-8") + "\n\n![](images/unpsf-2024.png)\n\n"
                       '<img src="images/chart.png" alt=" ">\n\n![A described picture](images/unpsf-2024.png)\n',
                       encoding="utf-8")
    result = cli("config", "check")
    assert result.exit_code == 0, result.output
    [alt] = about(result, "content/2025-public-service-day.en.md")
    assert "2 image(s) without alt text" in alt and "images/unpsf-2024.png" in alt and "images/chart.png" in alt
    assert len([w for w in warnings_of(result) if "without alt text" in w]) == 1   # the other files have none


def test_a_logo_outside_the_site_is_an_error(cli: Callable[..., Result], tmp_path: Path, site_dir: Path) -> None:
    outside = tmp_path / "logo.png"
    outside.write_bytes((site_dir / "content" / "images" / "unpsf-2024.png").read_bytes())
    (site_dir / "content" / "images" / "logo.png").symlink_to(outside)
    result = cli("config", "check", env={"BULLETIN_LOGO": "images/logo.png"})
    assert result.exit_code == 2, result.output
    assert any(line.startswith("Error: BULLETIN_LOGO") and "inside the site" in line
               for line in result.stderr.splitlines())
