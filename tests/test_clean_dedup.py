"""The Beam clean+dedup job: the transform with TestPipeline, the CLI end to end, bad input."""

from __future__ import annotations

import gzip
import json
import pathlib

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_helpers import read_text_records, reference_kept
from beam_jobs.clean_dedup import STATS_KEYS, CleanDedup, preprocess
from beam_jobs.pipeline_options import LOCAL_RUNNER
from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.text.cleaning import clean

LINES = [
    "ㅋㅋㅋㅋㅋㅋ 이 기사 진짜 웃기네요",  # kept, cleaned to ㅋㅋ
    "ㅋㅋㅋㅋ 이 기사 진짜 웃기네요",  # the same after cleaning: a duplicate
    "짧음",  # too short
    "漢字만",  # cleaned to "만": too short
    "https://news.example.com/a 링크는 빼고 남는 말만 봅시다",
    "좋아요 👍🏻 오늘 경기 최고였다",
    "좋아요 👍🏻 오늘 경기 최고였다",  # exact duplicate
    "",  # empty: too short
]


def write_corpus(path: pathlib.Path, extra: bytes = b"") -> list[bytes]:
    raw = [line.encode() for line in LINES]
    path.write_bytes(b"\n".join(raw) + b"\n" + extra)
    return raw


def test_transform_keeps_each_clean_comment_once_and_counts_everything(tmp_path):
    raw = write_corpus(tmp_path / "a.txt", extra=b"\xff\xfe broken bytes here\nnul \x00 inside line\n")
    expected = reference_kept(raw)
    assert len(expected) == 3
    with BeamTestPipeline(runner=LOCAL_RUNNER) as pipeline:
        out = pipeline | CleanDedup(str(tmp_path / "*.txt"), chunk_bytes=40, num_buckets=3)
        assert_that(out["comments"], equal_to(sorted(expected)), label="comments")
        assert_that(
            out["stats"],
            equal_to(
                [
                    {
                        "files": 1,
                        "lines_read": 10,
                        "undecodable": 1,
                        "nul_byte": 1,
                        "too_long": 0,
                        "malformed": 0,
                        "too_short": 3,
                        "duplicates_removed": 2,
                        "kept": 3,
                        "characters_kept": sum(map(len, expected)),
                    }
                ]
            ),
            label="stats",
        )
        assert_that(
            out["rejected"] | beam.Map(lambda r: (r["line"], r["reason"], r["raw"])),
            equal_to(
                [(9, "undecodable", "\\xff\\xfe broken bytes here"), (10, "nul_byte", "nul \x00 inside line")]
            ),
            label="rejected",
        )


def test_transform_reads_tsv_columns_from_many_files(tmp_path):
    (tmp_path / "one.tsv").write_text("id\tdocument\tlabel\n1\t배우들 연기가 정말 좋았어요\t1\n", encoding="utf-8")
    (tmp_path / "two.tsv").write_text("document\tid\n배우들 연기가 정말 좋았어요\t2\n스토리가 너무 지루해서 졸았음\t3\n", encoding="utf-8")
    with BeamTestPipeline(runner=LOCAL_RUNNER) as pipeline:
        out = pipeline | CleanDedup(str(tmp_path / "*.tsv"), "tsv:document")
        assert_that(out["comments"], equal_to(["배우들 연기가 정말 좋았어요", "스토리가 너무 지루해서 졸았음"]))


def test_python_call_keeps_what_a_plain_count_keeps(tmp_path, capsys):
    """``preprocess`` called from Python (no argv): its stats against clean() and the min-chars
    rule applied by hand, line by line."""
    source = tmp_path / "in.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    min_chars = 5
    with pytest.raises(UserError, match="^--min-chars must be >= 0, got -1$"):
        preprocess(str(source), str(out), min_chars=-1)
    assert not out.exists()  # refused before Beam starts

    stats = preprocess(str(source), str(out), min_chars=min_chars, num_shards=1)
    cleaned = [clean(line) for line in LINES]
    long_enough = [text for text in cleaned if len(text) >= min_chars]
    assert stats["lines_read"] == len(LINES)
    assert stats["too_short"] == len(LINES) - len(long_enough)
    assert stats["kept"] == len(set(long_enough))
    assert stats["duplicates_removed"] == len(long_enough) - len(set(long_enough))
    assert stats["characters_kept"] == sum(map(len, set(long_enough)))
    assert (stats["input"], stats["format"], stats["min_chars"]) == (str(source), "text", min_chars)
    assert sorted(read_text_records(out)) == sorted(set(long_enough))
    assert stats == json.loads((out / "stats.json").read_text())
    assert f"kept {len(set(long_enough)):,} of {len(LINES):,} lines" in capsys.readouterr().out


def run_cli(*args: str) -> int:
    return cli(["preprocess", *args])


