"""The fine-tuning tasks of the KcBERT model card, with KcBERT-Finetune's settings.

A preset says how to read a task's files (a sentence task's columns and whether the label is a
number; for NER, ``klue-ner`` and ``word-tags``, the file format; for ``korquad``, SQuAD v1 JSON and
the window settings) and how KcBERT-Finetune trained KcBERT-Base on it (max sequence length, epochs, batch, learning rate;
AdamW eps 1e-8, weight decay 0, linear decay, no warmup, clipping 1.0, seed 42 for all).  Every
value can be overridden on the command line; other data takes ``--text-column``,
``--text-pair-column``, ``--label-column`` and ``--regression``.

Example:

>>> preset("nsmc").columns, preset("nsmc").max_seq_length, preset("korsts").regression
(TaskColumns(text='document', label='label', text_pair=None), 50, True)
>>> preset("sst2")
Traceback (most recent call last):
...
kcbert_tf.errors.UserError: unknown task 'sst2'; the presets are hate-speech, klue-ner, kornli, korquad, korsts, nsmc, paws, question-pair, word-tags (or give --text-column and --label-column for other data)
"""

from __future__ import annotations

import dataclasses

from kcbert_tf.errors import UserError
from kcbert_tf.text.task_files import TaskColumns

__all__ = ["TaskPreset", "PRESETS", "preset"]


@dataclasses.dataclass(frozen=True)
class TaskPreset:
    """A task's files and KcBERT-Finetune's settings for it."""

    name: str
    columns: TaskColumns | None  # the TSV columns of a sentence task (None for NER and QA files)
    metric: str  # what picks the best epoch: "accuracy", "spearman", "f1" (NER entities, QA)
    max_seq_length: int
    epochs: int
    batch_size: int
    learning_rate: float
    regression: bool = False
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    clip_norm: float = 1.0
    seed: int = 42
    #: "sentence" (a label or score per text or pair), "ner" (a label per token), "qa" (a span)
    kind: str = "sentence"
    #: QA: the stride between context windows, and the longest question and answer, in tokens
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30


PRESETS = {
    preset.name: preset
    for preset in (
        TaskPreset("nsmc", TaskColumns("document", "label"), "accuracy", 50, 8, 64, 5e-5),
        # KcBERT-Finetune has no hate-speech preset: NSMC's settings, on comments.
        TaskPreset("hate-speech", TaskColumns("comments", "hate"), "accuracy", 50, 8, 64, 5e-5),
        TaskPreset("kornli", TaskColumns("sentence1", "gold_label", "sentence2"), "accuracy", 72, 10, 128, 3e-5),
        TaskPreset("paws", TaskColumns("sentence1", "label", "sentence2"), "accuracy", 128, 15, 32, 3e-5),
        TaskPreset("question-pair", TaskColumns("question1", "is_duplicate", "question2"), "accuracy", 72, 5, 32, 5e-5),
        TaskPreset(
            "korsts", TaskColumns("sentence1", "score", "sentence2"), "spearman", 72, 5, 32, 5e-5, regression=True
        ),
        # NER: KcBERT-Finetune's Naver NER settings, for KLUE-NER's file and for word<TAB>tags files.
        TaskPreset("klue-ner", None, "f1", 50, 20, 64, 8e-5, kind="ner"),
        TaskPreset("word-tags", None, "f1", 50, 20, 64, 8e-5, kind="ner"),
        TaskPreset("korquad", None, "f1", 300, 5, 16, 5e-5, kind="qa"),
    )
}


def preset(name: str) -> TaskPreset:
    """The preset of task ``name``; a clear error listing the presets for an unknown one."""
    if name not in PRESETS:
        raise UserError(
            f"unknown task {name!r}; the presets are {', '.join(sorted(PRESETS))} (or give "
            "--text-column and --label-column for other data)"
        )
    return PRESETS[name]
