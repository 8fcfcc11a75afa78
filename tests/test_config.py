"""Settings: declared once, read from publisher.toml < .env < environment, secrets never shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from publisher.config import Config
from publisher.errors import ConfigError
from publisher.site import Site


def test_precedence_environment_over_dotenv_over_toml(site_dir: Path) -> None:
    (site_dir / ".env").write_text("SITE_TITLE_EN=From dotenv\nSITE_TITLE_KO=닷엔브\n", encoding="utf-8")
    config = Config.load(site_dir, environ={"SITE_TITLE_KO": "환경"})
    assert config.get("SITE_TITLE_EN") == "From dotenv" and config.source("SITE_TITLE_EN") == ".env"
    assert config.get("SITE_TITLE_KO") == "환경" and config.source("SITE_TITLE_KO") == "environment"
    assert config.get("SITE_DESCRIPTION_EN").startswith("News from the United Nations")
    assert config.source("SITE_DESCRIPTION_EN") == "publisher.toml"
    assert config.get("PUBLISHER_TIMEZONE").key == "Asia/Seoul"


def test_invalid_value_names_the_field_and_source(site_dir: Path) -> None:
    (site_dir / ".env").write_text("PUBLISHER_TIMEZONE=Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^PUBLISHER_TIMEZONE \(from \.env\): expected an IANA time zone"):
        Config.load(site_dir, environ={}).get("PUBLISHER_TIMEZONE")
    with pytest.raises(ConfigError, match=r"PUBLISHER_SITE_URL \(from environment\): expected an http"):
        Config.load(site_dir, environ={"PUBLISHER_SITE_URL": "unpog.org"}).get("PUBLISHER_SITE_URL")


def test_an_unreadable_dotenv_is_one_line_naming_the_file(site_dir: Path) -> None:
    (site_dir / ".env").write_bytes("SITE_TITLE_KO=\ub274\uc2a4\n".encode("euc-kr"))   # saved in the wrong encoding
    with pytest.raises(ConfigError, match=r"\.env: cannot read: 'utf-8' codec can't decode"):
        Config.load(site_dir, environ={})


def test_secrets_are_refused_in_the_site_file_and_never_described(site_dir: Path) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + 'PUBLISHER_SECRET_KEY = "hunter2"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="is a secret: set it in the environment or .env"):
        Config.load(site_dir, environ={})
    config = Config.from_mapping({"PUBLISHER_SECRET_KEY": "hunter2"})
    assert config.describe("PUBLISHER_SECRET_KEY") == "set"


def test_secret_key_is_generated_once_when_not_set(site: Site) -> None:
    key = site.secret_key
    assert len(key) > 40
    assert Site(site.root).secret_key == key
    assert oct((site.state_dir / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_tokens_are_signed_and_bound_to_their_purpose(site: Site) -> None:
    from publisher import tokens
    from publisher.errors import BadToken

    url = tokens.link(site, "unsubscribe", {"email": "a@example.org"})
    token = url.rsplit("/", 1)[1]
    assert url.startswith("http://localhost:8000/unsubscribe/")
    assert tokens.verify("unsubscribe", token, site) == {"email": "a@example.org"}
    with pytest.raises(BadToken):
        tokens.verify("confirm", token, site)
    with pytest.raises(BadToken):
        tokens.verify("unsubscribe", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], site)


def test_a_channel_secret_in_the_site_file_is_one_line_naming_the_file_and_the_setting(
        site_dir: Path, cli: Callable[..., Result]) -> None:
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + 'X_API_KEY = "hunter2"\n', encoding="utf-8")
    result = cli("config", "check")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: X_API_KEY (from {toml}): is a secret: set it in the environment "
                                     "or .env, not in publisher.toml")
    assert "hunter2" not in result.output


def test_every_lookup_sees_core_and_channel_settings_alike() -> None:
    from publisher.channels.registry import get_channel_classes
    from publisher.setting_registry import all_settings, find_setting
    from publisher.settings import CORE_SETTINGS

    names = [setting.name for setting in all_settings()]
    assert len(names) == len(set(names))
    for setting in CORE_SETTINGS:
        assert find_setting(setting.name) is setting
    for cls in get_channel_classes().values():
        for setting in cls.settings:
            assert setting.name in names and find_setting(setting.name) is not None
    x_key = find_setting("X_API_KEY")
    assert x_key is not None and x_key.secret
    assert find_setting("SMTP_PORT") is not None and find_setting("NOBODY_DECLARES_THIS") is None
    # a channel setting read by name is parsed as its channel declares it, and a secret is never described
    config = Config.from_mapping({"SMTP_PORT": "2525", "X_API_KEY": "hunter2"})
    assert config.get("SMTP_PORT") == 2525
    assert config.describe("X_API_KEY") == "set"


def test_config_check_validates_channel_settings_once(cli: Callable[..., Result]) -> None:
    result = cli("config", "check", env={"SMTP_PORT": "many"})
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: SMTP_PORT")]
    assert len(errors) == 1 and "expected a whole number" in errors[0]
