"""`clean()` against the KcBERT model card's formula, written out independently here."""

from __future__ import annotations

import re

import emoji
import pytest
from soynlp.normalizer import repeat_normalize

from kcbert_tf.text.cleaning import clean

# The card's characters, as a plain-Python predicate instead of one big character class.
_KEPT_PUNCTUATION = set(" .,?!/@$%~％·∼()")
_EMOJI_CHARACTERS = {character for key in emoji.EMOJI_DATA for character in key}
# The card's URL pattern, copied from the card.
_CARD_URL = re.compile(
    r"https?:\/\/(www\.)?[-a-zA-Z0-9@:%._\+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b([-a-zA-Z0-9()@:%_\+.~#?&//=]*)"
)


def _kept(character: str) -> bool:
    return (
        character in _KEPT_PUNCTUATION
        or ord(character) <= 0x7F
        or "ㄱ" <= character <= "ㅣ"
        or "가" <= character <= "힣"
        or character in _EMOJI_CHARACTERS
    )


def reference_clean(text: str) -> str:
    """The card's clean(): runs of other characters → one space, URLs out, strip, repeats ≤ 2."""
    out, in_run = [], False
    for character in text:
        if _kept(character):
            out.append(character)
            in_run = False
        elif not in_run:
            out.append(" ")
            in_run = True
    text = _CARD_URL.sub("", "".join(out)).strip()
    return repeat_normalize(text, num_repeats=2)


HAND_PICKED = [
    # (raw, expected by hand)
    ("ㅋㅋㅋㅋㅋ 진짜 웃기네", "ㅋㅋ 진짜 웃기네"),
    ("ㅋㅋㅋ 세 번은 그대로", "ㅋㅋㅋ 세 번은 그대로"),
    ("ㅠㅠㅠㅠㅠㅠ 슬프다", "ㅠㅠ 슬프다"),
    ("대박!!!!!! 진짜????", "대박!!!!!! 진짜????"),
    ("좋아요 👍🏻👍🏻 최고", "좋아요 👍🏻👍🏻 최고"),
    ("가족 👨‍👩‍👧 사진", "가족 👨‍👩‍👧 사진"),
    ("하트 ❤️ 뿅", "하트 ❤️ 뿅"),
    ("大韓民國 만세", "만세"),
    ("정치(政治) 이야기", "정치( ) 이야기"),
    ("링크 https://www.example.com/news?id=3 보세요", "링크 보세요"),
    ("http://a.bc 만", "만"),
    ("Samsung Galaxy S24 Ultra 샀음", "Samsung Galaxy S24 Ultra 샀음"),
    ("탭\t으로\t구분", "탭 으로 구분"),
    ("노브레이크\u00a0스페이스", "노브레이크 스페이스"),
    ("日本語とカタカナ 섞임", "섞임"),
    ("Привет 러시아", "러시아"),
    ("  앞뒤 공백  ", "앞뒤 공백"),
    ("ＡＢＣ 전각", "전각"),
    ("％ 전각 퍼센트 ∼ 물결 · 가운뎃점", "％ 전각 퍼센트 ∼ 물결 · 가운뎃점"),
    ("", ""),
]


@pytest.mark.parametrize("raw, expected", HAND_PICKED)
def test_hand_picked_cases(raw, expected):
    assert clean(raw) == expected
    assert reference_clean(raw) == expected


def test_every_shared_comment_matches_the_card_formula(news_comments):
    lines = news_comments.read_bytes().split(b"\n")
    assert lines.pop() == b""  # The file ends with a newline.
    assert len(lines) == 24_000
    mismatches = []
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8")
        if clean(text) != reference_clean(text):
            mismatches.append((number, text))
    assert not mismatches, mismatches[:5]


def test_the_design_s_import_path_is_the_one_clean():
    """DESIGN.md's fixed point: ``kcbert_tf.cleaning.clean`` (defined in kcbert_tf.text.cleaning)."""
    from kcbert_tf import cleaning
    from kcbert_tf.text import cleaning as defined

    assert cleaning.clean is defined.clean


def test_the_written_out_repeat_normalize_is_soynlp_s(news_comments):
    """kcbert_tf's repeat_normalize (soynlp's, without importing soynlp's scikit-learn) against
    soynlp's own on every shared comment, raw, and on random strings built to have repeats."""
    import random
    import subprocess
    import sys

    from kcbert_tf.text.cleaning import repeat_normalize as ours

    texts = news_comments.read_text(encoding="utf-8").split("\n")
    rng = random.Random(0)
    alphabet = ["ㅋ", "ㅎ", "ㅠ", "가", "a", "1", "_", "!", "?", " ", "\t", "\u00a0", "\n", "😂", "👍🏻", "漢", "é"]
    texts += ["".join(rng.choice(alphabet) * rng.choice([1, 2, 3, 4, 5, 9]) for _ in range(rng.randint(0, 12)))
              for _ in range(20_000)]
    for repeats in (0, 1, 2, 3):
        assert [ours(t, repeats) for t in texts] == [repeat_normalize(t, num_repeats=repeats) for t in texts]
    imported = subprocess.run([sys.executable, "-c", "import sys, kcbert_tf.text.cleaning; print(sorted(sys.modules))"],
                              capture_output=True, text=True, check=True).stdout
    assert "soynlp" not in imported and "sklearn" not in imported
