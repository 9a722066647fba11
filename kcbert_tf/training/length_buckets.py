"""Fine-tuning batches of examples of about one length, padded to a few fixed widths.

A batch padded to the task's max length spends most of its work on ``[PAD]``: NSMC reviews
average 19 ids against a max length of 50.  transformers' ``group_by_length`` sorts megabatches
of up to 50 batches by length; this does the same and then cuts each batch to its longest
example or, where every shape is compiled (TPUs, XLA), pads it to the smallest *bucket width*
that holds it (:func:`bucket_widths`: 16, 32, 64, ... and the max length): a few fixed widths
keep the shapes static, so the train step is compiled once per width, not once per batch.

The plan of a run (:func:`plan_batches`) is plain numpy, deterministic given the seed, and each
epoch's batches depend only on ``(seed, epoch)`` (a run that starts again at epoch ``e`` draws the
same batches).  Every example is used exactly once per epoch: the epoch's last batch is filled
up to the global batch size with copies of its own rows (``real`` False), whose weight is 0, and
the real rows' weights are scaled so that the batch's loss is their mean.  The plan gives every
replica count the same global batches; each replica's loss is normalised over the global batch.

Example:

>>> bucket_widths(50)
(16, 32, 50)
>>> plan = plan_batches([3, 9, 20, 5, 40], batch_size=2, epochs=1, seed=0, widths=(16, 32, 50))  # a TPU's
>>> plan.steps_per_epoch, sorted(plan.indices[plan.real].tolist())  # every example once
(3, [0, 1, 2, 3, 4])
>>> [(sorted(rows), int(width)) for rows, width in zip(plan.indices.tolist(), plan.widths)]
[([1, 1], 16), ([2, 4], 50), ([0, 3], 16)]
>>> plan.weights[0].tolist()  # the last batch of the epoch: one real row, one filler
[2.0, 0.0]
>>> plan_batches([3, 9, 20, 5, 40], batch_size=2, epochs=1, seed=0, widths=None).widths.tolist()  # a CPU's
[9, 40, 5]
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

__all__ = ["MEGABATCH_BATCHES", "SMALLEST_WIDTH", "BatchPlan", "TrainingExamples", "bucket_widths", "plan_batches",
           "bucketed_dataset"]

#: Batches per megabatch, the group sorted by length: at most this many, and few enough for 4
#: megabatches an epoch (transformers' ``group_by_length`` rule).
MEGABATCH_BATCHES = 50
#: The smallest bucket width.
SMALLEST_WIDTH = 16


def bucket_widths(max_length: int, smallest: int = SMALLEST_WIDTH) -> tuple[int, ...]:
    """The widths batches are padded to: powers of two from ``smallest`` below ``max_length``,
    then ``max_length`` itself."""
    widths, width = [], smallest
    while width < max_length:
        widths.append(width)
        width *= 2
    return (*widths, max_length)


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """The global batches of a run, in order: ``indices`` ``[steps, batch_size]`` (example rows),
    ``real`` (False: a filler row of an epoch's last batch) and ``widths`` ``[steps]``."""

    indices: np.ndarray
    real: np.ndarray
    widths: np.ndarray
    steps_per_epoch: int

    @property
    def weights(self) -> np.ndarray:
        """Per-row loss weights ``[steps, batch_size]``: 0 for a filler row, and the real rows of
        a batch scaled so that the batch's mean loss is theirs (1 in a batch without filler)."""
        real = self.real.astype(np.float32)
        return real * (real.shape[1] / real.sum(axis=1, keepdims=True))


def _epoch(lengths: np.ndarray, batch_size: int, widths: np.ndarray, seed: int, epoch: int):
    rng = np.random.default_rng([seed, epoch])
    count = len(lengths)
    order = rng.permutation(count)
    group = max(1, min(count // (4 * batch_size), MEGABATCH_BATCHES)) * batch_size
    # Each megabatch sorted longest first (stable: ties keep the drawn order).
    rows = np.concatenate([
        order[start:start + group][np.argsort(-lengths[order[start:start + group]], kind="stable")]
        for start in range(0, count, group)
    ])
    steps = -(-count // batch_size)
    filler = steps * batch_size - count
    last = rows[(steps - 1) * batch_size:]
    rows = np.concatenate([rows, np.resize(last, filler)]).reshape(steps, batch_size)
    real = np.ones(rows.shape, bool)
    real[-1, batch_size - filler:] = False
    shuffled = rng.permutation(steps)  # batches of every length all through the epoch
    rows, real = rows[shuffled], real[shuffled]
    longest = lengths[rows].max(axis=1)
    return rows, real, widths[np.searchsorted(widths, longest)]


def plan_batches(lengths: Sequence[int], *, batch_size: int, epochs: int, seed: int,
                 widths: Sequence[int] | None) -> BatchPlan:
    """The batches of ``epochs`` epochs of examples whose lengths (ids, padding excluded) are
    ``lengths``, each padded to the smallest of ``widths`` that holds its longest example (None:
    cut to its longest example)."""
    lengths = np.asarray(lengths, np.int64)
    if len(lengths) == 0:
        raise ValueError("no training examples to batch")
    widths = np.arange(1, max(int(lengths.max()), 1) + 1) if widths is None else np.asarray(sorted(widths), np.int32)
    if lengths.max() > widths[-1]:
        raise ValueError(f"an example of {lengths.max()} ids is longer than the widest bucket ({widths[-1]})")
    epochs_ = [_epoch(lengths, batch_size, widths, seed, epoch) for epoch in range(epochs)]
    return BatchPlan(
        np.concatenate([rows for rows, _, _ in epochs_]).astype(np.int64),
        np.concatenate([real for _, real, _ in epochs_]),
        np.concatenate([width for _, _, width in epochs_]).astype(np.int32),
        len(epochs_[0][0]),
    )


@dataclasses.dataclass(frozen=True)
class TrainingExamples:
    """A task's training examples, packed once: model ``inputs`` (``token_ids``,
    ``segment_ids``, ``padding_mask``: ``[examples, max_length]``) and ``targets`` (per example,
    or ``[examples, max_length]`` per token when ``targets_per_token``)."""

    inputs: dict
    targets: np.ndarray
    targets_per_token: bool = False

    def __post_init__(self):
        object.__setattr__(self, "inputs", {name: np.asarray(value, np.int32) for name, value in self.inputs.items()})
        object.__setattr__(self, "targets", np.asarray(self.targets))

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def lengths(self) -> np.ndarray:
        """Each example's ids, padding excluded."""
        return self.inputs["padding_mask"].sum(axis=1)


def bucketed_dataset(examples: TrainingExamples, plan: BatchPlan,
                     finish: Callable | None = None):
    """The plan's batches as a ``tf.data.Dataset`` of ``(inputs, targets, weights)``, each cut to
    its width; ``finish(inputs, targets, weights)`` makes the element Keras trains on (default:
    that tuple)."""
    import tensorflow as tf

    inputs = {name: tf.constant(value) for name, value in examples.inputs.items()}
    targets = tf.constant(examples.targets)
    per_token = examples.targets_per_token

    def batch(indices, weights, width):
        x = {name: tf.gather(value, indices)[:, :width] for name, value in inputs.items()}
        y = tf.gather(targets, indices)
        if per_token:
            y = y[:, :width]
        return (finish or (lambda *element: element))(x, y, weights)

    dataset = tf.data.Dataset.from_tensor_slices((plan.indices, plan.weights, plan.widths))
    return dataset.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
