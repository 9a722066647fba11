"""Fine-tuning on the KcBERT card's tasks: ``kcbert-tf finetune``.

    kcbert-tf finetune --task nsmc --train nsmc/train.txt --eval nsmc/test.txt \\
        --init runs/kcbert-base --output runs/kcbert-base-nsmc

A preset (:mod:`kcbert_tf.training.task_presets`) gives the file format and KcBERT-Finetune's
settings; every value can be overridden.  Three kinds of task, each a module that reads its files,
builds the training batches, the loss and the evaluation:

- a label or a score per text or text pair (:mod:`~kcbert_tf.training.sentence_task`: NSMC, hate
  speech, KorNLI, PAWS, Question Pair, KorSTS, any TSV), accuracy and macro-F1 or Pearson and
  Spearman;
- a label per token (:mod:`~kcbert_tf.training.ner_task`: KLUE-NER, word<TAB>tags files),
  entity-level precision, recall and F1 (seqeval);
- an answer span in a passage (:mod:`~kcbert_tf.training.qa_task`: KorQuAD / SQuAD v1 JSON),
  KorQuAD's official EM and F1.

Training runs on the pretraining core (:mod:`kcbert_tf.training.core`): the same strategies
(``--tpu``, several GPUs, ``--cpu-replicas N``), BERT's AdamW with KcBERT-Finetune's settings
(eps 1e-8, weight decay 0, linear decay, no warmup, the summed gradients clipped at 1.0), one
replica's dropout masks per replica.  ``--init`` is a model directory of ours or a Hugging Face
BERT directory (imported on the fly, verified); its encoder is taken, the head is new.  After
every epoch the eval file is scored and the best epoch's weights are kept.

The output (written under a temporary name, renamed when complete) is a model directory:
``config.json`` in transformers' form for the head (``id2label``, ``label2id``, ``problem_type``
where they apply), ``vocab.txt``, ``model.weights.h5`` (the best epoch), ``metrics.json`` (every
epoch and the best), ``logs/`` (TensorBoard) and, for QA, ``predictions.json`` on the eval file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
from typing import Sequence

from kcbert_tf.errors import UserError

__all__ = ["build_arg_parser", "run"]

_LOG = logging.getLogger(__name__)

LOG_DIR = "logs"


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf finetune",
        description="Fine-tune a KcBERT model directory on a sentence or sentence-pair task.",
    )
    parser.add_argument("--task", required=True, help="nsmc, hate-speech, kornli, paws, question-pair, korsts, klue-ner, word-tags, korquad, or 'custom' with the column flags")
    parser.add_argument("--train", required=True, help="the training file (sentence tasks: tab-separated, a header line; NER: KLUE-NER or words<TAB>tags; korquad: SQuAD v1 JSON)")
    parser.add_argument("--eval", default=None, help="the evaluation file, same format (required unless --eval-split)")
    parser.add_argument("--eval-split", type=float, default=None,
                        help="korquad: evaluate on this share of --train's articles instead, split in memory "
                        "by article with --seed (KorQuAD's license allows no modified copies on disk)")
    parser.add_argument(
        "--init", required=True,
        help="the start: a model directory of ours (`pretrain`, `import-hf`, `finetune`: its encoder is "
        "taken) or a Hugging Face BERT directory (e.g. a local copy of beomi/kcbert-base), imported "
        "on the fly and verified as `import-hf` does",
    )
    parser.add_argument("--allow-pickle", action="store_true", help="an --init Hugging Face directory may hold only pytorch_model.bin (loading a pickle runs code)")
    parser.add_argument("--output", required=True, help="the fine-tuned model directory to write (local)")
    parser.add_argument("--text-column")
    parser.add_argument("--text-pair-column")
    parser.add_argument("--label-column")
    parser.add_argument("--regression", action="store_true", help="numeric labels, mean squared error")
    parser.add_argument("--no-clean", action="store_true", help="do not apply KcBERT's clean() to the texts")
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch size (split over replicas)")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--limit-train", type=int, help="use only the first N training examples (sentences, questions)")
    parser.add_argument("--doc-stride", type=int, help="korquad: tokens between the starts of context windows (128)")
    parser.add_argument("--max-query-length", type=int, help="korquad: a question's tokens at most (64)")
    parser.add_argument("--max-answer-length", type=int, help="korquad: an answer's tokens at most (30)")
    parser.add_argument("--tpu", default=None)
    parser.add_argument("--tpu-zone", default=None)
    parser.add_argument("--tpu-project", default=None)
    parser.add_argument("--tpu-timeout", type=float, default=300)
    parser.add_argument("--cpu-replicas", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true", help="replace --output when the new one is complete")
    return parser


def _settings(args: argparse.Namespace):
    """The task preset with the command line's overrides."""
    from kcbert_tf.text.task_files import TaskColumns
    from kcbert_tf.training.task_presets import TaskPreset, preset

    if args.task == "custom":
        if not args.text_column or not args.label_column:
            raise UserError("--task custom needs --text-column and --label-column")
        base = TaskPreset("custom", TaskColumns(args.text_column, args.label_column, args.text_pair_column),
                          "spearman" if args.regression else "accuracy", 128, 3, 32, 5e-5, regression=args.regression)
    else:
        base = preset(args.task)
    overrides = {
        "max_seq_length": args.max_seq_length,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "doc_stride": args.doc_stride,
        "max_query_length": args.max_query_length,
        "max_answer_length": args.max_answer_length,
    }
    changes = {key: value for key, value in overrides.items() if value is not None}
    if base.kind == "sentence":
        columns = TaskColumns(
            args.text_column or base.columns.text,
            args.label_column or base.columns.label,
            args.text_pair_column or base.columns.text_pair,
        )
        regression = base.regression or args.regression
        changes.update(columns=columns, regression=regression, metric="spearman" if regression else base.metric)
    else:
        given = [flag for flag, value in (("--text-column", args.text_column), ("--text-pair-column", args.text_pair_column),
                                          ("--label-column", args.label_column), ("--regression", args.regression)) if value]
        if given:
            raise UserError(f"--task {base.name} reads its own file format; {', '.join(given)} apply to sentence tasks only")
    settings = dataclasses.replace(base, **changes)
    for name in ("max_seq_length", "epochs", "batch_size"):
        if getattr(settings, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    pair = settings.kind == "qa" or bool(settings.columns and settings.columns.text_pair)
    if settings.max_seq_length < 3 + pair:
        raise UserError(f"--max-seq-length {settings.max_seq_length} leaves no room for text")
    return settings


def _task(settings, args):
    """The fine-tuning task of ``settings.kind``, its files read and checked."""
    if settings.kind == "ner":
        from kcbert_tf.training.ner_task import NerTask

        return NerTask(settings, args.train, args.eval, limit_train=args.limit_train)
    if settings.kind == "qa":
        from kcbert_tf.training.qa_task import QaTask

        return QaTask(settings, args.train, args.eval, limit_train=args.limit_train, eval_split=args.eval_split)
    from kcbert_tf.training.sentence_task import SentenceTask

    return SentenceTask(settings, args.train, args.eval, clean=not args.no_clean, limit_train=args.limit_train)


def run(argv: Sequence[str] | None = None) -> dict:
    """Fine-tune from command-line arguments; return the metrics (also in ``metrics.json``)."""
    args = build_arg_parser().parse_args(argv)
    settings = _settings(args)
    if args.cpu_replicas is not None:
        from kcbert_tf.training.strategy import split_cpu

        split_cpu(args.cpu_replicas)
    from kcbert_tf.conversion.hugging_face import read_model_or_hf
    from kcbert_tf.output_dir import check_output_dir

    output = check_output_dir(args.output, args.overwrite)
    if args.eval_split is not None and settings.kind != "qa":
        raise UserError("--eval-split applies to --task korquad; give the other tasks an --eval file")
    if args.eval_split is not None and not 0 < args.eval_split < 1:
        raise UserError(f"--eval-split {args.eval_split} must be between 0 and 1 (a share of the articles)")
    if args.eval is None and args.eval_split is None:
        raise UserError("--eval is required (or, for korquad, --eval-split SHARE)")
    task = _task(settings, args)
    with tempfile.TemporaryDirectory(prefix="kcbert-tf-init-") as scratch:
        source = read_model_or_hf(args.init, scratch, allow_pickle=args.allow_pickle)
        limit = source.config.max_position_embeddings
        if settings.max_seq_length > limit:
            raise UserError(
                f"--max-seq-length {settings.max_seq_length} (the {settings.name} setting or yours) is more than "
                f"max_position_embeddings {limit} of {args.init}; pass --max-seq-length {limit} or less"
            )
        tokenizer = source.tokenizer()
        task.prepare(tokenizer)
        if task.train_size < settings.batch_size:
            raise UserError(f"{args.train}: {task.train_size} training example(s), fewer than one batch of {settings.batch_size}")
        return _train(args, settings, source, task, tokenizer, output)


def _train(args, settings, source, task, tokenizer, output) -> dict:
    import keras
    import tensorflow as tf

    from kcbert_tf.model.model_dir import METRICS_FILE, ModelDir, build_model
    from kcbert_tf.output_dir import staged_output
    from kcbert_tf.training import core
    from kcbert_tf.training.strategy import fit_settings, per_replica_batch_size, resolve_strategy

    info = resolve_strategy(
        args.tpu, zone=args.tpu_zone, project=args.tpu_project,
        connect_timeout_s=args.tpu_timeout, cpu_replicas=args.cpu_replicas,
    )
    per_replica_batch_size(settings.batch_size, info.num_replicas, kind=info.kind)
    keras.utils.set_random_seed(settings.seed)
    config = task.model_config(source.config)
    steps_per_epoch = task.train_size // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    _LOG.info(
        "finetune: %s (%s) on %s, %d replica(s): %d epochs of %d steps, batch %d, lr %g, max length %d",
        settings.name, task.describe(), info.device_description, info.num_replicas, settings.epochs,
        steps_per_epoch, settings.batch_size, settings.learning_rate, settings.max_seq_length,
    )
    pretrained = source.load_model()  # outside the scope: a plain model, only read from; its encoder is taken
    with info.strategy.scope():
        model = build_model(config)
        for target, value in zip(model.backbone.weights, pretrained.backbone.weights):
            target.assign(value)
        if config.head != "sequence_classification":
            # Token and span heads do not use the pooler (transformers' have none): no gradient reaches it.
            model.backbone.pooled_dense.trainable = False
        core.prepare_model(model)
        optimizer = core.build_optimizer(core.OptimizerSettings(
            learning_rate=settings.learning_rate, warmup_steps=settings.warmup_steps, total_steps=total_steps,
            weight_decay=settings.weight_decay, epsilon=settings.adam_epsilon, clip_norm=settings.clip_norm,
        ))
        fit = fit_settings(info, "auto", 1, steps_per_epoch)  # XLA off under TPUStrategy / MirroredStrategy
        model.compile(optimizer=optimizer, jit_compile=fit.jit_compile, steps_per_execution=fit.steps_per_execution,
                      **task.compile_args())
    train_ds = info.strategy.experimental_distribute_dataset(
        task.train_dataset(tokenizer, settings.batch_size, settings.seed, settings.epochs)
    )

    epochs: list[dict] = []
    best: dict = {}

    class EvaluateEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metrics = {"epoch": epoch + 1, "train_loss": float((logs or {}).get("loss", float("nan"))),
                       **task.evaluate(self.model, tokenizer, settings.batch_size)}
            epochs.append(metrics)
            if logs is not None:  # the StepLogger after this callback writes them to TensorBoard
                logs.update({f"val_{key}": value for key, value in metrics.items()
                             if key not in ("epoch", "train_loss") and isinstance(value, float)})
            _LOG.info("epoch %d: %s", epoch + 1, ", ".join(
                f"{k} {v:.4f}" for k, v in metrics.items() if k != "epoch" and isinstance(v, float)))
            if not best or metrics[settings.metric] > best["metrics"][settings.metric]:
                best.update(metrics=metrics, weights=[w.numpy() for w in self.model.weights],
                            outputs=task.evaluation_outputs())

    log_dir = tempfile.mkdtemp(prefix="kcbert-tf-finetune-logs-") if info.is_chief else None
    logger = core.StepLogger(log_dir, log_every=max(1, steps_per_epoch // 4))
    model.fit(train_ds, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
              callbacks=[EvaluateEachEpoch(), logger], shuffle=False, verbose=2)
    for variable, value in zip(model.weights, best["weights"]):
        variable.assign(value)
    result = {
        "task": settings.name,
        "kind": settings.kind,
        "metric": settings.metric,
        "best": best["metrics"],
        "epochs": epochs,
        "labels": task.labels,
        **task.record,
        "settings": {key: value for key, value in dataclasses.asdict(settings).items() if key != "columns"},
        "clean": task.clean,
        "init": args.init,
        "replicas": info.num_replicas,
    }
    if info.is_chief:
        with staged_output(output) as staging:
            ModelDir.write(str(staging), config, source.vocab, model)
            task.write_outputs(staging, best["outputs"])
            shutil.copytree(log_dir, staging / LOG_DIR)
            (staging / METRICS_FILE).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        shutil.rmtree(log_dir, ignore_errors=True)
    best_metrics = best["metrics"]
    print(
        f"finetune: {settings.name}, best epoch {best_metrics['epoch']}: "
        + ", ".join(f"{k} {v:.4f}" for k, v in best_metrics.items() if k != "epoch" and isinstance(v, float))
        + f"; wrote {output} (model directory, {METRICS_FILE})",
        flush=True,
    )
    return result
