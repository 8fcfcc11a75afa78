"""``publisher import`` on the shared sample page and on variants of its format."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from publisher.article import load_article
from publisher.importer import detect_language, find_date
from publisher.site import Site
from tests.conftest import SHARED_SAMPLES

SAMPLES = Path(__file__).parent / "samples"
UNPOG_PAGE = SHARED_SAMPLES / "unpog-2024-unpsf-incheon.txt"


def run_import(cli: Callable[..., Result], source: Path, *args: str) -> tuple[Result, Path | None]:
    result = cli("import", str(source), *args)
    path = Path(result.stdout.strip()) if result.exit_code == 0 else None
    return result, path


def test_imports_the_shared_unpog_sample(cli: Callable[..., Result], site: Site) -> None:
    result, path = run_import(cli, UNPOG_PAGE, "--slug", "unpsf-imported")
    assert result.exit_code == 0, result.output
    assert path == site.content_dir / "unpsf-imported.en.md"
    article = load_article(path, site)
    assert article.title == ("Empowering Global Public Administration: Insights from the 2024 UN Public "
                             "Service Forum in Incheon")
    assert article.date.date().isoformat() == "2024-06-28"
    assert article.theme == "Capacity Development"
    assert article.lang == "en"
    paragraphs = article.body.strip().split("\n\n")
    assert len(paragraphs) == 5
    # the page's own typography (a no-break space after the dateline) is kept as it is
    assert paragraphs[0].startswith("28 June 2024\xa0– On 24 – 26 June 2024")
    assert paragraphs[-1].endswith("AI technology and digital innovations.")
    assert "페이스북" not in article.body and "UNPOG : Empowering" not in article.body


def test_refuses_to_overwrite_without_force(cli: Callable[..., Result], site: Site) -> None:
    first, path = run_import(cli, UNPOG_PAGE, "--slug", "unpsf-again")
    assert first.exit_code == 0 and path is not None
    path.write_text(path.read_text(encoding="utf-8").replace("Empowering", "Edited"), encoding="utf-8")
    again = cli("import", str(UNPOG_PAGE), "--slug", "unpsf-again")
    assert again.exit_code == 2
    assert "already exists (use --force to overwrite)" in again.stderr
    assert "Edited" in path.read_text(encoding="utf-8")
    forced = cli("import", str(UNPOG_PAGE), "--slug", "unpsf-again", "--force")
    assert forced.exit_code == 0 and "Edited" not in path.read_text(encoding="utf-8")


def test_korean_page(cli: Callable[..., Result], site: Site) -> None:
    result, path = run_import(cli, SAMPLES / "unpog_korean_page.txt", "--slug", "mongolia-egov-training")
    assert result.exit_code == 0, result.output
    article = load_article(path, site)
    assert path.name == "mongolia-egov-training.ko.md"
    assert article.lang == "ko" and article.theme == "디지털정부"
    assert article.title == "유엔거버넌스센터, 몽골 공무원 대상 전자정부 연수 실시"
    assert article.date.date().isoformat() == "2024-10-15"
    assert len(article.body.strip().split("\n\n")) == 2


def test_korean_page_without_slug_gets_a_dated_slug(cli: Callable[..., Result], site: Site) -> None:
    result, path = run_import(cli, SAMPLES / "unpog_korean_page.txt")
    assert result.exit_code == 0, result.output
    assert path.name == "news-20241015.ko.md"


def test_missing_date_is_a_clear_error_unless_given(cli: Callable[..., Result], site: Site) -> None:
    result = cli("import", str(SAMPLES / "unpog_missing_date.txt"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: {SAMPLES / 'unpog_missing_date.txt'}: date: no date found in the "
                                     "page; give one with --date YYYY-MM-DD")
    assert not list(site.content_dir.glob("unpog-welcomes*"))
    result, path = run_import(cli, SAMPLES / "unpog_missing_date.txt", "--date", "2024-12-01")
    assert result.exit_code == 0
    article = load_article(path, site)
    assert article.title == "UNPOG Welcomes New Interns" and article.theme == "Governance"
    assert article.body.count("\n\n") == 1


def test_extra_footer_lines_and_markdown_like_paragraphs(cli: Callable[..., Result], site: Site) -> None:
    result, path = run_import(cli, SAMPLES / "unpog_extra_footer.txt")
    assert result.exit_code == 0, result.output
    article = load_article(path, site)
    assert article.date.date().isoformat() == "2025-03-03"
    assert "Share" not in article.body and "Top" not in article.body and "UNPOG :" not in article.body
    # paragraphs that look like list syntax stay paragraphs
    assert "<ul>" not in article.body_html and "<ol>" not in article.body_html
    assert "- Participants from 15 countries joined." in article.body_html


def test_html_news_page(cli: Callable[..., Result], site: Site) -> None:
    result, path = run_import(cli, SAMPLES / "unpog_news_page.html")
    assert result.exit_code == 0, result.output
    article = load_article(path, site)
    assert article.title == "UNPOG Launches Online Course on Public Sector Innovation"
    assert article.date.date().isoformat() == "2025-02-10"
    assert article.theme == "Public Service Innovation"
    assert article.summary == "UNPOG launched an online course on public sector innovation."
    assert article.body.strip().split("\n\n") == [
        "The United Nations Project Office on Governance launched a free online course.",
        "The course has six modules & a final assessment.",
    ]


def test_bad_sources(cli: Callable[..., Result], tmp_path: Path) -> None:
    missing = cli("import", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2 and missing.stderr.strip() == f"Error: {tmp_path / 'nope.txt'}: file not found"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    result = cli("import", str(empty))
    assert result.exit_code == 2 and "empty.txt: is empty" in result.stderr
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    result = cli("import", str(binary))
    assert result.exit_code == 2 and "binary.txt: is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("text", "expected"), [
    ("June 28, 2024", "2024-06-28"), ("28 June 2024", "2024-06-28"), ("2024년 6월 28일", "2024-06-28"),
    ("2024.06.28", "2024-06-28"), ("Sept. 3, 2025", "2025-09-03"), ("no date here", None),
    ("2024. 6. 28.", "2024-06-28"), ("28th June 2024", "2024-06-28"), ("June 3rd, 2025", "2025-06-03"),
    ("1st of March 2025", "2025-03-01"), ("31 February 2024", None),
])
def test_find_date(text: str, expected: str | None) -> None:
    found = find_date(text)
    assert (found[0].isoformat() if found else None) == expected


def test_detect_language() -> None:
    assert detect_language("유엔거버넌스센터(UNPOG)는 인천에 있습니다") == "ko"
    assert detect_language("UNPOG is in Incheon (인천)") == "en"


def test_windows_line_endings_and_bom(cli: Callable[..., Result], site: Site, tmp_path: Path) -> None:
    source = tmp_path / "crlf.txt"
    source.write_bytes(b"\xef\xbb\xbf" + UNPOG_PAGE.read_text(encoding="utf-8").replace("\n", "\r\n").encode())
    result, path = run_import(cli, source, "--slug", "unpsf-crlf")
    assert result.exit_code == 0, result.output
    assert load_article(path, site).theme == "Capacity Development"
    shutil.rmtree(site.content_dir / "images")


def content_files(site: Site) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(site.content_dir.glob("*.md"))}


def test_the_shared_sample_is_refused_as_a_duplicate_of_the_sample_story(cli: Callable[..., Result],
                                                                          site: Site) -> None:
    """The sample site already holds this page as 2024-unpsf-incheon: one line naming it, exit 2, no file."""
    before = content_files(site)
    result = cli("import", str(UNPOG_PAGE))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "content/2024-unpsf-incheon.en.md" in lines[0] and "same title and date, 2024-06-28" in lines[0]
    assert result.stdout == ""
    assert content_files(site) == before


def test_slug_or_force_imports_it_anyway(cli: Callable[..., Result], site: Site) -> None:
    named, path = run_import(cli, UNPOG_PAGE, "--slug", "unpsf-second-look")
    assert named.exit_code == 0, named.output
    assert path is not None and path.name == "unpsf-second-look.en.md"
    forced, path = run_import(cli, UNPOG_PAGE, "--force")
    assert forced.exit_code == 0, forced.output
    assert path is not None and path.name == "empowering-global-public-administration-insights.en.md"


def test_a_title_matches_whatever_its_case_and_punctuation(cli: Callable[..., Result], site: Site,
                                                         tmp_path: Path) -> None:
    page = tmp_path / "shouting.txt"
    page.write_text(UNPOG_PAGE.read_text(encoding="utf-8").replace(
        "Empowering Global Public Administration: Insights", "EMPOWERING GLOBAL PUBLIC ADMINISTRATION - INSIGHTS",
        1), encoding="utf-8")
    assert cli("import", str(page)).exit_code == 2
    # the same title on another date is another story
    other_day = tmp_path / "other-day.txt"
    other_day.write_text(UNPOG_PAGE.read_text(encoding="utf-8").replace("June 28, 2024", "June 29, 2024", 1),
                         encoding="utf-8")
    result, path = run_import(cli, other_day)
    assert result.exit_code == 0, result.output


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>UNPOG | News</title>
<link rel="canonical" href="https://www.unpog.org/news/view/1234">
<meta property="og:image" content="https://www.unpog.org/og/default.png">
</head><body><article>
<h1>{title}</h1>
<p><time datetime="2025-03-10">10 March 2025</time></p>
{image}
<p>UNPOG held a webinar on open data with officials from twelve countries. It was the third of the series.</p>
<p>A second paragraph.</p>
</article></body></html>
"""


