"""Tokenize cleaned comments and pack them into fixed-length TFRecords: ``make-pretraining-data``.

The data flow (:class:`PretrainingData`)::

    match files → cut into chunks (a TFRecord file whole, a text file at line boundaries)
        → read, tokenize a batch at a time, assign each comment to a packing group (seeded hash)
        → group → pack each group best-fit decreasing (kcbert_tf.text.packing) → random sort keys
        → shard by key → each shard ordered by key, written as one file (+ stats)

The runner sees one element per chunk, per (chunk, group) and per (group, shard), never one per
comment or per sequence.  The output depends only on the input comments and the settings: the
same ``--seed`` (and settings) gives the same files, byte for byte, on any runner.
:func:`make_pretraining_data` is the Python call (it returns the stats); :func:`run` parses the
command's flags into it.

The command and the same job from Python::

    kcbert-tf make-pretraining-data --input cleaned/ --vocab vocab/ --output pretraining-128/

    from beam_jobs.pretraining_data import make_pretraining_data
    stats = make_pretraining_data("cleaned/", "vocab/", "pretraining-128/", max_seq_length=128)

The transform alone (a TestPipeline)::

    with TestPipeline() as p:
        outputs = p | PretrainingData("cleaned/*.tfrecord", vocab_tokens, max_seq_length=128)
        assert_that(outputs["stats"], ...)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import math
import os
import time
from typing import Iterator, NamedTuple, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from beam_jobs.job_files import (
    delete_stale_files,
    match_files,
    records_of_directory,
    refuse_occupied_output,
)
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
from kcbert_tf.output_dir import atomic_file, write_text_atomically
from kcbert_tf.text.comment_sources import (
    FileChunk,
    InputFormat,
    RejectedLine,
    open_source,
    read_chunk_lines,
    split_into_chunks,
)
from kcbert_tf.text.model_inputs import KCBERT_MAX_POSITIONS, check_sequence_length
from kcbert_tf.text.packing import MIN_PACKED_LENGTH, group_of, pack_comments, shuffle_keys
from kcbert_tf.text.records import (
    CorruptRecord,
    parse_text_example,
    is_tfrecord_path,
    read_tfrecord_frames,
    tfrecord_frame,
    token_ids_example,
)
from kcbert_tf.text.vocab import SPECIAL_TOKENS, read_vocab

__all__ = ["PretrainingData", "STATS_KEYS", "make_pretraining_data", "run"]

COUNTER_NAMESPACE = "pretraining_data"
_LOG = logging.getLogger(__name__)

#: The counts in ``stats.json`` (besides the ratios and settings).  ``comments`` are the
#: comments with at least one token; ``tokens`` their tokens (no [CLS]/[SEP]/[PAD]);
#: ``non_pad_tokens`` every id of every sequence that is not [PAD] ([CLS] and [SEP] included).
STATS_KEYS = (
    "files",
    "comments_read",
    "rejected_lines",
    "empty_comments",
    "comments",
    "tokens",
    "unk_tokens",
    "split_comments",
    "sequences",
    "non_pad_tokens",
)

#: The counts of :data:`STATS_KEYS` that the tokenizing step reports.
TOKENIZE_COUNTS = STATS_KEYS[1:7]

RECORDS_PREFIX = "pretraining"
RECORDS_SUFFIX = ".tfrecord"
STATS_FILE = "stats.json"
#: The vocab the ids come from, copied beside the records.
VOCAB_FILE = "vocab.txt"

#: Automatic sizes: a packing group per this much input (about 100,000 comments: enough for a
#: fill above 99%, little enough for one worker), an output file per this much input.
GROUP_INPUT_BYTES = 16 << 20
SHARD_INPUT_BYTES = 64 << 20


class TokenBatch(NamedTuple):
    """Tokenized comments, compactly: every id in one array, and each comment's length."""

    ids: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, comments: Sequence[Sequence[int]]) -> "TokenBatch":
        lengths = np.fromiter(map(len, comments), dtype=np.int32, count=len(comments))
        ids = np.fromiter(
            (i for ids in comments for i in ids), dtype=np.int32, count=int(lengths.sum())
        )
        return cls(ids, lengths)

    def comments(self) -> list[list[int]]:
        flat, ends = self.ids.tolist(), np.cumsum(self.lengths).tolist()
        return [flat[end - length : end] for end, length in zip(ends, self.lengths.tolist())]


