"""``kcbert-tf fill-mask``: the top predictions for ``[MASK]`` in a text, from a Hugging Face
directory (``export-hf`` output, or any BERT masked LM) loaded by transformers.

The text is cleaned as KcBERT's training data was (``kcbert_tf.text.cleaning.clean``, which keeps
``[MASK]`` intact) before it is tokenized.

Example::

    kcbert-tf fill-mask --hf-dir hf/kcbert-base "오늘 경기 정말 [MASK] 였다"
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from kcbert_tf.errors import UserError

__all__ = ["fill_mask", "run"]


def fill_mask(hf_dir: str, text: str, top_k: int = 5) -> list[tuple[str, float]]:
    """``(token, probability)`` for the ``top_k`` best fillers of the first ``[MASK]`` in ``text``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from kcbert_tf.text.cleaning import clean

    # An export-hf directory also holds the pooler, which BertForMaskedLM does not use: quiet the
    # load report that lists it.
    transformers.logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
    encoded = tokenizer(clean(text), return_tensors="pt", truncation=True)
    positions = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()
    if not len(positions):
        raise UserError(f"no {tokenizer.mask_token} in the text {text!r}")
    with torch.no_grad():
        logits = model(**encoded).logits[0, positions[0, 0]]
    probabilities = logits.softmax(-1)
    top = probabilities.topk(top_k)
    return [
        (tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(top.values, top.indices)
    ]


def run(argv: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """``kcbert-tf fill-mask``: print the top predictions; return them."""
    parser = argparse.ArgumentParser(prog="kcbert-tf fill-mask", description=__doc__.splitlines()[0])
    parser.add_argument("--hf-dir", required=True, help="a Hugging Face model directory (export-hf output)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("text", help="a text with [MASK] in it")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.hf_dir):
        raise UserError(f"--hf-dir {args.hf_dir}: no such directory (run export-hf first)")
    answers = fill_mask(args.hf_dir, args.text, args.top_k)
    print(f"fill-mask ({args.hf_dir}, loaded by transformers): {args.text}")
    for token, probability in answers:
        print(f"  {probability:7.2%}  {token}")
    return answers
