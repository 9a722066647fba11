"""Helpers for the Beam job tests: read back TFRecords with TensorFlow, a plain-Python reference."""

from __future__ import annotations

import pathlib

from kcbert_tf.text.cleaning import clean


def read_text_records(directory: pathlib.Path) -> list[str]:
    """Every ``text`` feature of every ``*.tfrecord*`` file in ``directory``, parsed by TensorFlow."""
    import tensorflow as tf

    files = sorted(str(path) for path in directory.glob("*.tfrecord*"))
    spec = {"text": tf.io.FixedLenFeature([], tf.string)}
    return [
        tf.io.parse_single_example(record, spec)["text"].numpy().decode("utf-8")
        for record in tf.data.TFRecordDataset(files)
    ]


def reference_kept(lines: list[bytes], min_chars: int = 10) -> set[str]:
    """The kept set, computed the plain way: decode, clean, length filter, set."""
    kept = set()
    for line in lines:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            continue
        text = clean(text)
        if len(text) >= min_chars:
            kept.add(text)
    return kept
