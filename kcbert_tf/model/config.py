"""Model configs in Hugging Face ``config.json`` form, read, checked and mapped to Keras.

A KcBERT model is described by the ``config.json`` transformers uses (``configs/kcbert-base.json``,
``configs/kcbert-large.json``).  :class:`BertConfig` holds the fields the model uses, checks them
with errors that name the file, maps ``hidden_act`` to the Keras activation that computes the same
function (``gelu`` is the exact erf GELU, ``gelu_new`` the tanh approximation), and writes the
config back for an exported model.

Example:

>>> config = BertConfig.from_dict({"vocab_size": 30000, "hidden_size": 768,
...     "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072})
>>> config.max_position_embeddings, config.hidden_act, config.keras_activation
(512, 'gelu', 'gelu')
"""

from __future__ import annotations

import dataclasses
import json
import os

from kcbert_tf import file_reading
from kcbert_tf.errors import ConfigError
from kcbert_tf.model.heads import MASKED_LM, head, head_of_architectures

__all__ = ["BertConfig", "read_model_config"]


#: Hugging Face ``hidden_act`` → the Keras activation computing the same function.
HF_TO_KERAS_ACTIVATION = {
    "gelu": "gelu",  # exact: 0.5 x (1 + erf(x / sqrt 2)); keras' default approximate=False
    "gelu_new": "keras_hub>gelu_approximate",  # tanh approximation
    "gelu_pytorch_tanh": "keras_hub>gelu_approximate",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` that the model uses (HF defaults)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    #: A fine-tuned classifier's labels (HF ``id2label``, ids from 0): of the sequence for a
    #: sequence classifier, of each token for a token classifier; None otherwise.
    id2label: dict | None = None
    #: A sequence classifier's ``problem_type`` ("single_label_classification" or "regression").
    problem_type: str | None = None
    #: The head on the encoder (:data:`kcbert_tf.model.heads.HEADS`).  Not a transformers field:
    #: it is read from and written as ``architectures``.
    head: str = MASKED_LM

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "BertConfig":
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ConfigError(
                f"{source}: model_type is {model_type!r}; only BERT configs (model_type 'bert') "
                "are supported"
            )
        names = {field.name for field in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise ConfigError(f"{source}: missing {', '.join(missing)} (see configs/kcbert-base.json)")
        chosen = {key: values[key] for key in names if key in values}
        if chosen.get("id2label") is not None:
            try:
                chosen["id2label"] = {int(key): str(value) for key, value in chosen["id2label"].items()}
            except (AttributeError, ValueError):
                raise ConfigError(f"{source}: id2label must map label ids to names") from None
        chosen.pop("head", None)
        found = head_of_architectures(values.get("architectures") or [])
        head_name = found.name if found else MASKED_LM
        labelled = found is not None and found.labelled
        if labelled and chosen.get("id2label") is None:
            # transformers' default: num_labels 2
            chosen["id2label"] = {i: f"LABEL_{i}" for i in range(int(values.get("num_labels", 2)))}
        if head_name == "sequence_classification" and chosen.get("problem_type") is None:
            labels = chosen["id2label"]
            chosen["problem_type"] = "regression" if len(labels) == 1 else "single_label_classification"
        if head_name != "sequence_classification":
            chosen["problem_type"] = None
        if not labelled:
            chosen["id2label"] = None  # transformers writes LABEL_0/LABEL_1 into many configs
        chosen["head"] = head_name
        try:
            config = cls(**chosen)
        except TypeError as error:
            raise ConfigError(f"{source}: {error}") from None
        config.check(source)
        return config

    def check(self, source: str = "config") -> None:
        """Raise :class:`ConfigError` for values no model can be built from."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{source}: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"{source}: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in HF_TO_KERAS_ACTIVATION:
            raise ConfigError(
                f"{source}: hidden_act {self.hidden_act!r} is not supported; use one of "
                f"{sorted(HF_TO_KERAS_ACTIVATION)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{source}: {name} must be in [0, 1), got {getattr(self, name)}")
        if not self.layer_norm_eps > 0 or not self.initializer_range > 0:
            raise ConfigError(f"{source}: layer_norm_eps and initializer_range must be > 0")

    @property
    def keras_activation(self) -> str:
        return HF_TO_KERAS_ACTIVATION[self.hidden_act]

    @property
    def architecture(self) -> str:
        """The transformers class this config's model maps onto."""
        return head(self.head).architecture

    def with_labels(self, labels: list[str] | None) -> "BertConfig":
        """This config for a sequence classifier over ``labels`` (None: a one-value regressor)."""
        if labels is None:
            return dataclasses.replace(self, id2label={0: "score"}, problem_type="regression", head="sequence_classification")
        return dataclasses.replace(
            self, id2label=dict(enumerate(labels)), problem_type="single_label_classification",
            head="sequence_classification",
        )

    @property
    def labels(self) -> list[str] | None:
        """The label names in id order (a classifier's, a token classifier's), else None."""
        if self.id2label is None or self.problem_type == "regression":
            return None
        return [self.id2label[i] for i in range(len(self.id2label))]

    def with_token_labels(self, labels: list[str]) -> "BertConfig":
        """This config for a token classifier (NER) over ``labels`` (BIO tags)."""
        return dataclasses.replace(self, id2label=dict(enumerate(labels)), problem_type=None, head="token_classification")

    def for_question_answering(self) -> "BertConfig":
        """This config for an extractive question answerer (start and end logits)."""
        return dataclasses.replace(self, id2label=None, problem_type=None, head="question_answering")

    def for_head(self, head_name: str, labels: list[str] | None = None) -> "BertConfig":
        """This config for a model with ``head_name`` (:mod:`kcbert_tf.model.heads`): a sequence
        classifier over ``labels`` (None: a regressor), a token classifier over ``labels``, a
        question answerer or a masked LM."""
        if head_name == "sequence_classification":
            return self.with_labels(labels)
        if head_name == "token_classification":
            return self.with_token_labels(labels)
        if head_name == "question_answering":
            return self.for_question_answering()
        head(head_name)  # a known head
        return dataclasses.replace(self, id2label=None, problem_type=None, head=head_name)

    @classmethod
    def from_backbone(cls, backbone) -> "BertConfig":
        """The config of a :class:`~kcbert_tf.model.backbone.KcBertBackbone` (a masked LM's; give
        it a head with :meth:`for_head`)."""
        activation = {keras: hf for hf, keras in reversed(HF_TO_KERAS_ACTIVATION.items())}[backbone.activation]
        return cls(
            vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim, num_hidden_layers=backbone.num_layers,
            num_attention_heads=backbone.num_heads, intermediate_size=backbone.intermediate_dim, hidden_act=activation,
            hidden_dropout_prob=backbone.dropout, attention_probs_dropout_prob=backbone.attention_dropout,
            max_position_embeddings=backbone.max_sequence_length, type_vocab_size=backbone.num_segments,
            initializer_range=backbone.initializer_range, layer_norm_eps=backbone.layer_norm_epsilon,
        )

    def to_hf_dict(self, architecture: str | None = None) -> dict:
        """The config as transformers writes it for ``architecture`` (default: the class of its
        head, :attr:`architecture`; with ``id2label`` and ``label2id`` for a classifier)."""
        values = {key: value for key, value in dataclasses.asdict(self).items() if value is not None and key != "head"}
        if self.id2label is not None:
            values["id2label"] = {str(key): name for key, name in self.id2label.items()}
            values["label2id"] = {name: key for key, name in self.id2label.items()}
            values["num_labels"] = len(self.id2label)
        return {"architectures": [architecture or self.architecture], "model_type": "bert", **values}


def read_model_config(path: str | os.PathLike) -> BertConfig:
    """A :class:`BertConfig` from a ``config.json`` (or a directory holding one)."""
    path = os.fspath(path)
    if file_reading.is_dir(path):
        path = os.path.join(path, "config.json")
    if not file_reading.exists(path):
        raise ConfigError(f"{path}: no such config file (give a config.json such as configs/kcbert-base.json)")
    try:
        values = json.loads(file_reading.read_text(path))
    except ValueError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config is a JSON object")
    return BertConfig.from_dict(values, source=path)
