"""Clean, filter and deduplicate raw comments into TFRecords: ``kcbert-tf preprocess``.

The data flow (:class:`CleanDedup`)::

    match files → cut into line-aligned chunks → read, decode, clean, keep if ≥ min-chars
        → exact dedup on the cleaned text → cleaned comments (+ rejected lines, + stats)

Work is done a chunk of lines at a time inside the ``DoFn`` s and duplicates are dropped in hash
buckets, so the per-element cost of the runner is paid per chunk and per bucket, not per line.
:func:`preprocess` writes the comments as ``tf.train.Example`` records (one bytes feature
``text``), the rejected lines as JSON lines under ``rejected/`` and ``stats.json``, and returns
the stats; :func:`run` parses the command's flags into that one call.

The command and the same job from Python::

    kcbert-tf preprocess --input 'comments/*.txt' --output cleaned/ --min-chars 10

    from beam_jobs.clean_dedup import preprocess
    stats = preprocess("comments/*.txt", "cleaned/", min_chars=10)  # stats["kept"], ...

The transform alone (a TestPipeline)::

    with TestPipeline() as p:
        outputs = p | CleanDedup("comments/*.txt")
        assert_that(outputs["comments"], equal_to([...]))
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import logging
import zlib
from typing import Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs.comment_files import ChunkFiles, match_input_files, rejected_line
from beam_jobs.job_files import delete_stale_files, refuse_occupied_output
from beam_jobs.job_reporting import (
    TotalStats,
    WriteStatsFile,
    format_counters,
    report_counts,
    run_job,
)
from beam_jobs.pipeline_options import job_pipeline_options
from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.text.cleaning import MIN_CHARS, clean
from kcbert_tf.text.comment_sources import (
    REJECT_REASONS,
    FileChunk,
    InputFormat,
    RejectedLine,
    open_source,
    read_chunk_lines,
)
from kcbert_tf.text.records import text_example

__all__ = ["CleanDedup", "STATS_KEYS", "preprocess", "run"]

COUNTER_NAMESPACE = "clean_dedup"
_LOG = logging.getLogger(__name__)


def _report_counts(counts: dict[str, int]):
    return report_counts(COUNTER_NAMESPACE, counts)

#: The counts in ``stats.json``; ``lines_read`` is the sum of every other count but ``files`` and
#: ``characters_kept``: each line is either rejected, too short, a duplicate or kept.
STATS_KEYS = (
    "files",
    "lines_read",
    *REJECT_REASONS,
    "too_short",
    "duplicates_removed",
    "kept",
    "characters_kept",
)

RECORDS_PREFIX = "comments"
RECORDS_SUFFIX = ".tfrecord"
REJECTED_DIR = "rejected"
STATS_FILE = "stats.json"


class CleanChunk(beam.DoFn):
    """A chunk → its kept cleaned comments, deduplicated and grouped into hash buckets.

    Outputs ``(bucket, [texts])`` pairs, the ``rejected`` lines as dicts and the ``stats``.
    """

    def __init__(self, fmt: InputFormat, min_chars: int, num_buckets: int):
        super().__init__()
        self._fmt = fmt
        self._min_chars = min_chars
        self._num_buckets = num_buckets

    def process(self, chunk: FileChunk) -> Iterator:
        fmt, min_chars, column_index = self._fmt, self._min_chars, chunk.column_index
        counts = collections.Counter()
        kept: set[str] = set()
        candidates = lines_read = 0
        with open_source(chunk.path) as fileobj:
            for lines_read, line in enumerate(read_chunk_lines(fileobj, chunk), start=1):
                try:
                    text = clean(fmt.comment_from_line(line, column_index))
                except RejectedLine as rejected:
                    counts[rejected.reason] += 1
                    yield beam.pvalue.TaggedOutput(
                        "rejected", rejected_line(chunk.path, chunk.first_line + lines_read - 1, line, rejected)
                    )
                    continue
                if len(text) < min_chars:
                    counts["too_short"] += 1
                    continue
                candidates += 1
                kept.add(text)
        counts["lines_read"] = lines_read
        counts["duplicates_removed"] = candidates - len(kept)
        buckets = collections.defaultdict(list)
        for text in kept:
            buckets[zlib.crc32(text.encode("utf-8")) % self._num_buckets].append(text)
        yield from buckets.items()
        _LOG.info(
            "%s, lines %d-%d: %d kept, %d rejected",
            chunk.path,
            chunk.first_line,
            chunk.first_line + lines_read - 1,
            len(kept),
            sum(counts[reason] for reason in REJECT_REASONS),
        )
        yield _report_counts(counts)


class DropDuplicates(beam.DoFn):
    """A bucket with the texts of every chunk → each distinct text once, plus ``stats``."""

    def process(self, bucket_texts) -> Iterator:
        _, lists = bucket_texts
        seen: set[str] = set()
        total = 0
        for texts in lists:
            total += len(texts)
            seen.update(texts)
        yield from seen
        yield _report_counts(
            {
                "duplicates_removed": total - len(seen),
                "kept": len(seen),
                "characters_kept": sum(map(len, seen)),
            }
        )


class CleanDedup(beam.PTransform):
    """Raw comment files → ``{"comments", "rejected", "stats"}``.

    ``comments``: each distinct cleaned comment of at least ``min_chars`` characters, once.
    ``rejected``: a dict per line that gave no comment (file, line, reason, raw bytes escaped).
    ``stats``: one dict with the counts of :data:`STATS_KEYS`.
    """

    def __init__(
        self,
        file_pattern: str,
        input_format: InputFormat | str = "text",
        min_chars: int = MIN_CHARS,
        chunk_bytes: int = 8 << 20,
        num_buckets: int = 256,
    ):
        super().__init__()
        self._file_pattern = file_pattern
        self._fmt = (
            input_format
            if isinstance(input_format, InputFormat)
            else InputFormat.parse(input_format)
        )
        self._min_chars = min_chars
        self._chunk_bytes = chunk_bytes
        self._num_buckets = num_buckets

    def expand(self, pbegin):
        chunks = pbegin | "ChunkFiles" >> ChunkFiles(
            self._file_pattern, self._fmt, self._chunk_bytes, COUNTER_NAMESPACE
        )
        cleaned = (
            chunks["chunks"]
            | "CleanAndFilter"
            >> beam.ParDo(CleanChunk(self._fmt, self._min_chars, self._num_buckets)).with_outputs(
                "rejected", "stats", main="buckets"
            )
        )
        unique = (
            cleaned.buckets
            | "GroupBuckets" >> beam.GroupByKey()
            | "DropDuplicates" >> beam.ParDo(DropDuplicates()).with_outputs("stats", main="comments")
        )
        stats = (chunks["stats"], cleaned.stats, unique.stats) | "Stats" >> TotalStats(STATS_KEYS)
        return {"comments": unique.comments, "rejected": cleaned.rejected, "stats": stats}


def job_stats(settings: dict, counts: dict, record_files: list, rejected_files: list) -> dict:
    """``stats.json``: the counts, the job's settings and the files written."""
    return {
        **counts,
        **settings,
        "record_files": sorted(record_files),
        "rejected_files": sorted(rejected_files),
    }


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf preprocess",
        description=(
            "Clean, filter (>= --min-chars) and deduplicate raw comments into TFRecords of "
            "cleaned text, with stats.json and rejected lines. Any other option is a Beam "
            "pipeline option (--runner DataflowRunner --project ... --region ... "
            "--temp_location gs://...)."
        ),
    )
    parser.add_argument("--input", required=True, help="file, glob or gs:// path of raw comments")
    parser.add_argument("--output", required=True, help="directory for the records and stats.json")
    parser.add_argument(
        "--format",
        default="text",
        help="text (a comment a line), tsv:COLUMN, csv:COLUMN (header row) or jsonl:FIELD",
    )
    parser.add_argument(
        "--min-chars",
        type=int,
        default=MIN_CHARS,
        help=f"keep cleaned comments of at least this many characters (default {MIN_CHARS})",
    )
    parser.add_argument(
        "--num-shards", type=int, default=0, help="record files to write (default: runner decides)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace records already in --output"
    )
    parser.add_argument(
        "--chunk-mb", type=float, default=8, help="split input files into chunks of this size"
    )
    parser.add_argument(
        "--dedup-buckets", type=int, default=256, help="hash buckets the dedup is spread over"
    )
    return parser


