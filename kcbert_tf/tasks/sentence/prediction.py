"""A sentence model's predictions for a TSV, whatever runs the model: the one reading, batching
order and output format of ``predict`` for the sentence tasks, without TensorFlow.

The Keras model (:meth:`kcbert_tf.tasks.sentence.task.SentenceTask.predict_file`) and a LiteRT
model (:mod:`kcbert_tf.litert.predict`) differ only in how a chunk of rows becomes outputs: each
gives :func:`predict_sentence_file` a ``predict_chunk(rows, rows_so_far)`` returning one result a
row.  The input is streamed in chunks of :data:`CHUNK_ROWS`; the output is written as it is
computed, one line per input line in input order: the input's columns, then ``predicted`` and each
class's probability (``p_LABEL``) or the score; an empty text (once prepared) gets an empty
prediction.

Example:

>>> import numpy as np
>>> chunk_results(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([0, 2]), 3, ("neg", "pos"))
[{'predicted': 'neg', 'p_neg': '0.5000', 'p_pos': '0.5000'}, {}, {'predicted': 'neg', 'p_neg': '0.8808', 'p_pos': '0.1192'}]
"""

from __future__ import annotations

import itertools
import logging
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.tasks.prediction_output import prediction_output, report_written
from kcbert_tf.tasks.sentence.files import Columns, stream_rows

__all__ = ["CHUNK_ROWS", "PREDICT_REMEDY", "chunk_results", "softmax", "predict_rows", "predict_sentence_file", "record_columns"]

_LOG = logging.getLogger(__name__)

#: Rows read, sorted by length and predicted together (the input is streamed in chunks this size).
CHUNK_ROWS = 8192

#: What to do about a missing column when predicting.
PREDICT_REMEDY = "pass --text-column (and --text-pair-column) with names from it"

#: ``predict_chunk(rows, rows_so_far)``: one result a row of the chunk, ``{}`` for an empty text.
PredictChunk = Callable[[list, int], list]


def record_columns(record: TaskRecord, text_columns=None) -> Columns:
    """The TSV columns a sentence model reads: its record's (an imported model's: ``text``), with
    ``predict``'s ``--text-column`` / ``--text-pair-column``."""
    columns = Columns(**record.options["columns"]) if "columns" in record.options else Columns("text", "label")
    text, pair = text_columns or (None, None)
    return columns._replace(text=text or columns.text, text_pair=pair or columns.text_pair)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities from logits along ``axis`` (float32 safe: the maximum subtracted first)."""
    exp = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def chunk_results(outputs: np.ndarray, chosen: np.ndarray, rows: int, labels: Sequence[str] | None) -> list[dict]:
    """The results of a chunk of ``rows`` rows from the model's ``outputs`` for the rows
    ``chosen`` (those with a text): ``{"predicted": label, "p_LABEL": ...}`` (a softmax of the
    logits) or ``{"predicted": score}``; ``{}`` for the others."""
    results: list[dict] = [{} for _ in range(rows)]
    if labels is None:
        for i, value in zip(chosen, outputs[:, 0]):
            results[i] = {"predicted": f"{float(value):.4f}"}
        return results
    for i, row in zip(chosen, softmax(outputs)):
        results[i] = {"predicted": labels[int(row.argmax())], **{f"p_{name}": f"{p:.4f}" for name, p in zip(labels, row)}}
    return results


def predict_rows(predict_chunk: PredictChunk, rows: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
    """For each input row (column → text), in input order, ``(row, result)``: the rows are read in
    chunks of :data:`CHUNK_ROWS`, each predicted by ``predict_chunk``; a progress line a chunk for
    an input of more than one."""
    rows = iter(rows)
    done = 0
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        yield from zip(chunk, predict_chunk(chunk, done + len(chunk)))
        done += len(chunk)
        if len(chunk) == CHUNK_ROWS or done > CHUNK_ROWS:
            _LOG.info("  predicted %s", f"{done:,}")


def predict_sentence_file(predict_chunk: PredictChunk, labels: Sequence[str] | None, columns: Columns,
                          input_path: str, output_path: str | None, stats: dict) -> dict:
    """The predictions for a TSV with ``columns``' text columns (a label column may be there or
    not), written as tab-separated lines in input order as they are computed (a file of any size);
    returns the counts (``stats``, in which ``predict_chunk`` adds up ``ids`` and ``compute_s``)."""
    needed = [name for name in (columns.text, columns.text_pair) if name]
    header, numbered = stream_rows(input_path, needed, PREDICT_REMEDY)
    rows = (dict(zip(header, fields)) for _, fields in numbered)
    extra = ["predicted"] + ([] if labels is None else [f"p_{name}" for name in labels])
    counts = {"examples": 0, "predicted": 0, "ids": 0, "compute_s": 0.0}
    stats.update(counts)
    with prediction_output(output_path) as out:
        out.write("\t".join(header + extra) + "\n")
        for row, result in predict_rows(predict_chunk, rows):
            out.write("\t".join([row[name] for name in header] + [result.get(name, "") for name in extra]) + "\n")
            stats["examples"] += 1
            stats["predicted"] += bool(result)
    report_written(output_path, f"{stats['examples']:,} example(s)",
                   f"{stats['ids']:,} ids through the model in {stats['compute_s']:.2f} s")
    return stats
