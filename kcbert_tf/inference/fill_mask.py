"""``kcbert-tf fill-mask``: the top predictions for every ``[MASK]`` of one or more texts, from a
model directory of ours (Keras) or a Hugging Face directory (``export-hf`` output, or any BERT
masked LM, loaded by transformers).

The texts are cleaned as KcBERT's training data was (``clean()``, which keeps ``[MASK]`` intact)
before they are tokenized.  A model directory of ours is run with the in-graph tokenizer and the
Keras model; a Hugging Face one with transformers' tokenizer and ``AutoModelForMaskedLM``: for an
exported model the two agree (a test checks it).

Example::

    kcbert-tf fill-mask --model runs/kcbert-base "오늘 경기 정말 [MASK] 였다" "[MASK] [MASK] 최고"
    kcbert-tf fill-mask --model hf/kcbert-base "오늘 경기 정말 [MASK] 였다"
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from kcbert_tf.errors import UserError

__all__ = ["fill_mask", "run"]

#: One text's answers: for each [MASK] in order, the top (token, probability) pairs.
Answers = list[list[tuple[str, float]]]


def fill_mask(model_dir: str, texts: Sequence[str], top_k: int = 5) -> list[Answers]:
    """For each text, for each of its ``[MASK]``s in order, the ``top_k`` (token, probability)."""
    from kcbert_tf.model.model_dir import WEIGHTS_FILE
    from kcbert_tf.text.cleaning import clean

    if not os.path.isdir(model_dir):
        raise UserError(f"--model {model_dir}: no such directory (a model directory, or export-hf output)")
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    cleaned = [clean(text) for text in texts]
    for text, kept in zip(texts, cleaned):
        if "[MASK]" not in kept:
            raise UserError(f"no [MASK] in the text {text!r}")
    if os.path.exists(os.path.join(model_dir, WEIGHTS_FILE)):
        return _with_keras(model_dir, cleaned, top_k)
    return _with_transformers(model_dir, cleaned, top_k)


def _top(probabilities, top_k: int, token_of) -> list[tuple[str, float]]:
    import numpy as np

    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [(token_of(int(i)), float(probabilities[i])) for i in order]


def _with_keras(model_dir: str, texts: list[str], top_k: int) -> list[Answers]:
    import numpy as np
    import tensorflow as tf

    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.model_inputs import pack_single
    from kcbert_tf.text.vocab import MASK_ID

    source = ModelDir.read(model_dir)
    model = source.load_masked_lm()
    inputs = {k: v.numpy() for k, v in pack_single(source.tokenizer(), tf.constant(texts), source.config.max_position_embeddings).items()}
    positions = [np.flatnonzero(row == MASK_ID) for row in inputs["token_ids"]]
    slots = max(len(found) for found in positions)
    mask_positions = np.zeros((len(texts), slots), np.int32)
    for row, found in enumerate(positions):
        mask_positions[row, : len(found)] = found
    logits = np.asarray(model.predict({**inputs, "mask_positions": mask_positions}, verbose=0), np.float64)
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    return [
        [_top(probabilities[row, slot], top_k, source.vocab.__getitem__) for slot in range(len(found))]
        for row, found in enumerate(positions)
    ]


def _with_transformers(hf_dir: str, texts: list[str], top_k: int) -> list[Answers]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    # An export-hf directory also holds the pooler, which BertForMaskedLM does not use: quiet the
    # load report that lists it.
    transformers.logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
    encoded = tokenizer(texts, return_tensors="pt", truncation=True, padding=True)
    with torch.no_grad():
        probabilities = model(**encoded).logits.double().softmax(-1).numpy()
    answers = []
    for row, ids in enumerate(encoded["input_ids"].numpy()):
        found = [int(i) for i in (ids == tokenizer.mask_token_id).nonzero()[0]]
        answers.append([_top(probabilities[row, i], top_k, tokenizer.convert_ids_to_tokens) for i in found])
    return answers


def run(argv: Sequence[str] | None = None) -> list[Answers]:
    """``kcbert-tf fill-mask``: print the answers; return them."""
    parser = argparse.ArgumentParser(prog="kcbert-tf fill-mask", description=__doc__.splitlines()[0])
    parser.add_argument("--model", "--hf-dir", dest="model", required=True,
                        help="a model directory of ours (pretrain, import-hf) or a Hugging Face directory (export-hf)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("texts", nargs="+", help="texts with [MASK] in them")
    args = parser.parse_args(argv)
    answers = fill_mask(args.model, args.texts, args.top_k)
    for text, per_text in zip(args.texts, answers):
        print(f"fill-mask ({args.model}): {text}")
        for number, top in enumerate(per_text, start=1):
            if len(per_text) > 1:
                print(f"  [MASK] {number}:")
            for token, probability in top:
                print(f"  {probability:7.2%}  {token}")
    return answers
