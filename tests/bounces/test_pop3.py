"""`publisher bounces process --pop3` through poplib against a small POP3 server (RFC 1939 with STLS, RFC 2595)
written here: no POP3 server ships as a Python package. A handled message is deleted, an unclassified one kept."""

from __future__ import annotations

import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bounces.mail import crlf, dsn
from tests.email.conftest import free_port

pytestmark = pytest.mark.both_databases


class Mailbox:
    def __init__(self, messages: list[bytes]) -> None:
        self.messages: list[bytes | None] = list(messages)
        self.lock = threading.Lock()


def pop3_handler(box: Mailbox, context: ssl.SSLContext) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            connection: Any = self.connection
            reader, deleted, secure = self.rfile, set(), False

            def say(line: str | bytes) -> None:
                data = line if isinstance(line, bytes) else line.encode()
                connection.sendall(data + b"\r\n")

            say("+OK POP3 ready")
            while True:
                line = reader.readline()
                if not line:
                    return
                command, _, argument = line.decode().strip().partition(" ")
                command = command.upper()
                if command == "CAPA":
                    say("+OK\r\nUSER\r\nSTLS\r\n.")
                elif command == "STLS":
                    say("+OK begin TLS")
                    connection = context.wrap_socket(connection, server_side=True)
                    reader, secure = connection.makefile("rb"), True
                elif command in ("USER", "PASS"):
                    ok = secure and argument in ("bounces", "pop-secret")
                    say("+OK" if ok else "-ERR TLS first, and the right password")
                elif command == "STAT":
                    with box.lock:
                        live = [m for m in box.messages if m is not None]
                    say(f"+OK {len(box.messages)} {sum(map(len, live))}")
                elif command == "RETR":
                    message = box.messages[int(argument) - 1]
                    assert message is not None
                    lines = [b"." + ln if ln.startswith(b".") else ln for ln in message.split(b"\r\n")]
                    say(b"+OK\r\n" + b"\r\n".join(lines).rstrip(b"\r\n") + b"\r\n.")
                elif command == "DELE":
                    deleted.add(int(argument) - 1)
                    say("+OK deleted")
                elif command == "QUIT":
                    with box.lock:   # deletions take effect at QUIT only (RFC 1939 UPDATE state)
                        for index in deleted:
                            box.messages[index] = None
                    say("+OK bye")
                    return
                else:
                    say("-ERR unknown command")

    return Handler


@pytest.fixture
def pop3(tmp_path: Path) -> Iterator[tuple[int, Path, Mailbox]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    box = Mailbox([dsn("gone@example.org"), crlf("Message-ID: <q@example.org>\nSubject: a question\n\n.hello\n")])
    port = free_port()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), pop3_handler(box, context))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, cert, box
    finally:
        server.shutdown()
        server.server_close()


def test_pop3_handled_messages_are_deleted_and_the_unclassified_kept(pop3: tuple[int, Path, Mailbox], cli: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    port, cert, box = pop3
    assert cli("subscribers", "add", "gone@example.org").exit_code == 0
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    env = {"BOUNCE_POP3_HOST": "127.0.0.1", "BOUNCE_POP3_PORT": str(port), "BOUNCE_POP3_USER": "bounces",
           "BOUNCE_POP3_PASSWORD": "pop-secret"}
    result = cli("bounces", "process", "--pop3", env=env)
    assert result.exit_code == 0, result.output
    assert "2 messages read: 1 bounces (1 hard, 0 soft)" in result.output and "1 unclassified (kept)" in result.output
    assert box.messages[0] is None and box.messages[1] is not None   # the DSN deleted, the question kept
    assert '"status": "bounced"' in cli("subscribers", "list", "--json").output


def test_pop3_refuses_a_wrong_password_in_one_line(pop3: tuple[int, Path, Mailbox], cli: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    port, cert, _ = pop3
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    env = {"BOUNCE_POP3_HOST": "127.0.0.1", "BOUNCE_POP3_PORT": str(port), "BOUNCE_POP3_USER": "bounces",
           "BOUNCE_POP3_PASSWORD": "wrong"}
    result = cli("bounces", "process", "--pop3", env=env)
    assert result.exit_code == 2 and "BOUNCE_POP3_USER" in result.output and "login refused" in result.output
    assert "wrong" not in result.output and "Traceback" not in result.output   # never the password
