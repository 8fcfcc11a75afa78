"""``publisher config check --dns``: the sender domain's SPF, DKIM and DMARC records, read with dnspython, and what
Gmail, Yahoo and Outlook.com would do with bulletins sent as configured.

The rules checked (Gmail and Yahoo since February 2024, Outlook.com since May 2025, for senders of more than
5,000 messages a day to their users; Gmail asks SPF *or* DKIM of every sender):

* SPF: one ``v=spf1`` TXT record on the envelope (Return-Path) domain: BOUNCE_ADDRESS's domain when it is set,
  MAILGUN_DOMAIN with Mailgun, else BULLETIN_FROM's;
* DKIM: the selector's key at ``<DKIM_SELECTOR>._domainkey.<DKIM_DOMAIN>``, the same key as DKIM_PRIVATE_KEY_FILE,
  at least 1024 bits;
* DMARC: a ``v=DMARC1`` record at ``_dmarc.<From domain>`` (or its organizational domain), ``p=none`` at least,
  and the From domain aligned with the SPF domain or the DKIM ``d=`` (relaxed: the same organizational domain,
  strict: the same name, per ``aspf`` / ``adkim``);
* bulk senders need both SPF and DKIM, not one of them.

Each finding is ``ok``, ``warning`` or ``fail``; a ``fail`` is something one of those providers rejects or sends
to spam. The command exits 1 when any check fails (a lookup that fails included: nothing is confirmed) and 2 on
bad settings, as ``config check`` does.

The organizational domain is approximated without the public suffix list: the last two labels, or three under a
two-letter country code with a second-level label such as ``co``, ``go`` or ``or`` (``unpog.go.kr``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from publisher.errors import ConfigError

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.site import Site

#: Second-level labels under a country code that are public suffixes themselves (go.kr, co.uk, or.jp...).
_SECOND_LEVEL = {"ac", "co", "com", "edu", "go", "gov", "ne", "net", "or", "org", "re", "mil"}
#: SPF mechanisms and modifiers that cost a DNS lookup (RFC 7208 section 4.6.4: at most 10).
_SPF_LOOKUPS = ("include:", "a", "mx", "ptr", "exists:", "redirect=")


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok``, ``warning`` or ``fail``, the check's name, and what was found."""

    level: str
    check: str
    text: str


@dataclass
class DomainReport:
    """Every finding, and the domains they were about."""

    from_domain: str
    envelope_domain: str
    dkim_domain: str | None
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, check: str, text: str) -> None:
        self.findings.append(Finding(level, check, text))

    @property
    def failed(self) -> bool:
        return any(f.level == "fail" for f in self.findings)


class Lookup:
    """TXT look-ups through dnspython: DNS_RESOLVER's server(s), else the system's (``/etc/resolv.conf``)."""

    def __init__(self, servers: list[tuple[str, int]] | None, timeout: float) -> None:
        import dns.resolver

        self.resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            self.resolver.nameservers = [host for host, _ in servers]
            self.resolver.port = servers[0][1]
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout

    def txt(self, name: str) -> list[str]:
        """The TXT records at ``name`` (each record's strings joined), [] when there is none; ``LookupError``
        when the look-up itself failed (a timeout, SERVFAIL)."""
        import dns.exception
        import dns.resolver

        try:
            answer = self.resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as error:
            raise LookupError(f"cannot look up {name}: {' '.join(str(error).split())}") from None
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def organizational(domain: str) -> str:
    """The organizational domain (see the module docstring for the approximation)."""
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(one: str, other: str, mode: str) -> bool:
    """DMARC alignment: the same name (``s``) or the same organizational domain (``r``)."""
    one, other = one.lower().rstrip("."), other.lower().rstrip(".")
    return one == other if mode == "s" else organizational(one) == organizational(other)


def tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tags of a DKIM or DMARC record (names in lower case)."""
    found = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            found[name.strip().lower()] = "".join(value.split())
    return found


def check_domain(site: Site, config: Config | None = None, *, lookup: Lookup | None = None) -> DomainReport:
    """Look up and judge the sender domain's records (``ConfigError`` for settings that cannot be read)."""
    from publisher.bounces.settings import BOUNCE_ADDRESS
    from publisher.mail.esp import transport_name
    from publisher.mail.message import DkimSigner, sender_address
    from publisher.mail.settings import DNS_RESOLVER, DNS_TIMEOUT, MAILGUN_DOMAIN

    config = config if config is not None else site.config
    sender = sender_address(site, config)
    transport = transport_name(config)
    envelope = sender.domain
    bounce = config.get(BOUNCE_ADDRESS)   # the setting's own parser (the VERP code reads it the same way)
    if bounce:
        envelope = str(bounce).rpartition("@")[2]
    elif transport == "mailgun" and config.is_set(MAILGUN_DOMAIN):
        envelope = str(config.get(MAILGUN_DOMAIN))
    signer = DkimSigner.from_config(config)
    if lookup is None:
        resolver = config.get(DNS_RESOLVER)
        lookup = Lookup(resolver or None, float(config.get(DNS_TIMEOUT)))
    report = DomainReport(sender.domain.lower(), envelope.lower(), signer.domain.lower() if signer else None)
    spf_ok = _spf(report, lookup, transport)
    dkim_ok = _dkim(report, lookup, signer, transport)
    _dmarc(report, lookup, spf_ok, dkim_ok, transport)
    return report


def _spf(report: DomainReport, lookup: Lookup, transport: str) -> bool:
    domain = report.envelope_domain
    try:
        records = [r for r in lookup.txt(domain) if r.lower().startswith("v=spf1")]
    except LookupError as error:
        report.add("fail", "SPF", str(error))
        return False
    if transport in ("ses", "postmark"):
        report.add("warning", "SPF", f"EMAIL_TRANSPORT={transport} writes its own Return-Path: SPF is checked on "
                                     "the provider's MAIL FROM domain, aligned only if you set a custom one "
                                     f"under {report.from_domain}; {domain} is checked here for mail it sends")
    if not records:
        report.add("fail", "SPF", f"{domain} has no SPF record (TXT \"v=spf1 ... -all\"): Gmail, Yahoo and "
                                  "Outlook require SPF of bulk senders")
        return False
    if len(records) > 1:
        report.add("fail", "SPF", f"{domain} has {len(records)} SPF records: receivers treat that as an error "
                                  "(RFC 7208 permerror); merge them into one")
        return False
    record = records[0]
    terms = record.split()[1:]
    lookups = sum(1 for term in terms if term.lstrip("+-~?").startswith(_SPF_LOOKUPS)
                  and (term.lstrip("+-~?") in ("a", "mx", "ptr") or ":" in term or "=" in term))
    if lookups > 10:
        report.add("fail", "SPF", f"{domain}: {lookups} DNS look-ups in \"{record}\" (at most 10 are allowed)")
        return False
    ending = next((term for term in terms if term.lstrip("+-~?") == "all"), None)
    if ending in ("all", "+all"):
        report.add("fail", "SPF", f"{domain}: \"{record}\" lets any server send as {domain}")
        return False
    if ending is None and not any(term.startswith("redirect=") for term in terms):
        report.add("warning", "SPF", f"{domain}: \"{record}\" ends without -all or ~all")
    elif ending == "?all":
        report.add("warning", "SPF", f"{domain}: \"{record}\" ends with ?all (neutral): prefer -all or ~all")
    else:
        report.add("ok", "SPF", f"{domain}: {record}")
    return True


def _dkim(report: DomainReport, lookup: Lookup, signer: Any, transport: str) -> bool:
    if signer is None:
        if transport == "smtp":
            report.add("fail", "DKIM", "bulletins are not signed (set DKIM_DOMAIN, DKIM_SELECTOR and "
                                       "DKIM_PRIVATE_KEY_FILE): Gmail, Yahoo and Outlook require DKIM of bulk "
                                       "senders")
            return False
        report.add("warning", "DKIM", f"no DKIM_* settings: with EMAIL_TRANSPORT={transport} the provider signs "
                                      f"(its keys are not checked here); sign as {report.from_domain} in its "
                                      "dashboard so DKIM aligns")
        return False
    name = f"{signer.selector}._domainkey.{signer.domain}"
    try:
        records = [r for r in lookup.txt(name) if "p=" in r]
    except LookupError as error:
        report.add("fail", "DKIM", str(error))
        return False
    if not records:
        report.add("fail", "DKIM", f"{name} has no DKIM key: every signature fails")
        return False
    found = tags(records[0])
    public = found.get("p", "")
    if not public:
        report.add("fail", "DKIM", f"{name}: the key is revoked (empty p=)")
        return False
    if found.get("k", "rsa") != "rsa":
        report.add("warning", "DKIM", f"{name}: a {found['k']} key; publisher signs with RSA")
        return False
    import dkim.crypto

    try:
        published = dkim.crypto.parse_public_key(base64.b64decode(public))
    except (ValueError, dkim.crypto.UnparsableKeyError):
        report.add("fail", "DKIM", f"{name}: p= is not an RSA public key")
        return False
    try:
        private = dkim.crypto.parse_pem_private_key(signer.private_key)
    except (ValueError, dkim.crypto.UnparsableKeyError):
        raise ConfigError("DKIM_PRIVATE_KEY_FILE", "not an RSA private key dkimpy can read") from None
    if (published["modulus"], published["publicExponent"]) != (private["modulus"], private["publicExponent"]):
        report.add("fail", "DKIM", f"{name}: the published key is not the public half of DKIM_PRIVATE_KEY_FILE: "
                                   "every signature fails")
        return False
    bits = int(published["modulus"]).bit_length()
    if bits < 1024:
        report.add("fail", "DKIM", f"{name}: a {bits}-bit key; Gmail and Yahoo require at least 1024 bits")
        return False
    note = "" if bits >= 2048 else " (2048 bits is recommended)"
    report.add("ok", "DKIM", f"{name}: {bits}-bit RSA key, matches DKIM_PRIVATE_KEY_FILE{note}")
    return True


def _dmarc(report: DomainReport, lookup: Lookup, spf_ok: bool, dkim_ok: bool, transport: str) -> None:
    domain = report.from_domain
    record: str | None = None
    where = f"_dmarc.{domain}"
    for candidate in dict.fromkeys([domain, organizational(domain)]):
        try:
            found = [r for r in lookup.txt(f"_dmarc.{candidate}") if r.replace(" ", "").lower().startswith(
                "v=dmarc1")]
        except LookupError as error:
            report.add("fail", "DMARC", str(error))
            return
        if len(found) > 1:
            report.add("fail", "DMARC", f"_dmarc.{candidate} has {len(found)} DMARC records: receivers ignore "
                                        "them all")
            return
        if found:
            record, where = found[0], f"_dmarc.{candidate}"
            break
    if record is None:
        report.add("fail", "DMARC", f"{where} has no DMARC record: Gmail, Yahoo and Outlook require one "
                                    "(at least \"v=DMARC1; p=none\") of bulk senders")
    else:
        policy = tags(record).get("p", "").lower()
        if policy not in ("none", "quarantine", "reject"):
            report.add("fail", "DMARC", f"{where}: \"{record}\" has no valid p= (none, quarantine or reject)")
        elif policy == "none":
            report.add("ok", "DMARC", f"{where}: {record} (p=none meets the 2024 rules but protects nobody from "
                                      "spoofing; move to quarantine once reports look clean)")
        else:
            report.add("ok", "DMARC", f"{where}: {record}")
    found_tags = tags(record or "")
    spf_aligned = spf_ok and transport not in ("ses", "postmark") and aligned(
        report.envelope_domain, domain, found_tags.get("aspf", "r").lower())
    dkim_aligned = dkim_ok and report.dkim_domain is not None and aligned(
        report.dkim_domain, domain, found_tags.get("adkim", "r").lower())
    provider_signs = report.dkim_domain is None and transport != "smtp"
    if spf_aligned or dkim_aligned:
        how = " and ".join(n for n, ok in (("SPF", spf_aligned), ("DKIM", dkim_aligned)) if ok)
        report.add("ok", "alignment", f"From {domain} is aligned with {how}")
    elif provider_signs:
        report.add("warning", "alignment", f"From {domain}: alignment rests on the provider's DKIM signature "
                                           f"(not checked here): it must sign as {domain}")
    else:
        report.add("fail", "alignment", f"From {domain} has neither a passing SPF (domain "
                                        f"{report.envelope_domain}) nor a passing DKIM signature (d="
                                        f"{report.dkim_domain or 'none'}) aligned with it: DMARC fails, and "
                                        "Gmail, Yahoo and Outlook reject or junk the bulletins")


def verdicts(report: DomainReport) -> list[str]:
    """What each provider would do with the bulletins, one line each."""
    failed = {f.check for f in report.findings if f.level == "fail"}
    if not failed:
        return ["Gmail, Yahoo, Outlook.com: the sender-domain rules for bulk mail are met (SPF, DKIM, DMARC "
                "aligned); keep complaints under 0.3% and one-click unsubscribe working"]
    reasons = ", ".join(sorted(failed))
    return [f"Gmail: bulk mail failing {reasons} is rejected (5.7.26/5.7.27) or sent to spam",
            f"Yahoo: bulk mail failing {reasons} is rejected or sent to spam",
            f"Outlook.com: over 5,000 a day, mail failing {reasons} is rejected with 550 5.7.515"]


__all__ = ["DomainReport", "Finding", "Lookup", "aligned", "check_domain", "organizational", "tags", "verdicts"]
