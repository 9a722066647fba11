"""Shared fixtures: the real data in ``$KCBERT_TF_DATA`` (else a ``shared/data`` beside the
checkout), each test that needs it skipped cleanly when it is absent."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("KCBERT_TF_DATA") or REPO.parent / "shared" / "data")


def model_config(name: str = "kcbert-tiny", **overrides) -> dict:
    """A model config of ``configs/`` (Hugging Face form) with ``overrides``: the one tiny model
    the tests and the demo share, resized where a test needs it."""
    import json

    return {**json.loads((REPO / "configs" / f"{name}.json").read_text()), **overrides}


def randomize(model, seed: int = 0) -> None:
    """Non-trivial values for every weight of ``model`` (biases and layer-norm betas not zero,
    gammas not one), so that a test sees every weight at work."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(0.0, 0.2, tuple(variable.shape))
        if variable.path.endswith("gamma"):
            value += 1.0
        variable.assign(value.astype("float32"))


def shared_file(relative: str) -> pathlib.Path:
    """A file of the real data ($KCBERT_TF_DATA), or skip the test naming what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set KCBERT_TF_DATA: benchmarks/README.md, Data)")
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


@pytest.fixture(scope="session")
def dropout_free_model_dir(tmp_path_factory, kcbert_vocab):
    """A model directory to fine-tune: the tiny config (128 positions) with the real 30,000-token
    vocab, random weights (seed 0) and no dropout, so that replica counts can be compared."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.vocab import read_vocab

    keras.utils.set_random_seed(0)
    config = BertConfig.from_dict(model_config(
        vocab_size=30000, intermediate_size=128, max_position_embeddings=128,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    ))
    directory = tmp_path_factory.mktemp("dropout-free") / "model"
    ModelDir.write(str(directory), config, read_vocab(kcbert_vocab), build_model(config))
    return directory
