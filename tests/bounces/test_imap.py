"""`publisher bounces process --imap` against a real IMAP server (pymap, STARTTLS with a certificate made here)."""

from __future__ import annotations

import imaplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bounces.mail import arf, crlf, dsn
from tests.email.conftest import free_port

pytestmark = pytest.mark.both_databases

USER, PASSWORD = "demouser", "demopass"


@pytest.fixture(scope="module")
def imap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("imap-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    port = free_port()
    pymap = Path(sys.executable).with_name("pymap")
    server = subprocess.Popen([str(pymap), "--host", "127.0.0.1", "--port", str(port), "--cert", str(cert),
                               "--key", str(key), "dict", "--demo-user", USER, "--demo-password", PASSWORD],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("pymap did not start") from None
                time.sleep(0.05)   # waiting for a subprocess to listen, not for time to pass
        yield port, cert
    finally:
        server.terminate()
        server.wait(timeout=10)


def client(port: int, cert: Path) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    imap.starttls(ssl_context=ssl.create_default_context(cafile=str(cert)))
    imap.login(USER, PASSWORD)
    return imap


def flags(imap: imaplib.IMAP4, folder: str) -> dict[str, str]:
    """Message-ID -> flags of every message in the folder."""
    imap.select(folder)
    _, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    found = {}
    for item in data:
        if isinstance(item, tuple):
            head, body = item[0].decode(), item[1].decode()
            found[body.split(":", 1)[1].strip()] = head[head.index("FLAGS (") + 7:].split(")")[0]
    return found


def test_imap_messages_are_handled_once_and_the_unclassified_kept(imap_server: tuple[int, Path], cli: Any,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  backend: str) -> None:
    port, cert = imap_server
    imap = client(port, cert)
    folder = f"Bounces-{backend}"   # the server outlives one run: each database's run has a folder of its own
    imap.create(folder)
    for data in (dsn("gone@example.org"), arf("angry@example.org", rcpt_to="angry@example.org"),
                 crlf("Message-ID: <question@example.org>\nSubject: a question\n\nHello?\n")):
        imap.append(folder, None, None, data)
    for address in ("gone@example.org", "angry@example.org"):
        assert cli("subscribers", "add", address).exit_code == 0
    env = {"BOUNCE_IMAP_HOST": "127.0.0.1", "BOUNCE_IMAP_PORT": str(port), "BOUNCE_IMAP_USER": USER,
           "BOUNCE_IMAP_PASSWORD": PASSWORD, "BOUNCE_IMAP_FOLDER": folder, "SSL_CERT_FILE": str(cert)}
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))   # read when the client's default context is made

    result = cli("bounces", "process", "--imap", env=env)
    assert result.exit_code == 0, result.output
    assert "3 messages read: 1 bounces (1 hard, 0 soft), 1 complaints" in result.output
    assert "1 unclassified (kept)" in result.output and PASSWORD not in result.output
    seen = flags(imap, folder)
    assert "\\Seen" in seen["<20261201.dsn1@mx.example.org>"] and "\\Seen" in seen["<fbl-1@feedback.example.net>"]
    assert "\\Flagged" in seen["<question@example.org>"] and "\\Seen" not in seen["<question@example.org>"]
    listed = cli("subscribers", "list", "--json").output
    assert '"status": "bounced"' in listed and '"status": "complained"' in listed

    again = cli("bounces", "process", "--imap", env=env)   # only the kept one is unread: already handled
    assert again.exit_code == 0 and "1 messages read:" in again.output and "1 already handled" in again.output
    imap.logout()


def test_an_untrusted_certificate_is_refused_in_one_line(imap_server: tuple[int, Path], cli: Any,
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    port, _ = imap_server
    other = tmp_path / "other.pem"   # a trust store without the server's certificate
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(other), "-days", "1", "-subj", "/CN=other"], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    env = {"BOUNCE_IMAP_HOST": "127.0.0.1", "BOUNCE_IMAP_PORT": str(port), "BOUNCE_IMAP_USER": USER,
           "BOUNCE_IMAP_PASSWORD": PASSWORD}
    result = cli("bounces", "process", "--imap", env=env)
    assert result.exit_code == 2
    assert "BOUNCE_IMAP_HOST: cannot connect" in result.output and "certificate verify failed" in result.output
    assert "Traceback" not in result.output and PASSWORD not in result.output
