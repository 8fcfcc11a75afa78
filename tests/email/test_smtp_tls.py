"""SMTP over TLS against a real aiosmtpd server: STARTTLS on the submission port and implicit TLS (SMTP_SECURITY=ssl).

The server's certificate is made for 127.0.0.1 here and trusted through SSL_CERT_FILE, which the default
context publisher uses (ssl.create_default_context) reads; certificates are verified, never skipped.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from publisher.errors import ChannelError
from publisher.site import Site
from tests.email.conftest import RecordingHandler, controller, free_port, publish, set_settings, story_for


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    return certificate[0]


@contextmanager
def serve(handler: RecordingHandler, pipelining: bool = False, **options: object) -> Iterator[int]:
    port = free_port()
    server = controller(handler, pipelining=pipelining, port=port, **options)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def send_one(site: Site) -> list[str]:
    site.subscribers().add("reader@example.org")
    story = story_for(site, "2024-unpsf-incheon")
    return [r.note for r in publish(site, story)]


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-at-a-time", "pipelining"])
def test_starttls_is_used_and_the_certificate_verified(site: Site, certificate: tuple[Path, Path],
                                                      trusted: Path, pipelining: bool) -> None:
    handler = RecordingHandler()
    with serve(handler, pipelining, tls_context=server_context(certificate), require_starttls=True) as port:
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="starttls")
        assert send_one(wired) == ["1 sent"]
        assert handler.received() == {"reader@example.org": 1}
        wired.close()


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-at-a-time", "pipelining"])
def test_implicit_tls(site: Site, certificate: tuple[Path, Path], trusted: Path, pipelining: bool) -> None:
    handler = RecordingHandler()
    with serve(handler, pipelining, ssl_context=server_context(certificate)) as port:
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="ssl")
        assert send_one(wired) == ["1 sent"]
        assert handler.received() == {"reader@example.org": 1}
        wired.close()


def test_an_untrusted_certificate_stops_the_run_before_anything_is_sent(site: Site,
                                                                        certificate: tuple[Path, Path]) -> None:
    handler = RecordingHandler()
    with serve(handler, tls_context=server_context(certificate), require_starttls=True) as port:
        wired = set_settings(site, SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_SECURITY="starttls")
        with pytest.raises(ChannelError, match=r"cannot connect: .*CERTIFICATE_VERIFY_FAILED"):
            send_one(wired)
        assert handler.received() == {}
        wired.close()
