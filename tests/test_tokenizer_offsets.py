"""Token character offsets against transformers' ``return_offsets_mapping=True``, span for span."""

from __future__ import annotations

import pytest

from conftest import reference_tokenizer, shared_file
from kcbert_tf.text.cleaning import clean
from kcbert_tf.text.tokenizer import KcBertWordPiece, load_tokenizer

ZWSP = "\u200b"

TRAPS = [
    "",
    " ",
    ZWSP,
    ZWSP * 3 + "\x00\ufeff\ue000",  # only removed characters
    "\t\n\r\u3000\u00a0",
    # special tokens in and around words, unterminated, broken by a removed character
    "[MASK]",
    "좋아[MASK]요",
    "[MASK]좋아요",
    "좋아요[MASK]",
    "a[MASK]b [SEP]c[CLS] [PAD][UNK]",
    "[[MASK]]",
    "[MASK",
    "좋아 [MASK",
    "MASK]",
    "[mask] [Mask]",
    "[MA\u200bSK]",
    "\x00[MASK]\x00",
    "\u200b[MASK]\u200b",
    # removed characters at the start, middle and end of words, and alone
    "\u200b가나다",
    "가나\u200b다",
    "가나다\u200b",
    "가 \u200b 나",
    "zero\u200bwidth\u200djoiner\ufeffbom\u00ad",
    "제어\x00문자\x01\x7f\x9f여기",
    "사용\ue000자\uf8ff영역 \U000f0000끝",
    "대체\ufffd문자",
    # whitespace of every kind
    "가\t나\n다\r라\u3000마\u00a0바\u2006사\u2028아\u202f자",
    "  앞뒤 공백  ",
    # emoji, Hanja, punctuation, astral characters
    "좋아요👍🏻👍🏻 최고",
    "가족👨‍👩‍👧사진 하트❤️뿅",
    "漢字와 한글 混用",
    "정치(政治)이야기",
    "한國어",
    "!!!???...,,,~~~ ㅋㅋ!!",
    "(괄호)「인용」『책』",
    "𠀀가𠀁 나𪜀",
    "😂😂😂 😂 x😂y",
    "\U00010000x",
    # long words
    "ㅋ" * 100,
    "ㅋ" * 101,
    "ㅋ" * 101 + " 좋아",
    "가" * 100 + " 나",
    "a" * 101,
    "😂" * 101,
    "a\u200b" * 101,  # 101 kept characters, 202 in the text
    "ㅋ" * 50 + ZWSP * 60 + "ㅋ" * 50,  # 100 kept characters
    # unknown words and characters
    "ﷺ ꧁꧂ ᚠᛇᚻ",
    "가\u0301 café naïve",
    "ＡＢＣ１２３ 전각！？",
    "disagreeing\u2e43punct\u166dhere",
    "URL http://example.com/a?b=c&d=e 끝",
]


def random_texts(count: int, seed: int) -> list[str]:
    """test_tokenizer's random strings, with the traps of offsets too: an unterminated [MASK, a NUL
    (tensorflow-text's regex split stops at one), removed characters inside a long word."""
    from test_tokenizer import random_texts as mixed

    return mixed(count, seed, extra_pools=(["[MASK", "\x00", "a\u200b" * 51, "가" * 60],))


def klue_ner_sentences() -> list[str]:
    """The KLUE-NER sentences, rebuilt from their one-character lines."""
    sentences, chars = [], None
    for line in shared_file("klue-ner/train.tsv").read_text(encoding="utf-8").split("\n"):
        if line.startswith("## klue-ner"):
            chars = []
        elif line.startswith("##"):
            continue
        elif line == "":
            if chars is not None:
                sentences.append("".join(chars))
            chars = None
        else:
            chars.append(line.rsplit("\t", 1)[0])
    if chars:
        sentences.append("".join(chars))
    return sentences


@pytest.fixture(scope="module")
def kcbert(kcbert_vocab, tmp_path_factory):
    reference = reference_tokenizer(kcbert_vocab, tmp_path_factory.mktemp("hf"))
    return load_tokenizer(kcbert_vocab), reference


