"""The KcBERT sequence classifier: KerasHub's ``BertTextClassifier`` on a :class:`KcBertBackbone`.

The head is BERT's: the pooled ``[CLS]`` output, dropout (the config's ``hidden_dropout_prob``,
as transformers' ``classifier_dropout`` defaults to it), one dense layer to the logits (or to one
score for regression).  Its weights map one to one onto transformers'
``BertForSequenceClassification``: the backbone's pooler is ``bert.pooler``, the dense layer is
``classifier.weight`` / ``classifier.bias``.  ``fit`` and ``evaluate`` take distributed
datasets (TPUStrategy, MirroredStrategy).

Example:

>>> import numpy as np
>>> from kcbert_tf.model.config import BertConfig
>>> config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=16, max_position_embeddings=12).with_labels(["neg", "pos"])
>>> model = build_classifier(config)
>>> x = {"token_ids": np.ones((3, 12), "int32"), "segment_ids": np.zeros((3, 12), "int32"),
...      "padding_mask": np.ones((3, 12), "int32")}
>>> tuple(model.predict(x, verbose=0).shape)
(3, 2)
"""

from __future__ import annotations

import keras
from keras_hub.models import BertTextClassifier

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.config import BertConfig, ConfigError
from kcbert_tf.model.keras_internals import DistributedDatasetFit
from kcbert_tf.model.masked_lm import build_backbone

__all__ = ["KcBertClassifier", "build_classifier"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertClassifier(DistributedDatasetFit, BertTextClassifier):
    """``BertTextClassifier`` on a :class:`KcBertBackbone`."""

    backbone_cls = KcBertBackbone
    #: Its name in :data:`kcbert_tf.model.heads.HEADS`.
    HEAD = "sequence_classification"


def build_classifier(config: BertConfig, dtype=None) -> KcBertClassifier:
    """A freshly initialized classifier for a config with labels (``config.with_labels``)."""
    if config.head != KcBertClassifier.HEAD:
        raise ConfigError("the config has no labels: give it some with config.with_labels(...)")
    return KcBertClassifier(
        build_backbone(config, dtype),
        num_classes=len(config.id2label),
        dropout=config.hidden_dropout_prob,
    )
