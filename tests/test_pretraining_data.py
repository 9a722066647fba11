"""The Beam job make-pretraining-data: record format, the transform, the CLI end to end, bad input.

Token ids are checked against transformers' ``AutoTokenizer`` (loaded from a directory with the
vocab and ``tokenizer_config.json``), the records are read back by TensorFlow, and the packing is
checked by rebuilding the comments from the sequences (``test_packing.assert_every_token_once``).
"""

from __future__ import annotations

import collections
import json
import pathlib

import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from beam_helpers import reference_kept
from beam_jobs.pipeline_options import LOCAL_RUNNER
from beam_jobs.pretraining_data import STATS_KEYS, PretrainingData, make_pretraining_data
from conftest import reference_tokenizer
from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.text.records import (
    CorruptRecord,
    read_tfrecord_frames,
    tfrecord_frame,
    token_ids_example,
)
from test_packing import assert_every_token_once

PAD, UNK, CLS, SEP = 0, 1, 2, 3
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

COMMENTS = [
    "오늘 경기 진짜 최고였다 ㅋㅋ",
    "이 기사 제목 좀 바꿔 주세요!!",
    "좋아요 👍 누르고 갑니다",
    "배우들 연기가 정말 좋았어요. 또 보고 싶네요",
    "기자님 취재 고맙습니다",
    "ㅋㅋ 웃기다 진짜 ㅋㅋ 댓글 보러 왔음",
    "이런 뉴스는 좀 더 자세히 써 주면 좋겠습니다 " * 3,  # longer than one sequence of 16
    "왜 이렇게 댓글이 많지? 다들 한마디씩 하네",
    "漢字 섞인 댓글도 있다",  # 漢字: each ideograph its own word
    "최고 최고 최고 최고 최고 최고 최고 최고 최고 최고 최고 최고 최고 최고 최고 최고",
]


def tiny_vocab() -> list[str]:
    """A vocab of the specials, every character of COMMENTS and its ## form, and a few words:
    enough for real WordPiece work (whole words, continuations) and some [UNK] (the emoji)."""
    chars = sorted(
        {char for text in COMMENTS for char in text if not char.isspace()} - {"👍", "字"}
    )
    return SPECIALS + ["최고", "댓글", "##았어요", "진짜"] + chars + ["##" + char for char in chars]


def reference_ids(
    vocab_file: pathlib.Path, texts: list[str], directory: pathlib.Path
) -> list[list[int]]:
    """transformers' ids for ``texts`` with ``vocab_file`` (no special tokens added)."""
    return reference_tokenizer(vocab_file, directory)(texts, add_special_tokens=False)["input_ids"]


def write_comment_records(path: pathlib.Path, texts: list[str]) -> None:
    """Cleaned-comment records the way TensorFlow writes them (not with kcbert_tf.text.records)."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for text in texts:
            example = tf.train.Example()
            example.features.feature["text"].bytes_list.value.append(text.encode("utf-8"))
            writer.write(example.SerializeToString())


def read_sequences(directory: pathlib.Path, max_seq_length: int) -> np.ndarray:
    """Every ``token_ids`` of every record file in ``directory``, parsed by tf.data."""
    import tensorflow as tf

    files = sorted(str(path) for path in directory.glob("*.tfrecord"))
    spec = {"token_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64)}
    dataset = tf.data.TFRecordDataset(files).map(
        lambda r: tf.io.parse_single_example(r, spec)["token_ids"]
    )
    rows = list(dataset.as_numpy_iterator())
    return np.stack(rows) if rows else np.zeros((0, max_seq_length), np.int64)


def pieces(ids: list[int], max_seq_length: int) -> int:
    """How many [SEP]-ended pieces a comment becomes: ceil(len / (max_seq_length - 2))."""
    return -(-len(ids) // (max_seq_length - 2))


@pytest.fixture()
def tiny(tmp_path):
    """A tiny vocab.txt, records of COMMENTS in two files, and transformers' ids for them."""
    vocab = tmp_path / "vocab" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("".join(token + "\n" for token in tiny_vocab()), encoding="utf-8")
    cleaned = tmp_path / "cleaned"
    cleaned.mkdir()
    write_comment_records(cleaned / "comments-00000-of-00002.tfrecord", COMMENTS[:6])
    write_comment_records(cleaned / "comments-00001-of-00002.tfrecord", COMMENTS[6:])
    ids = reference_ids(vocab, COMMENTS, tmp_path / "hf")
    return vocab, cleaned, ids


