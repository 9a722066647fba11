"""A LiteRT directory (``export-litert``'s output): everything needed to use the model, read
without TensorFlow.

It holds:

- ``model.tflite``: the model (the encoder and its head; int8 or fp32), inputs ``token_ids``,
  ``segment_ids``, ``padding_mask`` (int32 ``[batch, length]``, any size), one float32 output: the
  head's logits (``[batch, classes]``, a regressor's ``[batch, 1]``; ``[batch, length, labels]``
  for a token classifier; ``[batch, length, 2]``, start and end, for a question answerer);
- ``vocab.txt``, ``config.json`` and ``task.json`` (the task record: labels, max length, cleaning),
  as in a model directory;
- ``litert.json``: the kind, the precision, the inputs and output, what serving requires, the
  source and the export's own verification (ids, probability difference, its bound).

:meth:`LiteRtDir.read` checks it and :meth:`LiteRtDir.use` resolves its use settings as
:meth:`~kcbert_tf.model.model_dir.ModelDir.use` does for a model directory (``--max-seq-length``
at most the model's positions, ``--no-clean``).

Example::

    litert = LiteRtDir.read("runs/nsmc-int8")
    record = litert.use()                      # labels, max_seq_length, clean
    runner = litert.runner(threads=2)          # kcbert_tf.litert.runner.LiteRtRunner
    tokenizer = litert.tokenizer(record)       # kcbert_tf.text.serving_tokenizer.ServingTokenizer
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os

from kcbert_tf import file_reading
from kcbert_tf.errors import UserError
from kcbert_tf.litert.runner import LiteRtRunner
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import TaskRecord
from kcbert_tf.text.serving_tokenizer import ServingTokenizer

__all__ = ["LITERT_MODEL_FILE", "LITERT_INFO_FILE", "LiteRtDir", "is_litert_dir"]

LITERT_MODEL_FILE = "model.tflite"
LITERT_INFO_FILE = "litert.json"

#: What serving a LiteRT directory needs (``pip install 'kcbert-tf[litert]'``).
REQUIRES = ("ai-edge-litert", "tokenizers")


def is_litert_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a LiteRT directory (holds ``model.tflite``)."""
    return file_reading.exists(os.path.join(os.fspath(path), LITERT_MODEL_FILE))


@dataclasses.dataclass(frozen=True)
class LiteRtDir:
    """A checked LiteRT directory: its model directory files (config, vocab, task record) and
    what ``litert.json`` says."""

    files: ModelDir
    info: dict

    @property
    def path(self) -> str:
        return self.files.path

    @property
    def model_path(self) -> str:
        return os.path.join(self.path, LITERT_MODEL_FILE)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "LiteRtDir":
        path = os.fspath(path)
        if not is_litert_dir(path):
            raise UserError(f"{path}: no {LITERT_MODEL_FILE}; a LiteRT directory is what `kcbert-tf export-litert` "
                            "writes")
        files = ModelDir.read(path, need_weights=False)
        info_path = os.path.join(path, LITERT_INFO_FILE)
        try:
            info = json.loads(file_reading.read_text(info_path))
        except FileNotFoundError:
            raise UserError(f"{info_path}: not found; export the model again with `kcbert-tf export-litert`") from None
        except ValueError as error:
            raise UserError(f"{info_path}: not JSON ({error}); export the model again with "
                            "`kcbert-tf export-litert`") from None
        if files.task is None:
            raise UserError(f"{path}: no task.json; export the model again with `kcbert-tf export-litert`")
        return cls(files, info)

    def use(self, *, max_seq_length: int | None = None, clean: bool | None = None) -> TaskRecord:
        """The task record with a user's overrides, checked against the model's positions."""
        return self.files.use(max_seq_length=max_seq_length, clean=clean)

    def runner(self, *, threads: int | None = None):
        """The model, loaded: a :class:`~kcbert_tf.litert.runner.LiteRtRunner`."""
        content = file_reading.read_bytes(self.model_path)
        with _serving_packages(self.path):
            return LiteRtRunner(content, threads=threads)

    def tokenizer(self, record: TaskRecord):
        """The serving tokenizer for this vocab and the record's length."""
        with _serving_packages(self.path):
            return ServingTokenizer(self.files.vocab, record.max_seq_length, source=self.files.vocab_path)


@contextlib.contextmanager
def _serving_packages(path: str):
    """A missing serving package (LiteRT, tokenizers) as a UserError saying what to install."""
    try:
        yield
    except ImportError as error:
        raise UserError(f"{path}: serving a LiteRT model needs {', '.join(REQUIRES)} ({error}); "
                        "pip install 'kcbert-tf[litert]'") from None
