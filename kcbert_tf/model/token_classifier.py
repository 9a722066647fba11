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
>>> model = KcBertTokenClassifier.for_config(config)
>>> x = {"token_ids": np.ones((3, 12), "int32"), "segment_ids": np.zeros((3, 12), "int32"),
...      "padding_mask": np.ones((3, 12), "int32")}
>>> tuple(model.predict(x, verbose=0).shape)
(3, 12, 3)
"""

from __future__ import annotations

import keras
from keras_hub.models import Task

from kcbert_tf.model.backbone import KcBertBackbone, build_backbone
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.kcbert_task import KcBertTask
from kcbert_tf.model.token_classifier_preprocessor import KcBertTokenClassifierPreprocessor

__all__ = ["KcBertTokenClassifier"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertTokenClassifier(KcBertTask, Task):
    """Logits ``[batch, length, num_classes]`` from a :class:`KcBertBackbone`'s sequence output.

    Args:
        backbone: a :class:`~kcbert_tf.model.backbone.KcBertBackbone`.
        num_classes: the number of tags.
        dropout: the dropout before the dense layer.
        preprocessor: a :class:`KcBertTokenClassifierPreprocessor`, or None for packed inputs.
        labels: the tag names in id order (BIO); default ``"0"``, ``"1"``, ...
        record: the task record the model was loaded with, kept when it is saved again.
    """

    backbone_cls = KcBertBackbone
    preprocessor_cls = KcBertTokenClassifierPreprocessor
    HEAD = "token_classification"

    def __init__(self, backbone: KcBertBackbone, num_classes: int, dropout: float = 0.1, preprocessor=None,
                 labels=None, record=None, compile: bool = True, **kwargs):
        if labels is not None and len(labels) != num_classes:
            raise ValueError(f"{len(labels)} labels for num_classes={num_classes}")
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
        super().__init__(inputs=inputs, outputs=outputs, compile=False, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout
        self._finish_kcbert_task(labels or [str(index) for index in range(num_classes)], record, compile)

    @classmethod
    def for_config(cls, config: BertConfig, dtype=None, preprocessor=None, record=None) -> "KcBertTokenClassifier":
        """A freshly initialized token classifier for a config with token labels
        (``config.with_token_labels``)."""
        if config.head != cls.HEAD:
            raise ValueError("the config has no token labels: give it some with config.with_token_labels(...)")
        return cls(build_backbone(config, dtype), num_classes=len(config.id2label), dropout=config.hidden_dropout_prob,
                   preprocessor=preprocessor, labels=config.labels, record=record)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout}
