"""Fine-tuning on a registered task: :func:`finetune`, and ``kcbert-tf finetune`` over it.

    fitted = kcbert_tf.finetune("nsmc", train="nsmc/train.txt", eval="nsmc/test.txt",
                                init="runs/kcbert-base", output="runs/kcbert-base-nsmc")
    fitted.model.predict(["재밌다"]), fitted.metrics["best"]

    kcbert-tf finetune --task nsmc --train nsmc/train.txt --eval nsmc/test.txt \\
        --init runs/kcbert-base --output runs/kcbert-base-nsmc

The task is looked up in the registry (:mod:`kcbert_tf.tasks.registry`): its class, which keeps
the contract of :mod:`kcbert_tf.tasks.contract` (read its files, build the batches and the model's
preprocessor, the loss, the evaluation and the best-epoch key, the task record), and its settings,
KcBERT-Finetune's for the card's tasks; every setting can be overridden (a keyword of
:func:`finetune`, a flag of the command).  The card's tasks: a label or a score per text or pair
(:mod:`kcbert_tf.tasks.sentence`: NSMC, hate speech, KorNLI, PAWS, Question Pair, KorSTS,
``custom`` TSVs), a label per token (:mod:`kcbert_tf.tasks.ner`: KLUE-NER, word<TAB>tags files),
an answer span in a passage (:mod:`kcbert_tf.tasks.qa`: KorQuAD / SQuAD v1 JSON).

:func:`finetune` reads as its phases: the settings, the start model's config and vocab (``init``:
a model directory of ours or a Hugging Face BERT directory), the task (its files read, its
features built), the start model's weights (a Hugging Face directory imported on the fly and
verified), the strategy and the model (its encoder from ``init``, a new head), the fit with an
evaluation after every epoch (the best epoch's weights are kept; ``early_stopping=N`` ends it
once N epochs in a row have not beaten the best), then the output.  Training runs on the
pretraining core (:mod:`kcbert_tf.training.core`): the same strategies (a TPU, several GPUs,
``cpu_replicas=N``, or a strategy of yours), BERT's AdamW with the task's settings (eps 1e-8,
weight decay 0, linear decay, no warmup unless ``warmup_steps`` or ``warmup_ratio``, the summed
gradients clipped at 1.0), one replica's dropout masks per replica.  ``seeds=[1, 2, 3]`` runs the
whole fine-tuning once per seed, in this process one after the other, and keeps the best seed's
model, with the mean and sample standard deviation of every score over the seeds.

The output (written under a temporary name, renamed when complete) is a model directory (a
KerasHub preset): ``config.json`` in transformers' form for the head (``id2label``, ``label2id``,
``problem_type`` where they apply), ``vocab.txt``, ``model.weights.h5`` (the best epoch),
``task.json`` (the task record: what the model needs in order to be used, its preprocessor's
settings), ``metrics.json`` (every epoch, the best, the epoch early stopping ended on, the
training settings and schedule; with ``seeds`` a ``"seeds"`` section), ``logs/`` (TensorBoard) and
the task's own files (QA: ``predictions.json``); with ``seeds`` and ``keep_each_seed``, each seed's
model directory in ``seed-N/``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib
import json
import logging
import os
import pathlib
import shutil
import statistics
import tempfile
import threading
from typing import Sequence

import keras

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.conversion.hugging_face import (
    ENCODER, TransformersReference, check_agreement, convert_hf, is_hf_directory, keras_outputs, read_hf_config,
    verification_ids,
)
from kcbert_tf.errors import UserError
from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.heads import head
from kcbert_tf.model.model_dir import METRICS_FILE, ModelDir
from kcbert_tf.model.presets import build_model, load_model
from kcbert_tf.model.tokenizer import KcBertTokenizer
from kcbert_tf.output_dir import check_output_dir, staged_output
from kcbert_tf.tasks.contract import FineTuningTask, TaskFiles, TrainingSettings, flags_of
from kcbert_tf.tasks.registry import preset, task_classes
from kcbert_tf.text.model_inputs import check_sequence_length
from kcbert_tf.training import core
from kcbert_tf.training.length_buckets import bucketed_dataset, plan_batches
from kcbert_tf.training.strategy import Devices, StrategyInfo, fit_settings, per_replica_batch_size

__all__ = ["FineTuned", "finetune", "build_arg_parser", "run"]

_LOG = logging.getLogger(__name__)

LOG_DIR = "logs"


@dataclasses.dataclass
class FineTuned:
    """What :func:`finetune` returns: the fitted model (the best epoch's weights, with its
    preprocessor: ``predict(["raw text"])`` works), its scores (what ``metrics.json`` holds) and
    the directory written (None without ``output``)."""

    model: object
    metrics: dict
    output: str | None


def _flag_names() -> dict[str, str]:
    """Settings field → its flag, over every task's settings."""
    names = {spec.field: spec.flag for spec in flags_of(TrainingSettings)}
    for cls in task_classes():
        names.update({spec.field: spec.flag for spec in flags_of(cls.settings_type)})
    return names


