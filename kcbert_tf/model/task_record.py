"""The task record: what a task model needs in order to be used, ``task.json`` in its directory.

The record is the model's use settings, stored once: the task it was trained for (a name in the
task registry, :mod:`kcbert_tf.tasks.registry`; None for a transformers head brought in with
``import-hf``, which the registry's task for that head then serves), its head
(:mod:`kcbert_tf.model.heads`), its labels, ``max_seq_length``, whether texts go through KcBERT's
``clean()``, how many texts an example has (``segments``: 2 for a sentence pair, or a question
and its passage) and the task's own settings (``options``: a sentence task's TSV columns, question
answering's windows, a NER file format, ...; JSON values the task reads).  The model's
preprocessor is built from it (:mod:`kcbert_tf.model.presets`), and ``finetune``, ``import-hf``,
``predict``, ``export-savedmodel`` and ``batch-predict`` read and write it through
:meth:`kcbert_tf.model.model_dir.ModelDir.read` and :meth:`TaskRecord.write`.

Records written before ``segments`` and ``options`` existed (``columns`` and ``qa`` at the top
level, or the whole record in ``metrics.json``) are read as such.

Example:

>>> record = TaskRecord(task="nsmc", head="sequence_classification", max_seq_length=50, clean=True,
...     labels=("0", "1"), options={"columns": {"text": "document", "label": "label", "text_pair": None}})
>>> TaskRecord.from_dict(record.to_dict(), "task.json") == record
True
>>> record.with_overrides(max_seq_length=64, clean=False).max_seq_length, record.min_seq_length
(64, 3)
>>> TaskRecord.from_dict({"task": "custom", "head": "sequence_classification", "max_seq_length": 72,
...     "clean": True, "labels": None, "columns": {"text": "a", "label": "s", "text_pair": "b"}}, "old").segments
2
"""

from __future__ import annotations

import dataclasses
import json
import os

from kcbert_tf import file_reading
from kcbert_tf.errors import UserError
from kcbert_tf.output_dir import write_text_atomically
from kcbert_tf.text.model_inputs import MIN_INPUT_LENGTH

__all__ = ["TASK_FILE", "TaskRecord"]

#: The task record's file in a model directory.
TASK_FILE = "task.json"
#: Where ``finetune`` kept the record before ``task.json`` (read for old model directories).
LEGACY_FILE = "metrics.json"
#: How to fix a record that cannot be read.
REWRITE = "write the model directory again with `kcbert-tf finetune` or `kcbert-tf import-hf`"


