"""Fine-tuning on a registered task: ``kcbert-tf finetune``, one loop for every task.

    kcbert-tf finetune --task nsmc --train nsmc/train.txt --eval nsmc/test.txt \\
        --init runs/kcbert-base --output runs/kcbert-base-nsmc

The task (``--task``) is looked up in the registry (:mod:`kcbert_tf.tasks.registry`): its class,
which keeps the contract of :mod:`kcbert_tf.tasks.contract` (read its files, build the batches,
the head, the loss, the evaluation and the best-epoch key, the task record), and its settings,
KcBERT-Finetune's for the card's tasks; every value can be overridden on the command line.  The
card's tasks: a label or a score per text or pair (:mod:`kcbert_tf.tasks.sentence`: NSMC, hate
speech, KorNLI, PAWS, Question Pair, KorSTS, ``custom`` TSVs), a label per token
(:mod:`kcbert_tf.tasks.ner`: KLUE-NER, word<TAB>tags files), an answer span in a passage
(:mod:`kcbert_tf.tasks.qa`: KorQuAD / SQuAD v1 JSON).

:func:`run` reads as its phases: the settings, the task's files, the start model (``--init``, a
model directory of ours or a Hugging Face BERT directory imported on the fly and verified), the
strategy and the model (its encoder from ``--init``, a new head), the fit with an evaluation after
every epoch (the best epoch's weights are kept), then the output.  Training runs on the
pretraining core (:mod:`kcbert_tf.training.core`): the same strategies (``--tpu``, several GPUs,
``--cpu-replicas N``), BERT's AdamW with KcBERT-Finetune's settings (eps 1e-8, weight decay 0,
linear decay, no warmup, the summed gradients clipped at 1.0), one replica's dropout masks per
replica.

The output (written under a temporary name, renamed when complete) is a model directory:
``config.json`` in transformers' form for the head (``id2label``, ``label2id``, ``problem_type``
where they apply), ``vocab.txt``, ``model.weights.h5`` (the best epoch), ``task.json`` (the task
record: what the model needs in order to be used), ``metrics.json`` (every epoch, the best, the
settings), ``logs/`` (TensorBoard) and the task's own files (QA: ``predictions.json``).
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
        description="Fine-tune a KcBERT model directory on a registered task (sentence, pair, NER, QA).",
    )
    parser.add_argument("--task", required=True, help="a registered task: nsmc, hate-speech, kornli, paws, question-pair, korsts, klue-ner, word-tags, korquad, or 'custom' with the column flags (kcbert_tf.tasks.registry)")
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


@dataclasses.dataclass
class _Start:
    """The start of a run: the task (its files read), the ``--init`` model directory, its tokenizer."""

    settings: object  # TaskSettings
    task: object  # FineTuningTask
    source: object  # ModelDir
    tokenizer: object


@dataclasses.dataclass
class _Fitted:
    """The outcome of the fit: the trained model (best epoch), its config, every epoch's scores."""

    model: object
    config: object
    epochs: list
    best: dict
    replicas: int
    is_chief: bool
    log_dir: str | None


