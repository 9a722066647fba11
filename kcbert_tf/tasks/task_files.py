"""Reading a task's text files: the one UTF-8 reader under every task's reader.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
>>> _ = open(path, "wb").write("\\ufeff좋아\\n싫어".encode("utf-8"))
>>> read_lines(path)
['좋아', '싫어']
"""

from __future__ import annotations

from typing import Iterator

from kcbert_tf.errors import UserError

__all__ = ["stream_lines", "read_text", "read_lines"]


def stream_lines(path: str, what: str) -> Iterator[str]:
    """The lines of a UTF-8 text file, read as they are needed (a file of any size), as
    ``text.split("\\n")`` gives them (a leading BOM dropped); a missing file, a directory or
    another encoding is a :class:`UserError` naming the file and ``what`` to give instead."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (give {what})") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; give {what} itself") from None
    with handle:
        offset, ended = 0, True  # an empty file is one empty line, as "".split("\\n")
        for raw in handle:  # split on b"\\n" alone: UTF-8 never has that byte inside a character
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UserError(f"{path}: not UTF-8 (byte {offset + error.start}); save it as UTF-8") from None
            if not offset:
                line = line.removeprefix("\ufeff")
            offset += len(raw)
            ended = line.endswith("\n")
            yield line[:-1] if ended else line
        if ended:
            yield ""


def read_text(path: str, what: str) -> str:
    """The text of a UTF-8 file (a leading BOM dropped), with :func:`stream_lines`' errors."""
    return "\n".join(stream_lines(path, what))


def read_lines(path: str, what: str = "the tab-separated file with a header line") -> list[str]:
    """The lines of a UTF-8 text file (:func:`stream_lines`), all at once."""
    return list(stream_lines(path, what))
