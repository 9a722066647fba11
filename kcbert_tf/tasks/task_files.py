"""Reading a task's text files: the one UTF-8 reader under every task's reader.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
>>> _ = open(path, "wb").write("\\ufeff좋아\\n싫어".encode("utf-8"))
>>> read_lines(path)
['좋아', '싫어']
"""

from __future__ import annotations

from kcbert_tf.errors import UserError

__all__ = ["read_text", "read_lines"]


def read_text(path: str, what: str) -> str:
    """The text of a UTF-8 file (a leading BOM dropped); a missing file, a directory or another
    encoding is a :class:`UserError` naming the file and ``what`` to give instead."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (give {what})") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; give {what} itself") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 (byte {error.start}); save it as UTF-8") from None
    return text.removeprefix("\ufeff")


def read_lines(path: str, what: str = "the tab-separated file with a header line") -> list[str]:
    """The lines of a UTF-8 text file (:func:`read_text`)."""
    return read_text(path, what).split("\n")
