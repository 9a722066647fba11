"""The task record: what a fine-tuned model needs in order to be used, in its model directory.

Like a KerasHub task's preprocessor, the preprocessing travels with the model: ``task.json``
beside ``config.json`` says which task the model was trained for (a name in the task registry,
:mod:`kcbert_tf.tasks.registry`), its head (:mod:`kcbert_tf.model.heads`), its labels, the
columns of a TSV it reads, the max sequence length, whether texts are cleaned with KcBERT's
``clean()`` and, for question answering, the window settings.  ``kcbert-tf finetune`` writes it,
``kcbert-tf import-hf`` writes one with defaults for a transformers head
(:func:`default_record`), and ``predict``, ``export-savedmodel`` and ``export-hf`` read it
through :meth:`kcbert_tf.model.model_dir.ModelDir.read`, the one place that reads it.
``metrics.json`` beside it holds metrics only.

Example:

>>> record = TaskRecord(task="nsmc", head="sequence_classification", max_seq_length=50, clean=True,
...     labels=("0", "1"), columns=TaskColumns("document", "label"))
>>> TaskRecord.from_dict(record.to_dict(), "task.json") == record
True
>>> record.with_overrides(max_seq_length=64, clean=False).max_seq_length
64
"""

from __future__ import annotations

import dataclasses
import json
import os

from kcbert_tf.errors import UserError

__all__ = ["TASK_FILE", "TaskColumns", "QaWindows", "TaskRecord", "default_record", "min_seq_length"]

#: The task record's file in a model directory.
TASK_FILE = "task.json"
#: Where ``finetune`` kept the record before ``task.json`` (read for old model directories).
LEGACY_FILE = "metrics.json"


def min_seq_length(columns: TaskColumns | None, qa: QaWindows | None) -> int:
    """The shortest ``max_seq_length`` that leaves room for text: ``[CLS] a [SEP]``, and one id
    more where two texts are packed (a sentence pair; a question and a passage)."""
    from kcbert_tf.text.model_inputs import MIN_INPUT_LENGTH

    return MIN_INPUT_LENGTH + bool(qa is not None or (columns is not None and columns.text_pair))


def _read_json(path: str) -> dict | None:
    """A JSON object file, or None when there is no such file."""
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        try:
            values = json.load(handle)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}: not JSON ({error}); write the model directory again with "
                            "`kcbert-tf finetune` or `kcbert-tf import-hf`") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: not a JSON object; write the model directory again")
    return values


@dataclasses.dataclass(frozen=True)
class TaskColumns:
    """Which header columns of a TSV hold the text, the optional second text and the label."""

    text: str
    label: str
    text_pair: str | None = None


