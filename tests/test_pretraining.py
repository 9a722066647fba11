"""`kcbert-tf pretrain`: learning, evaluation, kill-and-resume, strategy and bad-input errors."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, model_config
from kcbert_tf.cli import main as cli
from kcbert_tf.training.core import effective_checkpoint_interval

KCBERT_TF = [sys.executable, "-m", "kcbert_tf.cli"]

#: The tiny config with the real KcBERT vocab's 30,000 tokens.
TINY_30K = model_config(vocab_size=30000, intermediate_size=128)


def quiet_cli(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return cli(list(args))


@pytest.fixture(scope="module")
def packed(news_comments, kcbert_vocab, tmp_path_factory):
    """Packed records of 64 ids from the first 6,000 shared comments, 4 shards, the real vocab."""
    tmp = tmp_path_factory.mktemp("packed")
    lines = news_comments.read_bytes().split(b"\n")[:6000]
    (tmp / "comments.txt").write_bytes(b"\n".join(lines) + b"\n")
    assert quiet_cli("preprocess", "--input", str(tmp / "comments.txt"), "--output", str(tmp / "clean")) == 0
    assert quiet_cli(
        "make-pretraining-data", "--input", str(tmp / "clean"), "--vocab", str(kcbert_vocab),
        "--output", str(tmp / "data"), "--max-seq-length", "64", "--num-shards", "4",
    ) == 0
    config = tmp / "tiny-30k.json"
    config.write_text(json.dumps(TINY_30K))
    return tmp / "data", config


def train_config(tmp_path, **values) -> str:
    base = json.loads((REPO / "configs" / "pretrain-tiny.json").read_text())
    base.update(values)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(base))
    return str(path)


def test_tiny_model_learns_and_evaluates(packed, tmp_path):
    data, config = packed
    args = [
        "pretrain", "--config", str(config), "--data", str(data), "--model-dir", str(tmp_path / "run"),
        "--train-config", train_config(tmp_path, eval_file_fraction=0.25, eval_every=60, eval_steps=4,
                                       checkpoint_every=60, learning_rate=2e-3, warmup_steps=20),
        "--steps", "180",
    ]
    assert quiet_cli(*args) == 0
    state = json.loads((tmp_path / "run" / "training_state.json").read_text())
    losses, val_losses = state["history"]["loss"], state["history"]["val_loss"]
    # An untrained model predicts about uniformly over the vocab: loss ≈ ln(30000) ≈ 10.3. The
    # epoch means (60 steps each) must fall well below that, and keep falling.  (The loss is the
    # mean over real predictions only, BERT's; it read ~10% lower when empty slots counted.)
    uniform = math.log(30000)
    assert losses[-1] < uniform - 2.0 and losses == sorted(losses, reverse=True), losses
    assert len(val_losses) == 3 and val_losses[-1] < uniform - 1.8, val_losses
    assert state["history"]["accuracy"][-1] > 0.05  # well above chance (1/30000)
    assert state["steps"] == 180 and state["last_log"]["tokens_per_second"] > 0
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["checkpoints", "config.json", "logs", "model.weights.h5", "training_state.json", "vocab.txt"]
    assert (tmp_path / "run" / "vocab.txt").read_bytes() == (data / "vocab.txt").read_bytes()
    # TensorBoard got the learning rate and throughput as well as Keras' loss and accuracy.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "logs" / "train")).Reload()
    tags = set(events.Tags()["scalars"]) | set(events.Tags()["tensors"])
    assert {"learning_rate", "tokens_per_second", "non_pad_tokens_per_second"} <= tags


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tpu_is_a_clear_error_in_seconds(packed, tmp_path):
    data, config = packed
    start = time.time()
    result = subprocess.run(
        KCBERT_TF + ["pretrain", "--config", str(config), "--data", str(data), "--model-dir", str(tmp_path / "m"),
                     "--tpu", f"grpc://127.0.0.1:{closed_port()}", "--tpu-timeout", "20"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "kcbert-tf pretrain: error:" in result.stderr and "127.0.0.1" in result.stderr
    assert time.time() - start < 60


@pytest.mark.parametrize("problem", ["vocab size", "too long", "text records", "corrupt"])
def test_bad_input_fails_before_training(packed, tmp_path, capsys, problem):
    data, config = packed
    args = {"--config": str(config), "--data": str(data), "--model-dir": str(tmp_path / "m")}
    if problem == "vocab size":
        args["--config"] = str(REPO / "configs" / "kcbert-tiny.json")  # vocab_size 3000
        expected = "has 30,000 tokens but"
    elif problem == "too long":
        short = tmp_path / "short.json"
        short.write_text(json.dumps({**TINY_30K, "max_position_embeddings": 32}))
        args["--config"] = str(short)
        expected = "sequences of 64 ids is more than max_position_embeddings 32"
    elif problem == "text records":  # preprocess output: records without token_ids
        args["--data"] = str(data.parent / "clean" / "*.tfrecord")
        args["--vocab"] = str(data / "vocab.txt")
        expected = "token_ids"
    else:
        broken = tmp_path / "broken"
        broken.mkdir()
        source = sorted(data.glob("*.tfrecord"))[0]
        raw = bytearray(source.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (broken / "pretraining-00000-of-00001.tfrecord").write_bytes(bytes(raw))
        (broken / "vocab.txt").write_bytes((data / "vocab.txt").read_bytes())
        args["--data"] = str(broken)
        expected = "pretraining-00000-of-00001.tfrecord"
    assert cli(["pretrain", *[item for pair in args.items() for item in pair]]) == 2
    err = capsys.readouterr().err
    assert "kcbert-tf pretrain: error:" in err and expected in err, err
    assert not (tmp_path / "m" / "model.weights.h5").exists()


def weight_decay_excluded(variable_path: str) -> bool:
    """The reference: BERT's rule, no weight decay on LayerNorm parameters and biases."""
    name = variable_path.rsplit("/", 1)[-1]
    return name in ("gamma", "beta") or "bias" in name


