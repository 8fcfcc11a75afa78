"""What every public page offers besides its content: the sign-up form, the language switch, the favicon and
robots.txt, and how a site changes them (PUBLISHER_SUBSCRIBE_URL, its own templates)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from publisher.site import Site
from tests.conftest import set_settings
from tests.web.conftest import make_client


class Forms(HTMLParser):
    """The forms of a page (method, action, the names of their fields), the language switch and <link rel=icon>."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self.switch: list[dict[str, str]] = []
        self.icons: list[str] = []
        self.signup_links: list[str] = []
        self._in_nav = self._in_signup = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": values.get("method"), "action": values.get("action"), "fields": []})
        elif tag in ("input", "select") and self.forms:
            self.forms[-1]["fields"].append(values.get("name"))  # type: ignore[union-attr]
        elif tag == "nav" and "languages" in values.get("class", ""):
            self._in_nav = True
        elif self._in_nav and tag in ("a", "span"):
            self.switch.append({"lang": values.get("lang", ""), "href": values.get("href", ""),
                                "current": values.get("aria-current", "")})
        elif tag == "link" and values.get("rel") == "icon":
            self.icons.append(values["href"])
        elif tag == "p" and "signup" in values.get("class", ""):
            self._in_signup = True
        elif tag == "a" and self._in_signup:
            self.signup_links.append(values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False
        elif tag == "p":
            self._in_signup = False


def parsed(path: Path) -> Forms:
    page = Forms()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def build(site: Site, cli) -> Path:
    assert cli("feeds", "build", "--all").exit_code == 0
    return site.public_dir


def test_every_page_has_a_get_form_to_the_served_subscribe_page(site: Site, cli) -> None:
    public = build(site, cli)
    pages = [public / "en" / "index.html", public / "ko" / "index.html",
             public / "en" / "2024-unpsf-incheon" / "index.html", public / "ko" / "2024-unpsf-incheon" / "index.html"]
    for page_path in pages:
        [form] = parsed(page_path).forms
        # GET, never POST: a static page has no per-visitor CSRF token, so it only opens the served form.
        assert form == {"method": "get", "action": "http://localhost:8000/subscribe", "fields": ["email", "lang"]}
    korean = (public / "ko" / "index.html").read_text(encoding="utf-8")
    assert "이메일로 소식 받기" in korean and '<option value="ko" lang="ko" selected>' in korean


def test_the_language_switch_goes_to_the_same_article_or_the_other_index(site: Site, cli) -> None:
    public = build(site, cli)
    both = parsed(public / "en" / "2024-unpsf-incheon" / "index.html").switch
    assert both == [{"lang": "en", "href": "", "current": "page"},
                    {"lang": "ko", "href": "../../ko/2024-unpsf-incheon/", "current": ""}]
    # An English-only story: the Korean entry goes to the Korean index.
    solo = parsed(public / "en" / "2024-sdg16-knowledge-forum" / "index.html").switch
    assert solo[1] == {"lang": "ko", "href": "../../ko/", "current": ""}
    assert parsed(public / "ko" / "index.html").switch[0] == {"lang": "en", "href": "../en/", "current": ""}
    for page_path in public.rglob("index.html"):   # every switch link lands on a page of the build
        for entry in parsed(page_path).switch:
            if entry["href"]:
                assert (page_path.parent / entry["href"] / "index.html").resolve().is_file(), (page_path, entry)


def test_subscribe_url_setting_form_elsewhere_link_or_nothing(site: Site, cli) -> None:
    site = set_settings(site, PUBLISHER_SUBSCRIBE_URL="https://app.example.org/news/subscribe")
    public = build(site, cli)
    assert parsed(public / "en" / "index.html").forms[0]["action"] == "https://app.example.org/news/subscribe"

    # Another service's sign-up page would not know our fields: a link to it instead of a form.
    site = set_settings(site, PUBLISHER_SUBSCRIBE_URL="https://lists.example.org/join?list=news")
    public = build(site, cli)
    page = parsed(public / "ko" / "index.html")
    assert page.forms == [] and page.signup_links == ["https://lists.example.org/join?list=news"]

    site = set_settings(site, PUBLISHER_SUBSCRIBE_URL="none")
    public = build(site, cli)
    page = parsed(public / "en" / "index.html")
    assert page.forms == [] and page.signup_links == []


def test_a_bad_subscribe_url_is_one_line_and_exit_2(site: Site, cli) -> None:
    set_settings(site, PUBLISHER_SUBSCRIBE_URL="javascript:alert(1)")
    result = cli("feeds", "build", "--all")
    assert result.exit_code == 2
    assert "PUBLISHER_SUBSCRIBE_URL" in result.output and "Traceback" not in result.output


def test_the_served_subscribe_page_fills_in_what_the_static_form_sent(site: Site) -> None:
    with make_client(site) as client:
        page = client.get("/subscribe", params={"email": "minji@example.org", "lang": "ko"}).text
        assert '<html lang="ko">' in page
        assert 'value="minji@example.org"' in page
        assert '<input type="radio" name="lang" value="ko" checked>' in page
        assert 'name="csrf_token"' in page          # the served page carries its own token
        hostile = client.get("/subscribe", params={"email": '"><script>x</script>'}).text
        assert "<script>x" not in hostile and "&#34;&gt;&lt;script&gt;" in hostile


def test_static_pages_may_send_their_form_to_the_subscribe_page_only(site: Site, cli) -> None:
    build(site, cli)
    with make_client(site) as client:
        policy = client.get("/en/").headers["content-security-policy"]
    assert "form-action 'self' http://localhost:8000;" in policy and "script-src" not in policy

    site = set_settings(site, PUBLISHER_SUBSCRIBE_URL="https://app.example.org/news/subscribe")
    with make_client(site) as client:
        assert "form-action 'self' https://app.example.org;" in client.get("/en/").headers["content-security-policy"]

    site = set_settings(site, PUBLISHER_SUBSCRIBE_URL="none")
    with make_client(site) as client:
        assert "form-action 'none'" in client.get("/en/").headers["content-security-policy"]


def test_favicon_and_robots_are_written_and_linked(site: Site, cli) -> None:
    public = build(site, cli)
    svg = (public / "favicon.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg xmlns=\"http://www.w3.org/2000/svg\"") and "UNPOG News" in svg
    robots = (public / "robots.txt").read_text(encoding="utf-8")
    assert robots.startswith("# ") and "User-agent: *" in robots and "Disallow: /review" in robots
    assert "{#" not in robots and "{#" not in svg
    assert parsed(public / "en" / "index.html").icons == ["../favicon.svg"]
    assert parsed(public / "ko" / "2024-unpsf-incheon" / "index.html").icons == ["../../favicon.svg"]
    with make_client(site) as client:
        icon = client.get("/favicon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert client.get("/robots.txt").headers["content-type"].startswith("text/plain")


def test_a_site_overrides_favicon_and_robots_with_its_templates(site: Site, cli) -> None:
    folder = site.templates_dir / "feeds"
    folder.mkdir(parents=True)
    (folder / "favicon.svg.j2").write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle r="9"/></svg>\n',
                                           encoding="utf-8")
    (folder / "robots.txt.j2").write_text("User-agent: *\nDisallow: /\n", encoding="utf-8")
    public = build(Site(site.root), cli)
    assert (public / "favicon.svg").read_text(encoding="utf-8") == \
        '<svg xmlns="http://www.w3.org/2000/svg"><circle r="9"/></svg>\n'
    assert (public / "robots.txt").read_text(encoding="utf-8") == "User-agent: *\nDisallow: /\n"


def test_publishing_a_translation_rewrites_the_other_versions_switch(site: Site, cli) -> None:
    english = site.public_dir / "en" / "2024-unpsf-incheon" / "index.html"
    assert cli("publish", "content/2024-unpsf-incheon.en.md", "--channel", "feeds", "--lang", "en").exit_code == 0
    assert parsed(english).switch[1]["href"] == "../../ko/"          # no Korean version yet: the index
    assert cli("publish", "content/2024-unpsf-incheon.ko.md", "--channel", "feeds", "--lang", "ko").exit_code == 0
    assert parsed(english).switch[1]["href"] == "../../ko/2024-unpsf-incheon/"


def test_keep_words_holds_a_punctuated_korean_word_together() -> None:
    from markupsafe import Markup

    from publisher.formatters.pages import keep_words

    html = Markup('<p>유엔거버넌스센터(UNPOG)는 “공공기관 강화”를 <a href="/x(y)">센터</a> 주제로</p>'
                  "<pre>코드(a)는</pre><code>f(x)는</code>")
    assert keep_words(html, "ko") == Markup(
        '<p><span class="nobr">유엔거버넌스센터(UNPOG)는</span> <span class="nobr">“공공기관</span> '
        '<span class="nobr">강화”를</span> <a href="/x(y)">센터</a> 주제로</p><pre>코드(a)는</pre><code>f(x)는</code>')
    assert keep_words(html, "en") == html                               # only Korean
    # Plain text (a title) is escaped first: its markup stays text.
    assert keep_words("센터(UNPOG)는 <b>", "ko") == Markup('<span class="nobr">센터(UNPOG)는</span> &lt;b&gt;')


def test_keep_words_possessive_pattern_matches_as_the_backtracking_one_did(site: Site) -> None:
    """The possessive pattern (no backtracking) wraps exactly the words the plain pattern wrapped, and an index
    row's title or summary (plain text) is what keep_words gives."""
    import random
    import re
    from datetime import datetime, timezone

    from markupsafe import Markup

    from publisher.article import Article
    from publisher.formatters.pages import _PUNCTUATED_HANGUL, _nobr, index_rows, keep_words

    backtracking = re.compile(r"(?<!\S)(?=[^\s<>]*[\uac00-\ud7a3])(?=[^\s<>]*[^\s<>\w])[^\s<>]{2,24}(?!\S)")
    rnd = random.Random(18)
    alphabet = "가나한글 \t\n<>()“”·.,a1_&;#'\"\u00a0\u3000é"
    texts = ["센터(UNPOG)는", "아시아·태평양", "것”이라고", "(" + "가" * 23 + ")", "(" + "가" * 30 + ")는", "a(b)c 가"]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(20000)]
    wrapped = 0
    for text in texts:
        expected = backtracking.sub(r'<span class="nobr">\g<0></span>', text)
        assert _PUNCTUATED_HANGUL.sub(_nobr, text) == expected, text
        wrapped += expected != text
    assert wrapped > 1000   # the random texts do have words to wrap

    article = Article(slug="s", lang="ko", title="센터(UNPOG)는 <b> “공공기관”", summary="강화”를 주제로",
                      date=datetime(2024, 5, 1, tzinfo=timezone.utc), body="")
    plain = Article(slug="t", lang="ko", title="공공기관 강화 주제", summary="(UNPOG) 센터 a-b",
                    date=datetime(2024, 5, 1, tzinfo=timezone.utc), body="")
    rows = index_rows([article, plain], "ko", site)
    for version, row in zip((article, plain), rows):
        assert (row.title, row.summary) == (keep_words(version.title, "ko"), keep_words(version.summary, "ko"))
    row = rows[0]
    assert row.title == Markup('<span class="nobr">센터(UNPOG)는</span> &lt;b&gt; <span class="nobr">“공공기관”</span>')
