"""Prediction at the speed of the real tokens: rows sorted by length into batches, each cut to its
longest row, through one compiled graph.

A batch padded to a fixed max length (or to the longest row of an unsorted batch) spends most of
its work on ``[PAD]``: NSMC reviews average 19 ids, a batch of 64 in file order is padded to about
3.5 times that.  :func:`predict_by_length` sorts the rows of a chunk by their number of ids, cuts
each batch of neighbours to its longest row, runs the model's compiled forward pass
(:func:`compiled_forward`: a ``tf.function`` over any batch and length, traced once, with
TensorFlow's graph optimisations instead of Keras' op-by-op eager calls) and puts the outputs back
in input order.  The outputs equal the model's on the padded rows: the padding mask keeps ``[PAD]``
out of every real position.

Example:

>>> import numpy as np
>>> calls = []
>>> def forward(inputs):  # stands in for the model: the row sums, and the shapes it was given
...     calls.append(inputs["token_ids"].shape)
...     return inputs["token_ids"].sum(axis=1, keepdims=True)
>>> ids = np.array([[2, 5, 3, 0], [2, 5, 6, 3], [2, 3, 0, 0]], np.int32)
>>> inputs = {"token_ids": ids, "segment_ids": 0 * ids, "padding_mask": (ids > 0).astype(np.int32)}
>>> predict_by_length(forward, inputs, batch_size=2)[:, 0].tolist(), calls
([10, 16, 5], [(2, 3), (1, 4)])
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import numpy as np

from kcbert_tf.text.model_inputs import batches_by_length
from kcbert_tf.training.length_buckets import bucket_widths

__all__ = ["EAGER_MAX_ROWS", "compiled_forward", "eager_for_small_inputs", "predict_by_length", "model_outputs"]

#: Inputs of at most this many rows run eagerly: tracing the tokenizer and the model (about 2 s
#: on any model size) would cost more than the graph saves on so few rows.
EAGER_MAX_ROWS = 32

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def compiled_forward(model) -> Callable[[dict], np.ndarray]:
    """The model's inference pass as one ``tf.function`` over ``[batch, length]`` int32 inputs of
    any size (traced once), returning float32 numpy outputs."""
    import tensorflow as tf

    spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in INPUT_NAMES}

    @tf.function(input_signature=[spec])
    def forward(inputs):
        return tf.cast(model(inputs, training=False), tf.float32)

    def call(inputs: dict) -> np.ndarray:
        return forward({name: tf.convert_to_tensor(inputs[name], tf.int32) for name in INPUT_NAMES}).numpy()

    return call


@contextlib.contextmanager
def eager_for_small_inputs(rows: int):
    """Within the block, ``tf.function`` s (the tokenizer, :func:`compiled_forward`) run eagerly
    if ``rows`` is at most :data:`EAGER_MAX_ROWS`: on a handful of rows tracing costs more than
    it saves.  The same ops run either way."""
    if rows > EAGER_MAX_ROWS:
        yield
        return
    import tensorflow as tf

    previous = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(previous)


def predict_by_length(forward: Callable[[dict], np.ndarray], inputs: dict, *, batch_size: int,
                      per_token: bool = False, widths: Sequence[int] | None = None,
                      whole_batches: bool = False) -> np.ndarray:
    """``forward``'s outputs for every row of ``inputs`` (``[rows, width]`` arrays), in row order,
    computed in batches of rows of similar length, each cut to its longest row (or, given
    ``widths``, to the smallest of them that holds it).  ``whole_batches``: a short batch is filled
    up to ``batch_size`` with copies of its first row, their outputs dropped (static shapes, for
    TPUs).  ``per_token`` outputs (``[batch, length, ...]``) come back padded with zeros to
    ``width``."""
    mask = np.asarray(inputs["padding_mask"])
    rows, width = mask.shape
    lengths = mask.sum(axis=1)
    outputs = None
    for chosen in batches_by_length(lengths, batch_size):
        longest = max(int(lengths[chosen].max()), 1)
        if widths is not None:
            longest = min(w for w in (*widths, width) if w >= longest)
        taken = np.resize(chosen, batch_size) if whole_batches else chosen
        batch = {name: np.ascontiguousarray(np.asarray(inputs[name])[taken, :longest]) for name in INPUT_NAMES}
        result = np.asarray(forward(batch))[: len(chosen)]
        if outputs is None:
            shape = (rows, width, *result.shape[2:]) if per_token else (rows, *result.shape[1:])
            outputs = np.zeros(shape, result.dtype)
        if per_token:
            outputs[chosen, :longest] = result
        else:
            outputs[chosen] = result
    return outputs if outputs is not None else np.zeros((0,), np.float32)


def model_outputs(model, inputs: dict, *, batch_size: int, per_token: bool = False) -> np.ndarray:
    """``model``'s outputs for packed ``inputs`` (``[rows, width]``), in row order, batched by
    length through one compiled forward pass per model (:func:`compiled_forward`, built on the
    first call and kept on the model): how fine-tuning scores the eval file after every epoch.
    Under a ``TPUStrategy`` each batch goes through Keras' distributed ``predict_on_batch``,
    padded to the training bucket widths and to whole batches, so the TPU compiles a few
    shapes."""
    strategy = getattr(model, "distribute_strategy", None)
    if type(strategy).__name__.startswith("TPUStrategy"):
        return predict_by_length(model.predict_on_batch, inputs, batch_size=batch_size, per_token=per_token,
                                 widths=bucket_widths(np.asarray(inputs["padding_mask"]).shape[1]), whole_batches=True)
    forward = getattr(model, "_kcbert_tf_forward", None)
    if forward is None:
        forward = compiled_forward(model)
        object.__setattr__(model, "_kcbert_tf_forward", forward)  # a plain function: nothing for Keras to track
    return predict_by_length(forward, inputs, batch_size=batch_size, per_token=per_token)
