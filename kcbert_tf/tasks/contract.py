"""The task contract: what the shared fine-tuning loop and ``predict`` need of a task.

A task is a subclass of :class:`FineTuningTask` registered under a name with its settings
(:func:`kcbert_tf.tasks.registry.register_task`).  ``kcbert-tf finetune --task NAME`` then runs it
through the one loop of :mod:`kcbert_tf.tasks.finetuning`, in this order:

1. :meth:`~FineTuningTask.configure` (a classmethod): the registered settings with the command
   line's overrides; flags the task does not read are refused here;
2. ``__init__(settings, files)``: read and check the training and eval files;
3. the length is checked against ``--init``'s positions and :meth:`~FineTuningTask.min_seq_length`;
   :meth:`~FineTuningTask.prepare`: build what needs the tokenizer (features, windows);
   :attr:`~FineTuningTask.train_size` is then the number of training examples an epoch covers;
4. :meth:`~FineTuningTask.model_config`: the config of the model to train (its head, its labels);
   the model is built from it, its encoder taken from ``--init``;
5. :meth:`~FineTuningTask.compile_args` (loss, metrics) and :meth:`~FineTuningTask.train_dataset`
   (the global batches of every epoch, in an order drawn up front from the seed);
6. after each epoch :meth:`~FineTuningTask.evaluate` on the eval file: a dict of scores holding
   ``settings.metric``, the best-epoch key (higher is better); the best epoch's
   :meth:`~FineTuningTask.evaluation_outputs` are kept;
7. :meth:`~FineTuningTask.record` (the task record written to ``task.json``: what the model needs
   in order to be used), :attr:`~FineTuningTask.summary` (counts for ``metrics.json``) and
   :meth:`~FineTuningTask.write_outputs` (files beside the model, e.g. QA's ``predictions.json``).

``kcbert-tf predict`` reads a model directory's task record and calls the registered task's
:meth:`~FineTuningTask.predict_file` (a classmethod: no training files needed), so a model
brought in with ``import-hf`` is used the same way as one fine-tuned here.

A new task: a package ``kcbert_tf/tasks/NAME/`` with its reader, features, metric and a
``task.py`` holding the subclass, and one :func:`~kcbert_tf.tasks.registry.register_task` line in
:mod:`kcbert_tf.tasks.registry` (or a call in your own code: nothing else lists tasks).  A new
head goes in :mod:`kcbert_tf.model.heads`.
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import pathlib
from typing import ClassVar

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import QaWindows, TaskColumns, TaskRecord, min_seq_length

__all__ = ["TaskSettings", "TaskFiles", "FineTuningTask"]


@dataclasses.dataclass(frozen=True)
class TaskSettings:
    """A task's name and how it is trained (KcBERT-Finetune's settings for the card's tasks)."""

    name: str
    metric: str  # what picks the best epoch: "accuracy", "spearman", "f1", ... (higher is better)
    max_seq_length: int
    epochs: int
    batch_size: int
    learning_rate: float
    #: a sentence task's TSV columns (None for files with their own format, or ``custom`` before
    #: the command line names them)
    columns: TaskColumns | None = None
    regression: bool = False
    clean: bool = True  # apply KcBERT's clean() to the texts (tasks whose labels are spans: never)
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    clip_norm: float = 1.0
    seed: int = 42
    #: question answering's windows (None for the other tasks)
    qa: QaWindows | None = None
    #: a task's own settings (JSON values) for tasks that need more than the fields above
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TaskFiles:
    """The files a fine-tuning run reads: ``train``, ``eval`` (or a share of ``train``'s articles
    split off in memory, ``eval_split``), and a cap on the training examples."""

    train: str
    eval: str | None
    eval_split: float | None = None
    limit_train: int | None = None


class FineTuningTask(abc.ABC):
    """The contract between a task and the shared fine-tuning loop and ``predict``."""

    #: The head the task trains (a name of :data:`kcbert_tf.model.heads.HEADS`).
    head: ClassVar[str]
    #: The command-line flags this task reads beyond the shared ones (``--text-column``, ...).
    flags: ClassVar[tuple[str, ...]] = ()

    #: The training examples of one epoch (set by ``__init__`` or :meth:`prepare`).
    train_size: int = 0
    #: The label names (None: a regression or a span task).
    labels: list[str] | None = None

    def __init__(self, settings: TaskSettings, files: TaskFiles):
        self.settings = settings
        self.files = files

    # --- settings -------------------------------------------------------------------------------

    @classmethod
    def configure(cls, settings: TaskSettings, args: argparse.Namespace) -> TaskSettings:
        """``settings`` with the task's own command-line overrides; refuse flags it does not read.
        The shared ones (length, epochs, batch, learning rate, seed) are applied by the loop."""
        given = [f"--{flag.replace('_', '-')}" for flag in ("text_column", "text_pair_column", "label_column", "regression",
                                                             "doc_stride", "max_query_length", "max_answer_length",
                                                             "eval_split", "no_clean")
                 if getattr(args, flag, None) and flag not in cls.flags]
        if given:
            raise UserError(f"--task {settings.name} does not read {', '.join(given)}")
        return settings

    # --- training -------------------------------------------------------------------------------

    def min_seq_length(self) -> int:
        """The shortest ``max_seq_length`` that leaves room for text: ``[CLS] a [SEP]``, one more
        where the settings pack two texts (:func:`kcbert_tf.model.task_record.min_seq_length`,
        the rule ``predict`` applies to a task record too)."""
        return min_seq_length(self.settings.columns, self.settings.qa)

    def prepare(self, tokenizer) -> None:
        """Build what needs the tokenizer before training (default: nothing)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line on the data for the log."""

    @abc.abstractmethod
    def model_config(self, config):
        """The config of the model to fine-tune: ``config`` (the encoder's) with this task's head."""

    @abc.abstractmethod
    def compile_args(self) -> dict:
        """``model.compile`` keywords: the loss (and metrics shown during ``fit``)."""

    @abc.abstractmethod
    def train_dataset(self, tokenizer, batch_size: int, seed: int, epochs: int):
        """A ``tf.data.Dataset`` of the global batches of all epochs, deterministic given ``seed``."""

    @abc.abstractmethod
    def evaluate(self, model, tokenizer, batch_size: int) -> dict:
        """Scores on the eval file; they include ``settings.metric`` (higher is better)."""

    def evaluation_outputs(self):
        """What to keep of the latest :meth:`evaluate` if it is the best epoch (default: nothing)."""
        return None

    @property
    def summary(self) -> dict:
        """Counts for ``metrics.json`` (examples read, skipped, ...)."""
        return {}

    @abc.abstractmethod
    def record(self, config) -> TaskRecord:
        """The task record of the trained model (``task.json``): what it needs in order to be used."""

    def write_outputs(self, directory: pathlib.Path, outputs) -> None:
        """Write files beside the model from the best epoch's :meth:`evaluation_outputs` (default:
        nothing)."""

    # --- using a trained model ------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def predict_file(cls, source, task: TaskRecord, input_path: str, output_path: str | None, *,
                     batch_size: int) -> object:
        """Predict for ``input_path`` with the model of ``source`` (a
        :class:`~kcbert_tf.model.model_dir.ModelDir`) as ``task`` says; write to
        ``output_path`` (None: stdout); return the predictions."""
