"""Start/end logits back to answer texts: n-best decoding as transformers' run_qa.py.

This is ``postprocess_qa_predictions`` of transformers' ``examples/pytorch/question-answering/
utils_qa.py`` for SQuAD v1 (no null answer), on features from
:func:`kcbert_tf.tasks.qa.features.build_features` (``training=False``, which keeps the offsets).
For each example, over all its windows: the :data:`N_BEST_SIZE` (20) highest start and end
logits of each window (``np.argsort``, as there) are paired; a pair counts when both tokens are
context tokens, start ≤ end and the span is at most :data:`MAX_ANSWER_LENGTH` (30) tokens; its
score is ``start_logit + end_logit``; the best-scoring pair (the first found among equal scores)
gives the answer, the context's characters from its start token's first to its end token's last.
An example with no valid pair gets ``""`` (run_qa.py writes the placeholder ``"empty"``).

Example (one window: ``[CLS] q [SEP] 서울 ##은 수도 [SEP]``):

>>> import numpy as np
>>> from kcbert_tf.tasks.qa.features import QAFeatures
>>> from kcbert_tf.tasks.qa.squad_files import QAExample
>>> example = QAExample("q1", "", "q", "서울은 수도", ("서울",), (0,))
>>> offsets = np.full((1, 7, 2), -1, dtype=np.int32)
>>> offsets[0, 3:6] = [(0, 2), (2, 3), (4, 6)]
>>> features = QAFeatures(*(np.zeros((1, 7), np.int32),) * 3, np.zeros(1, np.int32), offsets=offsets)
>>> start = np.array([[9.0, 0, 0, 5, 1, 0, 0]])
>>> end = np.array([[9.0, 0, 0, 4, 1, 3, 0]])
>>> decode_answers([example], features, start, end)
{'q1': '서울'}
>>> [(c.text, c.score) for c in n_best([example], features, start, end, n_best_size=3)[0]]
[('서울', 9.0), ('서울은 수도', 8.0), ('은 수도', 4.0)]
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from kcbert_tf.tasks.qa.features import QAFeatures
from kcbert_tf.tasks.qa.squad_files import QAExample

__all__ = ["N_BEST_SIZE", "MAX_ANSWER_LENGTH", "Candidate", "n_best", "decode_answers"]

#: run_qa.py's defaults, KcBERT-Finetune's KorQuAD settings.
N_BEST_SIZE = 20
MAX_ANSWER_LENGTH = 30


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An answer span: its text, characters ``[start, end)`` of the context, and its score
    (``start_logit + end_logit``), from window ``feature`` at token positions ``tokens``."""

    text: str
    start: int
    end: int
    score: float
    feature: int
    tokens: tuple[int, int]


def _check(examples: Sequence[QAExample], features: QAFeatures, start_logits, end_logits):
    if features.offsets is None:
        raise ValueError("decoding needs the context offsets: build the features with training=False")
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    shape = features.token_ids.shape
    if start_logits.shape != shape or end_logits.shape != shape:
        raise ValueError(
            f"logits of shapes {start_logits.shape} and {end_logits.shape} for features of shape {shape}"
        )
    if len(features) and int(features.example_index.max()) >= len(examples):
        raise ValueError(f"features refer to example {int(features.example_index.max())} of {len(examples)}")
    return start_logits, end_logits


def n_best(
    examples: Sequence[QAExample],
    features: QAFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best_size: int = N_BEST_SIZE,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> list[list[Candidate]]:
    """For each example, its best ``n_best_size`` valid spans over all its windows, best first
    (an empty list when none is valid); logits are ``[features, max_length]``."""
    start_logits, end_logits = _check(examples, features, start_logits, end_logits)
    per_example: list[list[int]] = [[] for _ in examples]
    for feature, index in enumerate(features.example_index):
        per_example[int(index)].append(feature)
    results = []
    for example, feature_indices in zip(examples, per_example):
        found = []  # (score, feature, start token, end token), in run_qa.py's loop order
        for feature in feature_indices:
            offsets = features.offsets[feature]
            starts = np.argsort(start_logits[feature])[-1 : -n_best_size - 1 : -1]
            ends = np.argsort(end_logits[feature])[-1 : -n_best_size - 1 : -1]
            s, e = np.meshgrid(starts, ends, indexing="ij")
            s, e = s.ravel(), e.ravel()
            valid = (offsets[s, 0] >= 0) & (offsets[e, 0] >= 0) & (e >= s) & (e - s + 1 <= max_answer_length)
            s, e = s[valid], e[valid]
            scores = start_logits[feature][s] + end_logits[feature][e]
            found += [(score, feature, int(a), int(b)) for score, a, b in zip(scores.tolist(), s, e)]
        found.sort(key=lambda item: item[0], reverse=True)  # stable, as run_qa.py's sorted()
        candidates = []
        for score, feature, a, b in found[:n_best_size]:
            begin, end = int(features.offsets[feature, a, 0]), int(features.offsets[feature, b, 1])
            candidates.append(Candidate(example.context[begin:end], begin, end, score, feature, (a, b)))
        results.append(candidates)
    return results


def decode_answers(
    examples: Sequence[QAExample],
    features: QAFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best_size: int = N_BEST_SIZE,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> dict[str, str]:
    """``{question id: answer text}``: each example's best span (``""`` when none is valid)."""
    best = n_best(
        examples, features, start_logits, end_logits, n_best_size=n_best_size, max_answer_length=max_answer_length
    )
    return {example.id: (found[0].text if found else "") for example, found in zip(examples, best)}
