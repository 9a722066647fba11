"""Benchmark: pretraining throughput of `model.fit` (Keras, TensorFlow) vs transformers (PyTorch).

Same model config (a small BERT: 4 layers x 256, 4 heads, the real 30,000-token vocab), same
batch (16 x 128 ids, 20 masked positions each, realistic padding), same optimizer (AdamW, weight
decay 0.01, clip 1.0), same run, on this machine's CPU:

- Keras: `KcBertMaskedLM` compiled as `kcbert-tf pretrain` compiles it, trained with `model.fit`
  (XLA off and on);
- transformers: `BertForMaskedLM` in PyTorch eager mode, the usual training step
  (forward with labels, backward, clip, AdamW step).

Both see the same batch repeatedly (the input pipeline is timed separately, below).  Prints
tokens/s (batch x sequence length per second) for both and the ratio, then the input pipeline
alone (`kcbert_tf.training.input_pipeline` over packed TFRecords made here from the shared comments) in sequences/s.

    .venv/bin/python -m benchmarks.pretrain_step [--steps 30] [--batch-size 16] [--seq-length 128]
"""

from __future__ import annotations

import os
import sys


import argparse
import json
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kcbert_tf.config_files import resolve_config  # noqa: E402

from benchmarks.nsmc_split import SHARED  # noqa: E402 - the real data's directory
#: KcBERT-Base's config (30,000 tokens, 300 positions, erf GELU) cut to 4 layers x 256.
SMALL = {
    **json.loads(pathlib.Path(resolve_config("kcbert-base", flag="--config")).read_text()),
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
}


def make_batch(batch_size: int, seq_length: int, max_predictions: int, vocab_size: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, size=(batch_size, seq_length)).astype("int32")
    ids[:, 0] = 2
    for row in range(batch_size):  # about 99% fill, as packed data has
        end = seq_length - int(rng.integers(0, 3))
        ids[row, end - 1] = 3
        ids[row, end:] = 0
    positions = np.stack(
        [np.sort(rng.choice(np.arange(1, seq_length - 3), max_predictions, replace=False)) for _ in range(batch_size)]
    ).astype("int32")
    labels = np.take_along_axis(ids, positions, axis=1)
    masked = ids.copy()
    np.put_along_axis(masked, positions, 4, axis=1)
    return masked, positions, labels, (ids != 0).astype("int32")


def time_keras(batch, steps: int, jit_compile: bool) -> float:
    import keras
    import numpy as np
    import tensorflow as tf

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.training.pretraining import TrainConfig, compile_masked_lm

    masked, positions, labels, padding = batch
    keras.utils.set_random_seed(0)
    model = build_model(BertConfig.from_dict(SMALL))
    compile_masked_lm(model, TrainConfig(train_steps=10_000, warmup_steps=100), jit_compile)
    x = {
        "token_ids": masked,
        "segment_ids": np.zeros_like(masked),
        "padding_mask": padding,
        "mask_positions": positions,
    }
    dataset = tf.data.Dataset.from_tensors((x, labels, np.ones(labels.shape, "float32"))).repeat()
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # trace, compile, warm up
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def time_transformers(batch, steps: int) -> float:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    masked, positions, labels, padding = batch
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(**SMALL)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
    input_ids = torch.tensor(masked, dtype=torch.long)
    attention_mask = torch.tensor(padding, dtype=torch.long)
    targets = torch.full(input_ids.shape, -100, dtype=torch.long)
    targets.scatter_(1, torch.tensor(positions, dtype=torch.long), torch.tensor(labels, dtype=torch.long))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=targets).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def time_input_pipeline(batch_size: int, seq_length: int, batches: int) -> tuple[float, int] | None:
    """Sequences/s of kcbert_tf.training.input_pipeline over packed records of the shared comments (real vocab)."""
    comments, vocab = SHARED / "comments" / "news_comments.txt", SHARED / "kcbert" / "vocab.txt"
    if not (comments.exists() and vocab.exists()):
        return None
    import contextlib
    import io

    from kcbert_tf.training import input_pipeline as data
    from kcbert_tf.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        cli(["preprocess", "--input", str(comments), "--output", f"{tmp}/clean"])
        cli(["make-pretraining-data", "--input", f"{tmp}/clean", "--vocab", str(vocab),
             "--output", f"{tmp}/pt", "--max-seq-length", str(seq_length), "--num-shards", "4"])
        files = sorted(str(p) for p in pathlib.Path(tmp, "pt").glob("*.tfrecord"))
        dataset = data.pretraining_dataset(
            files, seq_length=seq_length, global_batch_size=batch_size, vocab_size=30000, seed=0,
            shuffle_buffer=10_000, repeat=True,
        )
        iterator = iter(dataset)
        for _ in range(5):
            next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        seconds = time.perf_counter() - start
    return batches * batch_size / seconds, len(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--max-predictions", type=int, default=20)
    args = parser.parse_args()

    batch = make_batch(args.batch_size, args.seq_length, args.max_predictions, SMALL["vocab_size"])
    tokens = args.batch_size * args.seq_length
    rows = []
    for name, seconds in (
        ("transformers BertForMaskedLM (PyTorch eager)", time_transformers(batch, args.steps)),
        ("kcbert_tf model.fit (TensorFlow, XLA off)", time_keras(batch, args.steps, False)),
        ("kcbert_tf model.fit (TensorFlow, XLA on)", time_keras(batch, args.steps, True)),
    ):
        rows.append((name, seconds))
        print(f"  {name}: {seconds * 1000:.1f} ms/step", file=sys.stderr, flush=True)
    reference = rows[0][1]
    print(f"\nconfig {SMALL['num_hidden_layers']}x{SMALL['hidden_size']}, {SMALL['num_attention_heads']} heads, "
          f"vocab {SMALL['vocab_size']:,}; batch {args.batch_size} x {args.seq_length}, "
          f"{args.max_predictions} predictions/seq; {os.cpu_count()} CPU cores; {args.steps} timed steps\n")
    print(f"| {'training step':<46} | {'ms/step':>8} | {'tokens/s':>9} | {'vs transformers':>15} |")
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 11}|{'-' * 17}|")
    for name, seconds in rows:
        print(f"| {name:<46} | {seconds * 1000:>8.1f} | {tokens / seconds:>9,.0f} | {reference / seconds:>14.2f}x |")
    pipeline = time_input_pipeline(args.batch_size, args.seq_length, batches=300)
    if pipeline is None:
        print("\ninput pipeline: skipped (the shared comments or vocab are absent)")
    else:
        rate, shards = pipeline
        fastest = min(seconds for _, seconds in rows[1:])
        print(f"\ninput pipeline alone (kcbert_tf.training.input_pipeline, {shards} shards of the shared comments, dynamic masking): "
              f"{rate:,.0f} sequences/s = {rate / (args.batch_size / fastest):.0f}x what the fastest training step consumes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
