"""The TFRecord formats of the pipeline, written without importing TensorFlow.

Beam workers write millions of records; building ``tf.train.Example`` protos would mean importing
TensorFlow on every worker and a Python object per record.  These functions write the same bytes
directly in protobuf wire format; the tests parse them back with ``tf.io.parse_single_example``.

A cleaned-comments record (the output of ``kcbert-tf preprocess``) is a ``tf.train.Example`` with
one bytes feature ``text``: the cleaned comment in UTF-8.

Example:

>>> import tensorflow as tf
>>> record = text_example("안녕하세요 반갑습니다")
>>> parsed = tf.io.parse_single_example(record, {"text": tf.io.FixedLenFeature([], tf.string)})
>>> parsed["text"].numpy().decode("utf-8")
'안녕하세요 반갑습니다'
"""

from __future__ import annotations

__all__ = ["TEXT_FEATURE", "text_example"]

#: The feature name of the cleaned comment in a ``preprocess`` record.
TEXT_FEATURE = "text"


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


def text_example(text: str) -> bytes:
    """A serialized ``tf.train.Example`` holding ``text`` as the bytes feature ``text``."""
    return _example({TEXT_FEATURE: _bytes_feature([text.encode("utf-8")])})
