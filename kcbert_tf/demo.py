"""``kcbert-tf demo`` (``make demo``): every stage of the system on the project's demo corpus.

preprocess → train-tokenizer → make-pretraining-data → pretrain a tiny model → export-hf (and
transformers reloads it) → fill-mask → finetune a sentiment classifier on a small labelled sample
→ predict new sentences → export the classifier (transformers reloads it as
``BertForSequenceClassification``) → export it as a SavedModel on raw text and serve the new
sentences with it.  Each stage runs through the same ``run(argv)`` the
``kcbert-tf`` subcommand runs; at the end a table gives each stage's output, its key number and
its seconds.  Part of the command layer: it calls the library and the Beam jobs, nothing imports
it.

The inputs are the project's own: ``kcbert_tf/resources/demo_comments.txt`` (786 comments
written with the noise real ones have) and ``demo_sentiment_train.tsv`` / ``_eval.tsv`` (128
short labelled reviews).  Everything goes to ``--output`` (default ``demo-output/``), which the
demo empties first.  Run it on real data with ``--corpus ../shared/data/comments/news_comments.txt
--labelled ../shared/data/nsmc/train.txt`` (``make demo CORPUS=… LABELLED=…``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from importlib import resources
from typing import Sequence

__all__ = ["run"]

NEW_SENTENCES = ["이 영화 진짜 최고였다 또 보고싶다", "시간 아깝다 완전 실망", "배우 연기가 너무 어색하다", "음악이 감동이라 눈물남"]


def _resource(name: str) -> str:
    return str(resources.files("kcbert_tf") / "resources" / name)


def _split(source: str, train: str, evaluation: str, eval_share: float = 0.1, seed: int = 0) -> tuple[str, str]:
    """Split a labelled file (header kept in both) into train and eval lines, shuffled with ``seed``."""
    import random

    with open(source, encoding="utf-8") as handle:
        header, *rows = [line for line in handle.read().split("\n") if line.strip()]
    random.Random(seed).shuffle(rows)
    cut = max(1, int(len(rows) * eval_share))
    for target, part in ((evaluation, rows[:cut]), (train, rows[cut:])):
        with open(target, "w", encoding="utf-8") as handle:
            handle.write("\n".join([header, *part]) + "\n")
    return train, evaluation


def _predicted(path: str) -> list[str]:
    """The ``predicted`` column of a predictions file."""
    with open(path, encoding="utf-8") as handle:
        header, *lines = handle.read().splitlines()
    at = header.split("\t").index("predicted")
    return [line.split("\t")[at] or "-" for line in lines]


def _serve(export_dir: str, sentences_file: str) -> list[str]:
    """The SavedModel's labels for the new sentences, raw text in (what TF Serving would do)."""
    import tensorflow as tf

    with open(sentences_file, encoding="utf-8") as handle:
        texts = handle.read().split("\n")[1:-1]
    served = tf.saved_model.load(export_dir).signatures["serving_default"](text=tf.constant(texts))
    return [label.decode("utf-8") for label in served["label"].numpy()]


