"""Training on N replicas is training on 1: `kcbert-tf pretrain --cpu-replicas N`, as users run it.

Every multi-replica check runs in a fresh process (the CLI, or tests/replica_checks.py) that
splits the CPU into N logical devices under MirroredStrategy, the strategy that stands in here
for TPUStrategy and several GPUs.  The references are independent: the one-replica run, the
issue's SGD arithmetic, the records read back with plain tf.data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, model_config

KCBERT_TF = [sys.executable, "-m", "kcbert_tf.cli"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
VOCAB, LENGTH = 100, 32

#: The tiny masked LM, small and with dropout off (the invariant holds for deterministic training).
NO_DROPOUT = model_config(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=64, max_position_embeddings=64,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)


def check(name: str, replicas: int, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "replica_checks.py"), name, str(replicas), *args],
        env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == replicas
    return report


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Packed records (4 files of 60 sequences of 32 ids over a 100-token vocab), a vocab.txt
    beside them, and the no-dropout config."""
    from test_input_pipeline import packed_rows, write_records

    directory = tmp_path_factory.mktemp("replicas")
    data = directory / "data"
    data.mkdir()
    rows = packed_rows(240, LENGTH, VOCAB, np.random.default_rng(11))
    for shard in range(4):
        write_records(data / f"pretraining-{shard:05d}-of-00004.tfrecord", rows[shard * 60 : (shard + 1) * 60])
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(VOCAB - 5)]
    (data / "vocab.txt").write_text("\n".join(tokens) + "\n")
    config = directory / "no-dropout.json"
    config.write_text(json.dumps(NO_DROPOUT))
    return data, config


def train_config(tmp_path, name="train.json", **values) -> str:
    base = json.loads((REPO / "configs" / "pretrain-tiny.json").read_text())
    base.update({"batch_size": 8, "shuffle_buffer": 50, **values})
    path = tmp_path / name
    path.write_text(json.dumps(base))
    return str(path)


def pretrain(corpus, model_dir, train_json, *extra: str, check_ok=True) -> subprocess.CompletedProcess:
    data, config = corpus
    result = subprocess.run(
        KCBERT_TF + ["pretrain", "--config", str(config), "--data", str(data), "--model-dir", str(model_dir),
                     "--train-config", train_json, *extra],
        env=ENV, capture_output=True, text=True, timeout=600,
    )
    if check_ok:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def kill_after_checkpoint(corpus, model_dir, train_json: str, args, checkpoint: str, after_s: float = 0.0) -> None:
    """Start `kcbert-tf pretrain` and SIGKILL it ``after_s`` seconds after ``checkpoint`` is
    recorded, as a preemption would; fail if the run ended first."""
    data, config = corpus
    command = KCBERT_TF + ["pretrain", "--config", str(config), "--data", str(data), "--model-dir", str(model_dir),
                           "--train-config", train_json, *args]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = model_dir / "checkpoints" / "checkpoint"
    try:
        deadline = time.time() + 300
        # The checkpoint counts once the manager has recorded it (its state file is written
        # atomically after the data), not when its first file appears.
        while not (state_file.exists() and f'"{checkpoint}"' in state_file.read_text()):
            assert process.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
            time.sleep(0.02)
        time.sleep(after_s)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (model_dir / "model.weights.h5").exists(), "killed too late: the run had finished"


def weights(model_dir) -> dict:
    import h5py

    arrays = {}
    with h5py.File(model_dir / "model.weights.h5") as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if hasattr(item, "shape") else None)
    return arrays


