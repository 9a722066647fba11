"""Pack tokenized comments into fixed-length pretraining sequences, without wasting positions.

A sequence is exactly ``max_seq_length`` ids: ``[CLS]``, then whole comments each followed by
``[SEP]``, then ``[PAD]`` to the end.  Comments are short (KcBERT's news comments: median 15
tokens), so packing them in arrival order leaves about 9% padding at 128 positions; these functions
pack them best-fit decreasing instead (longest first, each into the open sequence with the least
room that still holds it), which fills more than 99% of a few thousand comments' sequences.

A comment that cannot fit one sequence (``len + 2 > max_seq_length``) is cut into pieces of
``max_seq_length - 2`` tokens, each a sequence of its own, and its remainder is packed like any
other comment; no token is ever dropped or repeated.  There is no next-sentence prediction and no
masking here: masks are drawn per epoch by the input pipeline.

Everything is deterministic given ``seed`` and independent of the order the comments come in
(Beam delivers a group's comments in any order): the comments are put in a canonical order
first; ``seed`` then decides how ties are broken, the comments' order inside each sequence and
the order of the sequences.

Example:

>>> packed = pack_comments([[10, 11, 12], [20], [30, 31]], max_seq_length=8, cls_id=2, sep_id=3)
>>> packed.sequences.shape, packed.split_comments
((2, 8), 0)
>>> int((packed.sequences != 0).sum())  # 6 comment tokens, 3 [SEP], 2 [CLS]
11
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple, Sequence

import numpy as np

__all__ = [
    "MIN_PACKED_LENGTH",
    "PackedSequences",
    "split_comment",
    "best_fit_decreasing",
    "pack_comments",
    "shuffle_keys",
    "group_of",
]

#: The shortest sequence worth packing: ``[CLS]``, a few tokens, ``[SEP]``.
MIN_PACKED_LENGTH = 8


class PackedSequences(NamedTuple):
    """The packed ``sequences`` (int32, ``[n, max_seq_length]``) and how many comments were cut."""

    sequences: np.ndarray
    split_comments: int


def split_comment(ids: Sequence[int], max_seq_length: int) -> list[Sequence[int]]:
    """``ids`` cut into pieces of ``max_seq_length - 2`` tokens (one sequence each) and the rest.

    A comment that fits one sequence (with its ``[CLS]`` and ``[SEP]``) is one piece.  The pieces
    are in the comment's order; the last one is the remainder (shorter, unless it divides evenly).
    """
    room = max_seq_length - 2
    return [ids[start : start + room] for start in range(0, len(ids), room)] or [ids[:0]]


def best_fit_decreasing(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins of item indices, best-fit decreasing: each item, largest first (ties in the given
    order), goes into the open bin with the least room left that still holds it.

    Every size must be in ``1..capacity``.  Open bins are kept in buckets indexed by the room they
    have left, and a bit mask marks the non-empty buckets, so each item costs O(1) big-int
    operations: O(n log n) for the sort, O(n) for the packing.
    """
    order = sorted(range(len(sizes)), key=lambda index: -sizes[index])  # stable: ties keep order
    by_room: list[list[int]] = [[] for _ in range(capacity + 1)]  # room left -> open bins
    nonempty = 0  # bit r is set when by_room[r] holds a bin
    bins: list[list[int]] = []
    for index in order:
        size = sizes[index]
        if not 0 < size <= capacity:
            raise ValueError(f"item {index} has size {size}, outside 1..{capacity}")
        candidates = nonempty >> size
        if candidates:  # The smallest room >= size.
            room = size + (candidates & -candidates).bit_length() - 1
            bin_id = by_room[room].pop()
            if not by_room[room]:
                nonempty &= ~(1 << room)
        else:
            room, bin_id = capacity, len(bins)
            bins.append([])
        bins[bin_id].append(index)
        room -= size
        if room:
            by_room[room].append(bin_id)
            nonempty |= 1 << room
    return bins


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """A generator for ``seed`` and a stream (a group number, ...), the same on every machine."""
    return np.random.default_rng([seed, *stream])


def pack_comments(
    comments: Sequence[Sequence[int]],
    max_seq_length: int,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int = 0,
    seed: int = 0,
    stream: Sequence[int] = (),
) -> PackedSequences:
    """Pack tokenized ``comments`` (lists of ids, no special tokens) into sequences of exactly
    ``max_seq_length`` ids: ``[CLS]``, comments each followed by ``[SEP]``, ``[PAD]`` at the end.

    Best-fit decreasing, so the sequences are nearly full; long comments are cut (see
    :func:`split_comment`), never truncated; empty comments are skipped.  The result depends on
    ``seed`` and ``stream`` (e.g. the Beam group) and on the multiset of comments, not on their
    order.  The sequences come in packing order; :func:`shuffle_sequences` mixes them.
    """
    if max_seq_length < MIN_PACKED_LENGTH:
        raise ValueError(f"max_seq_length must be at least {MIN_PACKED_LENGTH}, got {max_seq_length}")
    rng = _rng(seed, *stream)
    # A canonical order (the sorted token lists), then a seeded permutation: ties in the
    # best-fit order are broken by the seed, not by the order the comments came in.
    canonical = sorted((list(ids) for ids in comments if len(ids)))
    canonical = [canonical[i] for i in rng.permutation(len(canonical))]

    room = max_seq_length - 2
    full: list[list[int]] = []  # pieces that fill a whole sequence
    items: list[list[int]] = []  # comments and remainders, packed together
    split = 0
    for ids in canonical:
        if len(ids) <= room:
            items.append(ids)
            continue
        split += 1
        for piece in split_comment(ids, max_seq_length):
            (full if len(piece) == room else items).append(piece)

    bins = best_fit_decreasing([len(ids) + 1 for ids in items], max_seq_length - 1)
    sequences = np.full((len(full) + len(bins), max_seq_length), pad_id, dtype=np.int32)
    sequences[:, 0] = cls_id
    for row, ids in enumerate(full):
        sequences[row, 1 : room + 1] = ids
        sequences[row, room + 1] = sep_id
    for row, members in enumerate(bins, start=len(full)):
        position = 1
        for index in rng.permutation(members):  # no link between length and position
            ids = items[index]
            end = position + len(ids)
            sequences[row, position:end] = ids
            sequences[row, end] = sep_id
            position = end + 1
    return PackedSequences(sequences, split)


def shuffle_keys(count: int, seed: int, *stream: int) -> np.ndarray:
    """``count`` random 64-bit sort keys for ``seed`` and ``stream``: sorting by them shuffles.

    Keys drawn for different streams (Beam groups) are independent, so sequences of many groups
    can be mixed and sharded by key (``key % num_shards``) and ordered by key within a shard.
    """
    return _rng(seed, *stream, 0x5EED).integers(0, 2**63, size=count, dtype=np.int64)


def group_of(text: str, seed: int, num_groups: int) -> int:
    """The packing group (``0 .. num_groups - 1``) of a comment: a seeded hash of its text."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=seed.to_bytes(8, "little"))
    return int.from_bytes(digest.digest(), "little") % num_groups
