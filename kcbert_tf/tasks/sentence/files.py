"""Labelled text files for fine-tuning, read exactly as KcBERT-Finetune's processors read them.

A task file is tab-separated with a header line naming the columns, one example a line, and no
CSV quoting: a ``"`` is an ordinary character (Python's ``csv`` module with its default quoting
silently merges rows of KorNLI, KorSTS and PAWS, whose sentences hold unbalanced quotes).  An
example is a text, optionally a second text (a sentence pair) and a label: a class name, or a
number for regression (KorSTS's 0-5 score).

Texts are read as written: the model's preprocessor cleans them (KcBERT's ``clean()``, as the
model card recommends) and the task skips an example whose text is empty then.  Everything else
that is wrong ends in a :class:`~kcbert_tf.errors.UserError` naming the file, the line and the fix.

Example:

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "train.tsv")
>>> _ = open(path, "w", encoding="utf-8").write('id\\tdocument\\tlabel\\n1\\t"정말 재밌다ㅋㅋㅋㅋ\\t1\\n2\\t\\t0\\n')
>>> examples = read_examples(path, Columns(text="document", label="label"))
>>> examples.texts, examples.labels
(['"정말 재밌다ㅋㅋㅋㅋ', ''], ['1', '0'])
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, NamedTuple

from kcbert_tf.errors import UserError
from kcbert_tf.tasks.task_files import stream_lines

__all__ = ["Columns", "Examples", "stream_rows", "read_rows", "read_examples", "FINETUNE_REMEDY"]

#: What to do about a missing column when fine-tuning.
FINETUNE_REMEDY = "pass --text-column, --text-pair-column and --label-column with names from it"


class Columns(NamedTuple):
    """Which header columns of a TSV hold the text, the label and the optional second text."""

    text: str
    label: str
    text_pair: str | None = None


@dataclasses.dataclass
class Examples:
    """The examples of one file: texts (and second texts) and labels as written, and how many
    were skipped (``empty``: texts empty once prepared for the model)."""

    path: str
    texts: list
    pairs: list | None
    labels: list
    empty: int = 0

    def __len__(self) -> int:
        return len(self.texts)


def stream_rows(path: str | os.PathLike, needed: list[str], remedy: str = FINETUNE_REMEDY
                ) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """A task file's header (checked to have the ``needed`` columns; ``remedy`` says what to do
    when one is missing) and its non-blank rows as ``(line number, fields)``, read as they are
    needed (a file of any size); a row with another number of fields than the header is an error
    when it is reached."""
    path = os.fspath(path)
    lines = stream_lines(path, "the tab-separated file with a header line")
    first = next(lines)
    if not first.strip():
        raise UserError(f"{path}: empty, or no header line (the first line names the columns)")
    header = first.rstrip("\r").split("\t")
    missing = [name for name in needed if name not in header]
    if missing:
        raise UserError(f"{path}: no column {', '.join(map(repr, missing))}; the header has {header}; {remedy}")

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


def read_examples(path: str | os.PathLike, columns: Columns, *, regression: bool = False) -> Examples:
    """The examples of a task file, texts as written (see the module docstring); ``regression``
    checks that every label is a number."""
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
        examples.texts.append(fields[text_at])
        if pair_at is not None:
            examples.pairs.append(fields[pair_at])
        examples.labels.append(label)
    return examples
