"""Every UI string of the web app has its Korean translation, and `publisher serve` starts a real server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from publisher.site import Site

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "web"
SOURCES = ROOT / "publisher" / "web"


def used_msgids() -> set[str]:
    found: set[str] = set()
    for path in TEMPLATES.rglob("*.j2"):
        found.update(m[0] or m[1] for m in re.findall(r'_\(\s*"((?:[^"\\]|\\.)*)"|_\(\s*\'((?:[^\'\\]|\\.)*)\'',
                                                       path.read_text(encoding="utf-8")))
    for path in SOURCES.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r'\b(?:title|message)=\s*"([^"]+)"', text))        # message_page(...)
        found.update(re.findall(r'"(Please [^"]+\.)"', text))                       # form field messages
        found.update(re.findall(r'\("(Desktop|Phone)", \d+\)', text))
    found.update({"This link has expired.", "This link is not valid."})             # BadToken, capitalized
    return found


def test_every_web_string_has_a_korean_translation() -> None:
    from babel.messages.pofile import read_po

    with (ROOT / "locales" / "ko" / "LC_MESSAGES" / "web.po").open("rb") as handle:
        korean = {m.id: m.string for m in read_po(handle) if m.id}
    with (ROOT / "locales" / "en" / "LC_MESSAGES" / "web.po").open("rb") as handle:
        english = {m.id for m in read_po(handle) if m.id}
    used = used_msgids()
    assert len(used) > 60
    assert sorted(used - set(korean)) == []
    assert sorted(used - english) == []
    assert [msgid for msgid in used if not korean[msgid]] == []
    for msgid in used:    # a translation may leave a placeholder out, never invent one
        assert set(re.findall(r"{\w+}", korean[msgid])) <= set(re.findall(r"{\w+}", msgid)), msgid


def test_bad_tokens_are_shown_in_korean(site: Site) -> None:
    from publisher.errors import BadToken
    from publisher.tokens import verify

    for token in ("garbage", ""):
        try:
            verify("confirm", token, site)
        except BadToken as error:
            assert site.ui.gettext("ko", str(error).capitalize() + ".") != str(error).capitalize() + "."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_help(cli) -> None:
    result = cli("serve", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--host" in text and "--port" in text and "RFC 8058" in text


def test_serve_runs_uvicorn_and_answers(site_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--site", str(site_dir), "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/subscribe?lang=ko", timeout=2) as response:
                    page = response.read().decode()
                    server_header = response.headers.get("server")
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "publisher serve did not answer within 20 s"
                time.sleep(0.1)
        assert "구독 신청" in page
        assert server_header is None          # the server does not announce itself
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/unsubscribe/TOKENWORTHKEEPINGSECRET", timeout=5)
        except urllib.error.HTTPError as refused:
            assert refused.code == 400
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert f"on http://127.0.0.1:{port}/" in stderr
    assert '"GET /subscribe" 200' in stderr
    assert '"GET /unsubscribe/<token>" 400' in stderr
    assert "TOKENWORTHKEEPINGSECRET" not in stderr      # signed links are keys: never in the log
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("name", "value"), [
    ("PUBLISHER_SITE_URL", "ftp://nowhere"),
    ("PUBLISHER_SUBSCRIBE_RATE_LIMIT", "lots"),
    ("PUBLISHER_CONFIRM_LINK_HOURS", "soon"),
    ("PUBLISHER_LANGUAGES", "en,fr"),
    ("PUBLISHER_FORWARDED_ALLOW_IPS", "nginx.internal"),
])
def test_serve_with_a_bad_setting_is_one_line_and_exit_2(cli, name: str, value: str) -> None:
    result = cli("serve", env={name: value})
    assert result.exit_code == 2
    assert f"Error: {name} (from environment):" in result.output and "Traceback" not in result.output


def test_serve_on_a_taken_port_is_one_line_and_exit_2(cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port))
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}: cannot listen there" in result.output
    assert "Traceback" not in result.output
