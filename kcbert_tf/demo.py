"""``kcbert-tf demo`` (``make demo``): every stage of the system on the project's demo corpus.

preprocess → train-tokenizer → make-pretraining-data → pretrain a tiny model → export-hf (and
transformers reloads it) → fill-mask → finetune a sentiment classifier on a small labelled sample
→ predict new sentences → export the classifier (transformers reloads it as
``BertForSequenceClassification``) → export it as a SavedModel on raw text and serve the new
sentences with it.  Each stage is one call of the Python API, the call its ``kcbert-tf``
subcommand makes; at the end a table gives each stage's output, its key number and its seconds.
Part of the command layer: it calls the library and the Beam jobs, nothing imports it.

The inputs are the project's own: ``kcbert_tf/resources/demo_comments.txt`` (786 comments
written with the noise real ones have) and ``demo_sentiment_train.tsv`` / ``_eval.tsv`` (128
short labelled reviews).  Everything goes to ``--output`` (default ``demo-output/``), which the
demo empties first.  Run it on real data with ``--corpus comments.txt --labelled nsmc.txt``
(``make demo CORPUS=… LABELLED=…``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from importlib import resources
from typing import Sequence

from kcbert_tf.command_calls import call_with_flags

__all__ = ["demo", "build_arg_parser", "run"]

NEW_SENTENCES = ["이 영화 진짜 최고였다 또 보고싶다", "시간 아깝다 완전 실망", "배우 연기가 너무 어색하다", "음악이 감동이라 눈물남"]


def _resource(name: str) -> str:
    return str(resources.files("kcbert_tf") / "resources" / name)


def _split(source: str, train: str, evaluation: str, eval_share: float = 0.1, seed: int = 0) -> tuple[str, str]:
    """Split a labelled file (header kept in both) into train and eval lines, shuffled with ``seed``."""
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


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kcbert-tf demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="the demo's directory (emptied first)")
    parser.add_argument("--corpus", default=_resource("demo_comments.txt"), help="raw comments, one a line")
    parser.add_argument("--labelled-train", default=_resource("demo_sentiment_train.tsv"),
                        help="NSMC-format (document, label) training file for the fine-tuning stage")
    parser.add_argument("--labelled-eval", default=_resource("demo_sentiment_eval.tsv"))
    parser.add_argument("--labelled", default=None,
                        help="one NSMC-format file instead of the two: split 90/10 with a fixed seed")
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--vocab-size", type=int, default=3000)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    return parser


def run(argv: Sequence[str] | None = None) -> list[dict]:
    """``kcbert-tf demo``: the flags parsed into one :func:`demo` call; return its table."""
    return call_with_flags(demo, build_arg_parser(), argv)


def demo(output: str = "demo-output", *, corpus: str | None = None, labelled_train: str | None = None,
         labelled_eval: str | None = None, labelled: str | None = None, finetune_epochs: int = 6,
         vocab_size: int = 3000, pretrain_steps: int = 300) -> list[dict]:
    """Every stage into ``output`` (emptied first) on the demo's inputs (or ``corpus`` and a
    labelled file); print the table and return its rows."""
    from beam_jobs.batch_predict import batch_predict
    from beam_jobs.clean_dedup import preprocess
    from beam_jobs.pretraining_data import make_pretraining_data
    from kcbert_tf.conversion.hugging_face import export_hf
    from kcbert_tf.conversion.saved_model import export_saved_model
    from kcbert_tf.inference.fill_mask import fill_mask
    from kcbert_tf.inference.predict import predict_file
    from kcbert_tf.tasks.finetuning import finetune
    from kcbert_tf.training.pretraining import pretrain
    from kcbert_tf.training.vocab_training import train_tokenizer

    corpus = corpus or _resource("demo_comments.txt")
    labelled_train = labelled_train or _resource("demo_sentiment_train.tsv")
    labelled_eval = labelled_eval or _resource("demo_sentiment_eval.tsv")
    out = output
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
          lambda: preprocess(corpus, path("cleaned")),
          lambda s: f"{s['kept']:,} of {s['lines_read']:,} lines kept")
    stage("train-tokenizer", path("vocab"),
          lambda: train_tokenizer(path("cleaned", "*.tfrecord"), path("vocab"), vocab_size=vocab_size,
                                  limit_alphabet=1000),
          lambda s: f"{s['vocab_size']:,} tokens, [UNK] {s['unk_rate']:.2%}")
    stage("make-pretraining-data", path("pretraining"),
          lambda: make_pretraining_data(path("cleaned"), path("vocab"), path("pretraining"), max_seq_length=128),
          lambda s: f"{s['sequences']:,} sequences of 128, fill {s['fill_ratio']:.1%}")
    stage("pretrain", path("model"),
          lambda: pretrain("kcbert-tiny", path("pretraining"), path("model"),
                           train_config="pretrain-tiny",  # packaged configs: any directory
                           train_steps=pretrain_steps, warmup_steps=pretrain_steps // 10),
          lambda s: f"MLM loss {s['first_log'].get('loss', float('nan')):.2f} -> {s['history']['loss'][-1]:.2f}")
    stage("export-hf", path("hf"),
          lambda: export_hf(path("model"), path("hf")),
          lambda s: f"transformers' logits within {s['max_logit_difference']:.1e}")
    stage("fill-mask", path("model"),
          lambda: fill_mask(path("model"), ["오늘 경기 진짜 [MASK] 네요"], top_k=3),
          lambda answers: "top: " + ", ".join(f"{t} {p:.1%}" for t, p in answers[0][0]))
    if labelled:
        labelled_train, labelled_eval = _split(labelled, path("labelled-train.tsv"), path("labelled-eval.tsv"))
    stage("finetune", path("sentiment"),
          lambda: finetune("nsmc", train=labelled_train, eval=labelled_eval, init=path("model"),
                           output=path("sentiment"), epochs=finetune_epochs, batch_size=16, learning_rate=1e-3,
                           max_seq_length=32).metrics,
          lambda s: f"eval accuracy {s['best']['accuracy']:.2f} (epoch {s['best']['epoch']})")
    new = path("new_sentences.tsv")
    with open(new, "w", encoding="utf-8") as handle:
        handle.write("document\n" + "".join(f"{text}\n" for text in NEW_SENTENCES))
    stage("predict", path("predictions.tsv"),
          lambda: predict_file(path("sentiment"), new, path("predictions.tsv")),
          lambda counts: " ".join(_predicted(path("predictions.tsv"))) + f" for {counts['examples']} new sentences")
    stage("export-hf (classifier)", path("sentiment-hf"),
          lambda: export_hf(path("sentiment"), path("sentiment-hf")),
          lambda s: f"BertForSequenceClassification, logits within {s['max_logit_difference']:.1e}")

    stage("export-savedmodel (classifier)", path("sentiment-sm"),
          lambda: _serve(export_saved_model(path("sentiment"), path("sentiment-sm")), new),
          lambda labels: " ".join(labels) + " from raw text (clean() in the graph)")
    stage("batch-predict (corpus)", path("labelled"),
          lambda: batch_predict(path("sentiment-sm"), path("cleaned"), path("labelled"), format="records",
                                keep_labels=["1"]),
          lambda s: f"{s['predicted']:,} comments labelled ("
          + ", ".join(f"{name}: {count:,}" for name, count in s["labels"].items()) + f"), {s['kept']:,} kept as 1")

    names, width = max(len(row["stage"]) for row in table), max(len(row["output"]) for row in table)
    print(f"\n{'stage':<{names}} {'output':<{width}} {'seconds':>8}  key number")
    for row in table:
        print(f"{row['stage']:<{names}} {row['output']:<{width}} {row['seconds']:>8.1f}  {row['key']}")
    print(f"{'total':<{names}} {'':<{width}} {sum(r['seconds'] for r in table):>8.1f}")
    return table
