"""The task registry: each fine-tuning task's name → its task class and settings.

Tasks come from the ``kcbert_tf.tasks`` entry-point group: every installed package, this one
included, names its tasks there (an entry point's name is the task's name, its object a
:class:`~kcbert_tf.tasks.contract.TaskPreset`), so a task defined in another package reaches
``kcbert-tf finetune --task NAME`` and ``predict`` once that package is installed.  This
package's own (the model card's tasks with KcBERT-Finetune's settings) are in its
``pyproject.toml``.  :func:`register_task` adds one for this process (a notebook, a test); it
wins over an entry point of the same name.  Entry points are loaded when their task is asked for,
so listing the tasks imports none.

Example:

>>> preset("nsmc").settings.text_column, preset("nsmc").settings.max_seq_length
('document', 50)
>>> preset("klue-ner").task.head
'token_classification'
>>> preset("sst2")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kcbert_tf.errors.UserError: unknown task 'sst2'; the tasks are custom, hate-speech, klue-ner, kornli, korquad, korsts, nsmc, paws, question-pair, word-tags (custom: ...
"""

from __future__ import annotations

from importlib import metadata

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.tasks.contract import FineTuningTask, TaskPreset, TrainingSettings

__all__ = ["ENTRY_POINT_GROUP", "register_task", "unregister_task", "task_names", "preset", "task_for_record",
           "task_classes"]

#: The entry-point group that names the tasks of every installed package.
ENTRY_POINT_GROUP = "kcbert_tf.tasks"

#: Tasks registered in this process (:func:`register_task`).
_REGISTERED: dict[str, TaskPreset] = {}
#: Entry points loaded so far.
_LOADED: dict[str, TaskPreset] = {}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The group's entry points of every distribution on the path (not only the first of each
    name, as ``metadata.entry_points`` gives them: a stale ``*.egg-info`` left in the working
    directory by a build would hide the installed package's)."""
    found: dict[str, metadata.EntryPoint] = {}
    for distribution in metadata.distributions():
        for entry in distribution.entry_points:
            if entry.group == ENTRY_POINT_GROUP:
                found.setdefault(entry.name, entry)
    return found


def register_task(name: str, task: type[FineTuningTask], settings: TrainingSettings) -> None:
    """Register ``task`` with ``settings`` as ``name`` for this process: ``finetune --task NAME``
    and ``predict`` on its models then use it.  A name registered again is replaced."""
    _REGISTERED[name] = TaskPreset(task, settings)


def unregister_task(name: str) -> None:
    """Remove the task ``name`` registered with :func:`register_task`."""
    _REGISTERED.pop(name, None)


def task_names() -> list[str]:
    """Every task's name, sorted (none is imported)."""
    return sorted(set(_entry_points()) | set(_REGISTERED))


def preset(name: str) -> TaskPreset:
    """The class and settings of task ``name``; a clear error listing the tasks for an unknown one."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _LOADED:
        entry = _entry_points().get(name)
        if entry is None:
            raise UserError(f"unknown task {name!r}; the tasks are {', '.join(task_names())} (custom: give "
                            "--text-column and --label-column for other data; a task of yours: install its package)")
        loaded = entry.load()
        if not isinstance(loaded, TaskPreset):
            raise UserError(f"the task {name!r} ({entry.value}, from the {ENTRY_POINT_GROUP} entry points) is "
                            f"a {type(loaded).__name__}, not a kcbert_tf TaskPreset; fix that package")
        _LOADED[name] = loaded
    return _LOADED[name]


def task_classes() -> list[type[FineTuningTask]]:
    """Every task class, each once (loads every task's entry point)."""
    return list(dict.fromkeys(preset(name).task for name in task_names()))


def task_for_record(record: TaskRecord) -> type[FineTuningTask]:
    """The task class that uses a model with ``record``: its task's, or for a record that names no
    task (an imported transformers head) the one serving that head."""
    if record.task is not None:
        return preset(record.task).task
    for cls in task_classes():
        if cls.head == record.head and cls.serves_imported_models:
            return cls
    raise UserError(f"no installed task uses a {record.head} model; install the package of one")
