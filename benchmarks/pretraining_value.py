"""Benchmark: what a few minutes of pretraining on the shared comments are worth on NSMC.

Two arms of one small architecture (``--layers`` x ``--hidden``, the real 30,000-token KcBERT
vocab, erf GELU, 64 positions; `benchmarks.finetune_parity.small_config`), fine-tuned alike:

- pretrained: ``kcbert-tf preprocess`` on ``$KCBERT_TF_DATA/comments/news_comments.txt`` (24,000
  raw comments) → ``make-pretraining-data`` with the real vocab at ``--max-seq-length`` (8 shards,
  one of them held out for the MLM eval) → ``pretrain`` for ``--pretrain-steps`` from a training
  config written here (configs/pretrain-tiny.json with this run's batch, learning rate, warmup,
  checkpoint interval and eval split);
- random: a model directory of the same config with freshly initialised weights
  (``ModelDir.write(dir, config, vocab, build_model(config))``, Keras seeded with ``--seed``).

Both then run ``kcbert-tf finetune --task nsmc --seeds ...`` with the same settings (the nsmc
preset: max length 50, batch 64, lr 5e-5, AdamW eps 1e-8, no weight decay, linear decay, no warmup,
clipping 1.0; ``--finetune-epochs`` instead of the preset's 8, ``--finetune-lr`` one or more lrs,
each for both; once per training seed of ``--seeds``, default 1,2,3) on the same NSMC split as
`benchmarks.finetune_parity` (`benchmarks.nsmc_split`, the same seed and sizes).  Every stage runs
through ``kcbert_tf.cli.main``, in this process, one after the other.  Prints a table per arm
(pretraining steps and seconds, final MLM loss/accuracy, NSMC eval accuracy of the best epoch and
macro-F1 as mean ± sample sd over the seeds, each seed's accuracy, fine-tuning seconds of all the
seeds) and the gain in points (of the means), whether it exceeds the seeds' spread (is larger than
the two arms' sds added: the mean ± sd ranges do not overlap), beside KcBERT-Base's published 89.62.

    .venv/bin/python -m benchmarks.pretraining_value [--pretrain-steps 2000] [--layers 2] [--hidden 128]
        [--max-seq-length 64] [--pretrain-batch-size 64] [--pretrain-lr 1e-3] [--finetune-epochs 3]
        [--finetune-lr 5e-5 [2e-4 ...]] [--seeds 1,2,3] [--train-size 8000] [--eval-size 2000] [--seed 0]
        [--keep DIR]

With ``--keep DIR`` holding an earlier run whose pretraining finished (the same ``--pretrain-steps``),
the pretrained arm is reused and only the fine-tuning runs again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kcbert_tf.config_files import resolve_config  # noqa: E402

from benchmarks.finetune_parity import (  # noqa: E402
    DEFAULT_SEEDS, difference_text, mean_sd, mean_sd_text, parse_seeds, small_config,
)
from benchmarks.nsmc_split import COMMENTS, NSMC, VOCAB, shared_data_absent, write_split  # noqa: E402
from benchmarks.work_directory import work_directory  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARDS, HELD_OUT_FRACTION, MLM_EVAL_STEPS = 8, 0.125, 10
KCBERT_BASE_NSMC = 89.62
#: "Wins clearly": by at least this many points of accuracy.  On 2,000 eval examples one accuracy
#: has a standard error of about 1.1 points (at 0.5-0.75), so 2 points is about twice the noise.
CLEAR_WIN_POINTS = 2.0


class CommandFailed(RuntimeError):
    pass


def kcbert_tf(*argv: str) -> float:
    """``kcbert-tf ARGV`` through the CLI entry, in this process; its wall seconds.  A non-zero
    exit status is raised (the command printed why)."""
    from kcbert_tf.cli import main as cli

    print(f"\n$ kcbert-tf {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    rc = cli(list(argv))
    seconds = time.perf_counter() - start
    if rc:
        raise CommandFailed(f"kcbert-tf {argv[0]} exited with status {rc} (its message is above)")
    return seconds


def write_train_config(path: pathlib.Path, *, steps: int, batch_size: int, learning_rate: float, seed: int) -> dict:
    """configs/pretrain-tiny.json with this run's budget: warmup 10%, a checkpoint (and a log
    line) every 10%, one MLM eval at the end on the held-out shard."""
    recipe = json.loads(pathlib.Path(resolve_config("pretrain-tiny", flag="--train-config")).read_text(encoding="utf-8"))
    recipe.pop("_comment", None)
    interval = max(1, steps // 10)
    recipe.update(
        batch_size=batch_size, train_steps=steps, learning_rate=learning_rate, warmup_steps=max(1, steps // 10),
        checkpoint_every=interval, keep_checkpoints=1, eval_every=steps, eval_steps=MLM_EVAL_STEPS,
        eval_file_fraction=HELD_OUT_FRACTION, log_every=interval, shuffle_buffer=10_000, seed=seed,
    )
    path.write_text(json.dumps(recipe, indent=2), encoding="utf-8")
    return recipe


def write_random_model(directory: pathlib.Path, config_path: pathlib.Path, seed: int) -> None:
    """A model directory of the config with freshly initialised weights (Keras seeded)."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.text.vocab import read_vocab

    keras.utils.set_random_seed(seed)
    config = BertConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    ModelDir.write(str(directory), config, read_vocab(str(VOCAB)), build_model(config))


