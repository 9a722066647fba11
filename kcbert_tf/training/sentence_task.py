"""The sentence and sentence-pair tasks of fine-tuning: a label (or a score) per text or pair.

NSMC, hate speech, KorNLI, PAWS, Question Pair, KorSTS and any TSV with named columns.  The files
are read as KcBERT-Finetune reads them (:mod:`kcbert_tf.text.task_files`), cleaned with
``clean()`` unless told not to; the labels are those of the training file (sorted, numbers in
numeric order), an eval label training never saw is an error.  Texts are tokenized and packed in
the graph (:mod:`kcbert_tf.text.model_inputs`, the ids transformers gives), padded to
``max_seq_length`` so shapes are static.  The eval file is scored with accuracy and macro-F1
(scikit-learn), or Pearson and Spearman (SciPy) for a regression.

It is one of the fine-tuning tasks :mod:`kcbert_tf.training.finetuning` drives (the others:
:mod:`~kcbert_tf.training.ner_task`, :mod:`~kcbert_tf.training.qa_task`); each gives the model
config, the training batches, the loss and the evaluation.
"""

from __future__ import annotations

import dataclasses
import logging

from kcbert_tf.errors import UserError

__all__ = ["SentenceTask", "score"]

_LOG = logging.getLogger(__name__)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def score(predictions, targets, regression: bool) -> dict:
    """The eval metrics: accuracy and macro-F1 (scikit-learn) for class ids, Pearson and
    Spearman (SciPy) and the MSE for scores."""
    import numpy as np

    if regression:
        from scipy.stats import pearsonr, spearmanr

        predictions, targets = np.asarray(predictions, float), np.asarray(targets, float)
        return {
            "pearson": float(pearsonr(predictions, targets).statistic),
            "spearman": float(spearmanr(predictions, targets).statistic),
            "mse": float(np.mean((predictions - targets) ** 2)),
        }
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(targets, predictions)),
        "macro_f1": float(f1_score(targets, predictions, average="macro")),
    }


class SentenceTask:
    """A sentence (pair) classification or regression task: read, batched, scored."""

    def __init__(self, settings, train_path: str, eval_path: str, *, clean: bool, limit_train: int | None = None):
        from kcbert_tf.text.task_files import read_examples

        self.settings = settings
        self.clean = clean
        regression = settings.regression
        train = read_examples(train_path, settings.columns, clean=clean, regression=regression)
        evaluation = read_examples(eval_path, settings.columns, clean=clean, regression=regression)
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
        self.record = {
            "train_examples": len(train),
            "eval_examples": len(evaluation),
            "skipped_empty": {"train": train.empty, "eval": evaluation.empty},
            "columns": dataclasses.asdict(settings.columns),
        }

    def prepare(self, tokenizer) -> None:
        """Nothing to do before training: batches are built as they are read."""

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

    def evaluation_outputs(self):
        """Nothing to keep of an evaluation beyond its scores."""
        return None

    def write_outputs(self, directory, outputs) -> None:
        """Nothing beyond the model and ``metrics.json``."""
