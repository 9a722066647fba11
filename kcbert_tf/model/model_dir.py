"""The model directory: what pretraining, conversion, export and fine-tuning read and write.

A model directory holds everything needed to use a model, nothing else required:

- ``config.json``: the model config in Hugging Face form (:mod:`kcbert_tf.model.config`);
- ``vocab.txt``: the vocab it was trained with (its size must equal ``vocab_size``);
- ``model.weights.h5``: the Keras weights of the model of the config's head
  (:mod:`kcbert_tf.model.heads`: the masked LM, or a fine-tuned classifier, token classifier or
  question answerer, whose ``config.json`` also holds ``id2label``, ``label2id`` and
  ``problem_type`` as transformers' configs do);
- ``task.json`` (a model with a task head): the task record, what the model needs in order to be
  used (:mod:`kcbert_tf.model.task_record`), written by ``finetune``, ``import-hf`` and
  ``save_to_preset``.

It is also a KerasHub preset (:mod:`kcbert_tf.model.presets`): ``from_preset(DIR)`` loads the task
model with its preprocessor.  :meth:`ModelDir.read` checks and reads the files once (config, vocab,
task record, that they agree, that the weights are there), naming the missing or bad file and the
fix; :meth:`ModelDir.use` resolves how the model is used (its record with a user's overrides,
checked against its positions), for every command that uses one.  :meth:`ModelDir.write` writes
one, each file atomically and the weights last, so a crash never leaves a half-written model
(local or ``gs://``).

Example:

>>> import tempfile
>>> from kcbert_tf.model.config import BertConfig
>>> config = BertConfig(vocab_size=6, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
...     intermediate_size=32, max_position_embeddings=16)
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ㅋㅋ"]
>>> with tempfile.TemporaryDirectory() as directory:
...     written = ModelDir.write(directory, config, vocab)
...     again = ModelDir.read(directory, need_weights=False)
>>> again.config == config, again.vocab == vocab, again.use(max_seq_length=8).max_seq_length
(True, True, 8)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np

from kcbert_tf import file_reading
from kcbert_tf.errors import ConfigError, UserError
from kcbert_tf.model.config import BertConfig, read_model_config
from kcbert_tf.model.task_record import TASK_FILE, TaskRecord
from kcbert_tf.output_dir import atomic_file, write_text_atomically
from kcbert_tf.text.model_inputs import check_sequence_length
from kcbert_tf.text.vocab import VOCAB_FILE, read_vocab

__all__ = [
    "CONFIG_FILE",
    "VOCAB_FILE",
    "WEIGHTS_FILE",
    "MODEL_FILES",
    "METRICS_FILE",
    "TASK_FILE",
    "ModelDir",
    "check_vocab_matches",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
#: The files of a complete model directory.
MODEL_FILES = (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE)
#: How `finetune` scored the model (every epoch, the best, the settings), beside its files.
METRICS_FILE = "metrics.json"


def check_vocab_matches(config: BertConfig, vocab: list[str], vocab_source: str, config_source: str) -> None:
    """Fail when the vocab and the config disagree on the vocabulary size."""
    if len(vocab) != config.vocab_size:
        raise ConfigError(
            f"{vocab_source} has {len(vocab):,} tokens but {config_source} says vocab_size "
            f"{config.vocab_size:,}; use the vocab the data was made with and set vocab_size to "
            "its size"
        )


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


@dataclasses.dataclass(frozen=True)
class ModelDir:
    """A checked model directory: its ``path``, ``config``, ``vocab`` and ``task`` record (None
    for a masked LM), read once."""

    path: str
    config: BertConfig
    vocab: list
    task: TaskRecord | None = None

    @property
    def config_path(self) -> str:
        return os.path.join(self.path, CONFIG_FILE)

    @property
    def vocab_path(self) -> str:
        return os.path.join(self.path, VOCAB_FILE)

    @property
    def weights_path(self) -> str:
        return os.path.join(self.path, WEIGHTS_FILE)

    @classmethod
    def read(cls, path: str | os.PathLike, *, need_weights: bool = True) -> "ModelDir":
        """Read and check a model directory: it exists, holds its files (the weights only when
        ``need_weights``), the config is a BERT config and the vocab matches its size."""
        path = os.fspath(path)
        if not file_reading.is_dir(path):
            raise UserError(
                f"{path}: no such directory (give the model directory `kcbert-tf pretrain` or "
                f"`import-hf` wrote, holding {', '.join(MODEL_FILES)})"
            )
        wanted = MODEL_FILES if need_weights else MODEL_FILES[:2]
        missing = [name for name in wanted if not file_reading.exists(os.path.join(path, name))]
        if missing == [WEIGHTS_FILE]:
            raise UserError(
                f"{os.path.join(path, WEIGHTS_FILE)}: no final weights in this model directory (a "
                "`pretrain` run that has not finished has only checkpoints under checkpoints/; run "
                "it again to resume)"
            )
        if missing:
            raise UserError(
                f"{path} lacks {', '.join(missing)}; a model directory holds "
                f"{', '.join(MODEL_FILES)} (give the directory `kcbert-tf pretrain` wrote)"
            )
        config = read_model_config(os.path.join(path, CONFIG_FILE))
        vocab = read_vocab(os.path.join(path, VOCAB_FILE))
        check_vocab_matches(config, vocab, os.path.join(path, VOCAB_FILE), os.path.join(path, CONFIG_FILE))
        return cls(path, config, vocab, _read_task(path, config))

    def require_task(self) -> TaskRecord:
        """The task record; a :class:`UserError` saying how to get one when there is none."""
        if self.task is None:
            raise UserError(
                f"{os.path.join(self.path, TASK_FILE)}: not found: {self.path} holds a "
                f"{self.config.architecture} with no task; fine-tune it (`kcbert-tf finetune --init {self.path} ...`) "
                "or import a transformers task model with `kcbert-tf import-hf`"
            )
        return self.task

    def use(self, *, max_seq_length: int | None = None, clean: bool | None = None) -> TaskRecord:
        """How the model is used: its task record (or :meth:`TaskRecord.default` for a model
        without one) with a user's overrides (None: keep), the length checked against the model's
        positions and the record's minimum.  The one place that resolves a model's use settings:
        ``predict``, ``export-savedmodel``, ``batch-predict``, ``fill-mask`` and ``from_preset``
        call it."""
        config = self.config
        record = self.task or TaskRecord.default(config.head, config.max_position_embeddings, config.labels)
        record = record.with_overrides(max_seq_length=max_seq_length, clean=clean)
        check_sequence_length(record.max_seq_length, config.max_position_embeddings, source=self.config_path,
                              at_least=record.min_seq_length)
        return record

    @classmethod
    def write(cls, path: str | os.PathLike, config: BertConfig, vocab: list, model=None,
              task: TaskRecord | None = None) -> "ModelDir":
        """Write ``config.json``, ``vocab.txt``, the ``task`` record and (with ``model``, a KcBERT
        task model of the config's head) the weights into ``path``, each atomically, the weights
        last; return the directory.  The weights are saved from a float32 copy: the file holds the
        weights alone (no optimizer state), whatever the training precision."""
        path = os.fspath(path)
        _gfile().makedirs(path)
        write_text_atomically(os.path.join(path, CONFIG_FILE), json.dumps(config.to_hf_dict(), indent=2) + "\n")
        write_text_atomically(os.path.join(path, VOCAB_FILE), "".join(token + "\n" for token in vocab))
        if task is not None:
            task.write(path)
        if model is not None:
            plain = type(model).for_config(config)
            for target, source in zip(plain.weights, model.weights):
                target.assign(np.asarray(source.numpy(), dtype=np.float32))
            with tempfile.TemporaryDirectory() as local:
                local_weights = os.path.join(local, WEIGHTS_FILE)
                plain.save_weights(local_weights)
                with open(local_weights, "rb") as source, atomic_file(os.path.join(path, WEIGHTS_FILE)) as target:
                    shutil.copyfileobj(source, target, 2**24)
        return cls(path, config, list(vocab), task)


def _read_task(path: str, config: BertConfig) -> TaskRecord | None:
    """The task record of a model directory, checked against its config."""
    task = TaskRecord.read(path, config.head)
    if task is None:
        return None
    source = os.path.join(path, TASK_FILE)
    if task.head != config.head:
        raise ConfigError(
            f"{source} is for a {task.head} head but {os.path.join(path, CONFIG_FILE)} describes a "
            f"{config.architecture}; write the model directory again with `kcbert-tf finetune` or `import-hf`"
        )
    if task.labels is not None and list(task.labels) != config.labels:
        raise ConfigError(
            f"{source} has the labels {list(task.labels)} but {os.path.join(path, CONFIG_FILE)} has "
            f"{config.labels}; write the model directory again with `kcbert-tf finetune` or `import-hf`"
        )
    return task
