"""`finetune`'s warmup ratio, early stopping and runs over several seeds, on a tiny model.

The start is a tiny model on a 201-token vocab (random weights) and the data a synthetic two-class
task in its syllables (no shared data needed).  References: the plain-Python linear warmup and
decay and transformers' own ``get_linear_schedule_with_warmup`` for the learning rates;
transformers' ``EarlyStoppingCallback`` driven by the scores of a run without early stopping for
when it stops; numpy for the mean and sample standard deviation over the seeds; a single
``--seed N`` run in a fresh process for each seed of a ``--seeds`` run.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import types
import weakref

import numpy as np
import pytest

from conftest import REPO, model_config
from kcbert_tf.cli import main as cli

BATCH, TRAIN, EVAL = 16, 128, 64
STEPS_PER_EPOCH = -(-TRAIN // BATCH)


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """A tiny start model directory and a learnable two-class task: label 1 texts are mostly
    made of one half of the vocab's syllables, label 0 texts of the other half."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from test_hugging_face import small_vocab

    root = tmp_path_factory.mktemp("seeds")
    vocab = small_vocab(201)
    keras.utils.set_random_seed(0)
    config = BertConfig.from_dict(model_config(vocab_size=len(vocab), intermediate_size=128,
                                               max_position_embeddings=64))
    ModelDir.write(str(root / "init"), config, vocab, build_model(config))
    rng = random.Random(0)
    halves = vocab[5:54], vocab[54:103]  # the syllables (then come their ## forms)

    def line(label: int) -> str:
        own, other = halves[label], halves[1 - label]
        words = ["".join(rng.choice(own if rng.random() < 0.7 else other) for _ in range(rng.randint(1, 3)))
                 for _ in range(rng.randint(2, 5))]
        return " ".join(words) + f"\t{label}"

    for name, count in (("train.tsv", TRAIN), ("eval.tsv", EVAL)):
        (root / name).write_text("document\tlabel\n" + "\n".join(line(i % 2) for i in range(count)) + "\n",
                                 encoding="utf-8")
    return types.SimpleNamespace(init=root / "init", train=root / "train.tsv", eval=root / "eval.tsv")


def finetune(files, **settings):
    from kcbert_tf.tasks.finetuning import finetune as run

    settings = {"batch_size": BATCH, "learning_rate": 3e-3, **settings}
    return run("nsmc", train=str(files.train), eval=str(files.eval), init=str(files.init), **settings)


def test_warmup_ratio_gives_transformers_warmup_steps_and_its_linear_schedule(task_files):
    import torch
    from transformers import get_linear_schedule_with_warmup

    ratio, epochs, peak = 0.3, 2, 1e-3
    fitted = finetune(task_files, epochs=epochs, learning_rate=peak, warmup_ratio=ratio)
    total = STEPS_PER_EPOCH * epochs  # every example once per epoch
    warmup = math.ceil(total * ratio)  # transformers' TrainingArguments.get_warmup_steps
    assert fitted.metrics["schedule"] == {"total_steps": total, "warmup_steps": warmup}
    assert fitted.metrics["settings"]["warmup_ratio"] == ratio and fitted.metrics["settings"]["warmup_steps"] == 0

    def plain(step: int) -> float:
        if step < warmup:
            return peak * step / warmup
        return peak * max(0.0, (total - step) / (total - warmup))

    optimizer = fitted.model.optimizer
    steps = range(total + 3)
    ours = [float(optimizer._learning_rate(step)) for step in steps]
    assert ours == pytest.approx([plain(step) for step in steps], rel=1e-6, abs=1e-12)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    schedule = get_linear_schedule_with_warmup(reference, warmup, total)
    theirs = []
    for _ in steps:
        theirs.append(schedule.get_last_lr()[0])
        reference.step()
        schedule.step()
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12)
    # The optimizer ran every step of the schedule: at its end the learning rate is 0.
    assert int(optimizer.iterations) == total and float(optimizer.learning_rate) == 0.0


