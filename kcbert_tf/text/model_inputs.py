"""The model's inputs from raw strings, in the TensorFlow graph, with the ids transformers gives.

``[CLS] text [SEP]`` (:func:`pack_single`) and ``[CLS] a [SEP] b [SEP]`` (:func:`pack_pair`) for
batches of strings: the in-graph tokenizer's ids, truncated to ``max_seq_length`` the way
``transformers.AutoTokenizer(..., truncation=True, max_length=N)`` truncates (a text to ``N - 2``
ids, a pair to ``N - 3`` by its ``longest_first`` rule, :func:`trim_pair_lengths`), padded to the
longest row: ``token_ids``, ``segment_ids`` (0, then 1 for the second text) and ``padding_mask``,
int32 ``[B, L]``.  The SavedModel export and fine-tuning use them, so the model sees the same ids
in serving as in training.

Example:

>>> from kcbert_tf.text.tokenizer import KcBertWordPiece
>>> tokenizer = KcBertWordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아", "싫", "##어"])
>>> pack_pair(tokenizer, ["좋아 좋아"], ["싫어"], 6)["token_ids"].numpy().tolist()
[[2, 5, 6, 3, 7, 3]]
"""

from __future__ import annotations

import numpy as np

from kcbert_tf.errors import UserError

__all__ = [
    "KCBERT_MAX_POSITIONS", "MIN_INPUT_LENGTH", "check_sequence_length",
    "trim_pair_lengths", "pack_single", "pack_pair", "pack_question_context", "pad_to_length", "pack_fixed",
    "batches_by_length",
]

#: KcBERT's ``max_position_embeddings`` (configs/kcbert-base.json and -large.json): the longest
#: sequence its models take, and the default length limit of every stage that has one.
KCBERT_MAX_POSITIONS = 300

#: The shortest input with room for text: ``[CLS] a [SEP]`` (a pair needs one more).
MIN_INPUT_LENGTH = 3


def check_sequence_length(
    length: int, positions: int, *, source: str, subject: str | None = None,
    at_least: int = MIN_INPUT_LENGTH, remedy: str | None = None,
) -> None:
    """The one check of a sequence length against a model's positions, for every stage: a
    :class:`~kcbert_tf.errors.UserError` naming ``subject`` (default ``--max-seq-length N``), the
    limit's ``source`` and the fix when ``length`` is over ``positions`` or under ``at_least``.

    >>> check_sequence_length(301, 300, source="configs/kcbert-base.json")
    Traceback (most recent call last):
    ...
    kcbert_tf.errors.UserError: --max-seq-length 301 is more than max_position_embeddings 300 of configs/kcbert-base.json; pass 300 or less
    """
    subject = subject or f"--max-seq-length {length}"
    if length > positions:
        raise UserError(
            f"{subject} is more than max_position_embeddings {positions} of {source}; "
            f"{remedy or f'pass {positions} or less'}"
        )
    if length < at_least:
        raise UserError(f"{subject} leaves no room for text: it needs at least {at_least}; pass {at_least} to {positions}")


def trim_pair_lengths(length_a, length_b, budget):
    """How many ids of each text a pair keeps within ``budget``: transformers' ``longest_first``.

    This is the rule of the ``tokenizers`` library (what ``AutoTokenizer`` runs): when the pair
    does not fit, a shorter text that fits in half the budget is kept whole and the longer one
    gets the rest; otherwise each gets half, and an odd budget's extra id goes to the longer text
    (to the second on a tie).  tensorflow-text's trimmers differ from it: ``RoundRobinTrimmer``
    gives the extra id to the first text, ``ShrinkLongestTrimmer`` to the first on a tie.

    >>> def keep(a, b, budget):
    ...     return [int(n) for n in trim_pair_lengths(a, b, budget)]
    >>> keep(10, 10, 7), keep(12, 10, 7), keep(2, 30, 7), keep(2, 3, 7)
    ([3, 4], [4, 3], [2, 5], [2, 3])
    """
    import tensorflow as tf

    length_a = tf.convert_to_tensor(length_a)
    length_b = tf.cast(length_b, length_a.dtype)
    budget = tf.cast(budget, length_a.dtype)
    a_is_shorter = length_a <= length_b
    shorter = tf.minimum(length_a, length_b)
    half = budget // 2
    fits_in_half = 2 * shorter <= budget
    keep_shorter = tf.where(fits_in_half, shorter, half)
    keep_longer = budget - keep_shorter
    fits = length_a + length_b <= budget
    keep_a = tf.where(fits, length_a, tf.where(a_is_shorter, keep_shorter, keep_longer))
    keep_b = tf.where(fits, length_b, tf.where(a_is_shorter, keep_longer, keep_shorter))
    return keep_a, keep_b


