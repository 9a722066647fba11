"""Masked-LM pretraining with ``model.fit`` under a tf.distribute strategy: ``kcbert-tf pretrain``.

The recipe is stock BERT, as KcBERT used it: AdamW with decoupled weight decay 0.01 (not on
LayerNorm parameters and biases), linear warmup to the peak learning rate then linear decay to
zero (:class:`~kcbert_tf.lr_schedule.WarmupLinearDecay`), global gradient clipping at 1.0, masks
drawn afresh each epoch by the input pipeline (:mod:`kcbert_tf.data`), mixed precision on TPU/GPU.

The model directory (``--model-dir``, local or ``gs://``)::

    config.json, vocab.txt      written first: the model's config and the vocab of the data
    checkpoints/                tf.train checkpoints every ``checkpoint_every`` steps (last K kept):
                                weights, optimizer state (step, moments), dropout RNG state
    logs/train, logs/validation TensorBoard: loss, MLM accuracy, learning rate, tokens/s
    model.weights.h5            the final weights, written last under a temporary name, renamed
    training_state.json         settings and the last measured numbers

Training runs in "epochs" of one checkpoint interval.  A run killed at any moment and started
again with the same command restores the last checkpoint (same step, optimizer state, learning
rate and RNG state) and skips the data it had already consumed, so it continues exactly where the
checkpoint was taken, losing at most one interval.

Example (CPU, a few steps of the tiny config)::

    kcbert-tf pretrain --config configs/kcbert-tiny.json --data 'data/*.tfrecord' \\
        --model-dir runs/tiny --train-config configs/pretrain-tiny.json --steps 200
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
from typing import Sequence

import keras

from kcbert_tf.modeling import WEIGHTS_FILE

__all__ = ["TrainConfig", "build_arg_parser", "run", "main"]

_LOG = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
STATE_FILE = "training_state.json"


class TrainingError(Exception):
    """A problem the user can fix; the command prints it and exits with status 2."""


@dataclasses.dataclass
class TrainConfig:
    """A training config (``configs/pretrain-*.json``); command-line flags override fields."""

    batch_size: int = 256
    train_steps: int = 1_000_000
    learning_rate: float = 1e-4
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    adam_beta_1: float = 0.9
    adam_beta_2: float = 0.999
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0
    mask_rate: float = 0.15
    max_predictions_per_seq: int | None = None
    shuffle_buffer: int = 100_000
    checkpoint_every: int = 10_000
    keep_checkpoints: int = 5
    eval_every: int = 10_000
    eval_steps: int = 200
    eval_file_fraction: float = 0.0
    log_every: int = 100
    steps_per_execution: int = 1
    mixed_precision: str = "auto"
    jit_compile: bool | str = "auto"
    seed: int = 0

    @classmethod
    def from_file(cls, path: str) -> "TrainConfig":
        import tensorflow as tf

        try:
            with tf.io.gfile.GFile(path, "r") as handle:
                values = json.load(handle)
        except (tf.errors.NotFoundError, FileNotFoundError):
            raise TrainingError(f"--train-config {path}: no such file (see configs/pretrain-base.json)") from None
        except ValueError as error:
            raise TrainingError(f"--train-config {path}: not valid JSON ({error})") from None
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(key for key in values if key not in names and not key.startswith("_"))
        if unknown:
            raise TrainingError(f"--train-config {path}: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**{key: value for key, value in values.items() if key in names})


def effective_checkpoint_interval(train_steps: int, checkpoint_every: int) -> int:
    """The checkpoint interval: ``checkpoint_every``, or the largest divisor of ``train_steps``
    below it, so that training ends exactly on a checkpoint."""
    interval = max(1, min(checkpoint_every, train_steps))
    while train_steps % interval:
        interval -= 1
    return interval


def weight_decay_excluded(variable_path: str) -> bool:
    """BERT's rule: no weight decay on LayerNorm parameters and biases."""
    name = variable_path.rsplit("/", 1)[-1]
    return name in ("gamma", "beta") or "bias" in name


