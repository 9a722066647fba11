"""Files written atomically: the one helper every stage and job uses (kcbert_tf.output_dir)."""

from __future__ import annotations

import pytest

from kcbert_tf.output_dir import atomic_file, write_text_atomically


def test_a_file_replaces_the_old_one_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "stats.json"
    write_text_atomically(str(target), "old")
    write_text_atomically(str(target), "새 내용")
    assert target.read_text(encoding="utf-8") == "새 내용"
    assert [path.name for path in target.parent.iterdir()] == ["stats.json"]


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.weights.h5"
    target.write_bytes(b"complete")
    with pytest.raises(RuntimeError):
        with atomic_file(str(target)) as handle:
            handle.write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"complete" and [p.name for p in tmp_path.iterdir()] == ["model.weights.h5"]


def test_remote_paths_go_through_tensorflow_s_file_system():
    """ram:// stands in for gs:// (both are TensorFlow file systems)."""
    import tensorflow as tf

    write_text_atomically("ram://atomic/one/state.json", "{}")
    write_text_atomically("ram://atomic/one/state.json", '{"steps": 2}')
    with tf.io.gfile.GFile("ram://atomic/one/state.json") as handle:
        assert handle.read() == '{"steps": 2}'
    assert tf.io.gfile.listdir("ram://atomic/one") == ["state.json"]
