"""Labelled text files for fine-tuning, read exactly as KcBERT-Finetune's processors read them.

A task file is tab-separated with a header line naming the columns, one example a line, and no
CSV quoting: a ``"`` is an ordinary character (Python's ``csv`` module with its default quoting
silently merges rows of KorNLI, KorSTS and PAWS, whose sentences hold unbalanced quotes).  An
example is a text, optionally a second text (a sentence pair) and a label: a class name, or a
number for regression (KorSTS's 0-5 score).

Texts are cleaned with KcBERT's ``clean()`` by default, as the model card recommends; an example
whose text is empty (before or after cleaning) is counted and skipped.  Everything else that is
wrong ends in a :class:`~kcbert_tf.errors.UserError` naming the file, the line and the fix.

Example:

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "train.tsv")
>>> _ = open(path, "w", encoding="utf-8").write('id\\tdocument\\tlabel\\n1\\t"정말 재밌다ㅋㅋㅋㅋ\\t1\\n2\\t\\t0\\n')
>>> examples = read_examples(path, TaskColumns(text="document", label="label"))
>>> examples.texts, examples.labels, examples.empty
(['"정말 재밌다ㅋㅋ'], ['1'], 1)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskColumns
from kcbert_tf.tasks.task_files import stream_lines

__all__ = ["Examples", "stream_rows", "read_rows", "read_examples"]


@dataclasses.dataclass
class Examples:
    """The examples of one file: texts (and second texts), labels as written, and what was
    skipped (``empty``: texts empty before or after cleaning)."""

    path: str
    texts: list
    pairs: list | None
    labels: list
    empty: int = 0

    def __len__(self) -> int:
        return len(self.texts)


def stream_rows(path: str | os.PathLike, needed: list[str]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """A task file's header (checked to have the ``needed`` columns) and its non-blank rows as
    ``(line number, fields)``, read as they are needed (a file of any size); a row with another
    number of fields than the header is an error when it is reached."""
    path = os.fspath(path)
    lines = stream_lines(path, "the tab-separated file with a header line")
    first = next(lines)
    if not first.strip():
        raise UserError(f"{path}: empty, or no header line (the first line names the columns)")
    header = first.rstrip("\r").split("\t")
    missing = [name for name in needed if name not in header]
    if missing:
        raise UserError(
            f"{path}: no column {', '.join(map(repr, missing))}; the header has {header}; pass "
            "--text-column, --text-pair-column and --label-column with names from it"
        )

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, line in enumerate(lines, start=2):
            line = line.rstrip("\r")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                raise UserError(
                    f"{path}:{number}: {len(fields)} tab-separated fields, the header has {len(header)}; "
                    "fix the line (a tab inside a text?) or remove it"
                )
            yield number, fields

    return header, rows()


def read_rows(path: str | os.PathLike, needed: list[str]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """:func:`stream_rows`, all rows at once."""
    header, rows = stream_rows(path, needed)
    return header, list(rows)


def read_examples(
    path: str | os.PathLike, columns: TaskColumns, *, clean: bool = True, regression: bool = False
) -> Examples:
    """The examples of a task file (see the module docstring); ``regression`` checks that every
    label is a number."""
    from kcbert_tf.text.cleaning import clean as clean_text

    path = os.fspath(path)
    wanted = [columns.text, columns.label] + ([columns.text_pair] if columns.text_pair else [])
    header, rows = read_rows(path, wanted)
    text_at, label_at = header.index(columns.text), header.index(columns.label)
    pair_at = header.index(columns.text_pair) if columns.text_pair else None
    examples = Examples(path, [], [] if pair_at is not None else None, [])
    for number, fields in rows:
        label = fields[label_at].strip()
        if not label:
            raise UserError(f"{path}:{number}: no label in column {columns.label!r}")
        if regression:
            try:
                float(label)
            except ValueError:
                raise UserError(
                    f"{path}:{number}: label {label!r} is not a number; a regression task needs "
                    "numeric labels (or drop --regression)"
                ) from None
        text = clean_text(fields[text_at]) if clean else fields[text_at].strip()
        pair = None
        if pair_at is not None:
            pair = clean_text(fields[pair_at]) if clean else fields[pair_at].strip()
        if not text or (pair_at is not None and not pair):
            examples.empty += 1
            continue
        examples.texts.append(text)
        if pair_at is not None:
            examples.pairs.append(pair)
        examples.labels.append(label)
    if not examples.texts:
        raise UserError(f"{path}: no example with a text ({examples.empty} empty)")
    return examples