class SplitInput(beam.DoFn):
    """A matched file → chunks: a TFRecord file whole, a text file in line-aligned pieces."""

    def __init__(self, chunk_bytes: int):
        super().__init__()
        self._chunk_bytes = chunk_bytes

    def process(self, metadata) -> Iterator:
        path = metadata.path
        if is_tfrecord_path(path):
            yield FileChunk(path, 0, -1, 1)
        else:
            with open_source(path) as fileobj:
                yield from split_into_chunks(path, fileobj, InputFormat("text"), self._chunk_bytes)
        yield report_counts(COUNTER_NAMESPACE, {"files": 1})


class TokenizeChunk(beam.DoFn):
    """A chunk → ``(group, TokenBatch)`` pairs: its comments tokenized, by packing group.

    The tokenizer is built once per ``DoFn`` instance (``setup``) from the vocab shipped inside
    the ``DoFn``, so workers need no access to the launcher's files.  A corrupt TFRecord file
    gives a ``corrupt`` output (the file and the problem) instead of its remaining records.
    """

    def __init__(
        self,
        vocab_tokens: Sequence[str],
        seed: int,
        num_groups: int,
        batch_size: int = 2048,
        flush_tokens: int = 1 << 21,
    ):
        super().__init__()
        self._vocab_tokens = list(vocab_tokens)
        self._seed = seed
        self._num_groups = num_groups
        self._batch_size = batch_size
        self._flush_tokens = flush_tokens
        self._tokenizer = None

    def setup(self):
        from kcbert_tf.text.tokenizer import KcBertWordPiece  # Imports TensorFlow, on the worker.

        self._tokenizer = KcBertWordPiece(self._vocab_tokens)

    def _texts(self, chunk: FileChunk, counts: dict) -> Iterator[str]:
        with open_source(chunk.path) as fileobj:
            if is_tfrecord_path(chunk.path):
                for record in read_tfrecord_frames(fileobj, chunk.path):
                    try:
                        text = parse_text_example(record)
                    except Exception as error:  # Not an Example, no ``text``, not UTF-8.
                        raise CorruptRecord(
                            f"{chunk.path}: record {counts['comments_read'] + 1} is not a "
                            f"preprocess record ({type(error).__name__}: {error})"
                        ) from None
                    counts["comments_read"] += 1
                    yield text
                return
            text_format = InputFormat("text")
            for line in read_chunk_lines(fileobj, chunk):
                counts["comments_read"] += 1
                try:
                    yield text_format.comment_from_line(line)
                except RejectedLine:
                    counts["rejected_lines"] += 1

    def process(self, chunk: FileChunk) -> Iterator:
        tokenizer, num_groups = self._tokenizer, self._num_groups
        counts = dict.fromkeys(TOKENIZE_COUNTS, 0)
        groups: dict[int, list[list[int]]] = {}
        pending_tokens = 0

        def tokenize(texts: list[str]) -> None:
            nonlocal pending_tokens
            for text, ids in zip(texts, tokenizer.encode(texts)):
                if not ids:
                    counts["empty_comments"] += 1
                    continue
                counts["comments"] += 1
                counts["tokens"] += len(ids)
                counts["unk_tokens"] += ids.count(tokenizer.unk_id)
                pending_tokens += len(ids)
                groups.setdefault(group_of(text, self._seed, num_groups), []).append(ids)

        def flush() -> Iterator:
            nonlocal pending_tokens
            for group in sorted(groups):
                yield group, TokenBatch.of(groups[group])
            groups.clear()
            pending_tokens = 0

        batch: list[str] = []
        try:
            for text in self._texts(chunk, counts):
                batch.append(text)
                if len(batch) == self._batch_size:
                    tokenize(batch)
                    batch = []
                    if pending_tokens >= self._flush_tokens:
                        yield from flush()
            tokenize(batch)
        except CorruptRecord as error:
            yield beam.pvalue.TaggedOutput("corrupt", {"file": chunk.path, "problem": str(error)})
        yield from flush()
        _LOG.info(
            "%s%s: %d comments, %d tokens",
            chunk.path,
            "" if is_tfrecord_path(chunk.path) else f", from line {chunk.first_line}",
            counts["comments"],
            counts["tokens"],
        )
        yield report_counts(COUNTER_NAMESPACE, counts)