def read_json(path: str) -> dict | None:
    """A JSON object file (local or ``gs://``), or None when there is no such file."""
    if not file_reading.exists(path):
        return None
    try:
        values = json.loads(file_reading.read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not JSON ({error}); {REWRITE}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: not a JSON object; {REWRITE}")
    return values


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """What a model needs in order to be used; ``task.json`` of its model directory."""

    #: The task's name in the registry (``nsmc``, ``custom``, a task of yours); None: the
    #: registry's task for the head serves it (an imported transformers head).
    task: str | None
    #: The head the model carries (a name of :data:`kcbert_tf.model.heads.HEADS`).
    head: str
    #: Inputs are cut to this many ids, ``[CLS]`` and ``[SEP]`` included.
    max_seq_length: int
    #: Whether texts go through KcBERT's ``clean()`` first.
    clean: bool
    #: The label names in id order (sequence or token labels); None for a regressor or a span head.
    labels: tuple[str, ...] | None = None
    #: Texts an example packs: 1, or 2 (a sentence pair; a question and its passage).
    segments: int = 1
    #: The task's own settings (JSON values), read by the task alone.
    options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["labels"] = None if self.labels is None else list(self.labels)
        return values

    @classmethod
    def from_dict(cls, values: dict, source: str) -> "TaskRecord":
        """A record from its JSON form (this one, or the form before ``segments`` and
        ``options``); a :class:`UserError` naming ``source`` for a bad one."""
        try:
            values = dict(values)
            labels = values.pop("labels", None)
            options = dict(values.pop("options", None) or {})
            columns, qa = values.pop("columns", None), values.pop("qa", None)
            if columns is not None:  # the sentence task's columns, once a top-level field
                options.setdefault("columns", dict(columns))
                values.setdefault("segments", 2 if columns.get("text_pair") else 1)
            if qa is not None:  # question answering's windows, once a top-level field
                options = {**dict(qa), **options}
                values.setdefault("segments", 2)
            record = cls(**values, labels=None if labels is None else tuple(str(label) for label in labels),
                         options=options)
        except (TypeError, AttributeError) as error:
            raise UserError(f"{source}: not a task record ({error}); {REWRITE}") from None
        if not isinstance(record.max_seq_length, int) or record.max_seq_length < 1:
            raise UserError(f"{source}: max_seq_length must be a positive integer, got {record.max_seq_length!r}")
        if record.segments not in (1, 2):
            raise UserError(f"{source}: segments must be 1 or 2, got {record.segments!r}")
        return record

    @classmethod
    def default(cls, head: str, max_seq_length: int, labels=None) -> "TaskRecord":
        """The record of a model with no task: ``max_seq_length`` (a model's full positions),
        texts cleaned for a sentence classifier only (a masked LM takes texts as they are, token
        and span heads never clean); the registry's task for the head serves it."""
        return cls(None, head, max_seq_length, clean=head == "sequence_classification",
                   labels=None if labels is None else tuple(labels), segments=2 if head == "question_answering" else 1)

    @property
    def min_seq_length(self) -> int:
        """The shortest ``max_seq_length`` that leaves room for text: ``[CLS] a [SEP]``, and one id
        more for a second text."""
        return MIN_INPUT_LENGTH + (self.segments - 1)

    def with_overrides(self, *, max_seq_length: int | None = None, clean: bool | None = None,
                       options: dict | None = None) -> "TaskRecord":
        """This record with a user's overrides (None: keep) for one use of the model."""
        changes = {"max_seq_length": max_seq_length, "clean": clean,
                   "options": None if options is None else {**self.options, **options}}
        return dataclasses.replace(self, **{key: value for key, value in changes.items() if value is not None})

    def write(self, directory: str) -> str:
        """Write ``task.json`` into ``directory`` atomically; return its path."""
        path = os.path.join(directory, TASK_FILE)
        return write_text_atomically(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def read(cls, directory: str, head: str) -> "TaskRecord | None":
        """The record of a model directory whose model has ``head``; None when it has none (a
        pretrained model).  A directory fine-tuned before task records existed has its record in
        ``metrics.json``: it is read from there."""
        path = os.path.join(directory, TASK_FILE)
        values = read_json(path)
        if values is not None:
            return cls.from_dict(values, path)
        legacy = os.path.join(directory, LEGACY_FILE)
        values = read_json(legacy)
        if values is None or "settings" not in values:
            return None
        return cls.from_legacy_metrics(values, head, legacy)

    @classmethod
    def from_legacy_metrics(cls, values: dict, head: str, source: str) -> "TaskRecord":
        """The record of the ``metrics.json`` that ``finetune`` wrote before ``task.json`` existed
        (the task, labels, columns, settings and cleaning, beside the scores)."""
        try:
            settings = values["settings"]
            record = {"task": values["task"], "head": head, "max_seq_length": int(settings["max_seq_length"]),
                      "clean": bool(values.get("clean", False)), "labels": values.get("labels"),
                      "columns": values.get("columns")}
            if "doc_stride" in settings and head == "question_answering":
                record["qa"] = {name: settings[name] for name in ("doc_stride", "max_query_length", "max_answer_length")}
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{source}: no task record in it ({error!r}); fine-tune the model again") from None
        return cls.from_dict(record, source)
