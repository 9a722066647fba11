"""The KcBERT extractive question answerer (KorQuAD): start and end logits at every token.

The head is transformers' ``BertForQuestionAnswering``'s: one dense layer from the encoder's
``sequence_output`` to two values per position, the start and the end logit of the answer span
(``qa_outputs.weight`` / ``qa_outputs.bias``; no dropout, no pooler).  The output is
``[batch, length, 2]``: ``[..., 0]`` the start logits, ``[..., 1]`` the end logits, as
transformers splits its ``qa_outputs``.  ``fit`` and ``evaluate`` take distributed datasets.

Example:

>>> import numpy as np
>>> from kcbert_tf.model.config import BertConfig
>>> config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=16, max_position_embeddings=12).for_question_answering()
>>> model = build_question_answerer(config)
>>> x = {"token_ids": np.ones((3, 12), "int32"), "segment_ids": np.zeros((3, 12), "int32"),
...      "padding_mask": np.ones((3, 12), "int32")}
>>> tuple(model.predict(x, verbose=0).shape)
(3, 12, 2)
"""

from __future__ import annotations

import keras
from keras_hub.models import Task

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.config import BertConfig, ConfigError
from kcbert_tf.model.keras_internals import DistributedDatasetFit
from kcbert_tf.model.masked_lm import build_backbone

__all__ = ["KcBertQuestionAnswerer", "build_question_answerer"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertQuestionAnswerer(DistributedDatasetFit, Task):
    """Start and end logits ``[batch, length, 2]`` from a :class:`KcBertBackbone`."""

    backbone_cls = KcBertBackbone
    #: Its name in :data:`kcbert_tf.model.heads.HEADS`.
    HEAD = "question_answering"

    def __init__(self, backbone: KcBertBackbone, preprocessor=None, **kwargs):
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
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)


def build_question_answerer(config: BertConfig, dtype=None) -> KcBertQuestionAnswerer:
    """A freshly initialized question answerer for a config (``config.for_question_answering()``)."""
    if config.head != KcBertQuestionAnswerer.HEAD:
        raise ConfigError("the config is not a question answerer's: use config.for_question_answering()")
    return KcBertQuestionAnswerer(build_backbone(config, dtype))
