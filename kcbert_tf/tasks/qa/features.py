"""Extractive-QA features: ``[CLS] question [SEP] context window [SEP]``, as transformers' run_qa.py.

One :class:`~kcbert_tf.tasks.qa.squad_files.QAExample` gives one feature per window over its context,
built the way transformers' ``examples/pytorch/question-answering/run_qa.py``
(``prepare_train_features`` / ``prepare_validation_features``) builds them with a fast tokenizer
(``truncation="only_second"``, ``return_overflowing_tokens``, ``return_offsets_mapping``,
``padding="max_length"``), with KcBERT-Finetune's KorQuAD settings (:data:`MAX_LENGTH` 300,
:data:`DOC_STRIDE` 128), after cutting the question to :data:`MAX_QUERY_LENGTH` (64) tokens as
the original BERT ``run_squad.py`` and KcBERT-Finetune do (``max_query_length``):

- the context's tokens are cut into windows of ``max_length - len(question) - 3`` tokens, each
  window starting ``doc_stride`` tokens before the previous one ends (the ``tokenizers`` library's
  overflow), the last one ending at the context's end;
- training: the answer's start/end token positions are found through the token offsets: the last
  token starting at or before the answer's first character, the first token ending at or after
  its last; a window that does not hold the whole answer points at ``[CLS]`` (0, 0);
- evaluation: each feature keeps its example's index and the character offsets of its context
  tokens into the context (``-1`` elsewhere), for :mod:`kcbert_tf.tasks.qa.decoding`.

One difference from run_qa.py, on purpose: when the answer starts in a window's last context
token, run_qa.py's label loop runs past it onto ``[SEP]`` and the padding (whose offsets are
``(0, 0)``) and labels the start at the last position, ``max_length - 1``; here it is that last
context token.

The tokenizer is an interface: ``encode_with_offsets(texts)`` gives, for each text, its WordPiece
ids without special tokens and each token's ``(start, end)`` character offsets into the text
(:meth:`kcbert_tf.text.tokenizer.KcBertWordPiece.encode_with_offsets`, or transformers' fast
tokenizer with ``add_special_tokens=False, return_offsets_mapping=True``).

Example (a whitespace tokenizer, windows of 4 context tokens with a stride of 2):

>>> import re
>>> from kcbert_tf.tasks.qa.squad_files import QAExample
>>> words = "[PAD] [UNK] [CLS] [SEP] 서울은 한국의 수도이다 가장 큰 도시이다 어디?".split()
>>> def encode(texts):
...     spans = [[m.span() for m in re.finditer(r"\\S+", text)] for text in texts]
...     return [([words.index(t[a:b]) if t[a:b] in words else 1 for a, b in s], s)
...             for t, s in zip(texts, spans)]
>>> example = QAExample("q1", "서울", "어디?", "서울은 한국의 수도이다 그리고 가장 큰 도시이다", ("큰",), (20,))
>>> features = build_features([example], encode, cls_id=2, sep_id=3, pad_id=0, training=True,
...                           max_length=8, doc_stride=2)
>>> features.token_ids
array([[ 2, 10,  3,  4,  5,  6,  1,  3],
       [ 2, 10,  3,  6,  1,  7,  8,  3],
       [ 2, 10,  3,  7,  8,  9,  3,  0]], dtype=int32)
>>> features.start_positions, features.end_positions
(array([0, 6, 4], dtype=int32), array([0, 6, 4], dtype=int32))
>>> build_features([example], encode, cls_id=2, sep_id=3, pad_id=0, training=False,
...                max_length=8, doc_stride=2).offsets[2, :, 0]
array([-1, -1, -1, 17, 20, 22, -1, -1], dtype=int32)
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Protocol, Sequence

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.tasks.qa.squad_files import QAExample

_LOG = logging.getLogger(__name__)

__all__ = [
    "MAX_LENGTH",
    "DOC_STRIDE",
    "MAX_QUERY_LENGTH",
    "EncodeWithOffsets",
    "QATokenizer",
    "QAFeatures",
    "context_windows",
    "build_features",
    "features_with_tokenizer",
]

#: KcBERT-Finetune's KorQuAD settings: sequence length, window stride, question length (tokens).
MAX_LENGTH = 300
DOC_STRIDE = 128
MAX_QUERY_LENGTH = 64

#: ``texts -> [(ids, [(start, end), ...]), ...]``: ids without special tokens, character offsets.
EncodeWithOffsets = Callable[[list[str]], list[tuple[list[int], list[tuple[int, int]]]]]


class QATokenizer(Protocol):
    """What :func:`features_with_tokenizer` needs (:class:`~kcbert_tf.text.tokenizer.KcBertWordPiece` has it)."""

    cls_id: int
    sep_id: int
    pad_id: int

    def encode_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        ...


@dataclasses.dataclass
class QAFeatures:
    """Features as numpy arrays, one row a window: ``token_ids``, ``segment_ids`` (0 question,
    1 context and its ``[SEP]``), ``padding_mask`` (1 real token), all int32 ``[N, max_length]``;
    ``example_index`` (int32 ``[N]``, into the examples given); training: ``start_positions`` and
    ``end_positions`` (int32 ``[N]``, 0 where the window lacks the answer); evaluation:
    ``offsets`` (int32 ``[N, max_length, 2]``, a context token's characters, -1 elsewhere)."""

    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray
    example_index: np.ndarray
    start_positions: np.ndarray | None = None
    end_positions: np.ndarray | None = None
    offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def model_inputs(self) -> dict:
        """The windows as the model takes them: ``token_ids``, ``segment_ids``, ``padding_mask``."""
        return {"token_ids": self.token_ids, "segment_ids": self.segment_ids, "padding_mask": self.padding_mask}


def context_windows(length: int, room: int, doc_stride: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` token ranges of the windows over a context of ``length`` tokens, each
    at most ``room`` long, consecutive ones sharing ``doc_stride`` tokens (the ``tokenizers``
    library's overflow); one empty window for an empty context.

    >>> context_windows(10, 4, 1)
    [(0, 4), (3, 7), (6, 10)]
    """
    if length == 0:
        return [(0, 0)]
    windows = []
    for start in range(0, length, room - doc_stride):
        windows.append((start, min(start + room, length)))
        if windows[-1][1] == length:
            break
    return windows


def _answer_positions(
    starts: np.ndarray, ends: np.ndarray, window: tuple[int, int], answer: tuple[int, int]
) -> tuple[int, int] | None:
    """Context-token indices of the answer's first and last tokens in ``window``, or None when the
    window does not hold all of it."""
    first, stop = window
    begin, end = answer
    if stop == first or not (starts[first] <= begin and ends[stop - 1] >= end):
        return None
    start_token = min(int(np.searchsorted(starts, begin, side="right")) - 1, stop - 1)
    end_token = max(int(np.searchsorted(ends, end, side="left")), first)
    return start_token, end_token


def build_features(
    examples: Sequence[QAExample],
    encode_with_offsets: EncodeWithOffsets,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    training: bool,
    max_length: int = MAX_LENGTH,
    doc_stride: int = DOC_STRIDE,
    max_query_length: int = MAX_QUERY_LENGTH,
) -> QAFeatures:
    """The features of ``examples`` (see the module docstring); ``training`` labels answer
    positions (from each example's first answer), otherwise keeps the context offsets."""
    contexts = list(dict.fromkeys(example.context for example in examples))
    encoded = encode_with_offsets([example.question for example in examples] + contexts)
    if len(encoded) != len(examples) + len(contexts):
        raise ValueError(f"encode_with_offsets gave {len(encoded)} results for {len(examples) + len(contexts)} texts")
    by_context = {}
    for context, (ids, offsets) in zip(contexts, encoded[len(examples) :]):
        spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        by_context[context] = (np.asarray(ids, dtype=np.int32), spans)

    rows: list[tuple[int, np.ndarray, np.ndarray, int, tuple[int, int]]] = []
    long_questions = [example.id for example, (ids, _) in zip(examples, encoded) if len(ids) > max_query_length]
    if long_questions:
        _LOG.info("%d question(s) of over %d tokens cut to their first %d (as BERT's run_squad does), e.g. %s",
                  len(long_questions), max_query_length, max_query_length, long_questions[0])
    for index, example in enumerate(examples):
        question = np.asarray(encoded[index][0][:max_query_length], dtype=np.int32)
        ids, spans = by_context[example.context]
        room = max_length - len(question) - 3
        if room <= doc_stride:
            raise UserError(
                f"question id {example.id!r}: a max length of {max_length} leaves {room} context "
                f"tokens per window after its {len(question)} question tokens and [CLS] [SEP] [SEP]; "
                f"the document stride {doc_stride} must be smaller: lower the stride or the question "
                "length, or raise the max length"
            )
        for window in context_windows(len(ids), room, doc_stride):
            rows.append((index, question, ids, len(question) + 2, window))

    count = len(rows)
    token_ids = np.full((count, max_length), pad_id, dtype=np.int32)
    segment_ids = np.zeros((count, max_length), dtype=np.int32)
    padding_mask = np.zeros((count, max_length), dtype=np.int32)
    example_index = np.zeros(count, dtype=np.int32)
    positions = np.zeros((count, 2), dtype=np.int32) if training else None
    offsets = None if training else np.full((count, max_length, 2), -1, dtype=np.int32)
    for row, (index, question, ids, first, (start, stop)) in enumerate(rows):
        after = first + stop - start  # the position of the closing [SEP]
        token_ids[row, 0] = cls_id
        token_ids[row, 1 : first - 1] = question
        token_ids[row, first - 1] = sep_id
        token_ids[row, first:after] = ids[start:stop]
        token_ids[row, after] = sep_id
        segment_ids[row, first : after + 1] = 1
        padding_mask[row, : after + 1] = 1
        example_index[row] = index
        example = examples[index]
        spans = by_context[example.context][1]
        if training:
            if example.answer_texts:
                begin = example.answer_starts[0]
                found = _answer_positions(
                    spans[:, 0], spans[:, 1], (start, stop), (begin, begin + len(example.answer_texts[0]))
                )
                if found is not None:
                    positions[row] = (found[0] - start + first, found[1] - start + first)
        else:
            offsets[row, first:after] = spans[start:stop]
    return QAFeatures(
        token_ids,
        segment_ids,
        padding_mask,
        example_index,
        start_positions=None if positions is None else positions[:, 0].copy(),
        end_positions=None if positions is None else positions[:, 1].copy(),
        offsets=offsets,
    )


def features_with_tokenizer(
    examples: Sequence[QAExample], tokenizer: QATokenizer, *, training: bool, **settings: int
) -> QAFeatures:
    """:func:`build_features` with a tokenizer object's ``encode_with_offsets`` and special ids
    (e.g. :class:`~kcbert_tf.text.tokenizer.KcBertWordPiece`); ``settings``: ``max_length``,
    ``doc_stride``, ``max_query_length``."""
    return build_features(
        examples,
        tokenizer.encode_with_offsets,
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        pad_id=tokenizer.pad_id,
        training=training,
        **settings,
    )
