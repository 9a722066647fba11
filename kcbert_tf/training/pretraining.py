"""Masked-LM pretraining with ``model.fit`` under a tf.distribute strategy: ``kcbert-tf pretrain``.

The recipe is stock BERT, as KcBERT used it: AdamW with decoupled weight decay 0.01 (not on
LayerNorm parameters and biases), linear warmup to the peak learning rate then linear decay to
zero (:class:`~kcbert_tf.training.lr_schedule.WarmupLinearDecay`), clipping of the summed gradients at
global norm 1.0, masks drawn afresh each pass by the input pipeline (:mod:`kcbert_tf.training.input_pipeline`),
mixed precision on TPU/GPU.  The loop itself is :mod:`kcbert_tf.training.core`, shared with
fine-tuning: 1, 2 or N replicas train alike (same global batches, same loss, same weights to
float32 rounding with dropout off), each replica draws its own dropout masks, only the chief
writes.

Where it runs: ``--tpu`` (TPUStrategy: a TPU VM with ``local``, a pod slice or a TPU node by
name, driven from one process), two or more GPUs (MirroredStrategy), ``--cpu-replicas N``
(MirroredStrategy over N logical CPU devices: multi-replica training checked without
accelerators), else one GPU or the CPU.  The TensorFlow backend of Keras only: under
``KERAS_BACKEND=jax`` or ``torch`` the command refuses at once (the input pipeline, the
strategies and the checkpoints are TensorFlow's).

The model directory (``--model-dir``, local or ``gs://``)::

    config.json, vocab.txt      written first: the model's config and the vocab of the data
    checkpoints/                tf.train checkpoints every ``checkpoint_every`` steps (last K kept):
                                weights, optimizer state (step, moments), dropout RNG state
    logs/train, logs/validation TensorBoard, on the optimizer-step axis: loss, MLM accuracy,
                                learning rate, gradient norm, tokens/s; validation loss/accuracy
    model.weights.h5            the final weights, written last under a temporary name, renamed
    training_state.json         settings and the last measured numbers

Training runs in "epochs" of one checkpoint interval.  A run killed at any moment and started
again with the same command restores the last checkpoint (same step, optimizer state, learning
rate and RNG state) and starts the data stream where that step left it — found by arithmetic on
the files' record counts, not by re-reading — so it continues exactly where the checkpoint was
taken, losing at most one interval.

Example (CPU, a few steps of the tiny config, on 2 logical CPU replicas)::

    kcbert-tf pretrain --config kcbert-tiny --data 'data/*.tfrecord' \\
        --model-dir runs/tiny --train-config pretrain-tiny --steps 200 --cpu-replicas 2

(``kcbert-tiny`` and ``pretrain-tiny`` name packaged configs, :mod:`kcbert_tf.config_files`; a
path to a JSON file works too.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import tempfile
from typing import Sequence

from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.config_files import resolve_config
from kcbert_tf.conversion.hugging_face import read_model_or_hf
from kcbert_tf.errors import UserError
from kcbert_tf.model.config import read_model_config
from kcbert_tf.model.heads import MASKED_LM
from kcbert_tf.model.model_dir import WEIGHTS_FILE, ModelDir, check_vocab_matches
from kcbert_tf.output_dir import write_text_atomically
from kcbert_tf.text.model_inputs import check_sequence_length
from kcbert_tf.text.records import is_tfrecord_path
from kcbert_tf.text.vocab import read_vocab
from kcbert_tf.training.strategy import Devices, fit_settings, mixed_precision_policy, per_replica_batch_size

__all__ = ["TrainConfig", "load_train_config", "pretrain", "build_arg_parser", "run"]

_LOG = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
STATE_FILE = "training_state.json"


@dataclasses.dataclass
class TrainConfig:
    """A training config (``configs/pretrain-*.json``); command-line flags override fields."""

    batch_size: int = 256
    grad_accum_steps: int = 1
    train_steps: int = 1_000_000
    learning_rate: float = 1e-4
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    adam_beta_1: float = 0.9
    adam_beta_2: float = 0.999
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0
    mask_rate: float = 0.15
    whole_word_mask: bool = False
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
            raise UserError(f"--train-config {path}: no such file (see configs/pretrain-base.json)") from None
        except ValueError as error:
            raise UserError(f"--train-config {path}: not valid JSON ({error})") from None
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(key for key in values if key not in names and not key.startswith("_"))
        if unknown:
            raise UserError(f"--train-config {path}: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**{key: value for key, value in values.items() if key in names})

    def optimizer_settings(self):
        from kcbert_tf.training import core

        return core.OptimizerSettings(
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_steps,
            total_steps=self.train_steps,
            weight_decay=self.weight_decay,
            beta_1=self.adam_beta_1,
            beta_2=self.adam_beta_2,
            epsilon=self.adam_epsilon,
            clip_norm=self.clip_norm,
        )


def build_optimizer(train: TrainConfig):
    """BERT's AdamW for ``train`` (:func:`kcbert_tf.training.core.build_optimizer`)."""
    from kcbert_tf.training import core

    return core.build_optimizer(train.optimizer_settings())


