"""What every KcBERT task model adds to its KerasHub base class.

The four task models (:class:`~kcbert_tf.model.masked_lm.KcBertMaskedLM`,
:class:`~kcbert_tf.model.text_classifier.KcBertTextClassifier`,
:class:`~kcbert_tf.model.token_classifier.KcBertTokenClassifier`,
:class:`~kcbert_tf.model.question_answerer.KcBertQuestionAnswerer`) are KerasHub ``Task`` s on a
:class:`~kcbert_tf.model.backbone.KcBertBackbone` that carry their preprocessor.  Through
:class:`KcBertTask` each also:

- trains under ``tf.distribute`` as it should: each replica draws its own dropout masks, and the
  default optimizer (``compile()`` with ``optimizer="auto"``) is AdamW with KcBERT-Finetune's
  settings that clips the summed gradients after the all-reduce
  (:mod:`kcbert_tf.model.keras_internals`); ``fit`` and ``evaluate`` also take a distributed
  dataset of model inputs;
- knows its Hugging Face config (:attr:`~KcBertTask.bert_config`) and its labels;
- saves to a model directory: ``save_to_preset(DIR)`` writes ``config.json`` (transformers'
  form), ``vocab.txt``, ``model.weights.h5`` and ``task.json`` (the task record, from the
  preprocessor's settings), which every ``kcbert-tf`` command reads and which
  ``keras_hub.models.*.from_preset(DIR)`` loads back (:mod:`kcbert_tf.model.presets`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import keras

from kcbert_tf.errors import UserError
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.keras_internals import AdamWClippedAfterAllReduce, DistributedDatasetFit, draw_dropout_per_replica
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import TaskRecord

__all__ = ["KcBertTask", "DEFAULT_LEARNING_RATE"]

#: ``compile()``'s default learning rate (KcBERT-Finetune's for NSMC, KorSTS, Question Pair, KorQuAD).
DEFAULT_LEARNING_RATE = 5e-5


class KcBertTask(DistributedDatasetFit):
    """Mixin for the KcBERT task models: put it first among the bases,
    ``class KcBertX(KcBertTask, keras_hub.models.Y)``; ``__init__`` builds with ``compile=False``
    and ends with :meth:`_finish_kcbert_task`, which compiles."""

    #: The head's name (:mod:`kcbert_tf.model.heads`).
    HEAD: ClassVar[str]

    def _finish_kcbert_task(self, labels, record, compile: bool) -> None:
        self.labels = None if labels is None else [str(label) for label in labels]
        if isinstance(record, dict):
            record = TaskRecord.from_dict(record, f"{type(self).__name__}'s record")
        self.record = record
        draw_dropout_per_replica(self)
        if compile:
            self.compile()

    # --- the config -------------------------------------------------------------------------------

    @classmethod
    def for_config(cls, config: BertConfig, dtype=None, preprocessor=None, record: TaskRecord | None = None):
        """A freshly initialized model of this head for a Hugging Face config."""
        raise NotImplementedError

    @property
    def bert_config(self) -> BertConfig:
        """The Hugging Face config of this model (its backbone, head and labels)."""
        return BertConfig.from_backbone(self.backbone).for_head(self.HEAD, self.labels)

    def task_record(self) -> TaskRecord:
        """The task record of this model as it is now: its record (or the default one) with the
        preprocessor's length and cleaning and the model's labels."""
        base = self.record or TaskRecord.default(self.HEAD, self.backbone.max_sequence_length)
        changes = {"head": self.HEAD, "labels": None if self.labels is None else tuple(self.labels)}
        if self.preprocessor is not None:
            changes.update(max_seq_length=self.preprocessor.sequence_length, clean=self.preprocessor.clean)
        return dataclasses.replace(base, **changes)

    # --- training ---------------------------------------------------------------------------------

    def default_loss(self):
        """The loss ``compile()`` uses by default."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        """The metrics ``compile()`` uses by default."""
        return None

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Keras' ``compile``; ``"auto"``: AdamW (learning rate 5e-5, epsilon 1e-8, no weight
        decay, the summed gradients clipped at 1.0 after the all-reduce), the head's loss and
        metrics."""
        if optimizer == "auto":
            optimizer = AdamWClippedAfterAllReduce(learning_rate=DEFAULT_LEARNING_RATE, weight_decay=0.0, epsilon=1e-8,
                                                   clip_norm=1.0)
        loss = self.default_loss() if loss == "auto" else loss
        metrics = self.default_metrics() if metrics == "auto" else metrics
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    # --- saving -----------------------------------------------------------------------------------

    def save_to_preset(self, preset_dir, max_shard_size=None) -> None:
        """Write a model directory (``config.json``, ``vocab.txt``, ``model.weights.h5``,
        ``task.json``) that ``from_preset`` and every ``kcbert-tf`` command read."""
        if self.preprocessor is None:
            raise UserError("a model directory holds the vocab: give the model its preprocessor "
                            f"(model.preprocessor = {self.preprocessor_cls.__name__}(tokenizer, ...)) before saving")
        ModelDir.write(str(preset_dir), self.bert_config, self.preprocessor.tokenizer.get_vocabulary(), self,
                       task=self.task_record())

    def get_config(self) -> dict:
        return {**super().get_config(), "labels": self.labels,
                "record": None if self.record is None else self.record.to_dict()}