def scalars(log_dir, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar, in the order written."""
    import tensorflow as tf

    points = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    points.append((event.step, float(tf.make_ndarray(value.tensor))))
    return points


# --- the invariant ------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_two_and_four_replicas_train_to_the_same_weights(corpus, tmp_path):
    """Dropout 0, seed 3, global batch 8, 30 steps at learning rate 1e-3, clip 1.6 (active in
    some steps, checked): the weights agree to float32 rounding (max |Δ| <= 1e-4)."""
    train_json = train_config(tmp_path, learning_rate=1e-3, warmup_steps=3, clip_norm=1.6, log_every=1, seed=3)
    runs = {}
    for replicas in (1, 2, 4):
        model_dir = tmp_path / f"r{replicas}"
        pretrain(corpus, model_dir, train_json, "--steps", "30", "--checkpoint-every", "10", "--cpu-replicas", str(replicas))
        state = json.loads((model_dir / "training_state.json").read_text())
        assert state["replicas"] == replicas and state["steps"] == 30
        runs[replicas] = weights(model_dir)
    norms = [value for _, value in scalars(tmp_path / "r1" / "logs" / "train", "gradient_norm")]
    assert len(norms) >= 25
    assert min(norms) < 1.6 < max(norms), f"clipping must be active in some steps only: {norms}"
    for replicas in (2, 4):
        assert runs[replicas].keys() == runs[1].keys()
        delta = max(float(np.abs(runs[replicas][name] - runs[1][name]).max()) for name in runs[1])
        print(f"{replicas} replicas vs 1: max |delta| {delta:.2e}")
        assert delta <= 1e-4, f"{replicas} replicas differ from 1 by {delta}"
    # ...and the training did move them, far more than that.
    initial = tmp_path / "r0"
    pretrain(corpus, initial, train_config(tmp_path, "zero.json", learning_rate=0.0, warmup_steps=0), "--steps", "1")
    start = weights(initial)
    assert max(float(np.abs(runs[1][name] - start[name]).max()) for name in start) > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
def test_a_killed_run_resumes_bit_for_bit(corpus, tmp_path, replicas):
    """SIGKILLed once its first checkpoint is recorded, then started again with the same
    command: the final weights equal an uninterrupted run's, bit for bit."""
    train_json = train_config(tmp_path, learning_rate=1e-3, warmup_steps=3, seed=5)
    args = ("--steps", "60", "--checkpoint-every", "20", "--cpu-replicas", str(replicas), "--deterministic")
    pretrain(corpus, tmp_path / "straight", train_json, *args)

    model_dir = tmp_path / "killed"
    kill_after_checkpoint(corpus, model_dir, train_json, args, "ckpt-20")

    resumed = pretrain(corpus, model_dir, train_json, *args)
    assert "resuming from" in resumed.stderr
    state = json.loads((model_dir / "training_state.json").read_text())
    assert state["steps"] == 60 and state["resumed_from_step"] in (20, 40) and state["replicas"] == replicas
    a, b = weights(tmp_path / "straight"), weights(model_dir)
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_tensorboard_counts_optimizer_steps_across_a_resume(corpus, tmp_path):
    """Five steps per execution, a log every 5 steps, then the run is extended from step 20 to
    40: every point is on the optimizer-step axis and the second run continues it."""
    train_json = train_config(tmp_path, steps_per_execution=5, log_every=5, eval_steps=2, eval_every=10)
    data, _ = corpus
    extra = ("--eval-data", str(sorted(data.glob("*.tfrecord"))[-1]), "--checkpoint-every", "10")
    pretrain(corpus, tmp_path / "run", train_json, "--steps", "20", *extra)
    first = [step for step, _ in scalars(tmp_path / "run" / "logs" / "train", "loss")]
    pretrain(corpus, tmp_path / "run", train_json, "--steps", "40", "--warmup-steps", "3", *extra)
    steps = [step for step, _ in scalars(tmp_path / "run" / "logs" / "train", "loss")]
    assert first and max(first) == 20 and all(step % 5 == 0 for step in steps), steps
    assert steps == sorted(steps) and max(steps) == 40 and any(20 < step < 40 for step in steps), steps
    validation = [step for step, _ in scalars(tmp_path / "run" / "logs" / "validation", "loss")]
    assert validation == [10, 20, 30, 40]


def test_epochs_end_on_their_checkpoints_whatever_steps_per_execution(corpus, tmp_path):
    train_json = train_config(tmp_path, steps_per_execution=4)
    result = pretrain(corpus, tmp_path / "run", train_json, "--steps", "12", "--checkpoint-every", "6")
    assert "steps_per_execution 4 -> 3" in result.stderr
    state = json.loads((tmp_path / "run" / "training_state.json").read_text())
    assert state["steps"] == 12 and state["steps_per_execution"] == 3
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("ckpt-*.index"))
    assert checkpoints == ["ckpt-12.index", "ckpt-6.index"]


