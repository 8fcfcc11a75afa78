"""`publisher bulletin`: a digest of recent articles, each subscriber in their language, resumable by the ledger."""

from __future__ import annotations

from publisher.site import Site
from tests.email.conftest import SmtpServer

WIDE = {"COLUMNS": "250"}     # so rich does not wrap the report table's notes


def add_readers(site: Site) -> None:
    subscribers = site.subscribers()
    subscribers.add("en1@example.org", lang="en")
    subscribers.add("en2@example.org", lang="en", themes=["digital-government"])
    subscribers.add("ko1@example.kr", lang="ko", name="김민수")


def test_digest_goes_to_everyone_in_their_language_and_only_once(cli, smtp_site: Site,
                                                                smtp_server: SmtpServer) -> None:
    add_readers(smtp_site)

    result = cli("bulletin", "--since", "2024-01-01", env=WIDE)

    assert result.exit_code == 0, result.output
    assert "digest-2024-01-01" in result.output
    assert smtp_server.handler.received() == {"en1@example.org": 1, "en2@example.org": 1, "ko1@example.kr": 1}
    korean = smtp_server.handler.parsed()["ko1@example.kr"]
    assert korean["Subject"] == "유엔거버넌스센터 소식: 2024년 1월 1일 이후 새 글 모음"
    korean_text = korean.get_body(("plain",)).get_content()
    assert "세계 공공행정의 역량 강화" in korean_text
    english_text = smtp_server.handler.parsed()["en1@example.org"].get_body(("plain",)).get_content()
    assert "Empowering Global Public Administration" in english_text
    # An article without a Korean version is left out of the Korean digest, and the reason is shown.
    assert "2024-sdg16-knowledge-forum (ko): no ko version" in result.output

    again = cli("bulletin", "--since", "2024-01-01", env=WIDE)
    assert again.exit_code == 0
    assert "already sent" in again.output
    assert sum(smtp_server.handler.received().values()) == 3


def test_theme_digest_goes_to_that_theme_s_followers(cli, smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site)

    result = cli("bulletin", "--since", "2024-01-01", "--theme", "Capacity Development", env=WIDE)

    assert result.exit_code == 0, result.output
    assert "digest-2024-01-01-capacity-development" in result.output
    assert set(smtp_server.handler.received()) == {"en1@example.org", "ko1@example.kr"}


def test_dry_run_sends_nothing_and_writes_no_ledger_row(cli, smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site)

    result = cli("bulletin", "--since", "2024-01-01", "--dry-run", env=WIDE)

    assert result.exit_code == 0, result.output
    assert "Dry run, nothing sent" in result.output and "would be sent" in result.output
    assert smtp_server.handler.received() == {}
    assert smtp_site.store().connection.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0


def test_bad_date_and_empty_digest_are_one_line_errors(cli, site: Site) -> None:
    bad = cli("bulletin", "--since", "last week", env=WIDE)
    assert bad.exit_code == 2
    assert bad.output.strip() == "Error: --since: expected a date such as 2024-06-01, got 'last week'"

    empty = cli("bulletin", "--since", "2030-01-01", env=WIDE)
    assert empty.exit_code == 2
    assert empty.output.strip() == "Error: no articles dated 2030-01-01 or later"


def test_a_failed_delivery_makes_the_exit_code_1(cli, smtp_site: Site, smtp_server: SmtpServer) -> None:
    add_readers(smtp_site)
    smtp_server.handler.refuse_rcpt = {"en2@example.org": "550 5.1.1 no such user"}

    result = cli("bulletin", "--since", "2024-01-01", env=WIDE)

    assert result.exit_code == 1
    assert "550 5.1.1 no such user" in result.output
    assert set(smtp_server.handler.received()) == {"en1@example.org", "ko1@example.kr"}