def pretrain_arm(work: pathlib.Path, config_path: pathlib.Path, args: argparse.Namespace) -> dict:
    """preprocess → make-pretraining-data → pretrain; the model directory and what was measured."""
    cleaned, packed, model_dir = work / "cleaned", work / "pretraining", work / "pretrained"
    seconds_file = work / "pretraining-seconds.json"
    state_file = model_dir / "training_state.json"
    if state_file.exists() and json.loads(state_file.read_text(encoding="utf-8"))["steps"] == args.pretrain_steps:
        # A --keep directory of an earlier run that finished pretraining: its arm is reused.
        print(f"\nreusing the pretrained arm in {work} ({args.pretrain_steps} steps done)", flush=True)
        seconds = (json.loads(seconds_file.read_text(encoding="utf-8")) if seconds_file.exists()
                   else dict.fromkeys(("preprocess", "make-pretraining-data", "pretrain"), float("nan")))
    else:
        seconds = {"preprocess": kcbert_tf("preprocess", "--input", str(COMMENTS), "--output", str(cleaned), "--overwrite")}
        seconds["make-pretraining-data"] = kcbert_tf(
            "make-pretraining-data", "--input", str(cleaned), "--vocab", str(VOCAB.parent), "--output", str(packed),
            "--max-seq-length", str(args.max_seq_length), "--num-shards", str(SHARDS), "--seed", str(args.seed), "--overwrite",
        )
        train_config = work / "pretrain-config.json"
        write_train_config(train_config, steps=args.pretrain_steps, batch_size=args.pretrain_batch_size,
                           learning_rate=args.pretrain_lr, seed=args.seed)
        shutil.rmtree(model_dir, ignore_errors=True)
        seconds["pretrain"] = kcbert_tf(
            "pretrain", "--config", str(config_path), "--data", str(packed), "--model-dir", str(model_dir),
            "--train-config", str(train_config),
        )
        seconds_file.write_text(json.dumps(seconds), encoding="utf-8")
    cleaned_stats = json.loads((cleaned / "stats.json").read_text(encoding="utf-8"))
    packed_stats = json.loads((packed / "stats.json").read_text(encoding="utf-8"))
    state = json.loads((model_dir / "training_state.json").read_text(encoding="utf-8"))
    return {"model_dir": model_dir, "seconds": seconds, "cleaned": cleaned_stats, "packed": packed_stats, "state": state}


