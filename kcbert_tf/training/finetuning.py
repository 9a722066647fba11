"""Fine-tuning on the KcBERT card's sentence and sentence-pair tasks: ``kcbert-tf finetune``.

    kcbert-tf finetune --task nsmc --train nsmc/train.txt --eval nsmc/test.txt \\
        --init runs/kcbert-base --output runs/kcbert-base-nsmc

A preset (:mod:`kcbert_tf.training.task_presets`) gives the columns and KcBERT-Finetune's
settings; every value can be overridden.  The files are read as KcBERT-Finetune reads them
(:mod:`kcbert_tf.text.task_files`), cleaned with ``clean()`` unless ``--no-clean``.  The labels
are those of the training file (sorted; numbers in numeric order); an eval label that training
never saw is an error.

Training runs on the pretraining core (:mod:`kcbert_tf.training.core`): the same strategies
(``--tpu``, several GPUs, ``--cpu-replicas N``), BERT's AdamW with KcBERT-Finetune's settings
(eps 1e-8, weight decay 0, linear decay, no warmup, the summed gradients clipped at 1.0), one
replica's dropout masks per replica.  Texts are tokenized and packed in the graph
(:mod:`kcbert_tf.text.model_inputs`: the ids transformers gives), padded to ``max_seq_length``
so shapes are static.  After every epoch the eval file is scored — accuracy and macro-F1
(scikit-learn) for classification, Pearson and Spearman (SciPy) for regression — and the best
epoch's weights are kept.

The output (written under a temporary name, renamed when complete) is a model directory:
``config.json`` with ``id2label``, ``label2id`` and ``problem_type``, ``vocab.txt``,
``model.weights.h5`` (the best epoch), ``metrics.json`` (every epoch and the best) and
``logs/`` (TensorBoard).
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

__all__ = ["build_arg_parser", "run", "score"]

_LOG = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
LOG_DIR = "logs"


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf finetune",
        description="Fine-tune a KcBERT model directory on a sentence or sentence-pair task.",
    )
    parser.add_argument("--task", required=True, help="nsmc, hate-speech, kornli, paws, question-pair, korsts, or 'custom' with the column flags")
    parser.add_argument("--train", required=True, help="the training file (tab-separated, a header line)")
    parser.add_argument("--eval", required=True, help="the evaluation file, same columns")
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
    parser.add_argument("--limit-train", type=int, help="use only the first N training examples")
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
    columns = TaskColumns(
        args.text_column or base.columns.text,
        args.label_column or base.columns.label,
        args.text_pair_column or base.columns.text_pair,
    )
    regression = base.regression or args.regression
    overrides = {
        "max_seq_length": args.max_seq_length,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
    }
    settings = dataclasses.replace(
        base, columns=columns, regression=regression, metric="spearman" if regression else base.metric,
        **{key: value for key, value in overrides.items() if value is not None},
    )
    for name in ("max_seq_length", "epochs", "batch_size"):
        if getattr(settings, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    if settings.max_seq_length < 3 + bool(columns.text_pair):
        raise UserError(f"--max-seq-length {settings.max_seq_length} leaves no room for text")
    return settings


def _labels(train, evaluation, regression: bool) -> list[str] | None:
    """The label names (sorted, numbers numerically), or None for regression; unseen eval labels
    are an error."""
    if regression:
        return None
    names = sorted(set(train.labels), key=lambda name: (0, float(name), name) if _is_number(name) else (1, 0, name))
    unseen = sorted(set(evaluation.labels) - set(names))
    if unseen:
        raise UserError(
            f"{evaluation.path}: label(s) {unseen} never occur in {train.path} (its labels: {names}); "
            "a classifier can only predict the labels it was trained on"
        )
    return names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def score(predictions, targets, regression: bool) -> dict:
    """The eval metrics: accuracy and macro-F1 (scikit-learn) for class ids, Pearson and
    Spearman (SciPy) for scores."""
    import numpy as np

    if regression:
        from scipy.stats import pearsonr, spearmanr

        predictions, targets = np.asarray(predictions, float), np.asarray(targets, float)
        return {
            "pearson": float(pearsonr(predictions, targets).statistic),
            "spearman": float(spearmanr(predictions, targets).statistic),
            "mse": float(np.mean((predictions - targets) ** 2)),
        }
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(targets, predictions)),
        "macro_f1": float(f1_score(targets, predictions, average="macro")),
    }


def _dataset(tokenizer, examples, targets, settings, *, batch_size: int, shuffle_seed: int | None):
    """``(x, y)`` batches of ``batch_size``: texts packed in the graph, padded to the max length."""
    import tensorflow as tf

    from kcbert_tf.text.model_inputs import pack_fixed

    columns = (examples.texts,) if examples.pairs is None else (examples.texts, examples.pairs)
    dataset = tf.data.Dataset.from_tensor_slices((columns, targets))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)

    def pack(texts, y):
        pairs = texts[1] if len(texts) == 2 else None
        return pack_fixed(tokenizer, texts[0], pairs, settings.max_seq_length), y

    return dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def run(argv: Sequence[str] | None = None) -> dict:
    """Fine-tune from command-line arguments; return the metrics (also in ``metrics.json``)."""
    args = build_arg_parser().parse_args(argv)
    settings = _settings(args)
    if args.cpu_replicas is not None:
        from kcbert_tf.training.strategy import split_cpu

        split_cpu(args.cpu_replicas)
    from kcbert_tf.conversion.hugging_face import read_model_or_hf
    from kcbert_tf.output_dir import check_output_dir
    from kcbert_tf.text.task_files import read_examples

    output = check_output_dir(args.output, args.overwrite)
    train = read_examples(args.train, settings.columns, clean=not args.no_clean, regression=settings.regression)
    evaluation = read_examples(args.eval, settings.columns, clean=not args.no_clean, regression=settings.regression)
    for examples in (train, evaluation):
        if examples.empty:
            _LOG.info("%s: %d example(s) with an empty text skipped", examples.path, examples.empty)
    if args.limit_train:
        train = dataclasses.replace(
            train, texts=train.texts[: args.limit_train], labels=train.labels[: args.limit_train],
            pairs=None if train.pairs is None else train.pairs[: args.limit_train],
        )
    labels = _labels(train, evaluation, settings.regression)
    if len(train) < settings.batch_size:
        raise UserError(f"{args.train}: {len(train)} example(s), fewer than one batch of {settings.batch_size}")
    with tempfile.TemporaryDirectory(prefix="kcbert-tf-init-") as scratch:
        source = read_model_or_hf(args.init, scratch, allow_pickle=args.allow_pickle)
        return _train(args, settings, source, train, evaluation, labels, output)


def _train(args, settings, source, train, evaluation, labels, output) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from kcbert_tf.model.classifier import build_classifier
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.output_dir import staged_output
    from kcbert_tf.training import core
    from kcbert_tf.training.strategy import per_replica_batch_size, resolve_strategy

    info = resolve_strategy(
        args.tpu, zone=args.tpu_zone, project=args.tpu_project,
        connect_timeout_s=args.tpu_timeout, cpu_replicas=args.cpu_replicas,
    )
    per_replica_batch_size(settings.batch_size, info.num_replicas, kind=info.kind)
    keras.utils.set_random_seed(settings.seed)
    config = source.config.with_labels(labels)
    steps_per_epoch = len(train) // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    _LOG.info(
        "finetune: %s (%s) on %s, %d replica(s): %d train / %d eval examples, %s, %d epochs of %d steps, "
        "batch %d, lr %g, max length %d",
        settings.name, "regression" if labels is None else f"{len(labels)} labels", info.device_description,
        info.num_replicas, len(train), len(evaluation), settings.columns, settings.epochs, steps_per_epoch,
        settings.batch_size, settings.learning_rate, settings.max_seq_length,
    )
    pretrained = source.load_model()  # outside the scope: a plain model, only read from; its encoder is taken
    with info.strategy.scope():
        model = build_classifier(config)
        for target, value in zip(model.backbone.weights, pretrained.backbone.weights):
            target.assign(value)
        core.prepare_model(model)
        optimizer = core.build_optimizer(core.OptimizerSettings(
            learning_rate=settings.learning_rate, warmup_steps=settings.warmup_steps, total_steps=total_steps,
            weight_decay=settings.weight_decay, epsilon=settings.adam_epsilon, clip_norm=settings.clip_norm,
        ))
        if labels is None:
            model.compile(optimizer=optimizer, loss=keras.losses.MeanSquaredError())
        else:
            model.compile(
                optimizer=optimizer,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            )
    if labels is None:
        train_targets = np.asarray([float(v) for v in train.labels], np.float32)
        eval_targets = np.asarray([float(v) for v in evaluation.labels], np.float32)
    else:
        index = {name: i for i, name in enumerate(labels)}
        train_targets = np.asarray([index[v] for v in train.labels], np.int32)
        eval_targets = np.asarray([index[v] for v in evaluation.labels], np.int32)
    tokenizer = source.tokenizer()
    train_ds = info.strategy.experimental_distribute_dataset(
        _dataset(tokenizer, train, train_targets, settings, batch_size=settings.batch_size, shuffle_seed=settings.seed)
    )
    # Eval: padded with copies of its first example to whole batches, the copies' outputs dropped.
    extra = -len(evaluation) % settings.batch_size
    padded = dataclasses.replace(
        evaluation, texts=evaluation.texts + evaluation.texts[:1] * extra,
        pairs=None if evaluation.pairs is None else evaluation.pairs + evaluation.pairs[:1] * extra,
    )
    eval_ds = _dataset(tokenizer, padded, np.concatenate([eval_targets, eval_targets[:1].repeat(extra)]), settings,
                       batch_size=settings.batch_size, shuffle_seed=None)

    epochs: list[dict] = []
    best: dict = {}

    class EvaluateEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            outputs = self.model.predict(eval_ds, verbose=0)[: len(evaluation)]
            predictions = outputs[:, 0] if labels is None else outputs.argmax(-1)
            metrics = {"epoch": epoch + 1, "train_loss": float((logs or {}).get("loss", float("nan"))),
                       **score(predictions, eval_targets, labels is None)}
            epochs.append(metrics)
            if logs is not None:  # the StepLogger after this callback writes them to TensorBoard
                logs.update({f"val_{key}": value for key, value in metrics.items() if key not in ("epoch", "train_loss")})
            _LOG.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "epoch"))
            if not best or metrics[settings.metric] > best["metrics"][settings.metric]:
                best.update(metrics=metrics, weights=[w.numpy() for w in self.model.weights])

    log_dir = tempfile.mkdtemp(prefix="kcbert-tf-finetune-logs-") if info.is_chief else None
    logger = core.StepLogger(log_dir, log_every=max(1, steps_per_epoch // 4))
    model.fit(train_ds, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
              callbacks=[EvaluateEachEpoch(), logger], shuffle=False, verbose=2)
    for variable, value in zip(model.weights, best["weights"]):
        variable.assign(value)
    result = {
        "task": settings.name,
        "metric": settings.metric,
        "best": best["metrics"],
        "epochs": epochs,
        "labels": labels,
        "train_examples": len(train),
        "eval_examples": len(evaluation),
        "skipped_empty": {"train": train.empty, "eval": evaluation.empty},
        "settings": {key: value for key, value in dataclasses.asdict(settings).items() if key != "columns"},
        "columns": dataclasses.asdict(settings.columns),
        "clean": not args.no_clean,
        "init": source.path,
        "replicas": info.num_replicas,
    }
    if info.is_chief:
        with staged_output(output) as staging:
            ModelDir.write(str(staging), config, source.vocab, model)
            shutil.copytree(log_dir, staging / LOG_DIR)
            (staging / METRICS_FILE).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        shutil.rmtree(log_dir, ignore_errors=True)
    best_metrics = best["metrics"]
    print(
        f"finetune: {settings.name}, best epoch {best_metrics['epoch']}: "
        + ", ".join(f"{k} {v:.4f}" for k, v in best_metrics.items() if k not in ("epoch",))
        + f"; wrote {output} (model directory, {METRICS_FILE})",
        flush=True,
    )
    return result
