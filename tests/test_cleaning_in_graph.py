"""`clean_in_graph` against `cleaning.clean` (the reference): real comments, every code point,
hand-made cases for each place where RE2 differs from Python's `re`, and a seeded fuzz."""

from __future__ import annotations

import random

import emoji
import pytest
import tensorflow as tf

from kcbert_tf.text.cleaning import clean
from kcbert_tf.text.cleaning_in_graph import clean_in_graph


def in_graph(texts: list[str]) -> list[str]:
    return [out.decode("utf-8") for out in clean_in_graph(tf.constant(texts, tf.string)).numpy()]


def assert_same_as_clean(texts: list[str]) -> None:
    got = in_graph(texts)
    mismatches = [(text, out, clean(text)) for text, out in zip(texts, got) if out != clean(text)]
    assert len(got) == len(texts)
    assert not mismatches, f"{len(mismatches)} of {len(texts)}: {mismatches[:5]}"


# Hangul and a parenthesis after a URL, Hanja next to Hangul, unicode whitespace, repeat runs:
# the reference outputs that make the traps real (what a plain RE2 translation gets wrong).
TRAPS = [
    ("https://naver.com에서 봤다", "https://naver.com에서 봤다"),  # Python's \b knows Hangul
    ("https://naver.com(에서", "에서"),
    ("http://x.y_가", "http://x.y_가"),
    ("http://x.y(ℹ", "ℹ"),  # ℹ (U+2139) is a word character and an emoji
    ("http://a.comhttp://b.com", "http://a.com"),
    ("https://a.abcdefg 끝", "https://a.abcdefg 끝"),  # a 7-letter TLD is no URL
    ("ㅋㅋㅋ", "ㅋㅋㅋ"),
    ("ㅋㅋㅋㅋㅋ", "ㅋㅋ"),
    ("1111", "11"),
    ("____", "__"),
    ("😂😂😂😂😂", "😂😂😂😂😂"),  # emoji are no word characters
    ("ℹℹℹℹℹ", "ℹℹ"),
    ("\x1c가\x0b나\x1f", "가 나"),
    ("가漢字나", "가 나"),
]

HAND_MADE = [text for text, _ in TRAPS] + [
    # URLs followed by Hangul, '(' or ')' then Hangul, the end, a space, '/', other characters
    "https://naver.com(에서", "https://naver.co(에서", "https://a.b(가", "https://a.b)가",
    "https://a.b()_", "https://a.b(_가", "https://a.b((", "https://a.b(( 가", "http://x.y-가",
    "http://x.yℹ", "http://x.ℹ", "링크 https://naver.com", "https://naver.com 좋아",
    "https://naver.com/", "https://naver.com/가", "https://naver.com/news?id=1&a=b 좋아",
    "https://naver.com\x1c가", "https://naver.com\x0b", "https://naver.com😂", "https://naver.com!가",
    "(https://naver.com)", "https://naver.com.", "https://naver.com..가",
    # the optional parts: s?, (www\.)?
    "http://www.daum.net/", "http://www.", "http://www.a", "http://www.가", "https://www.x.kr",
    "httpss://a.b", "https:/a.b", "http://.a", "http://a.", "http://a..b", "HTTP://a.b",
    # two URLs, URLs glued together, TLD and host lengths
    "http://a.com http://b.com 둘", "http://a.comhttp://b.com", "http://a.com가http://b.com",
    "https://a.abcdefg", "https://a.abcdef", "https://a.b.abcdefg", "https://a.abcdefg(가",
    "http://" + "a" * 256 + ".com", "http://" + "a" * 257 + ".com",
    "http://" + "a" * 300 + ".b.com 가",
    # repeats
    "ㅋㅋㅋㅋ", "ㅋㅋ", "ㅋㅋㅋㅋ漢ㅋㅋㅋㅋ", "ㅋㅋㅋㅋ ㅋㅋㅋㅋㅋㅋ", "하하하하", "가가가가가나나나",
    "aaaAAAA", "!!!!!!", "....", "ㅋㅋㅋㅋ😂😂😂😂😂", "111122223333", "___a____",
    # whitespace at the ends and inside
    "\x0b가\x0b", "\x1c가\x1f", "\t\n가 \t\n 나\x0b\x0c\r다\x1c\x1d\x1e\x1f", "가\u00a0나\u3000다",
    "\u2028가\u2029", "   ", "\x0b", "\x1c\x1d", " \x0b \x1c ",
    # other scripts next to Hangul, only-removed text, empty text
    "漢字가", "Привет가", "é가é", "ﾟ가ｶﾅ", "", "漢字", "é", "\ufffd", "\ue000가",
    # emoji: ZWJ sequences, skin tones, keycaps, flags, tags
    "👨\u200d👩\u200d👧\u200d👦", "👨\u200d👩\u200d👧\u200d👦" * 4, "👍🏻👍🏻👍🏻👍🏻", "👍🏻", "🏻🏻🏻🏻",
    "#\ufe0f\u20e31\ufe0f\u20e3", "1\ufe0f\u20e3" * 4, "🇰🇷🇰🇷",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "\u200d\u200d\u200d\u200d", "\ufe0f\ufe0f\ufe0f\ufe0f",
    # NUL, BOM
    "\ufeffabc", "a\x00\x00\x00\x00b", "\x00",
]


