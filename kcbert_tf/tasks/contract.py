"""The task contract: what the one fine-tuning loop and ``predict`` need of a task.

A task is a :class:`FineTuningTask` subclass with its own settings (a :class:`TrainingSettings`
subclass: KcBERT-Finetune's shared fields plus the task's own, each field marked with
:func:`flag` a ``kcbert-tf finetune`` flag), registered under a name with its settings
(:mod:`kcbert_tf.tasks.registry`: the ``kcbert_tf.tasks`` entry-point group, or
:func:`~kcbert_tf.tasks.registry.register_task`).  The loop (:func:`kcbert_tf.tasks.finetuning.finetune`):

1. builds the task from its settings, its files and the start model's tokenizer:
   ``__init__`` reads and checks the files, builds the features and the model's
   :attr:`~FineTuningTask.preprocessor`; :attr:`~FineTuningTask.train_size` and
   :attr:`~FineTuningTask.labels` then come from the data;
2. builds the model of the task's head on the start model's encoder
   (``config.for_head(task.head, task.labels)``) and compiles it with :meth:`~FineTuningTask.compile_args`;
3. fits it on :meth:`~FineTuningTask.training_examples` (packed once), in global batches of
   examples of about one length, each cut to its longest or padded to one of a few fixed widths
   (:mod:`kcbert_tf.training.length_buckets`:
   every example once per epoch, in an order drawn up front from the seed), each finished by
   :meth:`~FineTuningTask.training_batch`, scoring :meth:`~FineTuningTask.evaluate` after each epoch:
   an :class:`Evaluation`, scores (holding ``settings.metric``, higher is better) and outputs
   together; the best epoch's weights and outputs are kept;
4. writes the model directory: the model with its preprocessor, :meth:`~FineTuningTask.record`
   (``task.json``), :attr:`~FineTuningTask.summary` (counts for ``metrics.json``) and
   :meth:`~FineTuningTask.write_outputs` (files beside the model, e.g. QA's ``predictions.json``).

``kcbert-tf predict`` reads a model directory's task record, loads the model with its
preprocessor and calls the registered task's :meth:`~FineTuningTask.predict_file`.

A new task is a module of its own (reader, metric, task class, settings, presets) and one entry
point in its package's ``pyproject.toml``::

    [project.entry-points."kcbert_tf.tasks"]
    stars = "my_package.stars:STARS"     # a TaskPreset(StarsTask, StarsSettings(...))
"""

from __future__ import annotations

import abc
import dataclasses
import math
import pathlib
from typing import Any, ClassVar

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.training.length_buckets import TrainingExamples, bucket_widths

__all__ = ["flag", "flags_of", "TrainingSettings", "TaskFiles", "Evaluation", "FineTuningTask", "TaskPreset"]


def flag(help: str, name: str | None = None, **field_kwargs) -> Any:
    """A settings field that ``kcbert-tf finetune`` takes as a flag: ``--field-name`` (or
    ``name``); a boolean that defaults to True is switched off by ``--no-field-name``."""
    default = field_kwargs.pop("default", dataclasses.MISSING)
    return dataclasses.field(default=default, metadata={"help": help, "flag": name}, **field_kwargs)


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """One settings field as a command-line flag."""

    field: str
    flag: str
    help: str
    kind: type  # int, float, str or bool
    default: Any

    @property
    def switches_off(self) -> bool:
        return self.kind is bool and self.default is True


