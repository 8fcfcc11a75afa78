"""The subscriber list: validation, case-insensitive identity, CSV import and the subscribers commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.site import Site
from tests.databases import execute

pytestmark = pytest.mark.both_databases


def test_add_normalizes_and_never_duplicates_an_address_differing_in_case(site: Site) -> None:
    subscribers = site.subscribers()
    first = subscribers.add("  Kim.MinSu@Example.KR ", name="김민수", lang="ko")
    again = subscribers.add("kim.minsu@example.kr", name="Someone else", lang="en")

    assert first.email == "Kim.MinSu@example.kr"          # domain lower-cased by email-validator
    assert again == first                                  # unchanged: same subscriber
    assert subscribers.count() == 1
    assert subscribers.get("KIM.MINSU@EXAMPLE.KR").name == "김민수"


@pytest.mark.parametrize("address", ["not-an-address", "a@@b.org", "", "name@", "@example.org"])
def test_add_refuses_a_bad_address_with_one_line(site: Site, address: str) -> None:
    with pytest.raises(InputError) as raised:
        site.subscribers().add(address)
    assert str(raised.value).startswith("email: ")
    assert "\n" not in str(raised.value)
    assert site.subscribers().count() == 0


def test_add_refuses_an_unknown_language(site: Site) -> None:
    with pytest.raises(InputError, match="'fr' is not one of en, ko"):
        site.subscribers().add("a@example.org", lang="fr")


def test_unsubscribe_is_idempotent_and_confirm_activates(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("reader@example.org", status="pending")
    assert subscribers.get("reader@example.org").confirmed_at is None

    confirmed = subscribers.confirm("Reader@Example.org")
    assert confirmed.status == "active" and confirmed.confirmed_at is not None

    assert subscribers.unsubscribe("reader@example.org") is True
    assert subscribers.unsubscribe("reader@example.org") is False
    assert subscribers.unsubscribe("nobody@example.org") is False
    assert subscribers.get("reader@example.org").status == "unsubscribed"


def test_preferences_change_language_and_themes(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("reader@example.org")
    changed = subscribers.set_preferences("reader@example.org", lang="ko", themes=["Digital-Government", "sdgs"])
    assert (changed.lang, changed.themes) == ("ko", ["digital-government", "sdgs"])
    unchanged_lang = subscribers.set_preferences("reader@example.org", themes=[])
    assert (unchanged_lang.lang, unchanged_lang.themes) == ("ko", [])


def test_iter_active_streams_in_batches_and_filters(site: Site) -> None:
    subscribers = site.subscribers()
    store = site.store()
    with site.store().transaction():  # a bulk insert through the API's own validation would take too long
        for i in range(2500):
            execute(store,
                "INSERT INTO subscribers (email, email_key, lang, status, themes, created_at, updated_at)"
                " VALUES (?, ?, ?, 'active', ?, '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00')",
                (f"r{i}@example.org", f"r{i}@example.org", "ko" if i % 5 == 0 else "en",
                 "governance" if i % 2 else ""),
            )
    subscribers.add("gone@example.org")
    subscribers.unsubscribe("gone@example.org")
    subscribers.add("bounced@example.org")
    subscribers.mark_bounced("bounced@example.org")
    subscribers.add("pending@example.org", status="pending")

    everyone = list(subscribers.iter_active(batch_size=1000))
    assert len(everyone) == 2500
    assert [s.email for s in everyone[:3]] == ["r0@example.org", "r1@example.org", "r2@example.org"]
    assert len({s.email for s in everyone}) == 2500
    assert sum(1 for _ in subscribers.iter_active(lang="ko", batch_size=333)) == 500
    # Subscribers without themes get every theme; the others only theirs.
    assert sum(1 for _ in subscribers.iter_active(theme="sdgs")) == 1250
    assert sum(1 for _ in subscribers.iter_active(theme="governance")) == 2500


def write_csv(path: Path, text: str, *, bom: bool = True, crlf: bool = True) -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


CSV_WITH_BAD_ROWS = """email,name,language
alice@example.org,Alice,en
not-an-address,Bob,en
김민수@example.kr,김민수,ko
Lee@Example.kr,이영희,KO
carol@example.org,"Carol, Jr.",
dave@example.org,Dave,fr
ALICE@example.org,Alice again,en
"""


@pytest.mark.parametrize("bom,crlf", [(True, True), (False, False), (True, False)])
def test_import_csv_reports_bad_rows_by_line_and_imports_the_rest(site: Site, tmp_path: Path, bom: bool,
                                                                 crlf: bool) -> None:
    path = write_csv(tmp_path / "subscribers.csv", CSV_WITH_BAD_ROWS, bom=bom, crlf=crlf)
    report = site.subscribers().import_csv(path)

    assert report.added == 4
    assert report.rejected == [
        "subscribers.csv:3: email: 'not-an-address' is not a valid address (An email address must have an @-sign.)",
        "subscribers.csv:7: language: 'fr' is not one of en, ko",
        "subscribers.csv:8: email: ALICE@example.org appears earlier in the file",
    ]
    subscribers = site.subscribers()
    assert subscribers.get("lee@example.kr").lang == "ko"
    assert subscribers.get("carol@example.org").name == "Carol, Jr."
    assert subscribers.get("carol@example.org").lang == "en"
    assert subscribers.get("김민수@example.kr").status == "active"


def test_reimport_changes_nothing_and_never_resubscribes(site: Site, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "subscribers.csv", CSV_WITH_BAD_ROWS)
    subscribers = site.subscribers()
    subscribers.import_csv(path)
    subscribers.unsubscribe("alice@example.org")
    before = [vars(s) for s in subscribers.iter_all()]

    report = subscribers.import_csv(path)

    assert (report.added, report.already_present) == (0, 4)
    assert [vars(s) for s in subscribers.iter_all()] == before
    assert subscribers.get("alice@example.org").status == "unsubscribed"


def test_import_refuses_a_file_that_is_not_utf8_or_has_no_email_column(site: Site, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,name\nok@example.org,Ok\nj@example.org,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"^latin.csv:3: not UTF-8 text"):
        site.subscribers().import_csv(latin)
    headerless = write_csv(tmp_path / "names.csv", "name,language\nAlice,en\n")
    with pytest.raises(InputError, match=r"^names.csv:1: no 'email' column"):
        site.subscribers().import_csv(headerless)
    assert site.subscribers().count() == 0


def test_an_unclosed_quote_stops_the_import_instead_of_swallowing_the_rows_after_it(cli, site: Site,
                                                                                   tmp_path: Path) -> None:
    # Read leniently, the quote would run to the end of the file: one subscriber named "Kim,en r1@..." and
    # every later row lost without a word.
    unclosed = write_csv(tmp_path / "unclosed.csv",
                         'email,name,language\nkim@example.kr,"Kim,ko\nr1@example.org,R1,en\nr2@example.org,R2,en\n')
    with pytest.raises(InputError, match=r"^unclosed.csv:2: not valid CSV \(unexpected end of data\); nothing"):
        site.subscribers().import_csv(unclosed)
    huge = write_csv(tmp_path / "huge.csv", "email,name,language\nok@example.org,Ok,en\nbig@example.org," +
                     "x" * 200_000 + ",en\n")
    result = cli("subscribers", "import", str(huge))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: huge.csv:3: not valid CSV (field larger than field limit (131072)); nothing was imported"]
    assert site.subscribers().count() == 0       # all or nothing: the good row before it is not half-imported


def test_cli_add_import_list_export_remove(cli, site_dir: Path, tmp_path: Path) -> None:
    added = cli("subscribers", "add", "Kim@Example.kr", "--lang", "ko", "--name", "김민수")
    assert added.exit_code == 0, added.output
    assert "Added Kim@example.kr (active, ko)" in added.output

    bad = cli("subscribers", "add", "nobody@")
    assert bad.exit_code == 2
    assert bad.output.strip().startswith("Error: email: 'nobody@' is not a valid address")
    assert "Traceback" not in bad.output

    csv_path = write_csv(tmp_path / "list.csv", CSV_WITH_BAD_ROWS)
    imported = cli("subscribers", "import", str(csv_path))
    assert imported.exit_code == 2          # some rows were rejected (bad input), the good ones imported
    assert "4 added, 0 already on the list, 3 rejected." in imported.output
    assert "skipped list.csv:3: email:" in imported.output

    listed = cli("subscribers", "list", "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["email"] for r in rows][:2] == ["Kim@example.kr", "alice@example.org"]
    assert rows[0] == {**rows[0], "name": "김민수", "lang": "ko", "status": "active", "themes": []}

    exported = tmp_path / "export.csv"
    assert cli("subscribers", "export", "--out", str(exported)).exit_code == 0
    assert exported.read_text(encoding="utf-8").splitlines()[0] == \
        "email,name,language,status,themes,created_at,confirmed_at"
    assert exported.stat().st_mode & 0o077 == 0          # a list of people's addresses: the owner's eyes only

    assert cli("subscribers", "remove", "KIM@example.kr").exit_code == 0
    missing = cli("subscribers", "remove", "kim@example.kr")
    assert missing.exit_code == 2 and "not on the subscriber list" in missing.output

    # The export imports back into an empty site unchanged (the extra columns are ignored); an empty database
    # of its own, on PostgreSQL too (the test's schema is the first site's).
    from tests.databases import fresh_site

    (tmp_path / "fresh").mkdir()
    fresh = fresh_site(tmp_path / "fresh")
    report = fresh.subscribers().import_csv(exported)
    assert (report.added, report.rejected) == (5, [])
    fresh.close()


def test_cli_import_pending_sends_confirmation_requests_to_the_maildir(cli, site_dir: Path, tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "list.csv", "email,name,language\nnew@example.org,New,ko\n")
    result = cli("subscribers", "import", "--pending", str(csv_path))
    assert result.exit_code == 0, result.output
    assert "1 confirmation requests sent." in result.output

    import email
    from email import policy

    from publisher import tokens

    [path] = (site_dir / "outbox" / "mail" / "new").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "new@example.org"
    assert "구독 신청을 확인해 주세요" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    token = text.split("/confirm/")[1].split()[0]
    assert tokens.verify("confirm", token, Site(site_dir)) == {"email": "new@example.org"}

    # A second file asks only its own new addresses; new@ (still pending) is not asked again.
    more = write_csv(tmp_path / "more.csv", "email,name,language\nnew@example.org,New,ko\nlater@example.org,L,en\n")
    second = cli("subscribers", "import", "--pending", str(more))
    assert second.exit_code == 0, second.output
    assert "1 added, 1 already on the list" in second.output and "1 confirmation requests sent." in second.output
    asked = [email.message_from_bytes(p.read_bytes(), policy=policy.default)["To"].addresses[0].addr_spec
             for p in (site_dir / "outbox" / "mail" / "new").iterdir()]
    assert sorted(asked) == ["later@example.org", "new@example.org"]


class StubResolver:
    """dnspython's side of email-validator's deliverability check: one domain has an MX, any other does not
    exist. No network; every question is recorded."""

    def __init__(self) -> None:
        import dns.resolver

        self.resolver = dns.resolver
        self.asked: list[tuple[str, str]] = []

    def resolve(self, qname: str, rdtype: str, *args: object, **kwargs: object) -> list[object]:
        from types import SimpleNamespace

        self.asked.append((str(qname), rdtype))
        if str(qname).rstrip(".") == "agency.go.kr" and rdtype == "MX":
            return [SimpleNamespace(preference=10, exchange="mx.agency.go.kr.")]
        raise self.resolver.NXDOMAIN()


DNS_CSV = "email,name,language\nkim@agency.go.kr,Kim,ko\nlee@agency.go.kr,Lee,ko\nghost@nowhere-at-all.org,G,en\n"


def test_dns_is_asked_only_with_check_dns(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.resolver

    stub = StubResolver()
    # dnspython's own resolver answers from the stub: a lookup without check_dns would show up here
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", lambda self, *a, **k: stub.resolve(*a, **k))
    path = write_csv(tmp_path / "dns.csv", DNS_CSV)
    report = site.subscribers().import_csv(path)
    assert (report.added, report.rejected, stub.asked) == (3, [], [])

    fresh = Site(site.root)
    for subscriber in list(fresh.subscribers().iter_all()):
        fresh.subscribers().remove(subscriber.email)
    checked = fresh.subscribers().import_csv(path, check_dns=True, dns_resolver=stub)
    assert checked.added == 2
    assert checked.rejected == ["dns.csv:4: email: 'ghost@nowhere-at-all.org' is not a valid address "
                                "(The domain name nowhere-at-all.org does not exist.)"]
    assert stub.asked.count(("agency.go.kr", "MX")) >= 1 and ("nowhere-at-all.org", "MX") in stub.asked


def test_cli_check_dns_reaches_email_validators_deliverability_check(cli, site: Site, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.resolver

    stub = StubResolver()
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", lambda self, *a, **k: stub.resolve(*a, **k))
    path = write_csv(tmp_path / "dns.csv", DNS_CSV)
    result = cli("subscribers", "import", "--check-dns", str(path))
    assert result.exit_code == 2
    assert "skipped dns.csv:4: email: 'ghost@nowhere-at-all.org' is not a valid address (The domain name " \
           "nowhere-at-all.org does not exist.)" in result.stderr
    assert "2 added, 0 already on the list, 1 rejected." in result.stdout
    assert ("nowhere-at-all.org", "MX") in stub.asked
    assert cli("subscribers", "import", str(path)).exit_code == 0    # without the flag: syntax only, no DNS


def test_import_memory_stays_flat_in_the_number_of_rows(site: Site, tmp_path: Path) -> None:
    """Python's peak allocation for 10,000 rows is about that of 1,000: the file is read a line at a time and
    the duplicates are the database's to find (no list of rows, no set of addresses)."""
    import tracemalloc

    def peak(rows: int, name: str) -> int:
        path = tmp_path / f"{name}.csv"
        with path.open("w", encoding="utf-8") as out:
            out.write("email,name,language\n")
            for n in range(rows):
                out.write(f"reader{n}.{name}@agency{n % 50}.go.kr,Reader {n} with a longer name,en\n")
        tracemalloc.start()
        try:
            report = site.subscribers().import_csv(path)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert report.added == rows

    small, large = peak(1_000, "small"), peak(10_000, "large")
    assert large < small * 2, (small, large)


