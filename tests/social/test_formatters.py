"""Post text: X's weighted length, Mastodon's and Bluesky's counts, hashtags, shortening and threads."""

from __future__ import annotations

import re

import pytest

from publisher.formatters.social import (
    BLUESKY_RULE,
    X_RULE,
    LengthRule,
    SocialFormatter,
    find_urls,
    grapheme_length,
    hashtags,
    mastodon_length,
    mastodon_rule,
    shorten_to_fit,
    split_into_thread,
    x_weighted_length,
)

FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # man, woman, girl joined by ZWJ: one emoji
FLAG_KR = "\U0001F1F0\U0001F1F7"
KEYCAP_ONE = "1\uFE0F\u20E3"
THUMBS_UP_DARK = "\U0001F44D\U0001F3FF"
LONG_URL = "https://www.unpog.org/en/news/2024/06/empowering-global-public-administration-insights/"

# A Korean news sentence, emoji and a URL: the kind of text the length rules must agree on.
KOREAN_TEXT = ("유엔거버넌스센터는 2024년 6월 인천에서 열린 유엔 공공행정포럼에서 기후 행동을 위한 공공기관 역량 "
               "강화 워크숍을 열었습니다. 100개국에서 2,000명이 넘는 참가자가 모였습니다 " + FLAG_KR + " "
               "디지털 정부와 포용적 거버넌스의 의의를 논의했습니다. " + LONG_URL + " #유엔공공행정포럼 #디지털정부")


# Cases of twitter-text's conformance suite (conformance/validate.yml, WeightedTweetsWithDiscountedEmojiCounterTest
# and urls_without_protocol), counted with the v3 configuration, plus country-code domains.
TWITTER_TEXT_V3_CASES = [
    ("Hi http://test.co", 26),
    ("http://test.co", 23),
    ("285 chars-" + "xxxxxxxxxx-" * 25, 285),
    ("https://www.twitter.com/aloha " * 10, 240),
    ("H\U0001f431\u263a\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", 7),
    ("\U0001f637\U0001f47e\U0001f621\U0001f525\U0001f4a9", 10),
    ("\U0001f64b\U0001f3fd\U0001f468\u200d\U0001f3a4", 4),
    ("1\u20e3", 2),
    ("Unicode 10.0 emoji: \U0001f92a; \U0001f9d5; \U0001f9d5\U0001f3fe; "
     "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", 34),
    ("Unicode 9.0 emoji: \U0001f920; \U0001f483; \U0001f483\U0001f3fe", 29),
    ("randomurlrandomurlrandomurlrandomurlrandomurlrandomurlrandomurls.com", 68),  # a 64-letter label: no URL
    ("example.com", 23),
    ("www.example.com", 23),
    ("foo.co.jp", 23),
    ("t.co", 23),
    ("Test https://test.com test https://test.com test.com test", 86),
    ("A\u0301B", 2),  # NFC first: one accented letter
    ("korea.kr", 8),  # a bare country-code domain is not linked
    ("korea.kr/news", 23),
    ("www.korea.kr", 23),
]


