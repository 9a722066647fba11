"""The sentence and sentence-pair tasks of fine-tuning: a label (or a score) per text or pair.

NSMC, hate speech, KorNLI, PAWS, Question Pair, KorSTS and any TSV with named columns
(``custom``).  The files are read as KcBERT-Finetune reads them
(:mod:`kcbert_tf.tasks.sentence.files`); the texts go through the classifier's preprocessor
(:class:`~kcbert_tf.model.text_classifier_preprocessor.KcBertTextClassifierPreprocessor`:
KcBERT's ``clean()`` unless ``--no-clean``, then transformers' ids, packed and padded to
``max_seq_length`` so shapes are static), the same one the saved model carries; an example whose
text is empty once prepared is counted and skipped.  The labels are those of the training file
(sorted, numbers in numeric order); an eval label training never saw is an error.  The eval file
is scored with accuracy and macro-F1 (scikit-learn), or Pearson and Spearman (SciPy) for a
regression.

A trained model (``finetune``'s, or a transformers ``BertForSequenceClassification`` brought in
with ``import-hf``) predicts for a TSV with the record's columns (:meth:`SentenceTask.predict_file`):
one output line per input line in input order, the input's columns then ``predicted`` and each
class's probability (``p_LABEL``) or the score; an empty text gets an empty prediction.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import tensorflow as tf

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor
from kcbert_tf.tasks.contract import Evaluation, FineTuningTask, TaskPreset, TrainingSettings, flag
from kcbert_tf.tasks.length_batches import eager_for_small_inputs, model_outputs
from kcbert_tf.tasks.sentence.files import Columns, Examples, read_examples
from kcbert_tf.tasks.sentence.metric import score
from kcbert_tf.tasks.sentence.prediction import (CHUNK_ROWS, chunk_results, predict_sentence_file,
                                                 record_columns)
from kcbert_tf.training.length_buckets import TrainingExamples

__all__ = ["SentenceSettings", "SentenceTask"]

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SentenceSettings(TrainingSettings):
    """A sentence task's settings: the shared ones, its TSV columns, regression, cleaning."""

    text_column: str | None = flag("the TSV column of the text", default=None)
    text_pair_column: str | None = flag("a sentence-pair task: the column of the second text", default=None)
    label_column: str | None = flag("the column of the label (a class name, or a number with --regression)",
                                    default=None)
    regression: bool = flag("numeric labels: one score, mean squared error, Pearson/Spearman", default=False)
    clean: bool = flag("take the texts as given, not through KcBERT's clean()", default=True)

    @property
    def columns(self) -> Columns:
        return Columns(self.text_column, self.label_column, self.text_pair_column)

    def check(self) -> None:
        super().check()
        if not self.text_column or not self.label_column:
            raise UserError("this task needs --text-column and --label-column (the TSV's header names)")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _decoded(tensor) -> list[str]:
    return [value.decode("utf-8") for value in tensor.numpy().tolist()]


