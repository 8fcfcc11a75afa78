"""Every page type a reader or editor sees, in Debian's headless Chromium, in both languages.

- Signing up from a public page: the static page's GET form opens the served ``/subscribe`` page with the
  address filled in; its POST, the mail caught by aiosmtpd and the confirmation link do the rest.
- Korean typography: each Korean page type at 375 px and 1280 px, screenshotted under
  ``test-artifacts/typography/``, and measured: no Hangul word is split across two lines (a Range over each
  word must lie on one line box).
- Accessibility: axe-core (``tests/web/package.json``, installed by ``.ci/run`` with ``npm ci``) finds no
  serious or critical violation on any page type in either language, the bulletins' HTML included.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from publisher.site import Site
from tests.databases import in_ci
from tests.web.conftest import MailCatcher, add_subscriber, subscriber
from tests.web.test_browser import wait_for_heading

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "test-artifacts" / "typography"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SLUG = "2024-unpsf-incheon"
WIDTHS = (375, 1280)

# Each Hangul word within one text node as a Range; its client rects must all sit on one line. A word is a
# run of letters and digits holding a Hangul syllable (arguments[0] == "word": punctuation may break), or,
# on the pages, everything between two spaces ("eojeol": "(UNPOG)는" must not break after the bracket).
SPLIT_WORDS_JS = r"""
const letters = /[\p{L}\p{N}]*\p{Script=Hangul}[\p{L}\p{N}]*/gu;
const eojeol = /[^\s]*\p{Script=Hangul}[^\s]*/gu;
const skip = new Set(["SCRIPT", "STYLE", "OPTION", "SELECT", "TEXTAREA", "TITLE", "NOSCRIPT"]);
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const split = [];
let words = 0;
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (skip.has(node.parentElement.tagName)) continue;
  // Code (the review page's feed entry, JSON) breaks where code may: only its letter runs are words.
  const word = arguments[0] === "eojeol" && !node.parentElement.closest(".code") ? eojeol : letters;
  for (const match of node.data.matchAll(word)) {
    const range = document.createRange();
    range.setStart(node, match.index);
    range.setEnd(node, match.index + match[0].length);
    const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
    if (!rects.length) continue;            // not rendered (a hidden preheader, a closed element)
    words += 1;
    const tops = rects.map(r => Math.round(r.top));
    if (Math.max(...tops) - Math.min(...tops) > 2) split.push(match[0]);
  }
}
return {words, split};
"""


# --- the pages ------------------------------------------------------------------------------------------------


def axe_source() -> str:
    """axe.min.js from tests/web/node_modules. Without it: a skip on a developer's machine, a failure in CI."""
    if AXE.is_file():
        return AXE.read_text(encoding="utf-8")
    reason = f"axe-core is not installed ({AXE} missing): run `npm ci --prefix tests/web`"
    if in_ci():     # the one reading of $CI, shared with the PostgreSQL half (tests/databases.py)
        pytest.fail(reason)
    pytest.skip(reason)


def bulletin_files(site: Site, lang: str, folder: Path) -> dict[str, str]:
    """The HTML parts of the alert, the digest and the confirmation mail in ``lang``, as a subscriber gets
    them (css inlined, links filled in), written to files for the browser: name -> file URL."""
    import email
    from email import policy

    from publisher.formatters.email import BulletinFormatter
    from publisher.mail.message import MessageBuilder
    from publisher.mail.send import confirmation_message
    from publisher.subscribers import Subscriber

    reader = Subscriber(f"reader-{lang}@example.org", "김민수" if lang == "ko" else "Alex Kim", lang, "active",
                        [], None, None)  # type: ignore[arg-type]
    library = site.articles()
    formatter, builder = BulletinFormatter(site), MessageBuilder(site)
    articles = [story.get(lang) for story in library.stories.values() if story.get(lang) is not None]
    wires = {
        "bulletin-alert": builder.wire(formatter.alert(library.story(SLUG).get(lang)), reader)[0],
        "bulletin-digest": builder.wire(formatter.digest(
            articles[:3], lang, since=datetime.now(timezone.utc) - timedelta(days=3650)), reader)[0],
    }
    pending = Subscriber(reader.email, reader.name, lang, "pending", [], None, None)  # type: ignore[arg-type]
    found = {name: email.message_from_bytes(data, policy=policy.default) for name, data in wires.items()}
    found["confirm-mail"] = confirmation_message(site, pending)
    urls = {}
    for name, message in found.items():
        path = folder / f"{name}.{lang}.html"
        path.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
        urls[name] = path.as_uri()
    return urls


