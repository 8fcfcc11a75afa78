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


# --- issue 11: values that end up in a header or a one-line field ------------------------------------------

HEADER_INJECTION = "UNPOG News\r\nBcc: victim@example.org"


@pytest.mark.parametrize("name", ["SITE_TITLE_EN", "SITE_TITLE_KO", "SITE_DESCRIPTION_EN", "SITE_DESCRIPTION_KO",
                                  "SITE_TITLE_FR"])
@pytest.mark.parametrize("value", [HEADER_INJECTION, "News\nBcc: x@example.org", "News\x00", "News\x7f",
                                   "News\u2028Bcc: x", "\u202eswen"])
def test_a_site_text_with_a_line_break_or_control_character_is_a_config_error(name: str, value: str) -> None:
    config = Config.from_mapping({name: value})
    with pytest.raises(ConfigError, match=rf"^{name} \(from environment\): expected one line of text without "
                                          r"control characters"):
        config.get(name)


def test_a_site_title_in_a_language_of_the_site_is_checked_before_a_run(site_dir: Path) -> None:
    import shutil

    from publisher import pipeline
    from publisher.resources import locales_dir

    # the site's own French UI strings: the English catalogs stand in for translated ones
    shutil.copytree(locales_dir() / "en" / "LC_MESSAGES", site_dir / "locales" / "fr" / "LC_MESSAGES")
    toml = site_dir / "publisher.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('"en,ko"', '"en,ko,fr"'), encoding="utf-8")
    site = Site(site_dir, Config.load(site_dir, environ={"SITE_DESCRIPTION_FR": "Nouvelles\r\nBcc: x@example.org"}))
    with pytest.raises(ConfigError, match=r"^SITE_DESCRIPTION_FR \(from environment\): expected one line"):
        pipeline.check_site_settings(site)


@pytest.mark.parametrize("name", ["SITE_TITLE_EN", "SITE_TITLE_KO", "SITE_DESCRIPTION_EN", "SITE_DESCRIPTION_KO"])
def test_a_site_text_with_cr_lf_fails_publish_and_config_check_before_anything_is_written(
        name: str, site_dir: Path, cli: Callable[..., Result]) -> None:
    env = {name: HEADER_INJECTION}
    expected = (f"Error: {name} (from environment): expected one line of text without control characters, "
                f"got {HEADER_INJECTION!r} (holds U+000D)")
    result = cli("publish", env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == expected
    assert "internal error" not in result.output and "Traceback" not in result.output
    for folder in ("public", "outbox"):
        assert not (site_dir / folder).exists() or not any((site_dir / folder).iterdir()), folder

    result = cli("config", "check", env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr.splitlines()
    assert "All settings are valid" not in result.output
    assert "internal error" not in result.output


@pytest.mark.parametrize("command", [("feeds", "build"), ("bulletin", "--since", "2020-01-01")])
def test_a_site_title_with_cr_lf_fails_feeds_build_and_bulletin_before_anything_is_written(
        command: tuple[str, ...], site_dir: Path, cli: Callable[..., Result]) -> None:
    result = cli(*command, env={"SITE_TITLE_EN": HEADER_INJECTION})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("Error: SITE_TITLE_EN (from environment): expected one line")
    for folder in ("public", "outbox"):
        assert not (site_dir / folder).exists() or not any((site_dir / folder).iterdir()), folder


# --- issue 11: every parser refuses what would fail later -------------------------------------------------


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FEED_MAX_ITEMS", "-1", "expected a whole number of at least 1"),
    ("FEED_MAX_ITEMS", "0", "expected a whole number of at least 1"),
    ("SMTP_SECURITY", "tls", "expected one of starttls, ssl, none"),
    ("SMTP_PORT", "70000", "expected a port number from 1 to 65535"),
    ("SMTP_HOST", "mail.example.org\r\nRCPT TO:<x@example.org>", "expected a host name"),
    ("SMTP_HOST", "mail example.org", "expected a host name"),
    ("SMTP_USERNAME", "news\r\nAUTH", "expected one line of text"),
    ("DKIM_DOMAIN", "unpog.example; x=1", "expected a host name"),
    ("DKIM_SELECTOR", "s1\r\nBcc: x", "expected a host name"),
    ("BULLETIN_FROM", "News <news@@unpog.example>", "expected an address such as"),
    ("BULLETIN_FROM", "@unpog.example", "expected an address such as"),
    ("BULLETIN_FROM", "news@unpog.example\r\nBcc: victim@example.org", "holds a control character"),
    ("BULLETIN_FROM", "News <news@unpog.example>, other@example.org", "expected an address such as"),
    ("BULLETIN_FROM", "News <news@unpog exa mple>", "expected an address such as"),
    ("BULLETIN_FROM", "news@localhost", "It should have a period"),
    ("BULLETIN_REPLY_TO", "info@unpog.example\nBcc: x@example.org", "holds a control character"),
    ("PUBLISHER_SITE_URL", "http://unpog example.org", "expected an http:// or https:// URL"),
    ("PUBLISHER_SITE_URL", "http:///news", "expected an http:// or https:// URL"),
    ("PUBLISHER_SITE_URL", "http://unpog.org:port", "expected an http:// or https:// URL"),
    ("PUBLISHER_DATABASE_URL", "sqlite:///", "expected sqlite:///PATH .* or postgresql://"),
    ("PUBLISHER_MODEL_DOWNLOAD_TIMEOUT", "-1", "expected a number greater than 0"),
    ("PUBLISHER_MODEL_DOWNLOAD_TIMEOUT", "nan", "expected a number greater than 0"),
])
def test_every_parser_refuses_what_would_fail_later(name: str, value: str, message: str) -> None:
    config = Config.from_mapping({name: value})
    with pytest.raises(ConfigError, match=rf"^{name} \(from environment\): .*{message}") as raised:
        config.get(name)
    assert "\n" not in str(raised.value) and "\r" not in str(raised.value)


