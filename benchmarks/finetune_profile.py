"""Profile: where a `kcbert-tf finetune` step's time goes on a CPU, in several fresh processes.

The NSMC row of `benchmarks/finetune_parity.py` (its split, its seeded random 2x128 transformers
start, its settings: batch 64, max length 50), run through the CLI in ``--processes`` fresh
processes.  Each process times every training step with a Keras callback and traces about ten
steps in the middle of the last epoch with the TensorFlow profiler; the XPlane it writes is read
back with its protobuf.  Printed: per process, the first step (tracing and graph optimisation) and
the 10th / 50th / 90th percentiles of the later steps, the sum of all steps; then, for the traced
steps of the last process, how busy TensorFlow's inter-op threads and the input pipeline's threads
were, and the op types by their share of the op time.  The peer's step time is
`benchmarks/finetune_parity.py`'s to print; this script says where ours goes.

    .venv/bin/python -m benchmarks.finetune_profile [--processes 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.finetune_parity import write_hf_start  # noqa: E402
from benchmarks.nsmc_split import NSMC, VOCAB, shared_data_absent, write_split  # noqa: E402
from benchmarks.parity_common import BATCH_SIZE, LEARNING_RATE, MAX_LENGTH, TRAIN_SEED  # noqa: E402


def worker(trace_dir: str, result: str, finetune_argv: list[str]) -> int:
    """One fine-tuning run through the CLI, every step timed, a window of the last epoch traced."""
    import time

    import keras
    import tensorflow as tf

    from kcbert_tf.cli import main as cli
    from kcbert_tf.model.text_classifier import KcBertTextClassifier

    steps_ms: list[float] = []

    class StepProbe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps = self.params.get("steps") or 0
            last = epoch == self.params.get("epochs", 1) - 1
            self.window = (steps // 2, steps // 2 + max(1, min(10, steps // 4))) if last and steps >= 4 else None

        def on_train_batch_begin(self, batch, logs=None):
            if self.window and batch == self.window[0]:
                tf.profiler.experimental.start(trace_dir)
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            steps_ms.append(1000 * (time.perf_counter() - self.started))
            if self.window and batch == self.window[1] - 1:
                tf.profiler.experimental.stop()

    original = KcBertTextClassifier.fit

    def fit(self, *args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [StepProbe()]
        return original(self, *args, **kwargs)

    KcBertTextClassifier.fit = fit
    rc = cli(["finetune", *finetune_argv])
    pathlib.Path(result).write_text(json.dumps({"rc": rc, "steps_ms": steps_ms}), encoding="utf-8")
    return rc


def busy_ms(events) -> float:
    """Milliseconds covered by a thread's events (nested events counted once)."""
    busy, end = 0, -1
    for start, stop in sorted((e.offset_ps, e.offset_ps + e.duration_ps) for e in events):
        if start >= end:
            busy, end = busy + stop - start, stop
        elif stop > end:
            busy, end = busy + stop - end, stop
    return busy / 1e9


def read_trace(trace_dir: str) -> dict:
    """The traced window: its span, each thread group's busy share, and op time by op type."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)[:1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(pathlib.Path(path).read_bytes())
    plane = next(plane for plane in space.planes if plane.name == "/host:CPU")
    names = {key: value.name for key, value in plane.event_metadata.items()}
    starts = [line.timestamp_ns * 1000 + e.offset_ps for line in plane.lines for e in line.events]
    stops = [line.timestamp_ns * 1000 + e.offset_ps + e.duration_ps for line in plane.lines for e in line.events]
    span_ms = (max(stops) - min(starts)) / 1e9
    groups = collections.defaultdict(list)
    ops = collections.Counter()
    for line in plane.lines:
        group = "inter-op" if line.name.startswith("tf_Compute") else "tf.data" if "tf_data" in line.name else line.name
        groups[group].append(busy_ms(line.events) / span_ms)
        if group != "inter-op":
            continue
        for event in line.events:
            name = names.get(event.metadata_id, "")
            if ":" in name and not name.startswith("ExecutorState"):
                ops[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9
    return {"span_ms": span_ms, "groups": dict(groups), "ops": ops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--eval-size", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker[0], args.worker[1], args.rest)
    if shared_data_absent(NSMC, VOCAB):
        return 0

    work = pathlib.Path(tempfile.mkdtemp(prefix="finetune-profile-"))
    try:
        train, evaluation = write_split(work / "nsmc", train_size=args.train_size, eval_size=args.eval_size, seed=args.seed)
        (work / "hf-start").mkdir()
        write_hf_start(work / "hf-start", args.layers, args.hidden, args.seed)
        finetune = ["--task", "nsmc", "--train", str(train), "--eval", str(evaluation), "--init", str(work / "hf-start"),
                    "--output", str(work / "out"), "--overwrite", "--epochs", str(args.epochs), "--max-seq-length",
                    str(MAX_LENGTH), "--batch-size", str(BATCH_SIZE), "--learning-rate", str(LEARNING_RATE), "--seed",
                    str(TRAIN_SEED)]
        print(f"finetune profile: NSMC, {args.layers}x{args.hidden} start, {args.train_size:,} train rows, batch "
              f"{BATCH_SIZE}, max length {MAX_LENGTH}, {args.epochs} epoch(s); {os.cpu_count()} CPU cores")
        print(f"{'process':<8} {'first step s':>12} {'p10 ms':>7} {'p50 ms':>7} {'p90 ms':>7} {'steps':>6} {'sum s':>6}")
        trace = None
        for index in range(1, args.processes + 1):
            trace_dir, result = work / f"trace-{index}", work / f"result-{index}.json"
            log = work / f"process-{index}.log"
            with open(log, "w", encoding="utf-8") as handle:
                code = subprocess.call([sys.executable, "-m", "benchmarks.finetune_profile", "--worker", str(trace_dir),
                                        str(result), "--", *finetune], stdout=handle, stderr=subprocess.STDOUT)
            if code:
                print(log.read_text(encoding="utf-8", errors="replace")[-3000:])
                return code
            steps = json.loads(result.read_text(encoding="utf-8"))["steps_ms"]
            later = sorted(steps[1:])
            print(f"{index:<8} {steps[0] / 1000:12.1f} {later[len(later) // 10]:7.0f} {later[len(later) // 2]:7.0f} "
                  f"{later[9 * len(later) // 10]:7.0f} {len(steps):6d} {sum(steps) / 1000:6.1f}")
            trace = read_trace(str(trace_dir))
        total = sum(trace["ops"].values())
        print(f"\nthe traced steps of process {args.processes}: {trace['span_ms']:.0f} ms; busy share of each thread: "
              + ", ".join(f"{group} {' / '.join(f'{share:.0%}' for share in shares)}"
                          for group, shares in trace["groups"].items() if group in ("inter-op", "tf.data", "python")))
        print(f"{'op type':<28} {'ms':>8} {'share':>6}")
        for op, ms in trace["ops"].most_common(12):
            print(f"{op:<28} {ms:8.1f} {ms / total:6.1%}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
