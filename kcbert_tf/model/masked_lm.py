"""The KcBERT masked LM: a KerasHub ``BertMaskedLM`` whose head follows the config, with its
preprocessor.

Stock ``keras_hub.models.BertMaskedLM`` builds its MLM head with layer-norm epsilon 1e-5 and an
initializer stddev of 0.02; Hugging Face's ``BertForMaskedLM`` head (``cls.predictions``) uses the
config's ``layer_norm_eps`` (1e-12 for KcBERT) and ``hidden_act``.  :class:`KcBertMaskedLM` is a
``BertMaskedLM`` on a :class:`~kcbert_tf.model.backbone.KcBertBackbone` with those taken from the
backbone.  The head's output projection is tied to the token embedding, as in BERT.

Inputs are KerasHub's: ``token_ids``, ``segment_ids``, ``padding_mask`` and ``mask_positions``;
the output is the logits at the masked positions, ``[batch, num_predictions, vocabulary_size]``.
With its :class:`~kcbert_tf.model.masked_lm_preprocessor.KcBertMaskedLMPreprocessor` it takes raw
strings: ``fit(x=texts)`` masks them BERT's way; ``predict`` on texts holding ``[MASK]`` gives
the logits at those masks, and :meth:`KcBertMaskedLM.fill_mask` the top tokens.

Example:

>>> import numpy as np
>>> from kcbert_tf.model.backbone import KcBertBackbone
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
import numpy as np
from keras_hub.layers import MaskedLMHead
from keras_hub.models import BertMaskedLM

from kcbert_tf.model.backbone import KcBertBackbone, build_backbone, resolve_activation
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.kcbert_task import KcBertTask
from kcbert_tf.model.keras_internals import init_functional_task
from kcbert_tf.model.masked_lm_preprocessor import KcBertMaskedLMPreprocessor

__all__ = ["KcBertMaskedLM"]

#: One text's answers: for each [MASK] in order, the top (token, probability) pairs.
Answers = list[list[tuple[str, float]]]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertMaskedLM(KcBertTask, BertMaskedLM):
    """``BertMaskedLM`` with the MLM head's activation, layer-norm epsilon and initializer range
    taken from the :class:`KcBertBackbone` (so from the Hugging Face config)."""

    backbone_cls = KcBertBackbone
    preprocessor_cls = KcBertMaskedLMPreprocessor
    HEAD = "masked_lm"

    def __init__(self, backbone: KcBertBackbone, preprocessor=None, record=None, labels=None, compile: bool = True,
                 **kwargs):
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
        init_functional_task(self, inputs=inputs, outputs=outputs, compile=False, **kwargs)
        self._finish_kcbert_task(None, record, compile)

    @classmethod
    def for_config(cls, config: BertConfig, dtype=None, preprocessor=None, record=None) -> "KcBertMaskedLM":
        """A freshly initialized masked LM for a config."""
        return cls(build_backbone(config, dtype), preprocessor=preprocessor, record=record)

    def predict(self, x=None, batch_size=None, **kwargs):
        """Keras' ``predict``; on texts holding ``[MASK]`` (with the preprocessor), the logits at
        those masks ``[texts, masks, vocabulary]``, in order."""
        if self.preprocessor is not None and _is_text(x):
            x = self.preprocessor.fill_mask_inputs(x)
            return keras.Model.predict(self, x, batch_size=batch_size, **kwargs)
        return super().predict(x, batch_size=batch_size, **kwargs)

    def fill_mask(self, texts: list[str], top_k: int = 5) -> list[Answers]:
        """For each text, for each of its ``[MASK]`` s in order, the ``top_k`` (token,
        probability) pairs."""
        inputs = self.preprocessor.fill_mask_inputs(list(texts))
        counts = (np.asarray(inputs["token_ids"]) == self.preprocessor.tokenizer.mask_token_id).sum(axis=1)
        logits = np.asarray(keras.Model.predict(self, inputs, verbose=0), np.float64)
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        vocabulary = self.preprocessor.tokenizer.get_vocabulary()
        answers = []
        for row, count in enumerate(counts):
            per_mask = []
            for slot in range(int(count)):
                order = np.argsort(-probabilities[row, slot], kind="stable")[:top_k]
                per_mask.append([(vocabulary[int(i)], float(probabilities[row, slot, i])) for i in order])
            answers.append(per_mask)
        return answers


def _is_text(x) -> bool:
    """Whether ``x`` is a string or a list of strings (not model inputs)."""
    if isinstance(x, str):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(item, str) for item in x)