def task_settings(task: str, overrides: dict) -> tuple[type[FineTuningTask], TrainingSettings]:
    """The task class and its registered settings with ``overrides`` (settings fields), checked;
    a field the task's settings do not have is refused, named as its flag."""
    chosen = preset(task)
    fields = {field.name for field in dataclasses.fields(chosen.settings)}
    unread = [name for name in overrides if name not in fields]
    if unread:
        flags = _flag_names()
        raise UserError(f"--task {task} does not read {', '.join(flags.get(name, name) for name in unread)}")
    settings = dataclasses.replace(chosen.settings, **overrides)
    settings.check()
    return chosen.task, settings


def finetune(
    task: str,
    *,
    train: str,
    eval: str | None = None,
    init: str,
    output: str | None = None,
    limit_train: int | None = None,
    allow_pickle: bool = False,
    overwrite: bool = False,
    strategy=None,
    devices: Devices = Devices(),
    seeds: str | Sequence[int] | None = None,
    keep_each_seed: bool = False,
    **settings,
) -> FineTuned:
    """Fine-tune ``init`` on ``task`` and return the fitted model and its scores.

    Args:
        task: a registered task (``nsmc``, ``korsts``, ``klue-ner``, ``korquad``, ``custom``, ...).
        train, eval: the task's files (``eval`` may be left out for ``korquad`` with ``eval_split``).
        init: the start: a model directory of ours (its encoder is taken) or a Hugging Face BERT
            directory (imported on the fly and verified as ``import-hf`` does).
        output: the model directory to write (None: nothing is written).
        limit_train: use only the first N training examples.
        allow_pickle: a Hugging Face ``init`` may hold only ``pytorch_model.bin``.
        overwrite: replace ``output`` once the new one is complete.
        strategy: a ``tf.distribute`` strategy to train under (e.g. the ``TPUStrategy`` of a
            notebook); else ``devices`` (:class:`~kcbert_tf.training.strategy.Devices`: a TPU,
            ``cpu_replicas=N``), the GPUs, or the CPU.
        seeds: run the whole fine-tuning once per seed (``"1,2,3"`` or ``[1, 2, 3]``; instead of
            ``seed``), one after the other, each exactly the run ``seed=N`` alone gives; the
            model (and ``output``) is the best seed's by the task's metric, and the metrics hold
            a ``"seeds"`` section: each seed's best scores, their mean and sample standard
            deviation, the chosen seed.
        keep_each_seed: with ``seeds``, also write each seed's model directory to
            ``output/seed-N/``.
        **settings: the task's settings to override (``max_seq_length``, ``epochs``,
            ``batch_size``, ``learning_rate``, ``seed``, ``warmup_ratio``, ``early_stopping``,
            ``text_column``, ``doc_stride``, ...).
    """
    seed_list = _seed_list(seeds, settings, keep_each_seed, output)
    task_cls, task_settings_ = task_settings(task, settings)
    devices.split_cpu()  # before TensorFlow sets up its devices
    output_path = None if output is None else check_output_dir(output, overwrite)
    if is_hf_directory(init):  # converted once the files are read; its config and vocab now
        config, vocab = read_hf_config(init, "--init")
        tokenizer = KcBertTokenizer(vocabulary=vocab)
        # transformers' side of the start's verification loads in a child process meanwhile.
        ids = verification_ids(vocab, config.max_position_embeddings, tokenizer.word_piece)
        start = Start(init, config, tokenizer, None, TransformersReference(init, ids, ENCODER))
    else:
        ours = ModelDir.read(init)
        start = Start(init, ours.config, KcBertTokenizer(vocabulary=ours.vocab), ours, None)
    files = TaskFiles(train, eval, limit_train)
    try:
        if seed_list is None:
            return _finetune(task, task_cls, task_settings_, files, start, output, output_path, allow_pickle,
                             strategy, devices)
        return _finetune_seeds(task, task_cls, task_settings_, files, start, output, output_path, allow_pickle,
                               strategy, devices, seed_list, keep_each_seed)
    finally:
        if start.reference is not None:
            start.reference.close()


