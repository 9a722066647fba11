"""The sentence and sentence-pair tasks of fine-tuning: a label (or a score) per text or pair.

NSMC, hate speech, KorNLI, PAWS, Question Pair, KorSTS and any TSV with named columns.  The files
are read as KcBERT-Finetune reads them (:mod:`kcbert_tf.tasks.sentence.files`), cleaned with
``clean()`` unless told not to; the labels are those of the training file (sorted, numbers in
numeric order), an eval label training never saw is an error.  Texts are tokenized and packed in
the graph (:mod:`kcbert_tf.text.model_inputs`, the ids transformers gives), padded to
``max_seq_length`` so shapes are static.  The eval file is scored with accuracy and macro-F1
(scikit-learn), or Pearson and Spearman (SciPy) for a regression.

A trained model (``finetune``'s, or a transformers ``BertForSequenceClassification`` brought in
with ``import-hf``) predicts for a TSV with the record's columns (:meth:`SentenceTask.predict_file`):
one output line per input line in input order, the input's columns then ``predicted`` and each
class's probability (``p_LABEL``) or the score; an empty text gets an empty prediction.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable, Iterator

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskColumns, TaskRecord
from kcbert_tf.tasks.contract import FineTuningTask, TaskSettings
from kcbert_tf.tasks.sentence.metric import score

__all__ = ["SentenceTask"]

_LOG = logging.getLogger(__name__)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class SentenceTask(FineTuningTask):
    """A sentence (pair) classification or regression task: read, batched, scored, predicted."""

    head = "sequence_classification"
    flags = ("text_column", "text_pair_column", "label_column", "regression", "no_clean")

    @classmethod
    def configure(cls, settings: TaskSettings, args) -> TaskSettings:
        """The columns, ``--regression`` and ``--no-clean`` from the command line."""
        settings = super().configure(settings, args)
        base = settings.columns
        text = args.text_column or (base and base.text)
        label = args.label_column or (base and base.label)
        if not text or not label:
            raise UserError(f"--task {settings.name} needs --text-column and --label-column")
        columns = TaskColumns(text, label, args.text_pair_column or (base and base.text_pair) or None)
        regression = settings.regression or args.regression
        return dataclasses.replace(settings, columns=columns, regression=regression,
                                   metric="spearman" if regression else settings.metric,
                                   clean=settings.clean and not args.no_clean)

    def __init__(self, settings: TaskSettings, files):
        from kcbert_tf.tasks.sentence.files import read_examples

        super().__init__(settings, files)
        clean, regression, limit_train = settings.clean, settings.regression, files.limit_train
        train = read_examples(files.train, settings.columns, clean=clean, regression=regression)
        evaluation = read_examples(files.eval, settings.columns, clean=clean, regression=regression)
        for examples in (train, evaluation):
            if examples.empty:
                _LOG.info("%s: %d example(s) with an empty text skipped", examples.path, examples.empty)
        if limit_train:
            train = dataclasses.replace(
                train, texts=train.texts[:limit_train], labels=train.labels[:limit_train],
                pairs=None if train.pairs is None else train.pairs[:limit_train],
            )
        self.train, self.evaluation = train, evaluation
        self.labels = self._labels()
        self.train_size = len(train)

    @property
    def summary(self) -> dict:
        return {
            "train_examples": len(self.train),
            "eval_examples": len(self.evaluation),
            "skipped_empty": {"train": self.train.empty, "eval": self.evaluation.empty},
        }

    def record(self, config) -> TaskRecord:
        settings = self.settings
        return TaskRecord(settings.name, self.head, settings.max_seq_length, settings.clean,
                          labels=None if self.labels is None else tuple(self.labels), columns=settings.columns)

    def describe(self) -> str:
        what = "regression" if self.labels is None else f"{len(self.labels)} labels"
        return f"{what}, {self.settings.columns}, {len(self.train)} train / {len(self.evaluation)} eval examples"

    def _labels(self) -> list[str] | None:
        """The label names (sorted, numbers numerically), or None for regression; unseen eval
        labels are an error."""
        if self.settings.regression:
            return None
        train, evaluation = self.train, self.evaluation
        names = sorted(set(train.labels), key=lambda name: (0, float(name), name) if _is_number(name) else (1, 0, name))
        unseen = sorted(set(evaluation.labels) - set(names))
        if unseen:
            raise UserError(
                f"{evaluation.path}: label(s) {unseen} never occur in {train.path} (its labels: {names}); "
                "a classifier can only predict the labels it was trained on"
            )
        return names

    def model_config(self, config):
        return config.with_labels(self.labels)

    def compile_args(self) -> dict:
        import keras

        if self.labels is None:
            return {"loss": keras.losses.MeanSquaredError()}
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def _targets(self, examples):
        import numpy as np

        if self.labels is None:
            return np.asarray([float(v) for v in examples.labels], np.float32)
        index = {name: i for i, name in enumerate(self.labels)}
        return np.asarray([index[v] for v in examples.labels], np.int32)

    def _dataset(self, tokenizer, examples, targets, order, *, batch_size: int):
        """``(x, y)`` batches of ``batch_size`` of the examples at ``order``: texts packed in the
        graph, padded to the max length."""
        import tensorflow as tf

        from kcbert_tf.text.model_inputs import pack_fixed

        length = self.settings.max_seq_length
        texts = tf.constant(examples.texts)
        pairs = None if examples.pairs is None else tf.constant(examples.pairs)
        targets = tf.constant(targets)

        def pack(indices):
            inputs = pack_fixed(tokenizer, tf.gather(texts, indices), None if pairs is None else tf.gather(pairs, indices), length)
            return inputs, tf.gather(targets, indices)

        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
        return dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def train_dataset(self, tokenizer, batch_size: int, seed: int, epochs: int):
        from kcbert_tf.training.core import epoch_batches

        order = epoch_batches(len(self.train), batch_size, epochs, seed)
        return self._dataset(tokenizer, self.train, self._targets(self.train), order, batch_size=batch_size)

    def evaluate(self, model, tokenizer, batch_size: int) -> dict:
        """Score the model on the eval file (padded with copies of its first example to whole
        batches, the copies' outputs dropped)."""
        import numpy as np

        evaluation = self.evaluation
        extra = -len(evaluation) % batch_size
        padded = dataclasses.replace(
            evaluation, texts=evaluation.texts + evaluation.texts[:1] * extra,
            pairs=None if evaluation.pairs is None else evaluation.pairs + evaluation.pairs[:1] * extra,
        )
        targets = self._targets(evaluation)
        data = self._dataset(tokenizer, padded, np.concatenate([targets, targets[:1].repeat(extra)]),
                             np.arange(len(padded)), batch_size=batch_size)
        outputs = model.predict(data, verbose=0)[: len(evaluation)]
        predictions = outputs[:, 0] if self.labels is None else outputs.argmax(-1)
        return score(predictions, targets, self.labels is None)

    @classmethod
    def predict_file(cls, source, task: TaskRecord, input_path: str, output_path: str | None, *, batch_size: int):
        """The predictions for a TSV with the record's text columns (a label column may be there
        or not), written as tab-separated lines in input order as they are computed (the input
        is streamed: a file of any size); returns the counts."""
        from kcbert_tf.tasks.prediction_output import prediction_output, report_written
        from kcbert_tf.tasks.sentence.files import stream_rows

        columns = task.columns
        needed = [name for name in (columns.text, columns.text_pair) if name]
        header, numbered = stream_rows(input_path, needed)
        rows = (dict(zip(header, fields)) for _, fields in numbered)
        extra = ["predicted"] + ([] if task.labels is None else [f"p_{name}" for name in task.labels])
        counts = {"examples": 0, "predicted": 0, "ids": 0, "compute_s": 0.0}
        with prediction_output(output_path) as out:
            out.write("\t".join(header + extra) + "\n")
            for row, result in predict(source, task, rows, batch_size=batch_size, stats=counts):
                out.write("\t".join([row[name] for name in header] + [result.get(name, "") for name in extra]) + "\n")
                counts["examples"] += 1
                counts["predicted"] += bool(result)
        report_written(output_path, f"{counts['examples']:,} example(s)",
                       f"{counts['ids']:,} ids through the model in {counts['compute_s']:.2f} s")
        return counts


#: Rows read, sorted by length and predicted together (the input is streamed in chunks this size).
CHUNK_ROWS = 8192


def predict(source, task: TaskRecord, rows: Iterable[dict], *, batch_size: int = 64,
            stats: dict | None = None) -> Iterator[tuple[dict, dict]]:
    """For each input row (column → text), in input order, ``(row, result)``: ``{"predicted":
    label, "p_LABEL": ...}`` or ``{"predicted": score}``, ``{}`` where the text is empty.
    ``source`` is the :class:`~kcbert_tf.model.model_dir.ModelDir`, ``task`` its record (with
    any overrides).  Rows are read in chunks, sorted by length into batches of ``batch_size``
    cut to their longest row (:mod:`kcbert_tf.tasks.length_batches`), through the compiled model.
    ``stats``, if given, gets the ids computed (``ids``) and the seconds spent (``compute_s``)
    added to it."""
    import itertools

    from kcbert_tf.tasks.length_batches import compiled_forward, eager_for_small_inputs

    forward = compiled_forward(source.load_model())
    tokenizer = source.tokenizer()
    rows = iter(rows)
    done = 0
    stats = {} if stats is None else stats
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        # The rows so far: at most EAGER_MAX_ROWS only when this first chunk is the whole input.
        with eager_for_small_inputs(done + len(chunk)):
            results = _predict_chunk(forward, tokenizer, task, chunk, batch_size, stats)
        yield from zip(chunk, results)
        done += len(chunk)
        if len(chunk) == CHUNK_ROWS or done > CHUNK_ROWS:  # a progress line for inputs of more than one chunk
            _LOG.info("  predicted %s", f"{done:,}")


def _predict_chunk(forward, tokenizer, task: TaskRecord, rows: list[dict], batch_size: int, stats: dict) -> list[dict]:
    import time

    import numpy as np
    import tensorflow as tf

    from kcbert_tf.tasks.length_batches import predict_by_length
    from kcbert_tf.text.cleaning import clean
    from kcbert_tf.text.model_inputs import pack_pair, pack_single

    columns, labels = task.columns, task.labels
    prepare = clean if task.clean else str.strip
    texts = [prepare(row[columns.text]) for row in rows]
    pairs = [prepare(row[columns.text_pair]) for row in rows] if columns.text_pair else None
    usable = [i for i in range(len(rows)) if texts[i] and (pairs is None or pairs[i])]
    results: list[dict] = [{} for _ in rows]
    if not usable:
        return results
    if pairs is None:
        packed = pack_single(tokenizer, tf.constant([texts[i] for i in usable]), task.max_seq_length)
    else:
        packed = pack_pair(tokenizer, tf.constant([texts[i] for i in usable]), tf.constant([pairs[i] for i in usable]),
                           task.max_seq_length)
    inputs = {name: value.numpy() for name, value in packed.items()}
    started = time.perf_counter()
    outputs = predict_by_length(forward, inputs, batch_size=batch_size)
    stats["compute_s"] = stats.get("compute_s", 0.0) + time.perf_counter() - started
    stats["ids"] = stats.get("ids", 0) + int(inputs["padding_mask"].sum())
    if labels is None:
        for i, value in zip(usable, outputs[:, 0]):
            results[i] = {"predicted": f"{float(value):.4f}"}
        return results
    probabilities = np.exp(outputs - outputs.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    for i, row in zip(usable, probabilities):
        results[i] = {"predicted": labels[int(row.argmax())], **{f"p_{name}": f"{p:.4f}" for name, p in zip(labels, row)}}
    return results
