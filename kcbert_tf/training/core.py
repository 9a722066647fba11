"""The training core that pretraining and fine-tuning share: ``model.fit`` on any number of
replicas, with BERT's optimizer, checkpoints every interval, exact resume, and logs on the
optimizer-step axis; only the chief writes.

What it guarantees (``tests/test_replicas.py`` checks each on logical CPU replicas):

- **N replicas train like 1.** The input pipeline gives every replica count the same global
  batches and a loss normalised over the global batch (:mod:`kcbert_tf.training.input_pipeline`); the optimizer
  sums the replicas' gradients, *then* clips them by their global norm
  (:class:`~kcbert_tf.model.keras_internals.AdamWClippedAfterAllReduce`); so with dropout off the
  weights after training agree to float32 rounding on 1, 2 or 4 replicas.
- **Each replica draws its own dropout masks** (:func:`prepare_model`).
- **K micro-batches accumulated train like one batch**: with ``grad_accum_steps`` K each
  optimizer step is the mean of K micro-batches' gradients, all-reduced and clipped once; the
  weights agree with K = 1 to float32 rounding, on any replica count.
- **A killed run resumes exactly**: checkpoints hold the weights, the optimizer (step,
  moments) and the dropout RNG state, and are taken at the end of each epoch (one checkpoint
  interval); the caller restarts the data stream at ``step * global_batch``.
- **TensorBoard's step is the optimizer step**, also after a resume and with several steps
  per execution (:class:`StepLogger`).
- **Only the chief writes** (:attr:`Checkpoints.is_chief`): other processes of a multi-worker
  run keep their checkpoints in a temporary directory that is removed.

Example (the default strategy, a Keras model with a compiled loss)::

    with info.strategy.scope():
        model = build_model()
        prepare_model(model)
        model.compile(optimizer=build_optimizer(OptimizerSettings(...)), loss=..., steps_per_execution=...)
        checkpoints = Checkpoints(model, "run/checkpoints", keep=3, is_chief=info.is_chief)
        step = checkpoints.restore_latest()
    fit_in_epochs(model, train_ds, total_steps=1000, interval=100, step=step, callbacks=[...])
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import time

import keras

from kcbert_tf.model.keras_internals import AdamWClippedAfterAllReduce, accumulate_gradients, draw_dropout_per_replica

__all__ = [
    "OptimizerSettings",
    "build_optimizer",
    "prepare_model",
    "effective_checkpoint_interval",
    "Checkpoints",
    "CheckpointEveryEpoch",
    "StepLogger",
    "fit_in_epochs",
]

_LOG = logging.getLogger(__name__)

#: BERT's rule: no weight decay on LayerNorm parameters (gamma, beta) and biases.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
    """BERT's AdamW: linear warmup to ``learning_rate``, linear decay to 0 at ``total_steps``."""

    learning_rate: float
    warmup_steps: int
    total_steps: int
    weight_decay: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clip_norm: float | None = 1.0