def test_weight_decay_skips_layer_norm_and_biases():
    assert weight_decay_excluded("transformer_layer_0/self_attention_layer/query/bias")
    assert weight_decay_excluded("embeddings_layer_norm/gamma") and weight_decay_excluded("mlm_head/output_bias")
    assert not weight_decay_excluded("token_embedding/embeddings")
    assert not weight_decay_excluded("transformer_layer_0/feedforward_output_dense/kernel")


def test_the_optimizer_excludes_what_bert_excludes():
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.training.pretraining import TrainConfig, build_optimizer

    model = build_model(BertConfig.from_dict({**TINY_30K, "vocab_size": 50}))
    optimizer = build_optimizer(TrainConfig(train_steps=100, warmup_steps=10))
    optimizer.build(model.trainable_variables)
    for variable in model.trainable_variables:
        assert optimizer._use_weight_decay(variable) == (not weight_decay_excluded(variable.path)), variable.path
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.clip_norm == 1.0
    assert optimizer.global_clipnorm is None  # Keras' clip comes before the all-reduce: ours after


@pytest.mark.parametrize("steps, every, expected", [(300, 100, 100), (250, 100, 50), (7, 100, 7), (97, 10, 1)])
def test_checkpoint_interval_divides_the_steps(steps, every, expected):
    assert effective_checkpoint_interval(steps, every) == expected


def test_a_short_run_scales_the_recipe_s_warmup(caplog):
    """`--steps 600` with the base recipe (10k warmup of 1M steps): 1% of 600 = 6 warmup steps,
    said on the console; an explicit --warmup-steps wins; the recipe's own steps keep its warmup."""
    import logging

    from kcbert_tf.training.pretraining import load_train_config

    recipe = str(REPO / "configs" / "pretrain-base.json")
    with caplog.at_level(logging.INFO, logger="kcbert_tf.training.pretraining"):
        train = load_train_config(recipe, train_steps=600)
    assert (train.train_steps, train.warmup_steps) == (600, 6)
    assert "warmup_steps 6: the recipe's 10000 of 1000000 steps, scaled to --steps 600" in caplog.text
    explicit = load_train_config(recipe, train_steps=600, warmup_steps=50)
    assert explicit.warmup_steps == 50
    assert load_train_config(recipe).warmup_steps == 10_000


def test_the_reported_loss_is_the_mean_over_real_predictions():
    """BERT's masked-LM loss divides by the number of real predictions, not by all slots: the
    loss Keras computes from the pipeline's batch equals numpy's mean cross-entropy over the
    predictions whose slot is used, from the same logits."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.training import input_pipeline as data
    from kcbert_tf.training.pretraining import TrainConfig, compile_masked_lm
    from test_input_pipeline import packed_rows, write_records

    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        rows = packed_rows(64, 32, 50, np.random.default_rng(7))
        rows[:32, 6:] = 0  # half the sequences short: many unused prediction slots
        rows[:32, 5] = 3
        write_records(f"{directory}/pretraining-00000-of-00001.tfrecord", rows)
        batch = next(iter(data.pretraining_dataset(directory, seq_length=32, global_batch_size=16, vocab_size=50, seed=1)))
    x, y, w = batch
    used = (w.numpy() > 0)
    assert used.mean() < 0.7  # the case the old loss got wrong: padding slots counted
    keras.utils.set_random_seed(0)
    model = build_model(BertConfig.from_dict({**TINY_30K, "vocab_size": 50}))
    compile_masked_lm(model, TrainConfig(train_steps=10, warmup_steps=1), jit_compile=False)
    logits = model.predict(x, verbose=0).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    picked = np.take_along_axis(log_probs, y.numpy()[..., None].astype(int), -1)[..., 0]
    reference = -picked[used].mean()
    loss = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(reference, rel=1e-5)


def test_a_process_that_is_not_the_chief_writes_nothing(packed, tmp_path, monkeypatch):
    """Every process of a multi-worker run trains; only the chief's files land."""
    import dataclasses

    from kcbert_tf.training import strategy as distribution

    real = distribution.resolve_strategy
    monkeypatch.setattr(
        distribution, "resolve_strategy", lambda *a, **k: dataclasses.replace(real(*a, **k), is_chief=False)
    )
    data, config = packed
    before = set(os.listdir(tempfile_root := __import__("tempfile").gettempdir()))
    assert quiet_cli("pretrain", "--config", str(config), "--data", str(data), "--model-dir", str(tmp_path / "m"),
                     "--train-config", str(REPO / "configs" / "pretrain-tiny.json"), "--steps", "4", "--checkpoint-every", "2") == 0
    assert not (tmp_path / "m").exists()
    assert not [name for name in set(os.listdir(tempfile_root)) - before if name.startswith("kcbert-tf-worker-")]
