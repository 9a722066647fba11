"""The task contract is enough: a task defined in this file alone (its own JSON-lines reader, its
own metric, its own prediction format) is registered, fine-tuned by ``kcbert-tf finetune`` and
used by ``kcbert-tf predict`` without a line of the library changed; its predictions are those
transformers gives for the exported model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_file
from kcbert_tf.cli import main as cli
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.tasks.contract import FineTuningTask, TaskSettings
from kcbert_tf.tasks.registry import register_task, unregister_task

STARS = ["1", "5"]


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def within_one_star(predicted: list[str], gold: list[str]) -> float:
    """The toy task's own metric: the share of predictions at most one star off."""
    return float(np.mean([abs(int(p) - int(g)) <= 1 for p, g in zip(predicted, gold)]))


class StarsTask(FineTuningTask):
    """Star ratings from JSON lines ``{"review": ..., "stars": "1" | "5"}``."""

    head = "sequence_classification"

    def __init__(self, settings, files):
        super().__init__(settings, files)
        self.train = read_jsonl(files.train)[: files.limit_train or None]
        self.evaluation = read_jsonl(files.eval)
        self.labels = STARS
        self.train_size = len(self.train)

    def describe(self) -> str:
        return f"{len(self.train)} train / {len(self.evaluation)} eval reviews"

    def model_config(self, config):
        return config.with_labels(self.labels)

    def compile_args(self) -> dict:
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def _inputs(self, tokenizer, rows):
        return _pack(tokenizer, rows, self.settings.max_seq_length)

    def train_dataset(self, tokenizer, batch_size, seed, epochs):
        import tensorflow as tf

        inputs = self._inputs(tokenizer, self.train)
        targets = np.asarray([STARS.index(row["stars"]) for row in self.train], np.int32)
        data = tf.data.Dataset.from_tensor_slices((inputs, targets)).shuffle(len(self.train), seed=seed)
        return data.batch(batch_size, drop_remainder=True).repeat(epochs)

    def evaluate(self, model, tokenizer, batch_size):
        logits = model.predict(self._inputs(tokenizer, self.evaluation), batch_size=batch_size, verbose=0)
        return {"within_one": within_one_star([STARS[i] for i in logits.argmax(-1)], [r["stars"] for r in self.evaluation])}

    def record(self, config) -> TaskRecord:
        return TaskRecord(self.settings.name, self.head, self.settings.max_seq_length, clean=False,
                          labels=tuple(self.labels), options={"format": "jsonl"})

    @classmethod
    def predict_file(cls, source, task, input_path, output_path, *, batch_size):
        rows = read_jsonl(input_path)
        model, tokenizer = source.load_model(), source.tokenizer()
        logits = model.predict(_pack(tokenizer, rows, task.max_seq_length), batch_size=batch_size, verbose=0)
        stars = [task.labels[i] for i in logits.argmax(-1)]
        with open(output_path, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"review": row["review"], "stars": star}, ensure_ascii=False) + "\n"
                              for row, star in zip(rows, stars))
        return stars


def _pack(tokenizer, rows, length):
    import tensorflow as tf

    from kcbert_tf.text.model_inputs import pack_fixed

    return pack_fixed(tokenizer, tf.constant([row["review"] for row in rows]), None, length)


@pytest.fixture
def stars_task():
    """The task registered for one test, and removed after it (the registry is the library's)."""
    register_task(StarsTask, TaskSettings("toy-stars", "within_one", 32, 2, 16, 1e-3, clean=False))
    yield "toy-stars"
    unregister_task("toy-stars")


@pytest.mark.slow
def test_a_task_defined_here_fine_tunes_and_predicts_through_the_contract(tmp_path, dropout_free_model_dir, stars_task):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    lines = shared_file("nsmc/train.txt").read_text(encoding="utf-8").split("\n")[1:]
    rows = [{"review": text, "stars": STARS[int(label)]}
            for _, text, label in (line.split("\t") for line in lines if line.count("\t") == 2) if text.strip()]
    for name, part in (("train", rows[:320]), ("eval", rows[320:400]), ("new", rows[400:460])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")

    out = tmp_path / "stars"
    assert cli(["finetune", "--task", stars_task, "--train", str(tmp_path / "train.jsonl"), "--eval",
                str(tmp_path / "eval.jsonl"), "--init", str(dropout_free_model_dir), "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "within_one" and len(metrics["epochs"]) == 2
    assert metrics["best"]["within_one"] == max(epoch["within_one"] for epoch in metrics["epochs"])
    record = json.loads((out / "task.json").read_text())
    assert (record["task"], record["labels"], record["options"]) == ("toy-stars", STARS, {"format": "jsonl"})

    assert cli(["predict", "--model", str(out), "--input", str(tmp_path / "new.jsonl"),
                "--output", str(tmp_path / "predicted.jsonl")]) == 0
    predicted = [row["stars"] for row in read_jsonl(tmp_path / "predicted.jsonl")]

    # The reference: the model exported to transformers, on transformers' ids.
    assert cli(["export-hf", "--model-dir", str(out), "--output", str(tmp_path / "hf")]) == 0
    hf = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    batch = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))(
        [row["review"] for row in rows[400:460]], truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = [hf.config.id2label[i] for i in hf(**batch).logits.argmax(-1).tolist()]
    assert predicted == expected
