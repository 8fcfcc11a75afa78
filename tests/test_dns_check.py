"""``publisher config check --dns`` against a small DNS server on 127.0.0.1 (dnslib) serving good and broken zones."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ZONE = dict[str, list[str]]


class ZoneResolver:
    """A dnslib resolver answering TXT questions from ``zone`` (name -> records); other names do not exist."""

    def __init__(self) -> None:
        self.zone: ZONE = {}
        self.asked: list[str] = []

    def resolve(self, request: Any, handler: Any) -> Any:
        from dnslib import QTYPE, RCODE, RR, TXT

        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.asked.append(name)
        records = self.zone.get(name)
        if records == ["SERVFAIL"]:
            reply.header.rcode = RCODE.SERVFAIL
        elif records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for record in records:
                data = record.encode()
                chunks = [data[i:i + 255] for i in range(0, len(data), 255)]   # one TXT string holds 255 bytes
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply


@pytest.fixture(scope="module")
def dns_server() -> Iterator[tuple[ZoneResolver, int]]:
    from dnslib.server import DNSLogger, DNSServer

    resolver = ZoneResolver()
    server = DNSServer(resolver, address="127.0.0.1", port=0, logger=DNSLogger("-request,-reply,-truncated,-error,"
                                                                              "-recv,-send,-data"))
    server.start_thread()
    try:
        yield resolver, int(server.server.server_address[1])
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2048-bit RSA key file and the p= value of its public half."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return key, base64.b64encode(public).decode()


@pytest.fixture
def other_key(tmp_path: Path) -> str:
    key = tmp_path / "other.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return base64.b64encode(public).decode()


@pytest.fixture
def check(cli: Callable[..., Any], site_dir: Path, dns_server: tuple[ZoneResolver, int],
          dkim_key: tuple[Path, str]) -> Callable[..., Any]:
    """Serve ``zone`` and run ``config check --dns`` with the site sending as news@unpog.example, DKIM-signed."""
    resolver, port = dns_server

    def run(zone: ZONE, **settings: str) -> Any:
        resolver.zone = zone
        values = {"BULLETIN_FROM": "UNPOG News <news@unpog.example>", "PUBLISHER_SITE_URL": "https://unpog.example",
                  "DKIM_DOMAIN": "unpog.example", "DKIM_SELECTOR": "news",
                  "DKIM_PRIVATE_KEY_FILE": str(dkim_key[0]), "DNS_RESOLVER": f"127.0.0.1:{port}",
                  "DNS_TIMEOUT": "2"} | settings
        toml = site_dir / "publisher.toml"
        kept = [line for line in toml.read_text(encoding="utf-8").splitlines()
                if line.split("=", 1)[0].strip() not in values]
        toml.write_text("\n".join(kept + [f'{k} = "{v}"' for k, v in values.items() if v]) + "\n", encoding="utf-8")
        return cli("config", "check", "--dns")

    return run


def good_zone(public_key: str) -> ZONE:
    return {
        "unpog.example": ["v=spf1 ip4:192.0.2.25 include:_spf.example.net -all", "google-site-verification=abc"],
        "news._domainkey.unpog.example": [f"v=DKIM1; k=rsa; p={public_key}"],
        "_dmarc.unpog.example": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@unpog.example"],
    }


def lines(result: Any, level: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(level)]


def test_a_good_domain_passes_every_check(check: Callable[..., Any], dkim_key: tuple[Path, str],
                                          dns_server: tuple[ZoneResolver, int]) -> None:
    result = check(good_zone(dkim_key[1]))
    assert result.exit_code == 0, result.output
    assert lines(result, "FAIL") == [] and lines(result, "WARNING") == []
    out = result.output
    assert "OK      SPF       unpog.example: v=spf1 ip4:192.0.2.25 include:_spf.example.net -all" in out
    assert "news._domainkey.unpog.example: 2048-bit RSA key, matches DKIM_PRIVATE_KEY_FILE" in out
    assert "_dmarc.unpog.example: v=DMARC1; p=quarantine" in out
    assert "From unpog.example is aligned with SPF and DKIM" in out
    assert "the sender-domain rules for bulk mail are met" in out
    assert "news._domainkey.unpog.example" in dns_server[0].asked     # the questions went to our server


def test_a_broken_domain_fails_with_each_reason(check: Callable[..., Any], other_key: str) -> None:
    zone = {"news._domainkey.unpog.example": [f"v=DKIM1; k=rsa; p={other_key}"]}   # a key, but not ours
    result = check(zone)
    assert result.exit_code == 1
    fails = "\n".join(lines(result, "FAIL"))
    assert "unpog.example has no SPF record" in fails
    assert "the published key is not the public half of DKIM_PRIVATE_KEY_FILE" in fails
    assert "_dmarc.unpog.example has no DMARC record" in fails
    assert "From unpog.example has neither a passing SPF (domain unpog.example) nor a passing DKIM" in fails
    assert "Outlook.com: over 5,000 a day, mail failing DKIM, DMARC, SPF, alignment is rejected with 550 5.7.515" \
        in result.output


def test_p_none_is_enough_and_dkim_alone_aligns(check: Callable[..., Any], dkim_key: tuple[Path, str]) -> None:
    zone = good_zone(dkim_key[1]) | {"_dmarc.unpog.example": ["v=DMARC1; p=none"],
                                     "bounces.mailer.example": ["v=spf1 include:_spf.mailer.example ~all"]}
    # The envelope is another organization's domain: SPF passes there but does not align; DKIM does.
    result = check(zone, BOUNCE_ADDRESS="bounces@bounces.mailer.example")
    assert result.exit_code == 0, result.output
    assert "OK      SPF       bounces.mailer.example: v=spf1 include:_spf.mailer.example ~all" in result.output
    assert "p=none meets the 2024 rules but protects nobody from spoofing" in result.output
    assert "From unpog.example is aligned with DKIM" in result.output


def test_two_spf_records_fail_spf_though_dkim_keeps_dmarc_aligned(check: Callable[..., Any],
                                                                   dkim_key: tuple[Path, str]) -> None:
    zone = good_zone(dkim_key[1]) | {"unpog.example": ["v=spf1 -all", "v=spf1 ip4:192.0.2.25 -all"]}
    result = check(zone)
    assert result.exit_code == 1     # bulk senders need SPF as well as DKIM
    assert [line.split(None, 2)[1] for line in lines(result, "FAIL")] == ["SPF"]
    assert "unpog.example has 2 SPF records" in result.output
    assert "From unpog.example is aligned with DKIM" in result.output
    assert "Gmail: bulk mail failing SPF is rejected" in result.output


def test_the_dmarc_record_of_the_organizational_domain_counts(check: Callable[..., Any],
                                                              dkim_key: tuple[Path, str]) -> None:
    zone = {"news.unpog.go.kr": ["v=spf1 a -all"],
            "news._domainkey.unpog.go.kr": [f"v=DKIM1; p={dkim_key[1]}"],
            "_dmarc.unpog.go.kr": ["v=DMARC1; p=reject; adkim=s"]}
    result = check(zone, BULLETIN_FROM="News <bulletin@news.unpog.go.kr>", DKIM_DOMAIN="unpog.go.kr")
    out = result.output
    assert "_dmarc.unpog.go.kr: v=DMARC1; p=reject; adkim=s" in out
    # adkim=s: d=unpog.go.kr does not align strictly with news.unpog.go.kr; the SPF domain (relaxed) does.
    assert "From news.unpog.go.kr is aligned with SPF" in out and result.exit_code == 0


def test_no_dkim_settings_with_smtp_fails_and_a_revoked_key_fails(check: Callable[..., Any],
                                                                  dkim_key: tuple[Path, str]) -> None:
    zone = good_zone(dkim_key[1])
    result = check(zone, DKIM_DOMAIN="", DKIM_SELECTOR="", DKIM_PRIVATE_KEY_FILE="")
    assert result.exit_code == 1 and "bulletins are not signed" in result.output
    revoked = zone | {"news._domainkey.unpog.example": ["v=DKIM1; k=rsa; p="]}
    result = check(revoked)
    assert result.exit_code == 1 and "the key is revoked (empty p=)" in result.output


def test_a_failed_lookup_fails_the_check(check: Callable[..., Any], dkim_key: tuple[Path, str]) -> None:
    result = check(good_zone(dkim_key[1]) | {"unpog.example": ["SERVFAIL"]})    # the server answers SERVFAIL
    assert result.exit_code == 1
    assert [line.split(None, 2)[1] for line in lines(result, "FAIL")] == ["SPF"]
    assert "cannot look up unpog.example" in result.output


def test_a_bad_resolver_setting_is_exit_2(check: Callable[..., Any], dkim_key: tuple[Path, str]) -> None:
    result = check(good_zone(dkim_key[1]), DNS_RESOLVER="dns.example:53")
    assert result.exit_code == 2
    assert "DNS_RESOLVER (from publisher.toml): expected IP[:PORT] such as 127.0.0.1:5353" in result.output
