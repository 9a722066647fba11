"""Build, save and load the KcBERT masked-LM model; the model directory.

A model directory holds everything needed to use a model, nothing else required:

- ``config.json``: the model config in Hugging Face form (:mod:`kcbert_tf.model_config`);
- ``vocab.txt``: the vocab it was trained with (its size must equal ``vocab_size``);
- ``model.weights.h5``: the Keras weights of :class:`~kcbert_tf.masked_lm.KcBertMaskedLM`.

``kcbert-tf pretrain`` writes one (the weights last, under a temporary name then renamed, so a
crash never leaves a half-written model); so will ``import-hf``.

Example:

>>> from kcbert_tf.model_config import BertConfig
>>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=32, max_position_embeddings=16)
>>> model = build_masked_lm(config)
>>> model.backbone.layer_norm_epsilon, model.masked_lm_head.layer_norm_epsilon
(1e-12, 1e-12)
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid

import numpy as np

from kcbert_tf.model_config import BertConfig, ConfigError, read_model_config

__all__ = [
    "CONFIG_FILE",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "build_masked_lm",
    "load_masked_lm",
    "write_model_dir",
    "check_vocab_matches",
]

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.weights.h5"


def build_masked_lm(config: BertConfig | dict | str | os.PathLike, dtype=None):
    """A freshly initialized :class:`KcBertMaskedLM` for a config (object, dict or file)."""
    from kcbert_tf.backbone import KcBertBackbone
    from kcbert_tf.masked_lm import KcBertMaskedLM

    if isinstance(config, dict):
        config = BertConfig.from_dict(config)
    elif not isinstance(config, BertConfig):
        config = read_model_config(config)
    backbone = KcBertBackbone(
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
    return KcBertMaskedLM(backbone)


def check_vocab_matches(config: BertConfig, vocab: list[str], vocab_source: str, config_source: str) -> None:
    """Fail when the vocab and the config disagree on the vocabulary size."""
    if len(vocab) != config.vocab_size:
        raise ConfigError(
            f"{vocab_source} has {len(vocab):,} tokens but {config_source} says vocab_size "
            f"{config.vocab_size:,}; use the vocab the data was made with and set vocab_size to "
            "its size"
        )


def write_model_dir(model, config: BertConfig, vocab: list[str], directory: str) -> None:
    """Write ``config.json``, ``vocab.txt`` and the weights into ``directory``, each atomically,
    the weights last (local paths and ``gs://``); with ``model`` None, only the first two."""
    import tensorflow as tf

    tf.io.gfile.makedirs(directory)
    _write_atomically(directory, CONFIG_FILE, json.dumps(config.to_hf_dict(), indent=2) + "\n")
    _write_atomically(directory, VOCAB_FILE, "".join(token + "\n" for token in vocab))
    if model is None:
        return
    # Save from a fresh float32 copy: the file then holds the weights alone (a compiled model's
    # save_weights adds its optimizer state), in float32 whatever the training precision.
    plain = build_masked_lm(config)
    for target, source in zip(plain.weights, model.weights):
        target.assign(np.asarray(source.numpy(), dtype=np.float32))
    with tempfile.TemporaryDirectory() as local:
        local_weights = os.path.join(local, WEIGHTS_FILE)
        plain.save_weights(local_weights)
        temporary = os.path.join(directory, f"tmp-{uuid.uuid4().hex}.weights.h5")
        tf.io.gfile.copy(local_weights, temporary, overwrite=True)
        tf.io.gfile.rename(temporary, os.path.join(directory, WEIGHTS_FILE), overwrite=True)


def _write_atomically(directory: str, name: str, text: str) -> None:
    import tensorflow as tf

    temporary = os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(text)
    tf.io.gfile.rename(temporary, os.path.join(directory, name), overwrite=True)


def load_masked_lm(model_dir: str | os.PathLike, dtype=None):
    """The :class:`KcBertMaskedLM` of a model directory, with its weights."""
    import tensorflow as tf

    from kcbert_tf.tokenization import read_vocab

    model_dir = os.fspath(model_dir)
    config = read_model_config(os.path.join(model_dir, CONFIG_FILE))
    vocab_path = os.path.join(model_dir, VOCAB_FILE)
    check_vocab_matches(config, read_vocab(vocab_path), vocab_path, os.path.join(model_dir, CONFIG_FILE))
    weights = os.path.join(model_dir, WEIGHTS_FILE)
    if not tf.io.gfile.exists(weights):
        raise FileNotFoundError(
            f"{weights}: no final weights in this model directory (a `pretrain` run that has not "
            "finished has only checkpoints under checkpoints/; run it again to resume)"
        )
    model = build_masked_lm(config, dtype=dtype)
    with tempfile.TemporaryDirectory() as local:
        if "://" in weights:  # h5py reads local files only.
            tf.io.gfile.copy(weights, os.path.join(local, WEIGHTS_FILE))
            weights = os.path.join(local, WEIGHTS_FILE)
        stored = _count_arrays(weights)
        if stored != len(model.weights):  # Keras would skip extra layers without a word.
            raise ConfigError(
                f"{weights} holds {stored} arrays but the model of {os.path.join(model_dir, CONFIG_FILE)} "
                f"has {len(model.weights)}: the weights and the config are from different models"
            )
        model.load_weights(weights)
    return model


def _count_arrays(path: str) -> int:
    """How many layer weight arrays a Keras ``.weights.h5`` file holds (optimizer state aside)."""
    import h5py

    count = 0

    def visit(name, item):
        nonlocal count
        count += isinstance(item, h5py.Dataset) and name.startswith("layers/")

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return count
