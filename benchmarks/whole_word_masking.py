"""Benchmark: what whole-word (eojeol) masking buys a small model pretrained on the shared comments.

Two arms that differ only in `pretrain --whole-word-mask`: the same small architecture
(``--layers`` x ``--hidden``, the real 30,000-token KcBERT vocab, erf GELU, 64 positions;
`benchmarks.parity_common.small_config`), the same records (``kcbert-tf preprocess`` on
``$KCBERT_TF_DATA/comments/news_comments.txt``, then ``make-pretraining-data`` with the real vocab at
64 ids, one of 8 shards held out for the MLM eval), the same training config, seed and budget
(``--pretrain-steps`` of ``--pretrain-batch-size``):

- token: KcBERT's masking, each token drawn on its own (the default);
- whole-word: a piece and its ``##`` pieces masked together (15% of the tokens, by whole words).

Each arm is then fine-tuned with every seed of ``--seeds`` on three of the card's tasks, with the
same settings for both arms:

- NSMC: `benchmarks.nsmc_split` (``--nsmc-train`` / ``--nsmc-eval`` rows, split seed 0), 2 epochs,
  lr 1e-4, the nsmc preset otherwise (max length 50, batch 64);
- KLUE-NER: the slices of `benchmarks.parity_ner_qa` (sentences 1-1,500 train, 3,001-3,400 eval),
  3 epochs, lr 5e-4, batch 32, max length 50;
- KorQuAD: KorQuAD 1.0 dev split in memory by article (``--eval-split 0.1``), the first 600
  answerable training questions, 2 epochs, lr 5e-4, batch 16, max length 64 (the model's
  positions), stride 32, question <= 24 tokens.

Every stage runs as its own ``python -m kcbert_tf.cli`` process (logs beside its output).  The
report gives each task's score per seed, mean ± sd (sample sd) per arm, the difference of the
means and its standard error (sqrt(sd_a^2/n + sd_b^2/n)), and says whether the difference is above
twice that (the spread).

    .venv/bin/python -m benchmarks.whole_word_masking [--pretrain-steps 1000] [--seeds 1,2,3]
        [--tasks nsmc,ner,qa] [--layers 2] [--hidden 128] [--keep DIR]

With ``--keep DIR`` every finished stage (the data, each arm's pretraining, each fine-tuning run) is
reused when run again: an interrupted run continues.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.nsmc_split import COMMENTS, NSMC, VOCAB, shared_data_absent, write_split  # noqa: E402
from benchmarks.finetune_parity import parse_seeds  # noqa: E402
from benchmarks.parity_common import CommandFailed, run_kcbert_tf, small_config  # noqa: E402
from benchmarks.parity_ner_qa import KLUE_NER, KORQUAD, NerSettings, write_klue_slices  # noqa: E402
from benchmarks.pretraining_value import SHARDS, write_train_config  # noqa: E402
from benchmarks.work_directory import work_directory  # noqa: E402

ARMS = {"token": (), "whole-word": ("--whole-word-mask",)}
#: task → (its flags for `finetune` beyond --train/--eval/--init/--seed, the score reported, the
#: factor that makes it points: KorQuAD's F1 is in points already)
TASKS = {
    "nsmc": (("--task", "nsmc", "--epochs", "2", "--learning-rate", "1e-4"), "accuracy", 100),
    "ner": (("--task", "klue-ner", "--epochs", "3", "--learning-rate", "5e-4", "--batch-size", "32",
             "--max-seq-length", "50"), "f1", 100),
    "qa": (("--task", "korquad", "--train", str(KORQUAD), "--eval-split", "0.1", "--limit-train", "600",
            "--epochs", "2", "--learning-rate", "5e-4", "--batch-size", "16", "--max-seq-length", "64",
            "--doc-stride", "32", "--max-query-length", "24"), "f1", 1),
}


def prepare_records(work: pathlib.Path, max_seq_length: int, seed: int, shards: int = SHARDS) -> pathlib.Path:
    """The shared comments through preprocess → make-pretraining-data with the real vocab, into
    ``work/pretraining`` (once: reused when done)."""
    cleaned, packed = work / "cleaned", work / "pretraining"
    if not (packed / "stats.json").exists():
        run_kcbert_tf(work / "preprocess.log", "preprocess", "--input", str(COMMENTS), "--output", str(cleaned),
                      "--overwrite")
        run_kcbert_tf(work / "make-pretraining-data.log", "make-pretraining-data", "--input", str(cleaned), "--vocab",
                      str(VOCAB.parent), "--output", str(packed), "--max-seq-length", str(max_seq_length),
                      "--num-shards", str(shards), "--seed", str(seed), "--overwrite")
    return packed


def pretrain_arm(work: pathlib.Path, arm: str, config: pathlib.Path, records: pathlib.Path, train_config: pathlib.Path,
                 steps: int) -> dict:
    """``pretrain`` one arm (reused when it finished); its training state and seconds."""
    model_dir = work / arm / "pretrained"
    state_file = model_dir / "training_state.json"
    if not (state_file.exists() and json.loads(state_file.read_text(encoding="utf-8"))["steps"] == steps):
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        seconds = run_kcbert_tf(work / arm / "pretrain.log", "pretrain", "--config", str(config), "--data",
                                str(records), "--model-dir", str(model_dir), "--train-config", str(train_config),
                                *ARMS[arm]).wall_seconds
        (work / arm / "pretrain-seconds.json").write_text(json.dumps(seconds), encoding="utf-8")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    seconds_file = work / arm / "pretrain-seconds.json"
    state["seconds"] = json.loads(seconds_file.read_text(encoding="utf-8")) if seconds_file.exists() else float("nan")
    return state


def finetune_arm(work: pathlib.Path, arm: str, task: str, seeds: list[int], files: tuple[str, ...]) -> dict:
    """``finetune --seeds`` the arm's pretrained model on ``task`` (reused when done with these
    seeds); the ``"seeds"`` section of its metrics.json (each seed's best, mean and sd)."""
    output = work / arm / task
    metrics = output / "metrics.json"
    seeds_text = ",".join(map(str, seeds))
    if not (metrics.exists() and json.loads(metrics.read_text(encoding="utf-8"))["seeds"]["seeds"] == seeds):
        run_kcbert_tf(work / arm / f"{task}.log", "finetune", *TASKS[task][0], *files, "--init",
                      str(work / arm / "pretrained"), "--output", str(output), "--overwrite", "--seeds", seeds_text)
    return json.loads(metrics.read_text(encoding="utf-8"))["seeds"]

def report(states: dict, results: dict, seeds: list[int], config: dict, args: argparse.Namespace) -> str:
    """The tables: pretraining per arm, then per task each arm's scores, mean ± sd, and the
    difference against its standard error."""
    lines = [f"model {config['num_hidden_layers']}x{config['hidden_size']}, vocab {config['vocab_size']:,}, "
             f"{args.pretrain_steps} pretraining steps of {args.pretrain_batch_size} x {args.max_seq_length} ids, "
             f"lr {args.pretrain_lr:g}, data seed {args.seed}; fine-tuning seeds {', '.join(map(str, seeds))}", "",
             "| arm | MLM loss / acc (train, last interval) | MLM loss / acc (held out) | pretraining s |",
             "| --- | ---: | ---: | ---: |"]
    for arm, state in states.items():
        history = state["history"]
        held_out = (f"{history['val_loss'][-1]:.3f} / {history['val_accuracy'][-1]:.3f}"
                    if history.get("val_loss") else "-")
        lines.append(f"| {arm} | {history['loss'][-1]:.3f} / {history['accuracy'][-1]:.3f} | {held_out} | "
                     f"{state['seconds']:.0f} |")
    lines += ["", "(each arm's MLM numbers are on its own masks: whole words or single tokens)", "",
              "| task (score, points) | arm | per seed | mean ± sd |", "| --- | --- | --- | ---: |"]
    verdicts = []
    for task, by_arm in results.items():
        _, metric, points = TASKS[task]
        means = {}
        for arm, summary in by_arm.items():
            scores = [points * run["best"][metric] for run in summary["runs"]]
            mean, sd = points * summary["mean"][metric], points * (summary["sd"][metric] or 0.0)
            means[arm] = (mean, sd, len(scores))
            lines.append(f"| {task} ({metric}) | {arm} | {', '.join(f'{score:.2f}' for score in scores)} | "
                         f"{mean:.2f} ± {sd:.2f} |")
        (mean_t, sd_t, n_t), (mean_w, sd_w, n_w) = means["token"], means["whole-word"]
        difference, error = mean_w - mean_t, math.sqrt(sd_t ** 2 / n_t + sd_w ** 2 / n_w)
        above = error > 0 and abs(difference) > 2 * error
        verdicts.append(f"{task}: whole-word - token = {difference:+.2f} points, standard error {error:.2f}: "
                        + ("above the spread (> 2 standard errors)" if above else "within the spread"))
    return "\n".join(lines + [""] + verdicts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=1000)
    parser.add_argument("--pretrain-batch-size", type=int, default=64)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seeds", default="1,2,3", help="fine-tuning seeds, comma-separated")
    parser.add_argument("--tasks", default="nsmc,ner,qa", help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--nsmc-train", type=int, default=4000)
    parser.add_argument("--nsmc-eval", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the data's packing, pretraining, the NSMC split")
    parser.add_argument("--keep", help="keep (and reuse) every stage's output in this directory")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    tasks = [task for task in args.tasks.split(",") if task]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"--tasks: unknown {unknown}; known: {sorted(TASKS)}")
    needed = [COMMENTS, VOCAB] + [{"nsmc": NSMC, "ner": KLUE_NER, "qa": KORQUAD}[task] for task in tasks]
    if shared_data_absent(*needed):
        return 0
    config = small_config(args.layers, args.hidden, len(VOCAB.read_text(encoding="utf-8").splitlines()))
    with work_directory(args.keep, "whole-word-masking-") as work:
        return _run(work, config, seeds, tasks, args)


def _run(work: pathlib.Path, config: dict, seeds: list[int], tasks: list[str], args: argparse.Namespace) -> int:
    try:
        config_path, train_config = work / "model-config.json", work / "pretrain-config.json"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        write_train_config(train_config, steps=args.pretrain_steps, batch_size=args.pretrain_batch_size,
                           learning_rate=args.pretrain_lr, seed=args.seed)
        records = prepare_records(work, args.max_seq_length, args.seed)
        states = {arm: pretrain_arm(work, arm, config_path, records, train_config, args.pretrain_steps) for arm in ARMS}
        files = {}
        if "nsmc" in tasks:
            train, evaluation = write_split(work / "nsmc", train_size=args.nsmc_train, eval_size=args.nsmc_eval, seed=args.seed)
            files["nsmc"] = ("--train", str(train), "--eval", str(evaluation))
        if "ner" in tasks:
            (work / "klue-ner").mkdir(exist_ok=True)
            train, evaluation = write_klue_slices(work / "klue-ner", NerSettings())
            files["ner"] = ("--train", str(train), "--eval", str(evaluation))
        files["qa"] = ()
        results = {task: {arm: finetune_arm(work, arm, task, seeds, files[task]) for arm in ARMS} for task in tasks}
        table = report(states, results, seeds, config, args)
        print("\n" + table)
        (work / "report.md").write_text(table + "\n", encoding="utf-8")
    except CommandFailed as error:
        print(f"\nFAILED: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
