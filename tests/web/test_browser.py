"""End to end in Debian's headless Chromium: subscribe in Korean, confirm from the mail, unsubscribe, review, publish.

The mail goes through a real aiosmtpd server on 127.0.0.1, the pages come from a real uvicorn server, and the
browser asks for Korean the way a Korean reader's browser does (Accept-Language). Screenshots of every page
are saved under test-artifacts/web/ for people to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from publisher.site import Site
from tests.web.conftest import subscriber

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
def screenshot(driver: Any, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    if full_page:
        driver.set_window_size(1600, 1000)   # wide enough for both languages side by side
        height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 8000)
        driver.set_window_size(1600, height)
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path


def heading(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "h1").text)


def wait_for_heading(driver: Any, text: str) -> None:
    """After a click the next page loads asynchronously: wait for its heading (at most 30 s: CI machines are busy)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: heading(d) == text, message=f"no page with the heading {text!r}")


def test_subscribe_confirm_unsubscribe_and_review_in_korean(live_site: tuple[Site, str], mail_server, browser) -> None:
    from selenium.webdriver.common.by import By

    site, base_url = live_site
    _, mail = mail_server
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)

    # 1. The form, in Korean because the browser asks for Korean.
    browser.get(f"{base_url}/subscribe")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    assert heading(browser) == "유엔거버넌스센터 소식 구독 신청"
    browser.find_element(By.ID, "email").send_keys("minji.kim@example.org")
    browser.find_element(By.ID, "name").send_keys("김민지")
    browser.find_element(By.CSS_SELECTOR, "input[name=lang][value=ko]").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=themes][value=digital-government]").click()
    screenshot(browser, "01-subscribe-ko.png")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for_heading(browser, "받은편지함을 확인해 주세요")
    screenshot(browser, "02-check-your-inbox-ko.png")

    # 2. The confirmation mail, caught by the SMTP server, in Korean, with a link back to this server.
    [message] = mail.wait_for(1)
    assert message["To"].addresses[0].addr_spec == "minji.kim@example.org"
    assert message["Content-Language"] == "ko"
    text = message.get_body(("plain",)).get_content()
    confirm_url = next(word for word in text.split() if word.startswith(f"{base_url}/confirm/"))
    assert subscriber(site, "minji.kim@example.org").status == "pending"

    browser.get(confirm_url)
    assert heading(browser) == "구독 신청을 확인해 주세요"
    assert subscriber(site, "minji.kim@example.org").status == "pending"    # opening the link is not enough
    screenshot(browser, "03-confirm-ko.png")
    browser.find_element(By.ID, "confirm").click()
    wait_for_heading(browser, "구독이 확인되었습니다")
    screenshot(browser, "04-confirmed-ko.png")
    stored = subscriber(site, "minji.kim@example.org")
    assert (stored.status, stored.lang, stored.themes, stored.name) == ("active", "ko", ["digital-government"], "김민지")

    # 3. Unsubscribe: the link shows a button; one click posts List-Unsubscribe=One-Click.
    browser.find_element(By.LINK_TEXT, "구독 해지").click()
    wait_for_heading(browser, "구독 해지")
    assert subscriber(site, "minji.kim@example.org").status == "active"
    screenshot(browser, "05-unsubscribe-ko.png")
    browser.find_element(By.ID, "unsubscribe").click()
    wait_for_heading(browser, "구독이 해지되었습니다")
    screenshot(browser, "06-unsubscribed-ko.png")
    assert subscriber(site, "minji.kim@example.org").status == "unsubscribed"

    # 4. The public pages and feeds the server also carries.
    browser.get(f"{base_url}/ko/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    screenshot(browser, "07-index-ko.png")

    # 5. The review page: both languages side by side, the email rendered inside its sandboxed iframes.
    story = site.articles().story("2024-unpsf-incheon")
    browser.get(f"{base_url}/review/2024-unpsf-incheon")
    assert heading(browser) == story.original.title
    columns = browser.find_elements(By.CSS_SELECTOR, "section.column")
    assert [c.get_attribute("lang") for c in columns] == ["en", "ko"]
    frames = browser.find_elements(By.CSS_SELECTOR, "#lang-ko iframe")
    assert [f.get_attribute("width") for f in frames] == ["600", "375"]
    browser.switch_to.frame(frames[0])
    rendered = browser.find_element(By.TAG_NAME, "body").text
    browser.switch_to.default_content()
    assert story.get("ko").title in rendered
    assert browser.find_elements(By.CSS_SELECTOR, "#lang-ko .post .length")
    screenshot(browser, "08-review.png", full_page=True)

    # 6. Publishing from the review page asks first, then shows where each rendition went.
    browser.set_window_size(1280, 1000)
    browser.find_element(By.LINK_TEXT, "발행하기…").click()
    wait_for_heading(browser, f"발행: {story.original.title}")
    screenshot(browser, "09-publish-confirm.png")
    assert not (site.outbox_dir / "x").exists()
    browser.find_element(By.ID, "publish").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "td.sent"))
    screenshot(browser, "10-published.png")
    assert sorted(p.name for p in (site.outbox_dir / "x").glob("*.json")) == [
        "2024-unpsf-incheon.en.json", "2024-unpsf-incheon.ko.json"]
    assert sorted(p.name for p in ARTIFACTS.glob("*.png")) == [
        "01-subscribe-ko.png", "02-check-your-inbox-ko.png", "03-confirm-ko.png", "04-confirmed-ko.png",
        "05-unsubscribe-ko.png", "06-unsubscribed-ko.png", "07-index-ko.png", "08-review.png", "09-publish-confirm.png",
        "10-published.png"]