@pytest.mark.parametrize(("text", "expected"), TWITTER_TEXT_V3_CASES)
def test_x_length_matches_twitter_text_v3_conformance(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


class TestXWeightedLength:
    def test_latin_weighs_one_and_fills_280(self) -> None:
        assert x_weighted_length("a" * 280) == 280
        assert X_RULE.fits("a" * 280)
        assert not X_RULE.fits("a" * 281)

    def test_hangul_weighs_two_so_140_syllables_fill_a_tweet(self) -> None:
        assert x_weighted_length("한" * 140) == 280
        assert X_RULE.fits("한" * 140)
        assert not X_RULE.fits("한" * 141)

    def test_decomposed_hangul_counts_as_composed(self) -> None:
        import unicodedata

        assert x_weighted_length(unicodedata.normalize("NFD", "한국어")) == 6

    def test_each_emoji_sequence_weighs_two(self) -> None:
        for emoji in (FAMILY, FLAG_KR, KEYCAP_ONE, THUMBS_UP_DARK, "\U0001F600", "\u2764\uFE0F"):
            assert x_weighted_length(emoji) == 2, emoji
        assert x_weighted_length("hi " + FAMILY + FLAG_KR) == 3 + 4

    def test_a_url_counts_23_whatever_its_length(self) -> None:
        assert x_weighted_length(LONG_URL) == 23
        assert x_weighted_length("https://x.co") == 23
        assert x_weighted_length("Read: " + LONG_URL + ".") == 6 + 23 + 1
        assert x_weighted_length("visit unpog.org today") == len("visit ") + 23 + len(" today")

    def test_punctuation_ranges_of_the_v3_config(self) -> None:
        assert x_weighted_length("\u2013\u2019\u201c") == 3  # en dash and curly quotes: 8208-8223 weigh 1
        assert x_weighted_length("\u2026") == 2  # the ellipsis (8230) is outside every light range
        assert x_weighted_length("\u3002") == 2  # CJK full stop

    def test_mixed_korean_text(self) -> None:
        hangul = len(re.findall(r"[\uac00-\ud7a3]", KOREAN_TEXT))
        expected = 0
        for char in KOREAN_TEXT.replace(LONG_URL, "").replace(FLAG_KR, ""):
            expected += 2 if "\uac00" <= char <= "\ud7a3" else 1
        assert hangul > 60
        assert x_weighted_length(KOREAN_TEXT) == expected + 23 + 2


class TestOtherPlatforms:
    def test_graphemes_count_a_family_emoji_and_a_syllable_once(self) -> None:
        assert grapheme_length(FAMILY + FLAG_KR + "한글" + "e\u0301") == 5
        assert BLUESKY_RULE.limit == 300

    def test_mastodon_counts_urls_as_23_and_bare_domains_as_written(self) -> None:
        assert mastodon_length(LONG_URL) == 23
        assert mastodon_length("unpog.org") == 9
        assert mastodon_length("한글 " + FAMILY + " " + LONG_URL) == 3 + 2 + 23

    def test_mastodon_limit_follows_the_instance(self) -> None:
        assert mastodon_rule().limit == 500
        assert mastodon_rule(11_000).limit == 11_000

    def test_urls_found_without_trailing_punctuation(self) -> None:
        text = "See https://unpog.org/en/a/. And (https://x.com/b)"
        assert [text[s:e] for s, e in find_urls(text)] == ["https://unpog.org/en/a/", "https://x.com/b"]


class TestHashtags:
    def test_spaces_are_removed_and_korean_is_kept(self) -> None:
        assert hashtags(["Public Service", "공공 서비스", "e-Government", "UNPOG"]) == [
            "#PublicService", "#공공서비스", "#eGovernment", "#UNPOG"]

    def test_duplicates_and_numbers_are_dropped(self) -> None:
        assert hashtags(["UNPOG", "unpog", "2024", "SDG 16"]) == ["#UNPOG", "#SDG16"]


def _words(text: str) -> list[str]:
    return text.split()


class TestShortening:
    @pytest.mark.parametrize("limit", range(20, 200, 7))
    def test_never_cuts_a_word_url_hashtag_or_syllable_and_never_exceeds(self, limit: int) -> None:
        rule = LengthRule("x", limit, x_weighted_length)
        short = shorten_to_fit(KOREAN_TEXT, rule.fits)
        assert rule.fits(short)
        if not short:
            return
        assert short.endswith("…")
        kept = _words(short[:-1])
        original = _words(KOREAN_TEXT)
        # every word but the last is whole and in order; the last is whole, minus trailing punctuation
        assert kept[:-1] == original[: len(kept) - 1]
        assert original[len(kept) - 1].startswith(kept[-1])
        assert original[len(kept) - 1].rstrip(".,") == kept[-1].rstrip(".,")

    def test_text_that_fits_is_unchanged(self) -> None:
        assert shorten_to_fit("짧은 글", X_RULE.fits) == "짧은 글"

    def test_one_word_too_long_gives_nothing_rather_than_half_a_word(self) -> None:
        assert shorten_to_fit("가" * 200, X_RULE.fits) == ""


class TestThreads:
    def test_long_korean_text_becomes_numbered_parts_within_the_limit(self) -> None:
        text = " ".join([KOREAN_TEXT] * 4)
        parts = split_into_thread(text, X_RULE)
        assert len(parts) >= 3
        for index, part in enumerate(parts, start=1):
            assert x_weighted_length(part) <= 280
            assert part.endswith(f" {index}/{len(parts)}")
        rejoined = " ".join(re.sub(r" \d+/\d+$", "", part) for part in parts)
        assert _words(rejoined) == _words(text)  # nothing lost, nothing cut

    def test_a_text_that_fits_is_one_post_without_a_number(self) -> None:
        assert split_into_thread("짧은 글 " + LONG_URL, X_RULE) == ["짧은 글 " + LONG_URL]

    def test_a_word_longer_than_a_post_is_split_between_syllables(self) -> None:
        parts = split_into_thread("가나다" * 100, X_RULE)
        assert all(x_weighted_length(part) <= 280 for part in parts)
        assert "".join(re.sub(r" \d+/\d+$", "", part) for part in parts) == "가나다" * 100

    def test_parts_prefer_to_end_with_a_sentence(self) -> None:
        sentence = "공공기관의 역량을 강화하는 방안을 논의했습니다."
        parts = split_into_thread(" ".join([sentence] * 12), X_RULE)
        assert all(re.sub(r" \d+/\d+$", "", part).endswith("습니다.") for part in parts)


class TestFormatterWithTemplates:
    def test_korean_post_links_the_korean_article_with_korean_hashtags(self, site) -> None:
        article = site.articles().story("2024-unpsf-incheon").get("ko")
        [post] = SocialFormatter(site.templates, "x", X_RULE).posts(article)
        assert article.url in post.text and "/ko/" in article.url
        assert "#유엔공공행정포럼" in post.text
        assert post.length == x_weighted_length(post.text) <= post.limit == 280
        assert post.text.startswith(article.title)

    def test_shortening_keeps_title_url_and_ends_the_summary_with_an_ellipsis(self, site) -> None:
        article = site.articles().story("2024-unpsf-incheon").get("en")
        [post] = SocialFormatter(site.templates, "x", X_RULE, long_text="shorten").posts(article)
        assert post.length <= 280
        assert article.title in post.text and article.url in post.text
        assert "…" in post.text

    def test_thread_mode_posts_the_whole_summary(self, site) -> None:
        article = site.articles().story("2024-unpsf-incheon").get("en")
        posts = SocialFormatter(site.templates, "x", X_RULE, long_text="thread").posts(article)
        assert len(posts) > 1
        assert [p.part for p in posts] == list(range(1, len(posts) + 1))
        assert all(p.parts == len(posts) and p.length <= 280 for p in posts)
        assert article.url in posts[0].text
        assert "climate action." in " ".join(p.text for p in posts)

    def test_mastodon_post_has_every_hashtag_and_fits_a_small_instance(self, site) -> None:
        article = site.articles().story("2024-unpsf-incheon").get("en")
        [post] = SocialFormatter(site.templates, "mastodon", mastodon_rule()).posts(article)
        assert "#DigitalGovernment" in post.text and post.length <= 500
        [small] = SocialFormatter(site.templates, "mastodon", mastodon_rule(150)).posts(article)
        assert small.length <= 150 and article.url in small.text

    def test_machine_translation_is_labelled_in_the_post_language(self, site, write_article) -> None:
        write_article("machine-made", "ko", "기계 번역 기사", "요약입니다.", ["행정"],
                      extra="translation:\n  status: machine\n  source: en\n")
        article = site.articles().story("machine-made").get("ko")
        [post] = SocialFormatter(site.templates, "x", X_RULE).posts(article)
        assert "(기계 번역)" in post.text


def test_every_x_and_mastodon_setting_is_documented_in_env_example() -> None:
    from pathlib import Path

    from publisher.channels.mastodon import MastodonChannel
    from publisher.channels.x import XChannel
    from publisher.settings import SOCIAL_SETTINGS

    documented = (Path(__file__).resolve().parents[2] / ".env.example").read_text(encoding="utf-8")
    for setting in (*XChannel.settings, *MastodonChannel.settings, *SOCIAL_SETTINGS):
        assert setting.help.strip()
        # the _EN_/_KO_ variants are documented once, by the naming scheme
        general = re.sub(r"^(X|MASTODON)_(EN|KO)_", r"\1_", setting.name)
        assert f"# {general}=" in documented, general
    assert "<PLATFORM>_KO_<FIELD>" in documented
