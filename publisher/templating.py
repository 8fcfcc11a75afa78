"""The jinja2 environment: a site's ``templates/`` first, then the packaged ones, with i18n helpers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.resources import templates_dir

if TYPE_CHECKING:
    import jinja2

    from publisher.site import Site


def make_environment(site: Site | None) -> jinja2.Environment:
    """Templates call ``{{ _("Unsubscribe") }}`` (language from the ``lang`` variable) and ``|format_date(lang)``."""
    import jinja2

    from publisher import i18n

    searchpath = [str(site.templates_dir)] if site is not None and site.templates_dir.is_dir() else []
    searchpath.append(str(templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(searchpath),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "xml.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(site) if site is not None else None,
    )
    ui = site.ui if site is not None else i18n.UIStrings()

    @jinja2.pass_context
    def translate(context: Any, msgid: str, **values: Any) -> str:
        return ui.gettext(context.get("lang", "en"), msgid, **values)

    env.globals["_"] = translate
    env.globals["site"] = site
    env.filters["format_date"] = i18n.format_date
    env.filters["format_datetime"] = i18n.format_datetime
    env.filters["language_name"] = i18n.language_name
    env.globals["machine_notice"] = lambda article: i18n.machine_notice(article, site)
    env.globals["theme_label"] = lambda theme, lang: i18n.theme_label(theme, lang, site)
    return env


def _bytecode_cache(site: Site) -> jinja2.BytecodeCache | None:
    """Compiled templates kept in ``.publisher/cache/templates-<options>/`` (compiling the pages' templates is a
    tenth of publishing one article). jinja2 keys each entry by the template's name and file (a site's own
    template is another entry than ours) and checks it against a hash of the source, so an edited template is
    compiled again. The folder's name is a hash of the jinja2 and Python versions and of this module (the
    environment's options, autoescape included, are compiled into the code), so other options use other entries."""
    import hashlib
    import os
    import sys

    import jinja2

    fingerprint = hashlib.blake2b(f"{jinja2.__version__}|{sys.version_info[:2]}|".encode(), digest_size=6)
    fingerprint.update(Path(__file__).read_bytes())
    folder = site.state_dir / "cache" / f"templates-{fingerprint.hexdigest()}"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:   # a site folder that cannot be written: templates compiled each run, as before
        return None

    class _Cache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass   # the cache could not be written: compiled again next run, nothing else

    return _Cache(str(folder), "%s.jinja")
