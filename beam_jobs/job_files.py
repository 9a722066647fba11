"""The output directory of a Beam job: checks before it runs, atomic writes, old files after.

Every job refuses an output directory that already holds its records unless ``--overwrite``,
writes small files (``stats.json``) atomically (``kcbert_tf.output_dir``), and deletes the
records of an earlier run only once the new ones are complete.  All through Beam's
``FileSystems``, so local paths and ``gs://`` work alike.

Example:

>>> import tempfile
>>> from kcbert_tf.output_dir import write_text_atomically
>>> with tempfile.TemporaryDirectory() as out:
...     path = write_text_atomically(FileSystems.join(out, "stats.json"), "{}")
...     [m.path.endswith("stats.json") for m in match_files(FileSystems.join(out, "*"))]
[True]
"""

from __future__ import annotations

import json
from typing import Iterable

from apache_beam.io.filesystems import FileSystems

from kcbert_tf.errors import UserError

__all__ = [
    "match_files",
    "records_of_directory",
    "refuse_occupied_output",
    "delete_stale_files",
    "read_json",
]


def match_files(pattern: str) -> list:
    """The files (Beam ``FileMetadata``: path, size) that ``pattern`` matches; none if none."""
    return FileSystems.match([pattern])[0].metadata_list


def records_of_directory(pattern: str, records_suffix: str) -> str:
    """``pattern`` as given, or, when it names a directory holding ``*records_suffix*`` files
    (another job's output directory), the glob of those files."""
    if any(char in pattern for char in "*?["):
        return pattern
    records = FileSystems.join(pattern, f"*{records_suffix}*")
    try:
        return records if match_files(records) else pattern
    except Exception:  # An unreachable filesystem: the caller's own match of ``pattern`` says so.
        return pattern


def refuse_occupied_output(output: str, records_pattern: str, overwrite: bool) -> None:
    """Fail when ``output`` already holds files matching ``records_pattern`` and not ``overwrite``."""
    existing = match_files(FileSystems.join(output, records_pattern))
    if existing and not overwrite:
        raise UserError(
            f"--output {output} already holds {len(existing)} record file(s) such as "
            f"{existing[0].path}; choose another directory or pass --overwrite"
        )


def delete_stale_files(output: str, patterns: Iterable[str], written: Iterable[str]) -> None:
    """Delete the files in ``output`` matching ``patterns`` that this run did not write."""
    keep = set(written)
    stale = [
        metadata.path
        for pattern in patterns
        for metadata in match_files(FileSystems.join(output, pattern))
        if metadata.path not in keep
    ]
    if stale:
        FileSystems.delete(stale)


def read_json(path: str) -> dict:
    with FileSystems.open(path) as handle:
        return json.load(handle)
