"""The KcBERT text classifier: KerasHub's ``BertTextClassifier`` on a :class:`KcBertBackbone`, with
its preprocessor.

The head is BERT's: the pooled ``[CLS]`` output, dropout (the config's ``hidden_dropout_prob``,
as transformers' ``classifier_dropout`` defaults to it), one dense layer to the logits (or to one
score for a regressor, KorSTS).  Its weights map one to one onto transformers'
``BertForSequenceClassification``: the backbone's pooler is ``bert.pooler``, the dense layer is
``classifier.weight`` / ``classifier.bias``.  With its
:class:`~kcbert_tf.model.text_classifier_preprocessor.KcBertTextClassifierPreprocessor` it takes
raw strings: ``predict(["댓글"])`` gives the logits, ``fit(x=texts, y=label_ids)`` trains; the
labels' names are :attr:`~KcBertTextClassifier.labels`.

Example:

>>> import numpy as np
>>> from kcbert_tf.model.backbone import KcBertBackbone
>>> from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor
>>> from kcbert_tf.model.tokenizer import KcBertTokenizer
>>> tokenizer = KcBertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아", "싫", "##어"])
>>> backbone = KcBertBackbone(vocabulary_size=9, num_layers=1, num_heads=2, hidden_dim=8,
...     intermediate_dim=16, max_sequence_length=12)
>>> classifier = KcBertTextClassifier(backbone, num_classes=2, labels=["neg", "pos"],
...     preprocessor=KcBertTextClassifierPreprocessor(tokenizer, sequence_length=12))
>>> classifier.predict(["좋아 ㅋㅋ", "싫어"], verbose=0).shape
(2, 2)
>>> history = classifier.fit(x=["좋아", "싫어"], y=[1, 0], batch_size=2, verbose=0)
"""

from __future__ import annotations

import keras
from keras_hub.models import BertTextClassifier

from kcbert_tf.model.backbone import KcBertBackbone, build_backbone
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.kcbert_task import KcBertTask
from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor

__all__ = ["KcBertTextClassifier"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertTextClassifier(KcBertTask, BertTextClassifier):
    """``BertTextClassifier`` on a :class:`KcBertBackbone`, raw strings in.

    Args:
        backbone: a :class:`~kcbert_tf.model.backbone.KcBertBackbone`.
        num_classes: the number of labels (1 for a regressor).
        preprocessor: a :class:`KcBertTextClassifierPreprocessor`, or None for inputs already
            packed.
        dropout: the dropout before the dense layer.
        labels: the label names in id order (default ``"0"``, ``"1"``, ...); None with
            ``regression=True``.
        regression: one score, trained with the mean squared error (KorSTS).
        record: the task record the model was loaded with (its task and options), kept when it
            is saved again.
    """

    backbone_cls = KcBertBackbone
    preprocessor_cls = KcBertTextClassifierPreprocessor
    HEAD = "sequence_classification"

    def __init__(self, backbone, num_classes: int, preprocessor=None, activation=None, dropout: float = 0.1,
                 labels=None, regression: bool = False, record=None, compile: bool = True, **kwargs):
        if regression and num_classes != 1:
            raise ValueError(f"a regressor has one output, got num_classes={num_classes}")
        if labels is not None and len(labels) != num_classes:
            raise ValueError(f"{len(labels)} labels for num_classes={num_classes}")
        super().__init__(backbone, num_classes, preprocessor=preprocessor, activation=activation, dropout=dropout,
                         compile=False, **kwargs)
        self.regression = regression
        if not regression and labels is None:
            labels = [str(index) for index in range(num_classes)]
        self._finish_kcbert_task(None if regression else labels, record, compile)

    @classmethod
    def for_config(cls, config: BertConfig, dtype=None, preprocessor=None, record=None) -> "KcBertTextClassifier":
        """A freshly initialized classifier for a config with labels (``config.with_labels``)."""
        if config.head != cls.HEAD:
            raise ValueError("the config has no labels: give it some with config.with_labels(...)")
        regression = config.labels is None
        return cls(build_backbone(config, dtype), num_classes=len(config.id2label), preprocessor=preprocessor,
                   dropout=config.hidden_dropout_prob, labels=config.labels, regression=regression, record=record)

    def default_loss(self):
        if self.regression:
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def default_metrics(self):
        return None if self.regression else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def get_config(self) -> dict:
        return {**super().get_config(), "regression": self.regression}
