"""Benchmark: `kcbert-tf finetune` against transformers' own fine-tuning in PyTorch, same start.

The start is one Hugging Face checkpoint: a `BertForMaskedLM` of a small config (the real
30,000-token KcBERT vocab, erf GELU, 64 positions) with random weights from torch (fixed seed),
written with `save_pretrained` (safetensors) beside `vocab.txt` and a `tokenizer_config.json`.
`BertForMaskedLM` has no pooler, so a seeded `bert.pooler.*` is added to the safetensors file, as
`kcbert-tf export-hf` writes one: both sides then start from the same embeddings, encoder and
pooler, and only the 2 x hidden classifier layer is freshly drawn on each side.

The data: the shared NSMC sample (``$KCBERT_TF_DATA/nsmc/train.txt``) split with a fixed seed
(`benchmarks.nsmc_split`) into a training and an evaluation file.  The settings: the nsmc preset
(max length 50, batch 64, lr 5e-5, AdamW eps 1e-8, weight decay 0, linear decay to 0, no warmup,
gradient clipping 1.0), fewer epochs than the preset's 8 to fit the time budget, the same for both
sides.  Each side fine-tunes once per training seed of ``--seeds`` (default 1,2,3: the head's
initialisation, the batch order, dropout), all in its one process.  Both sides clean the texts with `kcbert_tf.text.cleaning.clean` and drop the empty
ones; both train on every example once per epoch (the last batch partial: ours fills it with
weight-0 rows, the PyTorch loader yields it short).

- ours: `kcbert-tf finetune --task nsmc --init HF_DIR --seeds ...` (through `kcbert_tf.cli.main`
  in a fresh process; when `finetune` does not yet take a Hugging Face directory, `kcbert-tf
  import-hf` runs first and its time counts in the whole command);
- transformers: `AutoTokenizer.from_pretrained(HF_DIR)` (truncation to 50, padded to 50),
  `BertForSequenceClassification.from_pretrained(HF_DIR, num_labels=2)`, a plain PyTorch loop
  (`torch.optim.AdamW`, `get_linear_schedule_with_warmup(..., 0, total)`, `clip_grad_norm_(..., 1.0)`,
  a `DataLoader` shuffled by a seeded generator, dropout as in the config), each seed in turn
  (`torch.manual_seed(seed)` before the model is loaded, the loader's generator seeded alike), in
  a fresh process.

Both evaluate accuracy and macro-F1 (scikit-learn) on the eval split after each epoch; the table
gives, over the seeds, the mean ± sample sd of the best epoch's scores (ours keeps that epoch:
`metrics.json` "best"; `"seeds"` holds the summary) and of the last epoch's, and each seed's best.
The accuracy difference (of the means) is said to exceed the seeds' spread when it is larger than
the two sides' sds added (the mean ± sd ranges do not overlap).  "fit" is the training
alone — for ours the wall time of `model.fit` inside `finetune` minus the per-epoch evaluation it
runs (both measured by wrapping the classifier's `fit` and the evaluation callback in the worker process), for
transformers the loop without its evaluation; "whole" is the command from process start to exit.
Goal: our accuracy within 1 point of transformers', and faster.

    .venv/bin/python -m benchmarks.finetune_parity [--epochs 3] [--train-size 8000] [--eval-size 2000]
        [--layers 2] [--hidden 256] [--seed 0] [--seeds 1,2,3] [--keep DIR] [--tasks nsmc,ner,qa]

With ``--tasks`` including ``ner`` and ``qa`` (the default) it also prints the KLUE-NER and KorQuAD
rows of `benchmarks.parity_ner_qa`: the same comparison for token classification and extractive
QA, both sides scored by the same metric code (one training seed each: ``--seeds`` is for the NSMC
rows).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.nsmc_split import NSMC, VOCAB, shared_data_absent, write_split  # noqa: E402
from benchmarks.parity_common import (  # noqa: E402
    ADAM_EPSILON, BATCH_SIZE, CLIP_NORM, GOAL_POINTS, LEARNING_RATE, MAX_LENGTH, TRAIN_SEED, describe_processes,
    run_process, small_config, tail, torch_train_epoch,
)

#: The training seeds each side runs by default (``--seeds``).
DEFAULT_SEEDS = "1,2,3"


def parse_seeds(text: str) -> list[int]:
    """``--seeds 1,2,3``: distinct integers."""
    seeds = [int(part) for part in text.split(",") if part.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"distinct integers separated by commas, such as 1,2,3; got {text!r}")
    return seeds


def mean_sd(values) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (ddof 1; None for one value)."""
    values = [float(value) for value in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def mean_sd_text(values, scale: float = 1.0, digits: int = 4) -> str:
    """``0.7620 ± 0.0040`` over the seeds (``0.7620`` alone for one seed)."""
    mean, sd = mean_sd([scale * value for value in values])
    return f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")


def difference_text(ours, theirs, scale: float = 100.0, unit: str = "points") -> str:
    """The difference of two sides' means over their seeds and whether it exceeds the seeds'
    spread: larger than the two sample sds added (the mean ± sd ranges do not overlap)."""
    (mean_a, sd_a), (mean_b, sd_b) = mean_sd([scale * v for v in ours]), mean_sd([scale * v for v in theirs])
    difference = mean_a - mean_b
    if sd_a is None or sd_b is None:
        return f"{difference:+.2f} {unit} (one seed on a side: its spread is not known)"
    spread = sd_a + sd_b
    verdict = "exceeds" if abs(difference) > spread else "is within"
    return (f"{difference:+.2f} {unit} (sd over the seeds {sd_a:.2f} and {sd_b:.2f}): the difference {verdict} the "
            f"seeds' spread ({spread:.2f} {unit}, the two sds added)")


def write_hf_start(directory: pathlib.Path, layers: int, hidden: int, seed: int) -> dict:
    """The common start: a seeded random ``BertForMaskedLM`` saved by ``save_pretrained``, a seeded
    pooler added to its safetensors file, the real vocab and a tokenizer config."""
    import torch
    import transformers
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertForMaskedLM

    vocab = VOCAB.read_text(encoding="utf-8").splitlines()
    config = small_config(layers, hidden, len(vocab))
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(**config))
    transformers.utils.logging.disable_progress_bar()
    model.save_pretrained(directory, safe_serialization=True)
    weights = directory / "model.safetensors"
    tensors = load_file(weights)
    pooler = torch.empty(hidden, hidden)
    torch.nn.init.normal_(pooler, std=config["initializer_range"])  # transformers' init for nn.Linear
    tensors["bert.pooler.dense.weight"], tensors["bert.pooler.dense.bias"] = pooler, torch.zeros(hidden)
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, weights, metadata={"format": "pt"})
    shutil.copyfile(VOCAB, directory / "vocab.txt")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}), encoding="utf-8"
    )
    return config


