"""A local output directory written whole or not at all: checked first, staged, then renamed.

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
import pathlib
import shutil
import uuid
from typing import Iterator

from kcbert_tf.errors import UserError

__all__ = ["OutputDirError", "check_output_dir", "staged_output"]


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
