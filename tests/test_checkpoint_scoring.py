"""`kcbert-tf score-checkpoints`: each checkpoint of a pretraining run fine-tuned in a process of
its own, the scores on the run's step axis and in a table.

A tiny run (6 steps, a checkpoint every 2, all kept) is scored once on the demo sentiment files.
The references are independent: the checkpoint's variables read with ``tf.train.load_checkpoint``,
``kcbert-tf finetune`` run by hand on the checkpoint turned into a model directory by plain
``tf.train.Checkpoint`` code, the TensorBoard events read with TensorFlow's summary iterator.
The loops that need no real fine-tuning (resuming, ``--every``, ``--watch``, a deleted
checkpoint) run with a stand-in for the child that writes a ``metrics.json``.
"""

from __future__ import annotations

import collections
import json
import pathlib
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from conftest import REPO
from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.training import checkpoint_scoring
from kcbert_tf.training.checkpoint_scoring import TABLE_FILE, read_table, score_checkpoints
from test_replicas import ENV, KCBERT_TF, NO_DROPOUT, pretrain, scalars, train_config

RESOURCES = REPO / "kcbert_tf" / "resources"
TRAIN, EVAL = RESOURCES / "demo_sentiment_train.tsv", RESOURCES / "demo_sentiment_eval.tsv"
VOCAB, LENGTH = NO_DROPOUT["vocab_size"], 32
#: The fine-tuning of every checkpoint: one quick epoch, a fixed seed.
FINETUNE = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "seed": 42}
FINETUNE_FLAGS = ["--epochs", "1", "--batch-size", "16", "--learning-rate", "1e-3", "--seed", "42"]


def demo_vocab() -> list[str]:
    """The specials and the demo sentiment files' commonest syllables, alone and as ``##``
    pieces: a vocab of ``VOCAB`` tokens in which the demo texts are mostly not [UNK]."""
    lines = [line for path in (TRAIN, EVAL) for line in path.read_text(encoding="utf-8").split("\n")[1:]]
    counts = collections.Counter(ch for line in lines for ch in line.split("\t")[0] if not ch.isspace())
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for syllable, _ in counts.most_common():
        if len(tokens) + 2 > VOCAB:
            break
        tokens += [syllable, f"##{syllable}"]
    return tokens + [f"t{i}" for i in range(VOCAB - len(tokens))]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny pretraining run: checkpoints at steps 2, 4 and 6, all kept."""
    from test_input_pipeline import packed_rows, write_records

    root = tmp_path_factory.mktemp("scoring")
    data = root / "data"
    data.mkdir()
    rows = packed_rows(64, LENGTH, VOCAB, np.random.default_rng(5))
    write_records(data / "pretraining-00000-of-00001.tfrecord", rows)
    (data / "vocab.txt").write_text("\n".join(demo_vocab()) + "\n", encoding="utf-8")
    config = root / "config.json"
    config.write_text(json.dumps(NO_DROPOUT))
    train_json = train_config(root, learning_rate=1e-2, warmup_steps=1, log_every=1)
    model_dir = root / "run"
    pretrain((data, config), model_dir, train_json, "--steps", "6", "--checkpoint-every", "2",
             "--keep-checkpoints", "0")
    assert sorted(p.name for p in (model_dir / "checkpoints").glob("*.index")) == [
        "ckpt-2.index", "ckpt-4.index", "ckpt-6.index"]
    return model_dir


@pytest.fixture(scope="module")
def scored(run_dir, tmp_path_factory):
    """The run scored on the command line, each checkpoint's files kept in a work directory."""
    root = tmp_path_factory.mktemp("scored")
    model_dir, work = root / "run", root / "work"
    shutil.copytree(run_dir, model_dir)
    started = time.perf_counter()
    code = cli(["score-checkpoints", "--model-dir", str(model_dir), "--task", "nsmc", "--train", str(TRAIN),
                "--eval", str(EVAL), "--work-dir", str(work), *FINETUNE_FLAGS])
    assert code == 0
    return model_dir, work, time.perf_counter() - started