def write_page(tmp_path: Path, name: str, title: str = "Open Data Webinar for Asia",
               image: str = '<img src="/upload/webinar.jpg" alt="Speakers of the webinar on a screen">') -> Path:
    path = tmp_path / name
    path.write_text(HTML_PAGE.format(title=title, image=image), encoding="utf-8")
    return path


def test_an_html_page_brings_its_source_url_summary_and_image(cli: Callable[..., Result], site: Site,
                                                             tmp_path: Path) -> None:
    result, path = run_import(cli, write_page(tmp_path, "page.html"))
    assert result.exit_code == 0, result.output
    assert path is not None and path.name == "open-data-webinar-for-asia.en.md"
    article = load_article(path, site)
    assert article.extra["source_url"] == "https://www.unpog.org/news/view/1234"
    # the summary is the first paragraph (the page has no meta description)
    assert article.summary.startswith("UNPOG held a webinar on open data")
    # the article's own picture, made absolute against the page's address, with its alt text
    assert article.image is not None
    assert article.image.src == "https://www.unpog.org/upload/webinar.jpg"
    assert article.image.alt == "Speakers of the webinar on a screen"
    # the same page again, even retitled, is the same source: refused, naming the file
    again = cli("import", str(write_page(tmp_path, "retitled.html", title="Open Data: a Webinar")))
    assert again.exit_code == 2
    assert "content/open-data-webinar-for-asia.en.md" in again.stderr
    assert "source_url https://www.unpog.org/news/view/1234" in again.stderr