# Domains valid and not, as email-validator tells them: case, IDNA, a trailing dot, a literal, bad labels
DOMAINS = ["unpog.org", "UNPOG.Org", "agency.go.kr", "행정안전부.한국", "münchen.de", "xn--mnchen-3ya.de", "example.com.",
           "-bad.org", "a..b", "localhost", "invalid", "x" * 64 + ".com", "[127.0.0.1]", "under_score.org", ""]


def test_a_domain_checked_once_gives_the_same_answer_as_a_check_each_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """email-validator's domain check is kept per domain (issue 18: ~60% of its time); every address gets the
    answer, normalized form or error message, that the check made afresh gives."""
    import sys

    from publisher.subscribers import _email_validator, normalize_email

    _email_validator()
    module = sys.modules["email_validator.validate_email"]
    kept = module.validate_email_domain_name
    assert hasattr(kept, "cache_info"), "email-validator's domain check is no longer kept: did it rename it?"

    def answers() -> list[str]:
        results = []
        for address in (f"{local}@{domain}" for domain in DOMAINS for local in ("reader", "Second.Reader", "김")):
            try:
                results.append(normalize_email(address))
            except InputError as error:
                results.append(str(error))
        return results

    kept.cache_clear()
    first, again = answers(), answers()   # the second time from the kept checks
    assert kept.cache_info().hits > 0
    monkeypatch.setattr(module, "validate_email_domain_name", kept.__wrapped__)
    assert first == again == answers()
    assert "reader@münchen.de" in first and "reader@unpog.org" in first
    assert any("-bad.org" in answer and "not a valid address" in answer for answer in first)


