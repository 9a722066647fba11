"""Gradient accumulation (`--grad-accum-steps K`) trains like one batch: K micro-batches of
batch-size/K per optimizer step, on one replica or several, end at the weights of K = 1 (the
reference: the plain run), resume exactly after a kill, and count optimizer steps everywhere."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from test_replicas import KCBERT_TF, ENV, corpus, kill_after_checkpoint, pretrain, scalars, train_config, weights  # noqa: F401

pytestmark = pytest.mark.slow


def test_four_micro_batches_and_two_on_two_replicas_end_at_the_weights_of_one_batch(corpus, tmp_path):
    """Dropout 0, seed 3, global batch 8, 30 steps, clip 1.6 active in some steps: K = 4 on one
    replica and K = 2 on two replicas agree with K = 1 to float32 rounding, and every log is on
    the optimizer-step axis with K = 1's learning rate."""
    train_json = train_config(tmp_path, learning_rate=1e-3, warmup_steps=3, clip_norm=1.6, log_every=1, seed=3)
    runs, logs = {}, {}
    for name, replicas, accumulate in (("k1", 1, 1), ("k4", 1, 4), ("k2x2", 2, 2)):
        model_dir = tmp_path / name
        pretrain(corpus, model_dir, train_json, "--steps", "30", "--checkpoint-every", "10",
                 "--cpu-replicas", str(replicas), "--grad-accum-steps", str(accumulate), "--keep-checkpoints", "0")
        state = json.loads((model_dir / "training_state.json").read_text())
        assert state["steps"] == 30 and state["train_config"]["grad_accum_steps"] == accumulate
        assert sorted(path.name for path in (model_dir / "checkpoints").glob("ckpt-*.index")) == [
            "ckpt-10.index", "ckpt-20.index", "ckpt-30.index"]
        runs[name] = weights(model_dir)
        logs[name] = {tag: scalars(model_dir / "logs" / "train", tag) for tag in ("learning_rate", "gradient_norm")}
    norms = [value for _, value in logs["k1"]["gradient_norm"]]
    assert min(norms) < 1.6 < max(norms), f"clipping must be active in some steps only: {norms}"
    for name in ("k4", "k2x2"):
        assert [step for step, _ in logs[name]["learning_rate"]] == [step for step, _ in logs["k1"]["learning_rate"]]
        np.testing.assert_allclose([v for _, v in logs[name]["learning_rate"]],
                                   [v for _, v in logs["k1"]["learning_rate"]], rtol=1e-6)
        np.testing.assert_allclose([v for _, v in logs[name]["gradient_norm"]], norms, rtol=1e-3)
        delta = max(float(np.abs(runs[name][key] - runs["k1"][key]).max()) for key in runs["k1"])
        print(f"{name} vs K=1 on one replica: max |delta| {delta:.2e}")
        assert delta <= 1e-4, f"{name} differs from K=1 by {delta}"
    moved = max(float(np.abs(runs["k1"][key]).max()) for key in runs["k1"])
    assert moved > 1e-2


def test_a_run_killed_while_accumulating_resumes_bit_for_bit(corpus, tmp_path):
    """K = 4, SIGKILLed while it trains past its first checkpoint, started again with the same
    command: the final weights equal an uninterrupted run's, bit for bit."""
    train_json = train_config(tmp_path, learning_rate=1e-3, warmup_steps=3, seed=5)
    args = ("--steps", "60", "--checkpoint-every", "20", "--grad-accum-steps", "4", "--deterministic")
    pretrain(corpus, tmp_path / "straight", train_json, *args)

    model_dir = tmp_path / "killed"
    kill_after_checkpoint(corpus, model_dir, train_json, args, "ckpt-20", after_s=0.05)  # into the next micro-batches
    resumed = pretrain(corpus, model_dir, train_json, *args)
    assert "resuming from" in resumed.stderr
    state = json.loads((model_dir / "training_state.json").read_text())
    assert state["steps"] == 60 and state["resumed_from_step"] in (20, 40)
    a, b = weights(tmp_path / "straight"), weights(model_dir)
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_batch_that_does_not_split_into_micro_batches_is_refused(corpus, tmp_path):
    result = pretrain(corpus, tmp_path / "run", train_config(tmp_path), "--steps", "2", "--grad-accum-steps", "3",
                      check_ok=False)
    assert result.returncode == 2
    assert "--batch-size 8 is not divisible by the 1 replicas of this CPU times --grad-accum-steps 3" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_clipped_norm_is_the_norm_of_the_dense_gradient():
    """The masked LM's embeddings get sparse gradients (a row per lookup: every token's segment
    id 0 repeats row 0); the norm the optimizer clips by is the norm of the summed (dense)
    gradient, as PyTorch computes it, whatever K: the reference is a plain GradientTape with
    every gradient made dense."""
    import keras
    import tensorflow as tf

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.training import core
    from kcbert_tf.training.pretraining import TrainConfig, compile_masked_lm
    from test_replicas import NO_DROPOUT

    rng = np.random.default_rng(0)
    rows, length, slots = 8, 32, 5
    x = {"token_ids": rng.integers(5, 100, (rows, length)).astype("int32"),
         "segment_ids": np.zeros((rows, length), "int32"), "padding_mask": np.ones((rows, length), "int32"),
         "mask_positions": np.sort(rng.choice(length, (rows, slots)), axis=1).astype("int32")}
    y, weight = rng.integers(5, 100, (rows, slots)).astype("int32"), np.ones((rows, slots), "float32")
    norms = {}
    for accumulate in (1, 4):
        keras.utils.set_random_seed(0)
        model = build_model(BertConfig.from_dict(NO_DROPOUT))
        core.prepare_model(model, grad_accum_steps=accumulate)
        compile_masked_lm(model, TrainConfig(learning_rate=1e-3, warmup_steps=0, train_steps=10), False)
        if accumulate == 1:
            with tf.GradientTape() as tape:
                loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True), sample_weight=weight)
            gradients = tape.gradient(loss, model.trainable_weights)
            assert any(isinstance(gradient, tf.IndexedSlices) for gradient in gradients)
            dense = [tf.convert_to_tensor(gradient).numpy() for gradient in gradients if gradient is not None]
            reference = float(np.sqrt(sum(float((value.astype(np.float64) ** 2).sum()) for value in dense)))
        model.fit(tf.data.Dataset.from_tensors((x, y, weight)), epochs=1, verbose=0)
        norms[accumulate] = float(model.optimizer.gradient_norm.numpy())
    assert norms[1] == pytest.approx(reference, rel=1e-5)
    assert norms[4] == pytest.approx(reference, rel=1e-5)


