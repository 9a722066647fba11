"""``kcbert-tf predict`` on a LiteRT directory: the same input and output as on a model
directory, with no TensorFlow, Keras or PyTorch in the process.

A sentence classifier (or regressor) reads a TSV with its record's columns and writes, in input
order, the input's columns then ``predicted`` and each class's probability (``p_LABEL``) or the
score (:mod:`kcbert_tf.tasks.sentence.prediction`, shared with the Keras path).  Each text is
prepared in Python as the Keras model's preprocessor prepares it in the graph (KcBERT's
``clean()``, tested to equal the in-graph one; or ``str.strip()`` with ``--no-clean``), packed by
the serving tokenizer (transformers' ids, :mod:`kcbert_tf.text.serving_tokenizer`), sorted by
length into batches of ``--batch-size`` cut to their longest row
(:func:`~kcbert_tf.tasks.length_batches.predict_by_length`, as the Keras path batches) and run by
LiteRT with XNNPACK on ``--threads`` threads (default: every core).

Example::

    kcbert-tf export-litert --model runs/nsmc --output runs/nsmc-int8
    kcbert-tf predict --model runs/nsmc-int8 --input reviews.tsv --output predictions.tsv
"""

from __future__ import annotations

import time

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.litert.litert_dir import LiteRtDir
from kcbert_tf.tasks.length_batches import predict_by_length
from kcbert_tf.tasks.sentence.prediction import chunk_results, predict_sentence_file, record_columns
from kcbert_tf.text.cleaning import clean as clean_text

__all__ = ["predict_litert_file", "prepare_texts"]


def prepare_texts(texts, clean: bool) -> list[str]:
    """The texts as the model sees them: KcBERT's ``clean()``, or stripped."""
    return [clean_text(text) if clean else text.strip() for text in texts]


def predict_litert_file(model: str, input: str, output: str | None = None, *, max_seq_length: int | None = None,
                        clean: bool | None = None, batch_size: int = 64, text_column: str | None = None,
                        text_pair_column: str | None = None, threads: int | None = None) -> dict:
    """A LiteRT sentence model's predictions for ``input`` (see the module); returns the counts."""
    litert = LiteRtDir.read(model)
    record = litert.use(max_seq_length=max_seq_length, clean=clean)
    if record.head != "sequence_classification":
        raise UserError(f"--model {model}: a LiteRT {record.head} model; `predict` serves LiteRT sentence "
                        "classifiers and regressors; predict with its model directory (the one it was exported "
                        "from), or run model.tflite in your app (docs/serving.md)")
    runner = litert.runner(threads=threads)
    tokenizer = litert.tokenizer(record)
    columns = record_columns(record, (text_column, text_pair_column))
    stats: dict = {}

    def predict_chunk(rows: list[dict], rows_so_far: int) -> list[dict]:
        texts = prepare_texts((row[columns.text] for row in rows), record.clean)
        pairs = prepare_texts((row[columns.text_pair] for row in rows), record.clean) if columns.text_pair else None
        chosen = np.asarray([i for i in range(len(rows)) if texts[i] and (pairs is None or pairs[i])], np.int64)
        if not len(chosen):
            return [{} for _ in rows]
        inputs = tokenizer.pack([texts[i] for i in chosen], None if pairs is None else [pairs[i] for i in chosen])
        started = time.perf_counter()
        outputs = predict_by_length(runner, inputs, batch_size=batch_size)
        stats["compute_s"] += time.perf_counter() - started
        stats["ids"] += int(inputs["padding_mask"].sum())
        return chunk_results(outputs, chosen, len(rows), record.labels)

    return predict_sentence_file(predict_chunk, record.labels, columns, input, output, stats)
