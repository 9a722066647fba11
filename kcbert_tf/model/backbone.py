"""The KcBERT encoder: a KerasHub ``BertBackbone`` that follows the Hugging Face config exactly.

Stock ``keras_hub.models.BertBackbone`` fixes three things that a Hugging Face BERT config sets:
it uses the tanh-approximated GELU in the encoder (HF ``gelu`` is the exact erf GELU), one dropout
rate for hidden states and attention probabilities, and an initializer stddev of 0.02.
:class:`KcBertBackbone` is a ``BertBackbone`` (so ``BertMaskedLM`` and the KerasHub tooling accept
it) built from the same layers, with the activation, both dropout rates, the layer-norm epsilon
and the initializer range as arguments; :class:`BertEncoderLayer` is KerasHub's
``TransformerEncoder`` with a separate attention-probability dropout.  Written with Keras layers
and ``keras.ops`` only: it runs under the TensorFlow, JAX and PyTorch backends.

Example:

>>> import numpy as np
>>> backbone = KcBertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
...     intermediate_dim=32, max_sequence_length=12)
>>> out = backbone({"token_ids": np.ones((1, 12), "int32"), "segment_ids": np.zeros((1, 12), "int32"),
...     "padding_mask": np.ones((1, 12), "int32")})
>>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
((1, 12, 16), (1, 16))
"""

from __future__ import annotations

import keras
from keras.layers import ReversibleEmbedding
from keras_hub.layers import PositionEmbedding, TransformerEncoder
from keras_hub.models import BertBackbone

from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.keras_internals import init_functional_backbone, set_attention_probability_dropout

__all__ = ["BertEncoderLayer", "KcBertBackbone", "build_backbone", "resolve_activation"]


def resolve_activation(name: str):
    """A Keras activation by name, registered ones (``"keras_hub>gelu_approximate"``) included."""
    return keras.saving.get_registered_object(name) or keras.activations.get(name)


@keras.saving.register_keras_serializable(package="kcbert_tf")
class BertEncoderLayer(TransformerEncoder):
    """A post-norm BERT layer: ``TransformerEncoder`` with its own attention-probability dropout.

    ``dropout`` applies to the attention output and the feed-forward output (HF
    ``hidden_dropout_prob``), ``attention_dropout`` to the attention probabilities (HF
    ``attention_probs_dropout_prob``).
    """

    def __init__(self, *args, attention_dropout: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.attention_dropout = attention_dropout

    def build(self, inputs_shape):
        super().build(inputs_shape)
        set_attention_probability_dropout(self, self.attention_dropout)

    def get_config(self):
        return {**super().get_config(), "attention_dropout": self.attention_dropout}


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertBackbone(BertBackbone):
    """BERT encoder with every Hugging Face config field honoured.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        max_sequence_length, num_segments: as ``BertBackbone``.
        dropout: hidden-state dropout (HF ``hidden_dropout_prob``).
        attention_dropout: attention-probability dropout (HF ``attention_probs_dropout_prob``).
        activation: the feed-forward activation (a Keras activation name; ``"gelu"`` is exact).
        layer_norm_epsilon: every layer norm's epsilon (HF ``layer_norm_eps``).
        initializer_range: stddev of the truncated-normal kernel initializer.
        dtype: a dtype or ``keras.DTypePolicy`` such as ``"mixed_bfloat16"``.
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        attention_dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        def initializer():
            return keras.initializers.TruncatedNormal(stddev=initializer_range)

        # === Layers ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            initializer=initializer(),
            sequence_length=max_sequence_length,
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=hidden_dim,
            embeddings_initializer=initializer(),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            BertEncoderLayer(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=resolve_activation(activation),
                dropout=dropout,
                attention_dropout=attention_dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=initializer(),
                dtype=dtype,
                name=f"transformer_layer_{index}",
            )
            for index in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=initializer(),
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_id_input = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_id_input)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_id_input)
        x = self.embeddings_add((tokens, positions, segments))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        for transformer_layer in self.transformer_layers:
            x = transformer_layer(x, padding_mask=padding_mask_input)
        pooled_output = self.pooled_dense(x[:, 0, :])
        init_functional_backbone(
            self,
            inputs={
                "token_ids": token_id_input,
                "segment_ids": segment_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs={"sequence_output": x, "pooled_output": pooled_output},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.cls_token_index = 0

    def get_config(self):
        return {
            **super().get_config(),
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
        }


def build_backbone(config: BertConfig, dtype=None) -> KcBertBackbone:
    """A freshly initialized :class:`KcBertBackbone` for a config (``dtype``: a Keras dtype policy
    name such as ``"mixed_bfloat16"``; float32 by default)."""
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