@pytest.mark.slow
def test_xla_and_several_steps_per_execution_are_adjusted_under_mirrored_strategy(corpus, tmp_path):
    """The base recipe's settings (jit_compile true, 100 steps per execution) on 2 replicas:
    each turned off with one line, and training runs."""
    train_json = train_config(tmp_path, jit_compile=True, steps_per_execution=100)
    result = pretrain(corpus, tmp_path / "run", train_json, "--steps", "10", "--checkpoint-every", "10", "--cpu-replicas", "2")
    assert "XLA: off under MirroredStrategy" in result.stderr and "keras-team/keras#19005" in result.stderr
    assert "steps_per_execution 100 -> 1" in result.stderr
    state = json.loads((tmp_path / "run" / "training_state.json").read_text())
    assert state["steps"] == 10 and state["jit_compile"] is False and state["replicas"] == 2


def test_another_keras_backend_is_refused_at_once(corpus, tmp_path):
    data, config = corpus
    result = subprocess.run(
        KCBERT_TF + ["pretrain", "--config", str(config), "--data", str(data), "--model-dir", str(tmp_path / "m")],
        env={**ENV, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("kcbert-tf pretrain: error: KERAS_BACKEND=jax: pretrain runs on Keras' TensorFlow backend only")
    assert not (tmp_path / "m").exists()


# --- the pieces, each on the strategy users run --------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 2])
def test_gradients_are_clipped_after_the_all_reduce(replicas):
    """The issue's example: SGD, learning rate 1, global norm clip 1, a gradient of norm 200.
    The kernel must move by exactly 1.0 whatever the replica count (BERT clips the summed
    gradient).  Keras' own global_clipnorm clips each replica's share: it moves 2.0 on 2."""
    report = check("clip", replicas)
    assert report["clip_after_all_reduce"] == pytest.approx(-1.0, abs=1e-6)
    assert report["gradient_norm"] == pytest.approx(200.0, rel=1e-6)
    assert report["keras_global_clipnorm"] == pytest.approx(-1.0 * replicas, abs=1e-6)


def test_each_replica_draws_its_own_dropout_masks():
    stock = check("dropout", 2)
    assert not stock["stock"]["differ"], "Keras gave replicas their own masks: drop ReplicaSeedGenerator"
    assert stock["per_replica"]["differ"]
    # Replica 0 keeps the plain seed: one replica trains exactly as without the change.
    assert stock["per_replica"]["replica_0"] == stock["stock"]["replica_0"]


def test_fit_takes_the_distributed_dataset_that_stock_keras_hub_rejects():
    report = check("keras_hub_fit", 2)
    assert report["ours"] == "ok"
    assert "_to_batched_tensor_list" in report["stock"], report["stock"]


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_evaluation_covers_exactly_eval_steps_global_batches(tmp_path, replicas):
    """steps=4 with a global batch of 12: 4 global steps over the first 48 records, in file
    order, on any replica count (it gave 2 on 2 replicas before)."""
    from test_input_pipeline import packed_rows, read_records, write_records

    rows = packed_rows(100, 16, 50, np.random.default_rng(2))
    write_records(tmp_path / "pretraining-00000-of-00002.tfrecord", rows[:55])
    write_records(tmp_path / "pretraining-00001-of-00002.tfrecord", rows[55:])
    report = check("eval", replicas, str(tmp_path))
    reference = read_records(sorted(tmp_path.glob("*.tfrecord")), 16)[:48]
    assert report["steps"] == 4
    assert report["rows"] == reference.tolist()
