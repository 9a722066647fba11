"""``kcbert-tf fill-mask``: the top predictions for every ``[MASK]`` of one or more texts, from a
model directory of ours (Keras) or a Hugging Face directory (``export-hf`` output, or any BERT
masked LM, loaded by transformers).

The texts are cleaned as KcBERT's training data was (``clean()``, which keeps ``[MASK]`` intact)
before they are tokenized.  A model directory of ours is run as the masked LM with its
preprocessor (:meth:`kcbert_tf.model.masked_lm.KcBertMaskedLM.fill_mask`); a Hugging Face one with
transformers' tokenizer and ``AutoModelForMaskedLM``: for an exported model the two agree (a test
checks it).

Example::

    kcbert-tf fill-mask --model runs/kcbert-base "오늘 경기 정말 [MASK] 였다" "[MASK] [MASK] 최고"
    kcbert-tf fill-mask --model hf/kcbert-base "오늘 경기 정말 [MASK] 였다"
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.model.heads import MASKED_LM
from kcbert_tf.model.model_dir import WEIGHTS_FILE, ModelDir
from kcbert_tf.model.presets import load_model
from kcbert_tf.text.cleaning import clean

__all__ = ["fill_mask", "build_arg_parser", "run"]

#: One text's answers: for each [MASK] in order, the top (token, probability) pairs.
Answers = list[list[tuple[str, float]]]


def fill_mask(model_dir: str, texts: Sequence[str], top_k: int = 5) -> list[Answers]:
    """For each text, for each of its ``[MASK]``s in order, the ``top_k`` (token, probability)."""
    if not os.path.isdir(model_dir):
        raise UserError(f"--model {model_dir}: no such directory (a model directory, or export-hf output)")
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    if os.path.exists(os.path.join(model_dir, WEIGHTS_FILE)):
        return _with_keras(model_dir, texts, top_k)
    return _with_transformers(model_dir, texts, top_k)


def _check_masks(texts: Sequence[str], cleaned: Sequence[str]) -> None:
    for text, kept in zip(texts, cleaned):
        if "[MASK]" not in kept:
            raise UserError(f"no [MASK] in the text {text!r}")


def _with_keras(model_dir: str, texts: Sequence[str], top_k: int) -> list[Answers]:
    """The masked LM of a model directory, its preprocessor cleaning the texts."""
    import tensorflow as tf

    source = ModelDir.read(model_dir)
    if source.config.head != MASKED_LM:
        raise UserError(f"{model_dir} holds a fine-tuned model ({source.config.architecture}), not a masked LM; "
                        "give a `pretrain` or `import-hf` model directory")
    model = load_model(source, record=source.use(clean=True))  # as KcBERT's training data was cleaned
    prepared = [text.decode("utf-8") for text in model.preprocessor.prepare(tf.constant(list(texts))).numpy()]
    _check_masks(texts, prepared)
    return model.fill_mask(list(texts), top_k)


def _with_transformers(hf_dir: str, texts: Sequence[str], top_k: int) -> list[Answers]:
    """A Hugging Face masked LM on KcBERT's ``clean()`` of the texts, with transformers' tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    # An export-hf directory also holds the pooler, which BertForMaskedLM does not use: quiet the
    # load report that lists it.
    transformers.logging.set_verbosity_error()
    cleaned = [clean(text) for text in texts]
    _check_masks(texts, cleaned)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
    encoded = tokenizer(cleaned, return_tensors="pt", truncation=True, padding=True)
    with torch.no_grad():
        probabilities = model(**encoded).logits.double().softmax(-1).numpy()
    answers = []
    for row, ids in enumerate(encoded["input_ids"].numpy()):
        found = [int(i) for i in (ids == tokenizer.mask_token_id).nonzero()[0]]
        per_mask = []
        for i in found:
            order = np.argsort(-probabilities[row, i], kind="stable")[:top_k]
            per_mask.append([(tokenizer.convert_ids_to_tokens(int(j)), float(probabilities[row, i, j])) for j in order])
        answers.append(per_mask)
    return answers


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kcbert-tf fill-mask", description=__doc__.splitlines()[0])
    parser.add_argument("--model", "--hf-dir", dest="model_dir", required=True,
                        help="a model directory of ours (pretrain, import-hf) or a Hugging Face directory (export-hf)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("texts", nargs="+", help="texts with [MASK] in them")
    return parser


def run(argv: Sequence[str] | None = None) -> list[Answers]:
    """``kcbert-tf fill-mask``: the flags parsed into one :func:`fill_mask` call; print the
    answers; return them."""
    parser = build_arg_parser()
    answers = call_with_flags(fill_mask, parser, argv)
    shown = parser.parse_args(argv)
    for text, per_text in zip(shown.texts, answers):
        print(f"fill-mask ({shown.model_dir}): {text}")
        for number, top in enumerate(per_text, start=1):
            if len(per_text) > 1:
                print(f"  [MASK] {number}:")
            for token, probability in top:
                print(f"  {probability:7.2%}  {token}")
    return answers
