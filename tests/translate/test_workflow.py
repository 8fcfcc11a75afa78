"""`publisher translate` and `publisher review` with a real (tiny, random) Argos model, end to end."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from publisher.article import load_article
from publisher.site import Site
from publisher.translate.workflow import translate_file

from .conftest import body_of, front_matter

STRUCTURED_BODY = """\
On 3 May 2024, UNPOG hosted 45 officials from 12 countries in Incheon. Read the [full programme](https://unpog.org/page/sub/detail.asp?sub=1&idx=7_2 "Programme").

## What was discussed

- Data governance and **trust** in public services.
- Service design, with `publisher subscribe` as a *worked* example.
- Speakers included Ban Ki-moon and UN DESA.

1. Morning: 2 panels.
2. Afternoon: site visit.

> Digital tools must widen participation.

```
config: never translated 99
```

See https://www.unpog.org/about for more.
"""


def block_structure(markdown: str) -> Counter[str]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)
    counted = Counter(t.type for t in tokens if t.type.endswith("_open") or t.type in ("fence", "code_block"))
    for token in tokens:
        for child in token.children or []:
            if child.type in ("strong_open", "em_open", "code_inline", "link_open"):
                counted[child.type] += 1
    return counted


def links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)", markdown)


def test_translate_writes_the_sibling_with_machine_status(cli, site: Site, models_dir: Path, write_article) -> None:
    (site.content_dir / "images" / "forum.png").write_bytes(b"\x89PNG")   # an image is checked when loaded
    source = write_article("workshop", "en", STRUCTURED_BODY, title="UNPOG workshop in Incheon",
                           summary="Officials from 12 countries met in Incheon.", tags=["digital government"],
                           image={"src": "images/forum.png", "alt": "Participants in Incheon"})

    result = cli("translate", str(source), "--to", "ko")

    assert result.exit_code == 0, result.output
    target = site.content_dir / "workshop.ko.md"
    meta = front_matter(target)
    assert meta["translation"] == {"status": "machine", "source": "en", "model": "argos:en-ko@1.0"}
    assert meta["tags"] == ["digital government"] and meta["image"]["src"] == "images/forum.png"
    assert "인천" in meta["title"] and "인천" in meta["summary"] and "인천" in meta["image"]["alt"]
    article = load_article(target, site)
    assert article.lang == "ko" and article.url == site.url_for("ko", "workshop")
    assert article.is_machine_translation
    assert f"After checking it, run: publisher review {target}" in result.output


def test_structure_survives_a_model_that_writes_gibberish(site: Site, models_dir: Path, write_article) -> None:
    source = write_article("workshop", "en", STRUCTURED_BODY)

    report = translate_file(site, source, "ko")
    translated = body_of(report.path)

    assert block_structure(translated) == block_structure(STRUCTURED_BODY)
    assert links(translated) == links(STRUCTURED_BODY)  # URLs untouched, in order
    assert '"Programme")' in translated
    assert "`publisher subscribe`" in translated
    assert "```\nconfig: never translated 99\n```" in translated
    assert "https://www.unpog.org/about" in translated
    for number in ("3", "2024", "45", "12", "2"):
        assert re.search(rf"(?<!\d){number}(?!\d)", translated), number
    for term in ("유엔거버넌스센터", "인천", "반기문", "유엔 경제사회국"):
        assert term in translated
    assert translated.count("\n\n") == STRUCTURED_BODY.count("\n\n")  # same paragraphs
    assert "full programme" not in translated  # link text went through the model


def test_korean_to_english_uses_kiwi_and_the_glossary(site: Site, models_dir: Path, write_article) -> None:
    source = write_article("forum", "ko", "유엔거버넌스센터는 인천에서 포럼을 열었습니다. 반기문 전 사무총장이 참석했습니다.\n",
                           title="인천 포럼", author="유엔거버넌스센터", tags=["유엔공공행정포럼", "기후행동"])

    report = translate_file(site, source, "en")

    assert report.sentences == 3  # the title and two sentences, split by kiwipiepy
    body = body_of(report.path)
    assert "United Nations Project Office on Governance" in body and "Ban Ki-moon" in body
    meta = front_matter(report.path)
    assert meta["translation"]["source"] == "ko"
    # names and tags: from the glossary when it has them whole, else kept as written
    assert meta["author"] == "United Nations Project Office on Governance"
    assert meta["tags"] == ["United Nations Public Service Forum", "기후행동"]


def test_memory_sends_only_changed_sentences_to_the_model(site: Site, models_dir: Path, write_article) -> None:
    body = "The forum opened in Incheon. Officials shared practices. The report follows next year.\n"
    source = write_article("memo", "en", body, title="Forum")

    first = translate_file(site, source, "ko")
    again = translate_file(site, source, "ko")
    write_article("memo", "en", body.replace("Officials shared practices.", "Experts compared notes."),
                  title="Forum")
    edited = translate_file(site, source, "ko")

    assert (first.sentences, first.sent_to_model, first.from_memory) == (4, 4, 0)
    assert (again.sent_to_model, again.from_memory) == (0, 4)
    assert (edited.sent_to_model, edited.from_memory) == (1, 3)
    assert body_of(first.path) != ""
    memory = site.store().translation_memory
    assert memory.count("argos:en-ko@1.0") == 5


def test_the_same_input_gives_the_same_translation(site: Site, models_dir: Path, write_article) -> None:
    source = write_article("same", "en", "A short note from Incheon.\n", title="Note")
    first = body_of(translate_file(site, source, "ko").path)
    site.store().translation_memory.forget()

    second = body_of(translate_file(site, source, "ko").path)

    assert first == second


@pytest.mark.parametrize("status", ["human", "reviewed", "original"])
def test_a_version_a_person_wrote_or_checked_is_not_replaced(cli, site: Site, models_dir: Path, write_article,
                                                               status: str) -> None:
    source = write_article("kept", "en", "Body text.\n")
    existing = write_article("kept", "ko", "사람이 쓴 글입니다.\n", title="제목",
                             translation={"status": status, "source": "en"} if status != "original" else None)
    before = existing.read_text(encoding="utf-8")

    refused = cli("translate", str(source), "--to", "ko")

    assert refused.exit_code == 2
    article = "an" if status == "original" else "a"
    assert refused.output.strip() == (f"Error: {existing}: is {article} {status} version; it is not replaced by a "
                                      "machine translation without --force")
    assert existing.read_text(encoding="utf-8") == before
    forced = cli("translate", str(source), "--to", "ko", "--force")
    assert forced.exit_code == 0, forced.output
    assert front_matter(existing)["translation"]["status"] == "machine"


def test_a_machine_translation_is_replaced_when_translated_again(cli, site: Site, models_dir: Path,
                                                                 write_article) -> None:
    source = write_article("again", "en", "Body text.\n")
    assert cli("translate", str(source), "--to", "ko").exit_code == 0

    again = cli("translate", str(source), "--to", "ko")

    assert again.exit_code == 0, again.output


def test_a_machine_translation_is_not_a_source(cli, site: Site, models_dir: Path, write_article) -> None:
    source = write_article("chain", "en", "Body text.\n")
    cli("translate", str(source), "--to", "ko")

    result = cli("translate", str(site.content_dir / "chain.ko.md"), "--to", "en")

    assert result.exit_code == 2
    assert "is a machine translation; translate from the original (content/chain.en.md) instead" in result.output


def test_review_marks_reviewed_and_lists_missing_glossary_terms(cli, site: Site, models_dir: Path,
                                                                 write_article) -> None:
    write_article("rev", "en", "UNPOG met Ban Ki-moon in Incheon.\n", title="Meeting")
    target = write_article("rev", "ko", "유엔거버넌스센터가 인천에서 만났다.\n", title="회의",
                           translation={"status": "machine", "source": "en", "model": "argos:en-ko@1.0"})

    result = cli("review", str(target))

    assert result.exit_code == 0, result.output
    assert "glossary term 'Ban Ki-moon' should read '반기문'" in result.output
    assert front_matter(target)["translation"] == {"status": "reviewed", "source": "en", "model": "argos:en-ko@1.0"}
    assert not load_article(target, site).is_machine_translation


@pytest.mark.parametrize("status, message", [
    ("original", "translation.status: is original: only a machine translation is reviewed"),
    ("human", "translation.status: is a human translation: only a machine translation is reviewed"),
])
def test_review_refuses_what_is_not_a_machine_translation(cli, site: Site, write_article, status: str,
                                                           message: str) -> None:
    path = write_article("orig", "en", "Body.\n",
                         translation={"status": status, "source": "ko"} if status != "original" else None)

    result = cli("review", str(path))

    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {path}: {message}"


def test_an_older_moses_bpe_package_translates_too(site: Site, empty_models_dir: Path, tmp_path: Path,
                                                   write_article) -> None:
    from publisher.translate.packages import install_from_file
    from publisher.translate.synthetic import build_argos_package

    archive = build_argos_package(tmp_path / "bpe.argosmodel", "en", "ko", package_version="0.9", tokenizer="bpe")
    install_from_file(archive, empty_models_dir)
    source = write_article("bpe", "en", "## Heading\n\nUNPOG met 45 officials in [Incheon](https://x.org/a).\n")

    report = translate_file(site, source, "ko")

    body = body_of(report.path)
    assert report.model == "argos:en-ko@0.9"
    assert body.lstrip().startswith("## ") and "](https://x.org/a)" in body
    assert "유엔거버넌스센터" in body and "45" in body


def test_several_articles_are_translated_together(cli, site: Site, models_dir: Path, write_article) -> None:
    first = write_article("one", "en", "The forum opened in Incheon.\n", title="One")
    second = write_article("two", "en", "The forum opened in Incheon. Officials met.\n", title="Two")

    result = cli("translate", str(first), str(second), "--to", "ko")

    assert result.exit_code == 0, result.output
    assert "one.ko.md (machine translation, argos:en-ko@1.0): 2 sentences: 2 by the model" in result.output
    assert "two.ko.md (machine translation, argos:en-ko@1.0): 3 sentences: 3 by the model" in result.output
    shared = [body_of(site.content_dir / f"{slug}.ko.md").strip() for slug in ("one", "two")]
    assert shared[1].startswith(shared[0])  # the same sentence, translated once, in both


def test_nothing_is_written_unless_every_article_can_be(cli, site: Site, models_dir: Path, write_article) -> None:
    first = write_article("fine", "en", "Body.\n")
    second = write_article("kept", "en", "Body.\n")
    write_article("kept", "ko", "검토한 글.\n", translation={"status": "reviewed", "source": "en"})

    result = cli("translate", str(first), str(second), "--to", "ko")

    assert result.exit_code == 2
    assert "kept.ko.md: is a reviewed version" in result.output
    assert not (site.content_dir / "fine.ko.md").exists()


def test_korean_markdown_keeps_its_structure_in_english(site: Site, models_dir: Path, write_article) -> None:
    body = ("## 워크숍 개요\n\n**유엔거버넌스센터**는 [인천](https://www.unpog.org/ko)에서 45명의 공무원을 맞았습니다. "
            "참가자들은 `데이터` 공유를 논의했습니다.\n\n- 첫째 날: 국가 전략\n- 둘째 날: *데이터* 거버넌스\n")
    source = write_article("ko-structure", "ko", body, title="워크숍")

    translated = body_of(translate_file(site, source, "en").path)

    assert block_structure(translated) == block_structure(body)
    assert links(translated) == ["https://www.unpog.org/ko"]
    assert "`데이터`" in translated and "45" in translated
    assert "United Nations Project Office on Governance" in translated and "Incheon" in translated


def test_decomposed_hangul_still_meets_the_glossary(site: Site, models_dir: Path, write_article) -> None:
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "반기문 전 사무총장이 인천을 방문했습니다.\n")
    source = write_article("nfd", "ko", decomposed, title=unicodedata.normalize("NFD", "방문"))

    body = body_of(translate_file(site, source, "en").path)

    assert "Ban Ki-moon" in body and "Incheon" in body
