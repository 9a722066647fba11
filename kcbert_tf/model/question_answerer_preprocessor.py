"""The question answerer's preprocessor: ``(question, context)`` → model inputs, and the windows.

:class:`KcBertQuestionAnswererPreprocessor` holds how extractive QA reads a long context: windows
of ``sequence_length`` ids, ``[CLS] question [SEP] window [SEP]``, the question cut to
``max_query_length`` tokens, consecutive windows ``doc_stride`` tokens apart, answers of at most
``max_answer_length`` tokens.  Called on ``(questions, contexts)`` it packs the first window of
each (``answerer.predict((questions, contexts))`` gives the start and end logits there); the QA
task (:mod:`kcbert_tf.tasks.qa`) cuts every window with the same settings and decodes the answer
over all of them.  Texts are never cleaned: answers are character spans of the context as written.

Example:

>>> from kcbert_tf.model.tokenizer import KcBertTokenizer
>>> tokenizer = KcBertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "어디", "서울", "수도"])
>>> preprocessor = KcBertQuestionAnswererPreprocessor(tokenizer, sequence_length=7)
>>> preprocessor(x=(["어디"], ["서울 수도 수도 수도"]))["token_ids"].numpy().tolist()
[[2, 5, 3, 6, 7, 7, 3]]
>>> default_windows(300), default_windows(128)
(QaWindows(doc_stride=128, max_query_length=64, max_answer_length=30), QaWindows(doc_stride=70, max_query_length=32, max_answer_length=30))
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras_hub.models import Preprocessor

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.keras_internals import preprocessing_function
from kcbert_tf.model.text_classifier_preprocessor import model_inputs
from kcbert_tf.model.tokenizer import KcBertTokenizer
from kcbert_tf.text.model_inputs import KCBERT_MAX_POSITIONS, pack_question_context, pad_to_length

__all__ = ["QaWindows", "KcBertQuestionAnswererPreprocessor", "default_windows"]


class QaWindows(NamedTuple):
    """How a context is cut into windows, and the longest answer (KorQuAD's settings)."""

    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30


def default_windows(sequence_length: int) -> QaWindows:
    """KorQuAD's windows (stride 128, questions of at most 64 tokens) cut to fit
    ``sequence_length``: a question takes at most a quarter of a window, and consecutive windows
    overlap by at least a quarter of the context tokens a window holds."""
    query = min(QaWindows().max_query_length, sequence_length // 4)
    room = sequence_length - query - 3  # [CLS] question [SEP] context [SEP]
    return QaWindows(max(1, min(QaWindows().doc_stride, room - room // 4)), query)


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertQuestionAnswererPreprocessor(Preprocessor):
    """``(questions, contexts)`` → question-answerer inputs (the first window), with the windows.

    Args:
        tokenizer: a :class:`~kcbert_tf.model.tokenizer.KcBertTokenizer`.
        sequence_length: ids a window, ``[CLS]``, the question and two ``[SEP]`` included.
        doc_stride, max_query_length: the windows (default: :func:`default_windows`).
        max_answer_length: the longest answer decoded, in tokens.
    """

    backbone_cls = KcBertBackbone
    tokenizer_cls = KcBertTokenizer

    def __init__(self, tokenizer, sequence_length: int = KCBERT_MAX_POSITIONS, doc_stride: int | None = None,
                 max_query_length: int | None = None, max_answer_length: int = QaWindows().max_answer_length,
                 **kwargs):
        super().__init__(**kwargs)
        defaults = default_windows(sequence_length)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.doc_stride = doc_stride or defaults.doc_stride
        self.max_query_length = max_query_length or defaults.max_query_length
        self.max_answer_length = max_answer_length
        self.clean = False  # answers are spans of the context as written

    @property
    def windows(self) -> QaWindows:
        return QaWindows(self.doc_stride, self.max_query_length, self.max_answer_length)

    def build(self, input_shape=None):
        self.built = True

    def _pack_batch(self, *segments) -> dict:
        if len(segments) != 2:
            raise ValueError("a KcBERT question answerer takes (questions, contexts)")
        packed = pack_question_context(self.tokenizer.word_piece, *segments, self.sequence_length,
                                       self.max_query_length)
        return pad_to_length(packed, self.sequence_length)

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        return model_inputs(x, y, sample_weight, self._pack_batch)

    def get_config(self) -> dict:
        return {**super().get_config(), "sequence_length": self.sequence_length, "doc_stride": self.doc_stride,
                "max_query_length": self.max_query_length, "max_answer_length": self.max_answer_length}