def test_an_image_without_alt_text_or_not_http_is_left_out(cli: Callable[..., Result], site: Site,
                                                           tmp_path: Path) -> None:
    no_alt = write_page(tmp_path, "no-alt.html", title="First Page", image='<img src="https://x.example/a.jpg">')
    result, path = run_import(cli, no_alt, "--force")
    assert result.exit_code == 0, result.output
    assert path is not None and load_article(path, site).image is None
    assert "image https://x.example/a.jpg has no alt text: not imported" in result.stderr
    data = write_page(tmp_path, "data.html", title="Second Page",
                      image='<img src="data:image/png;base64,AAAA" alt="a dot">'
                            '<img src="javascript:alert(1)" alt="x">')
    result, path = run_import(cli, data, "--force")
    assert result.exit_code == 0, result.output
    # neither inline image is usable; the page's og:image has no alt text, so no image at all
    assert path is not None and load_article(path, site).image is None
    assert "og/default.png has no alt text" in result.stderr


def test_slugs_are_cut_at_a_word_boundary() -> None:
    from publisher.importer import SLUG_MAX, slug_for

    title = ("Empowering Global Public Administration: Insights from the 2024 UN Public Service Forum in "
             "Incheon")
    slug = slug_for(title, None)
    assert slug == "empowering-global-public-administration-insights"
    long_words = "Intergovernmental Collaboration Strengthens Accountability Mechanisms Throughout Organisations"
    cut = slug_for(long_words, None)
    assert len(cut) <= SLUG_MAX and long_words.lower().replace(" ", "-").startswith(cut)
    assert not cut.endswith("-") and cut.split("-")[-1] in long_words.lower().split()
    assert slug_for("Short Title", None) == "short-title"


def test_a_long_first_paragraph_is_cut_after_a_sentence() -> None:
    from publisher.importer import SUMMARY_MAX, summary_from

    sentence = "UNPOG met officials from many countries in Incheon this week. "
    summary = summary_from([sentence * 10])
    assert len(summary) <= SUMMARY_MAX and summary.endswith("this week.")
    words = summary_from(["word " * 200])
    assert len(words) <= SUMMARY_MAX + 1 and words.endswith("word…")


def test_a_broken_article_elsewhere_is_named_and_slug_goes_on(cli: Callable[..., Result], site: Site) -> None:
    (site.content_dir / "broken.en.md").write_text("---\ntitle: No date\n---\n\nBody.\n", encoding="utf-8")
    result = cli("import", str(SAMPLES / "unpog_news_page.html"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot check whether the page is already a story" in result.stderr and "broken.en.md" in result.stderr
    named, path = run_import(cli, SAMPLES / "unpog_news_page.html", "--slug", "online-course")
    assert named.exit_code == 0, named.output
    assert path is not None and path.name == "online-course.en.md"


def test_only_an_https_image_with_an_address_is_imported(cli: Callable[..., Result], site: Site,
                                                        tmp_path: Path) -> None:
    plain = write_page(tmp_path, "http.html", title="Plain Picture",
                       image='<img src="http://www.unpog.org/a.jpg" alt="A hall">')
    result, path = run_import(cli, plain)
    assert result.exit_code == 0, result.output
    assert path is not None and load_article(path, site).image is None
    assert "image http://www.unpog.org/a.jpg is not https" in result.stderr
    relative = tmp_path / "relative.html"
    relative.write_text(HTML_PAGE.format(title="Relative Picture", image='<img src="/a.jpg" alt="A hall">')
                        .replace('<link rel="canonical" href="https://www.unpog.org/news/view/1234">', "")
                        .replace('<meta property="og:image" content="https://www.unpog.org/og/default.png">', ""),
                        encoding="utf-8")
    result, path = run_import(cli, relative)
    assert result.exit_code == 0, result.output
    assert path is not None and load_article(path, site).image is None
    assert "image /a.jpg is a relative address" in result.stderr
