"""What a run keeps in ``.publisher/cache`` besides the content index: compiled templates (jinja2's bytecode)
and the messages of the gettext catalogs. Each is read back while its source is unchanged, and a changed
template or catalog (a site's own, overriding ours) is compiled or parsed again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from publisher import i18n
from publisher.site import Site

PO_HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def _write_old(path: Path, text: str, age: float = 3600) -> None:
    """A file as an edited site has it: written, then left (a file modified just now is not cached)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    then = time.time() - age
    os.utime(path, (then, then))


def test_site_template_edited_after_it_was_cached_is_compiled_again(site: Site) -> None:
    template = site.templates_dir / "feeds" / "robots.txt.j2"
    _write_old(template, "User-agent: *\nAllow: {{ site_url }}/first\n")
    first = Site(site.root).templates.get_template("feeds/robots.txt.j2").render(site_url="https://a.example")
    assert first == "User-agent: *\nAllow: https://a.example/first\n"
    cached = list((site.state_dir / "cache").glob("templates-*/*.jinja"))
    assert cached, "the compiled template is kept"
    # same size, an older mtime: only the source's hash (which jinja2 checks) tells the edit
    _write_old(template, "User-agent: *\nAllow: {{ site_url }}/other\n", age=7200)
    again = Site(site.root).templates.get_template("feeds/robots.txt.j2").render(site_url="https://a.example")
    assert again == "User-agent: *\nAllow: https://a.example/other\n"


def test_compiled_templates_render_what_a_fresh_compile_renders(site: Site) -> None:
    def render() -> str:
        env = Site(site.root).templates
        return str(env.get_template("feeds/favicon.svg.j2").render(lang="en", site_title="A <b> & 'c'"))

    fresh = render()            # compiled and kept
    assert list((site.state_dir / "cache").glob("templates-*/*.jinja"))
    assert render() == fresh    # read back from the cache


def test_a_site_that_cannot_keep_the_cache_still_renders(site: Site) -> None:
    (site.state_dir / "cache").mkdir(parents=True, exist_ok=True)
    (site.state_dir / "cache" / "ui-strings").write_text("not a folder", encoding="utf-8")
    i18n._packaged.cache_clear()
    for _ in range(2):   # neither read nor written: parsed each time
        assert Site(site.root).ui.gettext("ko", "Digital Government") == "디지털정부"
    assert (site.state_dir / "cache" / "ui-strings").read_text(encoding="utf-8") == "not a folder"


def test_catalog_messages_are_read_back_until_the_po_file_changes(site: Site,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    po = site.locales_dir / "ko" / "LC_MESSAGES" / "site.po"
    _write_old(po, PO_HEADER + 'msgid "Capacity Development"\nmsgstr "역량개발 하나"\n')
    parsed: list[Path] = []
    parse = i18n._parse_po

    def counting(path: Path, lang: str) -> dict[str, str]:
        parsed.append(path)
        return parse(path, lang)

    monkeypatch.setattr(i18n, "_parse_po", counting)
    i18n._packaged.cache_clear()
    assert Site(site.root).ui.gettext("ko", "Capacity Development") == "역량개발 하나"
    assert po in parsed
    parsed.clear()
    i18n._packaged.cache_clear()
    fresh = Site(site.root).ui
    assert fresh.gettext("ko", "Capacity Development") == "역량개발 하나"
    assert fresh.gettext("ko", "Digital Government") == "디지털정부"   # packaged, from the cache too
    assert parsed == []
    # an edit (another size and mtime) is parsed again
    _write_old(po, PO_HEADER + 'msgid "Capacity Development"\nmsgstr "역량개발 둘, 고친 것"\n', age=1800)
    assert Site(site.root).ui.gettext("ko", "Capacity Development") == "역량개발 둘, 고친 것"
    assert parsed == [po]


def test_a_catalog_written_just_now_is_not_cached(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    po = site.locales_dir / "ko" / "LC_MESSAGES" / "site.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO_HEADER + 'msgid "Capacity Development"\nmsgstr "지금"\n', encoding="utf-8")
    assert Site(site.root).ui.gettext("ko", "Capacity Development") == "지금"
    # rewritten within the same second with the same size: its mtime cannot tell, so it was never kept
    po.write_text(PO_HEADER + 'msgid "Capacity Development"\nmsgstr "아직"\n', encoding="utf-8")
    stat = po.stat()
    os.utime(po, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert Site(site.root).ui.gettext("ko", "Capacity Development") == "아직"


def test_a_broken_catalog_still_names_its_file(site: Site) -> None:
    from publisher.errors import ContentError

    po = site.locales_dir / "ko" / "LC_MESSAGES" / "site.po"
    po.parent.mkdir(parents=True)
    po.write_bytes(PO_HEADER.encode() + b'msgid "Capacity Development"\nmsgstr "\xff\xfe"\n')   # not UTF-8
    then = time.time() - 3600
    os.utime(po, (then, then))
    for _ in range(2):   # nothing kept of it: the second run says the same
        with pytest.raises(ContentError, match="site.po.*invalid gettext catalog"):
            Site(site.root).ui.gettext("ko", "Capacity Development")
