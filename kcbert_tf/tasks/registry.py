"""The task registry: each fine-tuning task's name → its task class and settings.

The card's tasks are registered here with KcBERT-Finetune's settings (max sequence length,
epochs, batch, learning rate; AdamW eps 1e-8, weight decay 0, linear decay, no warmup, clipping
1.0, seed 42 for all): the sentence tasks say which TSV columns hold the texts and the label and
whether the label is a number; NER's ``klue-ner`` and ``word-tags`` name their file formats;
``korquad`` reads SQuAD v1 JSON with its window settings; ``custom`` is any TSV, its columns given
on the command line.  Every value can be overridden there.  ``finetune``, ``predict`` (through a
model directory's task record) and the tests find a task only here (:func:`task_class`), so a
task defined elsewhere is one :func:`register_task` call away.

Example:

>>> preset("nsmc").columns, preset("nsmc").max_seq_length, preset("korsts").regression
(TaskColumns(text='document', label='label', text_pair=None), 50, True)
>>> task_class("klue-ner").head
'token_classification'
>>> preset("sst2")
Traceback (most recent call last):
...
kcbert_tf.errors.UserError: unknown task 'sst2'; the tasks are custom, hate-speech, klue-ner, kornli, korquad, korsts, nsmc, paws, question-pair, word-tags (custom: give --text-column and --label-column for other data)
"""

from __future__ import annotations

import importlib

from kcbert_tf.errors import UserError
from kcbert_tf.model.task_record import QaWindows, TaskColumns
from kcbert_tf.tasks.contract import FineTuningTask, TaskSettings

__all__ = ["PRESETS", "preset", "task_class", "register_task", "unregister_task"]

SENTENCE = "kcbert_tf.tasks.sentence.task:SentenceTask"
NER = "kcbert_tf.tasks.ner.task:NerTask"
QA = "kcbert_tf.tasks.qa.task:QaTask"

#: name → the task class (or ``module:Class``, imported when first used).
_TASKS: dict[str, type | str] = {}
#: name → the task's settings.
PRESETS: dict[str, TaskSettings] = {}


def register_task(task: type[FineTuningTask] | str, settings: TaskSettings) -> None:
    """Register ``task`` (a :class:`~kcbert_tf.tasks.contract.FineTuningTask` subclass, or its
    ``module:Class``) under ``settings.name``; ``finetune --task NAME`` and ``predict`` on its
    models then use it.  A name registered again is replaced."""
    _TASKS[settings.name] = task
    PRESETS[settings.name] = settings


def unregister_task(name: str) -> None:
    """Remove the task ``name`` (registered with :func:`register_task`)."""
    _TASKS.pop(name, None)
    PRESETS.pop(name, None)


def preset(name: str) -> TaskSettings:
    """The settings of task ``name``; a clear error listing the tasks for an unknown one."""
    if name not in PRESETS:
        raise UserError(
            f"unknown task {name!r}; the tasks are {', '.join(sorted(PRESETS))} (custom: give "
            "--text-column and --label-column for other data)"
        )
    return PRESETS[name]


def task_class(name: str) -> type[FineTuningTask]:
    """The task class registered as ``name``."""
    preset(name)
    task = _TASKS[name]
    if isinstance(task, str):
        module, _, attribute = task.partition(":")
        task = _TASKS[name] = getattr(importlib.import_module(module), attribute)
    return task


for _task, _settings in (
    (SENTENCE, TaskSettings("nsmc", "accuracy", 50, 8, 64, 5e-5, columns=TaskColumns("document", "label"))),
    # KcBERT-Finetune has no hate-speech preset: NSMC's settings, on comments.
    (SENTENCE, TaskSettings("hate-speech", "accuracy", 50, 8, 64, 5e-5, columns=TaskColumns("comments", "hate"))),
    (SENTENCE, TaskSettings("kornli", "accuracy", 72, 10, 128, 3e-5, columns=TaskColumns("sentence1", "gold_label", "sentence2"))),
    (SENTENCE, TaskSettings("paws", "accuracy", 128, 15, 32, 3e-5, columns=TaskColumns("sentence1", "label", "sentence2"))),
    (SENTENCE, TaskSettings("question-pair", "accuracy", 72, 5, 32, 5e-5,
                            columns=TaskColumns("question1", "is_duplicate", "question2"))),
    (SENTENCE, TaskSettings("korsts", "spearman", 72, 5, 32, 5e-5, columns=TaskColumns("sentence1", "score", "sentence2"),
                            regression=True)),
    # Any TSV: the columns (and --regression) come from the command line.
    (SENTENCE, TaskSettings("custom", "accuracy", 128, 3, 32, 5e-5)),
    # NER: KcBERT-Finetune's Naver NER settings, for KLUE-NER's file and for word<TAB>tags files.
    (NER, TaskSettings("klue-ner", "f1", 50, 20, 64, 8e-5, clean=False)),
    (NER, TaskSettings("word-tags", "f1", 50, 20, 64, 8e-5, clean=False)),
    (QA, TaskSettings("korquad", "f1", 300, 5, 16, 5e-5, clean=False, qa=QaWindows(128, 64, 30))),
):
    register_task(_task, _settings)
