"""The KcBERT token classifier (NER): a label for every token, on a :class:`KcBertBackbone`.

The head is transformers' ``BertForTokenClassification``'s: the encoder's ``sequence_output``,
dropout (the config's ``hidden_dropout_prob``, transformers' default ``classifier_dropout``), one
dense layer to the logits of each label at every position.  Its weights map one to one onto
``BertForTokenClassification`` (``classifier.weight`` / ``classifier.bias``; that model has no
pooler, so the backbone's pooler is carried but unused).  ``fit`` and ``evaluate`` take
distributed datasets (TPUStrategy, MirroredStrategy).

Example:

>>> import numpy as np
>>> from kcbert_tf.model.config import BertConfig
>>> config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=16, max_position_embeddings=12).with_token_labels(["O", "B-PS", "I-PS"])
>>> model = build_token_classifier(config)
>>> x = {"token_ids": np.ones((3, 12), "int32"), "segment_ids": np.zeros((3, 12), "int32"),
...      "padding_mask": np.ones((3, 12), "int32")}
>>> tuple(model.predict(x, verbose=0).shape)
(3, 12, 3)
"""

from __future__ import annotations

import keras
from keras_hub.models import Task

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.config import BertConfig, ConfigError
from kcbert_tf.model.keras_internals import DistributedDatasetFit
from kcbert_tf.model.masked_lm import build_backbone

__all__ = ["KcBertTokenClassifier", "build_token_classifier"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertTokenClassifier(DistributedDatasetFit, Task):
    """Logits ``[batch, length, num_classes]`` from a :class:`KcBertBackbone`'s sequence output."""

    backbone_cls = KcBertBackbone
    #: Its name in :data:`kcbert_tf.model.heads.HEADS`.
    HEAD = "token_classification"

    def __init__(self, backbone: KcBertBackbone, num_classes: int, dropout: float = 0.1, preprocessor=None, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="classifier_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=backbone.initializer_range),
            dtype=backbone.dtype_policy,
            name="logits",
        )
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config


def build_token_classifier(config: BertConfig, dtype=None) -> KcBertTokenClassifier:
    """A freshly initialized token classifier for a config with token labels
    (``config.with_token_labels``)."""
    if config.head != KcBertTokenClassifier.HEAD:
        raise ConfigError("the config has no token labels: give it some with config.with_token_labels(...)")
    return KcBertTokenClassifier(build_backbone(config, dtype), num_classes=len(config.id2label),
                                 dropout=config.hidden_dropout_prob)
