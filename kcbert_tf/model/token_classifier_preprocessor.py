"""The token classifier's preprocessor: raw sentences → model inputs, one label per token.

:class:`KcBertTokenClassifierPreprocessor` packs ``[CLS] sentence [SEP]`` (the sentence cut to
``sequence_length - 2`` ids) padded to ``sequence_length``.  Sentences are never cleaned: an
entity's tags belong to the characters as written.  ``tagger.predict(["문장"])`` gives the logits
of every label at every position; turning them into entity spans needs the tokens' character
offsets (:meth:`~kcbert_tf.text.tokenizer.KcBertWordPiece.encode_with_offsets`), which the NER task
does (:mod:`kcbert_tf.tasks.ner`).

Example:

>>> from kcbert_tf.model.tokenizer import KcBertTokenizer
>>> tokenizer = KcBertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "서울", "##시", "에"])
>>> KcBertTokenClassifierPreprocessor(tokenizer, sequence_length=6)(["서울시 에"])["token_ids"].numpy().tolist()
[[2, 5, 6, 7, 3, 0]]
"""

from __future__ import annotations

import keras
from keras_hub.models import Preprocessor

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.keras_internals import preprocessing_function
from kcbert_tf.model.text_classifier_preprocessor import TextPacking, model_inputs
from kcbert_tf.model.tokenizer import KcBertTokenizer
from kcbert_tf.text.model_inputs import KCBERT_MAX_POSITIONS

__all__ = ["KcBertTokenClassifierPreprocessor"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertTokenClassifierPreprocessor(TextPacking, Preprocessor):
    """Raw sentences → token-classifier inputs (never cleaned).

    Args:
        tokenizer: a :class:`~kcbert_tf.model.tokenizer.KcBertTokenizer`.
        sequence_length: sentences are cut to this many ids with ``[CLS]`` and ``[SEP]``, and
            padded to it.
    """

    backbone_cls = KcBertBackbone
    tokenizer_cls = KcBertTokenizer

    def __init__(self, tokenizer, sequence_length: int = KCBERT_MAX_POSITIONS, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.clean = False  # the tags belong to the characters as written

    def build(self, input_shape=None):
        self.built = True

    def _pack_batch(self, *segments) -> dict:
        if len(segments) != 1:
            raise ValueError("a KcBERT token classifier takes one sentence an example, not a tuple")
        return self.pack(segments[0])

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        return model_inputs(x, y, sample_weight, self._pack_batch)

    def get_config(self) -> dict:
        return {**super().get_config(), "sequence_length": self.sequence_length}
