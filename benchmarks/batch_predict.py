"""Benchmark: `kcbert-tf batch-predict` (Beam RunInference) on 1 and 2 local workers against
`kcbert-tf predict`, on the same cores, the same classifier and the same reviews.

The classifier is predict_speed's: a random transformers ``BertForSequenceClassification``
(kcbert-base's 12 x 768 by default, the real vocab, seeded) brought in with ``import-hf``.
``predict`` runs on that model directory; ``batch-predict`` on its SavedModel, exported once
beforehand (what a user labelling a corpus more than once does; the export's own time is printed
too).  The input: the first ``--rows`` real NSMC reviews as a TSV.  Each side runs in a fresh
process, timed whole, twice: on all the rows and on the first ``--small-rows``.  From the two:

- **fixed cost**: the small run's wall time (start-up, Beam's workers, loading the model);
- **steady lines/s**: the extra rows over the extra seconds, what a long corpus runs at;
- **whole lines/s** on all the rows, and the ratio of each against ``predict``'s.

The 2-worker run cuts the input into two chunks (``--chunk-mb``), one a worker, and gives each
worker's TensorFlow one core (batch-predict's own setting for local worker processes).  Every batch-predict run must give predict's labels and
probabilities (within 1e-4; predict writes 4 decimals).  Last, a paper estimate of the workers
and hours Dataflow needs for KcBERT's 86M comments at the measured steady rate per core.

    .venv/bin/python -m benchmarks.batch_predict [--layers 12 --hidden 768] [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.nsmc_split import NSMC, VOCAB, shared_data_absent  # noqa: E402
from benchmarks.predict_speed import LABELS, reviews, run, write_classifier  # noqa: E402

#: The comments KcBERT was pretrained on (its card: 86M comments of news articles, 12.5 GB).
KCBERT_COMMENTS = 86_000_000


def read_predict(path: pathlib.Path) -> list[tuple[str, list[float]]]:
    lines = path.read_text(encoding="utf-8").strip().split("\n")[1:]
    rows = []
    for line in lines:
        fields = line.split("\t")
        rows.append((fields[-1 - len(LABELS)], [float(value) for value in fields[-len(LABELS):]]))
    return rows


def read_batch_predict(output: pathlib.Path) -> list[tuple[str, list[float]]]:
    rows = []
    for path in sorted(output.glob("predictions-*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda row: row["line"])
    return [(row["label"], [row["probabilities"][name] for name in LABELS]) for row in rows]


def largest_difference(ours, reference) -> float:
    if len(ours) != len(reference) or [label for label, _ in ours] != [label for label, _ in reference]:
        raise SystemExit("batch-predict's labels differ from predict's")
    return max(abs(a - b) for (_, ps), (_, qs) in zip(ours, reference) for a, b in zip(ps, qs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--small-rows", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    if shared_data_absent(NSMC, VOCAB):
        return 0

    python = sys.executable
    cli = [python, "-m", "kcbert_tf.cli"]
    with tempfile.TemporaryDirectory(prefix="batch-predict-") as scratch:
        work = pathlib.Path(scratch)
        config = write_classifier(work / "hf", args.layers, args.hidden)
        texts = reviews(args.rows)
        inputs = {}
        for name, count in (("all", len(texts)), ("small", args.small_rows)):
            inputs[name] = work / f"{name}.tsv"
            inputs[name].write_text("id\tdocument\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts[:count])),
                                    encoding="utf-8")
        run(cli + ["import-hf", "--input", str(work / "hf"), "--output", str(work / "ours")], work / "import.log")
        export = run(cli + ["export-savedmodel", "--model-dir", str(work / "ours"), "--output", str(work / "sm")],
                     work / "export.log")

        sides = {
            "kcbert-tf predict": lambda size, out: cli + [
                "predict", "--model", str(work / "ours"), "--input", str(inputs[size]), "--output", str(out),
                "--batch-size", str(args.batch_size), "--text-column", "document"],
            "batch-predict, 1 worker": lambda size, out: cli + [
                "batch-predict", "--model", str(work / "sm"), "--input", str(inputs[size]), "--format",
                "tsv:document", "--output", str(out), "--batch-size", str(args.batch_size),
                "--direct_num_workers=1", "--direct_running_mode=in_memory"],
            "batch-predict, 2 workers": lambda size, out: cli + [
                "batch-predict", "--model", str(work / "sm"), "--input", str(inputs[size]), "--format",
                "tsv:document", "--output", str(out), "--batch-size", str(args.batch_size), "--chunk-mb",
                f"{inputs[size].stat().st_size / 2 / (1 << 20) * 1.01:.6f}",  # a chunk a worker
                "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        }
        results, differences = {}, {}
        for index, (name, command) in enumerate(sides.items()):
            results[name] = {size: run(command(size, work / f"side{index}-{size}"), work / f"side{index}-{size}.log")
                             for size in ("small", "all")}
            log = (work / f"side{index}-all.log").read_text(encoding="utf-8", errors="replace")
            loads = [line for line in log.splitlines() if line.startswith("model loaded")]
            results[name]["loads"] = loads[-1] if loads else "model loads not reported"
        reference = read_predict(work / "side0-all")
        for index, name in enumerate(sides):
            if index:
                differences[name] = largest_difference(read_batch_predict(work / f"side{index}-all"), reference)

    print(f"batch-predict against predict: {args.layers} x {args.hidden} classifier (random weights, "
          f"{config['vocab_size']:,}-token vocab), {len(texts):,} NSMC reviews (and {args.small_rows} for the fixed "
          f"cost), batch {args.batch_size}; {os.cpu_count()} CPU cores; SavedModel export {export['wall_s']:.1f} s "
          "(once, before)")
    base = results["kcbert-tf predict"]
    extra = len(texts) - args.small_rows

    def steady(result):
        return extra / (result["all"]["wall_s"] - result["small"]["wall_s"])

    print(f"{'side':<26} {'fixed s':>8} {'whole s':>8} {'lines/s':>8} {'ratio':>6} {'steady lines/s':>15} {'ratio':>6} "
          f"{'peak MB':>8} {'max |dp|':>9}")
    for name, result in results.items():
        whole = len(texts) / result["all"]["wall_s"]
        print(f"{name:<26} {result['small']['wall_s']:8.1f} {result['all']['wall_s']:8.1f} {whole:8.1f} "
              f"{whole / (len(texts) / base['all']['wall_s']):6.2f} {steady(result):15.1f} "
              f"{steady(result) / steady(base):6.2f} {result['all']['peak_mb']:8.0f} "
              f"{differences.get(name, 0.0):9.1e}")
    for name, result in list(results.items())[1:]:
        print(f"{name}: {result['loads']}")
    worst = max(differences.values())
    print(f"labels equal, probabilities within 1e-4: {'yes' if worst <= 1e-4 + 5e-5 else 'NO'} (max {worst:.1e})")

    rate = steady(results["batch-predict, 2 workers"]) / (os.cpu_count() or 1)  # lines/s per core
    cores = 4  # an n2-standard-4 Dataflow worker: 4 vCPUs (2 physical cores' worth of hyperthreads)
    print(f"paper estimate, KcBERT's {KCBERT_COMMENTS / 1e6:.0f}M comments at {rate:.1f} lines/s a core (this CPU, "
          f"NSMC-length reviews): {KCBERT_COMMENTS / rate / 3600:,.0f} core-hours; on n2-standard-{cores} workers "
          "(counting a vCPU as half a core): " + ", ".join(
              f"{workers} workers {KCBERT_COMMENTS / (rate * workers * cores / 2) / 3600:.1f} h"
              for workers in (50, 100, 500)))
    return 0 if worst <= 1e-4 + 5e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
