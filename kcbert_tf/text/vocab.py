"""The KcBERT vocab: its special tokens and their ids, reading a ``vocab.txt``, and the tokenizer
directory that transformers loads.  No TensorFlow (``gs://`` paths are read through
:mod:`kcbert_tf.file_reading`).

A KcBERT vocab is a BERT ``vocab.txt``: one token a line, ``[PAD] [UNK] [CLS] [SEP] [MASK]`` as
ids 0-4, ``##`` before a piece that continues a word, cased.  Every module that needs a special
token or id takes it from here.

Example:

>>> SPECIAL_TOKENS[MASK_ID], FIRST_ORDINARY_ID
('[MASK]', 5)
>>> check_specials(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ"], "vocab.txt")
>>> check_specials(["[UNK]", "[PAD]"], "my-vocab.txt")
Traceback (most recent call last):
...
kcbert_tf.text.vocab.VocabError: my-vocab.txt: the first tokens are ['[UNK]', '[PAD]'], not ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']; a KcBERT vocab starts with those five at ids 0-4 (train one with `kcbert-tf train-tokenizer`)
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Sequence

from kcbert_tf.errors import UserError
from kcbert_tf.file_reading import is_dir, read_bytes

__all__ = [
    "SPECIAL_TOKENS",
    "PAD_ID",
    "UNK_ID",
    "CLS_ID",
    "SEP_ID",
    "MASK_ID",
    "FIRST_ORDINARY_ID",
    "CONTINUATION_PREFIX",
    "VOCAB_FILE",
    "TOKENIZER_CONFIG",
    "SPECIAL_TOKENS_MAP",
    "VocabError",
    "check_specials",
    "read_vocab",
    "write_tokenizer_dir",
]

#: The BERT special tokens, which a KcBERT vocab holds as ids 0-4 in this order.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))
#: Ordinary tokens start here.
FIRST_ORDINARY_ID = len(SPECIAL_TOKENS)

#: The WordPiece prefix of a piece that continues a word.
CONTINUATION_PREFIX = "##"

#: The vocab's file name in every directory that holds one.
VOCAB_FILE = "vocab.txt"

#: ``tokenizer_config.json``: what ``AutoTokenizer`` needs to build KcBERT's cased BERT tokenizer.
TOKENIZER_CONFIG = {
    "tokenizer_class": "BertTokenizer",
    "do_lower_case": False,
    "tokenize_chinese_chars": True,
    "strip_accents": None,
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}

#: ``special_tokens_map.json`` (transformers 5 reads the tokens from the config, older versions
#: from here).
SPECIAL_TOKENS_MAP = {key: val for key, val in TOKENIZER_CONFIG.items() if key.endswith("_token")}


class VocabError(UserError):
    """A vocab that cannot serve as a KcBERT vocab; the message names the file and the fix."""


def check_specials(tokens: Sequence[str], source: str) -> None:
    """Raise :class:`VocabError` unless ``tokens`` start with :data:`SPECIAL_TOKENS`."""
    if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise VocabError(
            f"{source}: the first tokens are {list(tokens[:5])}, not {list(SPECIAL_TOKENS)}; a "
            "KcBERT vocab starts with those five at ids 0-4 (train one with `kcbert-tf "
            "train-tokenizer`)"
        )


def read_vocab(path: str | os.PathLike) -> list[str]:
    """The tokens of a BERT ``vocab.txt`` (one a line) or of the one in a directory, checked:
    specials at 0-4, no duplicates, no blank or padded lines."""
    path = os.fspath(path)
    if is_dir(path):
        path = os.path.join(path, VOCAB_FILE)
    try:
        data = read_bytes(path)
    except (FileNotFoundError, IsADirectoryError):
        raise VocabError(f"{path}: no such vocab file (give a vocab.txt or a directory holding one)") from None
    except OSError as error:
        raise VocabError(f"{path}: cannot read it ({error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise VocabError(f"{path}: not UTF-8 ({error}); a vocab.txt is UTF-8, one token a line") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [token.removesuffix("\r") for token in tokens]
    check_specials(tokens, path)
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if not token or token != token.strip():
            raise VocabError(f"{path}: line {index + 1} is empty or has spaces around it: {token!r}")
        if token in seen:
            raise VocabError(f"{path}: token {token!r} is on lines {seen[token] + 1} and {index + 1}")
        seen[token] = index
    return tokens


def write_tokenizer_dir(
    tokens: Sequence[str], directory: str | os.PathLike, model_max_length: int
) -> pathlib.Path:
    """Write ``vocab.txt``, ``tokenizer_config.json`` and ``special_tokens_map.json`` into
    ``directory`` (created if needed), so ``AutoTokenizer.from_pretrained(directory)`` loads it.
    ``model_max_length`` is the model's ``max_position_embeddings``.
    """
    check_specials(tokens, "the vocab")
    if len(set(tokens)) != len(tokens):
        raise VocabError("a vocab must not hold a token twice")
    for token in tokens:
        if not token or token != token.strip() or "\n" in token:
            raise VocabError(f"token {token!r} cannot be written one a line")
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / VOCAB_FILE).write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8")
    _write_json(directory / "tokenizer_config.json", {**TOKENIZER_CONFIG, "model_max_length": model_max_length})
    _write_json(directory / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
    return directory


def _write_json(path: pathlib.Path, value: dict) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