# --- the record format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids", [[], [0], [2, 3, 0, 0], list(range(300)), [29_999, 127, 128, 16_384, 70_000, 2**40, -1]]
)
def test_token_ids_example_is_what_tensorflow_writes_and_reads(ids):
    import tensorflow as tf

    record = token_ids_example(ids)
    reference = tf.train.Example()
    reference.features.feature["token_ids"].int64_list.value.extend(ids)
    assert record == reference.SerializeToString()
    assert token_ids_example(np.array(ids, dtype=np.int64)) == record
    parsed = tf.io.parse_single_example(
        record, {"token_ids": tf.io.FixedLenFeature([len(ids)], tf.int64)}
    )
    assert parsed["token_ids"].numpy().tolist() == ids


def test_tfrecord_framing_matches_tensorflow_both_ways(tmp_path):
    import tensorflow as tf

    records = [b"", b"a", "댓글".encode() * 1000, token_ids_example([2, 5, 3])]
    written_by_tf = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(written_by_tf)) as writer:
        for record in records:
            writer.write(record)
    assert b"".join(map(tfrecord_frame, records)) == written_by_tf.read_bytes()
    with open(written_by_tf, "rb") as handle:
        assert list(read_tfrecord_frames(handle)) == records


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_tfrecord_streams_are_reported_with_file_and_offset(tmp_path, damage):
    data = tfrecord_frame(b"first") + tfrecord_frame(b"second record")
    data = data[:-3] if damage == "truncate" else data[:30] + bytes([data[30] ^ 1]) + data[31:]
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(data)
    with (
        open(path, "rb") as handle,
        pytest.raises(CorruptRecord, match=r"bad.tfrecord: .* at byte 21"),
    ):
        list(read_tfrecord_frames(handle, str(path)))


# --- the transform -------------------------------------------------------------------------------


def test_transform_packs_every_comment_once_and_counts_everything(tiny):
    vocab, cleaned, ids = tiny
    max_seq_length = 16
    assert any(len(i) + 2 > max_seq_length for i in ids) and any(UNK in i for i in ids)
    tokens = sum(map(len, ids))

    def check_sequences(batches):
        sequences = np.concatenate([s for _, (_, s) in batches])
        try:
            assert_every_token_once(ids, sequences, max_seq_length)
        except AssertionError as error:
            raise BeamAssertException(str(error)) from None
        if not all(shard in (0, 1, 2) for shard, _ in batches):
            raise BeamAssertException(f"shards outside 0..2: {[s for s, _ in batches]}")

    def check_stats(stats):
        [counts] = stats
        expected = {
            "files": 2,
            "comments_read": len(COMMENTS),
            "rejected_lines": 0,
            "empty_comments": 0,
            "comments": len(COMMENTS),
            "tokens": tokens,
            "unk_tokens": sum(i.count(UNK) for i in ids),
            "split_comments": sum(len(i) + 2 > max_seq_length for i in ids),
        }
        sequences = counts["sequences"]
        # Every non-[PAD] id: comment tokens, a [SEP] per piece, a [CLS] per sequence.
        expected["non_pad_tokens"] = (
            tokens + sum(pieces(i, max_seq_length) for i in ids) + sequences
        )
        expected["sequences"] = sequences
        if counts != expected or list(counts) != list(STATS_KEYS):
            raise BeamAssertException(f"{counts} != {expected}")
        if not expected["non_pad_tokens"] / (sequences * max_seq_length) >= 0.9:
            raise BeamAssertException(f"{sequences} sequences are too many")

    tokens_list = vocab.read_text(encoding="utf-8").splitlines()
    with BeamTestPipeline(runner=LOCAL_RUNNER) as pipeline:
        out = pipeline | PretrainingData(
            str(cleaned / "*.tfrecord"),
            tokens_list,
            max_seq_length,
            seed=3,
            num_groups=2,
            num_shards=3,
        )
        assert_that(out["sequences"], check_sequences, label="sequences")
        assert_that(out["stats"], check_stats, label="stats")
        assert_that(
            out["corrupt"], lambda corrupt: corrupt == [] or _fail(corrupt), label="corrupt"
        )


