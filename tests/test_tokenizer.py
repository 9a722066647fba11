"""The in-graph tokenizer against transformers' AutoTokenizer, id for id."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import pytest

from conftest import reference_tokenizer
from kcbert_tf.text import bert_char_classes
from kcbert_tf.text.cleaning import clean
from kcbert_tf.text.tokenizer import KcBertWordPiece, load_tokenizer
from kcbert_tf.text.vocab import VocabError, read_vocab

EDGE_CASES = [
    "",
    " ",
    "\t\n\r ",
    "ㅋㅋㅋㅋㅋ",
    "ㅋ" * 100,
    "ㅋ" * 101,
    "가" * 40,  # 120 bytes, 40 characters: one word for transformers, not too long
    "가" * 100 + " 나",
    "가" * 101 + " 나",
    "a" * 100,
    "a" * 101,
    "😂" * 30,  # 120 bytes
    "😂" * 101,
    "좋아요👍🏻👍🏻 최고",
    "가족👨‍👩‍👧사진",
    "하트❤️뿅",
    "ㄱㄴㄷ ㅏㅑㅓ ㅣ",
    "제어\x00문자\x01\x7f\x9f여기",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "대체\ufffd문자",
    "café naïve e\u0301 Ångström",
    "ＡＢＣ１２３ 전각！？",
    "U+2006:\u2006six-per-em NBSP:\u00a0ideographic:\u3000end",
    "漢字와 한글 混用 𠀀",
    "정치(政治) 이야기",
    "hello [MASK] world",
    "a[MASK]b",
    "[mask] [MASK][SEP][CLS][PAD][UNK]",
    "[MA\u200bSK]",
    "[[MASK]]",
    "private\ue000use\ue004\uf8ff",
    "disagreeing\u2e43punct\u166dhere",
    "Samsung Galaxy S24 Ultra 샀음 ㅋㅋ",
    "URL http://example.com/a?b=c&d=e 끝",
    "가나다라마바사아자차카타파하" * 3,
    "!!!???...,,,~~~",
    "ﷺ ꧁꧂ ᚠᛇᚻ ᓀᐦᐃᔭᐍᐏᐣ ภาษาไทย العربية",
]


def assert_same_ids(tokenizer, reference, texts, exact_path_only=False):
    expected = reference(texts, add_special_tokens=False)["input_ids"]
    if exact_path_only:
        import tensorflow as tf

        got = tokenizer._tokenize_exact(tf.constant(texts, dtype=tf.string)).to_list()
    else:
        got = tokenizer.encode(texts)
    mismatches = [(text, want, have) for text, want, have in zip(texts, expected, got) if want != have]
    assert not mismatches, mismatches[:3]
    return expected


@pytest.fixture(scope="module")
def kcbert(kcbert_vocab, tmp_path_factory):
    return load_tokenizer(kcbert_vocab), reference_tokenizer(kcbert_vocab, tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="module")
def shared_texts(news_comments):
    raw = news_comments.read_text(encoding="utf-8").split("\n")[:-1]
    return raw + [clean(text) for text in raw]


def random_texts(count: int, seed: int, extra_pools: tuple = ()) -> list[str]:
    """Strings drawn from every character class, special tokens and long runs mixed in (and from
    ``extra_pools``, lists of more pieces)."""
    rng = random.Random(seed)
    pools = [
        [chr(lo) for lo, _ in table] + [chr(hi) for _, hi in table]
        for table in (
            bert_char_classes.REMOVED,
            bert_char_classes.WHITESPACE,
            bert_char_classes.CHINESE,
            bert_char_classes.PUNCTUATION,
            bert_char_classes.FAST_WORDPIECE_DISAGREES,
        )
    ]
    pools.append([chr(c) for c in range(0xAC00, 0xAC00 + 400)] + list("ㄱㅋㅎㅏㅠ abcXYZ0189"))
    pools.append(["😂", "👍🏻", "👨‍👩‍👧", "❤️", "[MASK]", "[SEP]", "[CLS]", "ㅋ" * 101, "가" * 50])
    pools.extend(extra_pools)
    texts = []
    for _ in range(count):
        pieces = [rng.choice(rng.choice(pools)) for _ in range(rng.randrange(0, 25))]
        texts.append("".join(pieces))
    return texts


def test_every_shared_comment_raw_and_cleaned_gives_transformers_ids(kcbert, shared_texts):
    tokenizer, reference = kcbert
    expected = assert_same_ids(tokenizer, reference, shared_texts)
    assert sum(map(len, expected)) > 900_000


def test_the_exact_path_alone_gives_transformers_ids(kcbert, shared_texts):
    tokenizer, reference = kcbert
    assert_same_ids(tokenizer, reference, shared_texts[::7] + EDGE_CASES, exact_path_only=True)


def test_edge_cases_give_transformers_ids(kcbert):
    tokenizer, reference = kcbert
    assert_same_ids(tokenizer, reference, EDGE_CASES)
    assert_same_ids(tokenizer, reference, EDGE_CASES, exact_path_only=True)


@pytest.mark.parametrize("seed", range(3))
def test_random_strings_from_every_character_class_give_transformers_ids(kcbert, seed):
    tokenizer, reference = kcbert
    texts = random_texts(2000, seed)
    assert_same_ids(tokenizer, reference, texts)
    assert_same_ids(tokenizer, reference, texts, exact_path_only=True)


def test_a_vocab_trained_here_gives_transformers_ids(shared_texts, tmp_path):
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    trainer.train_from_iterator(
        shared_texts[:24_000:3],
        vocab_size=3000,
        limit_alphabet=1000,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    trainer.save_model(str(tmp_path))
    vocab = tmp_path / "vocab.txt"
    tokenizer = load_tokenizer(vocab)
    reference = reference_tokenizer(vocab, tmp_path / "hf")
    assert_same_ids(tokenizer, reference, shared_texts + EDGE_CASES)


def test_works_in_tf_data_on_scalars_and_batches(kcbert):
    import tensorflow as tf

    tokenizer, reference = kcbert
    texts = EDGE_CASES + ["배우들 연기가 정말 좋았어요 ㅋㅋ"] * 3
    expected = reference(texts, add_special_tokens=False)["input_ids"]
    batched = tf.data.Dataset.from_tensor_slices(texts).batch(5).map(tokenizer)
    assert [ids for batch in batched for ids in batch.to_list()] == expected
    scalars = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer)
    assert [ids.numpy().tolist() for ids in scalars] == expected
    matrix = tokenizer(tf.constant([texts[:2], texts[2:4]]))
    assert matrix.to_list() == [expected[:2], expected[2:4]]


def test_saved_model_tokenizes_in_a_process_with_only_tensorflow(kcbert, tmp_path):
    import tensorflow as tf

    tokenizer, reference = kcbert
    module = tf.Module()
    module.tokenizer = tokenizer
    module.tokenize = tf.function(
        lambda texts: tokenizer.tokenize(texts).to_tensor(-1),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "sm"))
    texts = EDGE_CASES[:12] + ["오늘 경기 정말 최고였다 👍🏻"]
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # registers the ops
        loaded = tf.saved_model.load({str(tmp_path / "sm")!r})
        ids = loaded.tokenize(tf.constant(json.loads(sys.stdin.read())))
        print(json.dumps([[i for i in row if i >= 0] for row in ids.numpy().tolist()]))
        assert "kcbert_tf" not in sys.modules and "transformers" not in sys.modules
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == reference(texts, add_special_tokens=False)["input_ids"]


def test_config_round_trip(kcbert):
    tokenizer, _ = kcbert
    again = KcBertWordPiece.from_config(tokenizer.get_config())
    assert again.vocabulary == tokenizer.vocabulary
    assert again.encode(EDGE_CASES) == tokenizer.encode(EDGE_CASES)


@pytest.mark.slow
def test_char_class_tables_still_match_the_installed_libraries():
    probed = bert_char_classes.probe_char_classes()
    for name, ranges in probed.items():
        assert getattr(bert_char_classes, name) == ranges, f"{name}: run python -m kcbert_tf.text.bert_char_classes"


@pytest.mark.parametrize(
    "content, message",
    [
        ("[UNK]\n[PAD]\n[CLS]\n[SEP]\n[MASK]\na\n", "not \\['\\[PAD\\]'"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\na\n", "'a' is on lines 6 and 8"),
        ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\nb\n", "line 6 is empty"),
    ],
)
def test_bad_vocab_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VocabError, match=f"{path}.*{message}"):
        read_vocab(path)


def test_missing_or_undecodable_vocab(tmp_path):
    with pytest.raises(VocabError, match="no such vocab file"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_bytes(b"[PAD]\n\xff\n")
    with pytest.raises(VocabError, match="not UTF-8"):
        load_tokenizer(tmp_path)
