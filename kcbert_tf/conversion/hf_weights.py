"""The weight mapping between the Keras model and Hugging Face BERT checkpoints, both ways.

Every tensor of a :class:`~kcbert_tf.model.masked_lm.KcBertMaskedLM` has one Hugging Face name
(``BertForMaskedLM``'s, plus ``bert.pooler.*``, which ``BertForMaskedLM`` ignores on load and
``BertModel`` / ``BertForPreTraining`` use) and a layout change: Keras keeps dense kernels as
``[in, out]`` and splits attention kernels by head, PyTorch keeps ``[out, in]``.  :func:`weight_pairs`
lists them once; :func:`keras_to_hf` and :func:`assign_hf_tensors` use the same list, so the two
directions cannot drift apart, and a round trip returns every tensor bit for bit.

The decoder of the MLM head is tied to the word embeddings and its bias is ``cls.predictions.bias``,
as transformers saves them (``cls.predictions.decoder.*`` are not stored).

Example:

>>> from kcbert_tf.model.config import BertConfig
>>> from kcbert_tf.model.presets import build_model
>>> model = build_model(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
...     num_attention_heads=2, intermediate_size=16, max_position_embeddings=10))
>>> tensors = keras_to_hf(model)
>>> tensors["bert.encoder.layer.0.attention.self.query.weight"].shape
(8, 8)
>>> len(tensors) == len(model.trainable_weights)  # every trained tensor has a name
True
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import numpy as np

from kcbert_tf.errors import UserError
from kcbert_tf.model.heads import head
from kcbert_tf.model.keras_internals import encoder_layer_parts, masked_lm_head_parts

__all__ = [
    "WeightPair",
    "weight_pairs",
    "keras_to_hf",
    "assign_hf_tensors",
    "ConversionError",
    "read_hf_tensors",
    "SUPPORTED_ARCHITECTURES",
]

#: Checkpoints ``import-hf`` reads.
SUPPORTED_ARCHITECTURES = (
    "BertForMaskedLM", "BertForPreTraining", "BertModel", "BertForSequenceClassification",
    "BertForTokenClassification", "BertForQuestionAnswering",
)


class ConversionError(UserError):
    """A checkpoint that does not fit the model; the message names the tensor or file and the fix."""


@dataclasses.dataclass(frozen=True)
class WeightPair:
    """One Keras variable and its Hugging Face tensor name, with the layout change each way."""

    hf_name: str
    variable: object
    to_keras: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]
    head: bool = False  # part of the MLM head (absent from a bare BertModel checkpoint)


def _same(array: np.ndarray) -> np.ndarray:
    return array


def _transpose(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T)


def weight_pairs(model) -> list[WeightPair]:
    """Every trainable tensor of ``model`` with its Hugging Face name and layout changes."""
    backbone = model.backbone
    hidden, heads = backbone.hidden_dim, backbone.num_heads
    head_dim = hidden // heads

    def dense(prefix: str, layer, head: bool = False) -> list[WeightPair]:
        return [
            WeightPair(f"{prefix}.weight", layer.kernel, _transpose, _transpose, head),
            WeightPair(f"{prefix}.bias", layer.bias, _same, _same, head),
        ]

    def norm(prefix: str, layer, head: bool = False) -> list[WeightPair]:
        return [
            WeightPair(f"{prefix}.weight", layer.gamma, _same, _same, head),
            WeightPair(f"{prefix}.bias", layer.beta, _same, _same, head),
        ]

    def split_heads(array):  # HF [out, in] → Keras [in, heads, head_dim]
        return np.ascontiguousarray(array.T.reshape(hidden, heads, head_dim))

    def join_heads(array):
        return np.ascontiguousarray(array.reshape(hidden, hidden).T)

    def split_output(array):  # HF [out=hidden, in=hidden] → Keras [heads, head_dim, hidden]
        return np.ascontiguousarray(array.T.reshape(heads, head_dim, hidden))

    pairs = [
        WeightPair("bert.embeddings.word_embeddings.weight", backbone.token_embedding.embeddings, _same, _same),
        WeightPair(
            "bert.embeddings.position_embeddings.weight",
            backbone.position_embedding.position_embeddings,
            _same,
            _same,
        ),
        WeightPair(
            "bert.embeddings.token_type_embeddings.weight", backbone.segment_embedding.embeddings, _same, _same
        ),
        *norm("bert.embeddings.LayerNorm", backbone.embeddings_layer_norm),
    ]
    for index, layer in enumerate(backbone.transformer_layers):
        prefix = f"bert.encoder.layer.{index}"
        parts = encoder_layer_parts(layer)
        for name in ("query", "key", "value"):
            projection = parts[name]
            pairs += [
                WeightPair(f"{prefix}.attention.self.{name}.weight", projection.kernel, split_heads, join_heads),
                WeightPair(
                    f"{prefix}.attention.self.{name}.bias",
                    projection.bias,
                    lambda array: array.reshape(heads, head_dim),
                    lambda array: array.reshape(hidden),
                ),
            ]
        pairs += [
            WeightPair(
                f"{prefix}.attention.output.dense.weight", parts["attention_output"].kernel, split_output, join_heads
            ),
            WeightPair(f"{prefix}.attention.output.dense.bias", parts["attention_output"].bias, _same, _same),
            *norm(f"{prefix}.attention.output.LayerNorm", parts["attention_layer_norm"]),
            *dense(f"{prefix}.intermediate.dense", parts["intermediate"]),
            *dense(f"{prefix}.output.dense", parts["output"]),
            *norm(f"{prefix}.output.LayerNorm", parts["output_layer_norm"]),
        ]
    entry = head(model.HEAD)
    if entry.uses_pooler:  # transformers' token and span heads have no pooler
        pairs += dense("bert.pooler.dense", backbone.pooled_dense)
    if entry.hf_output_layer:
        return pairs + dense(entry.hf_output_layer, model.output_dense)
    parts = masked_lm_head_parts(model.masked_lm_head)
    pairs += [
        *dense("cls.predictions.transform.dense", parts["transform"], head=True),
        *norm("cls.predictions.transform.LayerNorm", parts["transform_layer_norm"], head=True),
        WeightPair("cls.predictions.bias", parts["bias"], _same, _same, head=True),
    ]
    return pairs


def keras_to_hf(model) -> dict[str, np.ndarray]:
    """The model's weights under Hugging Face ``BertForMaskedLM`` names, float32."""
    return {
        pair.hf_name: pair.to_hf(np.asarray(pair.variable.numpy(), dtype=np.float32))
        for pair in weight_pairs(model)
    }


