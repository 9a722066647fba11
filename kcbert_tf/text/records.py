"""The TFRecord formats of the pipeline, written without importing TensorFlow.

Beam workers write millions of records; building ``tf.train.Example`` protos would mean importing
TensorFlow on every worker and a Python object per record.  These functions write the same bytes
directly in protobuf wire format; the tests parse them back with ``tf.io.parse_single_example``.

A cleaned-comments record (the output of ``kcbert-tf preprocess``) is a ``tf.train.Example`` with
one bytes feature ``text``: the cleaned comment in UTF-8.  A pretraining record (the output of
``kcbert-tf make-pretraining-data``) has one int64 feature ``token_ids``: a packed sequence.

Example:

>>> import tensorflow as tf
>>> record = text_example("안녕하세요 반갑습니다")
>>> parsed = tf.io.parse_single_example(record, {"text": tf.io.FixedLenFeature([], tf.string)})
>>> parsed["text"].numpy().decode("utf-8")
'안녕하세요 반갑습니다'
"""

from __future__ import annotations

import functools
import struct
from typing import BinaryIO, Iterable, Iterator

import google_crc32c

__all__ = [
    "TEXT_FEATURE",
    "text_example",
    "parse_text_example",
    "is_tfrecord_path",
    "read_texts",
    "TOKEN_IDS_FEATURE",
    "token_ids_example",
    "prediction_example",
    "CorruptRecord",
    "tfrecord_frame",
    "read_tfrecord_frames",
]

#: The feature name of the cleaned comment in a ``preprocess`` record.
TEXT_FEATURE = "text"

#: The feature name of a packed sequence's ids in a ``make-pretraining-data`` record.
TOKEN_IDS_FEATURE = "token_ids"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _example(features: dict[str, bytes]) -> bytes:
    """A serialized ``tf.train.Example`` from feature name → serialized ``tf.train.Feature``."""
    entries = b"".join(
        _length_delimited(1, _length_delimited(1, name.encode()) + _length_delimited(2, feature))
        for name, feature in features.items()
    )
    return _length_delimited(1, entries)  # Example.features = 1, Features.feature = 1 (a map)


def _bytes_feature(values: list[bytes]) -> bytes:
    # Feature.bytes_list = 1, BytesList.value = 1
    return _length_delimited(1, b"".join(_length_delimited(1, value) for value in values))


@functools.cache
def _small_varints() -> tuple[bytes, ...]:
    """The varints of 0 .. 65535, built once per process: token ids are looked up, not encoded."""
    return tuple(_varint(value) for value in range(1 << 16))


def _int64_feature(values: Iterable[int]) -> bytes:
    # Feature.int64_list = 3, Int64List.value = 1 (packed varints; negatives as 10-byte varints)
    table = _small_varints()
    packed = b"".join(
        table[value] if 0 <= value < 1 << 16 else _varint(value & 0xFFFFFFFFFFFFFFFF)
        for value in map(int, values)
    )
    return _length_delimited(3, _length_delimited(1, packed) if packed else b"")


def text_example(text: str) -> bytes:
    """A serialized ``tf.train.Example`` holding ``text`` as the bytes feature ``text``."""
    return _example({TEXT_FEATURE: _bytes_feature([text.encode("utf-8")])})


def parse_text_example(record: bytes) -> str:
    """The ``text`` feature of a serialized ``tf.train.Example`` (imports TensorFlow's protos)."""
    import tensorflow as tf

    example = tf.train.Example.FromString(record)
    values = example.features.feature[TEXT_FEATURE].bytes_list.value
    if len(values) != 1:
        raise ValueError(f"a record has {len(values)} values for feature {TEXT_FEATURE!r}, wanted 1")
    return values[0].decode("utf-8")


def is_tfrecord_path(path: str) -> bool:
    """Whether ``path`` names a TFRecord file (``.tfrecord`` in its file name, as the jobs write)."""
    return ".tfrecord" in path.rsplit("/", 1)[-1]


