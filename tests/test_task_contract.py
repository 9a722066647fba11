"""The task contract is enough: a task defined in a package of its own (tests/data/stars_task: its
own JSON-lines reader, metric, settings flag and prediction format, and one entry point in its
pyproject.toml) is installed, fine-tuned by ``kcbert-tf finetune --task`` and used by
``kcbert-tf predict`` without a line of the library changed; its predictions are those
transformers gives for the exported model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, shared_file
from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.tasks.finetuning import task_settings
from kcbert_tf.tasks.registry import preset, register_task, task_names, unregister_task

PACKAGE = REPO / "tests" / "data" / "stars_task"
STARS = ["1", "5"]


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def stars_module(monkeypatch):
    """The package's module, importable from its source (not installed)."""
    monkeypatch.syspath_prepend(str(PACKAGE))
    import stars_task

    return stars_task


def test_a_task_registered_in_this_process_is_found_and_reads_only_its_own_flags(stars_module):
    register_task("toy-stars-here", stars_module.StarsTask, stars_module.STARS_TASK.settings)
    try:
        assert "toy-stars-here" in task_names() and preset("toy-stars-here").task is stars_module.StarsTask
        cls, settings = task_settings("toy-stars-here", {"review_field": "text", "epochs": 3})
        assert (cls, settings.review_field, settings.epochs) == (stars_module.StarsTask, "text", 3)
        with pytest.raises(UserError, match="--task toy-stars-here does not read --doc-stride"):
            task_settings("toy-stars-here", {"doc_stride": 64})
    finally:
        unregister_task("toy-stars-here")
    assert "toy-stars-here" not in task_names()


@pytest.mark.slow
def test_a_task_from_an_installed_package_fine_tunes_and_predicts_through_the_contract(tmp_path, dropout_free_model_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    # Install the package (its own files and its one entry point) outside the checkout.
    shutil.copytree(PACKAGE, tmp_path / "pkg", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(tmp_path / "pkg")], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]

    lines = shared_file("nsmc/train.txt").read_text(encoding="utf-8").split("\n")[1:]
    rows = [{"review": text, "stars": STARS[int(label)]}
            for _, text, label in (line.split("\t") for line in lines if line.count("\t") == 2) if text.strip()]
    for name, part in (("train", rows[:320]), ("eval", rows[320:400]), ("new", rows[400:460])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part),
                                               encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def kcbert_tf(*argv):
        result = subprocess.run([sys.executable, "-m", "kcbert_tf.cli", *map(str, argv)], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    out = tmp_path / "stars"
    kcbert_tf("finetune", "--task", "toy-stars", "--train", tmp_path / "train.jsonl", "--eval", tmp_path / "eval.jsonl",
              "--init", dropout_free_model_dir, "--output", out, "--review-field", "review")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "within_one" and len(metrics["epochs"]) == 2
    assert metrics["best"]["within_one"] == max(epoch["within_one"] for epoch in metrics["epochs"])
    record = json.loads((out / "task.json").read_text())
    assert (record["task"], record["labels"], record["options"]) == (
        "toy-stars", STARS, {"format": "jsonl", "review_field": "review"})

    kcbert_tf("predict", "--model", out, "--input", tmp_path / "new.jsonl", "--output", tmp_path / "predicted.jsonl")
    predicted = [row["stars"] for row in read_jsonl(tmp_path / "predicted.jsonl")]

    # The reference: the model exported to transformers, on transformers' ids.
    assert cli(["export-hf", "--model-dir", str(out), "--output", str(tmp_path / "hf")]) == 0
    hf = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    batch = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))(
        [row["review"] for row in rows[400:460]], truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = [hf.config.id2label[i] for i in hf(**batch).logits.argmax(-1).tolist()]
    assert predicted == expected
