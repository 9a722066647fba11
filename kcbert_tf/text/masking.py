"""BERT's masked-LM masking as stateless TensorFlow ops: the one masking of pretraining (the input
pipeline, :mod:`kcbert_tf.training.input_pipeline`) and of the masked LM's preprocessor
(:mod:`kcbert_tf.model.masked_lm_preprocessor`).

The candidates are the ordinary tokens: every id but ``[PAD]``, ``[CLS]``, ``[SEP]`` and ``[MASK]``
(``[UNK]`` is a candidate, as in BERT and KerasHub).  A sequence with ``c`` candidates gets
``n = min(P, c, max(1, round(0.15 * c)))`` positions, drawn uniformly without replacement; of those
80% become ``[MASK]``, 10% a random ordinary id and 10% stay.  Sequence ``index + r`` of the stream
``(seed, stream)`` is masked with its own block of Philox words, so its masks depend on nothing else
(not on the batch it comes in): resuming and any replica count see the same masks.

Example:

>>> import tensorflow as tf
>>> masked = mask_tokens(tf.constant([2, 10, 11, 12, 13, 3, 0, 0]), seed=0, index=0,
...                      vocab_size=100, max_predictions=2)
>>> masked["mask_weights"].numpy().tolist()  # 4 candidates: round(0.15 * 4) = 1 prediction
[1.0, 0.0]
>>> max_predictions_for(128), max_predictions_for(300), max_predictions_for(512)
(20, 45, 77)
"""

from __future__ import annotations

import tensorflow as tf

from kcbert_tf.text.vocab import FIRST_ORDINARY_ID, MASK_ID, UNK_ID

__all__ = ["max_predictions_for", "mask_tokens", "continuation_pieces", "check_masking"]

_PHILOX = 1  # tf.random.Algorithm.PHILOX
_WORDS_PER_COUNTER = 4  # Philox 4x32: one counter step gives four uint32 words.