class SentenceTask(FineTuningTask):
    """A sentence (pair) classification or regression task: read, batched, scored, predicted."""

    head = "sequence_classification"
    settings_type = SentenceSettings
    serves_imported_models = True

    def __init__(self, name: str, settings: SentenceSettings, files, tokenizer):
        super().__init__(name, settings, files, tokenizer)
        if settings.regression and settings.metric not in ("pearson", "spearman", "mse"):
            self.settings = settings = dataclasses.replace(settings, metric="spearman")
        self.evaluation_imports = ("scipy.stats",) if settings.regression else ("sklearn.metrics",)
        self.preprocessor = KcBertTextClassifierPreprocessor(tokenizer, sequence_length=settings.max_seq_length,
                                                             clean=settings.clean)
        train = self._prepared(read_examples(files.train, settings.columns, regression=settings.regression))
        self.evaluation = self._prepared(read_examples(files.eval, settings.columns, regression=settings.regression))
        if files.limit_train:
            train = dataclasses.replace(
                train, texts=train.texts[: files.limit_train], labels=train.labels[: files.limit_train],
                pairs=None if train.pairs is None else train.pairs[: files.limit_train],
            )
        self.train = train
        self.labels = self._labels()
        self._training: TrainingExamples | None = None
        self._evaluation_inputs: dict | None = None

    def _prepared(self, examples: Examples) -> Examples:
        """The examples as the model sees their texts (the preprocessor's ``prepare``), those
        left empty skipped and counted."""
        texts = _decoded(self.preprocessor.prepare(tf.constant(examples.texts, tf.string)))
        pairs = None if examples.pairs is None else _decoded(self.preprocessor.prepare(tf.constant(examples.pairs, tf.string)))
        kept = [i for i in range(len(texts)) if texts[i] and (pairs is None or pairs[i])]
        prepared = Examples(examples.path, [texts[i] for i in kept], None if pairs is None else [pairs[i] for i in kept],
                            [examples.labels[i] for i in kept], empty=len(texts) - len(kept))
        if prepared.empty:
            _LOG.info("%s: %d example(s) with an empty text skipped", examples.path, prepared.empty)
        if not prepared.texts:
            raise UserError(f"{examples.path}: no example with a text ({prepared.empty} empty)")
        return prepared

    @property
    def summary(self) -> dict:
        return {
            "train_examples": len(self.train),
            "eval_examples": len(self.evaluation),
            "skipped_empty": {"train": self.train.empty, "eval": self.evaluation.empty},
        }

    @property
    def segments(self) -> int:
        return 2 if self.settings.text_pair_column else 1

    @property
    def options(self) -> dict:
        return {"columns": self.settings.columns._asdict()}

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

    def compile_args(self) -> dict:
        import keras

        if self.labels is None:
            return {"loss": keras.losses.MeanSquaredError()}
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [],
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],  # filler rows: weight 0
        }

    def _targets(self, examples: Examples) -> np.ndarray:
        if self.labels is None:
            return np.asarray([float(v) for v in examples.labels], np.float32)
        index = {name: i for i, name in enumerate(self.labels)}
        return np.asarray([index[v] for v in examples.labels], np.int32)

    def _packed(self, examples: Examples) -> dict:
        """The examples' model inputs ``[examples, max_length]``, tokenized and packed once."""
        parts = []
        for start in range(0, len(examples), CHUNK_ROWS):
            texts = tf.constant(examples.texts[start:start + CHUNK_ROWS])
            pairs = None if examples.pairs is None else tf.constant(examples.pairs[start:start + CHUNK_ROWS])
            parts.append({name: value.numpy() for name, value in self.preprocessor.pack(texts, pairs).items()})
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def training_examples(self) -> TrainingExamples:
        if self._training is None:
            self._training = TrainingExamples(self._packed(self.train), self._targets(self.train))
        return self._training

    def evaluate(self, model) -> Evaluation:
        """Score the model on the eval file (packed once, batched by length)."""
        if self._evaluation_inputs is None:
            self._evaluation_inputs = self._packed(self.evaluation)
        outputs = model_outputs(model, self._evaluation_inputs, batch_size=self.settings.batch_size)
        predictions = outputs[:, 0] if self.labels is None else outputs.argmax(-1)
        return Evaluation(score(predictions, self._targets(self.evaluation), self.labels is None))

    @classmethod
    def predict_file(cls, model, record: TaskRecord, input_path: str, output_path: str | None, *, batch_size: int,
                     text_columns=None):
        """The predictions for a TSV with the record's text columns (a label column may be there
        or not), written as tab-separated lines in input order as they are computed
        (:func:`~kcbert_tf.tasks.sentence.prediction.predict_sentence_file`); returns the counts."""
        columns = record_columns(record, text_columns)
        stats: dict = {}

        def predict_chunk(rows: list[dict], rows_so_far: int) -> list[dict]:
            # At most EAGER_MAX_ROWS only when this first chunk is the whole input.
            with eager_for_small_inputs(rows_so_far):
                return _predict_chunk(model, columns, rows, batch_size, stats)

        return predict_sentence_file(predict_chunk, model.labels, columns, input_path, output_path, stats)


def _predict_chunk(model, columns: Columns, rows: list[dict], batch_size: int, stats: dict) -> list[dict]:
    preprocessor, labels = model.preprocessor, model.labels
    texts = preprocessor.prepare(tf.constant([row[columns.text] for row in rows]))
    pairs = preprocessor.prepare(tf.constant([row[columns.text_pair] for row in rows])) if columns.text_pair else None
    usable = tf.strings.length(texts) > 0
    if pairs is not None:
        usable &= tf.strings.length(pairs) > 0
    chosen = np.flatnonzero(usable.numpy())
    if not len(chosen):
        return [{} for _ in rows]
    packed = preprocessor.pack(tf.gather(texts, chosen), None if pairs is None else tf.gather(pairs, chosen), pad=False)
    inputs = {name: value.numpy() for name, value in packed.items()}
    started = time.perf_counter()
    outputs = model_outputs(model, inputs, batch_size=batch_size)
    stats["compute_s"] = stats.get("compute_s", 0.0) + time.perf_counter() - started
    stats["ids"] = stats.get("ids", 0) + int(inputs["padding_mask"].sum())
    return chunk_results(outputs, chosen, len(rows), labels)


def _sentence(metric: str, max_seq_length: int, epochs: int, batch_size: int, learning_rate: float, text: str,
              label: str, pair: str | None = None, regression: bool = False) -> TaskPreset:
    return TaskPreset(SentenceTask, SentenceSettings(metric, max_seq_length, epochs, batch_size, learning_rate,
                                                     text_column=text, label_column=label, text_pair_column=pair,
                                                     regression=regression))


# The model card's sentence tasks with KcBERT-Finetune's settings (``pyproject.toml`` names them as
# entry points of the kcbert_tf.tasks group).
NSMC = _sentence("accuracy", 50, 8, 64, 5e-5, "document", "label")
#: KcBERT-Finetune has no hate-speech preset: NSMC's settings, on comments.
HATE_SPEECH = _sentence("accuracy", 50, 8, 64, 5e-5, "comments", "hate")
KORNLI = _sentence("accuracy", 72, 10, 128, 3e-5, "sentence1", "gold_label", "sentence2")
PAWS = _sentence("accuracy", 128, 15, 32, 3e-5, "sentence1", "label", "sentence2")
QUESTION_PAIR = _sentence("accuracy", 72, 5, 32, 5e-5, "question1", "is_duplicate", "question2")
KORSTS = _sentence("spearman", 72, 5, 32, 5e-5, "sentence1", "score", "sentence2", regression=True)
#: Any TSV: the columns (and --regression) come from the command line.
CUSTOM = TaskPreset(SentenceTask, SentenceSettings("accuracy", 128, 3, 32, 5e-5))