def _seed_list(seeds, settings: dict, keep_each_seed: bool, output) -> tuple[int, ...] | None:
    """``seeds`` (``"1,2,3"`` or integers) as distinct integers, or None: one run; checked
    against the other keywords."""
    if seeds is None:
        if keep_each_seed:
            raise UserError("--keep-each-seed keeps the model of each seed of --seeds: give --seeds too")
        return None
    if "seed" in settings:
        raise UserError(f"--seed {settings['seed']} and --seeds both set the seed: give --seeds (each seed in turn) "
                        f"or --seed (one run)")
    if keep_each_seed and output is None:
        raise UserError("--keep-each-seed writes each seed's model under --output: give --output")
    parts = [part.strip() for part in seeds.split(",")] if isinstance(seeds, str) else list(seeds)
    try:
        parsed = tuple(int(part) for part in parts)
        if any(isinstance(part, float) or isinstance(part, bool) for part in parts):
            raise ValueError
    except (TypeError, ValueError):
        parsed = ()
    if not parsed or len(set(parsed)) != len(parsed) or min(parsed) < 0:
        raise UserError(f"--seeds takes distinct integers >= 0 separated by commas, such as 1,2,3; got {seeds!r}")
    return parsed


@dataclasses.dataclass(frozen=True)
class Start:
    """Where fine-tuning starts: ``init``, its config and tokenizer, and our model directory or,
    for a Hugging Face directory, the child process computing transformers' side of its check."""

    path: str
    config: BertConfig
    tokenizer: KcBertTokenizer
    model_dir: ModelDir | None
    reference: TransformersReference | None


@dataclasses.dataclass
class _Run:
    """One fine-tuning run: the fitted model (the best epoch's weights, its preprocessor
    attached), what ``metrics.json`` holds, and what the model directory is written from."""

    model: object
    metrics: dict
    config: BertConfig
    vocab: list
    fine_tuning: FineTuningTask
    outputs: object  # the best epoch's Evaluation.outputs (None: no files beside the model)
    log_dir: str | None
    info: StrategyInfo

    @property
    def score(self) -> float:
        return self.metrics["best"][self.metrics["metric"]]

    def write(self, directory: pathlib.Path, metrics: dict | None = None) -> None:
        """The model directory: the model, its record, the task's files, the logs, ``metrics.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        ModelDir.write(str(directory), self.config, self.vocab, self.model, task=self.model.record)
        if self.outputs is not None:
            self.fine_tuning.write_outputs(directory, self.outputs)
        shutil.copytree(self.log_dir, directory / LOG_DIR)
        text = json.dumps(self.metrics if metrics is None else metrics, indent=2, ensure_ascii=False) + "\n"
        (directory / METRICS_FILE).write_text(text, encoding="utf-8")

    def close(self) -> None:
        """Remove the TensorBoard logs' temporary directory."""
        if self.log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def line(self) -> str:
        scores = self.metrics["best"]
        stopped = self.metrics["stopped_early_at_epoch"]
        return (f"best epoch {scores['epoch']}: " + _scores_text(scores)
                + (f" (stopped early after epoch {stopped})" if stopped else ""))


