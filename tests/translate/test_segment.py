"""Segmentation keeps every piece of Markdown structure; only sentences are handed to a model."""

from __future__ import annotations

import re

import pytest

from publisher.markup import markdown_to_html
from publisher.translate.glossary import Glossary
from publisher.translate.segment import Segment, escape_markdown, segment_markdown, segment_plain, sentence_spans
from publisher.translate.workflow import model_input, restore

RICH_ARTICLE = """\
# Digital government in **Asia and the Pacific** #

On 3 May 2024, UNPOG hosted 45 officials from 12 countries in Incheon. The [full programme](https://unpog.org/page/sub/detail.asp?sub=1&idx=1_2 "Programme") is online.
Registration used `publisher subscribe` and <abbr title="United Nations">UN</abbr> forms at https://example.org/a_b.

## Sessions

- Data governance and *trust* in public services.
- Service design: 3 case studies.
  A second line of the same item.
1. One
2. Two, see <https://un.org/x>

> Digital tools should widen participation, said Ban Ki-moon.
> They must not exclude people offline.

```python
print("code is never translated. 42")
```

    indented code. Not translated.

| Country | Officials |
|---------|----------:|
| Korea \\| ROK | 12 |

![Participants in *Incheon*](images/forum.png "Forum")

Setext heading
--------------

Line with a hard break  
and a second line.

[ref link][r] and an image ![alt text][r].

[r]: https://example.org/ref
"""


def source_rendering(segment: Segment) -> str:
    """Render a segment as its own source text, through the same restore path a translation takes."""
    text, _ = restore(segment, model_input(segment))
    return text


def normalized_html(markdown: str) -> str:
    # Translation reflows paragraphs (a soft line break is a space); compare the rest exactly.
    return re.sub(r"\s+", " ", markdown_to_html(markdown))


def test_rendering_every_sentence_as_itself_gives_back_the_same_document() -> None:
    template = segment_markdown(RICH_ARTICLE, "en")

    rebuilt = template.render(source_rendering)

    assert normalized_html(rebuilt) == normalized_html(RICH_ARTICLE)


def test_markup_code_and_urls_stay_outside_the_sentences() -> None:
    sentences = [segment.text for segment in segment_markdown(RICH_ARTICLE, "en").segments]
    model_inputs = [model_input(s) for s in segment_markdown(RICH_ARTICLE, "en").segments]

    assert "full programme" in sentences  # link text is translated ...
    assert not any("unpog.org" in text for text in model_inputs)  # ... its URL never reaches the model
    assert not any("print(" in text or "indented code" in text for text in sentences)
    assert not any(marker in text for text in model_inputs for marker in ("**", "](", "```", "# "))
    assert "Registration used ZQ0 and ZQ1" in " ".join(model_inputs)  # code span and inline HTML: placeholders


def test_sentences_are_split_offline_in_english_and_korean() -> None:
    english = "Mr. Ban Ki-moon spoke at 10 a.m. in Incheon. The U.N. office opened in 2006! Was it raining?"
    korean = "유엔거버넌스센터는 2006년 인천에 문을 열었습니다. 반기문 전 사무총장이 축사를 했습니다. 다음 행사는 5월입니다."

    assert [english[s:e] for s, e in sentence_spans(english, "en")] == [
        "Mr. Ban Ki-moon spoke at 10 a.m. in Incheon.",
        "The U.N. office opened in 2006!",
        "Was it raining?",
    ]
    assert [korean[s:e] for s, e in sentence_spans(korean, "ko")] == [
        "유엔거버넌스센터는 2006년 인천에 문을 열었습니다.",
        "반기문 전 사무총장이 축사를 했습니다.",
        "다음 행사는 5월입니다.",
    ]


def test_glossary_terms_become_placeholders_in_both_directions() -> None:
    glossary = Glossary.load()
    english = segment_plain("UNPOG and UN DESA met in Incheon.", "en",
                            lambda text: glossary.find(text, "en", "ko"))
    korean = segment_plain("유엔거버넌스센터는 유엔 경제사회국과 인천에서 만났다.", "ko",
                           lambda text: glossary.find(text, "ko", "en"))

    assert [model_input(s) for s in english.segments] == ["ZQ0 and ZQ1 met in ZQ2."]
    assert [p.target for p in english.segments[0].protected] == ["유엔거버넌스센터", "유엔 경제사회국", "인천"]
    assert [model_input(s) for s in korean.segments] == ["ZQ0는 ZQ1과 ZQ2에서 만났다."]
    assert [p.target for p in korean.segments[0].protected] == [
        "United Nations Project Office on Governance",
        "United Nations Department of Economic and Social Affairs",
        "Incheon",
    ]


def test_restore_puts_placeholders_back_wherever_the_model_moved_them() -> None:
    glossary = Glossary.load()
    segment = segment_plain("UNPOG met UN DESA on 3 May.", "en", lambda t: glossary.find(t, "en", "ko")).segments[0]

    text, repaired = restore(segment, "ZQ1과 ZQ0가 5월 3일에 만났다.")

    assert text == "유엔 경제사회국과 유엔거버넌스센터가 5월 3일에 만났다."
    assert not repaired


