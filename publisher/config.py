"""Setting values for one site: defaults < ``publisher.toml`` < ``.env`` < the environment."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from publisher.errors import ConfigError
from publisher.setting_registry import find_setting
from publisher.settings import NOT_GIVEN, Setting, language_text_setting

SOURCES = ("environment", ".env", "publisher.toml", "default")


class Config:
    """Raw setting values and where each came from; ``get()`` parses and validates on use."""

    def __init__(self, values: Mapping[str, str], sources: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._sources = dict(sources)
        self._cache: dict[str, Any] = {}

    @classmethod
    def load(cls, root: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
        """Read ``publisher.toml`` and ``.env`` from the site folder ``root`` and overlay the environment."""
        values: dict[str, str] = {}
        sources: dict[str, str] = {}
        if root is not None:
            toml_path = root / "publisher.toml"
            if toml_path.is_file():
                for name, value in _read_toml(toml_path).items():
                    values[name], sources[name] = value, "publisher.toml"
            env_path = root / ".env"
            if env_path.is_file():
                for name, maybe in _read_dotenv(env_path).items():
                    if maybe is not None:   # a bare NAME line in .env sets nothing
                        values[name], sources[name] = maybe, ".env"
        for name, value in (os.environ if environ is None else environ).items():
            values[name], sources[name] = value, "environment"
        return cls(values, sources)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Config:
        """A config from plain values (tests, embedding)."""
        return cls(values, {name: "environment" for name in values})

    def _setting(self, setting: Setting | str) -> Setting:
        if isinstance(setting, Setting):
            return setting
        found = find_setting(setting) or language_text_setting(setting)
        return found if found is not None else Setting(setting, "")

    def raw(self, name: str) -> str | None:
        value = self._values.get(name)
        return value if value not in (None, "") else None

    def is_set(self, setting: Setting | str) -> bool:
        name = setting.name if isinstance(setting, Setting) else setting
        return self.raw(name) is not None

    def source(self, name: str) -> str:
        return self._sources.get(name, "default") if self.is_set(name) else "default"

    def get(self, setting: Setting | str, default: Any = NOT_GIVEN) -> Any:
        """The parsed value, the setting's default, or ``default``; ``ConfigError`` names the field and source."""
        setting = self._setting(setting)
        if setting.name in self._cache:
            return self._cache[setting.name]
        text = self.raw(setting.name)
        if text is None:
            fallback = setting.default if default is NOT_GIVEN else default
            if isinstance(fallback, str) and fallback and setting.parse is not str:
                fallback = self._parse(setting, fallback)
            return None if fallback is NOT_GIVEN else fallback
        value = self._parse(setting, text)
        self._cache[setting.name] = value
        return value

    def require(self, setting: Setting | str) -> Any:
        setting = self._setting(setting)
        value = self.get(setting)
        if value is None or value == "":
            raise ConfigError(setting.name, f"is required: {setting.help}")
        return value

    def _parse(self, setting: Setting, text: str) -> Any:
        if setting.choices is not None and text.strip() not in setting.choices:
            raise ConfigError(setting.name, f"expected one of {', '.join(setting.choices)}, got {text!r}",
                              self.source(setting.name))
        if setting.choices is not None:
            text = text.strip()   # the value checked is the value used
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise ConfigError(setting.name, str(exc), self.source(setting.name)) from None

    def problems(self, settings: Iterable[Setting | str]) -> list[ConfigError]:
        """Every invalid value among ``settings``, each parsed as ``get`` parses it."""
        found: list[ConfigError] = []
        for setting in settings:
            try:
                self.get(setting)
            except ConfigError as exc:
                found.append(exc)
        return found

    def validate(self, settings: Iterable[Setting | str]) -> None:
        """Raise the first invalid value among ``settings`` (a run calls this before it writes anything)."""
        for problem in self.problems(settings):
            raise problem

    def describe(self, setting: Setting | str) -> str:
        """A printable value: secrets are never shown, only whether they are set."""
        setting = self._setting(setting)
        if not self.is_set(setting.name):
            return "not set" if setting.default in (NOT_GIVEN, None, "") else f"{setting.default} (default)"
        if setting.secret:
            return "set"
        text = str(self.raw(setting.name))
        return setting.show(text) if setting.show is not None else text


def _read_dotenv(path: Path) -> dict[str, str | None]:
    """The values of a ``.env`` file; a line python-dotenv cannot parse is a ``ConfigError`` naming the file and
    the line (python-dotenv itself only logs a warning without the file's name, and skips the line)."""
    import io
    import re

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    for binding in parse_stream(io.StringIO(text)):
        # The line itself is never shown: it may hold a secret.
        where = f"{path}:{binding.original.line}"
        if binding.error:
            raise ConfigError(where, "cannot parse this line; expected NAME=value (a quoted value must end with "
                                     "its quote)")
        if binding.key is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", binding.key):
            raise ConfigError(where, "expected NAME=value, where NAME holds only letters, digits and _")
    return dotenv_values(stream=io.StringIO(text))


def _read_toml(path: Path) -> dict[str, str]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None
    values: dict[str, str] = {}
    for name, value in data.items():
        # core and channel settings alike: X_API_KEY is a secret although its name does not say so
        setting = find_setting(name)
        if setting is not None and setting.secret or _looks_secret(name):
            raise ConfigError(name, "is a secret: set it in the environment or .env, not in publisher.toml",
                              str(path))
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            values[name] = str(value)
        elif isinstance(value, list):
            values[name] = ",".join(str(v) for v in value)
        else:
            raise ConfigError(name, "expected a string, number, boolean or list", "publisher.toml")
    return values


def _looks_secret(name: str) -> bool:
    if name.endswith("_FILE"):  # a path to a secret (DKIM_PRIVATE_KEY_FILE) may sit in the site file
        return False
    return any(word in name for word in ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY"))
