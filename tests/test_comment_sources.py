"""Line reading, chunking and comment extraction against plain `bytes.split` references."""

from __future__ import annotations

import gzip
import io
import json
import random

import pytest

from kcbert_tf.text import comment_sources
from kcbert_tf.text.comment_sources import (
    FileChunk,
    InputFormat,
    RejectedLine,
    open_source,
    read_chunk_lines,
    split_into_chunks,
)


def reference_lines(data: bytes) -> list[bytes]:
    """Lines as the job defines them: split on \\n, a last empty piece is no line, \\r dropped."""
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [piece[:-1] if piece.endswith(b"\r") else piece for piece in pieces]


def read_all(data: bytes, fmt: InputFormat, chunk_bytes: int, block_size: int = 7):
    """Every (line number, line) of ``data`` through split_into_chunks + read_chunk_lines."""
    out = []
    chunks = list(split_into_chunks("mem", io.BytesIO(data), fmt, chunk_bytes))
    for chunk in chunks:
        lines = read_chunk_lines(io.BytesIO(data), chunk, block_size=block_size)
        out += [(chunk.first_line + index, line) for index, line in enumerate(lines)]
    return chunks, out


@pytest.mark.parametrize("seed", range(20))
def test_chunks_cover_every_line_once_with_its_number(seed):
    rng = random.Random(seed)
    lines = [
        "".join(rng.choice("가나다ab ㅋ\r😂") for _ in range(rng.randrange(0, 30))).encode()
        for _ in range(rng.randrange(1, 60))
    ]
    data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
    chunks, got = read_all(data, InputFormat("text"), chunk_bytes=rng.randrange(1, 200))
    expected = list(enumerate(reference_lines(data), start=1))
    assert got == expected
    # Chunks tile the file: each starts where the last ended, at a line start.
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]]
    assert chunks[-1].end == len(data) and chunks[0].start == 0
    assert all(c.start == 0 or data[c.start - 1 : c.start] == b"\n" for c in chunks)


def test_long_lines_are_cut_but_measured(monkeypatch):
    monkeypatch.setattr(comment_sources, "MAX_LINE_BYTES", 10)
    data = b"short\n" + b"x" * 25 + b"\r\nok line\n" + b"y" * 11 + b"\n" + b"z" * 10
    _, got = read_all(data, InputFormat("text"), chunk_bytes=8, block_size=4)
    assert [number for number, _ in got] == [1, 2, 3, 4, 5]
    long_line, last_long = got[1][1], got[3][1]
    assert isinstance(long_line, comment_sources.LongLine)
    assert long_line.length == 26 and long_line == b"x" * 11  # \r is part of an over-long line
    assert last_long.length == 11 and got[4][1] == b"z" * 10
    with pytest.raises(RejectedLine) as error:
        InputFormat("text").comment_from_line(long_line)
    assert error.value.reason == "too_long" and "26 bytes" in error.value.detail


def test_tsv_header_names_the_column_and_is_skipped():
    data = "id\tdocument\tlabel\n1\t재밌다 진짜로\t1\n2\t별로임\t0\n3\n".encode()
    fmt = InputFormat.parse("tsv:document")
    chunks, got = read_all(data, fmt, chunk_bytes=5)
    assert {c.column_index for c in chunks} == {1}
    assert [number for number, _ in got] == [2, 3, 4]
    assert fmt.comment_from_line(got[0][1], 1) == "재밌다 진짜로"
    with pytest.raises(RejectedLine, match="malformed"):
        fmt.comment_from_line(got[2][1], 1)


def test_missing_column_names_the_file_and_the_columns():
    with pytest.raises(ValueError, match=r"data\.tsv.*'review'.*\['id', 'document'\]"):
        list(split_into_chunks("data.tsv", io.BytesIO(b"id\tdocument\n"), InputFormat.parse("tsv:review"), 10))


def test_csv_and_jsonl_fields():
    csv_fmt = InputFormat.parse("csv:text")
    assert csv_fmt.comment_from_line('3,"쉼표, 있는 댓글"'.encode(), 1) == "쉼표, 있는 댓글"
    jsonl = InputFormat.parse("jsonl:comment")
    assert jsonl.comment_from_line(json.dumps({"comment": "좋네요 ㅎㅎ"}).encode()) == "좋네요 ㅎㅎ"
    for bad in (b"{not json", b"[1, 2]", b'{"other": 1}', b'{"comment": 3}'):
        with pytest.raises(RejectedLine) as error:
            jsonl.comment_from_line(bad)
        assert error.value.reason == "malformed"


@pytest.mark.parametrize(
    "line, reason",
    [(b"\xff\xfe bad", "undecodable"), (b"nul\x00byte", "nul_byte"), (b"\xea\xb0", "undecodable")],
)
def test_bad_lines_are_rejected_with_a_reason(line, reason):
    with pytest.raises(RejectedLine) as error:
        InputFormat("text").comment_from_line(line)
    assert error.value.reason == reason


@pytest.mark.parametrize("spec", ["xml", "tsv", "jsonl:", "text:x", "csv"])
def test_bad_format_specs_say_what_to_use(spec):
    with pytest.raises(ValueError, match="tsv:|text"):
        InputFormat.parse(spec)


def test_gzip_files_are_one_chunk_and_read_whole(tmp_path):
    data = "첫 줄\n둘째 줄\n\n넷째 줄".encode()
    path = tmp_path / "comments.txt.gz"
    path.write_bytes(gzip.compress(data))
    with open_source(str(path)) as handle:
        chunks = list(split_into_chunks(str(path), handle, InputFormat("text"), 4))
    assert chunks == [FileChunk(str(path), 0, -1, 1, -1)]
    with open_source(str(path)) as handle:
        assert list(read_chunk_lines(handle, chunks[0], block_size=3)) == reference_lines(data)
