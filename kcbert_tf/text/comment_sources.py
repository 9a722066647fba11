"""Reading raw comments from text, TSV/CSV and JSONL files, line by line, in byte ranges.

Every input format is line-based: one comment per line (``text``), one row per line with a named
column (``tsv:COLUMN``, ``csv:COLUMN``, the header is the file's first line), or one JSON object
per line with a named field (``jsonl:FIELD``).  Lines end with ``\\n``; a trailing ``\\r`` is
dropped.  A file is cut into chunks at line boundaries so that workers can read one big file in
parallel and still report exact line numbers.  A line that cannot give a comment (undecodable
UTF-8, a NUL byte, longer than :data:`MAX_LINE_BYTES`, a malformed row) raises
:class:`RejectedLine` with the reason, so the caller can count and keep it.

Example:

>>> fmt = InputFormat.parse("tsv:document")
>>> fmt.comment_from_line(b"9893718\\t\\xeb\\xb2\\xa8\\xec\\x86\\x8c\\xeb\\xa6\\xac\\t0", column_index=1)
'벨소리'
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import json
import lzma
from typing import BinaryIO, Iterator, NamedTuple

__all__ = [
    "MAX_LINE_BYTES",
    "InputFormat",
    "RejectedLine",
    "FileChunk",
    "split_into_chunks",
    "read_chunk_lines",
    "LongLine",
    "is_compressed",
    "open_source",
]

#: A line longer than this (in bytes, without its newline) is rejected, never parsed.
MAX_LINE_BYTES = 1 << 20

#: How many bytes of a rejected line are kept (escaped) in the rejected-lines report.
REJECTED_RAW_BYTES = 4096

_DECOMPRESSORS = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw),
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
}


class RejectedLine(Exception):
    """A line that gives no comment; ``reason`` is one of the stats keys below."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


#: The reasons a line is rejected; each is a key of the job's ``stats.json``.
REJECT_REASONS = ("undecodable", "nul_byte", "too_long", "malformed")


@dataclasses.dataclass(frozen=True)
class InputFormat:
    """How to find the comment in a line: ``text``, ``tsv:COLUMN``, ``csv:COLUMN`` or ``jsonl:FIELD``."""

    kind: str
    field: str | None = None

    KINDS = ("text", "tsv", "csv", "jsonl")

    @classmethod
    def parse(cls, spec: str) -> "InputFormat":
        kind, _, field = spec.partition(":")
        if kind not in cls.KINDS:
            raise ValueError(
                f"unknown input format {spec!r}: use text, tsv:COLUMN, csv:COLUMN or jsonl:FIELD"
            )
        if kind == "text":
            if field:
                raise ValueError(f"input format {spec!r}: 'text' takes no column; use 'text'")
            return cls("text")
        if not field:
            raise ValueError(
                f"input format {spec!r} names no {'field' if kind == 'jsonl' else 'column'}: "
                f"use {kind}:NAME (for NSMC: tsv:document)"
            )
        return cls(kind, field)

    def __str__(self) -> str:
        return self.kind if self.field is None else f"{self.kind}:{self.field}"

    @property
    def has_header(self) -> bool:
        return self.kind in ("tsv", "csv")

    def column_index(self, header_line: bytes, path: str) -> int:
        """The index of this format's column in a TSV/CSV header line of ``path``."""
        header = self._split_row(header_line.decode("utf-8-sig", errors="replace"))
        try:
            return header.index(self.field)
        except ValueError:
            raise ValueError(
                f"{path}: the header has no column {self.field!r} (it has {header}); "
                f"pass --format {self.kind}:NAME with one of those"
            ) from None

    def _split_row(self, text: str) -> list[str]:
        if self.kind == "tsv":
            return text.split("\t")
        return next(csv.reader([text]), [])

    def comment_from_line(self, line: bytes, column_index: int = -1) -> str:
        """The comment in one line (without its newline); raises :class:`RejectedLine`."""
        if len(line) > MAX_LINE_BYTES:
            raise RejectedLine("too_long", f"{getattr(line, 'length', len(line))} bytes > {MAX_LINE_BYTES}")
        if b"\x00" in line:
            raise RejectedLine("nul_byte")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RejectedLine("undecodable", str(error)) from None
        if self.kind == "text":
            return text
        if self.kind == "jsonl":
            try:
                record = json.loads(text)
            except ValueError as error:
                raise RejectedLine("malformed", f"not JSON: {error}") from None
            if not isinstance(record, dict) or self.field not in record:
                raise RejectedLine("malformed", f"no field {self.field!r}")
            value = record[self.field]
            if not isinstance(value, str):
                raise RejectedLine("malformed", f"field {self.field!r} is not a string")
            return value
        row = self._split_row(text)
        if column_index >= len(row):
            raise RejectedLine("malformed", f"{len(row)} columns, wanted column {column_index + 1}")
        return row[column_index]