@dataclasses.dataclass(frozen=True)
class CheckedJob:
    """A job checked before Beam starts: what it reads, in which format, what it keeps and where
    it writes."""

    input: str
    fmt: InputFormat
    input_bytes: int
    output: str
    min_chars: int
    num_shards: int
    chunk_bytes: int
    num_buckets: int


def build_pipeline(pipeline: beam.Pipeline, job: CheckedJob) -> None:
    """Add the whole job to ``pipeline``: CleanDedup, then the records, rejected lines and stats."""
    outputs = pipeline | "CleanDedup" >> CleanDedup(
        job.input,
        job.fmt,
        min_chars=job.min_chars,
        chunk_bytes=job.chunk_bytes,
        num_buckets=job.num_buckets,
    )
    record_files = (
        outputs["comments"]
        | "ToExamples" >> beam.Map(text_example)
        | "WriteRecords"
        >> beam.io.WriteToTFRecord(
            FileSystems.join(job.output, RECORDS_PREFIX),
            file_name_suffix=RECORDS_SUFFIX,
            num_shards=job.num_shards,
        )
    )
    rejected_files = (
        outputs["rejected"]
        | "RejectedToJson" >> beam.Map(json.dumps, ensure_ascii=False)
        | "WriteRejected"
        >> beam.io.WriteToText(
            FileSystems.join(job.output, REJECTED_DIR, "rejected"), file_name_suffix=".jsonl"
        )
    )
    settings = {"input": job.input, "format": str(job.fmt), "min_chars": job.min_chars}
    _ = outputs["stats"] | "WriteStats" >> beam.ParDo(
        WriteStatsFile(
            FileSystems.join(job.output, STATS_FILE), functools.partial(job_stats, settings)
        ),
        beam.pvalue.AsList(record_files),
        beam.pvalue.AsList(rejected_files),
    )


