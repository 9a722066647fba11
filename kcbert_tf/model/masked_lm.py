"""The KcBERT masked-LM task: a KerasHub ``BertMaskedLM`` whose head follows the config.

Stock ``keras_hub.models.BertMaskedLM`` builds its MLM head with layer-norm epsilon 1e-5 and an
initializer stddev of 0.02; Hugging Face's ``BertForMaskedLM`` head (``cls.predictions``) uses the
config's ``layer_norm_eps`` (1e-12 for KcBERT) and ``hidden_act``.  :class:`KcBertMaskedLM` is a
``BertMaskedLM`` on a :class:`~kcbert_tf.model.backbone.KcBertBackbone` with those taken from the
backbone.  The head's output projection is tied to the token embedding, as in BERT.

Inputs are KerasHub's: ``token_ids``, ``segment_ids``, ``padding_mask`` and ``mask_positions``;
the output is the logits at the masked positions, ``[batch, num_predictions, vocabulary_size]``.

Example:

>>> import numpy as np
>>> from kcbert_tf.model.backbone import KcBertBackbone, resolve_activation
>>> backbone = KcBertBackbone(vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
...     intermediate_dim=32, max_sequence_length=12)
>>> model = KcBertMaskedLM(backbone)
>>> x = {"token_ids": np.ones((2, 12), "int32"), "segment_ids": np.zeros((2, 12), "int32"),
...      "padding_mask": np.ones((2, 12), "int32"), "mask_positions": np.array([[1, 2], [3, 4]], "int32")}
>>> tuple(model.predict(x, verbose=0).shape)
(2, 2, 100)
"""

from __future__ import annotations

import keras
from keras_hub.layers import MaskedLMHead
from keras_hub.models import BertMaskedLM

from kcbert_tf.model.backbone import KcBertBackbone, resolve_activation
from kcbert_tf.model.config import BertConfig, read_model_config
from kcbert_tf.model.keras_internals import DistributedDatasetFit, init_functional_task

__all__ = ["KcBertMaskedLM", "build_backbone", "build_masked_lm"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertMaskedLM(DistributedDatasetFit, BertMaskedLM):
    """``BertMaskedLM`` with the MLM head's activation, layer-norm epsilon and initializer range
    taken from the :class:`KcBertBackbone` (so from the Hugging Face config); ``fit`` and
    ``evaluate`` also take distributed datasets (for TPUStrategy and MirroredStrategy)."""

    backbone_cls = KcBertBackbone
    #: Its name in :data:`kcbert_tf.model.heads.HEADS`.
    HEAD = "masked_lm"

    def __init__(self, backbone: KcBertBackbone, preprocessor=None, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation=resolve_activation(backbone.activation),
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=backbone.initializer_range
            ),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions"),
        }
        backbone_outputs = backbone(backbone.input)
        outputs = self.masked_lm_head(backbone_outputs["sequence_output"], inputs["mask_positions"])
        init_functional_task(self, inputs=inputs, outputs=outputs, **kwargs)


def build_backbone(config: BertConfig, dtype=None) -> KcBertBackbone:
    """A freshly initialized :class:`KcBertBackbone` for a config."""
    return KcBertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout_prob,
        attention_dropout=config.attention_probs_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size,
        activation=config.keras_activation,
        layer_norm_epsilon=config.layer_norm_eps,
        initializer_range=config.initializer_range,
        dtype=dtype,
    )


def build_masked_lm(config: BertConfig | dict | str, dtype=None) -> KcBertMaskedLM:
    """A freshly initialized :class:`KcBertMaskedLM` for a config (object, dict or file);
    ``dtype``: a Keras dtype policy name (``"mixed_bfloat16"``), float32 by default."""
    if isinstance(config, dict):
        config = BertConfig.from_dict(config)
    elif not isinstance(config, BertConfig):
        config = read_model_config(config)
    return KcBertMaskedLM(build_backbone(config, dtype))
