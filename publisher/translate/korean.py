"""Korean particles that depend on the noun before them (이/가, 을/를, 은/는, 과/와, 으로/로).

The model chose a particle for the placeholder it saw (``ZQ0``), not for the glossary term put back in its
place: "유엔거버넌스센터" ends in a vowel and takes 가/를/는/와/로, "인천" ends in a consonant and takes
이/을/은/과/으로. After a term is restored, the particle that follows it is made to agree.
"""

from __future__ import annotations

import re

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_RIEUL_FINAL = 8  # index of ㄹ among the final consonants: 로, not 으로

# particle after a final consonant, particle after a vowel
_PAIRS = (("이", "가"), ("을", "를"), ("은", "는"), ("과", "와"), ("으로", "로"))
_BY_FORM = {form: pair for pair in _PAIRS for form in pair}
# A particle is only rewritten when it ends the word or continues as a known particle (으로서, 과의, 은/는 ...);
# otherwise the syllable belongs to another word (가능, 이용, 은행, 과학, 로봇).
_PARTICLE = re.compile(
    r"^(?P<particle>으로|로|이|가|을|를|은|는|과|와)(?=$|[^\uac00-\ud7a3]|(?<=로)(?:서|써|부터|의|는|도|만)"
    r"|(?<=[과와])(?:의|는|도|만))"
)


def final_consonant(word: str) -> int | None:
    """Index of the final consonant of the word's last syllable (0: none), None if it is not Hangul."""
    stripped = word.rstrip()
    if not stripped:
        return None
    code = ord(stripped[-1])
    if not _HANGUL_FIRST <= code <= _HANGUL_LAST:
        return None
    return (code - _HANGUL_FIRST) % 28


def agree_particle(word: str, following: str) -> str:
    """``following`` with its leading particle made to agree with ``word``; unchanged when there is none."""
    final = final_consonant(word)
    match = _PARTICLE.match(following)
    if final is None or match is None:
        return following
    after_consonant, after_vowel = _BY_FORM[match["particle"]]
    if after_consonant == "으로":
        chosen = "로" if final in (0, _RIEUL_FINAL) else "으로"
    else:
        chosen = after_consonant if final else after_vowel
    return chosen + following[match.end():]
