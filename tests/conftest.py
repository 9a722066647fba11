"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def model_config(name: str = "kcbert-tiny", **overrides) -> dict:
    """A model config of ``configs/`` (Hugging Face form) with ``overrides``: the one tiny model
    the tests and the demo share, resized where a test needs it."""
    import json

    return {**json.loads((REPO / "configs" / f"{name}.json").read_text()), **overrides}


def shared_file(relative: str) -> pathlib.Path:
    """A file of ../shared/data, or skip the test naming what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def news_comments() -> pathlib.Path:
    """24,000 real, uncleaned Korean news comments, one a line."""
    return shared_file("comments/news_comments.txt")


def reference_tokenizer(vocab: pathlib.Path, directory: pathlib.Path):
    """transformers' tokenizer for ``vocab``: the independent reference for token ids.

    Built from a directory, as transformers users load it (in transformers 5, ``BertTokenizer(vocab_file=...)``
    silently ignores the file and yields all [UNK]).
    """
    import os
    import shutil

    from transformers import AutoTokenizer

    os.environ["HF_HUB_OFFLINE"] = "1"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(vocab, directory / "vocab.txt")
    (directory / "tokenizer_config.json").write_text(
        '{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}', encoding="utf-8"
    )
    return AutoTokenizer.from_pretrained(str(directory))


@pytest.fixture(scope="session")
def kcbert_vocab() -> pathlib.Path:
    """The real KcBERT vocab.txt (30,000 tokens)."""
    return shared_file("kcbert/vocab.txt")
