"""Prediction batched by length (`kcbert_tf.tasks.length_batches`): the compiled forward pass on
length-sorted batches cut to their longest row gives what the model gives on each row alone, and
small inputs, which skip tracing, give the same."""

from __future__ import annotations

import numpy as np
import pytest

from kcbert_tf.model.presets import build_model
from kcbert_tf.model.config import BertConfig
from kcbert_tf.tasks.length_batches import EAGER_MAX_ROWS, compiled_forward, eager_for_small_inputs, predict_by_length


@pytest.fixture(scope="module")
def classifier():
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32).with_labels(["a", "b", "c"])
    return build_model(config)


def _rows(count: int, width: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, width), np.int32)
    for row, length in enumerate(rng.integers(3, width + 1, count)):
        ids[row, :length] = [2, *rng.integers(5, 40, length - 2), 3]
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": (ids > 0).astype(np.int32)}


def _each_row_alone(model, inputs: dict) -> np.ndarray:
    """The reference: the Keras model called on every row by itself, without any padding."""
    out = []
    for row in range(len(inputs["token_ids"])):
        length = int(inputs["padding_mask"][row].sum())
        alone = {name: value[row : row + 1, :length] for name, value in inputs.items()}
        out.append(np.asarray(model(alone, training=False))[0])
    return np.stack(out)


def test_batches_by_length_equal_each_row_alone(classifier):
    inputs = _rows(40, 20)
    got = predict_by_length(compiled_forward(classifier), inputs, batch_size=8)
    np.testing.assert_allclose(got, _each_row_alone(classifier, inputs), atol=1e-5)


@pytest.mark.parametrize("rows", [EAGER_MAX_ROWS, EAGER_MAX_ROWS + 1])
def test_small_inputs_run_eagerly_with_the_same_outputs(classifier, rows):
    import tensorflow as tf

    inputs = _rows(rows, 12, seed=1)
    with eager_for_small_inputs(rows):
        assert tf.config.functions_run_eagerly() == (rows <= EAGER_MAX_ROWS)
        got = predict_by_length(compiled_forward(classifier), inputs, batch_size=8)
    assert not tf.config.functions_run_eagerly()  # restored
    np.testing.assert_allclose(got, _each_row_alone(classifier, inputs), atol=1e-5)


def test_bucket_widths_and_whole_batches_give_each_row_alone_too(classifier):
    """The TPU form (each batch padded to a bucket width and filled up to the batch size, the
    filler's outputs dropped) and the evaluation fine-tuning runs (model_outputs, its compiled
    forward kept on the model) give what each row gives alone."""
    from kcbert_tf.tasks.length_batches import model_outputs

    inputs = _rows(37, 20, seed=2)
    calls = []

    def forward(batch):
        calls.append(batch["token_ids"].shape)
        return np.asarray(classifier(batch, training=False))

    alone = _each_row_alone(classifier, inputs)
    got = predict_by_length(forward, inputs, batch_size=8, widths=(8, 16), whole_batches=True)
    np.testing.assert_allclose(got, alone, atol=1e-5)
    assert {shape for shape in calls} <= {(8, 8), (8, 16), (8, 20)} and len(calls) == 5
    first = model_outputs(classifier, inputs, batch_size=8)
    forward_kept = classifier._kcbert_tf_forward
    np.testing.assert_allclose(first, alone, atol=1e-5)
    np.testing.assert_allclose(model_outputs(classifier, inputs, batch_size=8), alone, atol=1e-5)
    assert classifier._kcbert_tf_forward is forward_kept  # built once per model
