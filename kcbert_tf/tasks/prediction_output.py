"""Where ``predict`` writes: a file, written atomically, or standard output.

:func:`prediction_output` gives a text handle for writing as predictions are computed (a file of
any size); :func:`write_predictions` writes a whole text at once.  Both are the same destination.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "predictions.tsv")
>>> write_predictions(path, "predicted\\n1\\n", "1 example")  # doctest: +ELLIPSIS
predict: 1 example -> ...predictions.tsv
>>> open(path).read()
'predicted\\n1\\n'
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Iterator, TextIO

from kcbert_tf.output_dir import atomic_file

__all__ = ["prediction_output", "report_written", "write_predictions"]


@contextlib.contextmanager
def prediction_output(path: str | None) -> Iterator[TextIO]:
    """A UTF-8 text handle on ``path``, renamed into place when the block ends without an error
    (nothing is left on one), or on stdout when ``path`` is None."""
    if not path:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_file(path) as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        try:
            yield out
        finally:
            out.flush()
            out.detach()  # atomic_file closes and renames the file itself


def report_written(path: str | None, what: str, detail: str = "") -> None:
    """The closing line of predictions written to a file (nothing for stdout)."""
    if path:
        print(f"predict: {what} -> {path}{f' ({detail})' if detail else ''}", flush=True)


def write_predictions(path: str | None, text: str, what: str) -> None:
    """Write ``text`` to ``path`` atomically and say so, or to stdout when ``path`` is None."""
    with prediction_output(path) as out:
        out.write(text)
    report_written(path, what)
