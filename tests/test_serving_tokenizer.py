"""The serving tokenizer (no TensorFlow) gives transformers' packed inputs: ids, segment ids and
truncation, for texts and pairs, on every real comment (raw and cleaned), the tokenizer tests' edge
cases and random strings from every character class; and the in-graph tokenizer's packing too."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import reference_tokenizer
from test_tokenizer import EDGE_CASES, random_texts

from kcbert_tf.text.cleaning import clean
from kcbert_tf.text.serving_tokenizer import ServingTokenizer
from kcbert_tf.text.vocab import read_vocab

pytestmark = pytest.mark.slow  # about 50,000 texts through both tokenizers, several ways


@pytest.fixture(scope="module")
def texts(news_comments):
    raw = news_comments.read_text(encoding="utf-8").split("\n")[:-1]
    return raw + [clean(text) for text in raw] + EDGE_CASES + random_texts(2000, 7)


@pytest.fixture(scope="module")
def reference(kcbert_vocab, tmp_path_factory):
    return reference_tokenizer(kcbert_vocab, tmp_path_factory.mktemp("hf"))


def transformers_packed(reference, texts, pairs, max_length):
    encoded = reference(texts, pairs, truncation=True, max_length=max_length, padding=True, return_tensors="np")
    return {"token_ids": encoded["input_ids"], "segment_ids": encoded["token_type_ids"],
            "padding_mask": encoded["attention_mask"]}


def assert_same(ours: dict, theirs: dict) -> None:
    for name in ("token_ids", "segment_ids", "padding_mask"):
        width = theirs[name].shape[1]
        assert ours[name].shape[1] == max(width, 2), name
        np.testing.assert_array_equal(ours[name][:, :width], theirs[name], err_msg=name)


@pytest.mark.parametrize("max_length", [300, 64, 12])
def test_texts_pack_to_transformers_ids(kcbert_vocab, reference, texts, max_length):
    tokenizer = ServingTokenizer(read_vocab(kcbert_vocab), max_length)
    for start in range(0, len(texts), 4096):
        batch = texts[start:start + 4096]
        assert_same(tokenizer.pack(batch), transformers_packed(reference, batch, None, max_length))


@pytest.mark.parametrize("max_length", [300, 40, 9])
def test_pairs_truncate_as_transformers_longest_first(kcbert_vocab, reference, texts, max_length):
    tokenizer = ServingTokenizer(read_vocab(kcbert_vocab), max_length)
    pairs = texts[:]
    random.Random(max_length).shuffle(pairs)
    for start in range(0, len(texts), 4096):
        a, b = texts[start:start + 4096], pairs[start:start + 4096]
        assert_same(tokenizer.pack(a, b), transformers_packed(reference, a, b, max_length))


def test_the_in_graph_tokenizer_packs_the_same(kcbert_vocab, texts):
    """What the Keras model saw in training (the in-graph packing) is what a LiteRT model is fed."""
    import tensorflow as tf

    from kcbert_tf.text.model_inputs import pack_pair, pack_single
    from kcbert_tf.text.tokenizer import load_tokenizer

    word_piece = load_tokenizer(kcbert_vocab)
    tokenizer = ServingTokenizer(read_vocab(kcbert_vocab), 64)
    sample = texts[::7][:3000]
    graph = {name: value.numpy() for name, value in pack_single(word_piece, tf.constant(sample), 64).items()}
    assert_same(tokenizer.pack(sample), graph)
    pairs = sample[::-1]
    graph = {name: value.numpy() for name, value in pack_pair(word_piece, tf.constant(sample), tf.constant(pairs), 64).items()}
    assert_same(tokenizer.pack(sample, pairs), graph)


def test_an_empty_batch_and_a_bad_vocab(tmp_path):
    tokenizer = ServingTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], 8)
    assert tokenizer.pack([])["token_ids"].shape == (0, 2)
    from kcbert_tf.text.vocab import VocabError

    with pytest.raises(VocabError, match="my-vocab.txt"):
        ServingTokenizer(["[UNK]", "[PAD]"], 8, source="my-vocab.txt")
