"""Fixtures for the web tests: the app under starlette's TestClient, the mail it sends, and form helpers; for the
browser tests, a real uvicorn server, an aiosmtpd server and Debian's headless Chromium."""

from __future__ import annotations

import contextlib
import email
import mailbox
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from publisher.site import Site

LOCAL_CLIENT = ("127.0.0.1", 50123)       # what uvicorn reports for a browser on the same machine
REMOTE_CLIENT = ("203.0.113.7", 50123)    # a visitor from elsewhere (TEST-NET-3)


def make_client(site: Site, *, client: tuple[str, int] = LOCAL_CLIENT, review_local_only: bool = True) -> object:
    from publisher.web import create_app

    with warnings.catch_warnings():
        # Starlette 1.x suggests httpx2 for its test client; httpx is what this project installs.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        return TestClient(create_app(site, review_local_only=review_local_only), client=client,
                          base_url="http://localhost:8000")


@pytest.fixture
def client(site: Site) -> Iterator[object]:
    with make_client(site) as test_client:
        yield test_client


def form_token(page_html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def mails(site: Site) -> list[EmailMessage]:
    """Every message in the site's Maildir outbox (where mail goes without SMTP_HOST), oldest first."""
    path = site.outbox_dir / "mail"
    if not path.is_dir():
        return []
    box = mailbox.Maildir(path, create=False)
    found = [email.message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.keys()]
    return sorted(found, key=lambda message: str(message["Date"]))


def link_in(message: EmailMessage, purpose: str) -> str:
    """The path of the first /<purpose>/<token> link in the plain-text part."""
    text = message.get_body(("plain",)).get_content()
    match = re.search(rf"https?://[^/\s]+(/{purpose}/[A-Za-z0-9_.\-]+)", text)
    assert match, f"no {purpose} link in: {text}"
    return match.group(1)


def subscriber(site: Site, address: str) -> object:
    """The subscriber as stored, read through a connection of its own."""
    reader = Site(site.root)
    try:
        return reader.subscribers().get(address)
    finally:
        reader.close()


def add_subscriber(site: Site, address: str, **values: object) -> None:
    writer = Site(site.root)
    try:
        writer.subscribers().add(address, **values)  # type: ignore[arg-type]
    finally:
        writer.close()


def heading(page_html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", page_html, re.S)
    return match.group(1).strip() if match else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def uvicorn_server(site: Site, port: int | None = None, *, as_served: bool = False) -> Iterator[str]:
    """The app under a real uvicorn server on 127.0.0.1, in a thread; yields its base URL. ``as_served``: with
    the configuration ``publisher serve`` uses (``server_config``: no forwarding headers believed by default)."""
    import uvicorn

    from publisher.web import create_app
    from publisher.web.app import server_config

    port = port or free_port()
    if as_served:
        config = server_config(site, "127.0.0.1", port)
        config.log_level = "warning"
    else:
        config = uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    # uvicorn closes a connection idle for 5 s; on a loaded machine a test's next request on the kept-alive
    # connection can cross that close and die with "connection reset by peer" (seen in a full suite run).
    config.timeout_keep_alive = 300
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- the browser tests: uvicorn, aiosmtpd and Chromium --------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


class MailCatcher:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 2.0.0 OK"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.messages) >= count, f"expected {count} mail(s), the SMTP server got {len(self.messages)}"
        return self.messages


@pytest.fixture
def mail_server() -> Iterator[tuple[int, MailCatcher]]:
    from aiosmtpd.controller import Controller

    catcher = MailCatcher()
    port = free_port()
    controller = Controller(catcher, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, catcher
    finally:
        controller.stop()


@pytest.fixture
def live_site(site: Site, mail_server: tuple[int, MailCatcher], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, str]]:
    """The sample site with its feeds built, served by uvicorn on 127.0.0.1, mailing through aiosmtpd."""
    from publisher.pipeline import build_feeds

    web_port = free_port()
    monkeypatch.setenv("PUBLISHER_SITE_URL", f"http://127.0.0.1:{web_port}")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(mail_server[0]))
    monkeypatch.setenv("SMTP_SECURITY", "none")
    monkeypatch.setenv("BULLETIN_FROM", "UNPOG News <news@unpog.example>")
    served = Site(site.root)
    build_feeds(served, include_unpublished=True)
    served.close()
    with uvicorn_server(Site(site.root), web_port) as base_url:
        yield Site(site.root), base_url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's chromium, headless, asking for Korean pages. Missing chromium is a failure: .ci/run installs it."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install chromium chromium-driver fonts-noto-cjk")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-extensions", "--lang=ko-KR", "--window-size=1280,1000",
                     # Offline: every host name but the test server's address resolves to nothing.
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "ko-KR,ko"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
