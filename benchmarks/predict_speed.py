"""Benchmark: `kcbert-tf predict` and the classifier SavedModel against transformers' plain loop.

The same classifier on both sides: a random transformers ``BertForSequenceClassification``
(kcbert-base's 12 x 768 by default, the real 30,000-token vocab, seeded), saved, and brought in
with ``kcbert-tf import-hf`` (so both start from the same weights, and ``predict`` runs on an
imported directory with the record ``import-hf`` writes).  The same input: the first ``--rows``
real NSMC reviews.  Each side runs in a fresh process, timed whole (start-up, loading, reading,
computing, writing) with its peak memory (``ru_maxrss``):

- **transformers**, the loop a user writes: ``AutoTokenizer`` + ``AutoModelForSequenceClassification``,
  KcBERT's ``clean()``, batches of ``--batch-size`` in file order padded to their longest row,
  max length ``--max-length``, ``torch.inference_mode``, softmax;
- **ours**: ``kcbert-tf predict --model DIR --input reviews.tsv --max-seq-length N --batch-size B``;
- **the SavedModel** (``export-savedmodel`` of the same directory), called on batches of the same
  rows sorted by length, the way its docs say a caller batches.

Every side's probabilities must agree with transformers' within 1e-4 (checked, printed), in input
order.  Printed: the table (whole process, the steady compute inside it, peak memory), the ratios
against transformers, and GFLOP/s on the real tokens (the encoder's multiply-adds per real
token x 2 / compute seconds), which says how near each side computes at the CPU's rate.

    .venv/bin/python -m benchmarks.predict_speed [--layers 12 --hidden 768] [--rows 500] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.nsmc_split import NSMC, VOCAB, shared_data_absent  # noqa: E402

LABELS = ["0", "1"]


def write_classifier(directory: pathlib.Path, layers: int, hidden: int, seed: int = 0) -> dict:
    """A seeded random transformers classifier with the real vocab, saved as a user would have it."""
    import torch
    import transformers

    vocab = VOCAB.read_text(encoding="utf-8").splitlines()
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
        intermediate_size=4 * hidden, max_position_embeddings=300, id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config).eval()
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(directory)
    (directory / "vocab.txt").write_bytes(VOCAB.read_bytes())
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}))
    return config.to_dict()


def reviews(rows: int) -> list[str]:
    lines = NSMC.read_text(encoding="utf-8").split("\n")[1:]
    return [line.split("\t")[1] for line in lines if line.count("\t") == 2 and line.split("\t")[1].strip()][:rows]


# --- The sides, each run in a fresh process (python -m benchmarks.predict_speed --worker ...) ------


def worker_transformers(hf_dir: str, input_tsv: str, output: str, batch_size: int, max_length: int) -> None:
    started = time.perf_counter()
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kcbert_tf.cleaning import clean

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForSequenceClassification.from_pretrained(hf_dir).eval()
    loaded = time.perf_counter()
    with open(input_tsv, encoding="utf-8") as handle:
        texts = [clean(line.rstrip("\n").split("\t")[1]) for line in handle.readlines()[1:]]
    probabilities, tokens, padded = [], 0, 0
    compute = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt")
            tokens += int(batch["attention_mask"].sum())
            padded += int(batch["attention_mask"].numel())
            probabilities.append(torch.softmax(model(**batch).logits, -1).numpy())
    compute = time.perf_counter() - compute
    np.save(output, np.concatenate(probabilities))
    print(json.dumps({"load_s": loaded - started, "compute_s": compute, "real_tokens": tokens, "padded_tokens": padded}))


def worker_saved_model(saved_model: str, input_tsv: str, output: str, batch_size: int) -> None:
    started = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 (the tokenizer's ops)

    served = tf.saved_model.load(saved_model)
    classify = served.signatures["serving_default"]
    loaded = time.perf_counter()
    with open(input_tsv, encoding="utf-8") as handle:
        texts = [line.rstrip("\n").split("\t")[1] for line in handle.readlines()[1:]]
    compute = time.perf_counter()
    # Batch by length, as the SavedModel's docs say: the lengths signature counts each text's ids,
    # then batches of neighbours (each padded to its own longest row).
    lengths = served.signatures["lengths"](text=tf.constant(texts))["num_ids"].numpy()
    order = np.argsort(lengths, kind="stable")
    probabilities = np.zeros((len(texts), len(LABELS)), np.float32)
    for start in range(0, len(texts), batch_size):
        chosen = order[start : start + batch_size]
        probabilities[chosen] = classify(text=tf.constant([texts[i] for i in chosen]))["probabilities"].numpy()
    compute = time.perf_counter() - compute
    np.save(output, probabilities)
    print(json.dumps({"load_s": loaded - started, "compute_s": compute, "real_tokens": int(lengths.sum())}))


def run(command: list[str], log: pathlib.Path) -> dict:
    """Run ``command``; its wall seconds, peak memory and the JSON line it printed last, if any."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    if code:
        raise SystemExit(f"{' '.join(command[:6])} ... exited {code}:\n" + "\n".join(text.splitlines()[-20:]))
    printed = [line for line in text.splitlines() if line.startswith("{")]
    return {"wall_s": wall, "peak_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime,
            **(json.loads(printed[-1]) if printed else {})}


