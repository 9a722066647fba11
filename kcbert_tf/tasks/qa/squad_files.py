"""SQuAD v1 question-answering files (KorQuAD 1.0's format), read into plain dataclasses.

A file is JSON: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}``.  Each question becomes one :class:`QAExample`
carrying its article's title, its paragraph's context and its answers (texts and character
starts).  ``title`` may be missing (then ``""``); ``answers`` may be missing or empty only when
reading for evaluation without labels (``training=False``).

An answer whose text is not at its ``answer_start`` in the context (a sloppy annotation) is
counted (:attr:`QAFile.misaligned`, logged): such a question is skipped when reading for
training, as transformers' QA examples do (its token positions would be wrong), and kept for
evaluation, where the official metric compares only texts.  Everything else that is wrong (not
JSON, a missing key, a wrong type, a duplicate question id) ends in a
:class:`~kcbert_tf.errors.UserError` naming the file, where in it (``data[3].paragraphs[2].qas[5]``
and the question id) and the fix.

Example:

>>> import json, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "dev.json")
>>> article = {"title": "서울", "paragraphs": [{"context": "서울은 한국의 수도이다.", "qas": [
...     {"id": "q1", "question": "한국의 수도는?", "answers": [{"text": "서울", "answer_start": 0}]},
...     {"id": "q2", "question": "서울은?", "answers": [{"text": "수도", "answer_start": 0}]}]}]}
>>> _ = open(path, "w", encoding="utf-8").write(json.dumps({"data": [article]}))
>>> [(e.id, e.answer_texts, e.aligned) for e in read_squad(path, training=False)]
[('q1', ('서울',), True), ('q2', ('수도',), False)]
>>> train = read_squad(path, training=True)
>>> [e.id for e in train], train.misaligned
(['q1'], 1)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from typing import Iterator, Sequence

from kcbert_tf.errors import UserError
from kcbert_tf.tasks.task_files import read_text

__all__ = ["QAExample", "QAFile", "read_squad", "split_by_article"]

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class QAExample:
    """One question: its id, its article (``article``: the index in ``data``, and ``title``), the
    question, the paragraph's context and the answers (texts and character starts, in order)."""

    id: str
    title: str
    question: str
    context: str
    answer_texts: tuple[str, ...]
    answer_starts: tuple[int, ...]
    article: int = 0

    @property
    def aligned(self) -> bool:
        """Whether every answer's text is in the context at its ``answer_start``."""
        return all(
            0 <= start and self.context[start : start + len(text)] == text
            for text, start in zip(self.answer_texts, self.answer_starts)
        )


@dataclasses.dataclass
class QAFile:
    """The examples of one file, and how many questions had an answer not at its start
    (``misaligned``; skipped when read for training, kept otherwise)."""

    path: str
    examples: list[QAExample]
    misaligned: int = 0

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> QAExample:
        return self.examples[index]


def _load(path: str) -> object:
    text = read_text(path, "a SQuAD v1 JSON file, e.g. KorQuAD_v1.0_train.json")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path}: not JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            "give a SQuAD v1 file ({\"data\": [{\"title\", \"paragraphs\": [...]}]})"
        ) from None


def _field(path: str, where: str, node: object, key: str, kind: type | tuple[type, ...], what: str):
    """``node[key]``, checked to be a ``kind``; a UserError naming ``where`` otherwise."""
    if not isinstance(node, dict):
        raise UserError(f"{path}: {where} is {_json_type(node)}, not an object; {what}")
    if key not in node:
        raise UserError(f"{path}: {where} has no key {key!r}; {what}")
    value = node[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(_JSON_NAMES[k] for k in kinds)
        raise UserError(f"{path}: {where}[{key!r}] is {_json_type(value)}, not {wanted}; {what}")
    return value


_JSON_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), f"a {type(value).__name__}")


def read_squad(path: str | os.PathLike, *, training: bool) -> QAFile:
    """The questions of a SQuAD v1 file (see the module docstring); ``training`` skips questions
    with an answer not at its start and requires at least one answer per question."""
    path = os.fspath(path)
    root = _load(path)
    shape = 'a SQuAD v1 file is {"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}'
    articles = _field(path, "the top level", root, "data", list, shape)
    examples: list[QAExample] = []
    seen: dict[str, str] = {}
    misaligned = 0
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        paragraphs = _field(path, where, article, "paragraphs", list, shape)
        title = article.get("title", "")
        if not isinstance(title, str):
            raise UserError(f"{path}: {where}['title'] is {_json_type(title)}, not a string; {shape}")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(path, where, paragraph, "context", str, shape)
            questions = _field(path, where, paragraph, "qas", list, shape)
            for q, qa in enumerate(questions):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                need = 'each question is {"id", "question", "answers": [{"text", "answer_start"}]}'
                qid = str(_field(path, where, qa, "id", (str, int), need))
                if qid in seen:
                    raise UserError(
                        f"{path}: {where}: question id {qid!r} is also at {seen[qid]}; "
                        "give every question its own id"
                    )
                seen[qid] = where
                where = f"{where} (question id {qid!r})"
                question = _field(path, where, qa, "question", str, need)
                answers = qa.get("answers", [])
                if not isinstance(answers, list):
                    raise UserError(f"{path}: {where}['answers'] is {_json_type(answers)}, not a list; {need}")
                if training and not answers:
                    raise UserError(
                        f"{path}: {where} has no answer; training needs one per question "
                        "(SQuAD v1 has no unanswerable questions)"
                    )
                texts, starts = [], []
                for n, answer in enumerate(answers):
                    texts.append(_field(path, f"{where}['answers'][{n}]", answer, "text", str, need))
                    starts.append(_field(path, f"{where}['answers'][{n}]", answer, "answer_start", int, need))
                example = QAExample(qid, title, question, context, tuple(texts), tuple(starts), a)
                if not example.aligned:
                    misaligned += 1
                    if training:
                        continue
                examples.append(example)
    if misaligned:
        _LOG.warning(
            "%s: %d question(s) with an answer not at its answer_start%s",
            path, misaligned, " skipped (training)" if training else " kept (evaluation compares texts)",
        )
    if not examples:
        raise UserError(f"{path}: no question to {'train on' if training else 'evaluate'} ({misaligned} misaligned)")
    return QAFile(path, examples, misaligned)


def split_by_article(
    examples: Sequence[QAExample], eval_share: float, seed: int
) -> tuple[list[QAExample], list[QAExample]]:
    """``(train, eval)``: whole articles to one side, ``round(eval_share * articles)`` of them
    (at least one each) to eval, chosen by ``seed``; the same input and seed give the same split,
    and each side keeps the file's order.

    >>> ex = [QAExample(str(i), f"t{i // 2}", "q", "c", (), (), i // 2) for i in range(8)]
    >>> train, held = split_by_article(ex, 0.25, seed=0)
    >>> sorted({e.article for e in train}), [e.id for e in held]
    ([0, 1, 2], ['6', '7'])
    """
    articles = sorted({example.article for example in examples})
    if not 0 < eval_share < 1:
        raise UserError(f"eval share {eval_share} is not between 0 and 1 (exclusive); give e.g. 0.1")
    if len(articles) < 2:
        raise UserError(f"{len(articles)} article(s): splitting by article needs at least two")
    count = min(max(1, round(eval_share * len(articles))), len(articles) - 1)
    held = set(random.Random(seed).sample(articles, count))
    train = [example for example in examples if example.article not in held]
    return train, [example for example in examples if example.article in held]
