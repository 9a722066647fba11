"""Reading the small files of a model directory (config, vocab, task record), locally or on
``gs://``: the one way every stage checks for and reads them.

Local paths are read with Python's own file functions, so a command that reads a model directory
from disk imports no TensorFlow (``predict`` on a LiteRT directory never does).  Remote paths go
through TensorFlow's file system where TensorFlow is installed (the training side, TPU VMs), else
through Beam's ``FileSystems`` (Beam workers of a lean install), as writes do
(:mod:`kcbert_tf.output_dir`).

Example:

>>> import os, tempfile
>>> directory = tempfile.mkdtemp()
>>> with open(os.path.join(directory, "vocab.txt"), "w") as handle:
...     _ = handle.write("[PAD]\\n")
>>> is_dir(directory), exists(os.path.join(directory, "vocab.txt")), read_bytes(os.path.join(directory, "vocab.txt"))
(True, True, b'[PAD]\\n')
"""

from __future__ import annotations

import os

__all__ = ["is_dir", "exists", "read_bytes", "read_text"]


def _remote():
    """The file system for a remote path: ``tf.io.gfile``'s functions, or Beam's."""
    try:
        import tensorflow as tf
    except ImportError:
        from apache_beam.io.filesystems import FileSystems

        def read(path: str) -> bytes:
            with FileSystems.open(path) as handle:
                return handle.read()

        # Beam has no directories: a prefix with files under it is one.
        def isdir(path: str) -> bool:
            return bool(FileSystems.match([path.rstrip("/") + "/*"])[0].metadata_list)

        return isdir, FileSystems.exists, read

    def read(path: str) -> bytes:
        try:
            with tf.io.gfile.GFile(path, "rb") as handle:
                return handle.read()
        except tf.errors.NotFoundError:
            raise FileNotFoundError(path) from None

    return tf.io.gfile.isdir, tf.io.gfile.exists, read


def is_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory."""
    path = os.fspath(path)
    return os.path.isdir(path) if "://" not in path else _remote()[0](path)


def exists(path: str | os.PathLike) -> bool:
    """Whether ``path`` exists (a file or a directory)."""
    path = os.fspath(path)
    return os.path.exists(path) if "://" not in path else _remote()[1](path)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole file; ``FileNotFoundError`` when there is none."""
    path = os.fspath(path)
    if "://" not in path:
        with open(path, "rb") as handle:
            return handle.read()
    return _remote()[2](path)


def read_text(path: str | os.PathLike) -> str:
    """The whole file as UTF-8 text."""
    return read_bytes(path).decode("utf-8")
