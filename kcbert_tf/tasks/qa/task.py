"""Extractive question answering as a fine-tuning task (``--task korquad``): the answer's start and
end token in a passage.

The files are SQuAD v1 JSON (:mod:`kcbert_tf.tasks.qa.squad_files`; KorQuAD 1.0 is one); a training
question whose answer is not at its ``answer_start`` is counted, reported and skipped, as
transformers' examples do.  Questions and contexts become features the way transformers' QA
examples build them (:mod:`kcbert_tf.tasks.qa.features`: ``[CLS] question [SEP] window [SEP]``, the
question cut to ``max_query_length`` tokens, windows over the context every ``doc_stride`` tokens,
windows without the answer pointing at ``[CLS]``).  The loss is transformers'
``BertForQuestionAnswering``'s: the mean of the start and the end cross-entropy over the tokens
(:class:`~kcbert_tf.model.question_answerer.SpanLoss`).  The windows are the question answerer's
preprocessor's (:class:`~kcbert_tf.model.question_answerer_preprocessor.KcBertQuestionAnswererPreprocessor`),
so the saved model carries them.
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

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.model.question_answerer import SpanLoss
from kcbert_tf.model.question_answerer_preprocessor import KcBertQuestionAnswererPreprocessor, QaWindows
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.tasks.contract import Evaluation, FineTuningTask, TaskPreset, TrainingSettings, flag
from kcbert_tf.tasks.length_batches import eager_for_small_inputs, model_outputs
from kcbert_tf.tasks.prediction_output import write_predictions
from kcbert_tf.tasks.qa.decoding import decode_answers
from kcbert_tf.tasks.qa.features import features_with_tokenizer
from kcbert_tf.tasks.qa.korquad_metric import korquad_scores
from kcbert_tf.tasks.qa.squad_files import read_squad, split_by_article
from kcbert_tf.training.length_buckets import TrainingExamples

__all__ = ["QaSettings", "QaTask", "predict_answers"]

_LOG = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.json"


@dataclasses.dataclass(frozen=True)
class QaSettings(TrainingSettings):
    """Question answering's settings: the shared ones, the windows, and an eval split."""

    doc_stride: int = flag("tokens between the starts of consecutive context windows", default=128)
    max_query_length: int = flag("a question's tokens at most", default=64)
    max_answer_length: int = flag("an answer's tokens at most", default=30)
    eval_split: float | None = flag(
        "evaluate on this share of --train's articles instead of --eval, split in memory by article with "
        "--seed (KorQuAD's license allows no modified copies on disk)", default=None)

    def check(self) -> None:
        super().check()
        for name in ("doc_stride", "max_query_length", "max_answer_length"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_split is not None and not 0 < self.eval_split < 1:
            raise UserError(f"--eval-split {self.eval_split} must be between 0 and 1 (a share of the articles)")

    @property
    def windows(self) -> QaWindows:
        return QaWindows(self.doc_stride, self.max_query_length, self.max_answer_length)


class QaTask(FineTuningTask):
    """A span-extraction task: read, windowed, answered, scored.  Texts are never cleaned: answers
    are character spans of the context as written."""

    head = "question_answering"
    settings_type = QaSettings
    serves_imported_models = True
    needs_eval_file = False  # --eval, or --eval-split SHARE of the training file's articles

    def __init__(self, name: str, settings: QaSettings, files, tokenizer):
        super().__init__(name, settings, files, tokenizer)
        if files.eval is None and settings.eval_split is None:
            raise UserError("--eval is required (or --eval-split SHARE: a share of --train's articles)")
        self.preprocessor = KcBertQuestionAnswererPreprocessor(tokenizer, sequence_length=settings.max_seq_length,
                                                               **settings.windows._asdict())
        train_path, eval_split = files.train, settings.eval_split
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
            self.evaluation = read_squad(files.eval, training=False)
        self.train_examples = aligned[: files.limit_train or None]
        self._train_features = self._features(self.train_examples, training=True)
        self._eval_features = self._features(self.evaluation.examples, training=False)
        self._summary = {
            "train_examples": len(self.train_examples),
            "eval_examples": len(self.evaluation),
            "skipped_misaligned_answers": misaligned,
            "eval_split": eval_split,
            "train_windows": len(self._train_features),
            "eval_windows": len(self._eval_features),
        }

    def _features(self, examples, *, training: bool):
        return qa_features(self.preprocessor, examples, training=training)

    @property
    def summary(self) -> dict:
        return dict(self._summary)

    @property
    def segments(self) -> int:
        return 2

    @property
    def options(self) -> dict:
        return self.preprocessor.windows._asdict()

    def describe(self) -> str:
        return (f"{len(self.train_examples)} train questions in {len(self._train_features)} windows / "
                f"{len(self.evaluation)} eval questions in {len(self._eval_features)} windows")

    def compile_args(self) -> dict:
        return {"loss": SpanLoss()}

    def training_examples(self) -> TrainingExamples:
        features = self._train_features
        return TrainingExamples(features.model_inputs,
                                np.stack([features.start_positions, features.end_positions], axis=1).astype(np.int32))

    def evaluate(self, model) -> Evaluation:
        """KorQuAD's EM and F1 on the eval questions; the outputs are the answers
        (``predictions.json`` if the epoch is the best)."""
        answers = answer_windows(model, self.evaluation.examples, self._eval_features,
                                 batch_size=self.settings.batch_size, max_answer_length=self.settings.max_answer_length)
        scores = korquad_scores(self.evaluation.examples, answers)
        return Evaluation({"exact_match": float(scores["exact_match"]), "f1": float(scores["f1"])}, answers)

    def write_outputs(self, directory, outputs: dict[str, str]) -> None:
        """``predictions.json``: the best epoch's answer to every eval question."""
        (directory / PREDICTIONS_FILE).write_text(json.dumps(outputs, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def predict_file(cls, model, record: TaskRecord, input_path: str, output_path: str | None, *, batch_size: int,
                     text_columns=None):
        """Answer the questions of a SQuAD v1 JSON file; write ``{question_id: answer_text}``."""
        cls.refuse_text_columns(record, text_columns)
        answers = predict_answers(model, read_squad(input_path, training=False).examples, batch_size=batch_size)
        write_predictions(output_path, json.dumps(answers, ensure_ascii=False, indent=2) + "\n", f"{len(answers):,} answer(s)")
        return answers


def qa_features(preprocessor: KcBertQuestionAnswererPreprocessor, examples, *, training: bool):
    """The windows of ``examples`` as ``preprocessor`` cuts them (its length, stride and question
    length)."""
    return features_with_tokenizer(examples, preprocessor.tokenizer.word_piece, training=training,
                                   max_length=preprocessor.sequence_length, doc_stride=preprocessor.doc_stride,
                                   max_query_length=preprocessor.max_query_length)


def predict_answers(model, questions, *, batch_size: int = 256) -> dict[str, str]:
    """``{question id: answer text}`` for questions (:class:`~kcbert_tf.tasks.qa.squad_files.QAExample`,
    e.g. ``read_squad(path, training=False).examples``) with ``model`` (a question answerer with
    its preprocessor, which holds the windows)."""
    preprocessor = model.preprocessor
    with eager_for_small_inputs(len(questions)):
        features = qa_features(preprocessor, questions, training=False)
        return answer_windows(model, questions, features, batch_size=batch_size,
                              max_answer_length=preprocessor.max_answer_length)


def answer_windows(model, questions, features, *, batch_size: int, max_answer_length: int) -> dict[str, str]:
    """``{question id: answer text}`` from the start and end logits of a question answerer (its
    preprocessor detached or not) on the questions' windows ``features``, batched by length: the
    one way fine-tuning's evaluation and :func:`predict_answers` answer."""
    logits = model_outputs(model, features.model_inputs, batch_size=batch_size, per_token=True)
    return decode_answers(questions, features, logits[..., 0], logits[..., 1], max_answer_length=max_answer_length)


#: KorQuAD 1.0 with KcBERT-Finetune's settings (``pyproject.toml`` names it as an entry point of
#: the kcbert_tf.tasks group).
KORQUAD = TaskPreset(QaTask, QaSettings("f1", 300, 5, 16, 5e-5))
