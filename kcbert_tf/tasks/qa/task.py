"""Extractive question answering as a fine-tuning task (``--task korquad``): the answer's start and
end token in a passage.

The files are SQuAD v1 JSON (:mod:`kcbert_tf.tasks.qa.squad_files`; KorQuAD 1.0 is one); a training
question whose answer is not at its ``answer_start`` is counted, reported and skipped, as
transformers' examples do.  Questions and contexts become features the way transformers' QA
examples build them (:mod:`kcbert_tf.tasks.qa.features`: ``[CLS] question [SEP] window [SEP]``, the
question cut to ``max_query_length`` tokens, windows over the context every ``doc_stride`` tokens,
windows without the answer pointing at ``[CLS]``).  The loss is transformers'
``BertForQuestionAnswering``'s: the mean of the start and the end cross-entropy over the tokens.
Each epoch the eval file is answered by n-best decoding over all windows
(:mod:`kcbert_tf.tasks.qa.decoding`) and scored with KorQuAD 1.0's official EM and F1
(:mod:`kcbert_tf.tasks.qa.korquad_metric`); ``predictions.json`` (``{question_id: answer}``, the best
epoch's) is written beside ``metrics.json``.

A trained answerer (``finetune``'s, or a transformers ``BertForQuestionAnswering`` brought in with
``import-hf``) answers the questions of a SQuAD v1 JSON file with the record's windows
(:meth:`QaTask.predict_file`), writing SQuAD's prediction file ``{question_id: answer_text}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import keras
import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.tasks.contract import FineTuningTask, TaskSettings

__all__ = ["QaTask", "SpanLoss", "predict_answers"]

_LOG = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"


class SpanLoss(keras.losses.Loss):
    """Cross-entropy of the start and of the end position, averaged (transformers'
    ``(start_loss + end_loss) / 2``): ``y_true`` int ``[B, 2]``, ``y_pred`` logits ``[B, L, 2]``."""

    def __init__(self, name: str = "span_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        logits = keras.ops.transpose(y_pred, (0, 2, 1))  # [B, 2, L]
        return keras.losses.sparse_categorical_crossentropy(keras.ops.cast(y_true, "int32"), logits, from_logits=True)


class QaTask(FineTuningTask):
    """A span-extraction task: read, windowed, answered, scored.  Texts are never cleaned: answers
    are character spans of the context as written."""

    head = "question_answering"
    flags = ("doc_stride", "max_query_length", "max_answer_length", "eval_split")

    @classmethod
    def configure(cls, settings: TaskSettings, args) -> TaskSettings:
        """The window flags (``--doc-stride``, ``--max-query-length``, ``--max-answer-length``)."""
        settings = super().configure(settings, args)
        changes = {name: getattr(args, name, None) for name in ("doc_stride", "max_query_length", "max_answer_length")}
        windows = dataclasses.replace(settings.qa, **{name: value for name, value in changes.items() if value is not None})
        for name, value in dataclasses.asdict(windows).items():
            if value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        return dataclasses.replace(settings, qa=windows)

    def __init__(self, settings, files):
        from kcbert_tf.tasks.qa.squad_files import read_squad, split_by_article

        super().__init__(settings, files)
        train_path, eval_path, limit_train, eval_split = files.train, files.eval, files.limit_train, files.eval_split
        if eval_split:  # one file, split by article in memory (KorQuAD's license: no modified copies)
            everything = read_squad(train_path, training=False)
            train_side, eval_side = split_by_article(everything.examples, eval_split, settings.seed)
            aligned = [example for example in train_side if example.aligned and example.answer_texts]
            misaligned = len(train_side) - len(aligned)
            if misaligned:
                _LOG.info("%s: %d training question(s) whose answer is not at its answer_start skipped", train_path, misaligned)
            self.evaluation = dataclasses.replace(everything, examples=eval_side)
        else:
            train = read_squad(train_path, training=True)
            aligned, misaligned = train.examples, train.misaligned
            self.evaluation = read_squad(eval_path, training=False)
        self.train_examples = aligned[: limit_train or None]
        self._summary = {
            "train_examples": len(self.train_examples),
            "eval_examples": len(self.evaluation),
            "skipped_misaligned_answers": misaligned,
            "eval_split": eval_split,
        }
        self.train_size = 0
        self._train_features = self._eval_features = None
        self._latest_answers: dict[str, str] | None = None

    def prepare(self, tokenizer) -> None:
        """Tokenize and window both files (the number of training windows is the epoch)."""
        from kcbert_tf.tasks.qa.features import features_with_tokenizer

        windows = {"max_length": self.settings.max_seq_length, "doc_stride": self.settings.qa.doc_stride,
                   "max_query_length": self.settings.qa.max_query_length}
        self._train_features = features_with_tokenizer(self.train_examples, tokenizer, training=True, **windows)
        self._eval_features = features_with_tokenizer(self.evaluation.examples, tokenizer, training=False, **windows)
        self.train_size = len(self._train_features)
        self._summary.update(train_windows=len(self._train_features), eval_windows=len(self._eval_features))

    @property
    def summary(self) -> dict:
        return dict(self._summary)

    def record(self, config) -> TaskRecord:
        return TaskRecord(self.settings.name, self.head, self.settings.max_seq_length, clean=False, qa=self.settings.qa)

    def describe(self) -> str:
        return (f"{len(self.train_examples)} train questions in {self.train_size} windows / "
                f"{len(self.evaluation)} eval questions in {len(self._eval_features)} windows")

    def model_config(self, config):
        return config.for_question_answering()

    def compile_args(self) -> dict:
        return {"loss": SpanLoss()}

    def train_dataset(self, tokenizer, batch_size: int, seed: int, epochs: int):
        import tensorflow as tf

        from kcbert_tf.training.core import epoch_batches

        features = self._train_features
        inputs = {name: tf.constant(value) for name, value in features.model_inputs.items()}
        spans = tf.constant(np.stack([features.start_positions, features.end_positions], axis=1).astype(np.int32))
        order = epoch_batches(len(features), batch_size, epochs, seed)

        def gather(indices):
            return {name: tf.gather(value, indices) for name, value in inputs.items()}, tf.gather(spans, indices)

        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True)
        return dataset.map(gather).prefetch(tf.data.AUTOTUNE)

    def _answers(self, model, batch_size: int) -> dict[str, str]:
        from kcbert_tf.tasks.qa.decoding import answer_questions

        return answer_questions(model, self.evaluation.examples, self._eval_features, batch_size=batch_size,
                                max_answer_length=self.settings.qa.max_answer_length)

    def evaluate(self, model, tokenizer, batch_size: int) -> dict:
        from kcbert_tf.tasks.qa.korquad_metric import korquad_scores

        self._latest_answers = self._answers(model, batch_size)
        scores = korquad_scores(self.evaluation.examples, self._latest_answers)
        return {"exact_match": float(scores["exact_match"]), "f1": float(scores["f1"])}

    def evaluation_outputs(self) -> dict[str, str] | None:
        """The answers of the latest :meth:`evaluate` (the loop keeps the best epoch's)."""
        return self._latest_answers

    def write_outputs(self, directory, outputs: dict[str, str]) -> None:
        """``predictions.json``: ``outputs``, the best epoch's answer to every eval question."""
        (directory / PREDICTIONS_FILE).write_text(json.dumps(outputs, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def predict_file(cls, source, task: TaskRecord, input_path: str, output_path: str | None, *, batch_size: int):
        """Answer the questions of a SQuAD v1 JSON file; write ``{question_id: answer_text}``."""
        from kcbert_tf.tasks.prediction_output import write_predictions
        from kcbert_tf.tasks.qa.squad_files import read_squad

        answers = predict_answers(source, task, read_squad(input_path, training=False).examples, batch_size=batch_size)
        write_predictions(output_path, json.dumps(answers, ensure_ascii=False, indent=2) + "\n", f"{len(answers):,} answer(s)")
        return answers


def predict_answers(source, task: TaskRecord, questions, *, batch_size: int = 256) -> dict[str, str]:
    """``{question id: answer text}`` for questions (:class:`~kcbert_tf.tasks.qa.squad_files.QAExample`,
    e.g. ``read_squad(path, training=False).examples``) with the model of ``source`` (a
    :class:`~kcbert_tf.model.model_dir.ModelDir`) and the windows of its record ``task``."""
    from kcbert_tf.tasks.length_batches import compiled_forward, eager_for_small_inputs, predict_by_length
    from kcbert_tf.tasks.qa.decoding import decode_answers
    from kcbert_tf.tasks.qa.features import features_with_tokenizer

    model = source.load_model()
    with eager_for_small_inputs(len(questions)):
        features = features_with_tokenizer(
            questions, source.tokenizer(), training=False, max_length=task.max_seq_length,
            doc_stride=task.qa.doc_stride, max_query_length=task.qa.max_query_length,
        )
        logits = predict_by_length(compiled_forward(model), features.model_inputs, batch_size=batch_size,
                                   per_token=True)
    return decode_answers(questions, features, logits[..., 0], logits[..., 1], max_answer_length=task.qa.max_answer_length)
