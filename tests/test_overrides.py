"""A site overrides packaged templates and UI strings with its own templates/ and locales/."""

from __future__ import annotations

from publisher.i18n import format_date
from publisher.site import Site


def test_site_locale_overrides_one_message_and_keeps_the_rest(site: Site) -> None:
    folder = site.locales_dir / "ko" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "site.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Capacity Development"\nmsgstr "역량개발"\n', encoding="utf-8")
    fresh = Site(site.root)
    assert fresh.ui.gettext("ko", "Capacity Development") == "역량개발"
    assert fresh.ui.gettext("ko", "Digital Government") == "디지털정부"  # packaged
    assert fresh.ui.gettext("en", "Capacity Development") == "Capacity Development"


def test_site_template_wins_over_the_packaged_one(site: Site) -> None:
    (site.templates_dir / "social").mkdir(parents=True)
    (site.templates_dir / "social" / "custom.txt.j2").write_text("{{ _('Digital Government') }}|{{ when|format_date(lang) }}",
                                                          encoding="utf-8")
    article = site.articles().story("2024-unpsf-incheon").get("ko")
    text = site.templates.get_template("social/custom.txt.j2").render(lang="ko", when=article.date)
    assert text == f"디지털정부|{format_date(article.date, 'ko')}"
    assert format_date(article.date, "ko") == "2024년 6월 28일"
    assert format_date(article.date, "en") == "28 June 2024"


def test_html_templates_escape_by_default(site: Site) -> None:
    (site.templates_dir / "web").mkdir(parents=True)
    (site.templates_dir / "web" / "t.html.j2").write_text("<h1>{{ title }}</h1>", encoding="utf-8")
    html = site.templates.get_template("web/t.html.j2").render(title='<script>alert("x")</script>', lang="en")
    assert html == "<h1>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</h1>"