def _scores_text(scores: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "epoch" and isinstance(v, float))


def _finetune(task: str, task_cls, task_settings_, files: TaskFiles, start: Start, output, output_path,
              allow_pickle: bool, strategy, devices: Devices) -> FineTuned:
    """The phases of :func:`finetune` once the start's config and vocab are read: one run."""
    run = _run(task, task_cls, task_settings_, files, start, {}, allow_pickle, strategy, devices)
    if output_path is not None and run.info.is_chief:
        with staged_output(output_path) as staging:
            run.write(staging)
    run.close()
    print(f"finetune: {task}, {run.line()}"
          + (f"; wrote {output} (model directory, {METRICS_FILE})" if output_path is not None else ""), flush=True)
    return FineTuned(run.model, run.metrics, None if output_path is None else str(output_path))


def _finetune_seeds(task: str, task_cls, task_settings_, files: TaskFiles, start: Start, output, output_path,
                    allow_pickle: bool, strategy, devices: Devices, seeds: tuple[int, ...],
                    keep_each_seed: bool) -> FineTuned:
    """``finetune(seeds=...)``: the whole run once per seed, in turn, in this process; the best
    seed's model (the first of equals) kept in memory and written to ``output`` with the seeds'
    summary, each other seed's model freed once it has lost (written first to
    ``output/seed-N/`` with ``keep_each_seed``)."""
    loaded: dict = {}  # the strategy and the start model, shared by the seeds' runs
    runs: list[tuple[int, dict]] = []
    # The best run so far lives in ``kept`` only, never in a local variable of this frame: tracing
    # during the next seed's fit may snapshot the calling frames' locals (``frame.f_locals``, before
    # Python 3.13), and a snapshot would keep a run it saw alive, its model with it.
    kept: list[_Run] = []
    try:
        with contextlib.ExitStack() as stack:
            staging: list[pathlib.Path] = []

            def next_seed(seed: int) -> None:
                run = _run(task, task_cls, dataclasses.replace(task_settings_, seed=seed), files, start, loaded,
                           allow_pickle, strategy, devices)
                if not staging and output_path is not None and run.info.is_chief:
                    staging.append(stack.enter_context(staged_output(output_path)))
                if staging and keep_each_seed:
                    run.write(staging[0] / f"seed-{seed}")
                print(f"finetune: {task}, seed {seed}, {run.line()}", flush=True)
                runs.append((seed, run.metrics))
                if kept and run.score <= kept[0].score:  # the first of equals stays
                    run.close()
                    return
                if kept:
                    kept[0].close()
                kept[:] = [run]

            for seed in seeds:
                next_seed(seed)
                # Frees the losing run's model.  Not keras.backend.clear_session(): it would also
                # reset the user's global Keras settings (a dtype policy) for the next seed.
                gc.collect()
            best = kept[0]
            summary = seed_summary(best.metrics["metric"], runs)
            metrics = {**best.metrics, "seeds": summary}
            if staging:
                best.write(staging[0], metrics)
    finally:
        for run in kept:
            run.close()
    print(f"finetune: {task} over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), mean ± sd of the best epochs: "
          + ", ".join(f"{name} {mean:.4f} ± {_sd_text(summary['sd'][name])}" for name, mean in summary["mean"].items())
          + f"; best seed {summary['chosen_seed']} ({summary['metric']} {best.score:.4f})"
          + (f"; wrote {output} (the best seed's model directory, {METRICS_FILE} with \"seeds\""
             + (f"; each seed's in {output}/seed-N)" if keep_each_seed else ")") if output_path is not None else ""),
          flush=True)
    return FineTuned(best.model, metrics, None if output_path is None else str(output_path))