def _canonical_name(name: str) -> str:
    """A checkpoint tensor name in ``BertForMaskedLM`` form: ``bert.`` prefix (a bare
    ``BertModel`` has none), ``weight``/``bias`` for the old ``gamma``/``beta`` LayerNorm names."""
    if not name.startswith(("bert.", "cls.", "classifier.", "qa_outputs.")):
        name = f"bert.{name}"
    if name.endswith(".gamma"):
        name = name[: -len(".gamma")] + ".weight"
    elif name.endswith(".beta"):
        name = name[: -len(".beta")] + ".bias"
    return name


def assign_hf_tensors(model, tensors: dict[str, np.ndarray], source: str) -> dict[str, list[str]]:
    """Set ``model``'s weights from Hugging Face tensors (any of :data:`SUPPORTED_ARCHITECTURES`).

    Raises :class:`ConversionError` naming the tensor for a missing encoder tensor or a shape
    mismatch.  Returns ``{"fresh": [...], "unused": [...]}``: head tensors that were absent (the
    MLM head of a bare ``BertModel``: the decoder is the tied embeddings, the transform keeps its
    fresh initialization) and checkpoint tensors the model has no place for (e.g. the NSP head).
    """
    canonical = {_canonical_name(name): name for name in tensors}
    fresh, used = [], set()
    for pair in weight_pairs(model):
        original = canonical.get(pair.hf_name)
        if original is None:
            if pair.head or pair.hf_name.startswith("bert.pooler."):
                fresh.append(pair.hf_name)
                continue
            raise ConversionError(
                f"{source}: no tensor {pair.hf_name} (nor its BertModel form without 'bert.'); "
                "is this a BERT checkpoint of the config beside it?"
            )
        array = np.asarray(tensors[original], dtype=np.float32)
        expected = tuple(pair.to_hf(np.zeros(pair.variable.shape, np.float32)).shape)
        if array.shape != expected:
            raise ConversionError(
                f"{source}: tensor {original} has shape {array.shape}, the config needs {expected}; "
                "the checkpoint and its config.json disagree"
            )
        pair.variable.assign(pair.to_keras(array))
        used.add(original)
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    unused = sorted(name for name in tensors if name not in used and _canonical_name(name) not in tied)
    return {"fresh": fresh, "unused": unused}


def read_hf_tensors(directory: str, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """The tensors of a Hugging Face checkpoint directory: ``model.safetensors`` (or its sharded
    form), or ``pytorch_model.bin`` when ``allow_pickle`` (loading a pickle runs code)."""
    from safetensors.numpy import load_file

    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(single):
        return load_file(single)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        tensors: dict[str, np.ndarray] = {}
        for shard in shards:
            tensors.update(load_file(os.path.join(directory, shard)))
        return tensors
    pickle = os.path.join(directory, "pytorch_model.bin")
    if os.path.exists(pickle):
        if not allow_pickle:
            raise ConversionError(
                f"{pickle}: a pickle checkpoint (loading it runs code); pass --allow-pickle if you "
                "trust its source, or convert it to safetensors first"
            )
        import torch

        state = torch.load(pickle, map_location="cpu", weights_only=True)
        return {name: tensor.float().numpy() for name, tensor in state.items()}
    raise ConversionError(
        f"{directory}: no model.safetensors (or pytorch_model.bin); give a Hugging Face model "
        "directory such as a local copy of beomi/kcbert-base"
    )
