"""Every translation model a site can use (Argos packages and CTranslate2 folders) and the one chosen per direction.

``TRANSLATION_MODEL_EN_KO`` and ``TRANSLATION_MODEL_KO_EN`` name a model: ``argos`` (the default: the
installed Argos package of that pair) or the name of a folder installed with ``publisher models install --dir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.config import Config
from publisher.errors import ConfigError, InputError, TranslationUnavailable

if TYPE_CHECKING:
    from publisher.site import Site
    from publisher.translate.base import Translator

ARGOS = "argos"


@dataclass(frozen=True)
class ModelRow:
    """One direction of one installed model, as ``publisher models list`` shows it."""

    name: str
    kind: str           # "argos", "marian" or "nllb"
    source_lang: str
    target_lang: str
    model_id: str
    path: Path
    chosen: bool        # the model the site's setting picks for this direction

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "from": self.source_lang, "to": self.target_lang,
                "model_id": self.model_id, "path": str(self.path), "chosen": self.chosen}


def setting_for(source_lang: str, target_lang: str) -> str:
    """``TRANSLATION_MODEL_EN_KO`` for en->ko."""
    return f"TRANSLATION_MODEL_{source_lang.upper()}_{target_lang.upper()}"


def chosen_name(site: Site | Config, source_lang: str, target_lang: str) -> str:
    """The model the settings pick for a pair; ``argos`` where no setting exists or it is unset."""
    from publisher.setting_registry import find_setting

    config = site if isinstance(site, Config) else site.config
    name = setting_for(source_lang, target_lang)
    if find_setting(name) is None:   # a pair without a setting of its own (only en<->ko have one)
        return ARGOS
    return str(config.get(name) or ARGOS).strip() or ARGOS


def all_models(site: Site) -> list[ModelRow]:
    """Every direction of every installed model: Argos packages first, then the CTranslate2 folders by name."""
    from publisher.translate.ct2models import installed_models, models_dir
    from publisher.translate.packages import installed_packages, packages_dir

    rows = [
        ModelRow(ARGOS, "argos", p.from_code, p.to_code, p.model_id, p.path,
                 chosen_name(site, p.from_code, p.to_code) == ARGOS)
        for p in installed_packages(packages_dir(site.config))
    ]
    for model in installed_models(models_dir(site)):
        rows.extend(
            ModelRow(model.name, model.kind, source, target, model.model_id(source, target), model.path,
                     chosen_name(site, source, target) == model.name)
            for source, target in model.directions
        )
    return rows


def get_translator(site: Site, source_lang: str, target_lang: str, name: str | None = None, *,
                   beam_size: int | None = None) -> Translator:
    """The backend for a pair: ``name``, else the one the settings choose; one line when it is not installed.
    ``beam_size`` replaces PUBLISHER_TRANSLATION_BEAM_SIZE (``models evaluate --beam-size``)."""
    from publisher.translate.argos import ArgosTranslator
    from publisher.translate.ct2 import translator_for
    from publisher.translate.ct2models import find_model, models_dir
    from publisher.translate.packages import find_package, packages_dir, require_extra

    config = site.config
    beam_size = beam_size or int(config.get("PUBLISHER_TRANSLATION_BEAM_SIZE"))
    max_tokens = int(config.get("PUBLISHER_TRANSLATION_MAX_TOKENS"))
    # 0 (auto): the translator picks its threads from the cores and the load when it loads the model
    threads = int(config.get("PUBLISHER_TRANSLATION_THREADS")) or None
    setting = None if name is not None else setting_for(source_lang, target_lang)
    chosen = name if name is not None else chosen_name(site, source_lang, target_lang)
    if chosen == ARGOS:
        package = find_package(packages_dir(config), source_lang, target_lang)
        return ArgosTranslator(package, beam_size=beam_size, max_tokens=max_tokens, threads=threads)
    require_extra()
    model = find_model(models_dir(site), chosen, source_lang, target_lang, setting=setting)
    return translator_for(model, source_lang, target_lang, beam_size=beam_size, max_tokens=max_tokens,
                          threads=threads)


def setup_warnings(languages: tuple[str, ...] | list[str], config: Config, site: Site | None = None) -> list[str]:
    """What ``publisher config check`` should warn about: a language pair of the site with no model installed.

    Checked at configuration time so that ``publish --lang ko`` does not discover it later. A pair whose
    TRANSLATION_MODEL_<FROM>_<TO> names a CTranslate2 model is checked against that model (given the site).
    """
    from publisher.translate.packages import installed_packages, packages_dir

    directory = packages_dir(config)
    try:
        pairs = {(p.from_code, p.to_code) for p in installed_packages(directory)}
    except (InputError, TranslationUnavailable) as exc:
        return [str(exc)]
    allow = bool(config.get("PUBLISHER_ALLOW_MACHINE_TRANSLATION"))
    warnings = []
    for source in languages:
        for target in languages:
            if source == target:
                continue
            try:
                chosen = chosen_name(config, source, target)
            except ConfigError as exc:
                warnings.append(str(exc))
                continue
            if chosen != ARGOS:
                if site is not None:
                    from publisher.translate.ct2models import find_model, models_dir

                    try:
                        find_model(models_dir(site), chosen, source, target,
                                   setting=f"TRANSLATION_MODEL_{source.upper()}_{target.upper()}")
                    except (ConfigError, InputError) as exc:
                        warnings.append(str(exc))
                continue
            if (source, target) not in pairs:
                consequence = ("articles without a " + target + " version are not published in " + target
                               if allow else "publisher translate --to " + target + " cannot run")
                warnings.append(f"no {source}->{target} translation model in {directory}: {consequence}; "
                                f"run: publisher models install {source} {target}")
    return warnings