def run(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="kcbert-tf demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="the demo's directory (emptied first)")
    parser.add_argument("--corpus", default=_resource("demo_comments.txt"), help="raw comments, one a line")
    parser.add_argument("--labelled-train", default=_resource("demo_sentiment_train.tsv"),
                        help="NSMC-format (document, label) training file for the fine-tuning stage")
    parser.add_argument("--labelled-eval", default=_resource("demo_sentiment_eval.tsv"))
    parser.add_argument("--labelled", default=None,
                        help="one NSMC-format file instead of the two: split 90/10 with a fixed seed "
                        "(e.g. ../shared/data/nsmc/train.txt)")
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--vocab-size", type=int, default=3000)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    args = parser.parse_args(argv)

    from beam_jobs import batch_predict, clean_dedup, pretraining_data
    from kcbert_tf.conversion import hugging_face, saved_model
    from kcbert_tf.inference import fill_mask, predict
    from kcbert_tf.training import vocab_training
    from kcbert_tf.tasks import finetuning
    from kcbert_tf.training import pretraining

    out = args.output
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
    table: list[dict] = []

    def stage(name: str, output: str, work, key) -> object:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        result = work()
        table.append({"stage": name, "output": output, "key": key(result), "seconds": time.perf_counter() - started})
        return result

    stage("preprocess", path("cleaned"),
          lambda: clean_dedup.run(["--input", args.corpus, "--output", path("cleaned")]),
          lambda s: f"{s['kept']:,} of {s['lines_read']:,} lines kept")
    stage("train-tokenizer", path("vocab"),
          lambda: vocab_training.run(["--input", path("cleaned", "*.tfrecord"), "--output", path("vocab"),
                                      "--vocab-size", str(args.vocab_size), "--limit-alphabet", "1000"]),
          lambda s: f"{s['vocab_size']:,} tokens, [UNK] {s['unk_rate']:.2%}")
    stage("make-pretraining-data", path("pretraining"),
          lambda: pretraining_data.run(["--input", path("cleaned"), "--vocab", path("vocab"), "--output",
                                        path("pretraining"), "--max-seq-length", "128"]),
          lambda s: f"{s['sequences']:,} sequences of 128, fill {s['fill_ratio']:.1%}")
    stage("pretrain", path("model"),
          lambda: pretraining.run(["--config", "kcbert-tiny", "--data", path("pretraining"), "--model-dir", path("model"),
                                   "--train-config", "pretrain-tiny",  # packaged configs: any directory
                                   "--steps", str(args.pretrain_steps), "--warmup-steps", str(args.pretrain_steps // 10)]),
          lambda s: f"MLM loss {s['first_log'].get('loss', float('nan')):.2f} -> {s['history']['loss'][-1]:.2f}")
    stage("export-hf", path("hf"),
          lambda: hugging_face.export_hf(path("model"), path("hf")),
          lambda s: f"transformers' logits within {s['max_logit_difference']:.1e}")
    stage("fill-mask", path("model"),
          lambda: fill_mask.fill_mask(path("model"), ["오늘 경기 진짜 [MASK] 네요"], top_k=3),
          lambda answers: "top: " + ", ".join(f"{t} {p:.1%}" for t, p in answers[0][0]))
    if args.labelled:
        args.labelled_train, args.labelled_eval = _split(args.labelled, path("labelled-train.tsv"), path("labelled-eval.tsv"))
    stage("finetune", path("sentiment"),
          lambda: finetuning.run(["--task", "nsmc", "--train", args.labelled_train, "--eval", args.labelled_eval,
                                  "--init", path("model"), "--output", path("sentiment"), "--epochs", str(args.finetune_epochs),
                                  "--batch-size", "16", "--learning-rate", "1e-3", "--max-seq-length", "32"]),
          lambda s: f"eval accuracy {s['best']['accuracy']:.2f} (epoch {s['best']['epoch']})")
    new = path("new_sentences.tsv")
    with open(new, "w", encoding="utf-8") as handle:
        handle.write("document\n" + "".join(f"{text}\n" for text in NEW_SENTENCES))
    stage("predict", path("predictions.tsv"),
          lambda: predict.run(["--model", path("sentiment"), "--input", new, "--output", path("predictions.tsv")]),
          lambda counts: " ".join(_predicted(path("predictions.tsv"))) + f" for {counts['examples']} new sentences")
    stage("export-hf (classifier)", path("sentiment-hf"),
          lambda: hugging_face.export_hf(path("sentiment"), path("sentiment-hf")),
          lambda s: f"BertForSequenceClassification, logits within {s['max_logit_difference']:.1e}")

    stage("export-savedmodel (classifier)", path("sentiment-sm"),
          lambda: _serve(saved_model.export_saved_model(path("sentiment"), path("sentiment-sm")), new),
          lambda labels: " ".join(labels) + " from raw text (clean() in the graph)")
    stage("batch-predict (corpus)", path("labelled"),
          lambda: batch_predict.run(["--model", path("sentiment-sm"), "--input", path("cleaned"), "--format", "records",
                                     "--output", path("labelled"), "--keep-labels", "1"]),
          lambda s: f"{s['predicted']:,} comments labelled ("
          + ", ".join(f"{name}: {count:,}" for name, count in s["labels"].items()) + f"), {s['kept']:,} kept as 1")

    names, width = max(len(row["stage"]) for row in table), max(len(row["output"]) for row in table)
    print(f"\n{'stage':<{names}} {'output':<{width}} {'seconds':>8}  key number")
    for row in table:
        print(f"{row['stage']:<{names}} {row['output']:<{width}} {row['seconds']:>8.1f}  {row['key']}")
    print(f"{'total':<{names}} {'':<{width}} {sum(r['seconds'] for r in table):>8.1f}")
    return table
