"""Outputs written whole or not at all: a directory checked first, staged, then renamed; a file
written under a temporary name, then renamed (:func:`write_text_atomically`, the one way every
stage and job writes a small file, locally or on ``gs://``).

``train-tokenizer``, ``export-hf``, ``import-hf`` and ``export-savedmodel`` write directories that
other tools load from local disk.  Each refuses a non-empty output unless ``--overwrite``, writes
into a temporary sibling, and only when everything is written (and verified) renames it into
place; an old output is removed only after that.  On any error the temporary directory goes.

Example:

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> output = check_output_dir(str(root / "out"), overwrite=False)
>>> with staged_output(output) as staging:
...     _ = (staging / "vocab.txt").write_text("[PAD]\\n")
>>> sorted(path.name for path in output.iterdir())
['vocab.txt']
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import uuid
from typing import BinaryIO, Iterator

from kcbert_tf.errors import UserError

__all__ = ["OutputDirError", "check_output_dir", "staged_output", "atomic_file", "write_text_atomically"]


@contextlib.contextmanager
def atomic_file(path: str) -> Iterator[BinaryIO]:
    """A binary handle on a temporary name beside ``path``, renamed into place when the block
    ends without an error (and removed on one), so a reader never sees half a file.  Local paths,
    and remote ones (``gs://``): through TensorFlow's file system where TensorFlow is installed
    (the training side, TPU VMs), else through Beam's ``FileSystems`` (Beam workers)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    temporary = f"{path[: len(path) - len(name)]}.{name}.tmp-{uuid.uuid4().hex}"
    files = _file_system(path)
    try:
        with files.open_write(temporary) as handle:
            yield handle
        files.rename(temporary, path)
    except BaseException:
        files.remove(temporary)
        raise


class _LocalFiles:
    @staticmethod
    def open_write(path: str) -> BinaryIO:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")

    @staticmethod
    def rename(source: str, target: str) -> None:
        os.replace(source, target)  # atomic, replacing an old file

    @staticmethod
    def remove(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


class _TensorFlowFiles:
    def __init__(self, gfile):
        self.gfile = gfile

    def open_write(self, path: str):
        return self.gfile.GFile(path, "wb")

    def rename(self, source: str, target: str) -> None:
        self.gfile.rename(source, target, overwrite=True)

    def remove(self, path: str) -> None:
        if self.gfile.exists(path):
            self.gfile.remove(path)


class _BeamFiles:
    def __init__(self):
        from apache_beam.io.filesystems import FileSystems

        self.files = FileSystems

    def open_write(self, path: str):
        return self.files.create(path)

    def rename(self, source: str, target: str) -> None:
        self.files.rename([source], [target])

    def remove(self, path: str) -> None:
        if self.files.exists(path):
            self.files.delete([path])


def _file_system(path: str):
    if "://" not in path:
        return _LocalFiles()
    try:
        import tensorflow as tf
    except ImportError:
        return _BeamFiles()
    return _TensorFlowFiles(tf.io.gfile)


def write_text_atomically(path: str, text: str) -> str:
    """Write ``text`` (UTF-8) through :func:`atomic_file`; return ``path``."""
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))
    return path


class OutputDirError(UserError):
    """An output directory that cannot be written; the message says what to do instead."""


def check_output_dir(name: str, overwrite: bool) -> pathlib.Path:
    """The output directory, refused before any work if remote, a file, or not empty."""
    if "://" in name:
        raise OutputDirError(
            f"--output {name}: give a local directory (it is written under a temporary name and "
            "renamed into place, and loaded from disk); copy it to remote storage afterwards"
        )
    output = pathlib.Path(name)
    if output.exists() and not output.is_dir():
        raise OutputDirError(f"--output {output} is a file; give a directory")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        held = ", ".join(sorted(path.name for path in output.iterdir())[:4])
        raise OutputDirError(
            f"--output {output} already exists and is not empty (it holds {held}); choose another "
            "directory or pass --overwrite"
        )
    return output


@contextlib.contextmanager
def staged_output(output: pathlib.Path) -> Iterator[pathlib.Path]:
    """Yield an empty temporary directory beside ``output``; when the block ends without an error,
    it becomes ``output`` (an old ``output`` is removed only then); on an error it is removed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.with_name(f".{output.name}.tmp-{uuid.uuid4().hex[:8]}")
    staged.mkdir()
    try:
        yield staged
        _publish(staged, output)
    finally:
        if staged.exists():
            shutil.rmtree(staged)


def _publish(staged: pathlib.Path, output: pathlib.Path) -> None:
    if output.is_dir() and not any(output.iterdir()):
        output.rmdir()
    if not output.exists():
        staged.rename(output)
        return
    old = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:8]}")
    output.rename(old)
    try:
        staged.rename(output)
    except BaseException:
        old.rename(output)
        raise
    shutil.rmtree(old)