class PackGroup(beam.DoFn):
    """A group's comments → packed sequences, given random sort keys, split by output shard.

    Outputs ``(shard, (keys, sequences))`` for each shard this group has sequences for.
    """

    def __init__(self, max_seq_length: int, seed: int, num_shards: int, special_ids: dict):
        super().__init__()
        self._max_seq_length = max_seq_length
        self._seed = seed
        self._num_shards = num_shards
        self._special_ids = special_ids

    def process(self, group_batches) -> Iterator:
        group, batches = group_batches
        started = time.perf_counter()
        comments = [ids for batch in batches for ids in batch.comments()]
        packed = pack_comments(
            comments,
            self._max_seq_length,
            cls_id=self._special_ids["cls"],
            sep_id=self._special_ids["sep"],
            pad_id=self._special_ids["pad"],
            seed=self._seed,
            stream=(group,),
        )
        sequences = packed.sequences
        keys = shuffle_keys(len(sequences), self._seed, group)
        shards = keys % self._num_shards
        for shard in np.unique(shards).tolist():
            chosen = shards == shard
            yield shard, (keys[chosen], sequences[chosen])
        _LOG.info(
            "group %d: %d comments -> %d sequences in %.1f s",
            group,
            len(comments),
            len(sequences),
            time.perf_counter() - started,
        )
        yield report_counts(
            COUNTER_NAMESPACE,
            {
                "split_comments": packed.split_comments,
                "sequences": len(sequences),
                "non_pad_tokens": int((sequences != self._special_ids["pad"]).sum()),
            },
        )


class PretrainingData(beam.PTransform):
    """Cleaned-comment files → ``{"sequences", "stats", "corrupt"}``.

    ``sequences``: ``(shard, (keys, sequences))`` pairs, the packed int32 sequences of
    ``max_seq_length`` ids with their random sort keys, by output shard (``key % num_shards``).
    ``stats``: one dict with the counts of :data:`STATS_KEYS`.
    ``corrupt``: a dict (``file``, ``problem``) per TFRecord file that could not be read to its end.
    """

    def __init__(
        self,
        file_pattern: str,
        vocab_tokens: Sequence[str],
        max_seq_length: int = 128,
        seed: int = 0,
        num_groups: int = 1,
        num_shards: int = 1,
        chunk_bytes: int = 8 << 20,
    ):
        super().__init__()
        self._file_pattern = file_pattern
        self._vocab_tokens = list(vocab_tokens)
        self._special_ids = special_token_ids(self._vocab_tokens)
        self._max_seq_length = max_seq_length
        self._seed = seed
        self._num_groups = num_groups
        self._num_shards = num_shards
        self._chunk_bytes = chunk_bytes

    def expand(self, pbegin):
        split = (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._file_pattern)
            | "SplitIntoChunks"
            >> beam.ParDo(SplitInput(self._chunk_bytes)).with_outputs("stats", main="chunks")
        )
        tokenized = (
            split.chunks
            | "SpreadChunks" >> beam.Reshuffle()
            | "Tokenize"
            >> beam.ParDo(
                TokenizeChunk(self._vocab_tokens, self._seed, self._num_groups)
            ).with_outputs("corrupt", "stats", main="groups")
        )
        packed = (
            tokenized.groups
            | "GroupComments" >> beam.GroupByKey()
            | "Pack"
            >> beam.ParDo(
                PackGroup(self._max_seq_length, self._seed, self._num_shards, self._special_ids)
            ).with_outputs("stats", main="sequences")
        )
        stats = (split.stats, tokenized.stats, packed.stats) | "Stats" >> TotalStats(STATS_KEYS)
        return {"sequences": packed.sequences, "stats": stats, "corrupt": tokenized.corrupt}


def special_token_ids(vocab_tokens: Sequence[str]) -> dict[str, int]:
    """The ids of ``[PAD] [UNK] [CLS] [SEP] [MASK]`` as ``pad, unk, cls, sep, mask``."""
    return {token.strip("[]").lower(): vocab_tokens.index(token) for token in SPECIAL_TOKENS}