def finetune(work: pathlib.Path, name: str, init: pathlib.Path, train: pathlib.Path, evaluation: pathlib.Path,
             epochs: int, learning_rate: float, seeds: list[int]) -> dict:
    """``finetune --task nsmc --seeds ...`` from ``init``; its metrics.json (with its "seeds"
    summary), each seed's epochs (``seed-N/metrics.json``) and the wall seconds of all the seeds."""
    output = work / f"nsmc-{name}-lr{learning_rate:g}"
    seconds = kcbert_tf(
        "finetune", "--overwrite", "--task", "nsmc", "--train", str(train), "--eval", str(evaluation), "--init", str(init),
        "--output", str(output), "--epochs", str(epochs), "--learning-rate", str(learning_rate),
        "--seeds", ",".join(map(str, seeds)), "--keep-each-seed",
    )
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    each = {seed: json.loads((output / f"seed-{seed}" / "metrics.json").read_text(encoding="utf-8"))["epochs"]
            for seed in seeds}
    return {**metrics, "each_seed_epochs": each, "seconds": seconds}


def seed_scores(metrics: dict, name: str) -> list[float]:
    """``name`` of each seed's best epoch."""
    return [run["best"][name] for run in metrics["seeds"]["runs"]]


def report(arms: dict, pretrained: dict, config: dict, args: argparse.Namespace) -> None:
    """``arms``: {(arm, fine-tuning lr): metrics}, arm "pretrained" or "random"."""
    packed, cleaned, state = pretrained["packed"], pretrained["cleaned"], pretrained["state"]
    history = state["history"]
    train_config = state["train_config"]
    sequences_seen = state["steps"] * train_config["batch_size"]
    held_out_files = max(1, math.ceil(SHARDS * HELD_OUT_FRACTION))
    print(f"\nmodel {config['num_hidden_layers']}x{config['hidden_size']} ({config['num_attention_heads']} heads, "
          f"intermediate {config['intermediate_size']}, vocab {config['vocab_size']:,}, erf gelu), the same for both arms")
    print(f"pretraining data: {cleaned['kept']:,} of {cleaned['lines_read']:,} comments kept by preprocess "
          f"({pretrained['seconds']['preprocess']:.1f} s) -> {packed['sequences']:,} sequences of {args.max_seq_length} ids, "
          f"fill {packed['fill_ratio']:.1%}, [UNK] {packed['unk_rate']:.2%} ({pretrained['seconds']['make-pretraining-data']:.1f} s); "
          f"{held_out_files} of {SHARDS} shards held out for the MLM eval")
    print(f"pretraining: {state['steps']:,} steps of {train_config['batch_size']} sequences "
          f"(~{sequences_seen / max(1, packed['sequences']):.0f} passes over the data), peak lr {train_config['learning_rate']:g}, "
          f"warmup {train_config['warmup_steps']}, weight decay {train_config['weight_decay']}, on {state['device']}")
    first = next(iter(arms.values()))
    seeds = ", ".join(map(str, args.seeds))
    print(f"fine-tuning (both arms alike): nsmc preset, {args.finetune_epochs} epoch(s) (the preset has 8), "
          f"lr {', '.join(f'{lr:g}' for lr in args.finetune_lr)} (the preset: 5e-5), training seeds {seeds}, "
          f"NSMC split seed {args.seed}: {first['train_examples']:,} train / {first['eval_examples']:,} eval examples")
    chance = math.log(config["vocab_size"])
    print()
    print(f"NSMC scores: mean ± sd over the training seeds ({seeds}) of each seed's best epoch; fine-tuning s: all the seeds")
    print("| arm | pretraining steps | pretraining s | final MLM loss / acc (train) | MLM loss / acc (held out) "
          "| fine-tuning lr | NSMC eval acc (best epochs) | per seed (best epoch) | macro-F1 | fine-tuning s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for (name, lr), metrics in arms.items():
        if name == "pretrained":
            steps, seconds = f"{state['steps']:,}", f"{pretrained['seconds']['pretrain']:.1f}"
            train_mlm = f"{history['loss'][-1]:.3f} / {history['accuracy'][-1]:.3f}"
            held_out = (f"{history['val_loss'][-1]:.3f} / {history['val_accuracy'][-1]:.3f}"
                        if history.get("val_loss") else "-")
        else:
            steps, seconds, train_mlm, held_out = "0", "0", f"(chance: ln {config['vocab_size']:,} = {chance:.2f})", "-"
        each = ", ".join(f"{run['seed']}: {run['best']['accuracy']:.4f} ({run['best']['epoch']})"
                         for run in metrics["seeds"]["runs"])
        print(f"| {name} | {steps} | {seconds} | {train_mlm} | {held_out} | {lr:g} | "
              f"{mean_sd_text(seed_scores(metrics, 'accuracy'))} | {each} | {mean_sd_text(seed_scores(metrics, 'macro_f1'))} "
              f"| {metrics['seconds']:.1f} |")
    print()
    for (name, lr), metrics in arms.items():
        for seed, epochs in metrics["each_seed_epochs"].items():
            print(f"{name}, lr {lr:g}, seed {seed}, per epoch: "
                  + ", ".join(f"{row['epoch']}: acc {row['accuracy']:.4f}" for row in epochs))
    total = sum(pretrained["seconds"].values())
    print(f"\npretraining cost: {total / 60:.1f} min of preprocess + make-pretraining-data + pretrain on {os.cpu_count()} CPU cores")
    for lr in args.finetune_lr:
        pretrained_scores = seed_scores(arms[("pretrained", lr)], "accuracy")
        random_scores = seed_scores(arms[("random", lr)], "accuracy")
        gain = 100 * (mean_sd(pretrained_scores)[0] - mean_sd(random_scores)[0])
        verdict = "met" if gain >= CLEAR_WIN_POINTS else "NOT met"
        print(f"gain from pretraining at fine-tuning lr {lr:g} (NSMC accuracy, means of the best epochs over the seeds): "
              + difference_text(pretrained_scores, random_scores)
              + f"; goal (the pretrained start wins by >= {CLEAR_WIN_POINTS:g} points on the means): {verdict}")
    print(f"for scale: KcBERT-Base scores {KCBERT_BASE_NSMC} on the full NSMC test set; it was pretrained on the "
          f"full 12.5 GB comment corpus for days on a TPU v3-8 (12x768, 300 positions) and fine-tuned for 8 epochs "
          f"on NSMC's 150,000 training reviews")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--pretrain-batch-size", type=int, default=64)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--max-seq-length", type=int, default=64, help="pretraining sequence length (<= 64 positions)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--finetune-lr", type=float, nargs="+", default=[5e-5],
                        help="one or more learning rates, each for both arms (the nsmc preset's 5e-5)")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds(DEFAULT_SEEDS),
                        help=f"the fine-tuning seeds each arm runs (default {DEFAULT_SEEDS}): the table gives the mean "
                        "± sd over them")
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--eval-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="the NSMC split, the data's packing, pretraining, the random arm")
    parser.add_argument("--keep", help="keep every stage's output in this directory")
    args = parser.parse_args(argv)

    if shared_data_absent(COMMENTS, NSMC, VOCAB):
        return 0
    vocab_size = len(VOCAB.read_text(encoding="utf-8").splitlines())
    config = small_config(args.layers, args.hidden, vocab_size)
    if args.max_seq_length > config["max_position_embeddings"]:
        parser.error(f"--max-seq-length {args.max_seq_length} exceeds the config's {config['max_position_embeddings']} positions")
    with work_directory(args.keep, "pretraining-value-") as work:
        try:
            return _run(work, config, args)
        except CommandFailed as error:
            print(f"\nFAILED: {error}")
            return 1


def _run(work: pathlib.Path, config: dict, args: argparse.Namespace) -> int:
    """The arms, their fine-tuning and the report, in ``work``."""
    config_path = work / "model-config.json"
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    train, evaluation = write_split(work / "nsmc", train_size=args.train_size, eval_size=args.eval_size, seed=args.seed)
    pretrained = pretrain_arm(work, config_path, args)
    random_dir = work / "random-init"
    shutil.rmtree(random_dir, ignore_errors=True)
    write_random_model(random_dir, config_path, args.seed)
    arms = {}
    for lr in args.finetune_lr:
        for name, init in (("pretrained", pretrained["model_dir"]), ("random", random_dir)):
            arms[(name, lr)] = finetune(work, name, init, train, evaluation, args.finetune_epochs, lr, args.seeds)
    report(arms, pretrained, config, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