def read_texts(pattern: str) -> Iterator[str]:
    """Every text in the files ``pattern`` matches: ``*.tfrecord*`` files (``preprocess`` output,
    feature ``text``) record by record, any other file line by line (UTF-8).

    Raises ``FileNotFoundError`` naming the pattern when it matches nothing.
    """
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"{pattern}: no such file (check the path or glob)")
    for path in files:
        if is_tfrecord_path(path):
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                yield parse_text_example(record)
        else:
            with tf.io.gfile.GFile(path, "rb") as handle:
                for line in handle:
                    yield line.rstrip(b"\r\n").decode("utf-8")


def token_ids_example(ids: Iterable[int]) -> bytes:
    """A serialized ``tf.train.Example`` holding ``ids`` as the int64 feature ``token_ids``.

    The record format of ``kcbert-tf make-pretraining-data``: one packed sequence per record,
    parsed with ``tf.io.FixedLenFeature([max_seq_length], tf.int64)``.
    """
    return _example({TOKEN_IDS_FEATURE: _int64_feature(ids)})


def _float_feature(values: Iterable[float]) -> bytes:
    # Feature.float_list = 2, FloatList.value = 1 (packed little-endian float32)
    values = list(values)
    packed = struct.pack(f"<{len(values)}f", *values)
    return _length_delimited(2, _length_delimited(1, packed) if packed else b"")


def prediction_example(file: str, line: int, text: str, label: str | None,
                       probabilities: Iterable[float] | None = None, score: float | None = None) -> bytes:
    """A serialized ``tf.train.Example`` of a ``batch-predict`` prediction: bytes ``file``,
    ``text`` and ``label`` (empty: no label), int64 ``line``, and float ``probabilities`` (in
    label order) or ``score``, as present.

    >>> import tensorflow as tf
    >>> example = tf.train.Example.FromString(prediction_example("a.txt", 3, "좋다", "1", [0.25, 0.75]))
    >>> example.features.feature["line"].int64_list.value[0], list(example.features.feature["probabilities"].float_list.value)
    (3, [0.25, 0.75])
    """
    features = {
        "file": _bytes_feature([file.encode("utf-8")]),
        "line": _int64_feature([line]),
        "text": _bytes_feature([text.encode("utf-8")]),
        "label": _bytes_feature([(label or "").encode("utf-8")]),
    }
    if probabilities is not None:
        features["probabilities"] = _float_feature(probabilities)
    if score is not None:
        features["score"] = _float_feature([score])
    return _example(features)


# TFRecord files: each record is framed as its length (uint64, little-endian), the masked CRC32C
# of those 8 bytes, the record, and the masked CRC32C of the record.


def _masked_crc32c(data: bytes) -> int:

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(record: bytes) -> bytes:
    """``record`` framed as one entry of a TFRecord file (what ``tf.io.TFRecordWriter`` writes)."""
    length = struct.pack("<Q", len(record))
    length_crc, record_crc = _masked_crc32c(length), _masked_crc32c(record)
    return b"".join((length, struct.pack("<I", length_crc), record, struct.pack("<I", record_crc)))


class CorruptRecord(ValueError):
    """A TFRecord file that is truncated or fails its checksums; the message names file and byte."""


def read_tfrecord_frames(fileobj: BinaryIO, path: str = "<stream>") -> Iterator[bytes]:
    """Each record of an uncompressed TFRecord stream, checksums verified.

    Raises :class:`CorruptRecord` naming ``path`` and the byte offset of the bad record.
    """
    offset = 0
    while True:
        header = fileobj.read(12)
        if not header:
            return
        if len(header) < 12:
            raise CorruptRecord(f"{path}: truncated record header at byte {offset}")
        length, length_crc = struct.unpack("<QI", header)
        if _masked_crc32c(header[:8]) != length_crc:
            raise CorruptRecord(f"{path}: corrupt record length at byte {offset} (bad checksum)")
        record = fileobj.read(length)
        footer = fileobj.read(4)
        if len(record) < length or len(footer) < 4:
            raise CorruptRecord(f"{path}: truncated record at byte {offset} ({length} bytes long)")
        if _masked_crc32c(record) != struct.unpack("<I", footer)[0]:
            raise CorruptRecord(f"{path}: corrupt record at byte {offset} (bad checksum)")
        yield record
        offset += 16 + length