def test_the_new_flags_refuse_what_no_run_can_use(task_files, tmp_path, capsys):
    base = ["finetune", "--task", "nsmc", "--train", str(task_files.train), "--eval", str(task_files.eval),
            "--init", str(task_files.init), "--output", str(tmp_path / "out")]
    cases = [
        (["--warmup-steps", "3", "--warmup-ratio", "0.1"],
         "--warmup-steps 3 and --warmup-ratio 0.1 both set the warmup"),
        (["--warmup-ratio", "1"], "--warmup-ratio is a share of the optimizer steps, 0 <= R < 1; got 1.0"),
        (["--warmup-ratio", "-0.1"], "0 <= R < 1"),
        (["--early-stopping", "-1"], "--early-stopping must be >= 0, got -1"),
        (["--seed", "3", "--seeds", "1,2"], "--seed 3 and --seeds both set the seed"),
        (["--seeds", "1,1"], "--seeds takes distinct integers >= 0 separated by commas"),
        (["--seeds", "1,x"], "--seeds takes distinct integers"),
        (["--keep-each-seed"], "--keep-each-seed keeps the model of each seed of --seeds: give --seeds too"),
    ]
    for extra, message in cases:
        assert cli([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("kcbert-tf finetune: error:") and message in err[-1], (extra, err[-1])
        assert not (tmp_path / "out").exists()


def test_early_stopping_stops_after_patience_epochs_without_improvement(task_files):
    """Learning rate 0: the weights never move, so the accuracy of epoch 1 is never beaten and the
    run ends after epoch 1 + PATIENCE; the schedule still spans every --epochs step."""
    patience, epochs = 2, 10
    fitted = finetune(task_files, epochs=epochs, learning_rate=0.0, early_stopping=patience)
    metrics = fitted.metrics
    assert [row["epoch"] for row in metrics["epochs"]] == list(range(1, 2 + patience))
    assert len({row["accuracy"] for row in metrics["epochs"]}) == 1
    assert metrics["stopped_early_at_epoch"] == 1 + patience and metrics["best"]["epoch"] == 1
    assert metrics["schedule"]["total_steps"] == STEPS_PER_EPOCH * epochs
    assert int(fitted.model.optimizer.iterations) == STEPS_PER_EPOCH * (1 + patience)


def transformers_stop(scores: list[float], patience: int) -> int | None:
    """The epoch at which transformers' Trainer, evaluating every epoch with ``scores`` (higher is
    better), stops with ``EarlyStoppingCallback(patience)``: the callback sees each evaluation
    before the Trainer records a new best (``Trainer._determine_best_metric``)."""
    from transformers import EarlyStoppingCallback, TrainerControl

    callback = EarlyStoppingCallback(early_stopping_patience=patience)
    args = types.SimpleNamespace(metric_for_best_model="accuracy", greater_is_better=True)
    state, control = types.SimpleNamespace(best_metric=None), TrainerControl()
    for epoch, score in enumerate(scores, start=1):
        callback.on_evaluate(args, state, control, metrics={"eval_accuracy": score})
        if state.best_metric is None or score > state.best_metric:
            state.best_metric = score
        if control.should_training_stop:
            return epoch
    return None


@pytest.mark.slow
def test_early_stopping_stops_where_transformers_callback_does_and_trains_as_without_it(task_files):
    """Each patience's run is the run without early stopping cut where transformers' callback,
    given that run's accuracies, stops it (or not cut); the best epoch is the best of those run."""
    epochs, seed = 8, 3
    full = finetune(task_files, epochs=epochs, seed=seed).metrics
    assert full["stopped_early_at_epoch"] is None and len(full["epochs"]) == epochs
    accuracies = [row["accuracy"] for row in full["epochs"]]
    expected = {patience: transformers_stop(accuracies, patience) for patience in (1, 2, 3)}
    # The case is meant to stop early after the metric has improved (the count starts again).
    assert expected[1] is not None and expected[1] > 2, (accuracies, expected)
    for patience, stop in expected.items():
        stopped = finetune(task_files, epochs=epochs, seed=seed, early_stopping=patience).metrics
        assert stopped["stopped_early_at_epoch"] == stop, (accuracies, patience)
        ran = full["epochs"][: stop or epochs]
        assert stopped["epochs"] == ran  # the same training up to the stop
        assert stopped["best"] == max(ran, key=lambda row: row["accuracy"])  # the first of equals
        assert stopped["schedule"] == full["schedule"]  # the schedule spans every --epochs step


def read_weights(path) -> dict:
    import h5py

    leaves = {}
    with h5py.File(path) as weights:
        weights.visititems(lambda name, item: leaves.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                           else None)
    return leaves


@pytest.mark.slow
def test_seeds_each_run_as_its_single_seed_run_and_report_their_mean_and_sd(task_files, tmp_path, monkeypatch, capsys):
    from kcbert_tf.tasks import finetuning

    seeds, epochs = (1, 2, 3), 6
    common = ["--task", "nsmc", "--train", str(task_files.train), "--eval", str(task_files.eval), "--init",
              str(task_files.init), "--epochs", str(epochs), "--batch-size", str(BATCH), "--learning-rate", "3e-3"]
    # Every run's model is tracked: each losing seed's must be freed before the next seed trains.
    models, run = [], finetuning._run

    def tracked(*args, **kwargs):
        result = run(*args, **kwargs)
        assert sum(model() is not None for model in models) <= 1  # the best so far, no other
        models.append(weakref.ref(result.model))
        return result

    monkeypatch.setattr(finetuning, "_run", tracked)
    out = tmp_path / "seeds"
    metrics = finetuning.run([*common, "--output", str(out), "--seeds", ",".join(map(str, seeds)), "--keep-each-seed"])
    stdout = capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == metrics
    summary = metrics["seeds"]
    assert summary["seeds"] == list(seeds) and [row["seed"] for row in summary["runs"]] == list(seeds)

    # Each seed is exactly its single run, in a fresh process: the same scores, the same weights.
    singles = {}
    for seed in seeds:
        single = tmp_path / f"single-{seed}"
        result = subprocess.run([sys.executable, "-m", "kcbert_tf.cli", "finetune", *common, "--output", str(single),
                                 "--seed", str(seed)], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        singles[seed] = json.loads((single / "metrics.json").read_text(encoding="utf-8"))
        kept = json.loads((out / f"seed-{seed}" / "metrics.json").read_text(encoding="utf-8"))
        assert kept == singles[seed] and "seeds" not in kept
        ours = read_weights(out / f"seed-{seed}" / "model.weights.h5")
        theirs = read_weights(single / "model.weights.h5")
        assert ours.keys() == theirs.keys() and all(np.array_equal(ours[key], theirs[key]) for key in ours), seed
    assert [row["best"] for row in summary["runs"]] == [singles[seed]["best"] for seed in seeds]

    # The spread: numpy's mean and sample sd (ddof=1) over the seeds' best scores, each numeric score.
    bests = [singles[seed]["best"] for seed in seeds]
    assert sorted(summary["mean"]) == sorted(summary["sd"]) == ["accuracy", "macro_f1", "train_loss"]
    for name in summary["mean"]:
        values = np.array([best[name] for best in bests])
        assert summary["mean"][name] == pytest.approx(np.mean(values), rel=1e-12)
        assert summary["sd"][name] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert summary["sd"]["accuracy"] > 0  # the seeds differ here
    accuracies = [best["accuracy"] for best in bests]
    assert f"accuracy {np.mean(accuracies):.4f} ± {np.std(accuracies, ddof=1):.4f}" in stdout, stdout[-2000:]

    # The output is the best seed's model (the first of equals by accuracy), with the summary.
    chosen = seeds[accuracies.index(max(accuracies))]
    assert summary["chosen_seed"] == chosen and summary["metric"] == "accuracy"
    assert metrics["best"] == singles[chosen]["best"] and metrics["settings"]["seed"] == chosen
    root, best = read_weights(out / "model.weights.h5"), read_weights(out / f"seed-{chosen}" / "model.weights.h5")
    assert all(np.array_equal(root[key], best[key]) for key in root)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "logs", "metrics.json", "model.weights.h5", "task.json", "vocab.txt"]
        + [f"seed-{seed}" for seed in seeds])
