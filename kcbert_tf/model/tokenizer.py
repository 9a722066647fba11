"""The KcBERT tokenizer as a KerasHub ``Tokenizer``: a Keras layer with the vocab as its asset.

:class:`KcBertTokenizer` is what a KerasHub user expects of ``keras_hub.tokenizers.Tokenizer``:
``tokenizer("텍스트")`` gives the ids, ``detokenize`` the text back, ``id_to_token`` /
``token_to_id``, the special tokens as attributes (``cls_token_id`` ...), ``save_to_preset`` /
``from_preset``.  The ids are exactly transformers' (``AutoTokenizer`` on the same ``vocab.txt``,
cased): the work is done by :class:`~kcbert_tf.text.tokenizer.KcBertWordPiece`, the in-graph
WordPiece ops that the Beam jobs and the input pipeline use too, so there is one tokenizer.  No
special tokens are added: the preprocessors pack ``[CLS] ... [SEP]``.

The vocab travels as an asset: ``vocab.txt`` in a model directory (a KerasHub preset, see
:mod:`kcbert_tf.model.presets`) or in a ``.keras`` archive; ``get_config()`` holds no vocab.

Example:

>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ", "좋", "##아", "!"]
>>> tokenizer = KcBertTokenizer(vocabulary=vocab)
>>> tokenizer(["ㅋㅋ 좋아!!", "좋[MASK]"])
[[5, 6, 7, 8, 8], [6, 4]]
>>> tokenizer.detokenize([5, 6, 7, 8])
'ㅋㅋ 좋아 !'
>>> tokenizer.cls_token_id, tokenizer.vocabulary_size()
(2, 9)
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras_hub.tokenizers import Tokenizer

from kcbert_tf.model.backbone import KcBertBackbone
from kcbert_tf.text.tokenizer import KcBertWordPiece
from kcbert_tf.text.vocab import CONTINUATION_PREFIX, SPECIAL_TOKENS, VOCAB_FILE, read_vocab

__all__ = ["KcBertTokenizer"]

#: The special tokens, by the attribute names KerasHub's BERT tokenizer uses.
SPECIAL_TOKEN_NAMES = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS))


@keras.saving.register_keras_serializable(package="kcbert_tf")
class KcBertTokenizer(Tokenizer):
    """KcBERT's cased WordPiece tokenizer (ids exactly transformers'), a KerasHub tokenizer.

    Args:
        vocabulary: the tokens in id order (a list, or the path of a ``vocab.txt``); None until
            ``load_assets`` (``from_preset`` loads it).
    """

    backbone_cls = KcBertBackbone

    def __init__(self, vocabulary: Sequence[str] | str | None = None, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self.file_assets = [VOCAB_FILE]
        for name, token in SPECIAL_TOKEN_NAMES.items():
            self._add_special_token(token, name)
        # KerasHub's packers read these names.
        self.start_token_id = self.end_token_id = None
        self.set_vocabulary(vocabulary)

    def set_vocabulary(self, vocabulary: Sequence[str] | str | None) -> None:
        """Use ``vocabulary`` (tokens in id order, or a ``vocab.txt`` path; None: none yet)."""
        if vocabulary is None:
            self.vocabulary, self.word_piece = None, None
            return
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocab(vocabulary)
        self.vocabulary = tuple(vocabulary)  # a list would be wrapped for tracking, token by token
        self.word_piece = KcBertWordPiece(self.vocabulary)
        self._token_to_id = {token: index for index, token in enumerate(self.vocabulary)}
        self._update_special_token_ids()
        self.start_token_id, self.end_token_id = self.cls_token_id, self.sep_token_id

    def _check_vocabulary(self) -> None:
        if self.vocabulary is None:
            raise ValueError("KcBertTokenizer has no vocabulary: pass vocabulary=[...] or load it with from_preset(DIR)")

    def get_vocabulary(self) -> list[str]:
        self._check_vocabulary()
        return list(self.vocabulary)

    def vocabulary_size(self) -> int:
        self._check_vocabulary()
        return len(self.vocabulary)

    def id_to_token(self, id: int) -> str:
        self._check_vocabulary()
        if not 0 <= id < len(self.vocabulary):
            raise ValueError(f"id {id} is outside the vocabulary of {len(self.vocabulary)} tokens")
        return self.vocabulary[id]

    def token_to_id(self, token: str) -> int:
        self._check_vocabulary()
        if token not in self._token_to_id:
            raise ValueError(f"token {token!r} is not in the vocabulary")
        return self._token_to_id[token]

    def tokenize(self, inputs):
        """Strings (a scalar, a batch, any shape) → int32 ids, ragged ``[..., (tokens)]``."""
        self._check_vocabulary()
        return tf.cast(self.word_piece(inputs), self.compute_dtype)

    def detokenize(self, inputs):
        """Ids → text: tokens joined by spaces, ``##`` continuations glued on (WordPiece's
        inverse up to spacing; special tokens kept)."""
        self._check_vocabulary()
        if isinstance(inputs, tf.RaggedTensor):
            inputs = inputs.to_list()
        rows = np.asarray(inputs, dtype=object) if not isinstance(inputs, list) else inputs
        single = len(rows) == 0 or np.isscalar(rows[0]) or getattr(rows[0], "ndim", 1) == 0
        texts = [self._join(row) for row in ([rows] if single else rows)]
        return texts[0] if single else texts

    def _join(self, ids) -> str:
        tokens = [self.vocabulary[int(i)] for i in np.asarray(ids).reshape(-1)]
        return " ".join(tokens).replace(f" {CONTINUATION_PREFIX}", "")

    def save_assets(self, dir_path: str) -> None:
        """Write ``vocab.txt`` (one token a line) into ``dir_path``."""
        self._check_vocabulary()
        with open(os.path.join(dir_path, VOCAB_FILE), "w", encoding="utf-8") as handle:
            handle.writelines(f"{token}\n" for token in self.vocabulary)

    def load_assets(self, dir_path: str) -> None:
        """Read ``vocab.txt`` from ``dir_path``."""
        self.set_vocabulary(read_vocab(os.path.join(dir_path, VOCAB_FILE)))

    def load_preset_assets(self, preset: str) -> None:
        """The vocab of a model directory (its ``vocab.txt``, beside ``config.json``)."""
        self.set_vocabulary(read_vocab(os.path.join(preset, VOCAB_FILE)))

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary": None}  # the vocab is an asset