def shard_name(output: str, shard: int, num_shards: int) -> str:
    """The path of output file ``shard`` of ``num_shards``."""
    name = f"{RECORDS_PREFIX}-{shard:05d}-of-{num_shards:05d}{RECORDS_SUFFIX}"
    return FileSystems.join(output, name)


class WriteShard(beam.DoFn):
    """A shard's sequences (from every group) → one TFRecord file, in sort-key order.

    Written under a temporary name and renamed when complete; an empty shard is an empty file, so
    the set ``-of-N`` is always whole.  Yields ``(path, number of records)``.
    """

    def __init__(self, output: str, num_shards: int):
        super().__init__()
        self._output = output
        self._num_shards = num_shards

    def process(self, shard_parts) -> Iterator[tuple[str, int]]:
        shard, parts = shard_parts
        parts = [part for part in parts if part is not None]
        if parts:
            keys = np.concatenate([keys for keys, _ in parts])
            sequences = np.concatenate([sequences for _, sequences in parts])
            sequences = sequences[np.argsort(keys, kind="stable")]
        else:
            sequences = np.zeros((0, 0), dtype=np.int32)
        path = shard_name(self._output, shard, self._num_shards)
        with atomic_file(path) as handle:
            for row in sequences.tolist():
                handle.write(tfrecord_frame(token_ids_example(row)))
        yield path, len(sequences)


def full_stats(settings: dict, counts: dict, record_files: list, corrupt: list) -> dict:
    """``stats.json``: counts, ``fill_ratio`` and ``unk_rate``, settings, files, corrupt files.

    ``record_files`` are ``(path, records)`` pairs; ``record_counts`` (file name → records) is the
    index that lets ``pretrain`` resume by arithmetic instead of re-reading the data.
    """
    positions = counts["sequences"] * settings["max_seq_length"]
    return {
        **counts,
        "fill_ratio": counts["non_pad_tokens"] / positions if positions else 0.0,
        "unk_rate": counts["unk_tokens"] / counts["tokens"] if counts["tokens"] else 0.0,
        **settings,
        "record_files": sorted(path for path, _ in record_files),
        "record_counts": {
            path.replace("\\", "/").rsplit("/", 1)[-1]: count for path, count in sorted(record_files)
        },
        "corrupt_files": sorted(corrupt, key=lambda entry: entry["file"]),
    }


def build_pipeline(pipeline: beam.Pipeline, job: CheckedJob) -> None:
    """Add the whole job to ``pipeline``: PretrainingData, then the shard files and stats."""
    outputs = pipeline | "PretrainingData" >> PretrainingData(
        job.input,
        job.vocab_tokens,
        max_seq_length=job.max_seq_length,
        seed=job.seed,
        num_groups=job.pack_groups,
        num_shards=job.num_shards,
        chunk_bytes=job.chunk_bytes,
    )
    every_shard = pipeline | "AllShards" >> beam.Create([(s, None) for s in range(job.num_shards)])
    record_files = (
        (outputs["sequences"], every_shard)
        | "FlattenShards" >> beam.Flatten()
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(job.output, job.num_shards))
    )
    settings = {
        "input": job.input,
        "vocab": job.vocab,
        "max_seq_length": job.max_seq_length,
        "seed": job.seed,
        "pack_groups": job.pack_groups,
        "num_shards": job.num_shards,
    }
    _ = outputs["stats"] | "WriteStats" >> beam.ParDo(
        WriteStatsFile(
            FileSystems.join(job.output, STATS_FILE), functools.partial(full_stats, settings)
        ),
        beam.pvalue.AsList(record_files),
        beam.pvalue.AsList(outputs["corrupt"]),
    )


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf make-pretraining-data",
        description=(
            "Tokenize cleaned comments (the TFRecords of `kcbert-tf preprocess`, or text files, a "
            "comment a line) with a WordPiece vocab.txt and pack them into TFRecords of "
            "max-seq-length ids: [CLS] comment [SEP] comment [SEP] ... [PAD]. Any other option is "
            "a Beam pipeline option (--runner DataflowRunner --project ... --region ... "
            "--temp_location gs://...)."
        ),
    )
    parser.add_argument(
        "--input",
        required=True,
        help="a preprocess output directory, or a file or glob (*.tfrecord* as records, else text)",
    )
    parser.add_argument("--vocab", required=True, help="vocab.txt, or a directory holding one")
    parser.add_argument("--output", required=True, help="directory for the records and stats.json")
    parser.add_argument(
        "--max-seq-length",
        type=int,
        default=128,
        help=f"ids a sequence, [CLS] and [SEP]s included ({MIN_PACKED_LENGTH}-{KCBERT_MAX_POSITIONS}, 128)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the grouping, packing and shuffle"
    )
    parser.add_argument(
        "--num-shards",
        type=int,
        default=0,
        help=f"record files to write (default: one per {SHARD_INPUT_BYTES >> 20} MB of input)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace records already in --output"
    )
    parser.add_argument(
        "--pack-groups",
        type=int,
        default=0,
        help=f"pack in this many groups (default: one per {GROUP_INPUT_BYTES >> 20} MB of input)",
    )
    parser.add_argument(
        "--chunk-mb", type=float, default=8, help="split text input files into chunks of this size"
    )
    return parser


