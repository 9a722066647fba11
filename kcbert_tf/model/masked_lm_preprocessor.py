"""The masked LM's preprocessor: raw strings → masked-LM inputs, for ``fit`` and for fill-mask.

:class:`KcBertMaskedLMPreprocessor` is KerasHub's ``MaskedLMPreprocessor`` for KcBERT.  Called on
strings (``masked_lm.fit(x=texts)``), it cleans them with KcBERT's ``clean()`` in the graph (as
the pretraining corpus was cleaned), packs ``[CLS] text [SEP]`` padded to ``sequence_length`` and
masks it with BERT's rule, the one masking of pretraining (:func:`kcbert_tf.text.masking.mask_tokens`:
15% of the ordinary tokens, 80% ``[MASK]``, 10% a random token, 10% kept), giving
``(x, mask_ids, mask_weights)``.  :meth:`~KcBertMaskedLMPreprocessor.fill_mask_inputs` instead
keeps the text's own ``[MASK]`` tokens and points ``mask_positions`` at them: what
``KcBertMaskedLM.predict`` on strings and ``kcbert-tf fill-mask`` run.

Example:

>>> from kcbert_tf.model.tokenizer import KcBertTokenizer
>>> tokenizer = KcBertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "오늘", "경기", "최고"])
>>> preprocessor = KcBertMaskedLMPreprocessor(tokenizer, sequence_length=8)
>>> x = preprocessor.fill_mask_inputs(["오늘 경기 [MASK] ㅋㅋㅋㅋ"])
>>> x["token_ids"].numpy().tolist(), x["mask_positions"].numpy().tolist()
([[2, 5, 6, 4, 1, 3, 0, 0]], [[3]])
>>> x, y, weights = preprocessor(["오늘 경기 최고 최고 최고 최고 최고"])
>>> int(weights.numpy().sum())  # 7 ordinary tokens: round(0.15 * 7) = 1 prediction
1
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras_hub.models import MaskedLMPreprocessor

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.model.keras_internals import preprocessing_function
from kcbert_tf.model.text_classifier_preprocessor import TextPacking, with_batch_axis
from kcbert_tf.model.tokenizer import KcBertTokenizer
from kcbert_tf.text.masking import mask_tokens, max_predictions_for
from kcbert_tf.text.model_inputs import KCBERT_MAX_POSITIONS
from kcbert_tf.text.vocab import MASK_ID

__all__ = ["KcBertMaskedLMPreprocessor"]


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertMaskedLMPreprocessor(TextPacking, MaskedLMPreprocessor):
    """Raw strings → masked-LM training examples (BERT's masking), or fill-mask inputs.

    Args:
        tokenizer: a :class:`~kcbert_tf.model.tokenizer.KcBertTokenizer`.
        sequence_length: inputs are cut to this many ids and padded to it.
        clean: apply KcBERT's ``clean()`` first (KcBERT's corpus was cleaned so).
        mask_selection_rate, mask_token_rate, random_token_rate: BERT's 15%, 80%, 10%.
        mask_selection_length: prediction slots per sequence (default: 15% of ``sequence_length``,
            rounded up, as pretraining uses).
    """

    backbone_cls = KcBertBackbone
    tokenizer_cls = KcBertTokenizer

    def __init__(self, tokenizer, sequence_length: int = KCBERT_MAX_POSITIONS, clean: bool = True,
                 mask_selection_rate: float = 0.15, mask_selection_length: int | None = None,
                 mask_token_rate: float = 0.8, random_token_rate: float = 0.1, **kwargs):
        kwargs.pop("truncate", None)
        super().__init__(tokenizer, sequence_length=sequence_length, truncate="longest_first",
                         mask_selection_rate=mask_selection_rate,
                         mask_selection_length=mask_selection_length or max_predictions_for(sequence_length),
                         mask_token_rate=mask_token_rate, random_token_rate=random_token_rate, **kwargs)
        self.clean = clean

    def build(self, input_shape=None):
        self.built = True  # packing and masking are kcbert_tf's own (transformers' ids, BERT's masks)

    def _packed(self, texts) -> tuple[dict, bool]:
        texts, single = with_batch_axis(texts)
        return self.pack(self.prepare(texts)), single

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, dict):  # model inputs already: passed through
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        if isinstance(x, tuple):
            raise ValueError("the KcBERT masked LM takes one text an example, not a tuple")
        packed, single = self._packed(x)
        seed = tf.random.uniform([], 0, 1 << 31, dtype=tf.int64)
        masked = mask_tokens(
            packed["token_ids"], seed=seed, index=0, vocab_size=self.tokenizer.vocabulary_size(),
            max_predictions=self.mask_selection_length, mask_rate=self.mask_selection_rate,
            mask_token_rate=self.mask_token_rate, random_token_rate=self.random_token_rate,
        )
        x = {**packed, "token_ids": masked["token_ids"], "mask_positions": masked["mask_positions"]}
        y, weights = masked["mask_ids"], masked["mask_weights"]
        if single:
            x, y, weights = {name: value[0] for name, value in x.items()}, y[0], weights[0]
        return keras.utils.pack_x_y_sample_weight(x, y, weights)

    @preprocessing_function
    def fill_mask_inputs(self, x):
        """Texts with ``[MASK]`` in them → inputs whose ``mask_positions`` are those tokens, in
        order (a row with fewer masks than the most in the batch repeats position 0 after its own)."""
        packed, single = self._packed(x)
        is_mask = tf.cast(packed["token_ids"] == MASK_ID, tf.int32)
        slots = tf.maximum(tf.reduce_max(tf.reduce_sum(is_mask, axis=1)), 1)
        # Positions of the masks first (ascending), then zeros.
        order = tf.argsort(is_mask, axis=1, direction="DESCENDING", stable=True)[:, :slots]
        found = tf.gather(is_mask, order, batch_dims=1) > 0
        packed["mask_positions"] = tf.where(found, order, 0)
        return {name: value[0] for name, value in packed.items()} if single else packed

    def get_config(self) -> dict:
        return {**super().get_config(), "clean": self.clean}