def build_optimizer(train: TrainConfig):
    import keras

    from kcbert_tf.lr_schedule import WarmupLinearDecay

    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(train.learning_rate, train.warmup_steps, train.train_steps),
        weight_decay=train.weight_decay,
        beta_1=train.adam_beta_1,
        beta_2=train.adam_beta_2,
        epsilon=train.adam_epsilon,
        global_clipnorm=train.clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def compile_masked_lm(model, train: TrainConfig, jit_compile) -> None:
    import keras

    model.compile(
        optimizer=build_optimizer(train),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=train.steps_per_execution,
        jit_compile=jit_compile,
    )


def training_checkpoint(model):
    """A ``tf.train.Checkpoint`` of everything a resumed run needs: weights, optimizer state
    (step counter, moments) and the dropout RNG state (Keras keeps it outside ``model``'s tracked
    weights, so it is listed here)."""
    import tensorflow as tf

    rng_state = [
        variable.value for variable in model.non_trainable_variables if "seed_generator" in variable.path
    ]
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer, rng_state=rng_state)


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Save a checkpoint at the end of every epoch (= one checkpoint interval)."""

    def __init__(self, manager, iterations):
        super().__init__()
        self._manager = manager
        self._iterations = iterations

    def on_epoch_end(self, epoch, logs=None):
        step = int(self._iterations.numpy())
        _LOG.info("step %d: checkpoint %s", step, self._manager.save(checkpoint_number=step))


class TrainingMonitor(keras.callbacks.Callback):
    """Learning rate, tokens/s and non-pad tokens/s, to TensorBoard (``logs/train``) and ``last``.

    ``tokens_per_step`` is the global batch times the sequence length; ``fill_ratio`` the share of
    non-pad tokens in the data (from its ``stats.json``).
    """

    def __init__(self, log_dir: str, tokens_per_step: int, fill_ratio: float, log_every: int):
        super().__init__()
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
        self._tokens_per_step = tokens_per_step
        self._fill_ratio = fill_ratio
        self._log_every = log_every
        self._mark: tuple[float, int] | None = None
        self.first: dict = {}
        self.last: dict = {}

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        now = time.perf_counter()
        if self._mark is None:  # The first call includes tracing and compiling: start after it.
            self._mark = (now, step)
            self.first = {"step": step, **{key: float(value) for key, value in (logs or {}).items()}}
            return
        start_time, start_step = self._mark
        if step - start_step < self._log_every:
            return
        tokens_per_second = (step - start_step) * self._tokens_per_step / (now - start_time)
        self.last = {
            "step": step,
            "learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
            "tokens_per_second": tokens_per_second,
            "non_pad_tokens_per_second": tokens_per_second * self._fill_ratio,
            **{key: float(value) for key, value in (logs or {}).items()},
        }
        # record_if(True): Keras' TensorBoard callback wraps training in its own record_if.
        with self._writer.as_default(step=step), tf.summary.record_if(True):
            for key in ("learning_rate", "tokens_per_second", "non_pad_tokens_per_second"):
                tf.summary.scalar(key, self.last[key])
        self._writer.flush()
        self._mark = (now, step)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf pretrain",
        description="Pretrain a KcBERT masked LM on packed TFRecords with model.fit "
        "(TPUStrategy with --tpu, MirroredStrategy on 2+ GPUs, else the default strategy).",
    )
    parser.add_argument("--config", required=True, help="model config.json (configs/kcbert-base.json)")
    parser.add_argument("--data", required=True, help="make-pretraining-data output: a directory or a glob of *.tfrecord")
    parser.add_argument("--model-dir", required=True, help="checkpoints, logs and the final model (local or gs://)")
    parser.add_argument("--train-config", default=None, help="training config (configs/pretrain-base.json)")
    parser.add_argument("--vocab", default=None, help="the data's vocab.txt (default: the one beside the data)")
    parser.add_argument("--eval-data", default=None, help="a glob of held-out records for MLM loss/accuracy")
    parser.add_argument("--init", default=None, help="start from the weights of this model directory (e.g. import-hf output)")
    parser.add_argument("--steps", type=int, default=None, help="total training steps")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (split over replicas)")
    parser.add_argument("--learning-rate", type=float, default=None, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--steps-per-execution", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tpu", default=None, help="'local' on a Cloud TPU VM, a TPU name, or grpc://host:port")
    parser.add_argument("--tpu-zone", default=None, help="zone of a TPU node")
    parser.add_argument("--tpu-project", default=None, help="GCP project of a TPU node")
    parser.add_argument("--tpu-timeout", type=float, default=300, help="seconds to reach the TPU before giving up")
    parser.add_argument("--mixed-precision", choices=["auto", "bf16", "fp16", "off"], default=None)
    parser.add_argument("--deterministic", action="store_true", help="deterministic ops (reproducible, slower)")
    return parser


def _train_config(args: argparse.Namespace) -> TrainConfig:
    train = TrainConfig.from_file(args.train_config) if args.train_config else TrainConfig()
    overrides = {
        "train_steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "warmup_steps": args.warmup_steps,
        "checkpoint_every": args.checkpoint_every,
        "steps_per_execution": args.steps_per_execution,
        "seed": args.seed,
        "mixed_precision": args.mixed_precision,
    }
    train = dataclasses.replace(train, **{k: v for k, v in overrides.items() if v is not None})
    for name in ("batch_size", "train_steps", "checkpoint_every", "steps_per_execution", "log_every", "eval_steps"):
        if getattr(train, name) <= 0:
            raise TrainingError(f"{name} must be > 0, got {getattr(train, name)}")
    if train.warmup_steps > train.train_steps:
        raise TrainingError(f"warmup_steps {train.warmup_steps} is more than train_steps {train.train_steps}")
    return train


def _data_files(pattern: str) -> list[str]:
    from kcbert_tf.data import DataError, resolve_files

    try:
        return resolve_files(pattern)
    except DataError as error:
        raise TrainingError(str(error)) from None


def _data_fill_ratio(files: list[str]) -> float:
    """The data's fill ratio from its ``stats.json`` (1.0 when unknown): for non-pad tokens/s."""
    import tensorflow as tf

    stats_path = os.path.join(os.path.dirname(files[0]), "stats.json")
    try:
        with tf.io.gfile.GFile(stats_path, "r") as handle:
            return float(json.load(handle)["fill_ratio"])
    except Exception:
        return 1.0


