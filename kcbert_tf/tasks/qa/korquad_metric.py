"""KorQuAD 1.0's official exact match and F1 (``evaluate-v1.0.py`` of korquad.github.io).

The official script is SQuAD v1.1's with two changes: its normalization first replaces the
characters ``' " 《 》 < > 〈 〉 ( ) ‘ ’`` by spaces, then (as SQuAD's) lowercases, removes
ASCII punctuation (``string.punctuation``) and collapses whitespace (no English articles are
removed); and its F1 counts common CHARACTERS (a multiset) of the normalized answers with the
whitespace removed, not common words.  Exact match compares the normalized strings (so a quote
replaced by a space still separates: ``"서울'시"`` ≠ ``"서울시"``).  Each question scores the
maximum over its ground truths; a question without a prediction scores 0; both scores are
averaged over the questions and multiplied by 100.

Example:

>>> normalize_answer("《서울특별시》(Seoul)!")
'서울특별시 seoul'
>>> exact_match("서울 특별시.", "서울 특별시"), round(f1_score("서울특별시", "서울"), 4)
(True, 0.5714)
"""

from __future__ import annotations

import collections
import logging
import re
import string
from typing import Mapping, Sequence

from kcbert_tf.errors import UserError
from kcbert_tf.tasks.qa.squad_files import QAExample

__all__ = ["normalize_answer", "exact_match", "f1_score", "korquad_scores"]

_LOG = logging.getLogger(__name__)

#: Replaced by a space before anything else (the official ``remove_``).
SPACED = "'\"《》<>〈〉()‘’"
_SPACED = re.compile("[" + re.escape(SPACED) + "]")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official normalization: the :data:`SPACED` characters to spaces, lowercase, ASCII
    punctuation removed, whitespace collapsed to single spaces."""
    text = _SPACED.sub(" ", text).lower()
    text = "".join(char for char in text if char not in _PUNCTUATION)
    return " ".join(text.split())


def exact_match(prediction: str, ground_truth: str) -> bool:
    """Whether the normalized texts are equal."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """F1 over the characters (a multiset, spaces excluded) of the normalized texts; 0 when they
    share none (an empty prediction, or an empty ground truth, scores 0)."""
    predicted = collections.Counter(normalize_answer(prediction).replace(" ", ""))
    truth = collections.Counter(normalize_answer(ground_truth).replace(" ", ""))
    same = sum((predicted & truth).values())
    if same == 0:
        return 0.0
    precision = same / sum(predicted.values())
    recall = same / sum(truth.values())
    return 2 * precision * recall / (precision + recall)


def korquad_scores(examples: Sequence[QAExample], predictions: Mapping[str, str]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` (×100) of ``predictions`` (question id → text) over ``examples``,
    each the maximum over the example's answer texts; a missing prediction scores 0 (logged).

    >>> ex = [QAExample("a", "", "q", "c", ("서울", "서울시"), (0, 0)),
    ...       QAExample("b", "", "q", "c", ("1989년",), (0,))]
    >>> scores = korquad_scores(ex, {"a": "서울시", "b": "1989"})  # b: F1 2·(4/4·4/5)/(4/4+4/5)
    >>> scores["exact_match"], round(scores["f1"], 2)
    (50.0, 94.44)
    """
    if not examples:
        raise UserError("no question to score")
    exact = f1 = 0.0
    missing = 0
    for example in examples:
        if not example.answer_texts:
            raise UserError(f"question id {example.id!r} has no answer to score against; give its answers")
        if example.id not in predictions:
            missing += 1
            continue
        prediction = predictions[example.id]
        exact += max(float(exact_match(prediction, truth)) for truth in example.answer_texts)
        f1 += max(f1_score(prediction, truth) for truth in example.answer_texts)
    if missing:
        _LOG.warning("%d of %d questions have no prediction (scored 0)", missing, len(examples))
    return {"exact_match": 100.0 * exact / len(examples), "f1": 100.0 * f1 / len(examples)}