class FileChunk(NamedTuple):
    """A byte range ``[start, end)`` of ``path`` that begins at line ``first_line`` (1-based).

    ``end`` is -1 for "to the end of the file" (compressed files are read whole).
    ``column_index`` is the comment's column for TSV/CSV, else -1.
    """

    path: str
    start: int
    end: int
    first_line: int
    column_index: int = -1


def is_compressed(path: str) -> bool:
    """Whether ``path`` is read through a decompressor (``.gz``, ``.bz2``, ``.xz``)."""
    return path.lower().endswith(tuple(_DECOMPRESSORS))


def open_source(path: str) -> BinaryIO:
    """Open a local, ``gs://`` or other Beam-filesystem path for binary reading, decompressing by suffix."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    for suffix, decompressor in _DECOMPRESSORS.items():
        if path.lower().endswith(suffix):
            return decompressor(raw)
    return raw


def split_into_chunks(
    path: str, fileobj: BinaryIO, fmt: InputFormat, chunk_bytes: int
) -> Iterator[FileChunk]:
    """Cut an open file into chunks of about ``chunk_bytes`` that start and end at line boundaries.

    Counts the newlines on the way, so each chunk knows its first line number.  A compressed file
    cannot be cut: it is one chunk.  A TSV/CSV header line is read here and never in a chunk.
    """
    column_index = -1
    start, line_number = 0, 1
    if fmt.has_header:
        header = fileobj.readline(MAX_LINE_BYTES + 1)
        if not header:
            return  # An empty file has no header and no rows.
        column_index = fmt.column_index(header.rstrip(b"\r\n"), path)
        start, line_number = len(header), 2
    if is_compressed(path):
        yield FileChunk(path, start, -1, line_number, column_index)
        return
    block_size = 1 << 20
    while True:
        target, position, newlines = start + chunk_bytes, start, 0
        while position < target and (block := fileobj.read(min(block_size, target - position))):
            newlines += block.count(b"\n")
            position += len(block)
        while position >= target:  # Finish the line that straddles the cut.
            piece = fileobj.readline(block_size)
            position += len(piece)
            if not piece or piece.endswith(b"\n"):
                newlines += piece.count(b"\n")
                break
        if position == start:
            return
        yield FileChunk(path, start, position, line_number, column_index)
        start, line_number = position, line_number + newlines


class LongLine(bytes):
    """The first ``MAX_LINE_BYTES + 1`` bytes of a longer line; ``length`` is the whole line's."""

    length: int

    @classmethod
    def cut(cls, head: bytes, length: int) -> "LongLine":
        line = cls(head[: MAX_LINE_BYTES + 1])
        line.length = length
        return line


def _extend(head: bytes, length: int, piece: bytes) -> tuple[bytes, int]:
    """A line's kept first bytes and full length after ``piece`` is appended to it."""
    if len(head) <= MAX_LINE_BYTES:
        head += piece[: MAX_LINE_BYTES + 1 - len(head)]
    return head, length + len(piece)


def _finish(head: bytes, length: int) -> bytes:
    if length > MAX_LINE_BYTES:
        return LongLine.cut(head, length)
    return head.removesuffix(b"\r")


def read_chunk_lines(fileobj: BinaryIO, chunk: FileChunk, block_size: int = 1 << 22) -> Iterator[bytes]:
    """Yield each line of ``chunk``, without its newline and trailing ``\\r``.

    Reads in blocks of ``block_size`` and splits them in C.  A line longer than
    :data:`MAX_LINE_BYTES` comes as a :class:`LongLine` (cut, with its full ``length``), so memory
    stays bounded whatever the input.  Line ``k`` of the chunk is line ``chunk.first_line + k``.
    """
    fileobj.seek(chunk.start)
    remaining = chunk.end - chunk.start if chunk.end >= 0 else None
    head, length = b"", 0  # The line begun in an earlier block: its first bytes, its length.
    while True:
        size = block_size if remaining is None else min(block_size, remaining)
        block = fileobj.read(size) if size > 0 else b""
        if not block:
            if length:
                yield _finish(head, length)
            return
        if remaining is not None:
            remaining -= len(block)
        lines = block.split(b"\n")
        tail = lines.pop()
        if lines:
            first = _finish(*_extend(head, length, lines[0])) if length else None
            if b"\r" in block:
                lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            if max(map(len, lines)) > MAX_LINE_BYTES:
                lines = [
                    LongLine.cut(line, len(line)) if len(line) > MAX_LINE_BYTES else line
                    for line in lines
                ]
            if first is not None:  # The line begun in an earlier block ends in this one.
                lines[0] = first
            yield from lines
            head, length = b"", 0
        head, length = _extend(head, length, tail)