def tour(driver: Any, site: Site, base: str, lang: str, folder: Path, look: Callable[[str], None]) -> list[str]:
    """Open every page type in ``lang`` (clicking through the forms where a page only follows a POST) and call
    ``look(name)`` on each; returns the names in order."""
    from selenium.webdriver.common.by import By

    from publisher.tokens import link

    seen: list[str] = []

    def at(name: str, url: str | None = None) -> None:
        if url is not None:
            driver.get(url)
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang, (name, driver.current_url)
        look(name)
        seen.append(name)

    def click(selector: str) -> None:
        old = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.CSS_SELECTOR, selector).click()
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def gone(_: object) -> bool:
            """The old page's root is stale: selenium's staleness_of, except that Chromium, asked about a node
            while the next page replaces the document, may answer "Node with given id does not belong to the
            document" (an inspector error, not a stale-element one): that node is gone too."""
            try:
                old.is_enabled()
            except StaleElementReferenceException:
                return True
            except WebDriverException as exc:
                if "does not belong to the document" not in (exc.msg or ""):
                    raise
                return True
            return False

        WebDriverWait(driver, 30).until(gone)

    at("index", f"{base}/{lang}/")
    at("article", f"{base}/{lang}/{SLUG}/")
    at("subscribe", f"{base}/subscribe?lang={lang}")
    driver.find_element(By.ID, "email").send_keys(f"tour-{lang}@example.org")
    click("main button[type=submit]")
    at("subscribe-sent")

    pending = f"pending-{lang}@example.org"
    add_subscriber(site, pending, lang=lang, status="pending")
    at("confirm", link(site, "confirm", {"email": pending}) + f"?lang={lang}")
    click("#confirm")
    at("confirmed")

    active = f"active-{lang}@example.org"
    add_subscriber(site, active, lang=lang, status="active")
    at("preferences", link(site, "preferences", {"email": active}) + f"?lang={lang}")
    click("main button[type=submit]")
    at("preferences-saved")
    at("unsubscribe", link(site, "unsubscribe", {"email": active}) + f"?lang={lang}")
    click("#unsubscribe")
    at("unsubscribed")

    at("review-index", f"{base}/review?lang={lang}")
    at("review", f"{base}/review/{SLUG}?lang={lang}")
    at("not-found", f"{base}/{lang}/no-such-page/?lang={lang}")
    for name, url in bulletin_files(site, lang, folder).items():
        at(name, url)
    return seen


# The pages whose every eojeol (space to space) must stay on one line: all but the confirmation mail (its one
# sentence is the site's own wording); the bulletins keep punctuated words ("인공지능(AI)과") whole too.
EOJEOL_PAGES = {"index", "article", "subscribe", "subscribe-sent", "confirm", "confirmed", "preferences",
                "preferences-saved", "unsubscribe", "unsubscribed", "review-index", "review", "not-found",
                "bulletin-alert", "bulletin-digest"}
PAGE_TYPES = ["index", "article", "subscribe", "subscribe-sent", "confirm", "confirmed", "preferences",
              "preferences-saved", "unsubscribe", "unsubscribed", "review-index", "review", "not-found",
              "bulletin-alert", "bulletin-digest", "confirm-mail"]


# --- the browser at a given width ---------------------------------------------------------------------------