def test_finetune_with_micro_batches_ends_at_the_weights_of_one_batch(tmp_path, kcbert_vocab):
    """`finetune --grad-accum-steps`: NSMC, dropout 0, one epoch of batches of 32 (the last one
    filled with zero-weight copies): K = 4 on one replica and K = 2 on two replicas end at the
    weights of K = 1."""
    import keras

    from conftest import model_config, shared_file
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.text.vocab import read_vocab
    from test_finetuning import slice_of
    from test_replicas import weights as read_weights

    keras.utils.set_random_seed(0)
    config = BertConfig.from_dict(model_config(vocab_size=30000, intermediate_size=128, max_position_embeddings=64,
                                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    init = tmp_path / "init"
    ModelDir.write(str(init), config, read_vocab(kcbert_vocab), build_model(config))
    nsmc = shared_file("nsmc/train.txt")
    train, evaluation = slice_of(nsmc, tmp_path / "train.txt", 1, 300), slice_of(nsmc, tmp_path / "eval.txt", 9001, 64)
    runs = {}
    for name, replicas, accumulate in (("k1", 1, 1), ("k4", 1, 4), ("k2x2", 2, 2)):
        result = subprocess.run(
            KCBERT_TF + ["finetune", "--task", "nsmc", "--train", str(train), "--eval", str(evaluation), "--init", str(init),
                         "--output", str(tmp_path / name), "--epochs", "1", "--batch-size", "32", "--learning-rate",
                         "1e-3", "--grad-accum-steps", str(accumulate), "--cpu-replicas", str(replicas)],
            env=ENV, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["settings"]["grad_accum_steps"] == accumulate and metrics["replicas"] == replicas
        runs[name] = read_weights(tmp_path / name)
    moved = max(float(np.abs(runs["k1"][key] - value).max()) for key, value in read_weights(init).items()
                if key in runs["k1"] and runs["k1"][key].shape == value.shape)
    assert moved > 1e-3
    for name in ("k4", "k2x2"):
        delta = max(float(np.abs(runs[name][key] - runs["k1"][key]).max()) for key in runs["k1"])
        print(f"finetune {name} vs K=1: max |delta| {delta:.2e}")
        assert delta <= 1e-4, f"{name} differs from K=1 by {delta}"


def _tpu_tensorflow() -> bool:
    from importlib import metadata

    try:
        metadata.version("tensorflow-tpu")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(_tpu_tensorflow(), reason="TPU TensorFlow builds have no XLA:CPU to compile the step here")
def test_the_accumulating_step_compiles_with_xla_and_trains_as_one_batch(corpus, tmp_path):
    """What a TPU runs: the step compiled by XLA (`jit_compile`), its micro-batches in a
    `tf.while_loop`; K = 2 ends at the weights of K = 1, both compiled."""
    train_json = train_config(tmp_path, learning_rate=1e-3, warmup_steps=3, seed=3, jit_compile=True)
    runs = {}
    for accumulate in (1, 2):
        model_dir = tmp_path / f"k{accumulate}"
        pretrain(corpus, model_dir, train_json, "--steps", "10", "--checkpoint-every", "10",
                 "--grad-accum-steps", str(accumulate))
        state = json.loads((model_dir / "training_state.json").read_text())
        assert state["jit_compile"] is True and state["steps"] == 10
        runs[accumulate] = weights(model_dir)
    delta = max(float(np.abs(runs[2][key] - runs[1][key]).max()) for key in runs[1])
    print(f"XLA, K=2 vs K=1: max |delta| {delta:.2e}")
    assert delta <= 1e-4
