"""The KcBERT WordPiece tokenizer, in the TensorFlow graph, with the ids transformers gives.

:class:`KcBertWordPiece` runs inside ``tf.data`` pipelines and SavedModels on string tensors
(ragged ``int64`` ids out) and gives, for every text, exactly the ids of
``transformers.AutoTokenizer.from_pretrained(DIR)(texts, add_special_tokens=False)`` for a directory
holding the same ``vocab.txt`` and ``{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}``.
It reproduces that tokenizer step by step with tensorflow-text ops (the exact path):

1. split off the special tokens (``[PAD] [UNK] [CLS] [SEP] [MASK]``) written in the raw text:
   transformers matches them before normalizing;
2. remove what ``BertNormalizer``'s ``clean_text`` removes (control, format, private-use
   characters), with the character classes of :mod:`kcbert_tf.text.bert_char_classes`, read off the
   ``tokenizers`` library itself;
3. split words on whitespace and split off each punctuation character and each CJK ideograph
   (``BertNormalizer`` pads ideographs with spaces, ``BertPreTokenizer`` splits);
4. a word over 100 characters is one ``[UNK]`` (transformers counts characters, where
   tensorflow-text's ``max_bytes_per_word`` counts bytes);
5. WordPiece, greedy longest match first with ``##`` continuations, an unknown word one ``[UNK]``
   (tensorflow-text's ``FastWordpieceTokenizer``).

Most texts take a fast path instead: step 2, then ``FastWordpieceTokenizer`` with its own,
single-pass pre-tokenization, which splits exactly like step 3 except on a few hundred rare
characters (``FAST_WORDPIECE_DISAGREES``).  A text is redone on the exact path when it holds one
of those, a special token, or a word of over 100 bytes (which may still have 100 characters or
fewer).

Offsets: :meth:`KcBertWordPiece.tokenize_with_offsets` (in Python, ``encode_with_offsets``) also
give each token's span as character (code point, Python ``str`` index) offsets into the
original text, exactly transformers' ``return_offsets_mapping=True``.  It runs the exact path on
code points: each kept character remembers its original index (a special token, one placeholder,
remembers its whole span; removed characters are skipped), the normalized text is split into words
with ``regex_split_with_offsets`` and into pieces with ``FastWordpieceTokenizer``'s byte offsets,
which map back to normalized characters and so to the original ones.  A ``##`` piece spans its
characters without the ``##``; a word over 100 characters, or an unknown one, is one ``[UNK]``
spanning the word; a token starts at its first kept character and ends after its last.

Example:

>>> tokenizer = KcBertWordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ", "좋", "##아", "!"])
>>> tokenizer.encode(["ㅋㅋ 좋아!!", "좋[MASK]"])
[[5, 6, 7, 8, 8], [6, 4]]
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

import tensorflow as tf
import tensorflow_text as tf_text

from kcbert_tf.text import bert_char_classes as classes
from kcbert_tf.text.vocab import CONTINUATION_PREFIX, SPECIAL_TOKENS, check_specials, read_vocab

__all__ = [
    "MAX_INPUT_CHARS_PER_WORD",
    "KcBertWordPiece",
    "load_tokenizer",
]

#: transformers' WordPiece ``max_input_chars_per_word``: a longer word is one ``[UNK]``.
MAX_INPUT_CHARS_PER_WORD = 100

# Stand-ins for the special tokens between steps 1 and 5: private-use characters, which
# normalization removes from ordinary text, so only a special token can produce one.
_PLACEHOLDERS = tuple(chr(0xE000 + index) for index in range(len(SPECIAL_TOKENS)))
# Big enough for any word of at most MAX_INPUT_CHARS_PER_WORD characters of up to 4 bytes each.
_MAX_BYTES_PER_WORD = 4 * MAX_INPUT_CHARS_PER_WORD + 4
# The fast path's limit: a word of at most this many bytes has at most 100 characters; a longer
# one (one [UNK] there) goes to the exact path, which counts its characters.
_FAST_MAX_BYTES_PER_WORD = MAX_INPUT_CHARS_PER_WORD


class KcBertWordPiece(tf.Module):
    """Cased BERT WordPiece tokenization as TensorFlow ops; ids identical to transformers'.

    Call it on a string tensor of any shape (or a scalar) to get ragged ``int64`` ids with one more
    dimension; :meth:`encode` is the plain-Python form.  No special tokens are added.
    """

    def __init__(self, vocabulary: Sequence[str], name: str | None = None):
        super().__init__(name=name)
        # A tuple: a list would be wrapped for tracking, element by element (0.3 s for 30,000).
        self.vocabulary = tuple(vocabulary)
        check_specials(self.vocabulary, "the vocabulary")
        size = len(self.vocabulary)
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = range(len(SPECIAL_TOKENS))
        special_pattern = "|".join(re.escape(token) for token in SPECIAL_TOKENS)
        placeholders = tuple((ord(c), ord(c)) for c in _PLACEHOLDERS)
        self._placeholder_class = classes.regex_class(placeholders)
        self._removed = classes.regex_class(classes.REMOVED)
        self._removed_but_placeholders = classes.regex_class(
            classes.subtract(classes.REMOVED, placeholders)
        )
        self._whitespace = classes.regex_class(classes.WHITESPACE)
        self._split_off = (
            f"{classes.regex_class(classes.PUNCTUATION)}|{classes.regex_class(classes.CHINESE)}"
        )
        self._exact_path_pattern = (
            f"(?s).*(?:{special_pattern}|{classes.regex_class(classes.FAST_WORDPIECE_DISAGREES)}).*"
        )
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=[*self.vocabulary, *_PLACEHOLDERS],
            suffix_indicator=CONTINUATION_PREFIX,
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            token_out_type=tf.int64,
            unknown_token=SPECIAL_TOKENS[1],
            no_pretokenization=True,
        )
        self._fast_wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(self.vocabulary),
            suffix_indicator=CONTINUATION_PREFIX,
            max_bytes_per_word=_FAST_MAX_BYTES_PER_WORD,
            token_out_type=tf.int64,
            unknown_token=SPECIAL_TOKENS[1],
        )
        # Placeholder k has wordpiece id size + k; map it back to the special token's id k.
        self._id_map = tf.constant(
            list(range(size)) + list(range(len(SPECIAL_TOKENS))), dtype=tf.int64
        )
        # For tokenize_with_offsets (constant patterns and tables, see _tokenize_exact).
        self._special_pattern = special_pattern
        self._word_kept = f"{self._split_off}|{self._placeholder_class}"
        self._word_delimiters = f" |{self._word_kept}"

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def get_config(self) -> dict:
        return {"vocabulary": list(self.vocabulary)}

    @classmethod
    def from_config(cls, config: dict) -> "KcBertWordPiece":
        return cls(**config)

    def __call__(self, texts) -> tf.RaggedTensor:
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        rank = texts.shape.rank
        ids = self.tokenize(tf.reshape(texts, [-1]))
        if rank == 0:
            return ids[0]
        dims = tf.shape(texts, out_type=tf.int64)
        for axis in range(rank - 1, 0, -1):  # Restore the outer dimensions, innermost first.
            ids = tf.RaggedTensor.from_uniform_row_length(ids, dims[axis])
        return ids

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """A batch of texts → ragged ids ``[batch, (tokens)]``."""
        fast_ids, exact = self._tokenize_fast(texts)
        exact_rows = tf.where(exact)[:, 0]
        fast_rows = tf.where(~exact)[:, 0]
        ids = tf.concat(
            [tf.gather(fast_ids, fast_rows), self._tokenize_exact(tf.gather(texts, exact_rows))],
            axis=0,
        )
        return tf.gather(ids, tf.math.invert_permutation(tf.concat([fast_rows, exact_rows], 0)))

    def _tokenize_fast(self, texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Ids by the fast path, and which texts need the exact path instead.

        Those hold a special token, a character the fast pre-tokenization splits differently, or
        a word of over 100 bytes (the fast path's per-word limit counts bytes; the exact one
        counts characters).
        """
        normalized = tf.strings.regex_replace(texts, self._removed, "")
        ids, starts, ends = self._fast_wordpiece.tokenize_with_offsets(normalized)
        long_word = (ids.flat_values == self.unk_id) & (
            ends.flat_values - starts.flat_values > _FAST_MAX_BYTES_PER_WORD
        )
        exact = tf.reduce_any(ids.with_flat_values(long_word), axis=1)
        exact |= tf.strings.regex_full_match(texts, self._exact_path_pattern)
        return ids, exact

    def _tokenize_exact(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Any texts, step by step as transformers does it.

        Only ops with constant patterns (compiled once) are used: regex ops with a pattern tensor
        recompile on every call inside ``tf.data``.
        """
        # 1. Special tokens are matched in the raw text: each becomes its placeholder, spaced.
        #    (Placeholders already in the text are removed first, as normalization would.)
        texts = tf.strings.regex_replace(texts, self._placeholder_class, "")
        for token, stand_in in zip(SPECIAL_TOKENS, _PLACEHOLDERS):
            texts = tf.strings.regex_replace(texts, re.escape(token), f" {stand_in} ")
        # 2. clean_text: remove control, format and private-use characters (but placeholders),
        #    make whitespace a space; pad punctuation and CJK ideographs with spaces.
        texts = tf.strings.regex_replace(texts, self._removed_but_placeholders, "")
        texts = tf.strings.regex_replace(texts, self._whitespace, " ")
        texts = tf.strings.regex_replace(texts, f"({self._split_off})", r" \1 ")
        # 3. Words.
        words = tf.strings.split(texts)
        # 4. transformers' per-word limit counts characters.
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_INPUT_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, SPECIAL_TOKENS[1], words.flat_values))
        # 5. WordPiece, then the placeholders back to the special tokens' ids.
        word_pieces = self._wordpiece.tokenize(words.flat_values)
        ids = tf.gather(self._id_map, word_pieces.flat_values)
        return words.with_flat_values(word_pieces.with_flat_values(ids)).merge_dims(1, 2)

    def encode(self, texts: Sequence[str], batch_size: int = 4096) -> list[list[int]]:
        """Ids for each text (no special tokens added), as Python lists."""
        out: list[list[int]] = []
        for start in range(0, len(texts), batch_size):
            batch = tf.constant(list(texts[start : start + batch_size]), dtype=tf.string)
            out += self.tokenize(batch).to_list()
        return out

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize_with_offsets(
        self, texts: tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """A batch of texts → ragged ``(ids, starts, ends)``, each ``int64 [batch, (tokens)]``.

        ``ids`` are :meth:`tokenize`'s; ``text[start:end]`` is each token's span in the original
        text (character offsets, as transformers' ``offset_mapping``).
        """
        normalized, first_char, end_char, char_bytes = self._normalize_with_offsets(texts)
        # 3. Words: split on spaces, punctuation, CJK ideographs and placeholders kept as words.
        words, word_begins, word_ends = tf_text.regex_split_with_offsets(
            normalized, self._word_delimiters, self._word_kept
        )
        # 4. transformers' per-word limit counts characters: one [UNK] spanning the word.
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_INPUT_CHARS_PER_WORD
        pieces, piece_begins, piece_ends = self._wordpiece.tokenize_with_offsets(
            tf.where(too_long, SPECIAL_TOKENS[1], words.flat_values)
        )
        # 5. Piece byte offsets (in words) → bytes of the whole normalized batch → normalized
        #    characters → original character offsets.
        word_bytes = word_ends.flat_values - word_begins.flat_values
        piece_words = pieces.value_rowids()
        long_piece = tf.gather(too_long, piece_words)
        word_base = tf.gather(
            tf.cumsum(tf.cast(tf.strings.length(normalized), tf.int64), exclusive=True),
            words.value_rowids(),
        ) + word_begins.flat_values
        piece_base = tf.gather(word_base, piece_words)
        begin = piece_base + tf.where(
            long_piece, tf.zeros_like(piece_words), piece_begins.flat_values
        )
        end = piece_base + tf.where(
            long_piece, tf.gather(word_bytes, piece_words), piece_ends.flat_values
        )
        first = tf.searchsorted(char_bytes, begin, side="right", out_type=tf.int64) - 1
        last = tf.searchsorted(char_bytes, end - 1, side="right", out_type=tf.int64) - 1

        def by_token(values: tf.Tensor) -> tf.RaggedTensor:
            return words.with_flat_values(pieces.with_flat_values(values)).merge_dims(1, 2)

        return (
            by_token(tf.gather(self._id_map, pieces.flat_values)),
            by_token(tf.gather(first_char, first)),
            by_token(tf.gather(end_char, last)),
        )

    def _normalize_with_offsets(
        self, texts: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Steps 1-2 of the exact path on code points, remembering where each character came from.

        Returns the normalized texts (special tokens as placeholders, removed characters dropped,
        whitespace a space; punctuation and ideographs not yet padded) and, for every character of
        the whole normalized batch in order: its original start and end character offsets (a
        placeholder spans its special token) and its byte offset in the concatenated batch.
        """
        code_points, byte_offsets = tf.strings.unicode_decode_with_offsets(texts, "UTF-8")
        cps = code_points.flat_values
        count = tf.size(cps, out_type=tf.int64)
        rows = code_points.value_rowids()
        position = tf.range(count) - tf.gather(code_points.row_starts(), rows)
        batch_bytes = tf.cumsum(tf.cast(tf.strings.length(texts), tf.int64), exclusive=True)
        global_bytes = byte_offsets.flat_values + tf.gather(batch_bytes, rows)
        # 1. Special tokens, matched in the raw text; the first character of each becomes its
        #    placeholder, spanning the token, and the rest of it is dropped.
        #    (regex_split_with_offsets stops at a NUL: make it another removed, 1-byte character.)
        no_nul = tf.strings.regex_replace(texts, r"\x00", "\x01")
        parts, part_begins, part_ends = tf_text.regex_split_with_offsets(
            no_nul, self._special_pattern, self._special_pattern
        )
        kind = tf.fill(tf.shape(parts.flat_values), -1)
        for index, token in enumerate(SPECIAL_TOKENS):
            kind = tf.where(parts.flat_values == token, index, kind)
        is_special = kind >= 0
        special_begins = tf.boolean_mask(
            part_begins.flat_values + tf.gather(batch_bytes, parts.value_rowids()), is_special
        )
        special_lengths = tf.boolean_mask(
            part_ends.flat_values - part_begins.flat_values, is_special
        )
        heads = tf.searchsorted(global_bytes, special_begins, out_type=tf.int64)[:, None]
        tails = heads + special_lengths[:, None]

        def scatter(indices: tf.Tensor, values: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
            return tf.scatter_nd(indices, values, tf.reshape(size, [1]))

        ones = tf.ones_like(special_lengths)
        covered = tf.cumsum(scatter(heads, ones, count + 1) - scatter(tails, ones, count + 1))
        covered = covered[:-1] > 0
        head = scatter(heads, ones, count) > 0
        head_kind = scatter(heads, tf.boolean_mask(kind, is_special), count)
        span = tf.maximum(scatter(heads, special_lengths, count), 1)
        # 2. clean_text: drop control, format, private-use characters; whitespace becomes a space.
        kept = head | ~(covered | _in_ranges(cps, _RANGE_BOUNDS["removed"]))
        cps = tf.where(head, ord(_PLACEHOLDERS[0]) + head_kind, cps)
        cps = tf.where(_in_ranges(cps, _RANGE_BOUNDS["whitespace"]), ord(" "), cps)
        kept_cps = tf.boolean_mask(cps, kept)
        normalized = tf.strings.unicode_encode(
            tf.RaggedTensor.from_value_rowids(
                kept_cps, tf.boolean_mask(rows, kept), nrows=tf.shape(texts, out_type=tf.int64)[0]
            ),
            "UTF-8",
        )
        utf8_bytes = 1 + tf.searchsorted(
            tf.constant([0x80, 0x800, 0x10000], tf.int32), kept_cps, side="right", out_type=tf.int64
        )
        return (
            normalized,
            tf.boolean_mask(position, kept),
            tf.boolean_mask(position + span, kept),
            tf.cumsum(utf8_bytes, exclusive=True),
        )

    def encode_with_offsets(
        self, texts: Sequence[str], batch_size: int = 4096
    ) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Ids and character spans ``(start, end)`` for each text, as Python lists.

        >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ", "좋", "##아", "!"]
        >>> KcBertWordPiece(vocab).encode_with_offsets(["ㅋㅋ 좋아!", "좋\\u200b[MASK]😂"])
        [([5, 6, 7, 8], [(0, 2), (3, 4), (4, 5), (5, 6)]), ([6, 4, 1], [(0, 1), (2, 8), (8, 9)])]
        """
        out: list[tuple[list[int], list[tuple[int, int]]]] = []
        for start in range(0, len(texts), batch_size):
            batch = tf.constant(list(texts[start : start + batch_size]), dtype=tf.string)
            ids, starts, ends = (part.to_list() for part in self.tokenize_with_offsets(batch))
            out += [(row, list(zip(s, e))) for row, s, e in zip(ids, starts, ends)]
        return out


def _range_bounds(ranges: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``[lo, hi + 1, lo, hi + 1, ...]``: a code point is in ``ranges`` when an odd number of these
    are at most it."""
    return np.array([bound for lo, hi in ranges for bound in (lo, hi + 1)], dtype=np.int32)


_RANGE_BOUNDS = {
    "removed": _range_bounds(classes.REMOVED),
    "whitespace": _range_bounds(classes.WHITESPACE),
}


def _in_ranges(code_points: tf.Tensor, bounds: np.ndarray) -> tf.Tensor:
    """Which ``int32`` code points fall in the ranges of :func:`_range_bounds`."""
    return tf.searchsorted(tf.constant(bounds), code_points, side="right") % 2 == 1


def load_tokenizer(path: str | os.PathLike) -> KcBertWordPiece:
    """A :class:`KcBertWordPiece` from a ``vocab.txt`` or a directory holding one."""
    return KcBertWordPiece(read_vocab(path))