def set_width(driver: Any, width: int) -> None:
    """The layout viewport exactly ``width`` CSS pixels wide, as a phone or a desktop shows it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})


def full_screenshot(driver: Any, path: Path) -> None:
    """The whole page (up to 6000 px tall), not only the viewport."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def wait_for_fonts(driver: Any) -> None:
    driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(true));")


# --- 1. sign up from a public page, through to confirmation --------------------------------------------------


def test_sign_up_from_a_public_page_through_to_confirmation(live_site: tuple[Site, str],
                                                           mail_server: tuple[int, MailCatcher], browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    site, base = live_site
    _, mail = mail_server

    # An English article page, as `publisher serve` serves public/: its form is a plain GET form.
    browser.get(f"{base}/en/{SLUG}/")
    form = browser.find_element(By.CSS_SELECTOR, "section.signup form")
    assert (form.get_attribute("method"), form.get_attribute("action")) == ("get", f"{base}/subscribe")
    assert browser.find_elements(By.CSS_SELECTOR, "script") == []
    browser.find_element(By.ID, "signup-email").send_keys("jisoo.park@example.org")
    Select(browser.find_element(By.ID, "signup-lang")).select_by_value("ko")   # mails in Korean
    browser.find_element(By.CSS_SELECTOR, "section.signup button").click()

    # The served subscribe page, in the language chosen, the address filled in, its own CSRF token.
    WebDriverWait(browser, 30).until(lambda d: "/subscribe" in d.current_url)
    assert browser.current_url.startswith(f"{base}/subscribe?")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    assert browser.find_element(By.ID, "email").get_attribute("value") == "jisoo.park@example.org"
    assert browser.find_element(By.CSS_SELECTOR, "input[name=lang][value=ko]").is_selected()
    assert browser.find_element(By.CSS_SELECTOR, "input[name=csrf_token]").get_attribute("value")
    assert subscriber(site, "jisoo.park@example.org") is None      # opening the page records nothing
    browser.find_element(By.CSS_SELECTOR, "input[name=themes][value=digital-government]").click()
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    wait_for_heading(browser, "받은편지함을 확인해 주세요")

    # The confirmation mail, through SMTP, in Korean; its link shows a button, which confirms.
    [message] = mail.wait_for(1)
    assert message["To"].addresses[0].addr_spec == "jisoo.park@example.org"
    assert message["Content-Language"] == "ko"
    assert subscriber(site, "jisoo.park@example.org").status == "pending"
    text = message.get_body(("plain",)).get_content()
    confirm_url = next(word for word in text.split() if word.startswith(f"{base}/confirm/"))
    browser.get(confirm_url)
    assert subscriber(site, "jisoo.park@example.org").status == "pending"
    browser.find_element(By.ID, "confirm").click()
    wait_for_heading(browser, "구독이 확인되었습니다")
    stored = subscriber(site, "jisoo.park@example.org")
    assert (stored.status, stored.lang, stored.themes) == ("active", "ko", ["digital-government"])


# --- 2. Korean typography -----------------------------------------------------------------------------------


def test_no_hangul_word_is_split_across_lines_on_any_korean_page(live_site: tuple[Site, str], browser,
                                                                tmp_path: Path) -> None:
    site, base = live_site
    if SCREENS.exists():
        shutil.rmtree(SCREENS)
    SCREENS.mkdir(parents=True)
    problems: list[str] = []
    styles: dict[str, dict[str, str]] = {}
    counted: dict[str, int] = {}

    def look(name: str) -> None:
        styles[name] = browser.execute_script(
            "const s = getComputedStyle(document.querySelector('main') || document.querySelector('.bulletin')"
            " || document.body);"
            "return {wordBreak: s.wordBreak, overflowWrap: s.overflowWrap, fontFamily: s.fontFamily};")
        for width in WIDTHS:
            set_width(browser, width)     # the page lays itself out again at once (no reload: some follow a POST)
            wait_for_fonts(browser)
            result = browser.execute_script(SPLIT_WORDS_JS, "eojeol" if name in EOJEOL_PAGES else "word")
            counted[f"{name}@{width}"] = result["words"]
            if result["split"]:
                problems.append(f"{name} at {width}px: {result['split'][:8]}")
            full_screenshot(browser, SCREENS / f"{name}-ko-{width}.png")
        set_width(browser, 1280)

    seen = tour(browser, site, base, "ko", tmp_path, look)
    assert seen == PAGE_TYPES
    assert not problems, "\n".join(problems)
    # Every page had Korean words to measure, and each says keep-all, anywhere and names the CJK fonts.
    assert all(count > 0 for count in counted.values()), counted
    for name, style in styles.items():
        assert (style["wordBreak"], style["overflowWrap"]) == ("keep-all", "anywhere"), (name, style)
        for font in ("Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic"):
            assert font in style["fontFamily"], (name, style["fontFamily"])
    assert len(list(SCREENS.glob("*.png"))) == len(PAGE_TYPES) * len(WIDTHS)


def test_the_line_box_check_sees_a_word_split_in_two(live_site: tuple[Site, str], browser) -> None:
    """The measurement itself: without the pages' rules (the nobr spans, then keep-all: by default Korean may
    break between any two syllables), the narrow Korean article has words split across lines, and the check
    finds them."""
    site, base = live_site
    set_width(browser, 375)
    browser.get(f"{base}/ko/{SLUG}/")
    wait_for_fonts(browser)
    assert browser.execute_script(SPLIT_WORDS_JS, "eojeol")["split"] == []
    # Without the nobr spans, keep-all alone breaks "…(UNPOG)는" or "…”라고" after the bracket or quote.
    browser.execute_script("document.querySelectorAll('.nobr').forEach(e => e.style.whiteSpace = 'normal');")
    assert browser.execute_script(SPLIT_WORDS_JS, "eojeol")["split"] != []
    assert browser.execute_script(SPLIT_WORDS_JS, "word")["split"] == []
    browser.execute_script("document.body.style.wordBreak = 'normal';")
    assert browser.execute_script(SPLIT_WORDS_JS, "word")["split"] != []


# --- 3. accessibility ------------------------------------------------------------------------------------------


def run_axe(driver: Any, source: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page in the browser (the review page's sandboxed email frames are left
    out: the same HTML is checked on its own as the bulletin pages)."""
    driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {iframes: false, resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify({error: String(e)})));")
    found = json.loads(result)
    assert not isinstance(found, dict), found
    return list(found)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_axe_finds_no_serious_or_critical_violation(live_site: tuple[Site, str], browser, tmp_path: Path,
                                                    lang: str) -> None:
    source = axe_source()
    site, base = live_site
    serious: list[str] = []
    checked: dict[str, list[str]] = {}

    def look(name: str) -> None:
        violations = run_axe(browser, source)
        checked[name] = [f"{v['id']} [{v['impact']}]" for v in violations]
        for violation in violations:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"]][:4]
                serious.append(f"{name} ({lang}): {violation['id']} [{violation['impact']}] {targets}")

    browser.set_script_timeout(60)
    seen = tour(browser, site, base, lang, tmp_path, look)
    assert seen == PAGE_TYPES
    # Every finding, for people to read (minor and moderate ones too, which do not fail the test).
    report = ROOT / "test-artifacts" / f"axe-{lang}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(checked, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert not serious, "\n".join(serious)


def test_axe_sees_what_it_must_refuse(live_site: tuple[Site, str], browser) -> None:
    """The check itself: text in light grey on white and a field without a label are found, as serious and
    critical."""
    source = axe_source()
    _, base = live_site
    browser.get(f"{base}/en/")
    browser.execute_script(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        " '<p style=\"color:#bbb;background:#fff\">Faint text</p><input type=\"text\" name=\"q\">');")
    found = {v["id"]: v["impact"] for v in run_axe(browser, source)}
    assert found.get("color-contrast") == "serious" and found.get("label") == "critical", found