def _sd_text(sd: float | None) -> str:
    return "-" if sd is None else f"{sd:.4f}"


def seed_summary(metric: str, runs: Sequence[tuple[int, dict]]) -> dict:
    """The ``"seeds"`` section of ``metrics.json`` from ``(seed, metrics)`` of each run: each
    seed's best scores, and per numeric score (the epoch aside) the mean and the sample standard
    deviation over the seeds (ddof 1; None for one seed); the chosen seed is the first of the best
    by ``metric``."""
    bests = [(seed, metrics["best"]) for seed, metrics in runs]
    names = [name for name, value in bests[0][1].items()
             if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)
             and all(name in best for _, best in bests)]
    names.sort(key=lambda name: (name != metric, name == "train_loss"))  # the metric, the eval's, the loss
    values = {name: [float(best[name]) for _, best in bests] for name in names}
    chosen = max(bests, key=lambda pair: pair[1][metric])[0]  # max keeps the first of equals
    return {
        "seeds": [seed for seed, _ in runs],
        "metric": metric,
        "chosen_seed": chosen,
        "runs": [{"seed": seed, "best": metrics["best"], "stopped_early_at_epoch": metrics["stopped_early_at_epoch"]}
                 for seed, metrics in runs],
        "mean": {name: statistics.fmean(each) for name, each in values.items()},
        "sd": {name: statistics.stdev(each) if len(each) > 1 else None for name, each in values.items()},
    }


def _run(task: str, task_cls, task_settings_, files: TaskFiles, start: Start, loaded: dict, allow_pickle: bool,
         strategy, devices: Devices) -> _Run:
    """One run: the task built (its files read and checked), the strategy and the start model (kept
    in ``loaded`` for the next run of the same start), the fit; the model and its metrics."""
    train, init, init_config, vocab = files.train, start.path, start.config, start.tokenizer.get_vocabulary()
    fine_tuning = task_cls(task, task_settings_, files, start.tokenizer)
    record = fine_tuning.record()
    check_sequence_length(record.max_seq_length, init_config.max_position_embeddings,
                          source=os.path.join(init, "config.json"),
                          subject=f"--max-seq-length {record.max_seq_length} (the {task} setting or yours)",
                          at_least=record.min_seq_length)
    if fine_tuning.train_size < task_settings_.batch_size:
        raise UserError(f"{train}: {fine_tuning.train_size} training example(s), fewer than one batch of "
                        f"{task_settings_.batch_size}")
    if "info" not in loaded:
        loaded["info"] = devices.resolve(strategy)
    info = loaded["info"]
    callbacks = []
    if "start_model" in loaded:
        start_model = loaded["start_model"]
    elif start.model_dir is not None:
        start_model = loaded["start_model"] = load_model(start.model_dir, preprocessor=False)
    else:  # a Hugging Face directory, converted in memory (and checked once, in the first run)
        _LOG.info("%s is a Hugging Face directory: converting it (verified against transformers)", init)
        start_model = loaded["start_model"] = convert_hf(init, init_config, vocab, allow_pickle=allow_pickle,
                                                         flag="--init").model
        callbacks.append(CheckStartAgainstTransformers(keras_outputs(start_model, start.reference.ids, ENCODER),
                                                       start.reference))
    model, config, fitted, log_dir = _fit(fine_tuning, start_model, init_config, info, callbacks)
    model.preprocessor = fine_tuning.preprocessor
    model.record = record
    metrics = {
        "task": task,
        "metric": fine_tuning.settings.metric,
        "best": fitted.best["scores"],
        "epochs": fitted.epochs,
        "stopped_early_at_epoch": fitted.stopped_at,
        **fine_tuning.summary,
        "settings": _training_settings(fine_tuning.settings),
        "schedule": {"total_steps": fitted.total_steps, "warmup_steps": fitted.warmup_steps},
        "init": init,
        "replicas": info.num_replicas,
    }
    return _Run(model, metrics, config, vocab, fine_tuning, fitted.best["outputs"], log_dir, info)