@pytest.mark.parametrize("text, expected", TRAPS)
def test_the_traps_are_real(text, expected):
    assert clean(text) == expected


def test_hand_made_cases():
    assert_same_as_clean(HAND_MADE)


def test_every_shared_comment(news_comments):
    lines = news_comments.read_bytes().split(b"\n")
    assert lines.pop() == b""  # The file ends with a newline.
    assert len(lines) == 24_000
    assert_same_as_clean([line.decode("utf-8") for line in lines])


def test_every_code_point_between_letters():
    """Step 1 for each code point (surrogates aside): kept, or a space."""
    code_points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    chunks = [code_points[i : i + 512] for i in range(0, len(code_points), 512)]
    assert_same_as_clean(["".join(f"x{chr(cp)}" for cp in chunk) for chunk in chunks])


# The card's kept characters, written out independently of the module's tables.
_KEPT = sorted(
    set(map(chr, range(0x80)))
    | set(" .,?!/@$%~％·∼()")
    | {chr(cp) for cp in range(ord("ㄱ"), ord("ㅣ") + 1)}
    | {chr(cp) for cp in range(ord("가"), ord("힣") + 1)}
    | {character for key in emoji.EMOJI_DATA for character in key}
)


def test_every_kept_character_after_a_url_and_in_runs():
    """The URL boundary and the repeat squeeze for each character that survives step 1."""
    texts = []
    for c in _KEPT:
        texts += [f"http://a.com{c}가", f"http://a.co({c}가", f"http://a.com{c}"]
        texts.append(f"a{c * 3}b{c * 4} {c * 5}")
    assert_same_as_clean(texts)


_FUZZ_ALPHABET = (
    list("htps:/w.a1()_-?=&#%~@+m가나ㅋㅋ漢é \x0b\x1c\t\n\xa0\u3000!,")
    + ["http://", "https://", "www.", ".com", ".kr", "😂", "👍", "\U0001F3FB", "\u200d", "\ufe0f"]
    + ["\u20e3", "ℹ"]
)


def test_seeded_fuzz():
    rng = random.Random(20240607)
    texts = ["".join(rng.choices(_FUZZ_ALPHABET, k=rng.randint(0, 40))) for _ in range(20_000)]
    assert_same_as_clean(texts)


def test_invalid_utf8_is_cleaned_as_if_decoded_with_replacement():
    raws = [
        b"\xff", b"a\xffb", b"\xed\xa0\x80\xea\xb0\x80", b"\xc0\xaf", b"\xe2\x82",
        b"\xf4\x90\x80\x80x",
        b"http://a.com\xff\xfe\xea\xb0\x80", "ㅋㅋ".encode() + b"\x80" + "ㅋㅋㅋㅋ".encode(),
    ]
    got = clean_in_graph(tf.constant(raws)).numpy().tolist()
    assert got == [clean(raw.decode("utf-8", "replace")).encode("utf-8") for raw in raws]


def test_traced_once_in_a_tf_function_and_in_tf_data():
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def cleaned(texts):
        traces.append(1)
        return clean_in_graph(texts)

    expected = [clean(text).encode("utf-8") for text in HAND_MADE]
    assert cleaned(tf.constant(HAND_MADE[:5])).numpy().tolist() == expected[:5]
    assert cleaned(tf.constant(HAND_MADE)).numpy().tolist() == expected
    assert cleaned(tf.constant([], tf.string)).numpy().tolist() == []
    assert len(traces) == 1

    dataset = tf.data.Dataset.from_tensor_slices(HAND_MADE)
    assert [t.numpy() for t in dataset.map(clean_in_graph)] == expected
    batched = dataset.batch(7).map(clean_in_graph)
    assert [t for batch in batched.as_numpy_iterator() for t in batch.tolist()] == expected


def test_in_a_saved_model_signature(tmp_path):
    module = tf.Module()
    spec = tf.TensorSpec([None], tf.string)
    module.clean = tf.function(clean_in_graph, input_signature=[spec])
    tf.saved_model.save(module, str(tmp_path), signatures={"clean": module.clean})
    signature = tf.saved_model.load(str(tmp_path)).signatures["clean"]
    (out,) = signature(tf.constant(HAND_MADE)).values()
    assert out.numpy().tolist() == [clean(text).encode("utf-8") for text in HAND_MADE]


def test_shape_is_kept():
    texts = ["ㅋㅋㅋㅋ 漢", " https://a.com 가", "", "\x1c나나나나나"]
    expected = [clean(text).encode("utf-8") for text in texts]
    assert clean_in_graph(tf.constant(texts)).numpy().tolist() == expected
    rank_2 = clean_in_graph(tf.constant([texts[:2], texts[2:]]))
    assert rank_2.shape == (2, 2) and rank_2.numpy().tolist() == [expected[:2], expected[2:]]
    assert clean_in_graph(tf.constant(texts[0])).numpy() == expected[0]  # a scalar, too
    assert clean_in_graph(tf.zeros([2, 0], tf.string)).shape == (2, 0)