def finetune_takes_hf_directory() -> bool:
    """Whether ``kcbert-tf finetune --init`` says it takes a Hugging Face directory (its --help)."""
    from kcbert_tf.tasks.finetuning import build_arg_parser

    return "Hugging Face" in build_arg_parser().format_help()


# --- the two sides, each run in its own process -------------------------------------------------


def worker_ours(finetune_argv: list[str], result_path: str) -> int:
    """Run ``kcbert-tf finetune`` through the CLI entry, timing the classifier's ``fit`` and the
    per-epoch evaluation inside it."""
    import tensorflow as tf

    from kcbert_tf.cli import main as cli
    from kcbert_tf.model.text_classifier import KcBertTextClassifier

    from kcbert_tf.tasks.finetuning import EvaluateEachEpoch

    timings = {"fit": 0.0, "predict_in_fit": 0.0, "predict_calls": 0}
    original_fit, original_evaluate = KcBertTextClassifier.fit, EvaluateEachEpoch.on_epoch_end

    def timed_fit(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original_fit(self, *args, **kwargs)
        finally:
            timings["fit"] += time.perf_counter() - start

    def timed_evaluate(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original_evaluate(self, *args, **kwargs)
        finally:
            timings["predict_in_fit"] += time.perf_counter() - start
            timings["predict_calls"] += 1

    KcBertTextClassifier.fit, EvaluateEachEpoch.on_epoch_end = timed_fit, timed_evaluate
    rc = cli(["finetune", *finetune_argv])
    timings["rc"] = rc
    timings["threads"] = (
        f"TensorFlow intra-op {tf.config.threading.get_intra_op_parallelism_threads()}, inter-op "
        f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF's default: all {os.cpu_count()} cores)"
    )
    pathlib.Path(result_path).write_text(json.dumps(timings), encoding="utf-8")
    return rc


def read_cleaned(path: str) -> tuple[list[str], list[int], int]:
    """Texts and labels of an NSMC-format file, split on tabs (no quoting), each text cleaned with
    KcBERT's ``clean()``, empty ones dropped (as ``read_examples`` does); and how many were dropped."""
    from kcbert_tf.text.cleaning import clean

    lines = pathlib.Path(path).read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    text_at, label_at = header.index("document"), header.index("label")
    texts, labels, empty = [], [], 0
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split("\t")
        text = clean(fields[text_at])
        if not text:
            empty += 1
            continue
        texts.append(text)
        labels.append(int(fields[label_at]))
    return texts, labels, empty


#: How the transformers side batches (a seeded shuffled DataLoader, every example once per epoch,
#: the last batch partial): "max_length" (every batch padded to the max length, as this parity
#: benchmark has always compared), "longest" (each batch padded to its longest row by
#: ``DataCollatorWithPadding``: how a transformers user fine-tunes) or "group_by_length" (the same
#: with transformers' ``LengthGroupedSampler``, which ``TrainingArguments(group_by_length=True)`` uses).
PADDINGS = ("max_length", "longest", "group_by_length")


def worker_transformers(hf_dir: str, train_path: str, eval_path: str, epochs: int, result_path: str, *,
                        padding: str = "max_length", learning_rate: float = LEARNING_RATE,
                        batch_size: int = BATCH_SIZE, max_length: int = MAX_LENGTH,
                        seeds: list[int] = (TRAIN_SEED,)) -> int:
    """transformers' fine-tuning: BertForSequenceClassification in a plain PyTorch loop, once per
    seed of ``seeds`` (the head's initialisation, the batch order and dropout), in turn."""
    import numpy as np
    import torch
    import transformers
    from sklearn.metrics import accuracy_score, f1_score
    from torch.utils.data import DataLoader
    from transformers import AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding, get_linear_schedule_with_warmup
    from transformers.trainer_pt_utils import LengthGroupedSampler

    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    fixed = padding == "max_length"

    def encode(path):
        texts, labels, empty = read_cleaned(path)
        batch = tokenizer(texts, truncation=True, max_length=max_length, padding="max_length" if fixed else False)
        rows = [{"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": label}
                for ids, mask, types, label in zip(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels)]
        return rows, empty

    train, train_empty = encode(train_path)
    evaluation, eval_empty = encode(eval_path)
    collate = DataCollatorWithPadding(tokenizer, padding="longest", return_tensors="pt")
    eval_loader = DataLoader(evaluation, batch_size=batch_size, shuffle=False, collate_fn=collate)
    padded_ids = [0, 0]  # computed, real

    def counting(batches):
        for batch in batches:
            padded_ids[0] += batch["attention_mask"].numel()
            padded_ids[1] += int(batch["attention_mask"].sum())
            yield batch

    def evaluate(model) -> dict:
        model.eval()
        predictions, targets = [], []
        with torch.no_grad():
            for batch in eval_loader:
                labels = batch.pop("labels")
                predictions.append(model(**batch).logits.argmax(-1).numpy())
                targets.append(labels.numpy())
        model.train()
        predicted, targets = np.concatenate(predictions), np.concatenate(targets)
        return {"accuracy": float(accuracy_score(targets, predicted)),
                "macro_f1": float(f1_score(targets, predicted, average="macro"))}

    def one_seed(seed: int) -> dict:
        torch.manual_seed(seed)
        model = BertForSequenceClassification.from_pretrained(hf_dir, num_labels=2)
        generator = torch.Generator().manual_seed(seed)
        if padding == "group_by_length":
            sampler = LengthGroupedSampler(batch_size, lengths=[len(row["input_ids"]) for row in train],
                                           generator=generator)
            loader = DataLoader(train, batch_size=batch_size, sampler=sampler, collate_fn=collate)
        else:
            loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=collate)
        total = len(loader) * epochs
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, eps=ADAM_EPSILON, weight_decay=0.0)
        schedule = get_linear_schedule_with_warmup(optimizer, 0, total)
        epochs_out, fit_seconds, eval_seconds = [], 0.0, 0.0
        model.train()
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            losses = torch_train_epoch(model, counting(loader), optimizer, schedule)
            fit_seconds += time.perf_counter() - start
            start = time.perf_counter()
            epochs_out.append({"epoch": epoch, "train_loss": float(np.mean(losses)), **evaluate(model)})
            eval_seconds += time.perf_counter() - start
            print(f"transformers seed {seed} epoch {epoch}: {epochs_out[-1]}", file=sys.stderr, flush=True)
        best = max(epochs_out, key=lambda row: row["accuracy"])  # the first of equals, as ours
        return {"seed": seed, "epochs": epochs_out, "best": best, "fit": fit_seconds, "eval": eval_seconds,
                "steps": total}

    runs = [one_seed(seed) for seed in seeds]
    result = {
        # The first seed's epochs and best (what a one-seed caller, such as finetune_speed, reads),
        # the times and steps of all the seeds together, and every seed's run.
        "epochs": runs[0]["epochs"], "best": runs[0]["best"], "runs": runs,
        "fit": sum(run["fit"] for run in runs), "eval": sum(run["eval"] for run in runs),
        "steps": sum(run["steps"] for run in runs),
        "train_examples": len(train), "eval_examples": len(evaluation), "padding": padding,
        "computed_per_real_id": padded_ids[0] / max(padded_ids[1], 1), "in_process": time.perf_counter() - started,
        "skipped_empty": {"train": train_empty, "eval": eval_empty},
        "threads": f"torch intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()} (torch's defaults)",
    }
    pathlib.Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