def _training_settings(settings: TrainingSettings) -> dict:
    """How the model was trained, for ``metrics.json``: the shared settings but the length (the
    task record holds how the model is used)."""
    return {field.name: getattr(settings, field.name) for field in dataclasses.fields(TrainingSettings)
            if field.name != "max_seq_length"}


def _build(info: StrategyInfo, fine_tuning: FineTuningTask, pretrained, config, total_steps: int,
           steps_per_epoch: int):
    """The model of ``config`` to train under the strategy: the task's head on the encoder of
    ``pretrained`` (the start, built outside the scope: only read from), compiled with the task's
    loss and BERT's AdamW (no preprocessor: the batches are model inputs)."""
    settings = fine_tuning.settings
    with info.strategy.scope():
        model = build_model(config)
        for target, value in zip(model.backbone.weights, pretrained.backbone.weights):
            target.assign(value)
        if not head(config.head).uses_pooler:
            model.backbone.pooled_dense.trainable = False  # no gradient reaches it
        core.prepare_model(model, grad_accum_steps=settings.grad_accum_steps)
        optimizer = core.build_optimizer(core.OptimizerSettings(
            learning_rate=settings.learning_rate, warmup_steps=settings.warmup_for(total_steps),
            total_steps=total_steps, weight_decay=settings.weight_decay, epsilon=settings.adam_epsilon,
            clip_norm=settings.clip_norm,
        ))
        fit = fit_settings(info, "auto", 1, steps_per_epoch)  # XLA off under TPUStrategy / MirroredStrategy
        model.compile(optimizer=optimizer, jit_compile=fit.jit_compile, steps_per_execution=fit.steps_per_execution,
                      **fine_tuning.compile_args())
        # Its slots now, eagerly: Keras would create them inside the first step's trace, each
        # variable's initializer lifted out through a tf.cond (2.5 s of that step, any model size).
        optimizer.build(model.trainable_variables)
    return model


class CheckStartAgainstTransformers(keras.callbacks.Callback):
    """The check of a Hugging Face start: its encoder's outputs in Keras (computed before
    training) against transformers', compared after the first step at which the child process
    that loads transformers (at a lower priority: it takes the cores training leaves) is done, and
    at the latest when training ends; a difference ends the run before anything is written."""

    def __init__(self, keras_values, reference: TransformersReference):
        super().__init__()
        self.keras_values, self.reference = keras_values, reference

    def _check(self, wait: bool) -> None:
        if self.reference is not None and (wait or self.reference.done()):
            reference, self.reference = self.reference, None
            check_agreement(self.keras_values, reference, ENCODER)

    def on_train_batch_end(self, batch, logs=None):
        self._check(wait=False)

    def on_train_end(self, logs=None):
        self._check(wait=True)