def compile_masked_lm(model, train: TrainConfig, jit_compile, steps_per_execution: int | None = None) -> None:
    """Compile the masked LM: BERT's optimizer, cross-entropy over the weighted prediction slots
    (the input pipeline's weights make it the mean over the global batch's real predictions)."""
    import keras

    model.compile(
        optimizer=build_optimizer(train),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=steps_per_execution or train.steps_per_execution,
        jit_compile=jit_compile,
    )


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf pretrain",
        description="Pretrain a KcBERT masked LM on packed TFRecords with model.fit "
        "(TPUStrategy with --tpu, MirroredStrategy on 2+ GPUs or with --cpu-replicas, else the "
        "default strategy).",
    )
    parser.add_argument("--config", required=True, help="model config: a packaged name (kcbert-base, "
                        "kcbert-large, kcbert-tiny) or the path of a config.json")
    parser.add_argument("--data", required=True, help="make-pretraining-data output: a directory or a glob of *.tfrecord")
    parser.add_argument("--model-dir", required=True, help="checkpoints, logs and the final model (local or gs://)")
    parser.add_argument("--train-config", default=None, help="training config: a packaged name "
                        "(pretrain-base, pretrain-large, pretrain-tiny) or the path of a JSON file")
    parser.add_argument("--vocab", default=None, help="the data's vocab.txt (default: the one beside the data)")
    parser.add_argument("--eval-data", default=None, help="a glob of held-out records for MLM loss/accuracy")
    parser.add_argument("--init", default=None, help="start from the weights of this model directory (ours, or a Hugging Face BERT directory, imported on the fly)")
    parser.add_argument("--steps", dest="train_steps", type=int, default=None,
                        help="total training steps (the warmup scales with it)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (split over replicas)")
    parser.add_argument("--learning-rate", type=float, default=None, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--grad-accum-steps", type=int, default=None,
                        help="sum the gradients of K micro-batches of batch-size/K per optimizer step (default 1): "
                        "the same training in less memory")
    parser.add_argument("--whole-word-mask", action="store_const", const=True, default=None,
                        help="mask whole words (a piece and its ## pieces together) instead of single tokens")
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--keep-checkpoints", type=int, default=None,
                        help="how many of the newest checkpoints to keep (default 5; 0: all, e.g. for "
                        "`kcbert-tf score-checkpoints`)")
    parser.add_argument("--steps-per-execution", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    Devices.add_flags(parser)
    parser.add_argument("--mixed-precision", choices=["auto", "bf16", "fp16", "off"], default=None)
    parser.add_argument("--deterministic", action="store_true", help="deterministic ops (reproducible, slower)")
    return parser


def load_train_config(name_or_path: str | None = None, **overrides) -> TrainConfig:
    """The training config: a packaged recipe (``pretrain-base``), a JSON file, or the defaults,
    with ``overrides`` (:class:`TrainConfig` fields; None: keep).  When ``train_steps`` changes
    and ``warmup_steps`` is not given, the warmup keeps the recipe's share of the run (BERT warms
    up over 10k of 1M steps)."""
    recipe = TrainConfig()
    if name_or_path:  # a packaged name (pretrain-base) or a path
        recipe = TrainConfig.from_file(resolve_config(name_or_path, flag="--train-config"))
    given = {key: value for key, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - {field.name for field in dataclasses.fields(TrainConfig)})
    if unknown:
        raise UserError(f"unknown training setting(s) {unknown}: the fields of kcbert_tf.training.pretraining.TrainConfig")
    train = dataclasses.replace(recipe, **given)
    for name in ("batch_size", "grad_accum_steps", "train_steps", "checkpoint_every", "steps_per_execution",
                 "log_every", "eval_steps"):
        if getattr(train, name) <= 0:
            raise UserError(f"{name} must be > 0, got {getattr(train, name)}")
    if train.keep_checkpoints < 0:
        raise UserError(f"keep_checkpoints must be >= 0 (0: keep all), got {train.keep_checkpoints}")
    steps = given.get("train_steps")
    if steps is not None and "warmup_steps" not in given and steps != recipe.train_steps:
        scaled = round(recipe.warmup_steps * steps / recipe.train_steps)
        _LOG.info(
            "warmup_steps %d: the recipe's %d of %d steps, scaled to --steps %d "
            "(pass --warmup-steps to choose)", scaled, recipe.warmup_steps, recipe.train_steps, steps,
        )
        train = dataclasses.replace(train, warmup_steps=scaled)
    if train.warmup_steps > train.train_steps:
        raise UserError(f"warmup_steps {train.warmup_steps} is more than train_steps {train.train_steps}")
    return train


def _refuse_other_backends() -> None:
    """Pretraining runs on Keras' TensorFlow backend (tf.data, tf.distribute, tf.train
    checkpoints); refuse any other at once, before anything is read or written."""
    wanted = os.environ.get("KERAS_BACKEND", "").strip().lower()
    if wanted and wanted != "tensorflow":
        raise UserError(
            f"KERAS_BACKEND={wanted}: pretrain runs on Keras' TensorFlow backend only (its input "
            "pipeline, strategies and checkpoints are TensorFlow's); unset KERAS_BACKEND or set it "
            "to tensorflow. The trained model loads under any backend (keras_hub.models.MaskedLM.from_preset(DIR))"
        )
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserError(
            f"Keras' backend is {keras.backend.backend()} (~/.keras/keras.json): pretrain runs on "
            "the TensorFlow backend only; set KERAS_BACKEND=tensorflow"
        )


@dataclasses.dataclass
class _Inputs:
    """Everything read and checked before training starts."""

    config: object
    vocab: list
    train_files: list
    train_counts: list
    eval_files: list
    seq_length: int
    fill_ratio: float


def _data_fill_ratio(files: list[str]) -> float:
    """The data's fill ratio from its ``stats.json`` (1.0 when unknown): for non-pad tokens/s."""
    import tensorflow as tf

    stats_path = os.path.join(os.path.dirname(files[0]), "stats.json")
    try:
        with tf.io.gfile.GFile(stats_path, "r") as handle:
            return float(json.load(handle)["fill_ratio"])
    except Exception:
        return 1.0


def _check_inputs(config_name: str, data: str, vocab_path: str | None, eval_data: str | None,
                  train: TrainConfig) -> _Inputs:
    """Phase 1: the config, vocab and data, checked before any training starts."""
    from kcbert_tf.training import input_pipeline

    config = read_model_config(resolve_config(config_name, flag="--config"))
    files = input_pipeline.resolve_files(data)
    others = [path for path in files if not is_tfrecord_path(path)]
    if others:
        raise UserError(
            f"--data {data}: {others[0]} is not pretraining records; make them from cleaned comments with "
            f"`kcbert-tf make-pretraining-data --input {others[0]} --vocab VOCAB --output DIR`, then pass --data DIR"
        )
    vocab_path = vocab_path or os.path.join(os.path.dirname(files[0]), "vocab.txt")
    vocab = read_vocab(vocab_path)
    check_vocab_matches(config, vocab, vocab_path, config_name)
    if eval_data:
        train_files, eval_files = files, input_pipeline.resolve_files(eval_data)
    elif train.eval_file_fraction > 0 and len(files) >= 2:
        held_out = max(1, math.ceil(len(files) * train.eval_file_fraction))
        train_files, eval_files = files[:-held_out], files[-held_out:]
    else:
        train_files, eval_files = files, []
    input_pipeline.check_pretraining_files(train_files + eval_files, None, config.vocab_size)
    seq_length = input_pipeline.records_seq_length(train_files)
    counts = input_pipeline.record_counts(train_files)
    if not sum(counts):
        raise UserError(f"--data {data}: the training files hold no record; remake the data")
    check_sequence_length(
        seq_length, config.max_position_embeddings, source=config_name, subject=f"--data sequences of {seq_length} ids",
        remedy=f"remake the data with `kcbert-tf make-pretraining-data --max-seq-length {config.max_position_embeddings}` "
               "or less",
    )
    return _Inputs(config, vocab, train_files, counts, eval_files, seq_length, _data_fill_ratio(train_files))


def pretrain(
    config: str,
    data: str,
    model_dir: str,
    *,
    train_config: str | None = None,
    vocab: str | None = None,
    eval_data: str | None = None,
    init: str | None = None,
    deterministic: bool = False,
    strategy=None,
    devices: Devices = Devices(),
    **overrides,
) -> dict:
    """Pretrain the masked LM of ``config`` (a packaged name or a ``config.json``) on ``data``
    (``make-pretraining-data`` output) into ``model_dir``, resuming from its last checkpoint;
    return the final numbers (also in ``training_state.json``).

    Three phases, as google-research/bert's ``main``: check every input, set up the strategy and
    the model (resuming where a checkpoint is), then feed the data and fit.  ``train_config``: a
    packaged recipe (``pretrain-base``) or a JSON file; ``overrides`` are :class:`TrainConfig`
    fields (``train_steps``, ``batch_size``, ``learning_rate``, ``warmup_steps``, ``seed``, ...).
    ``strategy``: a ``tf.distribute`` strategy to train under (a notebook's ``TPUStrategy``);
    else ``devices`` (a TPU, ``cpu_replicas``), the GPUs or the CPU.
    """
    _refuse_other_backends()
    train = load_train_config(train_config, **overrides)
    devices.split_cpu()  # before any TensorFlow op sets up the devices
    inputs = _check_inputs(config, data, vocab, eval_data, train)
    info = devices.resolve(strategy)
    setup = _set_up(train, inputs, info, model_dir, init=init, deterministic=deterministic, config_name=config)
    state = _fit(train, inputs, setup, model_dir, data)
    print(summarize(state, model_dir), flush=True)
    return state


@dataclasses.dataclass
class _Setup:
    """The strategy, the model under it and where training stands."""

    info: object
    policy: str | None
    interval: int
    settings: object
    model: object
    checkpoints: object
    step: int


def _set_up(train: TrainConfig, inputs: _Inputs, info, model_dir: str, *, init: str | None, deterministic: bool,
            config_name: str) -> _Setup:
    """Phase 2: the model under the strategy, its optimizer and the checkpoint to resume from."""
    import keras
    import tensorflow as tf

    from kcbert_tf.model.presets import build_model, load_model
    from kcbert_tf.training import core

    per_replica_batch_size(train.batch_size, info.num_replicas, kind=info.kind, grad_accum_steps=train.grad_accum_steps)
    policy = mixed_precision_policy(info.kind, train.mixed_precision)
    interval = core.effective_checkpoint_interval(train.train_steps, train.checkpoint_every)
    settings = fit_settings(info, train.jit_compile, train.steps_per_execution, interval)
    for note in settings.notes:
        _LOG.info("%s", note)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(train.seed)
    _LOG.info(
        "pretrain: %s on %s, %d replica(s), %s; %d train + %d eval file(s) of %d ids; batch %d, "
        "%d steps, checkpoint every %d, %d step(s) per execution",
        os.path.basename(config_name), info.device_description, info.num_replicas, policy or "float32",
        len(inputs.train_files), len(inputs.eval_files), inputs.seq_length, train.batch_size,
        train.train_steps, interval, settings.steps_per_execution,
    )
    if info.is_chief:
        tf.io.gfile.makedirs(os.path.join(model_dir, CHECKPOINT_DIR))
    initial = None  # init's weights, read outside the scope (a plain model, only read from)
    if init and not tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR)):
        with tempfile.TemporaryDirectory(prefix="kcbert-tf-init-") as scratch:
            source = read_model_or_hf(init, scratch)
            if source.config.head != MASKED_LM:
                raise UserError(f"--init {init} holds a fine-tuned model ({source.config.architecture}), not a "
                                "masked LM; give a `pretrain` or `import-hf` model directory")
            initial = load_model(source, preprocessor=False)
    with info.strategy.scope():
        model = build_model(inputs.config, dtype=policy)
        # The masked-LM loss does not reach the pooler (HF's BertForMaskedLM has none): freeze it
        # rather than keep optimizer state for weights that get no gradient.
        model.backbone.pooled_dense.trainable = False
        core.prepare_model(model, grad_accum_steps=train.grad_accum_steps)
        compile_masked_lm(model, train, settings.jit_compile, settings.steps_per_execution)
        model.optimizer.build(model.trainable_variables)
        checkpoints = core.Checkpoints(
            model, os.path.join(model_dir, CHECKPOINT_DIR), keep=train.keep_checkpoints or None, is_chief=info.is_chief
        )
        step = checkpoints.restore_latest()
        if not step and initial is not None:
            for target, source in zip(model.weights, initial.weights):
                target.assign(tf.cast(source.value, target.dtype))
            _LOG.info("initialized from %s", init)
    if step % interval:
        raise UserError(
            f"{checkpoints.latest} is at step {step}, not a multiple of the checkpoint interval "
            f"{interval}: resume with the checkpoint_every and --steps of the run that wrote it"
        )
    if info.is_chief:  # config.json and vocab.txt now; the final weights only at the end.
        ModelDir.write(model_dir, inputs.config, inputs.vocab)
    return _Setup(info, policy, interval, settings, model, checkpoints, step)


