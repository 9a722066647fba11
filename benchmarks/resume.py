"""Benchmark: the cost of resuming pretraining does not grow with the step.

A synthetic run (packed records of 128 ids in 16 files, ``stats.json`` with the record counts,
as ``make-pretraining-data`` writes them; global batch 256), resumed at step 10 and at step
100,000 (25.6M sequences in: 400 passes over these files):

1. the input pipeline alone: seconds from building ``kcbert_tf.training.input_pipeline.pretraining_dataset`` with
   ``skip_sequences = step * 256`` to its first batch; the named peer is re-reading the consumed
   stream (``enumerate().skip(n)``, what ``pretrain`` did before), measured at steps 10 and
   1,000 and extrapolated linearly to 100,000 (running it would take hours);
2. the real command: wall seconds of ``kcbert-tf pretrain`` resuming from a checkpoint at that
   step and training 10 more steps of a tiny model (process start, restore, data, 10 steps).

The goal is the same time at both steps (ratio 100,000 / 10 near 1).

    .venv/bin/python -m benchmarks.resume [--records-per-file 4000]
"""

from __future__ import annotations

import os
import sys


import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parents[1]
SEQ_LENGTH, BATCH, VOCAB, FILES = 128, 256, 1000, 16
TINY = {
    "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": VOCAB, "hidden_size": 32,
    "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 128,
    "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
}


def write_corpus(directory: pathlib.Path, records_per_file: int) -> None:
    """Packed sequences in FILES files, a vocab.txt and a stats.json with the record counts."""
    import numpy as np

    from kcbert_tf.text.records import tfrecord_frame, token_ids_example

    rng = np.random.default_rng(0)
    counts = {}
    for shard in range(FILES):
        name = f"pretraining-{shard:05d}-of-{FILES:05d}.tfrecord"
        rows = rng.integers(5, VOCAB, size=(records_per_file, SEQ_LENGTH))
        rows[:, 0], rows[:, -1] = 2, 3
        with open(directory / name, "wb") as handle:
            for row in rows.tolist():
                handle.write(tfrecord_frame(token_ids_example(row)))
        counts[name] = records_per_file
    (directory / "stats.json").write_text(json.dumps({"record_counts": counts, "fill_ratio": 1.0}))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(VOCAB - 5)]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n")


def first_batch_seconds(data_dir: str, step: int, repeats: int = 3) -> float:
    from kcbert_tf.training import input_pipeline as data

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dataset = data.pretraining_dataset(
            data_dir, seq_length=SEQ_LENGTH, global_batch_size=BATCH, vocab_size=VOCAB, seed=0,
            shuffle_buffer=10_000, skip_sequences=step * BATCH,
        )
        next(iter(dataset))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reread_seconds(data_dir: str, step: int) -> float:
    """The peer: stream every consumed record again and drop it (the old resume)."""
    from kcbert_tf.training import input_pipeline as data

    files = data.resolve_files(data_dir)
    start = time.perf_counter()
    stream = data._sequence_stream(  # the same order; only the skip differs
        files, data.record_counts(files), seed=0, shuffle=True, window=10_000, start=0, repeat=True
    )
    next(iter(stream.skip(step * BATCH)))
    return time.perf_counter() - start


def checkpoint_at(model_dir: pathlib.Path, source: pathlib.Path, step: int) -> None:
    """A copy of ``source``'s run with its checkpoint moved to optimizer step ``step``."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.training.core import Checkpoints, prepare_model
    from kcbert_tf.training.pretraining import TrainConfig, compile_masked_lm

    model = build_model(BertConfig.from_dict(TINY))
    model.backbone.pooled_dense.trainable = False
    prepare_model(model)
    compile_masked_lm(model, TrainConfig(train_steps=step + 10, warmup_steps=1), jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    Checkpoints(model, str(source / "checkpoints"), keep=1).restore_latest()
    model.optimizer.iterations.assign(step)
    for name in ("config.json", "vocab.txt"):
        (model_dir / name).write_bytes((source / name).read_bytes())
    Checkpoints(model, str(model_dir / "checkpoints"), keep=1).save()
    keras.backend.clear_session()


def pretrain_seconds(data_dir: pathlib.Path, config: pathlib.Path, model_dir: pathlib.Path, steps: int) -> float:
    command = [
        sys.executable, "-m", "kcbert_tf.cli", "pretrain", "--config", str(config), "--data", str(data_dir),
        "--model-dir", str(model_dir), "--train-config", "pretrain-tiny",
        "--steps", str(steps), "--checkpoint-every", "10", "--batch-size", str(BATCH), "--warmup-steps", "1",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    if steps > 10 and "resuming from" not in result.stderr:
        raise SystemExit(f"the run at {steps} did not resume:\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records-per-file", type=int, default=4000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        data_dir = tmp / "data"
        data_dir.mkdir()
        write_corpus(data_dir, args.records_per_file)
        total = FILES * args.records_per_file
        print(f"synthetic data: {FILES} files x {args.records_per_file:,} records of {SEQ_LENGTH} ids "
              f"({total:,}); global batch {BATCH}; step 100,000 = {100_000 * BATCH / total:,.0f} passes in")

        pipeline = {step: first_batch_seconds(str(data_dir), step) for step in (10, 100_000)}
        peer = {step: reread_seconds(str(data_dir), step) for step in (10, 1_000)}
        peer_rate = (peer[1_000] - peer[10]) / (990 * BATCH)  # seconds per re-read sequence
        peer_100k = peer[10] + peer_rate * (100_000 - 10) * BATCH

        config = tmp / "tiny.json"
        config.write_text(json.dumps(TINY))
        base = tmp / "base"
        pretrain_seconds(data_dir, config, base, 10)  # a run that checkpoints at step 10
        at_100k = tmp / "at-100000"
        at_100k.mkdir()
        checkpoint_at(at_100k, base, 100_000)
        command = {10: pretrain_seconds(data_dir, config, base, 20), 100_000: pretrain_seconds(data_dir, config, at_100k, 100_010)}

    print()
    print("| resume at step | input pipeline: first batch (s) | re-read peer (s) | `kcbert-tf pretrain`: restore + 10 steps (s) |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| 10 | {pipeline[10]:.3f} | {peer[10]:.3f} | {command[10]:.1f} |")
    print(f"| 1,000 | | {peer[1_000]:.3f} | |")
    print(f"| 100,000 | {pipeline[100_000]:.3f} | {peer_100k:,.0f} (extrapolated) | {command[100_000]:.1f} |")
    print()
    print(f"ratio step 100,000 / step 10: input pipeline {pipeline[100_000] / pipeline[10]:.2f}x, "
          f"command {command[100_000] / command[10]:.2f}x (goal: about 1); "
          f"re-read peer {peer_100k / peer[10]:,.0f}x")


if __name__ == "__main__":
    main()