class EvaluateEachEpoch(keras.callbacks.Callback):
    """Scores the eval file after every epoch and keeps the best epoch's weights and outputs (by
    the task's metric; higher is better).  With ``patience`` N > 0 it stops training once N
    epochs in a row have not improved on the best (transformers' ``EarlyStoppingCallback`` with
    threshold 0); :attr:`stopped_at` is then the last epoch run."""

    def __init__(self, fine_tuning: FineTuningTask, epochs: list, best: dict, patience: int = 0):
        super().__init__()
        self.fine_tuning, self.epochs, self.best = fine_tuning, epochs, best
        self.patience, self.waited, self.stopped_at = patience, 0, None

    def on_epoch_end(self, epoch, logs=None):
        fine_tuning, metric = self.fine_tuning, self.fine_tuning.settings.metric
        evaluation = fine_tuning.evaluate(self.model)
        scores = {"epoch": epoch + 1, "train_loss": float((logs or {}).get("loss", float("nan"))), **evaluation.scores}
        if metric not in scores:
            raise UserError(f"task {fine_tuning.name}: its evaluation has no {metric!r} (it gave {sorted(scores)})")
        self.epochs.append(scores)
        if logs is not None:  # the StepLogger after this callback writes them to TensorBoard
            logs.update({f"val_{key}": value for key, value in scores.items()
                         if key not in ("epoch", "train_loss") and isinstance(value, float)})
        _LOG.info("epoch %d: %s", epoch + 1, ", ".join(
            f"{k} {v:.4f}" for k, v in scores.items() if k != "epoch" and isinstance(v, float)))
        if not self.best or scores[metric] > self.best["scores"][metric]:
            self.best.update(scores=scores, weights=[w.numpy() for w in self.model.weights], outputs=evaluation.outputs)
            self.waited = 0
        else:
            self.waited += 1
        if self.patience and self.waited >= self.patience:
            _LOG.info("epoch %d: no better %s for %d epoch(s): stopping early", epoch + 1, metric, self.waited)
            self.model.stop_training = True
            self.stopped_at = epoch + 1


@dataclasses.dataclass
class _Fitted:
    """What :func:`_fit` measured: every epoch's scores, the best epoch's (``scores``, ``weights``,
    ``outputs``), the epoch early stopping ended on (None: every epoch ran) and the schedule."""

    epochs: list
    best: dict
    stopped_at: int | None
    total_steps: int
    warmup_steps: int


