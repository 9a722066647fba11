"""Benchmark: `kcbert-tf finetune` against transformers' fine-tuning as its users run it, same start, same machine.

Each side runs once, in a fresh process, from one Hugging Face checkpoint (a seeded random
`BertForMaskedLM` with the real 30,000-token vocab and a seeded pooler,
`benchmarks.finetune_parity.write_hf_start`), on the same NSMC split
(`benchmarks.nsmc_split.write_split`):

- **kcbert-tf finetune**: `kcbert-tf finetune --task nsmc --init HF_DIR` through the CLI entry
  (length-bucketed batches, the texts tokenized once, the evaluation batched by length);
- **transformers, dynamic padding**: `AutoTokenizer` + `BertForSequenceClassification` in a plain
  PyTorch loop, a seeded shuffled `DataLoader` whose `DataCollatorWithPadding` pads each batch to
  its longest row (how a transformers user fine-tunes, and what `Trainer` does by default);
- **transformers, group_by_length**: the same with transformers' `LengthGroupedSampler` (what
  `TrainingArguments(group_by_length=True)` uses).

All three clean the texts with KcBERT's `clean()`, use every example once per epoch, AdamW (eps
1e-8, no weight decay, linear decay, no warmup), clipping at 1.0, seed 42, and score accuracy on
the held-out rows after every epoch (the best epoch is reported).

The cases:

- **nsmc 2x128** (the issue's case): a 2-layer, 128-wide start, 9,000 training / 1,000 held-out
  reviews, 2 epochs, lr 1e-3, batch 64, truncation 50.
- **nsmc kcbert-base**: the 12 x 768 size (12 heads, intermediate 3,072), random weights,
  ``--base-train`` reviews in one epoch at batch 16 (200 steps by default), lr 5e-5, 500 held out;
  random weights learn little in 200 steps, so its accuracy says only that the sides agree.
- **KLUE-NER and KorQuAD** (`--tasks ner,qa`): `benchmarks.parity_ner_qa`'s rows (the 2 x 128
  start, its slices and settings), with the transformers side padding each batch to its longest
  row.

Printed per case: whole command (process start to exit), fit (training without the per-epoch
evaluation), steps/s, cores used (the process's CPU seconds / wall seconds), the ids computed per
real id (padding), the best held-out accuracy, and ours' speed-up over each transformers side.

    .venv/bin/python -m benchmarks.finetune_speed [--cases small,base] [--tasks ner,qa] [--base-train 3200]
        [--train-size 9000] [--eval-size 1000] [--layers 2] [--hidden 128] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.finetune_parity import write_hf_start  # noqa: E402
from benchmarks.nsmc_split import NSMC, VOCAB, shared_data_absent, write_split  # noqa: E402
from benchmarks.parity_common import PROCESSES, run_process, tail  # noqa: E402

OURS = "kcbert-tf finetune"
SIDES = {"transformers, dynamic padding": "longest", "transformers, group_by_length": "group_by_length"}


def case_settings(case: str, args) -> dict:
    """The start size, the split and the training settings of a case."""
    if case == "small":
        return {"name": f"nsmc {args.layers}x{args.hidden}", "layers": args.layers, "hidden": args.hidden,
                "train": args.train_size, "eval": args.eval_size, "epochs": 2, "learning_rate": 1e-3, "batch_size": 64,
                "max_length": 50}
    return {"name": "nsmc kcbert-base", "layers": 12, "hidden": 768, "train": args.base_train, "eval": 500, "epochs": 1,
            "learning_rate": 5e-5, "batch_size": 16, "max_length": 50}


def _run(work: pathlib.Path, name: str, command: list[str]) -> tuple[int, float, float]:
    """Run a side; its exit status, wall seconds and cores used (CPU seconds / wall seconds)."""
    rc, wall = run_process(command, work / f"{name}.log")
    return rc, wall, PROCESSES[-1].cpu_seconds / wall


def run_ours(work: pathlib.Path, hf_dir: pathlib.Path, train, evaluation, settings: dict) -> dict:
    output, timings_path = work / "ours-finetuned", work / "ours-timings.json"
    argv = ["--task", "nsmc", "--train", str(train), "--eval", str(evaluation), "--init", str(hf_dir),
            "--output", str(output), "--epochs", str(settings["epochs"]), "--max-seq-length", str(settings["max_length"]),
            "--batch-size", str(settings["batch_size"]), "--learning-rate", str(settings["learning_rate"])]
    rc, whole, cores = _run(work, "ours", [sys.executable, "-m", "benchmarks.finetune_parity", "--worker", "ours",
                                           "--result", str(timings_path), "--", *argv])
    if rc or not (output / "metrics.json").exists():
        return {"failed": f"kcbert-tf finetune exited {rc}:\n{tail(work / 'ours.log')}"}
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    timings = json.loads(timings_path.read_text(encoding="utf-8"))
    log = (work / "ours.log").read_text(encoding="utf-8")
    padding = next((line.split("they compute ", 1)[1].split(" (")[0] for line in log.splitlines()
                    if "they compute " in line), "")
    steps = -(-metrics["train_examples"] // settings["batch_size"]) * settings["epochs"]
    return {"whole": whole, "fit": timings["fit"] - timings["predict_in_fit"], "steps": steps, "cores": cores,
            "accuracy": metrics["best"]["accuracy"], "epoch": metrics["best"]["epoch"], "padding": f"{padding} computed",
            "train_examples": metrics["train_examples"]}


def run_transformers(work: pathlib.Path, name: str, padding: str, hf_dir, train, evaluation, settings: dict) -> dict:
    result_path = work / f"{padding}-result.json"
    rc, whole, cores = _run(work, padding, [
        sys.executable, "-m", "benchmarks.finetune_parity", "--worker", "transformers", "--result", str(result_path),
        "--hf-dir", str(hf_dir), "--train-file", str(train), "--eval-file", str(evaluation),
        "--epochs", str(settings["epochs"]), "--padding", padding, "--learning-rate", str(settings["learning_rate"]),
        "--batch-size", str(settings["batch_size"])])
    if rc:
        return {"failed": f"{name} exited {rc}:\n{tail(work / f'{padding}.log')}"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    return {"whole": whole, "fit": result["fit"], "steps": result["steps"], "cores": cores,
            "accuracy": result["best"]["accuracy"], "epoch": result["best"]["epoch"],
            "padding": f"{result['computed_per_real_id']:.2f} ids per real id computed",
            "train_examples": result["train_examples"]}


def run_case(case: str, args, work: pathlib.Path) -> list[str]:
    settings = case_settings(case, args)
    work.mkdir(parents=True, exist_ok=True)
    train, evaluation = write_split(work / "nsmc", train_size=settings["train"], eval_size=settings["eval"], seed=0)
    hf_dir = work / "hf-start"
    hf_dir.mkdir(exist_ok=True)
    write_hf_start(hf_dir, settings["layers"], settings["hidden"], 0)
    results = {}
    for name, padding in SIDES.items():
        print(f"{settings['name']}: running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_transformers(work, name, padding, hf_dir, train, evaluation, settings)
    print(f"{settings['name']}: running {OURS} ...", file=sys.stderr, flush=True)
    results[OURS] = run_ours(work, hf_dir, train, evaluation, settings)
    lines = [f"{settings['name']}: {settings['train']:,} train / {settings['eval']:,} held-out reviews, "
             f"{settings['epochs']} epoch(s), batch {settings['batch_size']}, lr {settings['learning_rate']:g}, "
             f"truncation {settings['max_length']}; {os.cpu_count()} CPU cores", "",
             "| side | whole s | fit s | steps/s | cores used | held-out accuracy (epoch) | padding |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, result in results.items():
        if "failed" in result:
            lines.append(f"| {name} | failed | | | | | |")
            continue
        lines.append(f"| {name} | {result['whole']:.1f} | {result['fit']:.1f} | {result['steps'] / result['fit']:.2f} | "
                     f"{result['cores']:.2f} | {result['accuracy']:.4f} ({result['epoch']}) | {result['padding']} |")
    ours = results[OURS]
    for name in SIDES:
        theirs = results[name]
        if "failed" in ours or "failed" in theirs:
            continue
        lines.append(f"ours against {name}: whole command {theirs['whole'] / ours['whole']:.2f}x, fit "
                     f"{theirs['fit'] / ours['fit']:.2f}x, accuracy {100 * (ours['accuracy'] - theirs['accuracy']):+.2f} points")
    for name, result in results.items():
        if "failed" in result:
            lines.append(f"{name} FAILED:\n{result['failed']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="small,base", help="small (2x128), base (kcbert-base size)")
    parser.add_argument("--tasks", default="ner,qa", help="the KLUE-NER and KorQuAD rows ('' for none)")
    parser.add_argument("--base-train", type=int, default=3200, help="kcbert-base case: training reviews (batch 16)")
    parser.add_argument("--train-size", type=int, default=9000, help="small case: training reviews")
    parser.add_argument("--eval-size", type=int, default=1000, help="small case: held-out reviews")
    parser.add_argument("--layers", type=int, default=2, help="small case: the start's layers")
    parser.add_argument("--hidden", type=int, default=128, help="small case: the start's width")
    parser.add_argument("--keep", help="keep the starts, splits, outputs and logs in this directory")
    args = parser.parse_args(argv)
    if shared_data_absent(NSMC, VOCAB):
        return 0
    root = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="finetune-speed-"))
    try:
        report = []
        for case in [case.strip() for case in args.cases.split(",") if case.strip()]:
            if case not in ("small", "base"):
                parser.error(f"--cases: unknown {case!r}; choose from small, base")
            report += run_case(case, args, root / case) + [""]
        tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
        if tasks:
            import dataclasses

            from benchmarks.parity_ner_qa import NerSettings, QaSettings, format_rows, ner_rows, qa_rows

            rows = []
            if "ner" in tasks:
                rows += ner_rows(root / "ner", settings=dataclasses.replace(NerSettings(), padding="longest"))
            if "qa" in tasks:
                rows += qa_rows(root / "qa", settings=dataclasses.replace(QaSettings(), padding="longest"))
            report.append("KLUE-NER and KorQuAD (benchmarks.parity_ner_qa; the transformers side pads each batch to "
                          "its longest row)\n\n" + format_rows(rows))
        print("\n".join(report))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"\nkept: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