def test_restore_never_loses_what_the_model_dropped() -> None:
    glossary = Glossary.load()
    segment = segment_plain("UNPOG trained 45 officials.", "en", lambda t: glossary.find(t, "en", "ko")).segments[0]

    text, repaired = restore(segment, "공무원을 교육했다. ZQ7")  # placeholder lost, number lost, one invented

    assert repaired
    assert text == "공무원을 교육했다. 유엔거버넌스센터 45"


@pytest.mark.parametrize("plain, escaped", [
    ("a *star* and _under_ [x](y) <b> |", r"a \*star\* and \_under\_ \[x\](y) \<b\> \|"),
    ("# not a heading", r"\# not a heading"),
    ("1. not a list", r"1\. not a list"),
    ("- not a bullet", r"\- not a bullet"),
    ("~~struck~~ &copy; R&D", r"\~\~struck\~\~ \&copy; R&D"),
])
def test_model_output_cannot_inject_markup(plain: str, escaped: str) -> None:
    assert escape_markdown(plain, at_block_start=True) == escaped
    html = markdown_to_html(escaped)
    assert not any(tag in html for tag in ("<b>", "<h1>", "<ol>", "<ul>", "<em>", "<s>", "<del>", "©"))


def test_korean_particles_agree_with_the_restored_term() -> None:
    glossary = Glossary.load()
    segment = segment_plain("UNPOG and Incheon signed it.", "en", lambda t: glossary.find(t, "en", "ko")).segments[0]

    # The model wrote particles for "ZQ0"/"ZQ1" (read as ending in a consonant / a vowel).
    text, repaired = restore(segment, "ZQ0과 ZQ1가 서명했다.", "ko")

    assert text == "유엔거버넌스센터와 인천이 서명했다."
    assert not repaired


@pytest.mark.parametrize("word, following, expected", [
    ("유엔거버넌스센터", "이 주최했다", "가 주최했다"),
    ("인천", "로 갔다", "으로 갔다"),
    ("서울", "으로 갔다", "로 갔다"),  # ㄹ takes 로
    ("반기문", "는", "은"),
    ("센터", "을.", "를."),
    ("유엔거버넌스센터", "과의 협력", "와의 협력"),
    ("유엔", "가능한 일", "가능한 일"),  # 가능 is a word, not a particle
    ("인천", "은행", "은행"),
    ("UNPOG", "이 주최", "이 주최"),  # not Hangul: left as the model wrote it
])
def test_particle_agreement(word: str, following: str, expected: str) -> None:
    from publisher.translate.korean import agree_particle

    assert agree_particle(word, following) == expected


def test_a_dropped_number_comes_back_as_written() -> None:
    segment = segment_plain("More than 2,000 people came.", "en").segments[0]

    text, repaired = restore(segment, "사람들이 왔다.", "ko")

    assert (text, repaired) == ("사람들이 왔다. 2,000", True)
    assert restore(segment, "2000명이 넘게 왔다.", "ko") == ("2000명이 넘게 왔다.", False)


def render_with(template, outputs: dict[str, str], used: set[int] | None = None) -> str:
    """Render as if the model had answered ``outputs`` (model input -> output)."""
    return template.render(lambda s: restore(s, outputs[model_input(s)], "ko")[0], used)


def test_a_sentence_with_a_link_is_translated_whole_and_the_link_put_back() -> None:
    template = segment_markdown("The [full programme](https://x.org/p) is *online* now.\n", "en")
    assert sorted({model_input(s) for s in template.segments}) == sorted(
        ["The full programme is online now.", "full programme", "online", "The", "is", "now."])

    rendered = render_with(template, {
        "The full programme is online now.": "전체 프로그램은 지금 온라인에 있습니다.",
        "full programme": "전체 프로그램.",  # a fragment often comes back with a full stop
        "online": "온라인", "The": "그", "is": "이다", "now.": "지금.",
    })

    assert rendered == "[전체 프로그램](https://x.org/p)은 지금 *온라인*에 있습니다.\n"


def test_when_a_fragment_is_not_in_the_sentence_the_fragments_are_used() -> None:
    template = segment_markdown("The [full programme](https://x.org/p) is online.\n", "en")

    used: set[int] = set()
    rendered = render_with(template, {
        "The full programme is online.": "일정 전체가 온라인에 있습니다.",
        "full programme": "전체 프로그램", "The": "그", "is online.": "온라인에 있습니다.",
    }, used)

    assert rendered == "그 [전체 프로그램](https://x.org/p) 온라인에 있습니다.\n"
    assert {model_input(s) for s in template.segments if id(s) in used} == {
        "The", "full programme", "is online."}


def test_a_mark_across_two_sentences_is_translated_fragment_by_fragment() -> None:
    template = segment_markdown("**First one. Second** one.\n", "en")

    rendered = render_with(template, {"First one.": "첫째.", "Second": "둘째", "one.": "하나."})

    assert rendered == "**첫째. 둘째** 하나.\n"
