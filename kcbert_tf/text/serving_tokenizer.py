"""Model inputs from raw strings without TensorFlow: transformers' own tokenizer, built from a vocab.

Serving a LiteRT model (:mod:`kcbert_tf.litert`) must not import TensorFlow, so the in-graph
tokenizer (:mod:`kcbert_tf.text.tokenizer`) is not at hand there.  :class:`ServingTokenizer`
builds, from a KcBERT ``vocab.txt``, the same ``tokenizers.Tokenizer`` that
``transformers.AutoTokenizer.from_pretrained(DIR)`` builds for a directory holding that vocab and
``{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}``: ``BertNormalizer`` (clean text,
CJK ideographs split, no lower-casing, no accent stripping), ``BertPreTokenizer``, WordPiece with
``##`` continuations and 100 characters a word at most, the five special tokens matched in the raw
text, ``[CLS] a [SEP] (b [SEP])`` with segment ids 0 then 1, and truncation to ``max_seq_length``
by ``longest_first``.  So its ids are transformers' by construction, and tested to be the
in-graph tokenizer's and transformers' on real comments (``tests/test_serving_tokenizer.py``);
``export-litert`` checks them again on every export.  The ``tokenizers`` library is Rust and
small (no TensorFlow, no PyTorch): what ``kcbert-tf[litert]`` installs.

Example:

>>> tokenizer = ServingTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아", "싫", "##어"], 6)
>>> packed = tokenizer.pack(["좋아 좋아 좋아", "싫어"])
>>> packed["token_ids"].tolist(), packed["padding_mask"].tolist()
([[2, 5, 6, 5, 6, 3], [2, 7, 8, 3, 0, 0]], [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
>>> tokenizer.pack(["좋아 좋아"], ["싫어"])["segment_ids"].tolist()
[[0, 0, 0, 0, 1, 1]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kcbert_tf.text.vocab import CLS_ID, PAD_ID, SEP_ID, SPECIAL_TOKENS, UNK_ID, check_specials, read_vocab

__all__ = ["ServingTokenizer"]

#: transformers' WordPiece ``max_input_chars_per_word``: a longer word is one ``[UNK]``.
MAX_INPUT_CHARS_PER_WORD = 100


class ServingTokenizer:
    """KcBERT's packed model inputs (``token_ids``, ``segment_ids``, ``padding_mask``, int32
    ``[B, L]``, padded to the longest row) for texts or text pairs, exactly as
    ``AutoTokenizer(...)(texts, pairs, truncation=True, max_length=max_seq_length, padding=True)``
    gives them, with the ``tokenizers`` library alone."""

    def __init__(self, vocabulary: Sequence[str], max_seq_length: int, source: str = "vocab.txt"):
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

        check_specials(vocabulary, source)
        self.max_seq_length = max_seq_length
        tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocabulary)},
                                               unk_token=SPECIAL_TOKENS[UNK_ID],
                                               max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
        tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                          strip_accents=False, lowercase=False)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        cls, sep = SPECIAL_TOKENS[CLS_ID], SPECIAL_TOKENS[SEP_ID]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, CLS_ID), (sep, SEP_ID)],
        )
        tokenizer.add_special_tokens(list(SPECIAL_TOKENS))  # matched in the raw text, as transformers does
        tokenizer.enable_truncation(max_seq_length, strategy="longest_first")
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: str, max_seq_length: int) -> "ServingTokenizer":
        return cls(read_vocab(path), max_seq_length, source=path)

    def pack(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``[CLS] text [SEP]`` (or ``[CLS] a [SEP] b [SEP]``) for each text (pair), truncated
        to ``max_seq_length`` ids, padded with ``[PAD]`` to the longest row (at least 2 columns)."""
        inputs = list(texts) if pairs is None else list(zip(texts, pairs))
        encodings = self._tokenizer.encode_batch(inputs) if inputs else []
        width = max([2] + [len(encoding.ids) for encoding in encodings])
        token_ids = np.full((len(encodings), width), PAD_ID, np.int32)
        segment_ids = np.zeros((len(encodings), width), np.int32)
        padding_mask = np.zeros((len(encodings), width), np.int32)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            token_ids[row, :n] = encoding.ids
            segment_ids[row, :n] = encoding.type_ids
            padding_mask[row, :n] = 1
        return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
