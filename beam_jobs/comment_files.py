"""Reading comment files in a Beam job: the input checked before the job starts, files cut into
line-aligned chunks, and the report of a line that gave no comment.

``preprocess`` and ``batch-predict`` read their input the same way: a file, glob or ``gs://``
path; text, TSV/CSV (a header line) or JSONL lines; gz/bz2/xz by suffix; cut into chunks of about
``--chunk-mb`` at line boundaries, each chunk knowing its first line number, so a rejected line is
reported with its file and line (:mod:`kcbert_tf.text.comment_sources`).

Example:

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "c.tsv")
>>> _ = open(path, "w").write("id\\tdocument\\n1\\t좋아요\\n")
>>> [m.path == path for m in match_input_files(path, InputFormat.parse("tsv:document"))]
[True]
>>> match_input_files(path, InputFormat.parse("tsv:text"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
kcbert_tf.errors.UserError: ...c.tsv: the header has no column 'text' (it has ['id', 'document']); pass --format tsv:NAME with one of those
"""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam
from apache_beam.io import fileio

from beam_jobs.job_files import match_files
from beam_jobs.job_reporting import report_counts
from kcbert_tf.errors import UserError
from kcbert_tf.text.comment_sources import (
    REJECTED_RAW_BYTES,
    FileChunk,
    InputFormat,
    RejectedLine,
    open_source,
    split_into_chunks,
)

__all__ = ["ChunkFiles", "SplitFileIntoChunks", "WholeFiles", "match_input_files", "rejected_line"]


def match_input_files(pattern: str, fmt: InputFormat) -> list:
    """The files ``pattern`` matches (Beam ``FileMetadata``), each TSV/CSV header checked for the
    format's column; raises :class:`UserError` naming the input and the fix."""
    try:
        inputs = match_files(pattern)
    except Exception as error:  # A filesystem the runner cannot reach, a bad scheme, ...
        raise UserError(f"--input {pattern}: cannot list it ({error})") from None
    if not inputs:
        raise UserError(f"--input {pattern}: no such file (check the path or glob)")
    if fmt.has_header:  # A wrong column name fails here, not deep inside a worker.
        for metadata in inputs:
            with open_source(metadata.path) as handle:
                header = handle.readline()
            if header:
                try:
                    fmt.column_index(header.rstrip(b"\r\n"), metadata.path)
                except ValueError as error:
                    raise UserError(str(error)) from None
    return inputs


class SplitFileIntoChunks(beam.DoFn):
    """A matched file → line-aligned :class:`FileChunk` s of about ``chunk_bytes``, and a
    ``stats`` count of one file in the counters of ``namespace``."""

    def __init__(self, fmt: InputFormat, chunk_bytes: int, namespace: str):
        super().__init__()
        self._fmt = fmt
        self._chunk_bytes = chunk_bytes
        self._namespace = namespace

    def process(self, metadata) -> Iterator:
        path = metadata.path
        with open_source(path) as fileobj:
            yield from split_into_chunks(path, fileobj, self._fmt, self._chunk_bytes)
        yield report_counts(self._namespace, {"files": 1})


def rejected_line(path: str, line_number: int, line: bytes, rejected: RejectedLine) -> dict:
    """The report of line ``line_number`` (1-based) of ``path``: where, why, and its bytes."""
    return {
        "file": path,
        "line": line_number,
        "reason": rejected.reason,
        "detail": rejected.detail,
        "bytes": getattr(line, "length", len(line)),
        "raw": line[:REJECTED_RAW_BYTES].decode("utf-8", "backslashreplace"),
    }


class WholeFiles(beam.DoFn):
    """A matched file → one chunk, the whole file (TFRecords cannot be cut at a byte offset), and
    a ``stats`` count of one file."""

    def __init__(self, namespace: str):
        super().__init__()
        self._namespace = namespace

    def process(self, metadata) -> Iterator:
        yield FileChunk(metadata.path, 0, -1, 1)
        yield report_counts(self._namespace, {"files": 1})


class ChunkFiles(beam.PTransform):
    """A file pattern → ``{"chunks", "stats"}``: each matched file cut into line-aligned
    :class:`FileChunk` s of about ``chunk_bytes`` (whole files when ``fmt`` is None), spread over
    the workers; ``stats`` counts the files in the counters of ``namespace``."""

    def __init__(self, file_pattern: str, fmt: InputFormat | None, chunk_bytes: int, namespace: str):
        super().__init__()
        self._file_pattern = file_pattern
        self._fmt = fmt
        self._chunk_bytes = chunk_bytes
        self._namespace = namespace

    def expand(self, pbegin):
        split_file = (
            WholeFiles(self._namespace)
            if self._fmt is None
            else SplitFileIntoChunks(self._fmt, self._chunk_bytes, self._namespace)
        )
        split = (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._file_pattern)
            | "SplitIntoChunks" >> beam.ParDo(split_file).with_outputs("stats", main="chunks")
        )
        return {"chunks": split.chunks | "SpreadChunks" >> beam.Reshuffle(), "stats": split.stats}
