"""Packing comments into fixed-length sequences: nothing lost or repeated, full, deterministic."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from kcbert_tf.text.packing import (
    best_fit_decreasing,
    group_of,
    pack_comments,
    shuffle_keys,
    split_comment,
)

PAD, CLS, SEP = 0, 2, 3


def random_comments(count: int, seed: int, extra_lengths: tuple[int, ...] = ()) -> list[list[int]]:
    """Comments of random ids (5..29999) with lengths like real comments: lognormal, median ~15,
    90th percentile ~43 (the shared comments with KcBERT's vocab), plus ``extra_lengths``."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.lognormal(np.log(15), 0.8, size=count)), 1, 250).astype(int)
    lengths = [*lengths.tolist(), *extra_lengths]
    return [rng.integers(5, 30_000, size=length).tolist() for length in lengths]


def segments_of(sequences: np.ndarray, max_seq_length: int) -> list[tuple[int, ...]]:
    """The [SEP]-ended segments of every sequence, after checking its layout by hand:
    exactly ``max_seq_length`` ids, [CLS] first, [PAD] only after the last [SEP]."""
    assert sequences.ndim == 2 and sequences.shape[1] == max_seq_length
    segments = []
    for row in sequences.tolist():
        assert row[0] == CLS
        used = len(row)
        while row[used - 1] == PAD:
            used -= 1
        assert row[used - 1] == SEP, "a sequence must end its last comment with [SEP]"
        assert PAD not in row[:used] and CLS not in row[1:used]
        current: list[int] = []
        for token in row[1:used]:
            if token == SEP:
                assert current, "no empty segment"
                segments.append(tuple(current))
                current = []
            else:
                current.append(token)
    return segments


def assert_every_token_once(comments: list[list[int]], sequences: np.ndarray, max_seq_length: int):
    """The comments rebuilt from the sequences are exactly the input comments (a multiset)."""
    left = collections.Counter(segments_of(sequences, max_seq_length))
    fitting = [tuple(ids) for ids in comments if ids and len(ids) + 2 <= max_seq_length]
    left.subtract(fitting)
    assert not -left, "a comment that fits one sequence is missing"
    long_comments = [ids for ids in comments if len(ids) + 2 > max_seq_length]
    # The rest are pieces of the long comments: rejoin each long comment in order from them
    # (the longest piece that matches first, so a short piece of another comment is not taken).
    by_first_token = collections.defaultdict(set)
    for piece in left:
        by_first_token[piece[0]].add(piece)
    for ids in long_comments:
        position = 0
        while position < len(ids):
            matches = [
                piece
                for piece in by_first_token[ids[position]]
                if left[piece] > 0 and tuple(ids[position : position + len(piece)]) == piece
            ]
            assert matches, f"no piece of a long comment at token {position}"
            piece = max(matches, key=len)
            assert len(piece) <= max_seq_length - 2
            left[piece] -= 1
            position += len(piece)
    assert not +left, "segments that belong to no comment"


def load(comments, max_seq_length):
    """The most a packing can fill: every id (comments, a [SEP] per piece, a [CLS] per sequence)."""
    return sum(len(ids) + 1 for ids in comments if ids)


@pytest.mark.parametrize("max_seq_length", [8, 128, 300])
def test_every_token_of_every_comment_appears_exactly_once(max_seq_length):
    room = max_seq_length - 2
    extra = (room, room + 1, 2 * room, 2 * room + 5, 3 * room - 1)  # edges of the split
    comments = random_comments(2_000, seed=1, extra_lengths=extra)
    comments += [[], []]  # empty comments are skipped
    packed = pack_comments(comments, max_seq_length, cls_id=CLS, sep_id=SEP, pad_id=PAD, seed=7)
    assert packed.sequences.dtype == np.int32
    assert_every_token_once(comments, packed.sequences, max_seq_length)
    assert packed.split_comments == sum(len(ids) > room for ids in comments)
    assert collections.Counter(packed.sequences.ravel().tolist()) - collections.Counter(
        {PAD: 10**9}
    ) == (
        collections.Counter(token for ids in comments for token in ids)
        + collections.Counter({CLS: len(packed.sequences)})
        + collections.Counter({SEP: len(segments_of(packed.sequences, max_seq_length))})
    )


@pytest.mark.parametrize("max_seq_length", [128, 300])
def test_realistic_comments_fill_more_than_97_percent(max_seq_length):
    comments = random_comments(5_000, seed=3)
    packed = pack_comments(comments, max_seq_length, cls_id=CLS, sep_id=SEP, seed=0)
    sequences = packed.sequences
    non_pad = int((sequences != PAD).sum())
    assert non_pad / sequences.size >= 0.97
    # Against the bound: no packing can use fewer than ceil(load / (max_seq_length - 1)) sequences.
    lower_bound = -(-load(comments, max_seq_length) // (max_seq_length - 1))
    assert len(sequences) <= lower_bound * 1.01 + 1


def test_in_order_packing_would_waste_what_best_fit_saves():
    """The reason for best fit: greedy in-order packing of the same comments leaves ~9% padding."""
    comments = random_comments(5_000, seed=3)
    greedy, room = 0, 0
    for ids in comments:
        if len(ids) + 1 > room:
            greedy, room = greedy + 1, 127
        room -= len(ids) + 1
    packed = pack_comments(comments, 128, cls_id=CLS, sep_id=SEP)
    assert len(packed.sequences) < greedy * 0.95


def test_deterministic_for_a_seed_whatever_the_input_order_and_different_for_another():
    comments = random_comments(1_000, seed=5, extra_lengths=(300,))
    first = pack_comments(comments, 128, cls_id=CLS, sep_id=SEP, seed=11).sequences
    shuffled = [comments[i] for i in np.random.default_rng(0).permutation(len(comments))]
    assert np.array_equal(
        first, pack_comments(shuffled, 128, cls_id=CLS, sep_id=SEP, seed=11).sequences
    )
    other = pack_comments(comments, 128, cls_id=CLS, sep_id=SEP, seed=12).sequences
    assert not np.array_equal(first, other)
    assert sorted(segments_of(first, 128)) == sorted(segments_of(other, 128))
    streamed = pack_comments(comments, 128, cls_id=CLS, sep_id=SEP, seed=11, stream=(1,)).sequences
    assert not np.array_equal(first, streamed)


def naive_best_fit_decreasing_loads(sizes: list[int], capacity: int) -> list[int]:
    """Best fit decreasing the textbook way: scan every open bin for the tightest fit."""
    loads: list[int] = []
    for size in sorted(sizes, reverse=True):
        fitting = [b for b, load in enumerate(loads) if capacity - load >= size]
        if fitting:
            tightest = min(fitting, key=lambda b: capacity - loads[b])
            loads[tightest] += size
        else:
            loads.append(size)
    return sorted(loads)


@pytest.mark.parametrize("seed", range(5))
def test_best_fit_decreasing_matches_the_textbook_algorithm(seed):
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(5, 130))
    sizes = rng.integers(1, capacity + 1, size=400).tolist()
    bins = best_fit_decreasing(sizes, capacity)
    assert sorted(index for members in bins for index in members) == list(range(len(sizes)))
    assert all(sum(sizes[i] for i in members) <= capacity for members in bins)
    assert sorted(
        sum(sizes[i] for i in members) for members in bins
    ) == naive_best_fit_decreasing_loads(sizes, capacity)


def test_best_fit_decreasing_small_case():
    assert best_fit_decreasing([5, 4, 3, 3, 2, 2, 1], 10) == [[0, 1, 6], [2, 3, 4, 5]]
    with pytest.raises(ValueError, match="outside 1..10"):
        best_fit_decreasing([11], 10)


def test_split_comment_cuts_long_comments_in_order():
    ids = list(range(300))
    pieces = split_comment(ids, 128)
    assert [len(p) for p in pieces] == [126, 126, 48]
    assert [t for p in pieces for t in p] == ids
    assert split_comment(ids[:126], 128) == [ids[:126]]


def test_too_short_a_sequence_is_refused():
    with pytest.raises(ValueError, match="at least 8"):
        pack_comments([[5]], 7, cls_id=CLS, sep_id=SEP)


def test_shuffle_keys_order_the_rows_in_a_seeded_permutation():
    """make-pretraining-data writes each shard in the order of these keys."""
    sequences = np.arange(400, dtype=np.int32).reshape(100, 4)

    def shuffled(seed):
        return sequences[np.argsort(shuffle_keys(len(sequences), seed), kind="stable")]

    assert sorted(map(tuple, shuffled(3).tolist())) == sorted(map(tuple, sequences.tolist()))
    assert np.array_equal(shuffled(3), shuffled(3))
    assert not np.array_equal(shuffled(3), sequences)
    assert not np.array_equal(shuffled(3), shuffled(4))


def test_groups_are_seeded_hashes_in_range_and_balanced():
    texts = [f"댓글 {i}번입니다" for i in range(4_000)]
    groups = [group_of(text, 0, 4) for text in texts]
    assert groups == [group_of(text, 0, 4) for text in texts]
    assert set(groups) == {0, 1, 2, 3}
    assert min(collections.Counter(groups).values()) > 850
    assert groups != [group_of(text, 1, 4) for text in texts]