def copy_run(run_dir, tmp_path):
    model_dir = tmp_path / "run"
    shutil.copytree(run_dir, model_dir)
    return model_dir


@pytest.fixture
def stand_in(monkeypatch):
    """A stand-in for the child ``kcbert-tf finetune``: a ``metrics.json`` whose accuracy is
    the sum of the --init model's weights (so each checkpoint scores its own); returns the list
    of the --init directories it was given."""
    import h5py

    calls = []

    def fake(flags, log_dir, *, niceness):
        given = dict(zip(flags[::2], flags[1::2]))
        calls.append(given["--init"])
        with h5py.File(f"{given['--init']}/model.weights.h5") as handle:
            arrays = []
            handle.visititems(lambda name, item: arrays.append(item[()]) if hasattr(item, "shape") else None)
        score = float(sum(np.sum(a) for a in arrays))
        output = pathlib.Path(given["--output"])
        output.mkdir(parents=True)
        (output / "metrics.json").write_text(json.dumps(
            {"metric": "accuracy", "best": {"epoch": 1, "accuracy": score, "train_loss": 0.5}}))

    monkeypatch.setattr(checkpoint_scoring, "run_finetune", fake)
    return calls


def table_steps(model_dir) -> list[int]:
    return [row.step for row in read_table(str(model_dir / TABLE_FILE))]


# --- the real thing ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_each_checkpoint_is_one_point_on_the_step_axis_and_one_row_of_the_table(scored):
    model_dir, _, seconds = scored
    rows = read_table(str(model_dir / TABLE_FILE))
    assert [(row.step, row.task, row.metric) for row in rows] == [(2, "nsmc", "accuracy"), (4, "nsmc", "accuracy"),
                                                                  (6, "nsmc", "accuracy")]
    assert all(row.score == row.scores["accuracy"] and 0 <= row.score <= 1 and row.scores["epoch"] == 1 for row in rows)
    assert [row.checkpoint for row in rows] == [str(model_dir / "checkpoints" / f"ckpt-{s}") for s in (2, 4, 6)]
    assert sum(row.seconds for row in rows) <= seconds
    # The fine-tunings started from different weights: their training losses differ.
    assert len({row.scores["train_loss"] for row in rows}) == 3
    points = scalars(model_dir / "logs" / "finetune-nsmc", "nsmc/accuracy")
    assert points == [(row.step, pytest.approx(row.score)) for row in rows]
    losses = scalars(model_dir / "logs" / "finetune-nsmc", "nsmc/train_loss")
    assert losses == [(row.step, pytest.approx(row.scores["train_loss"])) for row in rows]


