"""``kcbert-tf demo`` (``make demo``): every stage of the system on the project's demo corpus.

preprocess → train-tokenizer → make-pretraining-data → pretrain a tiny model → export-hf (and
transformers reloads it) → fill-mask → finetune a sentiment classifier on a small labelled sample
→ predict new sentences → export the classifier (transformers reloads it as
``BertForSequenceClassification``).  Each stage runs through the same ``run(argv)`` the
``kcbert-tf`` subcommand runs; at the end a table gives each stage's output, its key number and
its seconds.  Part of the command layer: it calls the library and the Beam jobs, nothing imports
it.

The inputs are the project's own: ``kcbert_tf/resources/demo_comments.txt`` (786 comments
written with the noise real ones have) and ``demo_sentiment_train.tsv`` / ``_eval.tsv`` (128
short labelled reviews).  Everything goes to ``--output`` (default ``demo-output/``), which the
demo empties first.  Run it on real data with ``--corpus ../shared/data/comments/news_comments.txt
--labelled-train … --labelled-eval …``.
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


def run(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="kcbert-tf demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="the demo's directory (emptied first)")
    parser.add_argument("--corpus", default=_resource("demo_comments.txt"), help="raw comments, one a line")
    parser.add_argument("--labelled-train", default=_resource("demo_sentiment_train.tsv"))
    parser.add_argument("--labelled-eval", default=_resource("demo_sentiment_eval.tsv"))
    parser.add_argument("--vocab-size", type=int, default=3000)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    args = parser.parse_args(argv)

    from beam_jobs import clean_dedup, pretraining_data
    from kcbert_tf.conversion import hugging_face
    from kcbert_tf.inference import fill_mask, predict
    from kcbert_tf.text import vocab_training
    from kcbert_tf.training import finetuning, pretraining

    out = args.output
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    tiny = os.path.join(configs, "kcbert-tiny.json")  # the repository's configs/ (make demo runs there)
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
          lambda: pretraining.run(["--config", tiny, "--data", path("pretraining"), "--model-dir", path("model"),
                                   "--train-config", os.path.join(os.path.dirname(tiny), "pretrain-tiny.json"),
                                   "--steps", str(args.pretrain_steps), "--warmup-steps", str(args.pretrain_steps // 10)]),
          lambda s: f"MLM loss {s['first_log'].get('loss', float('nan')):.2f} -> {s['history']['loss'][-1]:.2f}")
    stage("export-hf", path("hf"),
          lambda: hugging_face.export_hf(path("model"), path("hf")),
          lambda s: f"transformers' logits within {s['max_logit_difference']:.1e}")
    stage("fill-mask", path("model"),
          lambda: fill_mask.fill_mask(path("model"), ["오늘 경기 진짜 [MASK] 네요"], top_k=3),
          lambda answers: "top: " + ", ".join(f"{t} {p:.1%}" for t, p in answers[0][0]))
    stage("finetune", path("sentiment"),
          lambda: finetuning.run(["--task", "nsmc", "--train", args.labelled_train, "--eval", args.labelled_eval,
                                  "--init", path("model"), "--output", path("sentiment"), "--epochs", "6",
                                  "--batch-size", "16", "--learning-rate", "1e-3", "--max-seq-length", "32"]),
          lambda s: f"eval accuracy {s['best']['accuracy']:.2f} (epoch {s['best']['epoch']})")
    new = path("new_sentences.tsv")
    with open(new, "w", encoding="utf-8") as handle:
        handle.write("document\n" + "".join(f"{text}\n" for text in NEW_SENTENCES))
    stage("predict", path("predictions.tsv"),
          lambda: predict.run(["--model", path("sentiment"), "--input", new, "--output", path("predictions.tsv")]),
          lambda results: " ".join(r.get("predicted", "-") for r in results) + f" for {len(results)} new sentences")
    stage("export-hf (classifier)", path("sentiment-hf"),
          lambda: hugging_face.export_hf(path("sentiment"), path("sentiment-hf")),
          lambda s: f"BertForSequenceClassification, logits within {s['max_logit_difference']:.1e}")

    width = max(len(row["output"]) for row in table)
    print(f"\n{'stage':<24} {'output':<{width}} {'seconds':>8}  key number")
    for row in table:
        print(f"{row['stage']:<24} {row['output']:<{width}} {row['seconds']:>8.1f}  {row['key']}")
    print(f"{'total':<24} {'':<{width}} {sum(r['seconds'] for r in table):>8.1f}")
    return table