def _fit(fine_tuning: FineTuningTask, start, start_config, info: StrategyInfo, callbacks: list):
    """Train on the strategy, evaluating after every epoch (stopping early with
    ``settings.early_stopping``); the model with the best epoch's weights, its config, what was
    measured (:class:`_Fitted`) and the TensorBoard logs.  The learning-rate schedule spans every
    epoch of ``settings.epochs``, whether or not training stops early (as in transformers)."""
    settings = fine_tuning.settings
    per_replica_batch_size(settings.batch_size, info.num_replicas, kind=info.kind,
                           grad_accum_steps=settings.grad_accum_steps)
    keras.utils.set_random_seed(settings.seed)
    examples = fine_tuning.training_examples()
    steps_per_epoch = -(-len(examples) // settings.batch_size)  # every example once: the last batch filled up
    _LOG.info(
        "finetune: %s (%s) on %s, %d replica(s): %d epochs of %d steps, batch %d, lr %g, max length %d",
        fine_tuning.name, fine_tuning.describe(), info.device_description, info.num_replicas, settings.epochs,
        steps_per_epoch, settings.batch_size, settings.learning_rate, settings.max_seq_length,
    )
    config = start_config.for_head(fine_tuning.head, fine_tuning.labels)
    total_steps = steps_per_epoch * settings.epochs
    model = _build(info, fine_tuning, start, config, total_steps, steps_per_epoch)
    # A TPU, or XLA, compiles the step for every shape: there a few widths; elsewhere each batch its longest.
    widths = settings.bucket_widths(compiled_per_shape=info.kind == "tpu" or bool(model.jit_compile))
    plan = plan_batches(examples.lengths, batch_size=settings.batch_size, epochs=settings.epochs, seed=settings.seed,
                        widths=widths)
    real = int(examples.lengths.sum()) * settings.epochs
    _LOG.info("finetune: batches %s; they compute %.2f ids per real id (padded to the max length: %.2f)",
              "cut to their longest example" if widths is None else "padded to " + "/".join(map(str, widths)) + " ids",
              float(plan.widths.sum()) * settings.batch_size / real,
              len(plan.widths) * settings.batch_size * settings.max_seq_length / real)
    dataset = bucketed_dataset(examples, plan, fine_tuning.training_batch)
    train_ds = info.strategy.experimental_distribute_dataset(dataset)
    epochs: list[dict] = []
    best: dict = {}
    log_dir = tempfile.mkdtemp(prefix="kcbert-tf-finetune-logs-") if info.is_chief else None
    logger = core.StepLogger(log_dir, log_every=max(1, steps_per_epoch // 4))
    for module in fine_tuning.evaluation_imports:  # about 1 s for scikit-learn, on the cores training leaves
        threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()
    evaluate = EvaluateEachEpoch(fine_tuning, epochs, best, patience=settings.early_stopping)
    model.fit(train_ds, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
              callbacks=[*callbacks, evaluate, logger], shuffle=False, verbose=2)
    for variable, value in zip(model.weights, best["weights"]):
        variable.assign(value)
    fitted = _Fitted(epochs, best, evaluate.stopped_at, total_steps, settings.warmup_for(total_steps))
    return model, config, fitted, log_dir


# --- The command --------------------------------------------------------------------------------


def _task_flags() -> list:
    """Every task's own flags (beyond the shared ones), each once."""
    shared = {spec.field for spec in flags_of(TrainingSettings)}
    found = {}
    for cls in task_classes():
        for spec in flags_of(cls.settings_type):
            if spec.field not in shared:
                found.setdefault(spec.flag, spec)
    return list(found.values())


def _add_flag(group, spec) -> None:
    if spec.kind is bool:
        group.add_argument(spec.flag, dest=spec.field, action="store_const", const=not spec.switches_off,
                           default=None, help=spec.help)
    else:
        group.add_argument(spec.flag, dest=spec.field, type=spec.kind, default=None, help=spec.help)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf finetune",
        description="Fine-tune a KcBERT model directory on a registered task (sentence, pair, NER, QA).",
    )
    parser.add_argument("--task", required=True, help="a registered task: nsmc, hate-speech, kornli, paws, "
                        "question-pair, korsts, klue-ner, word-tags, korquad, 'custom' with the column flags, or "
                        "a task an installed package registers (the kcbert_tf.tasks entry points)")
    parser.add_argument("--train", required=True, help="the training file (sentence tasks: tab-separated, a header "
                        "line; NER: KLUE-NER or words<TAB>tags; korquad: SQuAD v1 JSON)")
    parser.add_argument("--eval", default=None, help="the evaluation file, same format")
    parser.add_argument(
        "--init", required=True,
        help="the start: a model directory of ours (`pretrain`, `import-hf`, `finetune`: its encoder is "
        "taken) or a Hugging Face BERT directory (e.g. a local copy of beomi/kcbert-base), imported "
        "on the fly and verified as `import-hf` does",
    )
    parser.add_argument("--allow-pickle", action="store_true",
                        help="an --init Hugging Face directory may hold only pytorch_model.bin (loading a pickle runs code)")
    parser.add_argument("--output", required=True, help="the fine-tuned model directory to write (local)")
    parser.add_argument("--limit-train", type=int, help="use only the first N training examples (sentences, questions)")
    Devices.add_flags(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace --output when the new one is complete")
    shared = parser.add_argument_group("training settings (default: the task's)")
    for spec in flags_of(TrainingSettings):
        _add_flag(shared, spec)
    seeds = parser.add_argument_group("runs over several seeds")
    seeds.add_argument("--seeds", default=None, metavar="N,N,...",
                       help="run the whole fine-tuning once per seed (instead of --seed), one after the other, each "
                       "as --seed N alone runs; print each seed's best scores and their mean ± sd; --output gets the "
                       "best seed's model (by the task's metric), its metrics.json a \"seeds\" section")
    seeds.add_argument("--keep-each-seed", action="store_true",
                       help="with --seeds, also write each seed's model directory to OUTPUT/seed-N/")
    own = parser.add_argument_group("the tasks' own settings (each task reads its own)")
    for spec in _task_flags():
        _add_flag(own, spec)
    return parser


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf finetune``: the flags parsed into one :func:`finetune` call (the task's
    settings as keywords); return the metrics (also in ``metrics.json``)."""
    return call_with_flags(finetune, build_arg_parser(), argv).metrics