@pytest.mark.parametrize(("name", "value", "parsed"), [
    ("SMTP_SECURITY", " ssl ", "ssl"),
    ("SMTP_PORT", "587", 587),
    ("SMTP_HOST", "mail.example.org", "mail.example.org"),
    ("SMTP_HOST", "127.0.0.1", "127.0.0.1"),
    ("DKIM_SELECTOR", "s2024", "s2024"),
    ("BULLETIN_FROM", "UNPOG News <news@unpog.example>", "UNPOG News <news@unpog.example>"),
    ("BULLETIN_FROM", '"News, Inc." <news@unpog.example>', '"News, Inc." <news@unpog.example>'),
    ("BULLETIN_FROM", "J. Smith <j@unpog.example>", "J. Smith <j@unpog.example>"),
    ("BULLETIN_FROM", "유엔거버넌스센터 <news@unpog.example>", "유엔거버넌스센터 <news@unpog.example>"),
    ("BULLETIN_FROM", "news@unpog.example", "news@unpog.example"),
    ("PUBLISHER_SITE_URL", "https://unpog.org/news/", "https://unpog.org/news"),
    ("PUBLISHER_SITE_URL", "http://[::1]:8000", "http://[::1]:8000"),
    ("SITE_TITLE_KO", "유엔거버넌스센터 소식", "유엔거버넌스센터 소식"),
])
def test_the_parsers_still_accept_good_values(name: str, value: str, parsed: object) -> None:
    assert Config.from_mapping({name: value}).get(name) == parsed


# --- issue 11: a .env line python-dotenv cannot parse ------------------------------------------------------


@pytest.mark.parametrize(("text", "line"), [
    ("SITE_TITLE_EN=Fine\nSMTP_PASSWORD=\"hunter2\n", 2),        # a quote never closed
    ("not a setting\nSITE_TITLE_EN=Fine\n", 1),
    ("SITE_TITLE_EN=Fine\n\n# a comment\n= no name\n", 4),
    ("\"SITE_TITLE_EN=Fine\n", 1),                              # python-dotenv reads the name '"SITE_TITLE_EN'
])
def test_a_dotenv_syntax_error_names_the_file_and_line(site_dir: Path, text: str, line: int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    env = site_dir / ".env"
    env.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{env}:{line}: ") as raised:
        Config.load(site_dir, environ={})
    assert "hunter2" not in str(raised.value)
    assert "could not parse" not in caplog.text   # python-dotenv's own warning, without the file's name


def test_a_dotenv_still_reads_every_form_it_allows(site_dir: Path) -> None:
    (site_dir / ".env").write_text(
        "# comment\nexport SITE_TITLE_EN='Quoted News'\nSITE_TITLE_KO=\"소식 ${SITE_TITLE_EN}\"\n"
        "SITE_DESCRIPTION_EN=plain # trailing comment\nPUBLISHER_SECRET_KEY\n\n"
        "SITE_DESCRIPTION_KO=\"two\nlines\"\n", encoding="utf-8")
    config = Config.load(site_dir, environ={})
    assert config.raw("SITE_TITLE_EN") == "Quoted News"
    assert config.raw("SITE_TITLE_KO") == "소식 Quoted News"
    assert config.raw("SITE_DESCRIPTION_EN") == "plain"
    assert config.source("PUBLISHER_SECRET_KEY") == "default"   # a bare NAME sets nothing
    assert config.raw("SITE_DESCRIPTION_KO") == "two\nlines"


@pytest.mark.parametrize("command", [("config", "check"), ("publish",), ("status",), ("feeds", "build"),
                                     ("bulletin", "--since", "2024-01-01"), ("subscribers", "list"),
                                     ("models", "list")])
def test_a_dotenv_syntax_error_is_one_line_exit_2_for_every_command(
        command: tuple[str, ...], site_dir: Path, cli: Callable[..., Result]) -> None:
    env = site_dir / ".env"
    env.write_text("SITE_TITLE_EN=Fine\nSMTP_PASSWORD=\"hunter2\n", encoding="utf-8")
    result = cli(*command)
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"Error: {env}:2: cannot parse this line; expected NAME=value (a quoted value must "
                             "end with its quote)\n")
    assert "hunter2" not in result.output
    assert "All settings are valid" not in result.output
    for folder in ("public", "outbox"):
        assert not (site_dir / folder).exists(), folder
