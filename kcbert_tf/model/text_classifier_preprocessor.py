"""The text classifier's preprocessor: raw strings → model inputs (clean → tokenize → pack).

:class:`KcBertTextClassifierPreprocessor` is KerasHub's ``TextClassifierPreprocessor`` for KcBERT:
one text, or a pair as a tuple ``(first, second)``, becomes ``token_ids``, ``segment_ids`` and
``padding_mask`` padded to ``sequence_length``, inside ``tf.data`` and SavedModels alike (a dict
of model inputs passes through as it is, so a model with its preprocessor also takes packed
inputs).  It
is the one definition of what a comment classifier sees, shared by ``classifier.fit`` /
``predict`` on strings, ``kcbert-tf finetune`` and ``predict``, the SavedModel's signatures and
``batch-predict``:

1. :meth:`~KcBertTextClassifierPreprocessor.prepare`: KcBERT's ``clean()`` in the graph when
   ``clean`` (exactly :func:`kcbert_tf.cleaning.clean`), else Python's ``str.strip()``; a text
   that is empty after this gets no prediction from the commands;
2. :meth:`~KcBertTextClassifierPreprocessor.pack`: the ids of
   :class:`~kcbert_tf.model.tokenizer.KcBertTokenizer` (transformers' own), ``[CLS] a [SEP]`` or
   ``[CLS] a [SEP] b [SEP]``, truncated as ``transformers`` truncates (a pair by its
   ``longest_first`` rule), padded to ``sequence_length`` (or to the longest row, for callers that
   batch by length).

Example:

>>> from kcbert_tf.model.tokenizer import KcBertTokenizer
>>> tokenizer = KcBertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ", "좋", "##아"])
>>> preprocessor = KcBertTextClassifierPreprocessor(tokenizer, sequence_length=6)
>>> preprocessor(["좋아 ㅋㅋㅋㅋㅋ"])["token_ids"].numpy().tolist()
[[2, 6, 7, 5, 3, 0]]
>>> x, y = preprocessor((["좋아"], ["ㅋㅋ"]), [1])
>>> x["segment_ids"].numpy().tolist(), y.numpy().tolist()
([[0, 0, 0, 0, 1, 1]], [1])
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras_hub.models import TextClassifierPreprocessor

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.keras_internals import preprocessing_function
from kcbert_tf.model.tokenizer import KcBertTokenizer
from kcbert_tf.text.cleaning_in_graph import clean_in_graph, strip_in_graph
from kcbert_tf.text.model_inputs import KCBERT_MAX_POSITIONS, pack_pair, pack_single, pad_to_length

__all__ = ["KcBertTextClassifierPreprocessor", "TextPacking", "model_inputs"]

#: How a pair is truncated (transformers' rule, :func:`kcbert_tf.text.model_inputs.trim_pair_lengths`).
TRUNCATE = "longest_first"


def with_batch_axis(texts) -> tuple[tf.Tensor, bool]:
    """``texts`` as a 1-D string tensor, and whether it was a single string."""
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    single = texts.shape.rank == 0
    return (texts[tf.newaxis] if single else texts), single


def model_inputs(x, y, sample_weight, pack_batch):
    """A preprocessor's output: ``x`` (a string, a batch, a tuple of them, or a dict of model
    inputs already, passed through) packed by ``pack_batch(*segments)`` (1-D string tensors), a
    single example without its batch axis, with ``y`` and ``sample_weight``."""
    if isinstance(x, dict):
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    batched = [with_batch_axis(segment) for segment in (x if isinstance(x, tuple) else (x,))]
    packed = pack_batch(*(texts for texts, _ in batched))
    if batched[0][1]:  # one example: no batch axis
        packed = {name: value[0] for name, value in packed.items()}
    return keras.utils.pack_x_y_sample_weight(packed, y, sample_weight)


class TextPacking:
    """The two steps from a raw text to model inputs, shared by the preprocessors that read
    comments (the classifier's, the masked LM's, the token classifier's); needs ``tokenizer``,
    ``sequence_length`` and ``clean``."""

    def prepare(self, texts) -> tf.Tensor:
        """The texts as the model sees them (cleaned, or stripped), same shape."""
        return clean_in_graph(texts) if self.clean else strip_in_graph(texts)

    def pack(self, texts, pairs=None, *, pad: bool = True) -> dict:
        """Prepared texts (and second texts) → ``token_ids``, ``segment_ids``, ``padding_mask``
        (int32 ``[B, L]``): padded to ``sequence_length`` (``pad``), else to the longest row."""
        word_piece = self.tokenizer.word_piece
        if pairs is None:
            packed = pack_single(word_piece, texts, self.sequence_length)
        else:
            packed = pack_pair(word_piece, texts, pairs, self.sequence_length)
        return pad_to_length(packed, self.sequence_length) if pad else packed


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertTextClassifierPreprocessor(TextPacking, TextClassifierPreprocessor):
    """Raw strings (or pairs) → KcBERT classifier inputs, cleaned as KcBERT was trained.

    Args:
        tokenizer: a :class:`~kcbert_tf.model.tokenizer.KcBertTokenizer`.
        sequence_length: inputs are cut to this many ids, ``[CLS]`` and ``[SEP]`` included, and
            padded to it.
        clean: apply KcBERT's ``clean()`` to every text first (the model card's advice).
    """

    backbone_cls = KcBertBackbone
    tokenizer_cls = KcBertTokenizer

    def __init__(self, tokenizer, sequence_length: int = KCBERT_MAX_POSITIONS, clean: bool = True, **kwargs):
        kwargs.pop("truncate", None)
        super().__init__(tokenizer, sequence_length=sequence_length, truncate=TRUNCATE, **kwargs)
        self.clean = clean

    def build(self, input_shape=None):
        self.built = True  # no packer: pack() packs as transformers does

    def _pack_batch(self, *segments) -> dict:
        if len(segments) not in (1, 2):
            raise ValueError(f"a KcBERT classifier takes one text or a pair, got {len(segments)} segments")
        return self.pack(*(self.prepare(texts) for texts in segments))

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        return model_inputs(x, y, sample_weight, self._pack_batch)

    def get_config(self) -> dict:
        return {**super().get_config(), "clean": self.clean}
