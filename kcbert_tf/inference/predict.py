"""``kcbert-tf predict``: a fine-tuned model's predictions for a file of texts.

    kcbert-tf predict --model runs/kcbert-base-nsmc --input reviews.tsv --output predictions.tsv

The input has the columns the model was fine-tuned on (``metrics.json`` of the model directory
names them; a label column may be there or not) and is read and cleaned the same way.  The
output is tab-separated, one line per input example in input order: the input's columns, then
``predicted`` and each class's probability (``p_LABEL``), or ``score`` for a regressor.
Examples with an empty text get an empty prediction.  A progress line every 10,000 examples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from kcbert_tf.errors import UserError
from kcbert_tf.text.task_files import read_rows

__all__ = ["predict", "run"]

BATCH = 256


def _task(model_dir: str) -> dict:
    path = os.path.join(model_dir, "metrics.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; give a model directory written by `kcbert-tf finetune`") from None


def predict(model_dir: str, rows: list[dict], *, progress=None) -> list[dict]:
    """For each input row (column → text), ``{"predicted": label, "p_LABEL": ...}`` or
    ``{"predicted": score}``; ``{}`` where the text is empty."""
    import numpy as np
    import tensorflow as tf

    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.cleaning import clean
    from kcbert_tf.text.model_inputs import pack_fixed

    task = _task(model_dir)
    source = ModelDir.read(model_dir)
    model = source.load_classifier()
    tokenizer = source.tokenizer()
    columns, length = task["columns"], task["settings"]["max_seq_length"]
    prepare = clean if task.get("clean", True) else str.strip
    texts = [prepare(row[columns["text"]]) for row in rows]
    pairs = [prepare(row[columns["text_pair"]]) for row in rows] if columns.get("text_pair") else None
    usable = [i for i in range(len(rows)) if texts[i] and (pairs is None or pairs[i])]
    labels = task["labels"]
    results: list[dict] = [{} for _ in rows]
    for start in range(0, len(usable), BATCH):
        chosen = usable[start : start + BATCH]
        inputs = pack_fixed(
            tokenizer,
            tf.constant([texts[i] for i in chosen]),
            None if pairs is None else tf.constant([pairs[i] for i in chosen]),
            length,
        )
        outputs = np.asarray(model(inputs, training=False))
        if labels is None:
            for i, value in zip(chosen, outputs[:, 0]):
                results[i] = {"predicted": f"{float(value):.4f}"}
        else:
            probabilities = np.exp(outputs - outputs.max(-1, keepdims=True))
            probabilities /= probabilities.sum(-1, keepdims=True)
            for i, row in zip(chosen, probabilities):
                results[i] = {"predicted": labels[int(row.argmax())], **{f"p_{name}": f"{p:.4f}" for name, p in zip(labels, row)}}
        if progress:
            progress(min(start + BATCH, len(usable)), len(usable))
    return results


def run(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="kcbert-tf predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory written by `kcbert-tf finetune`")
    parser.add_argument("--input", required=True, help="tab-separated, a header line, the training columns")
    parser.add_argument("--output", default=None, help="where to write the predictions (default: stdout)")
    args = parser.parse_args(argv)
    task = _task(args.model)
    needed = [name for name in (task["columns"]["text"], task["columns"].get("text_pair")) if name]
    header, numbered = read_rows(args.input, needed)
    rows = [dict(zip(header, fields)) for _, fields in numbered]

    def progress(done: int, total: int) -> None:
        if done % 10_000 < BATCH or done == total:
            print(f"  predicted {done:,} / {total:,}", file=sys.stderr, flush=True)

    results = predict(args.model, rows, progress=progress if len(rows) > 10_000 else None)
    labels = task["labels"]
    extra = ["predicted"] + ([] if labels is None else [f"p_{name}" for name in labels])
    out_lines = ["\t".join(header + extra)]
    out_lines += ["\t".join([row[name] for name in header] + [result.get(name, "") for name in extra]) for row, result in zip(rows, results)]
    text = "\n".join(out_lines) + "\n"
    if args.output:
        temporary = f"{args.output}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, args.output)
        print(f"predict: {len(rows):,} example(s) -> {args.output}", flush=True)
    else:
        sys.stdout.write(text)
    return results