def flags_of(settings_type: type) -> list[FlagSpec]:
    """The flags of a settings dataclass: its fields made with :func:`flag`."""
    specs = []
    for field in dataclasses.fields(settings_type):
        if "help" not in field.metadata:
            continue
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(
            str(field.type).replace(" | None", "").strip(), str)
        default = None if field.default is dataclasses.MISSING else field.default
        name = field.metadata["flag"] or ("--no-" if kind is bool and default is True else "--") + field.name.replace("_", "-")
        specs.append(FlagSpec(field.name, name, field.metadata["help"], kind, default))
    return specs


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How a task trains: the settings every task shares (KcBERT-Finetune's: AdamW eps 1e-8, no
    weight decay, linear decay, no warmup, the summed gradients clipped at 1.0, seed 42, no early
    stopping); a task's own settings subclass it."""

    #: The eval score that picks the best epoch (higher is better): "accuracy", "f1", ...
    metric: str
    max_seq_length: int = flag("inputs are cut to this many ids, [CLS] and [SEP] included")
    epochs: int = flag("passes over the training data")
    batch_size: int = flag("global batch size (split over replicas)")
    learning_rate: float = flag("peak learning rate of AdamW (linear decay to 0)")
    grad_accum_steps: int = flag("sum the gradients of K micro-batches of batch-size/K per optimizer step: the same "
                                 "training in less memory", default=1)
    adam_epsilon: float = 1e-8
    weight_decay: float = flag("AdamW's decoupled weight decay (not on LayerNorm and biases)", default=0.0)
    warmup_steps: int = flag("steps of linear warmup to the learning rate", default=0)
    warmup_ratio: float = flag("warm up over this share of the optimizer steps, rounded up (transformers' "
                               "warmup_ratio); instead of --warmup-steps", default=0.0)
    clip_norm: float = 1.0
    seed: int = flag("seed of the batch order, the head's initialization and dropout", default=42)
    early_stopping: int = flag("stop once the task's metric has not improved for this many epochs (transformers' "
                               "EarlyStoppingCallback; 0: off); the learning-rate schedule still spans --epochs",
                               default=0)
    length_buckets: str = flag("how training batches are padded: 'auto' (each cut to its longest example, or where "
                               "every shape is compiled, on TPUs and with XLA, to 16, 32, 64, ... ids), 'longest', "
                               "or comma-separated widths in ids (the max length is always one)", default="auto")

    def bucket_widths(self, compiled_per_shape: bool) -> tuple[int, ...] | None:
        """The widths training batches are padded to (the last one the max length), or None:
        each batch cut to its longest example.  ``compiled_per_shape``: the train step is
        compiled for every shape it sees (a TPU, XLA), so 'auto' keeps to a few widths."""
        if self.length_buckets == "longest" or (self.length_buckets == "auto" and not compiled_per_shape):
            return None
        if self.length_buckets == "auto":
            return bucket_widths(self.max_seq_length)
        chosen = {int(width) for width in str(self.length_buckets).split(",")}
        return tuple(sorted({width for width in chosen if width < self.max_seq_length} | {self.max_seq_length}))

    def warmup_for(self, total_steps: int) -> int:
        """The warmup of a run of ``total_steps`` optimizer steps: ``warmup_steps``, else
        ``ceil(total_steps * warmup_ratio)`` (transformers' ``TrainingArguments.get_warmup_steps``)."""
        return self.warmup_steps if self.warmup_steps > 0 else math.ceil(total_steps * self.warmup_ratio)

    def check(self) -> None:
        """Raise :class:`UserError` for values no run can use (subclasses add their own)."""
        for name in ("max_seq_length", "epochs", "batch_size", "grad_accum_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate >= 0:
            raise UserError(f"--learning-rate must be >= 0, got {self.learning_rate}")
        for name in ("warmup_steps", "early_stopping"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"--warmup-ratio is a share of the optimizer steps, 0 <= R < 1; got {self.warmup_ratio}")
        if self.warmup_steps > 0 and self.warmup_ratio > 0:
            raise UserError(f"--warmup-steps {self.warmup_steps} and --warmup-ratio {self.warmup_ratio:g} both set the "
                            f"warmup: give one of them")
        try:
            widths = self.bucket_widths(compiled_per_shape=True) or (1,)
        except ValueError:
            widths = (0,)
        if min(widths) < 1:
            raise UserError(f"--length-buckets takes 'auto', 'longest' or widths in ids such as 16,32,64; "
                            f"got {self.length_buckets!r}")


@dataclasses.dataclass(frozen=True)
class TaskFiles:
    """The files a fine-tuning run reads, and a cap on the training examples."""

    train: str
    eval: str | None
    limit_train: int | None = None


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A task's evaluation: its ``scores`` (they hold ``settings.metric``) and its ``outputs``
    (what :meth:`FineTuningTask.write_outputs` writes if the epoch is the best; None: nothing)."""

    scores: dict
    outputs: Any = None


class FineTuningTask(abc.ABC):
    """The contract between a task and the shared fine-tuning loop and ``predict``."""

    #: The head the task trains (a name of :data:`kcbert_tf.model.heads.HEADS`).
    head: ClassVar[str]
    #: The task's settings (its dataclass: shared fields and its own flags).
    settings_type: ClassVar[type[TrainingSettings]] = TrainingSettings
    #: Whether ``predict`` uses this task for a model of its head that names no task (a
    #: transformers head brought in with ``import-hf``).
    serves_imported_models: ClassVar[bool] = False
    #: Whether the task is scored on an eval file (False: it checks ``files.eval`` itself, e.g.
    #: to evaluate on a split of the training file instead).
    needs_eval_file: ClassVar[bool] = True
    #: Modules :meth:`evaluate` imports (its metrics' libraries): the loop loads them in the
    #: background while the first epoch trains.
    evaluation_imports: ClassVar[tuple[str, ...]] = ()

    #: The model's preprocessor (its settings are part of the model directory).
    preprocessor: Any = None
    #: The label names (None: a regression or a span task).
    labels: list[str] | None = None

    def __init__(self, name: str, settings: TrainingSettings, files: TaskFiles, tokenizer):
        """Read and check the files and build the features and :attr:`preprocessor` with
        ``tokenizer`` (a :class:`~kcbert_tf.model.tokenizer.KcBertTokenizer`)."""
        if self.needs_eval_file and files.eval is None:
            raise UserError("--eval is required: the file the model is scored on after every epoch")
        self.name = name
        self.settings = settings
        self.files = files

    @property
    def train_size(self) -> int:
        """The training examples (or windows) of one epoch."""
        return len(self.training_examples())

    @abc.abstractmethod
    def describe(self) -> str:
        """One line on the data for the log."""

    @abc.abstractmethod
    def compile_args(self) -> dict:
        """``model.compile`` keywords: the loss (and metrics shown during ``fit``)."""

    @abc.abstractmethod
    def training_examples(self) -> TrainingExamples:
        """The training examples, packed once (model inputs ``[examples, max_length]`` and
        targets); the loop batches them by length."""

    def training_batch(self, inputs: dict, targets, weights):
        """A global batch as Keras trains on it, in TensorFlow ops (it runs in ``tf.data``):
        ``inputs`` and ``targets`` cut to the batch's width, ``weights`` per example (0 on the
        filler rows of an epoch's last batch, the others scaled so the loss is their mean).
        Default: ``(inputs, targets, weights)``."""
        return inputs, targets, weights

    @abc.abstractmethod
    def evaluate(self, model) -> Evaluation:
        """Scores (and outputs) on the eval file of ``model`` (its preprocessor detached)."""

    @property
    def summary(self) -> dict:
        """Counts for ``metrics.json`` (examples read, skipped, ...)."""
        return {}

    @property
    def segments(self) -> int:
        """Texts an example packs (2: a pair, or a question and its passage)."""
        return 1

    @property
    def options(self) -> dict:
        """The task's own settings its trained model needs in order to be used (``task.json``'s
        ``options``: JSON values :meth:`predict_file` reads)."""
        return {}

    def record(self) -> TaskRecord:
        """The task record of the trained model (``task.json``)."""
        preprocessor = self.preprocessor
        return TaskRecord(self.name, self.head, preprocessor.sequence_length, preprocessor.clean,
                          labels=None if self.labels is None else tuple(self.labels), segments=self.segments,
                          options=self.options)

    def write_outputs(self, directory: pathlib.Path, outputs) -> None:
        """Write files beside the model from the best epoch's :attr:`Evaluation.outputs` (default:
        nothing)."""

    @classmethod
    @abc.abstractmethod
    def predict_file(cls, model, record: TaskRecord, input_path: str, output_path: str | None, *,
                     batch_size: int, text_columns: tuple[str | None, str | None] | None = None) -> object:
        """Predict for ``input_path`` with ``model`` (the task model with its preprocessor, built
        as ``record`` says); write to ``output_path`` (None: stdout); return the predictions.
        ``text_columns`` (``predict --text-column``, ``--text-pair-column``) are for tasks that
        read named columns; the others refuse them with :meth:`refuse_text_columns`."""

    @classmethod
    def refuse_text_columns(cls, record: TaskRecord, text_columns) -> None:
        if text_columns and any(text_columns):
            raise UserError(f"--text-column / --text-pair-column apply to sentence tasks; the model is a "
                            f"{record.task or record.head} model")


@dataclasses.dataclass(frozen=True)
class TaskPreset:
    """A registered task: its class and its settings (what an entry point names)."""

    task: type[FineTuningTask]
    settings: TrainingSettings

    def __post_init__(self):
        if not (isinstance(self.task, type) and issubclass(self.task, FineTuningTask)):
            raise TypeError(f"TaskPreset.task must be a FineTuningTask subclass, got {self.task!r}")
        if not isinstance(self.settings, self.task.settings_type):
            raise TypeError(f"{self.task.__name__} takes {self.task.settings_type.__name__}, got "
                            f"{type(self.settings).__name__}")