def _fit(train: TrainConfig, inputs: _Inputs, setup: _Setup, model_dir: str, data: str) -> dict:
    """Phase 3: the data (each replica its rows of the same global batches, from where the
    checkpoint left off), ``fit``, and the final weights and state (chief only)."""
    import tensorflow as tf

    from kcbert_tf.text.masking import max_predictions_for
    from kcbert_tf.training import core, input_pipeline

    info, model, step = setup.info, setup.model, setup.step
    common = dict(
        seq_length=inputs.seq_length,
        global_batch_size=train.batch_size,
        vocab_size=inputs.config.vocab_size,
        max_predictions=train.max_predictions_per_seq or max_predictions_for(inputs.seq_length),
        mask_rate=train.mask_rate,
        whole_word_vocab=inputs.vocab if train.whole_word_mask else None,
    )
    train_ds = info.strategy.distribute_datasets_from_function(
        input_pipeline.dataset_fn(
            inputs.train_files, seed=train.seed, shuffle_buffer=train.shuffle_buffer,
            skip_sequences=step * train.batch_size, repeat=True, counts=inputs.train_counts, **common,
        )
    )
    eval_ds = None
    if inputs.eval_files:
        eval_ds = info.strategy.distribute_datasets_from_function(
            input_pipeline.dataset_fn(
                inputs.eval_files, input_pipeline.eval_dataset, seed=train.seed + 1,
                steps=train.eval_steps, **common,
            )
        )
    logger = core.StepLogger(
        os.path.join(model_dir, LOG_DIR) if info.is_chief else None,
        log_every=train.log_every,
        tokens_per_step=train.batch_size * inputs.seq_length,
        fill_ratio=inputs.fill_ratio,
    )
    if step >= train.train_steps:
        _LOG.info("already trained for %d steps; writing the final model", step)
    try:
        history = core.fit_in_epochs(
            model, train_ds, total_steps=train.train_steps, interval=setup.interval, step=step,
            callbacks=[core.CheckpointEveryEpoch(setup.checkpoints), logger],
            validation_data=eval_ds, validation_steps=train.eval_steps, validation_every=train.eval_every,
        )
    except tf.errors.DataLossError as error:
        raise UserError(
            f"the data is corrupt ({error.message.splitlines()[0]}); find the file with "
            "`python -c \"from kcbert_tf.training import input_pipeline; input_pipeline.check_pretraining_files("
            f"'{data}', None, {inputs.config.vocab_size}, full_scan_bytes=None)\"` and remake it"
        ) from None
    finally:
        setup.checkpoints.close()

    state = {
        "steps": int(model.optimizer.iterations.numpy()),
        "resumed_from_step": step,
        "train_config": dataclasses.asdict(train),
        "replicas": info.num_replicas,
        "device": info.device_description,
        "mixed_precision": setup.policy,
        "steps_per_execution": setup.settings.steps_per_execution,
        "jit_compile": setup.settings.jit_compile,
        "seq_length": inputs.seq_length,
        "history": history,
        "first_log": logger.first,
        "last_log": logger.last,
    }
    if info.is_chief:
        ModelDir.write(model_dir, inputs.config, inputs.vocab, model)
        write_text_atomically(os.path.join(model_dir, STATE_FILE), json.dumps(state, indent=2))
    return state


