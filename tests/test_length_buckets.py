"""Length-bucketed fine-tuning batches (kcbert_tf.training.length_buckets), checked against plain
Python: every example once per epoch, the same batches from the same seed, each batch cut to the
smallest bucket that holds it with nothing real cut off, weights that make the loss the real
rows' mean, and a train step traced once however many widths it sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO
from kcbert_tf.training.length_buckets import TrainingExamples, bucket_widths, bucketed_dataset, plan_batches


def lengths_like_comments(count: int, seed: int = 0) -> np.ndarray:
    """Lengths shaped like NSMC's (most short, a long tail), capped at 50."""
    return np.minimum(np.random.default_rng(seed).geometric(1 / 19, count) + 2, 50)


@pytest.mark.parametrize("count, batch_size", [(1000, 64), (1024, 64), (7, 3), (5, 8)])
def test_every_example_once_per_epoch_and_the_same_batches_from_the_same_seed(count, batch_size):
    lengths = lengths_like_comments(count)
    plan = plan_batches(lengths, batch_size=batch_size, epochs=3, seed=7, widths=bucket_widths(50))
    steps = -(-count // batch_size)
    assert plan.steps_per_epoch == steps and plan.indices.shape == (3 * steps, batch_size)
    for epoch in range(3):
        rows = plan.indices[epoch * steps:(epoch + 1) * steps]
        real = plan.real[epoch * steps:(epoch + 1) * steps]
        assert sorted(rows[real].tolist()) == list(range(count))
        assert (~real).sum() == steps * batch_size - count
    again = plan_batches(lengths, batch_size=batch_size, epochs=3, seed=7, widths=bucket_widths(50))
    assert all(np.array_equal(a, b) for a, b in zip((plan.indices, plan.real, plan.widths),
                                                      (again.indices, again.real, again.widths)))
    if count > batch_size:
        other = plan_batches(lengths, batch_size=batch_size, epochs=3, seed=8, widths=bucket_widths(50))
        assert not np.array_equal(plan.indices, other.indices)
    # An epoch's batches depend only on the seed and the epoch: a shorter run is a prefix, so a run
    # started again from step k takes the same batches from there.
    first = plan_batches(lengths, batch_size=batch_size, epochs=1, seed=7, widths=bucket_widths(50))
    assert np.array_equal(first.indices, plan.indices[:steps])
    # Epochs are drawn afresh.
    if count > 2 * batch_size:
        assert not np.array_equal(plan.indices[:steps], plan.indices[steps:2 * steps])


def test_each_batch_is_the_smallest_bucket_that_holds_it_and_pads_far_less_than_the_max_length():
    lengths = lengths_like_comments(9000)
    widths = bucket_widths(50)
    assert widths == (16, 32, 50) and bucket_widths(300) == (16, 32, 64, 128, 256, 300) and bucket_widths(8) == (8,)
    plan = plan_batches(lengths, batch_size=64, epochs=2, seed=0, widths=widths)
    for rows, width in zip(plan.indices, plan.widths):
        longest = lengths[rows].max()
        assert width == min(w for w in widths if w >= longest)
    computed = plan.widths.sum() * 64
    assert computed < 0.6 * len(plan.widths) * 64 * 50, computed  # against every batch padded to 50
    # Batches are drawn from length-sorted megabatches: their lengths are close.
    spread = np.median([np.ptp(lengths[rows]) for rows in plan.indices])
    assert spread <= 3, spread
    # ... and the epoch's batches come in a shuffled order of lengths, not longest to shortest.
    steps = plan.steps_per_epoch
    longest = [lengths[rows].max() for rows in plan.indices[:steps]]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_weights_make_the_loss_the_mean_over_the_real_rows():
    lengths = lengths_like_comments(10)
    plan = plan_batches(lengths, batch_size=4, epochs=1, seed=0, widths=(16, 32, 50))
    losses = np.random.default_rng(1).random(10)  # any per-example loss
    for rows, real, weights in zip(plan.indices, plan.real, plan.weights):
        keras_mean = float((losses[rows] * weights).sum() / len(rows))  # "sum over batch size"
        assert keras_mean == pytest.approx(float(losses[rows[real]].mean()))
        assert (weights[~real] == 0).all()


def test_without_widths_each_batch_is_cut_to_its_longest_example():
    lengths = lengths_like_comments(500)
    plan = plan_batches(lengths, batch_size=16, epochs=1, seed=4, widths=None)
    assert [int(width) for width in plan.widths] == [int(lengths[rows].max()) for rows in plan.indices]
    assert sorted(plan.indices[plan.real].tolist()) == list(range(500))


@pytest.mark.parametrize("setting, compiled, expected", [
    ("auto", False, None), ("auto", True, (16, 32, 50)), ("longest", True, None), ("16,48", False, (16, 48, 50)),
    ("50", False, (50,)), ("64,16", True, (16, 50)),
])
def test_the_length_buckets_setting(setting, compiled, expected):
    """'auto' keeps to a few widths only where every shape is compiled (a TPU, XLA)."""
    from kcbert_tf.tasks.contract import TrainingSettings

    settings = TrainingSettings("accuracy", 50, 1, 8, 1e-3, length_buckets=setting)
    settings.check()
    assert settings.bucket_widths(compiled_per_shape=compiled) == expected


@pytest.mark.parametrize("setting", ["0,16", "sixteen", "16,,32"])
def test_a_bad_length_buckets_setting_names_the_flag(setting):
    from kcbert_tf.errors import UserError
    from kcbert_tf.tasks.contract import TrainingSettings

    with pytest.raises(UserError, match="--length-buckets takes 'auto', 'longest' or widths"):
        TrainingSettings("accuracy", 50, 1, 8, 1e-3, length_buckets=setting).check()


def test_too_long_an_example_is_refused():
    with pytest.raises(ValueError, match="longer than the widest bucket"):
        plan_batches([3, 60], batch_size=2, epochs=1, seed=0, widths=(16, 50))


def packed_examples(lengths, width: int, per_token: bool = False) -> TrainingExamples:
    ids = np.zeros((len(lengths), width), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = 5 + row  # a row's ids say which row it is
    targets = np.where(ids > 0, ids + 1000, -100) if per_token else np.arange(len(lengths), dtype=np.int32)
    return TrainingExamples({"token_ids": ids, "segment_ids": 0 * ids, "padding_mask": (ids > 0).astype(np.int32)},
                            targets, targets_per_token=per_token)


@pytest.mark.parametrize("per_token", [False, True])
def test_the_dataset_gives_the_planned_rows_cut_to_their_width_and_cuts_only_padding(per_token):
    lengths = lengths_like_comments(50)
    examples = packed_examples(lengths, 50, per_token)
    plan = plan_batches(examples.lengths, batch_size=8, epochs=2, seed=3, widths=bucket_widths(50))
    batches = list(bucketed_dataset(examples, plan).as_numpy_iterator())
    assert len(batches) == len(plan.indices)
    for (x, y, weights), rows, width, expected_weights in zip(batches, plan.indices, plan.widths, plan.weights):
        assert x["token_ids"].shape == (8, width) and set(x) == {"token_ids", "segment_ids", "padding_mask"}
        assert np.array_equal(x["token_ids"], examples.inputs["token_ids"][rows, :width])
        assert examples.inputs["padding_mask"][rows, width:].sum() == 0  # nothing real was cut
        assert np.array_equal(x["padding_mask"].sum(1), lengths[rows])
        assert np.array_equal(y, examples.targets[rows, :width] if per_token else rows)
        assert np.allclose(weights, expected_weights)


FIT_ON_TWO_REPLICAS = textwrap.dedent(
    """
    import collections, json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from kcbert_tf.training.length_buckets import bucket_widths, bucketed_dataset, plan_batches
    from test_length_buckets import lengths_like_comments, packed_examples

    examples = packed_examples(lengths_like_comments(96), 50)
    plan = plan_batches(examples.lengths, batch_size=8, epochs=2, seed=0, widths=bucket_widths(50))
    traced = collections.Counter()

    class Counting(keras.Model):
        def __init__(self):
            super().__init__()
            self.embedding = keras.layers.Embedding(200, 4)
            self.dense = keras.layers.Dense(96)

        def call(self, inputs):
            mask = keras.ops.cast(inputs["padding_mask"], "float32")[..., None]
            return self.dense(keras.ops.sum(self.embedding(inputs["token_ids"]) * mask, axis=1))

        def train_step(self, data):
            traced[str(tuple(data[0]["token_ids"].shape))] += 1  # Python runs here at trace time only
            return super().train_step(data)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = Counting()
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset = bucketed_dataset(examples, plan)
    fed = sorted({tuple(x["token_ids"].shape) for x, _, _ in dataset.as_numpy_iterator()})
    model.fit(strategy.experimental_distribute_dataset(dataset), epochs=2, steps_per_epoch=plan.steps_per_epoch,
              verbose=0)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "fed": fed, "traced": traced,
                      "widths": sorted(set(plan.widths.tolist())), "steps": len(plan.widths)}))
    """
)


def test_a_fit_on_two_replicas_is_fed_only_the_bucket_widths_and_traces_its_step_once_per_replica():
    """Three widths and 24 steps: the step is traced for the replicas once (each replica's half
    batch, its width left open by Keras' reduce_retracing), not once per batch or per width."""
    result = subprocess.run([sys.executable, "-c", FIT_ON_TWO_REPLICAS], cwd=REPO / "tests",
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["widths"] == [16, 32, 50] and report["steps"] == 24
    assert report["fed"] == [[8, width] for width in report["widths"]]
    assert sum(report["traced"].values()) <= 2 * report["replicas"], report["traced"]