def _directory_of(path: str) -> str:
    """The directory of a file path, absolute for local paths (to compare two of them)."""
    if "://" in path:
        return path.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(path))


@dataclasses.dataclass(frozen=True)
class CheckedJob:
    """A job checked before Beam starts: the input pattern (a preprocess directory resolved to its
    records) and its size, the vocab, where it writes, and how it packs (automatic sizes filled
    in)."""

    input: str
    input_bytes: int
    vocab: str
    vocab_tokens: tuple[str, ...]
    output: str
    max_seq_length: int
    seed: int
    pack_groups: int
    num_shards: int
    chunk_bytes: int


def automatic_sizes(input_bytes: int, pack_groups: int = 0, num_shards: int = 0) -> tuple[int, int]:
    """``(pack_groups, num_shards)`` with each 0 (automatic) filled in: one group per
    :data:`GROUP_INPUT_BYTES` and one shard per :data:`SHARD_INPUT_BYTES` of input.

    >>> automatic_sizes(100 << 20), automatic_sizes(100 << 20, pack_groups=3, num_shards=5)
    ((7, 2), (3, 5))
    >>> automatic_sizes(0)
    (1, 1)
    """
    return (
        pack_groups or max(1, math.ceil(input_bytes / GROUP_INPUT_BYTES)),
        num_shards or max(1, math.ceil(input_bytes / SHARD_INPUT_BYTES)),
    )


def summarize(stats: dict, counters: dict[str, int]) -> str:
    """The console summary: the Beam counters and the headline numbers of ``stats.json``."""
    return "\n".join(
        [
            format_counters(COUNTER_NAMESPACE, STATS_KEYS, counters),
            f"packed {stats['comments']:,} comments ({stats['tokens']:,} tokens, "
            f"{stats['split_comments']:,} split) into {stats['sequences']:,} sequences of "
            f"{stats['max_seq_length']}: fill {stats['fill_ratio']:.2%}, [UNK] "
            f"{stats['unk_rate']:.3%}, {len(stats['record_files'])} record file(s)",
        ]
    )