def max_predictions_for(seq_length: int) -> int:
    """Prediction slots per sequence: ``ceil(0.15 * seq_length)`` (20 at 128, 45 at 300)."""
    return -(-15 * seq_length // 100)


def _words_per_sequence(seq_length: int, max_predictions: int) -> int:
    """Random uint32 words one sequence uses (a key per position, two per slot), rounded up to
    whole Philox counter steps so that sequence ``i`` starts at counter step ``i * W / 4``."""
    words = seq_length + 2 * max_predictions
    return -(-words // _WORDS_PER_COUNTER) * _WORDS_PER_COUNTER


def _random_words(seed, stream, index, rows, words: int) -> tf.Tensor:
    """uint32 ``[rows, words]``: row ``r`` is block ``index + r`` of the Philox stream keyed by
    ``(seed, stream)``, the same whether it is drawn alone or with its neighbours."""
    seed_pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(stream, tf.int64)])
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed_pair)
    steps = tf.cast(tf.cast(index, tf.int64) * (words // _WORDS_PER_COUNTER), tf.uint64)
    drawn = tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=tf.stack([tf.cast(rows, tf.int64) * words]),
        key=key,
        counter=tf.stack([steps, counter[1]]),
        alg=_PHILOX,
        dtype=tf.uint32,
    )
    return tf.reshape(drawn, [-1, words])


def _threshold(rate: float) -> int:
    """A uint32 word falls below this with probability ``rate``."""
    return min(1 << 32, round(rate * (1 << 32)))


def mask_tokens(
    token_ids,
    *,
    seed: int | tf.Tensor,
    index: int | tf.Tensor,
    vocab_size: int,
    max_predictions: int,
    mask_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    stream: int | tf.Tensor = 0,
    continuation=None,
) -> dict[str, tf.Tensor]:
    """Mask one sequence (``[L]``) or a batch (``[B, L]``) of consecutive sequences, BERT style.

    Row ``r`` is sequence number ``index + r`` of stream ``(seed, stream)``: its masks depend on
    nothing else (not on the batch it comes in).  Returns ``token_ids`` (int32, masked),
    ``mask_positions`` and ``mask_ids`` (int32 ``[..., max_predictions]``: ascending positions,
    the original ids there) and ``mask_weights`` (float32, 1 per prediction); unused slots are 0.

    ``continuation``: whole-word masking (:func:`continuation_pieces` of the vocab, bool
    ``[vocab_size]``): a word is a piece and the ``##`` pieces after it, and words are masked
    whole, as google-research/bert's ``do_whole_word_mask`` does: in a random order, each word
    taken if it still fits the sequence's ``n`` predictions, skipped if not.  None (the default):
    each token is drawn on its own, as KcBERT was trained.
    """
    token_ids = tf.convert_to_tensor(token_ids)
    single = token_ids.shape.rank == 1
    ids = tf.cast(token_ids[tf.newaxis] if single else token_ids, tf.int32)
    if ids.shape.rank != 2 or ids.shape[1] is None:
        raise ValueError(f"token_ids must be [L] or [B, L] with a known L, got {token_ids.shape}")
    length, slots = ids.shape[1], max_predictions
    check_masking(length, slots, vocab_size, mask_rate, mask_token_rate, random_token_rate)
    rows = tf.shape(ids)[0]
    words = tf.cast(
        _random_words(seed, stream, index, rows, _words_per_sequence(length, slots)), tf.int64
    )

    candidate = (ids >= FIRST_ORDINARY_ID) | (ids == UNK_ID)  # not [PAD] [CLS] [SEP] [MASK]
    count = tf.reduce_sum(tf.cast(candidate, tf.int32), axis=1)
    wanted = tf.cast(tf.round(tf.cast(count, tf.float64) * mask_rate), tf.int32)
    chosen = tf.minimum(tf.minimum(tf.maximum(wanted, 1), count), slots)  # [B]

    if continuation is None:
        # The `chosen` candidates with the largest random keys: a uniform sample without
        # replacement (two equal 32-bit keys in one sequence, ~1e-6 at 128 positions, go to the
        # lower position).
        scores = tf.where(candidate, words[:, :length], -1)
        _, picked = tf.math.top_k(scores, k=slots, sorted=True)
    else:
        selected = _whole_words(ids, candidate, words[:, :length], chosen, continuation)
        chosen = tf.reduce_sum(tf.cast(selected, tf.int32), axis=1)  # at most the budget
        _, picked = tf.math.top_k(tf.where(selected, length - tf.range(length)[tf.newaxis], -1), k=slots)
    valid = tf.range(slots)[tf.newaxis] < chosen[:, tf.newaxis]  # [B, P]
    positions = tf.sort(tf.where(valid, picked, length), axis=1)  # valid ones first, ascending
    positions = tf.where(valid, positions, 0)
    originals = tf.gather(ids, positions, batch_dims=1)

    action = words[:, length : length + slots]
    # floor(word * k / 2**32): uniform over 0..k-1 (within k / 2**32).
    random_ids = FIRST_ORDINARY_ID + tf.bitwise.right_shift(
        words[:, length + slots : length + 2 * slots] * (vocab_size - FIRST_ORDINARY_ID), 32
    )
    replaced = tf.where(
        action < _threshold(mask_token_rate),
        MASK_ID,
        tf.where(
            action < _threshold(mask_token_rate + random_token_rate),
            tf.cast(random_ids, tf.int32),
            originals,
        ),
    )
    # Unused slots write to an extra column, dropped afterwards.
    targets = tf.stack(
        [
            tf.broadcast_to(tf.range(rows)[:, tf.newaxis], tf.shape(positions)),
            tf.where(valid, positions, length),
        ],
        axis=-1,
    )
    padded = tf.pad(ids, [[0, 0], [0, 1]])
    masked = tf.tensor_scatter_nd_update(padded, targets, replaced)[:, :length]

    result = {
        "token_ids": masked,
        "mask_positions": positions,
        "mask_ids": tf.where(valid, originals, 0),
        "mask_weights": tf.cast(valid, tf.float32),
    }
    if single:
        result = {name: value[0] for name, value in result.items()}
    return result


def continuation_pieces(vocab) -> tf.Tensor:
    """bool ``[len(vocab)]``: which tokens continue a word (``##`` pieces), for whole-word
    masking."""
    return tf.constant([token.startswith("##") for token in vocab], tf.bool)


def _whole_words(ids, candidate, keys, budget, continuation) -> tf.Tensor:
    """bool ``[B, L]``: the candidate positions masked by whole words.  A word starts at a
    candidate that is not a ``##`` piece (or follows no candidate); its random key is the key of
    its first position.  Words are visited by descending key; a word is taken while the taken
    pieces stay within ``budget`` (``[B]``), and skipped when it would go over."""
    length = ids.shape[1]
    rows = tf.shape(ids)[0]
    piece = tf.gather(tf.convert_to_tensor(continuation, tf.bool), ids)
    after_candidate = tf.pad(candidate, [[0, 0], [1, 0]])[:, :length]
    start = candidate & (~piece | ~after_candidate)
    word = tf.cumsum(tf.cast(start, tf.int32), axis=1) - 1  # the word of each candidate
    spare = rows * length  # non-candidates go to one segment of their own, dropped
    segment = tf.where(candidate & (word >= 0), word + tf.range(rows)[:, tf.newaxis] * length, spare)
    word_length = tf.reshape(
        tf.math.unsorted_segment_sum(tf.cast(candidate, tf.int32), segment, spare + 1)[:-1], [rows, length])
    word_key = tf.reshape(
        tf.math.unsorted_segment_max(tf.where(start, keys, -1), segment, spare + 1)[:-1], [rows, length])
    word_key = tf.where(word_length > 0, word_key, -1)  # no word: last
    _, order = tf.math.top_k(word_key, k=length)  # words by descending key (ties: lower first)
    ordered_length = tf.gather(word_length, order, batch_dims=1)

    def visit(state, lengths):
        total, _ = state
        take = (lengths > 0) & (total + lengths <= budget)
        return total + tf.where(take, lengths, 0), take

    _, taken = tf.scan(visit, tf.transpose(ordered_length),
                       initializer=(tf.zeros_like(budget), tf.zeros_like(budget, tf.bool)))
    taken = tf.transpose(taken)  # [B, rank]
    taken_word = tf.gather(taken, tf.argsort(order, axis=1), batch_dims=1)  # [B, word]
    return candidate & tf.gather(taken_word, tf.maximum(word, 0), batch_dims=1)


def check_masking(
    length: int,
    max_predictions: int | None,
    vocab_size: int,
    mask_rate: float,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
) -> None:
    """Raise ``ValueError`` for masking settings :func:`mask_tokens` cannot follow."""
    if max_predictions is not None and not 1 <= max_predictions <= length:
        raise ValueError(f"max_predictions must be in 1..{length} (the length), got {max_predictions}")
    if vocab_size <= FIRST_ORDINARY_ID:
        raise ValueError(f"vocab_size must be > {FIRST_ORDINARY_ID}, got {vocab_size}")
    if not (0 <= mask_rate <= 1 and 0 <= mask_token_rate and 0 <= random_token_rate):
        raise ValueError("mask_rate must be in [0, 1] and the token rates >= 0")
    if mask_token_rate + random_token_rate > 1:
        raise ValueError("mask_token_rate + random_token_rate must be <= 1")
