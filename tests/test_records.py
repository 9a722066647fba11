"""Hand-written tf.train.Example bytes against TensorFlow's own parser and serializer."""

from __future__ import annotations

import pytest

from kcbert_tf.text.records import text_example


@pytest.mark.parametrize("text", ["", "a", "안녕하세요 😂👨‍👩‍👧", "긴 댓글 " * 5_000])
def test_text_example_is_what_tensorflow_writes_and_reads(text):
    import tensorflow as tf

    record = text_example(text)
    reference = tf.train.Example()
    reference.features.feature["text"].bytes_list.value.append(text.encode("utf-8"))
    assert record == reference.SerializeToString()
    parsed = tf.io.parse_single_example(record, {"text": tf.io.FixedLenFeature([], tf.string)})
    assert parsed["text"].numpy().decode("utf-8") == text