def make_pretraining_data(
    input: str,
    vocab: str,
    output: str,
    *,
    max_seq_length: int = 128,
    seed: int = 0,
    num_shards: int = 0,
    pack_groups: int = 0,
    chunk_mb: float = 8.0,
    overwrite: bool = False,
    pipeline_args: Sequence[str] = (),
) -> dict:
    """Tokenize the cleaned comments of ``input`` with the WordPiece ``vocab`` and pack them into
    TFRecords of ``max_seq_length`` ids under ``output``; return the stats (also in
    ``OUTPUT/stats.json``).

    ``input``: the output directory of :func:`beam_jobs.clean_dedup.preprocess`, or a file or
    glob (``*.tfrecord*`` as its records, anything else as text, a comment a line); ``vocab``: a
    ``vocab.txt`` or a directory holding one (copied to ``OUTPUT/vocab.txt``).  ``seed`` picks the
    grouping, packing and shuffle; ``pack_groups`` and ``num_shards`` 0 are sized from the input;
    text files are read in chunks of ``chunk_mb`` MB.  ``overwrite`` replaces records already in
    ``output``.  ``pipeline_args`` are Beam's options (``--runner DataflowRunner``, ...).  Raises
    :class:`UserError` on a bad setting, vocab, input or output (before Beam starts), and when the
    input holds no comment or a corrupt file.
    """
    check_sequence_length(
        max_seq_length, KCBERT_MAX_POSITIONS, source="KcBERT", at_least=MIN_PACKED_LENGTH
    )
    for flag, value in (
        ("--seed", seed),
        ("--num-shards", num_shards),
        ("--pack-groups", pack_groups),
    ):
        if value < 0:
            raise UserError(f"{flag} must be >= 0, got {value}")
    if chunk_mb <= 0:
        raise UserError(f"--chunk-mb must be > 0, got {chunk_mb}")
    pattern = records_of_directory(input, RECORDS_SUFFIX)  # preprocess's output directory
    try:
        inputs = match_files(pattern)
    except Exception as error:  # A filesystem the runner cannot reach, a bad scheme, ...
        raise UserError(f"--input {pattern}: cannot list it ({error})") from None
    inputs = [metadata for metadata in inputs if not os.path.isdir(metadata.path)]
    if not inputs:
        raise UserError(
            f"--input {pattern}: no such file (pass the output directory of `kcbert-tf "
            "preprocess`, or check the path or glob)"
        )
    kinds = {is_tfrecord_path(metadata.path): metadata.path for metadata in inputs}
    if len(kinds) == 2:
        raise UserError(
            f"--input {pattern} matches TFRecord files and other files such as {kinds[False]}; "
            f"pass only the records (DIR/*{RECORDS_SUFFIX}) or only text files"
        )
    output_dir = _directory_of(FileSystems.join(output, "x"))
    if any(_directory_of(metadata.path) == output_dir for metadata in inputs):
        raise UserError(
            f"--output {output} holds the input files; write the pretraining records to "
            "another directory"
        )
    refuse_occupied_output(output, f"*{RECORDS_SUFFIX}*", overwrite)
    vocab_tokens = read_vocab(vocab)
    input_bytes = sum(metadata.size_in_bytes for metadata in inputs)
    pack_groups, num_shards = automatic_sizes(input_bytes, pack_groups, num_shards)
    job = CheckedJob(pattern, input_bytes, vocab, tuple(vocab_tokens), output, max_seq_length, seed, pack_groups,
                     num_shards, chunk_bytes=max(1, int(chunk_mb * (1 << 20))))
    options = job_pipeline_options(pipeline_args, job.input_bytes)
    _LOG.info(
        "make-pretraining-data: %s (%.1f MB) -> %s, %d ids a sequence, %d group(s), %d shard(s)",
        job.input,
        job.input_bytes / 1e6,
        job.output,
        job.max_seq_length,
        job.pack_groups,
        job.num_shards,
    )
    stats_path = FileSystems.join(job.output, STATS_FILE)
    stats, counters = run_job(
        options, lambda pipeline: build_pipeline(pipeline, job), stats_path, COUNTER_NAMESPACE
    )
    print(summarize(stats, counters), flush=True)
    if stats["corrupt_files"] or not stats["comments"]:
        FileSystems.delete(stats["record_files"])
        if stats["corrupt_files"]:
            first = stats["corrupt_files"][0]["problem"]
            raise UserError(
                f"--input {job.input}: {len(stats['corrupt_files'])} file(s) cannot be read to "
                f"the end, e.g. {first}; re-create them with `kcbert-tf preprocess` or leave them "
                f"out (all are listed in {stats_path}); no records were kept"
            )
        raise UserError(
            f"--input {job.input}: no comment found ({stats['comments_read']:,} read, "
            f"{stats['empty_comments']:,} empty, {stats['rejected_lines']:,} undecodable); pass "
            f"the cleaned comments of `kcbert-tf preprocess`; see {stats_path}"
        )
    # The records' ids mean something only with their vocab: keep it beside them for `pretrain`.
    write_text_atomically(
        FileSystems.join(job.output, VOCAB_FILE),
        "".join(token + "\n" for token in job.vocab_tokens),
    )
    if overwrite:  # Only now, with the new files complete, drop the old ones.
        delete_stale_files(job.output, (f"*{RECORDS_SUFFIX}*",), stats["record_files"])
    return stats


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf make-pretraining-data``: the flags (the rest are Beam's options) parsed into one
    :func:`make_pretraining_data` call; return the stats."""
    return call_with_flags(make_pretraining_data, build_arg_parser(), argv, pipeline_args=True)


if __name__ == "__main__":
    run()
