"""BERT's learning-rate schedule: linear warmup to the peak, then linear decay to zero.

Example:

>>> schedule = WarmupLinearDecay(peak_learning_rate=1e-4, warmup_steps=10, total_steps=110)
>>> [round(float(schedule(step)), 7) for step in (0, 5, 10, 60, 110, 200)]
[0.0, 5e-05, 0.0001, 5e-05, 0.0, 0.0]
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["WarmupLinearDecay"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * step / warmup`` for the first ``warmup_steps``, then linear decay to 0 at
    ``total_steps`` (google-research/bert's ``create_optimizer`` schedule)."""

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        if total_steps <= 0 or warmup_steps < 0:
            raise ValueError(f"total_steps must be > 0 and warmup_steps >= 0, got {total_steps}, {warmup_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        decay_span = ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        warming = self.peak_learning_rate * step / warmup
        decaying = self.peak_learning_rate * ops.maximum(
            0.0, (self.total_steps - step) / decay_span
        )
        return ops.where(step < self.warmup_steps, warming, decaying)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }
