"""Benchmark: the peak memory of `pretrain --grad-accum-steps K` at one global batch, kcbert-base.

The same global batch (``--batch-size``, default 16 sequences of 300 ids: KcBERT-Base's length)
trained with K = 1 (the whole batch at once) and with K = 2 and 4 micro-batches per optimizer step
(``--grad-accum-steps``), each in a fresh ``kcbert-tf pretrain --config kcbert-base`` process on
the CPU for ``--steps`` optimizer steps.  The data: the shared comments through ``kcbert-tf
preprocess`` and ``make-pretraining-data`` with the real KcBERT vocab at 300 ids (one shard).  For each
K the table gives the process's peak resident memory (``ru_maxrss`` of the child), its wall time and
the time per optimizer step after the first (from the run's ``training_state.json``); the last
column is the peak against K = 1's.

    .venv/bin/python -m benchmarks.grad_accum_memory [--batch-size 16] [--steps 3] [--accumulate 1,2,4] [--keep DIR]
        [--config kcbert-base] [--length 300]

What the peak holds besides the activations: the weights, AdamW's two moments and (K > 1) the
accumulated gradients, 110 M floats each (0.44 GB), and TensorFlow's own ~0.7 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.nsmc_split import COMMENTS, VOCAB, shared_data_absent  # noqa: E402
from benchmarks.parity_common import CommandFailed, run_kcbert_tf  # noqa: E402
from benchmarks.whole_word_masking import prepare_records  # noqa: E402
from benchmarks.work_directory import work_directory  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16, help="the global batch, the same for every K")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run")
    parser.add_argument("--accumulate", default="1,2,4", help="the K values, comma-separated (1 first)")
    parser.add_argument("--keep", help="keep the records and runs in this directory (the records are reused)")
    parser.add_argument("--config", default="kcbert-base", help="the model config (its vocab: the real KcBERT one)")
    parser.add_argument("--length", type=int, default=300, help="ids per sequence (KcBERT's 300)")
    args = parser.parse_args(argv)
    if shared_data_absent(COMMENTS, VOCAB):
        return 0
    with work_directory(args.keep, "grad-accum-memory-") as work:
        try:
            return _measure(work, args)
        except CommandFailed as error:
            print(f"\nFAILED: {error}")
            return 1


def _measure(work: pathlib.Path, args: argparse.Namespace) -> int:
    """Each K's run at the same global batch, then the table."""
    records = prepare_records(work, args.length, seed=0, shards=1)
    rows = []
    for accumulate in [int(value) for value in args.accumulate.split(",")]:
        model_dir = work / f"k{accumulate}"
        shutil.rmtree(model_dir, ignore_errors=True)
        run = run_kcbert_tf(
            work / f"k{accumulate}.log", "pretrain", "--config", args.config, "--train-config", "pretrain-base",
            "--data", str(records), "--model-dir", str(model_dir), "--steps", str(args.steps), "--batch-size",
            str(args.batch_size), "--grad-accum-steps", str(accumulate), "--checkpoint-every", str(args.steps),
            "--warmup-steps", "1",
        )
        state = json.loads((model_dir / "training_state.json").read_text(encoding="utf-8"))
        rows.append((accumulate, run.peak_mb, run.wall_seconds, state))
    first_peak = rows[0][1]
    print(f"\n{os.path.basename(args.config)} masked LM, global batch {args.batch_size} x {args.length} ids, {args.steps} optimizer steps, "
          f"CPU ({os.cpu_count()} cores)\n")
    print("| --grad-accum-steps | micro-batch | peak RSS MB | whole s | loss after the last step | peak vs K=1 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for accumulate, peak, seconds, state in rows:
        loss = state["history"]["loss"][-1] if state["history"].get("loss") else float("nan")
        print(f"| {accumulate} | {args.batch_size // accumulate} | {peak:,.0f} | {seconds:.1f} | {loss:.4f} | "
              f"{peak / first_peak:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