def test_cli_end_to_end_writes_records_stats_and_rejected_lines(tmp_path, capsys):
    long_line = ("가" * 400_000).encode()  # 1.2 MB: over the 1 MB line limit
    raw = write_corpus(
        tmp_path / "in.txt",
        extra=b"\xed\xa0\x80 surrogate\r\n" + long_line + b"\n" + "윈도 줄바꿈도 잘 읽는지 봅시다\r\n".encode(),
    )
    gz_lines = ["압축 파일도 그대로 읽어야 합니다", "ㅋㅋㅋㅋㅋㅋ 이 기사 진짜 웃기네요"]
    (tmp_path / "in2.txt.gz").write_bytes(gzip.compress("\n".join(gz_lines).encode()))
    out = tmp_path / "out"
    assert run_cli("--input", str(tmp_path / "in*"), "--output", str(out), "--num-shards", "2") == 0

    expected = reference_kept(raw + ["윈도 줄바꿈도 잘 읽는지 봅시다".encode()] + [g.encode() for g in gz_lines])
    records = read_text_records(out)
    assert sorted(records) == sorted(expected)  # each kept comment exactly once
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [
        "comments-00000-of-00002.tfrecord",
        "comments-00001-of-00002.tfrecord",
    ]
    assert not list(out.glob("**/beam-temp*")) and not list(out.glob("**/*.tmp-*"))

    stats = json.loads((out / "stats.json").read_text())
    assert stats["files"] == 2 and stats["lines_read"] == len(LINES) + 3 + 2
    assert stats["undecodable"] == 1 and stats["too_long"] == 1 and stats["kept"] == len(expected)
    assert stats["characters_kept"] == sum(map(len, expected))
    assert stats["lines_read"] == sum(
        stats[key] for key in STATS_KEYS if key not in ("files", "lines_read", "characters_kept")
    )
    rejected = [
        json.loads(line)
        for path in sorted((out / "rejected").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert sorted((r["line"], r["reason"], r["bytes"]) for r in rejected) == [
        (len(LINES) + 1, "undecodable", len(b"\xed\xa0\x80 surrogate")),
        (len(LINES) + 2, "too_long", len(long_line)),
    ]
    assert all(r["file"].endswith("in.txt") for r in rejected)
    summary = capsys.readouterr().out
    assert "Beam counters" in summary and f"kept {len(expected):,} of" in summary


def test_missing_input_fails_before_beam_naming_the_path(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("--input", str(tmp_path / "nope-*.txt"), "--output", str(out)) == 2
    assert f"{tmp_path / 'nope-*.txt'}: no such file" in capsys.readouterr().err
    assert not out.exists()


def test_output_with_records_is_refused_unless_overwrite(tmp_path, capsys):
    write_corpus(tmp_path / "in.txt")
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "comments-00000-of-00009.tfrecord"
    stale.write_bytes(b"old records")
    assert run_cli("--input", str(tmp_path / "in.txt"), "--output", str(out)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert stale.read_bytes() == b"old records"  # nothing already written is lost

    assert run_cli("--input", str(tmp_path / "in.txt"), "--output", str(out), "--overwrite") == 0
    assert not stale.exists()  # replaced by the new, complete set
    assert sorted(read_text_records(out)) == sorted(reference_kept([l.encode() for l in LINES]))


def test_no_kept_comment_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "short.txt").write_text("ㅋㅋ\n헐\n\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli("--input", str(tmp_path / "short.txt"), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "no comment was kept (3 lines read)" in err and "--min-chars" in err
    assert not list(out.glob("*.tfrecord*"))


def test_unknown_tsv_column_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "a.tsv").write_text("id\tdocument\n1\t아주 재미있는 영화였다\n", encoding="utf-8")
    args = ["--input", str(tmp_path / "a.tsv"), "--output", str(tmp_path / "o"), "--format", "tsv:review"]
    assert run_cli(*args) == 2
    assert "a.tsv: the header has no column 'review' (it has ['id', 'document'])" in capsys.readouterr().err


def test_shared_comments_keep_exactly_the_reference_set(news_comments, tmp_path):
    out = tmp_path / "out"
    assert run_cli("--input", str(news_comments), "--output", str(out), "--chunk-mb", "0.5") == 0
    expected = reference_kept(news_comments.read_bytes().split(b"\n")[:-1])
    assert len(expected) == 18_108
    records = read_text_records(out)
    assert len(records) == len(expected) and set(records) == expected
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["lines_read"], stats["kept"]) == (24_000, 18_108)


@pytest.mark.slow
def test_multi_process_workers_import_the_job_from_the_installed_package(news_comments, tmp_path):
    out = tmp_path / "out"
    args = ["--direct_num_workers=2", "--direct_running_mode=multi_processing", "--chunk-mb", "0.5"]
    assert run_cli("--input", str(news_comments), "--output", str(out), *args) == 0
    assert len(read_text_records(out)) == 18_108
