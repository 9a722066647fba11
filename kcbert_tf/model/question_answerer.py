"""The KcBERT extractive question answerer (KorQuAD): start and end logits at every token.

The head is transformers' ``BertForQuestionAnswering``'s: one dense layer from the encoder's
``sequence_output`` to two values per position, the start and the end logit of the answer span
(``qa_outputs.weight`` / ``qa_outputs.bias``; no dropout, no pooler).  The output is
``[batch, length, 2]``: ``[..., 0]`` the start logits, ``[..., 1]`` the end logits, as
transformers splits its ``qa_outputs``; :class:`SpanLoss` is transformers' loss for it.  ``fit``
and ``evaluate`` take distributed datasets.  With its
:class:`~kcbert_tf.model.question_answerer_preprocessor.KcBertQuestionAnswererPreprocessor`,
``predict((questions, contexts))`` gives the logits of each context's first window; the QA task
(:mod:`kcbert_tf.tasks.qa`) answers over every window.

Example:

>>> import numpy as np
>>> from kcbert_tf.model.config import BertConfig
>>> config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=16, max_position_embeddings=12).for_question_answering()
>>> model = KcBertQuestionAnswerer.for_config(config)
>>> x = {"token_ids": np.ones((3, 12), "int32"), "segment_ids": np.zeros((3, 12), "int32"),
...      "padding_mask": np.ones((3, 12), "int32")}
>>> tuple(model.predict(x, verbose=0).shape)
(3, 12, 2)
"""

from __future__ import annotations

import keras
from keras_hub.models import Task

from kcbert_tf.model.backbone import KcBertBackbone, build_backbone
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.kcbert_task import KcBertTask
from kcbert_tf.model.question_answerer_preprocessor import KcBertQuestionAnswererPreprocessor

__all__ = ["KcBertQuestionAnswerer", "SpanLoss"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class SpanLoss(keras.losses.Loss):
    """Cross-entropy of the start and of the end position, averaged (transformers'
    ``(start_loss + end_loss) / 2``): ``y_true`` int ``[B, 2]``, ``y_pred`` logits ``[B, L, 2]``;
    one loss per example (``[B]``), so a sample weight per example applies."""

    def __init__(self, name: str = "span_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        logits = keras.ops.transpose(y_pred, (0, 2, 1))  # [B, 2, L]
        both = keras.losses.sparse_categorical_crossentropy(keras.ops.cast(y_true, "int32"), logits, from_logits=True)
        return keras.ops.mean(both, axis=-1)


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertQuestionAnswerer(KcBertTask, Task):
    """Start and end logits ``[batch, length, 2]`` from a :class:`KcBertBackbone`.

    Args:
        backbone: a :class:`~kcbert_tf.model.backbone.KcBertBackbone`.
        preprocessor: a :class:`KcBertQuestionAnswererPreprocessor` (it holds the windows), or
            None for packed inputs.
        record: the task record the model was loaded with, kept when it is saved again.
    """

    backbone_cls = KcBertBackbone
    preprocessor_cls = KcBertQuestionAnswererPreprocessor
    HEAD = "question_answering"

    def __init__(self, backbone: KcBertBackbone, preprocessor=None, record=None, labels=None, compile: bool = True,
                 **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dense = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=backbone.initializer_range),
            dtype=backbone.dtype_policy,
            name="span_logits",
        )
        inputs = backbone.input
        outputs = self.output_dense(backbone(inputs)["sequence_output"])
        super().__init__(inputs=inputs, outputs=outputs, compile=False, **kwargs)
        self._finish_kcbert_task(None, record, compile)

    @classmethod
    def for_config(cls, config: BertConfig, dtype=None, preprocessor=None, record=None) -> "KcBertQuestionAnswerer":
        """A freshly initialized question answerer for a config (``config.for_question_answering()``)."""
        if config.head != cls.HEAD:
            raise ValueError("the config is not a question answerer's: use config.for_question_answering()")
        return cls(build_backbone(config, dtype), preprocessor=preprocessor, record=record)

    def default_loss(self):
        return SpanLoss()

    def task_record(self):
        record = super().task_record()
        if self.preprocessor is None:
            return record
        return record.with_overrides(options=self.preprocessor.windows._asdict())