def test_an_import_checks_each_domain_once(site: Site, tmp_path: Path) -> None:
    import sys

    from publisher.subscribers import _email_validator

    _email_validator()   # email-validator imported, its check kept (as the first address of a process does)
    path = tmp_path / "three-domains.csv"
    path.write_text("email,name,language\n" + "".join(f"reader{n}@agency{n % 3}.go.kr,,en\n" for n in range(300)),
                    encoding="utf-8")
    kept = sys.modules["email_validator.validate_email"].validate_email_domain_name
    kept.cache_clear()
    assert site.subscribers().import_csv(path).added == 300
    assert (kept.cache_info().misses, kept.cache_info().hits) == (3, 297)


def test_a_row_repeated_in_the_file_is_told_from_one_already_on_the_list(site: Site, tmp_path: Path) -> None:
    subscribers = site.subscribers()
    subscribers.add("old@example.org", lang="en")
    path = write_csv(tmp_path / "list.csv",
                     "email,name,language\nOLD@example.org,,en\nnew@example.org,,en\nold@example.org,,en\n"
                     "New@Example.org,,en\n")
    report = subscribers.import_csv(path, status="pending")
    assert (report.added, report.already_present) == (1, 1)
    assert report.rejected == ["list.csv:4: email: old@example.org appears earlier in the file",
                               "list.csv:5: email: New@example.org appears earlier in the file"]
    assert [s.email for s in subscribers.added_by(report)] == ["new@example.org"]
    again = subscribers.import_csv(path)   # the addresses met by the last import are forgotten
    assert (again.added, again.already_present, len(again.rejected)) == (0, 2, 2)
    assert list(subscribers.added_by(again)) == []


def test_import_checks_each_cell_of_a_row_and_names_the_first_problem(site: Site, tmp_path: Path) -> None:
    # The common row takes a short path (issue 18); every other kind of row is reported as before.
    path = write_csv(tmp_path / "edge.csv", 'email,name,language\n,Nobody,en\n a@example.org ,A, FR \n , ,\n'
                     'b@example.org,B,en,extra\nc@example.org,,KO\nx@,X,en\nd@Example.ORG,"D\nTwo",\n,,\n'
                     'e@example.org\n')
    report = site.subscribers().import_csv(path)

    assert report.rejected == [
        "edge.csv:2: email: is empty",
        "edge.csv:3: language: ' FR ' is not one of en, ko",
        "edge.csv:5: 4 fields, the header has 3",
        "edge.csv:7: email: 'x@' is not a valid address (There must be something after the @-sign.)",
    ]
    assert [(s.email, s.name, s.lang) for s in site.subscribers().iter_all()] == [
        ("c@example.org", None, "ko"), ("d@example.org", "D Two", "en"), ("e@example.org", None, "en")]