def flops_per_token(config: dict) -> float:
    """The encoder's floating-point operations per token (2 x multiply-adds of its dense layers)."""
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    return 2.0 * layers * (4 * hidden * hidden + 2 * hidden * inter)


def classifier_parser(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark of predictions on this classifier and input (and its workers')."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=50)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = classifier_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "transformers":
            worker_transformers(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
        else:
            worker_saved_model(rest[0], rest[1], rest[2], int(rest[3]))
        return 0
    if shared_data_absent(NSMC, VOCAB):
        return 0
    import numpy as np

    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="predict-speed-") as scratch:
        work = pathlib.Path(scratch)
        config = write_classifier(work / "hf", args.layers, args.hidden)
        texts = reviews(args.rows)
        tsv = work / "reviews.tsv"
        tsv.write_text("id\tdocument\n" + "".join(f"{i}\t{text}\n" for i, text in enumerate(texts)), encoding="utf-8")
        run([python, "-m", "kcbert_tf.cli", "import-hf", "--input", str(work / "hf"), "--output", str(work / "ours")],
            work / "import.log")
        run([python, "-m", "kcbert_tf.cli", "export-savedmodel", "--model-dir", str(work / "ours"), "--output",
             str(work / "sm"), "--max-seq-length", str(args.max_length)], work / "export.log")

        results = {
            "transformers": run([python, "-m", "benchmarks.predict_speed", "--worker", "transformers", str(work / "hf"),
                                 str(tsv), str(work / "theirs.npy"), str(args.batch_size), str(args.max_length)],
                                work / "theirs.log"),
            "kcbert-tf predict": run([python, "-m", "kcbert_tf.cli", "predict", "--model", str(work / "ours"), "--input",
                                      str(tsv), "--output", str(work / "ours.tsv"), "--text-column", "document",
                                      "--max-seq-length", str(args.max_length), "--batch-size", str(args.batch_size)],
                                     work / "ours.log"),
            "SavedModel": run([python, "-m", "benchmarks.predict_speed", "--worker", "saved_model", str(work / "sm"),
                               str(tsv), str(work / "sm.npy"), str(args.batch_size)], work / "sm.log"),
        }
        expected = np.load(work / "theirs.npy")
        closing = [line for line in (work / "ours.log").read_text().splitlines() if line.startswith("predict: ")][-1]
        results["kcbert-tf predict"]["compute_s"] = float(closing.rsplit(" in ", 1)[1].split(" s")[0])
        lines = (work / "ours.tsv").read_text(encoding="utf-8").strip().split("\n")[1:]
        ours = np.asarray([[float(value) for value in line.split("\t")[-len(LABELS):]] for line in lines])
        differences = {
            "kcbert-tf predict": float(np.abs(ours - expected).max()),  # written with 4 decimals: 5e-5 of rounding
            "SavedModel": float(np.abs(np.load(work / "sm.npy") - expected).max()),
        }
    tokens = results["transformers"]["real_tokens"]
    print(f"predict speed: {args.layers} x {args.hidden} classifier (random weights, {config['vocab_size']:,}-token vocab), "
          f"{len(texts)} NSMC reviews, {tokens:,} real tokens, max length {args.max_length}, batch {args.batch_size}; "
          f"{os.cpu_count()} CPU cores")
    base = results["transformers"]
    print(f"{'side':<20} {'whole s':>8} {'ratio':>6} {'compute s':>10} {'GFLOP/s real':>13} {'peak MB':>8} {'max |dp|':>9}")
    for name, result in results.items():
        compute = result.get("compute_s")
        gflops = f"{tokens * flops_per_token(config) / compute / 1e9:13.1f}" if compute else f"{'-':>13}"
        print(f"{name:<20} {result['wall_s']:8.1f} {base['wall_s'] / result['wall_s']:6.2f} "
              f"{compute if compute else float('nan'):10.2f} {gflops} {result['peak_mb']:8.0f} "
              f"{differences.get(name, 0.0):9.1e}")
    padded = base["padded_tokens"]
    print(f"transformers computes {padded:,} tokens, padding included ({padded / tokens:.2f}x the real ones): "
          f"{padded * flops_per_token(config) / base['compute_s'] / 1e9:.1f} GFLOP/s on what it computes, the rate "
          "PyTorch reaches on this CPU")
    worst = max(differences.values())
    print(f"probabilities equal within 1e-4: {'yes' if worst <= 1e-4 + 5e-5 else 'NO'} (max difference {worst:.1e})")
    return 0 if worst <= 1e-4 + 5e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