@pytest.mark.slow
def test_the_model_directory_holds_the_checkpoint_s_model_weights(scored):
    """Every array of the scratch model directory is the checkpoint's variable of that name
    (read with tf.train.load_checkpoint), none of the optimizer's."""
    import h5py
    import tensorflow as tf

    model_dir, work, _ = scored
    ckpt = {}
    for step in (2, 4):
        # The model's variables, each under its first path in the object graph (under model/,
        # or as one of the optimizer's trainable variables); not the moments, not the counters.
        reader = tf.train.load_checkpoint(str(model_dir / "checkpoints" / f"ckpt-{step}"))
        shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
        ckpt[step] = [reader.get_tensor(key) for key in sorted(shapes)
                      if key.startswith(("model/", "optimizer/_trainable_variables/")) and shapes[key]
                      and dtypes[key].is_floating]
    arrays = []
    with h5py.File(work / "ckpt-4" / "model" / "model.weights.h5") as handle:
        handle.visititems(lambda name, item: arrays.append(item[()])
                          if hasattr(item, "shape") and name.startswith("layers/") else None)
    assert len(arrays) == len(ckpt[4]) == 44  # tiny model: 2 layers, the pooler, the head
    unmatched = list(ckpt[4])
    same_as_step_2 = 0
    for array in arrays:
        found = next(i for i, value in enumerate(unmatched)
                     if value.shape == array.shape and np.array_equal(value, array))
        unmatched.pop(found)
        same_as_step_2 += any(v.shape == array.shape and np.array_equal(v, array) for v in ckpt[2])
    assert not unmatched
    assert same_as_step_2 == 2  # trained in between: only the frozen pooler is as it was
    assert json.loads((work / "ckpt-4" / "model" / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]


@pytest.mark.slow
def test_the_score_is_what_finetune_reports_for_that_checkpoint(scored, tmp_path):
    """The checkpoint of step 4 turned into a model directory by plain tf.train.Checkpoint
    code (not the command's), fine-tuned by `kcbert-tf finetune` with the same settings: the same best epoch."""
    import tensorflow as tf

    from kcbert_tf.model.config import read_model_config
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.text.vocab import read_vocab

    model_dir, _, _ = scored
    config = read_model_config(model_dir / "config.json")
    model = build_model(config)
    # The checkpoint's model node also holds the run's optimizer, which this model's default
    # compile made in another shape: restore the encoder and the head by their names alone.
    layers = tf.train.Checkpoint(backbone=model.backbone, masked_lm_head=model.masked_lm_head)
    tf.train.Checkpoint(model=layers).restore(str(model_dir / "checkpoints" / "ckpt-4")).expect_partial()
    ModelDir.write(str(tmp_path / "model"), config, read_vocab(model_dir / "vocab.txt"), model)
    result = subprocess.run(
        KCBERT_TF + ["finetune", "--task", "nsmc", "--train", str(TRAIN), "--eval", str(EVAL), "--init",
                     str(tmp_path / "model"), "--output", str(tmp_path / "out"), *FINETUNE_FLAGS],
        env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    want = json.loads((tmp_path / "out" / "metrics.json").read_text())["best"]
    row = next(row for row in read_table(str(model_dir / TABLE_FILE)) if row.step == 4)
    assert row.scores.keys() == want.keys()
    assert row.scores == pytest.approx(want, abs=1e-5)


@pytest.mark.slow
def test_a_failing_fine_tuning_names_the_checkpoint_and_shows_the_child_s_error(run_dir, tmp_path, capsys):
    model_dir = copy_run(run_dir, tmp_path)
    assert cli(["score-checkpoints", "--model-dir", str(model_dir), "--task", "nsmc", "--train", str(TRAIN),
                "--eval", str(EVAL), "--every", "6", "--finetune-args", "--learning-rate -1"]) == 2
    err = capsys.readouterr().err
    assert f"{model_dir / 'checkpoints' / 'ckpt-6'}: fine-tuning it failed" in err
    assert "kcbert-tf finetune: error: --learning-rate" in err  # the child's own line
    assert not (model_dir / TABLE_FILE).exists()


# --- the loop, with a stand-in for the child -----------------------------------------------------


@pytest.mark.slow
def test_a_rerun_scores_nothing_new_and_every_keeps_its_multiples(run_dir, tmp_path, stand_in):
    model_dir = copy_run(run_dir, tmp_path)
    rows = score_checkpoints(str(model_dir), "nsmc", train=str(TRAIN), every=4, **FINETUNE)
    assert [row.step for row in rows] == [4] and len(stand_in) == 1
    rows = score_checkpoints(str(model_dir), "nsmc", train=str(TRAIN), **FINETUNE)
    assert [row.step for row in rows] == [2, 4, 6] and len(stand_in) == 3  # 4 is not scored again
    table = (model_dir / TABLE_FILE).read_text()
    again = score_checkpoints(str(model_dir), "nsmc", train=str(TRAIN), **FINETUNE)
    assert again == rows and len(stand_in) == 3 and (model_dir / TABLE_FILE).read_text() == table
    assert sorted(step for step, _ in scalars(model_dir / "logs" / "finetune-nsmc", "nsmc/accuracy")) == [2, 4, 6]
    assert len({row.score for row in rows}) == 3  # each its own checkpoint's weights


def write_state(checkpoints, steps: list[int]) -> None:
    """The `checkpoint` state file as a CheckpointManager that has saved ``steps`` leaves it."""
    lines = [f'model_checkpoint_path: "ckpt-{steps[-1]}"'] + [f'all_model_checkpoint_paths: "ckpt-{s}"' for s in steps]
    (checkpoints / "checkpoint").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_watch_waits_for_new_checkpoints_until_the_run_is_finished(run_dir, tmp_path, stand_in):
    model_dir = copy_run(run_dir, tmp_path)
    state = (model_dir / "training_state.json").read_text()
    (model_dir / "training_state.json").unlink()
    write_state(model_dir / "checkpoints", [2, 4])  # the run is at step 4
    result = {}
    watcher = threading.Thread(target=lambda: result.update(rows=score_checkpoints(
        str(model_dir), "nsmc", train=str(TRAIN), watch=True, poll_seconds=0.1)))
    watcher.start()
    try:
        deadline = time.time() + 60
        while table_steps(model_dir) != [2, 4]:
            assert time.time() < deadline and watcher.is_alive()
            time.sleep(0.1)
        time.sleep(0.5)
        assert watcher.is_alive()  # the run is not finished: it waits
        write_state(model_dir / "checkpoints", [2, 4, 6])  # the last checkpoint, then the end
        (model_dir / "training_state.json").write_text(state)
        watcher.join(60)
        assert not watcher.is_alive()
    finally:
        if watcher.is_alive():  # end the test's thread whatever happened: the run is finished now
            (model_dir / "training_state.json").write_text(state)
            watcher.join(60)
    assert [row.step for row in result["rows"]] == [2, 4, 6] and len(stand_in) == 3


@pytest.mark.slow
def test_ctrl_c_while_watching_ends_with_the_rows_scored(run_dir, tmp_path, stand_in, monkeypatch, capsys):
    model_dir = copy_run(run_dir, tmp_path)
    (model_dir / "training_state.json").unlink()  # the run goes on

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_scoring.time, "sleep", ctrl_c)  # in the first wait
    rows = score_checkpoints(str(model_dir), "nsmc", train=str(TRAIN), watch=True)
    assert [row.step for row in rows] == [2, 4, 6] == table_steps(model_dir)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("best: step ")


@pytest.mark.slow
def test_a_checkpoint_deleted_before_it_is_scored_is_skipped_with_a_warning(run_dir, tmp_path, stand_in, caplog):
    model_dir = copy_run(run_dir, tmp_path)
    for path in (model_dir / "checkpoints").glob("ckpt-4.*"):  # deleted by the run's manager after the listing
        path.unlink()
    with caplog.at_level("WARNING", logger="kcbert_tf"):
        rows = score_checkpoints(str(model_dir), "nsmc", train=str(TRAIN))
    assert [row.step for row in rows] == [2, 6]
    assert any("ckpt-4 was deleted before it was scored" in record.getMessage() for record in caplog.records)


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_one_clear_error(run_dir, tmp_path, stand_in):
    model_dir = copy_run(run_dir, tmp_path)
    (model_dir / "config.json").write_text(json.dumps({**NO_DROPOUT, "intermediate_size": 48}))
    with pytest.raises(UserError, match=r"ckpt-2: not a checkpoint of the model of .*config\.json"):
        score_checkpoints(str(model_dir), "nsmc", train=str(TRAIN))
    assert not stand_in and not (model_dir / TABLE_FILE).exists()


# --- bad input ---------------------------------------------------------------------------------------


def test_a_model_dir_without_checkpoints_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(NO_DROPOUT))
    assert cli(["score-checkpoints", "--model-dir", str(tmp_path / "run"), "--task", "nsmc", "--train",
                str(TRAIN)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("kcbert-tf score-checkpoints: error: ")
    assert f"{tmp_path / 'run' / 'checkpoints'}: no checkpoints to score" in line and "--keep-checkpoints 0" in line
    with pytest.raises(UserError, match="no such directory"):
        score_checkpoints(str(tmp_path / "missing"), "nsmc", train=str(TRAIN))
    with pytest.raises(UserError, match="--train .*: no such file"):
        score_checkpoints(str(tmp_path / "run"), "nsmc", train=str(tmp_path / "missing.tsv"))
    (tmp_path / "run" / TABLE_FILE).write_text("step\tscore\n1\t0.5\n")
    with pytest.raises(UserError, match="not a scores table"):
        read_table(str(tmp_path / "run" / TABLE_FILE))
