"""Benchmark: each subcommand's start-up, against the start-up of a transformers user's script.

Every subcommand runs in a fresh process (``python -X importtime -m kcbert_tf.cli ...``) on the
demo's small inputs (``kcbert_tf/resources``), chained as `make demo` chains them: preprocess →
train-tokenizer → make-pretraining-data → pretrain (a few steps of the tiny model) → finetune
(1 epoch) → predict → export-savedmodel → export-hf → fill-mask.  For each it prints the whole
process time, the time spent importing modules (the sum of ``-X importtime``'s self times), and
which heavy packages the command loaded, each with the time spent in its own modules: TensorFlow,
Keras, KerasHub, Beam, PyTorch, transformers, tokenizers, scikit-learn, SciPy, soynlp.  The peer
row is what a transformers user's script imports first (``import torch, transformers`` and
``AutoModelForSequenceClassification``, ``AutoTokenizer``).

    .venv/bin/python -m benchmarks.startup

A command should load only what it uses: no PyTorch or transformers in predict, finetune or
pretrain on our own directories, no Beam in the model commands, no scikit-learn or SciPy where
no metric is computed (``tests/test_startup.py`` checks predict, make-pretraining-data and
train-tokenizer).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

RESOURCES = pathlib.Path(__file__).resolve().parents[1] / "kcbert_tf" / "resources"

#: The heavy top-level packages whose import time is reported, with their short names.
HEAVY = {"tensorflow": "TF", "keras": "Keras", "keras_hub": "KerasHub", "apache_beam": "Beam", "torch": "torch",
         "transformers": "transformers", "tokenizers": "tokenizers", "sklearn": "sklearn", "scipy": "SciPy",
         "soynlp": "soynlp"}

PEER = ("import torch, transformers\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n")

#: A package whose modules took less than this to import is not reported (a refused attempt: a
#: package hidden while TensorFlow loads).
MIN_REPORTED_US = 20_000

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


def import_report(stderr: str) -> tuple[float, dict[str, float]]:
    """``-X importtime`` output → (seconds importing, in all; heavy package → the seconds spent in
    its own modules, the self times of every ``package.*`` module summed)."""
    total, heavy = 0, {}
    for self_us, _, name in _LINE.findall(stderr):
        total += int(self_us)
        top = name.split(".")[0]
        if top in HEAVY:
            heavy[top] = heavy.get(top, 0) + int(self_us)
    return total / 1e6, {name: us / 1e6 for name, us in heavy.items() if us >= MIN_REPORTED_US}


def timed(argv: list[str], cwd: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))[-3000:]
        raise SystemExit(f"{' '.join(argv[:4])} exited {result.returncode}:\n{tail}")
    importing, heavy = import_report(result.stderr)
    return {"whole": seconds, "importing": importing, "heavy": heavy}


def commands(work: str) -> list[tuple[str, list[str]]]:
    """(subcommand, its arguments) on the demo's inputs, each stage reading the one before."""
    path = lambda *parts: os.path.join(work, *parts)  # noqa: E731
    pathlib.Path(path("new.tsv")).write_text("document\n재밌어요 ㅋㅋㅋ\n별로예요\n", encoding="utf-8")
    return [
        ("preprocess", ["--input", str(RESOURCES / "demo_comments.txt"), "--output", path("cleaned")]),
        ("train-tokenizer", ["--input", path("cleaned", "*.tfrecord"), "--output", path("vocab"), "--vocab-size", "3000",
                             "--limit-alphabet", "1000"]),
        ("make-pretraining-data", ["--input", path("cleaned"), "--vocab", path("vocab"), "--output", path("pretraining"),
                                   "--max-seq-length", "128"]),
        ("pretrain", ["--config", "kcbert-tiny", "--train-config", "pretrain-tiny", "--data", path("pretraining"),
                      "--model-dir", path("model"), "--steps", "4", "--warmup-steps", "1"]),
        ("finetune", ["--task", "nsmc", "--train", str(RESOURCES / "demo_sentiment_train.tsv"),
                      "--eval", str(RESOURCES / "demo_sentiment_eval.tsv"), "--init", path("model"),
                      "--output", path("sentiment"), "--epochs", "1", "--batch-size", "16", "--max-seq-length", "32"]),
        ("predict", ["--model", path("sentiment"), "--input", path("new.tsv"), "--output", path("predictions.tsv")]),
        ("export-savedmodel", ["--model-dir", path("sentiment"), "--output", path("sentiment-sm")]),
        ("export-hf", ["--model-dir", path("model"), "--output", path("hf")]),
        ("fill-mask", ["--model", path("model"), "오늘 경기 진짜 [MASK] 네요"]),
    ]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, argv in commands(work):
            print(f"  {name} ...", file=sys.stderr, flush=True)
            rows.append((f"kcbert-tf {name}", timed(["-m", "kcbert_tf.cli", name, *argv], work)))
        print("  transformers user's imports ...", file=sys.stderr, flush=True)
        rows.append(("peer: import torch, transformers (+ Auto classes)", timed(["-c", PEER], work)))
    print(f"\nfresh processes on the demo's small inputs, {os.cpu_count()} cores; import times from -X importtime "
          "(a package's time: its own modules' self times)\n")
    print("| command | whole process s | importing s | heavy packages loaded (import s) |")
    print("| --- | ---: | ---: | --- |")
    for name, row in rows:
        heavy = ", ".join(f"{HEAVY[k]} {v:.1f}" for k, v in sorted(row["heavy"].items(), key=lambda kv: -kv[1]))
        print(f"| {name} | {row['whole']:.1f} | {row['importing']:.1f} | {heavy or '—'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