def _settings(args: argparse.Namespace):
    """The task class and its registered settings with the command line's overrides."""
    from kcbert_tf.tasks.registry import preset, task_class

    base = preset(args.task)
    cls = task_class(args.task)
    settings = cls.configure(base, args)
    overrides = {"max_seq_length": args.max_seq_length, "epochs": args.epochs, "batch_size": args.batch_size,
                 "learning_rate": args.learning_rate, "seed": args.seed}
    settings = dataclasses.replace(settings, **{key: value for key, value in overrides.items() if value is not None})
    for name in ("max_seq_length", "epochs", "batch_size"):
        if getattr(settings, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    if args.eval_split is not None and not 0 < args.eval_split < 1:
        raise UserError(f"--eval-split {args.eval_split} must be between 0 and 1 (a share of the articles)")
    if args.eval is None and args.eval_split is None:
        raise UserError("--eval is required (or, for korquad, --eval-split SHARE)")
    return cls, settings


def run(argv: Sequence[str] | None = None) -> dict:
    """Fine-tune from command-line arguments; return the metrics (also in ``metrics.json``)."""
    from kcbert_tf.output_dir import check_output_dir
    from kcbert_tf.tasks.contract import TaskFiles

    args = build_arg_parser().parse_args(argv)
    task_cls, settings = _settings(args)
    if args.cpu_replicas is not None:
        from kcbert_tf.training.strategy import split_cpu

        split_cpu(args.cpu_replicas)
    output = check_output_dir(args.output, args.overwrite)
    task = task_cls(settings, TaskFiles(args.train, args.eval, args.eval_split, args.limit_train))
    with tempfile.TemporaryDirectory(prefix="kcbert-tf-init-") as scratch:
        start = _start(args, settings, task, scratch)
        fitted = _fit(args, start)
        return _write_output(args, start, fitted, output)


def _start(args, settings, task, scratch: str) -> _Start:
    """Read ``--init`` (importing a Hugging Face directory into ``scratch``), check the length
    against its positions, let the task build its features."""
    from kcbert_tf.conversion.hugging_face import read_model_or_hf
    from kcbert_tf.text.model_inputs import check_sequence_length

    source = read_model_or_hf(args.init, scratch, allow_pickle=args.allow_pickle)
    check_sequence_length(settings.max_seq_length, source.config.max_position_embeddings, source=args.init,
                          subject=f"--max-seq-length {settings.max_seq_length} (the {settings.name} setting or yours)",
                          at_least=task.min_seq_length())
    tokenizer = source.tokenizer()
    task.prepare(tokenizer)
    if task.train_size < settings.batch_size:
        raise UserError(f"{args.train}: {task.train_size} training example(s), fewer than one batch of {settings.batch_size}")
    return _Start(settings, task, source, tokenizer)


def _build(info, start: _Start, config, total_steps: int, steps_per_epoch: int):
    """The model to train under the strategy: the task's head on ``--init``'s encoder, compiled
    with the task's loss and BERT's AdamW."""
    from kcbert_tf.model.heads import head
    from kcbert_tf.model.model_dir import build_model
    from kcbert_tf.training import core
    from kcbert_tf.training.strategy import fit_settings

    settings = start.settings
    pretrained = start.source.load_model()  # outside the scope: a plain model, only read from; its encoder is taken
    with info.strategy.scope():
        model = build_model(config)
        for target, value in zip(model.backbone.weights, pretrained.backbone.weights):
            target.assign(value)
        if not head(config.head).uses_pooler:
            model.backbone.pooled_dense.trainable = False  # no gradient reaches it
        core.prepare_model(model)
        optimizer = core.build_optimizer(core.OptimizerSettings(
            learning_rate=settings.learning_rate, warmup_steps=settings.warmup_steps, total_steps=total_steps,
            weight_decay=settings.weight_decay, epsilon=settings.adam_epsilon, clip_norm=settings.clip_norm,
        ))
        fit = fit_settings(info, "auto", 1, steps_per_epoch)  # XLA off under TPUStrategy / MirroredStrategy
        model.compile(optimizer=optimizer, jit_compile=fit.jit_compile, steps_per_execution=fit.steps_per_execution,
                      **start.task.compile_args())
    return model


def _evaluate_each_epoch(start: _Start, epochs: list, best: dict):
    """The callback scoring the eval file after every epoch and keeping the best epoch's weights
    and outputs (by the task's metric; higher is better)."""
    import keras

    settings, task, tokenizer = start.settings, start.task, start.tokenizer

    class EvaluateEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metrics = {"epoch": epoch + 1, "train_loss": float((logs or {}).get("loss", float("nan"))),
                       **task.evaluate(self.model, tokenizer, settings.batch_size)}
            if settings.metric not in metrics:
                raise UserError(f"task {settings.name}: its evaluation has no {settings.metric!r} (it gave {sorted(metrics)})")
            epochs.append(metrics)
            if logs is not None:  # the StepLogger after this callback writes them to TensorBoard
                logs.update({f"val_{key}": value for key, value in metrics.items()
                             if key not in ("epoch", "train_loss") and isinstance(value, float)})
            _LOG.info("epoch %d: %s", epoch + 1, ", ".join(
                f"{k} {v:.4f}" for k, v in metrics.items() if k != "epoch" and isinstance(v, float)))
            if not best or metrics[settings.metric] > best["metrics"][settings.metric]:
                best.update(metrics=metrics, weights=[w.numpy() for w in self.model.weights],
                            outputs=task.evaluation_outputs())

    return EvaluateEachEpoch()


def _fit(args, start: _Start) -> _Fitted:
    """Train on the strategy, evaluating after every epoch; the best epoch's weights at the end."""
    import keras

    from kcbert_tf.training import core
    from kcbert_tf.training.strategy import per_replica_batch_size, resolve_strategy

    settings, task = start.settings, start.task
    info = resolve_strategy(
        args.tpu, zone=args.tpu_zone, project=args.tpu_project,
        connect_timeout_s=args.tpu_timeout, cpu_replicas=args.cpu_replicas,
    )
    per_replica_batch_size(settings.batch_size, info.num_replicas, kind=info.kind)
    keras.utils.set_random_seed(settings.seed)
    config = task.model_config(start.source.config)
    steps_per_epoch = task.train_size // settings.batch_size
    _LOG.info(
        "finetune: %s (%s) on %s, %d replica(s): %d epochs of %d steps, batch %d, lr %g, max length %d",
        settings.name, task.describe(), info.device_description, info.num_replicas, settings.epochs,
        steps_per_epoch, settings.batch_size, settings.learning_rate, settings.max_seq_length,
    )
    model = _build(info, start, config, steps_per_epoch * settings.epochs, steps_per_epoch)
    train_ds = info.strategy.experimental_distribute_dataset(
        task.train_dataset(start.tokenizer, settings.batch_size, settings.seed, settings.epochs)
    )
    epochs: list[dict] = []
    best: dict = {}
    log_dir = tempfile.mkdtemp(prefix="kcbert-tf-finetune-logs-") if info.is_chief else None
    logger = core.StepLogger(log_dir, log_every=max(1, steps_per_epoch // 4))
    model.fit(train_ds, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
              callbacks=[_evaluate_each_epoch(start, epochs, best), logger], shuffle=False, verbose=2)
    for variable, value in zip(model.weights, best["weights"]):
        variable.assign(value)
    return _Fitted(model, config, epochs, best, info.num_replicas, info.is_chief, log_dir)


def _write_output(args, start: _Start, fitted: _Fitted, output) -> dict:
    """The model directory (the best epoch), its task record, ``metrics.json``, TensorBoard logs
    and the task's own files, staged and renamed; by the chief only."""
    from kcbert_tf.model.model_dir import METRICS_FILE, ModelDir
    from kcbert_tf.output_dir import staged_output

    settings, task = start.settings, start.task
    record = task.record(fitted.config)
    metrics = {
        "task": settings.name,
        "metric": settings.metric,
        "best": fitted.best["metrics"],
        "epochs": fitted.epochs,
        **task.summary,
        "settings": _jsonable(dataclasses.asdict(settings)),
        "init": args.init,
        "replicas": fitted.replicas,
    }
    if fitted.is_chief:
        with staged_output(output) as staging:
            ModelDir.write(str(staging), fitted.config, start.source.vocab, fitted.model, task=record)
            task.write_outputs(staging, fitted.best["outputs"])
            shutil.copytree(fitted.log_dir, staging / LOG_DIR)
            (staging / METRICS_FILE).write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        shutil.rmtree(fitted.log_dir, ignore_errors=True)
    best = fitted.best["metrics"]
    print(
        f"finetune: {settings.name}, best epoch {best['epoch']}: "
        + ", ".join(f"{k} {v:.4f}" for k, v in best.items() if k != "epoch" and isinstance(v, float))
        + f"; wrote {output} (model directory, {METRICS_FILE})",
        flush=True,
    )
    return metrics


def _jsonable(values: dict) -> dict:
    """Settings as JSON values (tuples as lists)."""
    return json.loads(json.dumps(values, default=list))