def build_optimizer(settings: OptimizerSettings) -> AdamWClippedAfterAllReduce:
    """AdamW with BERT's schedule, decoupled weight decay (not on LayerNorm or biases) and
    global-norm clipping of the all-reduced gradients."""
    from kcbert_tf.training.lr_schedule import WarmupLinearDecay

    optimizer = AdamWClippedAfterAllReduce(
        learning_rate=WarmupLinearDecay(
            settings.learning_rate, settings.warmup_steps, settings.total_steps
        ),
        weight_decay=settings.weight_decay,
        beta_1=settings.beta_1,
        beta_2=settings.beta_2,
        epsilon=settings.epsilon,
        clip_norm=settings.clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


def prepare_model(model, *, grad_accum_steps: int = 1) -> None:
    """Get a freshly built model ready for multi-replica training: each replica its own dropout
    masks; with ``grad_accum_steps`` K > 1, each optimizer step sums the gradients of K
    micro-batches of a replica's batch (:func:`~kcbert_tf.model.keras_internals.accumulate_gradients`:
    the same step in less memory).  Call it in ``strategy.scope()``, before ``compile``."""
    draw_dropout_per_replica(model)
    accumulate_gradients(model, grad_accum_steps)


def effective_checkpoint_interval(train_steps: int, checkpoint_every: int) -> int:
    """The checkpoint interval: ``checkpoint_every``, or the largest divisor of ``train_steps``
    below it, so that training ends exactly on a checkpoint."""
    interval = max(1, min(checkpoint_every, train_steps))
    while train_steps % interval:
        interval -= 1
    return interval


def _rng_state(model) -> list:
    """The dropout RNG state variables (Keras keeps them outside ``model``'s tracked weights)."""
    return [v.value for v in model.non_trainable_variables if "seed_generator" in v.path]


class Checkpoints:
    """The checkpoints of a run: weights, optimizer state and dropout RNG state, every interval.

    Build it in ``strategy.scope()`` after the optimizer is built.  A process that is not the
    chief (``is_chief=False``) writes into a temporary directory, removed by :meth:`close`, so
    that collective saves still run everywhere but only the chief's files land.
    """

    def __init__(self, model, directory: str, *, keep: int | None, is_chief: bool = True):
        import tensorflow as tf

        self.is_chief = is_chief
        self.directory = directory if is_chief else tempfile.mkdtemp(prefix="kcbert-tf-worker-")
        self._read_directory = directory
        checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, rng_state=_rng_state(model)
        )
        self._checkpoint = checkpoint
        self.manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=keep)
        self._iterations = model.optimizer.iterations

    @property
    def latest(self) -> str | None:
        """The newest checkpoint the chief recorded (what a restart resumes from)."""
        import tensorflow as tf

        return tf.train.latest_checkpoint(self._read_directory)

    def restore_latest(self) -> int:
        """Restore the newest checkpoint, if any; return the optimizer step it is at (0 if none)."""
        latest = self.latest
        if latest:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
            _LOG.info("resuming from %s", latest)
        return int(self._iterations.numpy())

    def save(self) -> str:
        """Save at the current optimizer step (``ckpt-STEP``); return the path."""
        return self.manager.save(checkpoint_number=int(self._iterations.numpy()))

    def close(self) -> None:
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Save a checkpoint at the end of every epoch (= one checkpoint interval)."""

    def __init__(self, checkpoints: Checkpoints):
        super().__init__()
        self._checkpoints = checkpoints

    def on_epoch_end(self, epoch, logs=None):
        _LOG.info("checkpoint %s", self._checkpoints.save())


class StepLogger(keras.callbacks.Callback):
    """TensorBoard scalars on the optimizer-step axis (which continues across a resume): every
    ``log_every`` steps Keras' running loss and metrics, the learning rate, the gradient norm
    before clipping, tokens/s; at each epoch end the validation metrics.

    Keras' own TensorBoard callback counts executions, not steps, and starts again at 0 after a
    resume; this one reads ``optimizer.iterations``.  ``tokens_per_step`` is the global batch
    times the sequence length (0: no throughput); ``fill_ratio`` the share of non-pad tokens.
    Writes nothing when ``log_dir`` is None (a process that is not the chief).
    """

    def __init__(self, log_dir: str | None, *, log_every: int, tokens_per_step: int = 0, fill_ratio: float = 1.0):
        super().__init__()
        import tensorflow as tf

        self._train = tf.summary.create_file_writer(os.path.join(log_dir, "train")) if log_dir else None
        self._validation = (
            tf.summary.create_file_writer(os.path.join(log_dir, "validation")) if log_dir else None
        )
        self._log_every = log_every
        self._tokens_per_step = tokens_per_step
        self._fill_ratio = fill_ratio
        self._mark: tuple[float, int] | None = None
        self._last_logged = -1
        self.first: dict = {}
        self.last: dict = {}

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        now = time.perf_counter()
        values = {key: float(value) for key, value in (logs or {}).items()}
        if self._mark is None:  # The first call includes tracing and compiling: time from here.
            self._mark = (now, step)
            self._last_logged = step
            self.first = {"step": step, **values}
            return
        if step // self._log_every == self._last_logged // self._log_every:
            return
        start_time, start_step = self._mark
        optimizer = self.model.optimizer
        record = {"step": step, **values}
        record["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        norm = getattr(optimizer, "gradient_norm", None)
        if norm is not None:
            record["gradient_norm"] = float(keras.ops.convert_to_numpy(norm))
        if self._tokens_per_step and step > start_step:
            record["tokens_per_second"] = (step - start_step) * self._tokens_per_step / (now - start_time)
            record["non_pad_tokens_per_second"] = record["tokens_per_second"] * self._fill_ratio
        self.last = record
        self._write(self._train, step, {k: v for k, v in record.items() if k != "step"})
        self._mark = (now, step)
        self._last_logged = step

    def on_epoch_end(self, epoch, logs=None):
        validation = {k[4:]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
        if validation:
            self._write(self._validation, self._step(), validation)

    @staticmethod
    def _write(writer, step: int, values: dict) -> None:
        if writer is None:
            return
        import tensorflow as tf

        with writer.as_default(step=step), tf.summary.record_if(True):
            for key, value in values.items():
                tf.summary.scalar(key, value)
        writer.flush()


def fit_in_epochs(
    model,
    train_data,
    *,
    total_steps: int,
    interval: int,
    step: int,
    callbacks: list,
    validation_data=None,
    validation_steps: int | None = None,
    validation_every: int | None = None,
) -> dict:
    """``model.fit`` from optimizer step ``step`` to ``total_steps``, one epoch per checkpoint
    ``interval`` (``step`` must be a multiple of it); validation every ``validation_every``
    steps (rounded to whole epochs).  Returns the history (``{}`` when already done).

    ``train_data`` and ``validation_data`` may be distributed datasets; ``train_data`` must
    already start at ``step``.
    """
    if step % interval:
        raise ValueError(f"step {step} is not a multiple of the checkpoint interval {interval}")
    epochs, initial_epoch = total_steps // interval, step // interval
    if initial_epoch >= epochs:
        return {}
    fit = model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=interval,
        validation_data=validation_data,
        validation_steps=validation_steps if validation_data is not None else None,
        validation_freq=max(1, (validation_every or interval) // interval),
        callbacks=callbacks,
        shuffle=False,  # The datasets shuffle (seeded, resumable).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return {key: [float(v) for v in values] for key, values in fit.history.items()}
