"""A fine-tuning task defined outside kcbert-tf: star ratings from JSON lines
``{"review": ..., "stars": "1" | "5"}``, with its own reader, metric and prediction format.

Installed, its ``pyproject.toml`` entry point (group ``kcbert_tf.tasks``) makes it
``kcbert-tf finetune --task toy-stars`` and lets ``kcbert-tf predict`` use its models.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow as tf

from kcbert_tf import (
    Evaluation,
    FineTuningTask,
    KcBertTextClassifierPreprocessor,
    TaskPreset,
    TrainingExamples,
    TrainingSettings,
    flag,
)

STARS = ["1", "5"]


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def within_one_star(predicted: list[str], gold: list[str]) -> float:
    """The task's own metric: the share of predictions at most one star off."""
    return float(np.mean([abs(int(p) - int(g)) <= 1 for p, g in zip(predicted, gold)]))


@dataclasses.dataclass(frozen=True)
class StarsSettings(TrainingSettings):
    """The shared settings and one of the task's own, a ``--review-field`` flag."""

    review_field: str = flag("the JSON field holding the review", default="review")


class StarsTask(FineTuningTask):
    head = "sequence_classification"
    settings_type = StarsSettings

    def __init__(self, name, settings, files, tokenizer):
        super().__init__(name, settings, files, tokenizer)
        self.preprocessor = KcBertTextClassifierPreprocessor(tokenizer, sequence_length=settings.max_seq_length,
                                                             clean=False)
        self.train = read_jsonl(files.train)[: files.limit_train or None]
        self.evaluation = read_jsonl(files.eval)
        self.labels = STARS

    @property
    def train_size(self) -> int:
        return len(self.train)

    @property
    def options(self) -> dict:
        return {"format": "jsonl", "review_field": self.settings.review_field}

    def describe(self) -> str:
        return f"{len(self.train)} train / {len(self.evaluation)} eval reviews"

    def compile_args(self) -> dict:
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def _texts(self, rows):
        return [row[self.settings.review_field] for row in rows]

    def training_examples(self) -> TrainingExamples:
        packed = self.preprocessor.pack(tf.constant(self._texts(self.train)))
        targets = np.asarray([STARS.index(row["stars"]) for row in self.train], np.int32)
        return TrainingExamples({name: value.numpy() for name, value in packed.items()}, targets)

    def evaluate(self, model) -> Evaluation:
        logits = model.predict(self.preprocessor(self._texts(self.evaluation)), verbose=0)
        predicted = [STARS[i] for i in logits.argmax(-1)]
        return Evaluation({"within_one": within_one_star(predicted, [row["stars"] for row in self.evaluation])})

    @classmethod
    def predict_file(cls, model, record, input_path, output_path, *, batch_size, text_columns=None):
        cls.refuse_text_columns(record, text_columns)
        rows = read_jsonl(input_path)
        logits = model.predict([row[record.options["review_field"]] for row in rows], batch_size=batch_size,
                               verbose=0)  # raw strings: the model carries its preprocessor
        stars = [model.labels[i] for i in logits.argmax(-1)]
        with open(output_path, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"review": row["review"], "stars": star}, ensure_ascii=False) + "\n"
                              for row, star in zip(rows, stars))
        return stars


STARS_TASK = TaskPreset(StarsTask, StarsSettings("within_one", 32, 2, 16, 1e-3))