@pytest.fixture(scope="module")
def shared_texts(news_comments):
    raw = news_comments.read_text(encoding="utf-8").split("\n")[:-1]
    return raw + [clean(text) for text in raw]


def assert_same_offsets(tokenizer, reference, texts):
    """Ids and offsets equal to transformers' for every text, and ids equal to ``encode()``'s."""
    got = tokenizer.encode_with_offsets(texts)
    assert len(got) == len(texts)
    encoded = reference(texts, add_special_tokens=False, return_offsets_mapping=True)
    expected = [
        (ids, [tuple(span) for span in spans])
        for ids, spans in zip(encoded["input_ids"], encoded["offset_mapping"])
    ]
    mismatches = [
        (text, want, have)
        for text, want, have in zip(texts, expected, got)
        if want != have
    ]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, e.g. {mismatches[:3]}"
    ids = [ids for ids, _ in got]
    assert ids == tokenizer.encode(texts)
    return got


def test_every_shared_comment_raw_and_cleaned(kcbert, shared_texts):
    tokenizer, reference = kcbert
    assert len(shared_texts) == 48_000
    got = assert_same_offsets(tokenizer, reference, shared_texts)
    assert sum(len(ids) for ids, _ in got) > 900_000


def test_klue_ner_sentences(kcbert):
    tokenizer, reference = kcbert
    sentences = klue_ner_sentences()
    assert len(sentences) == 4000
    assert sentences[0].startswith("경찰은 또 성매매 알선 자금을")
    assert_same_offsets(tokenizer, reference, sentences)


def test_traps(kcbert):
    tokenizer, reference = kcbert
    got = assert_same_offsets(tokenizer, reference, TRAPS)
    by_text = dict(zip(TRAPS, got))
    # A few spelled out, so a failure reads plainly.
    assert by_text["좋아[MASK]요"][1][1] == (2, 8)
    assert by_text["ㅋ" * 101] == ([1], [(0, 101)])
    assert by_text["가나\u200b다"][1][0][0] == 0 and by_text["가나\u200b다"][1][-1][1] == 4
    assert by_text["😂😂😂 😂 x😂y"][1][-1][1] == len("😂😂😂 😂 x😂y")
    assert by_text[ZWSP * 3 + "\x00\ufeff\ue000"] == ([], [])


@pytest.mark.parametrize("seed", range(2))
def test_random_strings_from_every_character_class(kcbert, seed):
    tokenizer, reference = kcbert
    assert_same_offsets(tokenizer, reference, random_texts(1500, seed))


def test_small_vocab_spans_slice_the_text():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ", "좋", "##아", "!"]
    tokenizer = KcBertWordPiece(vocab)
    text = "ㅋㅋ\u200b 좋\u200b아!!😂 [MASK]\t좋"
    ((ids, spans),) = tokenizer.encode_with_offsets([text])
    assert ids == tokenizer.encode([text])[0] == [5, 6, 7, 8, 8, 1, 4, 6]
    assert [text[start:end] for start, end in spans] == [
        "ㅋㅋ", "좋", "아", "!", "!", "😂", "[MASK]", "좋"
    ]


def test_runs_in_tf_function_and_tf_data_tracing_once(kcbert):
    import tensorflow as tf

    tokenizer, _ = kcbert
    texts = TRAPS + ["배우들 연기가 정말 좋았어요 ㅋㅋ"] * 3
    expected = tokenizer.encode_with_offsets(texts)
    function = tokenizer.tokenize_with_offsets
    traces = function.experimental_get_tracing_count()
    assert traces == 1

    @tf.function
    def outer(batch):
        ids, starts, ends = tokenizer.tokenize_with_offsets(batch)
        return ids.to_tensor(-1), starts.to_tensor(-1), ends.to_tensor(-1)

    for size in (1, 7, len(texts)):
        ids, starts, ends = outer(tf.constant(texts[:size]))
        assert ids.shape[0] == size
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(5).map(function)
    got = []
    for ids, starts, ends in dataset:
        for row_ids, row_starts, row_ends in zip(ids.to_list(), starts.to_list(), ends.to_list()):
            got.append((row_ids, list(zip(row_starts, row_ends))))
    assert got == expected
    assert function.experimental_get_tracing_count() == traces