def summarize(stats: dict, counters: dict[str, int]) -> str:
    """The console summary: the Beam counters and the stats that ``stats.json`` holds."""
    lines = [format_counters(COUNTER_NAMESPACE, STATS_KEYS, counters)]
    lines.append(
        f"kept {stats['kept']:,} of {stats['lines_read']:,} lines "
        f"({stats['kept'] / max(1, stats['lines_read']):.1%}) in {len(stats['record_files'])} "
        f"record file(s); {sum(stats[r] for r in REJECT_REASONS):,} rejected line(s)"
    )
    return "\n".join(lines)


def preprocess(
    input: str,
    output: str,
    *,
    format: str = "text",
    min_chars: int = MIN_CHARS,
    num_shards: int = 0,
    chunk_mb: float = 8.0,
    dedup_buckets: int = 256,
    overwrite: bool = False,
    pipeline_args: Sequence[str] = (),
) -> dict:
    """Clean, filter and deduplicate the comments of ``input`` (a file, glob or ``gs://`` path)
    into TFRecords under ``output``; return the stats (also in ``OUTPUT/stats.json``).

    ``format`` is ``text`` (a comment a line), ``tsv:COLUMN``, ``csv:COLUMN`` or ``jsonl:FIELD``;
    a cleaned comment is kept if it has at least ``min_chars`` characters, once.  ``num_shards``
    record files (0: the runner decides); input files are read in chunks of ``chunk_mb`` MB and
    deduplicated in ``dedup_buckets`` hash buckets.  ``overwrite`` replaces records already in
    ``output``.  ``pipeline_args`` are Beam's options (``--runner DataflowRunner``, ...).
    Raises :class:`UserError` on a bad setting, input or output (before Beam starts) and when no
    comment is kept.
    """
    try:
        fmt = InputFormat.parse(format)
    except ValueError as error:
        raise UserError(f"--format: {error}") from None
    if min_chars < 0:
        raise UserError(f"--min-chars must be >= 0, got {min_chars}")
    inputs = match_input_files(input, fmt)
    refuse_occupied_output(output, f"*{RECORDS_SUFFIX}*", overwrite)
    job = CheckedJob(
        input=input,
        fmt=fmt,
        input_bytes=sum(metadata.size_in_bytes for metadata in inputs),
        output=output,
        min_chars=min_chars,
        num_shards=num_shards,
        chunk_bytes=max(1, int(chunk_mb * (1 << 20))),
        num_buckets=dedup_buckets,
    )
    options = job_pipeline_options(pipeline_args, job.input_bytes)
    all_options = options.get_all_options()
    _LOG.info(
        "preprocess: %s (%s, %.1f MB) -> %s on %s (%s)",
        job.input,
        job.fmt,
        job.input_bytes / 1e6,
        job.output,
        all_options["runner"].rsplit(".", 1)[-1],
        all_options["direct_running_mode"] if "." in all_options["runner"] else "remote",
    )
    stats, counters = run_job(
        options,
        lambda pipeline: build_pipeline(pipeline, job),
        FileSystems.join(job.output, STATS_FILE),
        COUNTER_NAMESPACE,
    )
    if overwrite:  # Only now, with the new files complete, drop the old ones.
        delete_stale_files(
            job.output,
            (f"*{RECORDS_SUFFIX}*", f"{REJECTED_DIR}/*"),
            stats["record_files"] + stats["rejected_files"],
        )
    print(summarize(stats, counters), flush=True)
    if not stats["kept"]:
        FileSystems.delete(stats["record_files"])
        raise UserError(
            f"--input {job.input}: no comment was kept ({stats['lines_read']:,} lines read); "
            f"check --format (now {job.fmt}) and --min-chars (now {job.min_chars}); "
            f"see {FileSystems.join(job.output, STATS_FILE)} and {REJECTED_DIR}/"
        )
    return stats


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf preprocess``: the flags (the rest are Beam's options) parsed into one
    :func:`preprocess` call; return the stats."""
    return call_with_flags(preprocess, build_arg_parser(), argv, pipeline_args=True)


if __name__ == "__main__":
    run()