def _fail(value):
    raise BeamAssertException(f"unexpected: {value}")


# --- the command, end to end ---------------------------------------------------------------------


def make_data(*args: str) -> int:
    return cli(["make-pretraining-data", *args])


def test_cli_is_deterministic_for_a_seed_and_reads_the_preprocess_directory(tiny, tmp_path, capsys):
    vocab, cleaned, ids = tiny
    common = ["--input", str(cleaned), "--vocab", str(vocab.parent), "--max-seq-length", "16"]
    common += ["--num-shards", "3", "--pack-groups", "2"]
    assert make_data(*common, "--output", str(tmp_path / "a")) == 0
    assert "Beam counters (pretraining_data)" in capsys.readouterr().out
    assert make_data(*common, "--output", str(tmp_path / "b")) == 0
    assert make_data(*common, "--output", str(tmp_path / "c"), "--seed", "1") == 0
    names = [f"pretraining-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "a").glob("*.tfrecord")) == names
    assert not list((tmp_path / "a").glob("*.tmp-*"))
    same = [(tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names]
    assert all(same), "the same seed must give the same files"
    first, other = read_sequences(tmp_path / "a", 16), read_sequences(tmp_path / "c", 16)
    assert not np.array_equal(first, other)
    assert_every_token_once(ids, first, 16)
    assert_every_token_once(ids, other, 16)
    stats = json.loads((tmp_path / "a" / "stats.json").read_text())
    assert stats["sequences"] == len(first) and stats["record_files"] == [
        str(tmp_path / "a" / n) for n in names
    ]
    assert stats["fill_ratio"] == pytest.approx((first != PAD).sum() / first.size)


def test_cli_reads_text_files_a_comment_a_line(tiny, tmp_path):
    vocab, _, ids = tiny
    (tmp_path / "comments.txt").write_text(
        "\n".join(COMMENTS[:5] + ["   "] + COMMENTS[5:]) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    assert (
        make_data(
            "--input",
            str(tmp_path / "comments.txt"),
            "--vocab",
            str(vocab),
            "--output",
            str(out),
            "--max-seq-length",
            "16",
        )
        == 0
    )
    assert_every_token_once(ids, read_sequences(out, 16), 16)
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["comments_read"], stats["empty_comments"], stats["comments"]) == (
        len(COMMENTS) + 1,
        1,
        len(COMMENTS),
    )


def test_python_call_packs_exactly_the_ids_of_the_tokenizer(tiny, tmp_path):
    """``make_pretraining_data`` called from Python (no argv): the sequences hold exactly the ids
    that ``KcBertWordPiece`` gives each comment, and the automatic sizes of a tiny input are 1."""
    from kcbert_tf.text.tokenizer import KcBertWordPiece

    vocab, cleaned, reference = tiny
    out = tmp_path / "out"
    with pytest.raises(UserError, match="^--pack-groups must be >= 0, got -1$"):
        make_pretraining_data(str(cleaned), str(vocab), str(out), pack_groups=-1)
    assert not out.exists()  # refused before Beam starts

    stats = make_pretraining_data(
        str(cleaned), str(vocab.parent), str(out), max_seq_length=16, seed=4
    )
    tokens = vocab.read_text(encoding="utf-8").splitlines()
    ids = KcBertWordPiece(tokens).encode(COMMENTS)
    assert ids == reference  # the tokenizer the job uses agrees with transformers here
    sequences = read_sequences(out, 16)
    assert_every_token_once(ids, sequences, 16)
    assert (stats["comments"], stats["tokens"], stats["sequences"]) == (
        len(COMMENTS),
        sum(map(len, ids)),
        len(sequences),
    )
    assert stats["unk_tokens"] == sum(i.count(UNK) for i in ids)
    settings = ("max_seq_length", "seed", "pack_groups", "num_shards")
    assert [stats[key] for key in settings] == [16, 4, 1, 1]
    assert stats["input"] == str(cleaned / "*.tfrecord*") and stats["vocab"] == str(vocab.parent)
    assert [p.name for p in out.glob("*.tfrecord")] == ["pretraining-00000-of-00001.tfrecord"]
    assert (out / "vocab.txt").read_text(encoding="utf-8").splitlines() == tokens
    assert stats == json.loads((out / "stats.json").read_text())


def test_output_with_records_is_refused_unless_overwrite(tiny, tmp_path, capsys):
    vocab, cleaned, ids = tiny
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "pretraining-00000-of-00009.tfrecord"
    stale.write_bytes(b"old records")
    args = [
        "--input",
        str(cleaned),
        "--vocab",
        str(vocab),
        "--output",
        str(out),
        "--max-seq-length",
        "16",
    ]
    assert make_data(*args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert stale.read_bytes() == b"old records"
    assert make_data(*args, "--overwrite") == 0
    assert not stale.exists()
    assert_every_token_once(ids, read_sequences(out, 16), 16)


@pytest.fixture()
def bad_inputs(tiny, tmp_path):
    vocab, cleaned, _ = tiny
    wrong_vocab = tmp_path / "wrong_vocab.txt"
    wrong_vocab.write_text("[UNK]\n[PAD]\n[CLS]\n[SEP]\n[MASK]\n가\n", encoding="utf-8")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n", encoding="utf-8")
    corrupt = tmp_path / "corrupt" / "comments-00000-of-00001.tfrecord"
    corrupt.parent.mkdir()
    write_comment_records(corrupt, COMMENTS)
    corrupt.write_bytes(corrupt.read_bytes()[:-10])
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "pretraining-00000-of-00001.tfrecord").write_bytes(b"")
    return {
        "vocab": str(vocab),
        "cleaned": str(cleaned),
        "wrong_vocab": str(wrong_vocab),
        "blank": str(blank),
        "corrupt": str(corrupt.parent),
        "corrupt_file": str(corrupt),
        "occupied": str(occupied),
        "tmp": str(tmp_path),
    }


BAD_INPUTS = {  # case: (flags that replace the good ones (None: a switch), message)
    "vocab missing": (
        {"--vocab": "{tmp}/nope/vocab.txt"},
        "{tmp}/nope/vocab.txt: no such vocab file",
    ),
    "vocab without the specials at 0-4": (
        {"--vocab": "{wrong_vocab}"},
        "{wrong_vocab}: the first tokens are",
    ),
    "max-seq-length over 300": ({"--max-seq-length": "301"}, "--max-seq-length 301 is more than max_position_embeddings 300"),
    "max-seq-length under 8": ({"--max-seq-length": "7"}, "--max-seq-length 7 leaves no room for text: it needs at least 8"),
    "input matching nothing": (
        {"--input": "{tmp}/nothing-*.tfrecord"},
        "{tmp}/nothing-*.tfrecord: no such file",
    ),
    "output holding records": (
        {"--output": "{occupied}"},
        "--output {occupied} already holds 1 record file(s)",
    ),
    "output holding the input": (
        {"--output": "{cleaned}", "--overwrite": None},
        "holds the input files",
    ),
    "input without a comment": ({"--input": "{blank}"}, "no comment found (3 read, 3 empty"),
    "corrupt input": ({"--input": "{corrupt}"}, "{corrupt_file}: truncated record"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_clear_error_with_exit_code_2(case, bad_inputs, tmp_path, capsys):
    overrides, message = BAD_INPUTS[case]
    out = tmp_path / "out"
    flags = {"--input": "{cleaned}", "--vocab": "{vocab}", "--output": str(out), **overrides}
    argv = [
        part.format(**bad_inputs) for flag, value in flags.items() for part in (flag, value) if part
    ]
    assert make_data(*argv) == 2
    errors = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("kcbert-tf make-pretraining-data: error: ")
    ]
    assert len(errors) == 1 and message.format(**bad_inputs) in errors[0]
    assert not list(out.glob("*.tfrecord*"))


# --- the shared real comments with the real vocab ------------------------------------------------


@pytest.fixture(scope="module")
def shared_cleaned(news_comments, kcbert_vocab, tmp_path_factory):
    """The shared comments cleaned, filtered and deduplicated the plain way (``reference_kept``),
    as preprocess-style records in two files, and transformers' ids for them with KcBERT's vocab."""
    vocab = kcbert_vocab
    texts = sorted(reference_kept(news_comments.read_bytes().split(b"\n")[:-1]))
    assert len(texts) == 18_108
    cleaned = tmp_path_factory.mktemp("shared") / "cleaned"
    cleaned.mkdir()
    write_comment_records(cleaned / "comments-00000-of-00002.tfrecord", texts[::2])
    write_comment_records(cleaned / "comments-00001-of-00002.tfrecord", texts[1::2])
    return vocab, cleaned, reference_ids(vocab, texts, tmp_path_factory.mktemp("hf"))


def check_shared_run(shared_cleaned, out: pathlib.Path, max_seq_length: int) -> dict:
    _, _, ids = shared_cleaned
    sequences = read_sequences(out, max_seq_length)
    stats = json.loads((out / "stats.json").read_text())
    # Every token of every comment once: as a multiset, and comment by comment.
    expected_tokens = collections.Counter(token for i in ids for token in i)
    got = collections.Counter(sequences.ravel().tolist())
    got.subtract(
        {PAD: got[PAD], CLS: len(sequences), SEP: sum(pieces(i, max_seq_length) for i in ids)}
    )
    assert +got == expected_tokens and not -got
    assert_every_token_once(ids, sequences, max_seq_length)
    fill = float((sequences != PAD).sum() / sequences.size)
    assert fill >= 0.97
    assert stats["fill_ratio"] == pytest.approx(fill, abs=1e-12)
    tokens = sum(map(len, ids))
    assert stats["comments"] == stats["comments_read"] == len(ids)
    assert stats["tokens"] == tokens and stats["sequences"] == len(sequences)
    assert stats["unk_rate"] == pytest.approx(sum(i.count(UNK) for i in ids) / tokens)
    assert stats["split_comments"] == sum(len(i) + 2 > max_seq_length for i in ids)
    assert stats["max_seq_length"] == max_seq_length
    assert sorted(stats["record_files"]) == sorted(str(p) for p in out.glob("*.tfrecord"))
    return stats


def test_shared_comments_at_128_with_the_real_vocab(shared_cleaned, tmp_path):
    vocab, cleaned, _ = shared_cleaned
    out = tmp_path / "out"
    assert (
        make_data(
            "--input",
            str(cleaned),
            "--vocab",
            str(vocab),
            "--output",
            str(out),
            "--num-shards",
            "3",
        )
        == 0
    )
    stats = check_shared_run(shared_cleaned, out, 128)
    assert stats["split_comments"] > 0 and len(stats["record_files"]) == 3
    # The vocab travels with the records, byte for byte, for `pretrain`.
    assert (out / "vocab.txt").read_bytes() == pathlib.Path(vocab).read_bytes()


def test_shared_comments_at_300_in_several_groups(shared_cleaned, tmp_path):
    vocab, cleaned, _ = shared_cleaned
    out = tmp_path / "out"
    args = ["--max-seq-length", "300", "--pack-groups", "4", "--seed", "5"]
    assert (
        make_data(
            "--input",
            str(cleaned / "*.tfrecord"),
            "--vocab",
            str(vocab),
            "--output",
            str(out),
            *args,
        )
        == 0
    )
    check_shared_run(shared_cleaned, out, 300)


@pytest.mark.slow
def test_multi_process_workers_write_the_same_files_as_one_process(tiny, tmp_path):
    """Worker processes import every DoFn from the installed package and load the tokenizer from
    the vocab shipped inside the DoFn; the files are byte for byte those of an in-process run."""
    vocab, cleaned, _ = tiny
    args = ["--input", str(cleaned), "--vocab", str(vocab), "--max-seq-length", "16"]
    args += ["--num-shards", "2", "--pack-groups", "2"]
    workers = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert make_data(*args, "--output", str(tmp_path / "one")) == 0
    assert make_data(*args, "--output", str(tmp_path / "many"), *workers) == 0
    for one in sorted((tmp_path / "one").glob("*.tfrecord")):
        assert one.read_bytes() == (tmp_path / "many" / one.name).read_bytes()