def run(argv: Sequence[str] | None = None) -> dict:
    """Train from command-line arguments; return the final numbers (also in training_state.json)."""
    args = build_arg_parser().parse_args(argv)
    train = _train_config(args)

    import tensorflow as tf

    from kcbert_tf import data as pretraining_data
    from kcbert_tf.distribution import mixed_precision_policy, per_replica_batch_size, resolve_strategy
    from kcbert_tf.model_config import ConfigError, read_model_config
    from kcbert_tf.modeling import build_masked_lm, check_vocab_matches, load_masked_lm, write_model_dir
    from kcbert_tf.tokenization import VocabError, read_vocab

    # --- Everything a user can get wrong, checked before any training starts. ---
    try:
        config = read_model_config(args.config)
    except ConfigError as error:
        raise TrainingError(f"--config: {error}") from None
    files = _data_files(args.data)
    vocab_path = args.vocab or os.path.join(os.path.dirname(files[0]), "vocab.txt")
    try:
        vocab = read_vocab(vocab_path)
        check_vocab_matches(config, vocab, vocab_path, args.config)
    except (VocabError, ConfigError) as error:
        raise TrainingError(f"{error}" + ("" if args.vocab else " (pass --vocab for another vocab)")) from None
    if args.eval_data:
        train_files, eval_files = files, _data_files(args.eval_data)
    elif train.eval_file_fraction > 0 and len(files) >= 2:
        held_out = max(1, math.ceil(len(files) * train.eval_file_fraction))
        train_files, eval_files = files[:-held_out], files[-held_out:]
    else:
        train_files, eval_files = files, []
    try:
        pretraining_data.check_pretraining_files(train_files + eval_files, None, config.vocab_size)
        seq_length = pretraining_data.sequence_length(train_files)
    except pretraining_data.DataError as error:
        raise TrainingError(str(error)) from None
    if seq_length > config.max_position_embeddings:
        raise TrainingError(
            f"--data sequences have {seq_length} ids but {args.config} has max_position_embeddings "
            f"{config.max_position_embeddings}; remake the data with --max-seq-length "
            f"{config.max_position_embeddings} or less"
        )
    info = resolve_strategy(
        args.tpu, zone=args.tpu_zone, project=args.tpu_project, connect_timeout_s=args.tpu_timeout
    )
    try:
        per_replica_batch_size(train.batch_size, info.num_replicas, kind=info.kind)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    policy = mixed_precision_policy(info.kind, train.mixed_precision)
    jit_compile = True if info.kind == "tpu" else train.jit_compile

    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(train.seed)
    interval = effective_checkpoint_interval(train.train_steps, train.checkpoint_every)
    epochs = train.train_steps // interval
    max_predictions = train.max_predictions_per_seq or pretraining_data.max_predictions_for(seq_length)
    _LOG.info(
        "pretrain: %s on %s, %d replica(s), %s; %d train + %d eval file(s) of %d ids; batch %d, "
        "%d steps, checkpoint every %d",
        os.path.basename(args.config), info.device_description, info.num_replicas, policy or "float32",
        len(train_files), len(eval_files), seq_length, train.batch_size, train.train_steps, interval,
    )

    # --- The model, its optimizer and the checkpoint to resume from. ---
    model_dir = args.model_dir
    tf.io.gfile.makedirs(os.path.join(model_dir, CHECKPOINT_DIR))
    with info.strategy.scope():
        model = build_masked_lm(config, dtype=policy)
        # The masked-LM loss does not reach the pooler (HF's BertForMaskedLM has none): freeze it
        # rather than keep optimizer state for weights that get no gradient.
        model.backbone.pooled_dense.trainable = False
        compile_masked_lm(model, train, jit_compile)
        model.optimizer.build(model.trainable_variables)
        checkpoint = training_checkpoint(model)
        manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=train.keep_checkpoints
        )
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            _LOG.info("resuming from %s", manager.latest_checkpoint)
        elif args.init:
            initial = load_masked_lm(args.init)
            for target, source in zip(model.weights, initial.weights):
                target.assign(tf.cast(source.value, target.dtype))
            _LOG.info("initialized from %s", args.init)
    step = int(model.optimizer.iterations.numpy())
    if step % interval:
        raise TrainingError(
            f"{manager.latest_checkpoint} is at step {step}, not a multiple of the checkpoint interval "
            f"{interval}: resume with the checkpoint_every and --steps of the run that wrote it"
        )
    initial_epoch = step // interval
    # config.json and vocab.txt now; the final weights only at the end.
    write_model_dir(None, config, vocab, model_dir)

    # --- Data: sharded per replica, resumed past what the checkpoint had consumed. ---
    common = dict(
        seq_length=seq_length,
        global_batch_size=train.batch_size,
        vocab_size=config.vocab_size,
        max_predictions=max_predictions,
        mask_rate=train.mask_rate,
    )
    train_ds = info.strategy.distribute_datasets_from_function(
        pretraining_data.dataset_fn(
            train_files, seed=train.seed, shuffle_buffer=train.shuffle_buffer,
            skip_sequences=step * train.batch_size, repeat=True, **common,
        )
    )
    eval_ds = None
    if eval_files:
        eval_ds = info.strategy.distribute_datasets_from_function(
            pretraining_data.dataset_fn(
                eval_files, pretraining_data.eval_dataset, seed=train.seed + 1, steps=train.eval_steps, **common
            )
        )

    monitor = TrainingMonitor(
        os.path.join(model_dir, LOG_DIR), train.batch_size * seq_length,
        _data_fill_ratio(train_files), train.log_every,
    )
    callbacks = [
        CheckpointEveryEpoch(manager, model.optimizer.iterations),
        keras.callbacks.TensorBoard(os.path.join(model_dir, LOG_DIR), update_freq=train.log_every),
        monitor,
    ]
    history = {}
    if initial_epoch < epochs:
        try:
            fit = model.fit(
                train_ds,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=interval,
                validation_data=eval_ds,
                validation_steps=train.eval_steps if eval_ds is not None else None,
                validation_freq=max(1, train.eval_every // interval),
                callbacks=callbacks,
                shuffle=False,  # The dataset shuffles (seeded, resumable).
                verbose=1 if sys.stdout.isatty() else 2,
            )
        except tf.errors.DataLossError as error:
            raise TrainingError(
                f"the data is corrupt ({error.message.splitlines()[0]}); find the file with "
                "`python -c \"from kcbert_tf import data; data.check_pretraining_files("
                f"'{args.data}', None, {config.vocab_size}, full_scan_bytes=None)\"` and remake it"
            ) from None
        history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    else:
        _LOG.info("already trained for %d steps; writing the final model", step)

    write_model_dir(model, config, vocab, model_dir)
    state = {
        "steps": int(model.optimizer.iterations.numpy()),
        "resumed_from_step": step,
        "train_config": dataclasses.asdict(train),
        "replicas": info.num_replicas,
        "device": info.device_description,
        "mixed_precision": policy,
        "sequence_length": seq_length,
        "history": history,
        "first_log": monitor.first,
        "last_log": monitor.last,
    }
    with tf.io.gfile.GFile(os.path.join(model_dir, STATE_FILE), "w") as handle:
        json.dump(state, handle, indent=2)
    print(summarize(state, model_dir), flush=True)
    return state


def summarize(state: dict, model_dir: str) -> str:
    """The closing lines: loss and accuracy at the first step and at the end, speed, where."""
    first, last, history = state["first_log"], state["last_log"], state["history"]
    lines = [f"pretrain: {state['steps']:,} steps done (resumed at step {state['resumed_from_step']:,})"]
    if first and history.get("loss"):
        lines.append(
            f"  MLM loss {first['loss']:.3f} after step {first['step']} -> {history['loss'][-1]:.3f} "
            f"(mean of the last {state['train_config']['checkpoint_every']} steps or fewer); "
            f"accuracy {first.get('accuracy', 0):.3f} -> {history['accuracy'][-1]:.3f}"
        )
    if history.get("val_loss"):
        lines.append(f"  eval: MLM loss {history['val_loss'][-1]:.3f}, accuracy {history['val_accuracy'][-1]:.3f}")
    if last:
        lines.append(
            f"  {last['tokens_per_second']:,.0f} tokens/s ({last['non_pad_tokens_per_second']:,.0f} non-pad) "
            f"on {state['device']}"
        )
    lines.append(f"  model: {model_dir} (config.json, vocab.txt, {WEIGHTS_FILE}); TensorBoard: tensorboard --logdir {os.path.join(model_dir, LOG_DIR)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kcbert-tf pretrain`` command: Keras progress, a clear error and status 2 on bad input."""
    from kcbert_tf.cli import run_command
    from kcbert_tf.distribution import TpuUnreachable, exit_hard_on_hang

    try:
        code = run_command("kcbert-tf pretrain", run, argv, (TrainingError, TpuUnreachable), _LOG)
    except KeyboardInterrupt:
        exit_hard_on_hang(130)
        raise
    if code == 2:
        exit_hard_on_hang(2)  # os._exit only if a TPU connect thread is stuck in TensorFlow
    return code


if __name__ == "__main__":
    sys.exit(main())
