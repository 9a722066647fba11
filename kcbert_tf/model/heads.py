"""The heads a KcBERT model can carry: one vocabulary from config to conversion, model directory,
SavedModel, fine-tuning and predict.

A head is named once here (``masked_lm``, ``sequence_classification``, ``token_classification``,
``question_answering``) with what the rest of the library needs to know about it: the
transformers class it maps onto (``config.json``'s ``architectures``), whether its config carries
labels, whether it reads the pooled ``[CLS]`` output, the name of its output layer in
transformers' checkpoints and which transformers outputs its Keras outputs equal.  Its Keras task
model is the class whose ``HEAD`` is its name (:data:`kcbert_tf.model.presets.TASK_MODELS`).

A new head: a task model module in ``kcbert_tf/model/`` (a KerasHub ``Task`` on
:class:`~kcbert_tf.model.backbone.KcBertBackbone` with its preprocessor, ``HEAD`` its name), one
:class:`Head` entry below and one entry in :data:`~kcbert_tf.model.presets.TASK_MODELS`;
``export-hf``/``import-hf`` then map it, and the tasks (``kcbert_tf/tasks/``) can train it.

Example:

>>> head("sequence_classification").architecture
'BertForSequenceClassification'
>>> head_of_architectures(["BertForTokenClassification"]).name
'token_classification'
>>> head("ranking")
Traceback (most recent call last):
...
kcbert_tf.errors.ConfigError: unknown head 'ranking'; the heads are masked_lm, question_answering, sequence_classification, token_classification
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from kcbert_tf.errors import ConfigError

__all__ = ["Head", "HEADS", "MASKED_LM", "head", "head_of_architectures"]

#: The masked LM (pretraining): the head of a model directory with no task head.
MASKED_LM = "masked_lm"


@dataclasses.dataclass(frozen=True)
class Head:
    """A head on the KcBERT encoder and what every stage needs to know of it."""

    name: str
    #: The transformers class with this head (``config.json``'s ``architectures``).
    architecture: str
    #: Whether the config carries labels (``id2label``): of the sequence, or of each token.
    labelled: bool
    #: Whether the head reads the pooled ``[CLS]`` output (else the pooler gets no gradient).
    uses_pooler: bool
    #: The transformers ``Auto`` class that loads it.
    auto_class: str
    #: The transformers outputs the Keras model's outputs equal (stacked on a last axis when two).
    hf_outputs: tuple[str, ...]
    #: What is compared when a conversion is verified, in words.
    compared: str
    #: The checkpoint name of the output layer (``classifier``, ``qa_outputs``); None: the MLM head.
    hf_output_layer: str | None = None


HEADS = {
    entry.name: entry
    for entry in (
        Head(MASKED_LM, "BertForMaskedLM", False, True, "AutoModelForMaskedLM", ("logits",), "MLM logits"),
        Head("sequence_classification", "BertForSequenceClassification", True, True,
             "AutoModelForSequenceClassification", ("logits",), "classifier logits", "classifier"),
        Head("token_classification", "BertForTokenClassification", True, False,
             "AutoModelForTokenClassification", ("logits",), "token classifier logits", "classifier"),
        Head("question_answering", "BertForQuestionAnswering", False, False,
             "AutoModelForQuestionAnswering", ("start_logits", "end_logits"), "start and end logits", "qa_outputs"),
    )
}


def head(name: str) -> Head:
    """The head called ``name``; a :class:`~kcbert_tf.errors.ConfigError` listing the heads
    for another name."""
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; the heads are {', '.join(sorted(HEADS))}")
    return HEADS[name]


def head_of_architectures(architectures: Sequence[str]) -> Head | None:
    """The head of a transformers config's ``architectures`` (None: a bare encoder such as
    ``BertModel`` or ``BertForPreTraining``, whose MLM head, if any, is the masked LM's)."""
    for entry in HEADS.values():
        if entry.architecture in architectures:
            return entry
    return None