# --- the driver ---------------------------------------------------------------------------------


def run_ours(work: pathlib.Path, hf_dir: pathlib.Path, train: pathlib.Path, evaluation: pathlib.Path, epochs: int,
             seeds: list[int]) -> dict:
    """Our side: ``finetune --init HF_DIR --seeds ...`` (or ``import-hf`` then ``finetune``); timings
    and metrics, each seed's from its ``seed-N/metrics.json`` (``--keep-each-seed``)."""
    whole, init, imported = 0.0, hf_dir, False
    if not finetune_takes_hf_directory():
        init, imported = work / "ours-imported", True
        rc, seconds = run_process([sys.executable, "-m", "kcbert_tf.cli", "import-hf", "--input", str(hf_dir),
                                   "--output", str(init)], work / "ours-import-hf.log")
        whole += seconds
        if rc:
            return {"failed": f"import-hf exited {rc}:\n{tail(work / 'ours-import-hf.log')}"}
    output, timings_path = work / "ours-finetuned", work / "ours-timings.json"
    argv = ["--task", "nsmc", "--train", str(train), "--eval", str(evaluation), "--init", str(init),
            "--output", str(output), "--epochs", str(epochs), "--max-seq-length", str(MAX_LENGTH),
            "--batch-size", str(BATCH_SIZE), "--learning-rate", str(LEARNING_RATE),
            "--seeds", ",".join(map(str, seeds)), "--keep-each-seed"]
    rc, seconds = run_process([sys.executable, "-m", "benchmarks.finetune_parity", "--worker", "ours",
                               "--result", str(timings_path), "--", *argv], work / "ours-finetune.log")
    whole += seconds
    if rc or not (output / "metrics.json").exists():
        return {"failed": f"kcbert-tf finetune exited {rc}:\n{tail(work / 'ours-finetune.log')}"}
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    timings = json.loads(timings_path.read_text(encoding="utf-8"))
    runs = []
    for seed in seeds:
        each = json.loads((output / f"seed-{seed}" / "metrics.json").read_text(encoding="utf-8"))
        runs.append({"seed": seed, "epochs": each["epochs"], "best": each["best"]})
    steps = -(-metrics["train_examples"] // BATCH_SIZE) * epochs * len(seeds)  # every example once per epoch
    return {
        "runs": runs, "fit": timings["fit"] - timings["predict_in_fit"],
        "fit_with_eval": timings["fit"], "whole": whole, "steps": steps, "threads": timings["threads"],
        "train_examples": metrics["train_examples"], "eval_examples": metrics["eval_examples"],
        "skipped_empty": metrics["skipped_empty"], "init": "import-hf, then --init MODEL_DIR" if imported else "--init HF_DIR",
    }


def run_transformers(work: pathlib.Path, hf_dir: pathlib.Path, train: pathlib.Path, evaluation: pathlib.Path, epochs: int,
                     seeds: list[int]) -> dict:
    result_path, log = work / "transformers-result.json", work / "transformers.log"
    rc, whole = run_process([sys.executable, "-m", "benchmarks.finetune_parity", "--worker", "transformers",
                             "--result", str(result_path), "--hf-dir", str(hf_dir), "--train-file", str(train),
                             "--eval-file", str(evaluation), "--epochs", str(epochs),
                             "--seeds", ",".join(map(str, seeds))], log)
    if rc:
        return {"failed": f"the transformers worker exited {rc}:\n{tail(log)}"}
    return {**json.loads(result_path.read_text(encoding="utf-8")), "whole": whole}


def scores(result: dict, name: str, which: str = "best") -> list[float]:
    """``name`` of each seed's best (or ``"last"``) epoch."""
    return [(run["best"] if which == "best" else run["epochs"][-1])[name] for run in result["runs"]]


def report(results: dict, config: dict, args: argparse.Namespace) -> None:
    seeds = ", ".join(map(str, args.seeds))
    print(f"\nmodel {config['num_hidden_layers']}x{config['hidden_size']} ({config['num_attention_heads']} heads, "
          f"intermediate {config['intermediate_size']}, vocab {config['vocab_size']:,}, erf gelu, dropout 0.1), "
          f"random start from torch seed {args.seed}")
    print(f"NSMC sample split with seed {args.seed}: {args.train_size:,} train / {args.eval_size:,} eval rows; "
          f"max length {MAX_LENGTH}, batch {BATCH_SIZE}, lr {LEARNING_RATE:g}, {args.epochs} epoch(s) "
          f"(the preset has 8), AdamW eps {ADAM_EPSILON:g}, no weight decay, linear decay, no warmup, clip {CLIP_NORM}, "
          f"training seeds {seeds} on each side; {os.cpu_count()} CPU cores")
    for name, result in results.items():
        if "failed" in result:
            print(f"\n{name}: FAILED\n{result['failed']}")
            continue
        print(f"{name}: {result['train_examples']:,} train / {result['eval_examples']:,} eval examples after cleaning "
              f"(empty dropped: {result['skipped_empty']}); {result['threads']}"
              + (f"; start: {result['init']}" if "init" in result else ""))
    print(describe_processes())
    print()
    print(f"mean ± sd over the training seeds ({seeds}); fit and whole command: all the seeds together")
    print("| side | eval accuracy (best epoch) | per seed (best epoch) | final epoch | macro-F1 (best) | fit s "
          "| whole command s | steps/s |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, result in results.items():
        if "failed" in result:
            print(f"| {name} | failed | | | | | | |")
            continue
        each = ", ".join(f"{run['seed']}: {run['best']['accuracy']:.4f} ({run['best']['epoch']})" for run in result["runs"])
        print(f"| {name} | {mean_sd_text(scores(result, 'accuracy'))} | {each} | "
              f"{mean_sd_text(scores(result, 'accuracy', 'last'))} | {mean_sd_text(scores(result, 'macro_f1'))} | "
              f"{result['fit']:.1f} | {result['whole']:.1f} | {result['steps'] / result['fit']:.2f} |")
    print()
    for name, result in results.items():
        if "failed" not in result:
            for run in result["runs"]:
                print(f"{name}, seed {run['seed']}, per epoch: " + ", ".join(
                    f"{row['epoch']}: acc {row['accuracy']:.4f} loss {row['train_loss']:.4f}" for row in run["epochs"]))
    ours, theirs = results["kcbert-tf finetune"], results["transformers (PyTorch loop)"]
    if "failed" in ours or "failed" in theirs:
        print("\ngoal: not measured (a side failed)")
        return
    points = 100 * (mean_sd(scores(ours, "accuracy"))[0] - mean_sd(scores(theirs, "accuracy"))[0])
    fit_ratio, whole_ratio = theirs["fit"] / ours["fit"], theirs["whole"] / ours["whole"]
    print(f"\nour fit includes the in-graph tokenization and the first step's tracing; "
          f"with the per-epoch evaluation it took {ours['fit_with_eval']:.1f} s")
    print("accuracy difference (ours - transformers, means of the best epochs): "
          + difference_text(scores(ours, "accuracy"), scores(theirs, "accuracy")))
    print("accuracy difference (ours - transformers, means of the final epochs): "
          + difference_text(scores(ours, "accuracy", "last"), scores(theirs, "accuracy", "last")))
    print(f"speed ours/transformers: fit {fit_ratio:.2f}x, whole command {whole_ratio:.2f}x")
    met = abs(points) <= GOAL_POINTS and fit_ratio > 1 and whole_ratio > 1
    print(f"goal (mean accuracy within {GOAL_POINTS:g} point, and faster): {'met' if met else 'NOT met'} "
          f"(accuracy {'ok' if abs(points) <= GOAL_POINTS else 'off'}, fit {'faster' if fit_ratio > 1 else 'slower'}, "
          f"whole command {'faster' if whole_ratio > 1 else 'slower'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs for both sides (the preset's 8)")
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--eval-size", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="the random start and the data split")
    parser.add_argument("--seeds", type=parse_seeds, default=None,
                        help=f"the training seeds each side runs, the NSMC rows (default {DEFAULT_SEEDS}): the table "
                        "gives the mean ± sd over them")
    parser.add_argument("--keep", help="keep the start, the split, the outputs and the logs in this directory")
    parser.add_argument("--tasks", default="nsmc,ner,qa",
                        help="the rows: nsmc (this file), ner and qa (KLUE-NER and KorQuAD: benchmarks.parity_ner_qa)")
    # internal: one side in its own process
    parser.add_argument("--worker", choices=["ours", "transformers"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--hf-dir", help=argparse.SUPPRESS)
    parser.add_argument("--train-file", help=argparse.SUPPRESS)
    parser.add_argument("--eval-file", help=argparse.SUPPRESS)
    parser.add_argument("--padding", choices=PADDINGS, default="max_length", help=argparse.SUPPRESS)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "ours":
        return worker_ours(args.rest, args.result)
    if args.worker == "transformers":
        return worker_transformers(args.hf_dir, args.train_file, args.eval_file, args.epochs, args.result,
                                   padding=args.padding, learning_rate=args.learning_rate, batch_size=args.batch_size,
                                   seeds=args.seeds or [TRAIN_SEED])  # a caller without --seeds: the preset's
    args.seeds = args.seeds or parse_seeds(DEFAULT_SEEDS)


    tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    unknown = sorted(set(tasks) - {"nsmc", "ner", "qa"})
    if unknown:
        parser.error(f"--tasks: unknown {unknown}; choose from nsmc, ner, qa")
    if "nsmc" in tasks:
        _nsmc_rows(args)
    if {"ner", "qa"} & set(tasks):  # the token- and span-task rows, from their own module
        from benchmarks.parity_ner_qa import format_rows, ner_rows, qa_rows

        rows = []
        for task, make in (("ner", ner_rows), ("qa", qa_rows)):
            if task in tasks:
                print(f"running the {task} rows ...", file=sys.stderr, flush=True)
                rows += make(pathlib.Path(args.keep) / task if args.keep else None, layers=args.layers, hidden=args.hidden,
                             start_seed=args.seed)
        print("\n" + format_rows(rows))
    return 0


def _nsmc_rows(args) -> None:
    """The NSMC rows: the split, the start, both sides, the table."""
    if shared_data_absent(NSMC, VOCAB):
        return
    work = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="finetune-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        train, evaluation = write_split(work / "nsmc", train_size=args.train_size, eval_size=args.eval_size, seed=args.seed)
        hf_dir = work / "hf-start"
        hf_dir.mkdir(exist_ok=True)
        config = write_hf_start(hf_dir, args.layers, args.hidden, args.seed)
        results = {}
        for name, side in (("transformers (PyTorch loop)", run_transformers), ("kcbert-tf finetune", run_ours)):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = side(work, hf_dir, train, evaluation, args.epochs, args.seeds)
        report(results, config, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"\nkept: {work} (hf-start/, nsmc/, ours-finetuned/, logs *.log)")


if __name__ == "__main__":
    sys.exit(main())