def summarize(state: dict, model_dir: str) -> str:
    """The closing lines: loss and accuracy at the first step and at the end, speed, where."""
    first, last, history = state["first_log"], state["last_log"], state["history"]
    lines = [
        f"pretrain: {state['steps']:,} steps done on {state['replicas']} replica(s) "
        f"(resumed at step {state['resumed_from_step']:,})"
    ]
    if first and history.get("loss"):
        lines.append(
            f"  MLM loss {first['loss']:.3f} after step {first['step']} -> {history['loss'][-1]:.3f} "
            f"(mean of the last {state['train_config']['checkpoint_every']} steps or fewer); "
            f"accuracy {first.get('accuracy', 0):.3f} -> {history['accuracy'][-1]:.3f}"
        )
    if history.get("val_loss"):
        lines.append(f"  eval: MLM loss {history['val_loss'][-1]:.3f}, accuracy {history['val_accuracy'][-1]:.3f}")
    if last.get("tokens_per_second"):
        lines.append(
            f"  {last['tokens_per_second']:,.0f} tokens/s ({last['non_pad_tokens_per_second']:,.0f} non-pad) "
            f"on {state['device']}"
        )
    lines.append(f"  model: {model_dir} (config.json, vocab.txt, {WEIGHTS_FILE}); TensorBoard: `tensorboard --logdir {os.path.join(model_dir, LOG_DIR)}`")
    return "\n".join(lines)


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf pretrain``: the flags parsed into one :func:`pretrain` call; return the final
    numbers."""
    return call_with_flags(pretrain, build_arg_parser(), argv)