@dataclasses.dataclass(frozen=True)
class QaWindows:
    """How question answering cuts a context into windows, and the longest answer it gives."""

    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """What a model needs in order to be used; ``task.json`` of its model directory."""

    #: The task's name in the registry (a preset such as ``nsmc``, ``custom``, or a task of yours).
    task: str
    #: The head the model carries (a name of :data:`kcbert_tf.model.heads.HEADS`).
    head: str
    #: Texts (or, for QA, question and window) are cut to this many ids, ``[CLS]``/``[SEP]`` included.
    max_seq_length: int
    #: Whether texts go through KcBERT's ``clean()`` first (sentence tasks; NER and QA: never).
    clean: bool
    #: The label names in id order (sequence or token labels); None for a regressor or a span head.
    labels: tuple[str, ...] | None = None
    #: The TSV columns of a sentence task.
    columns: TaskColumns | None = None
    #: Question answering's windows.
    qa: QaWindows | None = None
    #: A task's own settings (JSON values), for tasks that need more than the fields above.
    options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["labels"] = None if self.labels is None else list(self.labels)
        return values

    @classmethod
    def from_dict(cls, values: dict, source: str) -> "TaskRecord":
        """A record from its JSON form; a :class:`UserError` naming ``source`` for a bad one."""
        try:
            values = dict(values)
            columns, qa, labels = values.pop("columns", None), values.pop("qa", None), values.pop("labels", None)
            record = cls(
                **values,
                labels=None if labels is None else tuple(str(label) for label in labels),
                columns=None if columns is None else TaskColumns(**columns),
                qa=None if qa is None else QaWindows(**qa),
            )
        except (TypeError, AttributeError) as error:
            raise UserError(f"{source}: not a task record ({error}); write the model directory again with "
                            "`kcbert-tf finetune` or `kcbert-tf import-hf`") from None
        if not isinstance(record.max_seq_length, int) or record.max_seq_length < 1:
            raise UserError(f"{source}: max_seq_length must be a positive integer, got {record.max_seq_length!r}")
        return record

    @property
    def min_seq_length(self) -> int:
        """The shortest ``max_seq_length`` that leaves this task room for text (:func:`min_seq_length`)."""
        return min_seq_length(self.columns, self.qa)

    def with_overrides(self, *, max_seq_length: int | None = None, clean: bool | None = None,
                       columns: TaskColumns | None = None) -> "TaskRecord":
        """This record with a user's overrides (None: keep) for one use of the model."""
        changes = {"max_seq_length": max_seq_length, "clean": clean, "columns": columns}
        return dataclasses.replace(self, **{key: value for key, value in changes.items() if value is not None})

    def write(self, directory: str) -> str:
        """Write ``task.json`` into ``directory`` atomically; return its path."""
        from kcbert_tf.output_dir import write_text_atomically

        path = os.path.join(directory, TASK_FILE)
        return write_text_atomically(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def read(cls, directory: str, head: str) -> "TaskRecord | None":
        """The record of a model directory whose model has ``head``; None when it has none (a
        pretrained model).  A directory fine-tuned before task records existed has its record in
        ``metrics.json``: it is read from there (:meth:`from_legacy_metrics`)."""
        path = os.path.join(directory, TASK_FILE)
        values = _read_json(path)
        if values is not None:
            return cls.from_dict(values, path)
        legacy = os.path.join(directory, LEGACY_FILE)
        values = _read_json(legacy)
        if values is None or "settings" not in values:
            return None
        return cls.from_legacy_metrics(values, head, legacy)

    @classmethod
    def from_legacy_metrics(cls, values: dict, head: str, source: str) -> "TaskRecord":
        """The record of the ``metrics.json`` that ``finetune`` wrote before ``task.json`` existed
        (the task, labels, columns, settings and cleaning, beside the scores)."""
        try:
            settings = values["settings"]
            columns = values.get("columns")
            qa = None
            if "doc_stride" in settings and head == "question_answering":
                qa = QaWindows(settings["doc_stride"], settings["max_query_length"], settings["max_answer_length"])
            labels = values.get("labels")
            return cls(
                task=values["task"], head=head, max_seq_length=int(settings["max_seq_length"]),
                clean=bool(values.get("clean", False)), labels=None if labels is None else tuple(map(str, labels)),
                columns=None if columns is None else TaskColumns(**columns), qa=qa,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{source}: no task record in it ({error!r}); fine-tune the model again") from None


#: Head → the record of an imported transformers model with that head (its config given): the
#: task of the registry it is used as, with labels from ``id2label`` and the full
#: ``max_position_embeddings``.  A sequence classifier reads a TSV's ``text`` (and ``text_pair``)
#: column, cleaned with KcBERT's ``clean()`` as the card recommends; a token classifier labels
#: words; a question answerer uses KorQuAD's windows where the positions leave room
#: (:func:`default_windows`).
IMPORTED_RECORDS = {
    "sequence_classification": lambda config: TaskRecord(
        "custom", config.head, config.max_position_embeddings, clean=True,
        labels=None if config.labels is None else tuple(config.labels), columns=TaskColumns("text", "label"),
    ),
    "token_classification": lambda config: TaskRecord(
        "word-tags", config.head, config.max_position_embeddings, clean=False, labels=tuple(config.labels),
    ),
    "question_answering": lambda config: TaskRecord(
        "korquad", config.head, config.max_position_embeddings, clean=False,
        qa=default_windows(config.max_position_embeddings),
    ),
}


def default_windows(max_seq_length: int) -> QaWindows:
    """KorQuAD's windows (stride 128, questions of at most 64 tokens) cut to fit ``max_seq_length``:
    a question takes at most a quarter of a window, and consecutive windows overlap by at least a
    quarter of the context tokens a window holds.

    >>> default_windows(300), default_windows(128)
    (QaWindows(doc_stride=128, max_query_length=64, max_answer_length=30), QaWindows(doc_stride=70, max_query_length=32, max_answer_length=30))
    """
    query = min(QaWindows.max_query_length, max_seq_length // 4)
    room = max_seq_length - query - 3  # [CLS] question [SEP] context [SEP]
    return QaWindows(max(1, min(QaWindows.doc_stride, room - room // 4)), query)


def default_record(config) -> TaskRecord | None:
    """The record ``import-hf`` writes for a model with a transformers task head
    (:data:`IMPORTED_RECORDS`); None for a masked LM or a bare encoder.  ``predict`` and
    ``export-savedmodel`` take overrides (``--max-seq-length``, ``--no-clean``, the columns)."""
    make = IMPORTED_RECORDS.get(config.head)
    return None if make is None else make(config)
