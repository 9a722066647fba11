"""Where ``predict`` writes: a file, written atomically, or standard output.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "predictions.tsv")
>>> write_predictions(path, "predicted\\n1\\n", "1 example")  # doctest: +ELLIPSIS
predict: 1 example -> ...predictions.tsv
>>> open(path).read()
'predicted\\n1\\n'
"""

from __future__ import annotations

import sys

from kcbert_tf.output_dir import write_text_atomically

__all__ = ["write_predictions"]


def write_predictions(path: str | None, text: str, what: str) -> None:
    """Write ``text`` to ``path`` atomically and say so, or to stdout when ``path`` is None."""
    if path:
        write_text_atomically(path, text)
        print(f"predict: {what} -> {path}", flush=True)
    else:
        sys.stdout.write(text)