def _truncate(ids, keep):
    """The first ``keep[i]`` ids of each row of a ragged ``[batch, (ids)]``."""
    import tensorflow as tf

    positions = tf.ragged.range(ids.row_lengths())
    return tf.ragged.boolean_mask(ids, positions < tf.expand_dims(keep, 1))


def _pack(segments, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """``[CLS] s0 [SEP] s1 [SEP] ...``, padded to the longest row: the model's inputs (int32)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    ids, segment_ids = tf_text.combine_segments(
        segments, start_of_sequence_id=cls_id, end_of_segment_id=sep_id
    )
    batch = ids.nrows()
    # At least 2 columns, so an empty batch still has a [CLS] column for the pooled output.
    length = tf.maximum(ids.bounding_shape(axis=1), 2)
    shape = tf.stack([batch, length])
    return {
        "token_ids": tf.cast(ids.to_tensor(default_value=pad_id, shape=shape), tf.int32),
        "segment_ids": tf.cast(segment_ids.to_tensor(default_value=0, shape=shape), tf.int32),
        "padding_mask": tf.cast(
            tf.ones_like(ids, dtype=tf.int32).to_tensor(default_value=0, shape=shape), tf.int32
        ),
    }


def pack_single(tokenizer, texts, max_seq_length: int) -> dict:
    """``[CLS] text [SEP]`` for a batch of strings, each truncated to ``max_seq_length - 2`` ids."""
    ids = tokenizer.tokenize(texts)
    ids = ids[:, : max_seq_length - 2]
    return _pack([ids], tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)


def pack_pair(tokenizer, texts_a, texts_b, max_seq_length: int) -> dict:
    """``[CLS] a [SEP] b [SEP]`` for two string batches, trimmed by :func:`trim_pair_lengths`."""
    ids_a = tokenizer.tokenize(texts_a)
    ids_b = tokenizer.tokenize(texts_b)
    keep_a, keep_b = trim_pair_lengths(ids_a.row_lengths(), ids_b.row_lengths(), max_seq_length - 3)
    segments = [_truncate(ids_a, keep_a), _truncate(ids_b, keep_b)]
    return _pack(segments, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)


def pack_question_context(tokenizer, questions, contexts, max_seq_length: int, max_query_length: int) -> dict:
    """``[CLS] question [SEP] context [SEP]`` for two string batches: the question cut to
    ``max_query_length`` ids, the context to the room left: the first window of question answering
    (:mod:`kcbert_tf.tasks.qa.features` cuts the same context into every window).

    >>> from kcbert_tf.text.tokenizer import KcBertWordPiece
    >>> tokenizer = KcBertWordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "어디", "서울", "은", "수도"])
    >>> pack_question_context(tokenizer, ["어디 어디"], ["서울 은 수도 수도"], 7, 1)["token_ids"].numpy().tolist()
    [[2, 5, 3, 6, 7, 8, 3]]
    """
    import tensorflow as tf

    ids_q = tokenizer.tokenize(questions)[:, :max_query_length]
    ids_c = tokenizer.tokenize(contexts)
    room = max_seq_length - 3 - ids_q.row_lengths()
    segments = [ids_q, _truncate(ids_c, tf.maximum(room, 0))]
    return _pack(segments, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)


def pad_to_length(inputs: dict, max_seq_length: int) -> dict:
    """Packed inputs padded with zeros to exactly ``max_seq_length`` columns: static shapes, as
    TPUs need."""
    import tensorflow as tf

    padded = {}
    for name, value in inputs.items():
        value = tf.pad(value, [[0, 0], [0, max_seq_length - tf.shape(value)[1]]])
        value.set_shape([None, max_seq_length])
        padded[name] = value
    return padded


def pack_fixed(tokenizer, texts_a, texts_b, max_seq_length: int) -> dict:
    """:func:`pack_single` (``texts_b`` None) or :func:`pack_pair`, padded to exactly
    ``max_seq_length`` columns: static shapes, as TPUs need."""
    if texts_b is None:
        inputs = pack_single(tokenizer, texts_a, max_seq_length)
    else:
        inputs = pack_pair(tokenizer, texts_a, texts_b, max_seq_length)
    return pad_to_length(inputs, max_seq_length)


def batches_by_length(lengths, batch_size: int):
    """Row indices in batches of ``batch_size`` neighbours in length (a stable sort), so that a
    batch padded to its longest row pads little: how ``predict``, the SavedModel's callers and
    ``batch-predict`` batch.

    >>> [batch.tolist() for batch in batches_by_length([5, 2, 9, 2], 2)]
    [[1, 3], [0, 2]]
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
