"""Label or filter a whole corpus with a comment classifier: ``kcbert-tf batch-predict``.

The data flow (:class:`BatchPredict`)::

    match files → cut into line-aligned chunks → read and decode each line
        → sort each chunk's comments by length into groups
        → RunInference (the classifier SavedModel: each group sorted by ids into batches; the
          model's own preprocessor cleans, tokenizes and packs, then it classifies, in the graph)
        → predictions (+ rejected lines, + the kept comments of a filter, + stats)

The input is read as ``preprocess`` reads it (:mod:`beam_jobs.comment_files`): text, TSV/CSV and
JSONL lines, gz/bz2/xz, any Beam filesystem; or ``--format records``, the TFRecords that
``preprocess`` writes (a record's number in its file stands for the line).  Each chunk of about
``--chunk-mb`` is sorted by characters into groups of 16 batches; Beam's ``RunInference`` loads
the SavedModel once per worker process and hands it each group
(:class:`~beam_jobs.classifier_handler.ClassifierHandler`), which sorts the group by ids and runs
it ``--batch-size`` comments at a time, each batch padded only to its longest comment: the
batching of ``kcbert-tf predict``.  A LiteRT directory (``export-litert``) is served as it is by
:class:`~beam_jobs.litert_handler.LiteRtClassifierHandler` instead: the same batching, workers
with ``kcbert-tf[litert]`` and no TensorFlow.  A line whose comment is empty once prepared (the
model's preprocessor says so) gets a prediction with no label.

:func:`run` writes, under ``--output``: ``predictions-*.jsonl`` (or ``.tfrecord``), one per input
line that gave a comment, ``rejected/`` (lines that could not be read, with file and line),
``stats.json`` (every line counted once, and the count of each predicted label) and, with
``--keep-labels`` or ``--drop-labels``, ``kept/comments-*.tfrecord``: the kept comments as
``preprocess`` records, which ``make-pretraining-data --input OUTPUT/kept`` reads.  A model
directory (``finetune``, ``import-hf``) is exported to ``OUTPUT/model/`` first.  :func:`batch_predict`
is the Python call; :func:`run` parses the command's flags into it.

Example (a TestPipeline, a SavedModel ``sm`` of a classifier)::

    with TestPipeline() as p:
        outputs = p | BatchPredict("reviews.tsv", "tsv:document", "sm", labels=["0", "1"])
        assert_that(outputs["predictions"] | beam.Map(lambda p: p.label), equal_to(["1", "0"]))
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference

from beam_jobs.classifier_handler import ClassifierHandler, Comment, Prediction, read_export_info
from beam_jobs.litert_handler import LiteRtClassifierHandler, is_litert_model
from beam_jobs.comment_files import ChunkFiles, match_input_files, rejected_line
from beam_jobs.job_files import delete_stale_files, records_of_directory, refuse_occupied_output
from beam_jobs.job_reporting import TotalStats, WriteStatsFile, format_counters, report_counts, run_job
from beam_jobs.pipeline_options import job_pipeline_options
from kcbert_tf.command_calls import call_with_flags
from kcbert_tf.errors import UserError
from kcbert_tf.text.comment_sources import (
    REJECT_REASONS,
    FileChunk,
    InputFormat,
    RejectedLine,
    open_source,
    read_chunk_lines,
)
from kcbert_tf.text.records import (
    CorruptRecord,
    is_tfrecord_path,
    parse_text_example,
    prediction_example,
    read_tfrecord_frames,
    text_example,
)

__all__ = ["BatchPredict", "KeepRule", "STATS_KEYS", "batch_predict", "run"]

COUNTER_NAMESPACE = "batch_predict"
_LOG = logging.getLogger(__name__)

#: ``--format`` for the TFRecords of ``preprocess`` (a ``text`` feature a record).
RECORDS_FORMAT = "records"

#: The counts of ``stats.json`` (besides one per label): each line read is rejected, empty or
#: predicted; a predicted one, under a filter, is kept or dropped.  ``ids`` are the ids the
#: comments pack to, ``padded_ids`` what their batches computed (padding included).
STATS_KEYS = (
    "files",
    "lines_read",
    *REJECT_REASONS,
    "empty",
    "predicted",
    "kept",
    "dropped",
    "ids",
    "padded_ids",
)
LABEL_PREFIX = "label:"

#: Batches a group that the model handler sorts by ids (predict sorts chunks of 8,192 rows; a
#: group is smaller, so that a chunk spreads over several calls and memory stays low).
BATCHES_A_GROUP = 16

PREDICTIONS_PREFIX = "predictions"
KEPT_DIR = "kept"
KEPT_PREFIX = "comments"
RECORDS_SUFFIX = ".tfrecord"
REJECTED_DIR = "rejected"
MODEL_DIR = "model"
STATS_FILE = "stats.json"
OUTPUT_FORMATS = ("jsonl", "tfrecord")


# --- The filter ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KeepRule:
    """Which labelled comments a filter keeps.

    ``keep``: keep a comment whose predicted label is one of these, with a probability of at
    least ``min_probability``.  ``drop``: keep every comment but those whose predicted label is
    one of these with a probability of at least ``min_probability`` (an unsure "hate" stays).
    A comment with no label (empty) is never kept.

    >>> rule = KeepRule(keep=("none",), min_probability=0.6)
    >>> rule.keeps("none", 0.7), rule.keeps("none", 0.5), rule.keeps("hate", 0.9)
    (True, False, False)
    >>> KeepRule(drop=("hate",), min_probability=0.6).keeps("hate", 0.5)
    True
    """

    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    min_probability: float = 0.0

    def keeps(self, label: str | None, probability: float) -> bool:
        if label is None:
            return False
        if self.keep:
            return label in self.keep and probability >= self.min_probability
        return not (label in self.drop and probability >= self.min_probability)

    def keeps_prediction(self, prediction: Prediction, labels: Sequence[str]) -> bool:
        if prediction.label is None:
            return False
        return self.keeps(prediction.label, prediction.probabilities[labels.index(prediction.label)])


# --- The steps ----------------------------------------------------------------------------------


class ReadCommentGroups(beam.DoFn):
    """A chunk → its comments sorted by length in groups of ``group_size`` (lists of
    :class:`Comment`: the handler sorts a group by ids and batches it), plus ``rejected`` lines
    (dicts) and ``stats``."""

    def __init__(self, fmt: InputFormat | None, group_size: int):
        super().__init__()
        self._fmt = fmt  # None: preprocess's TFRecords
        self._group_size = group_size

    def _lines(self, chunk: FileChunk) -> Iterator:
        """``(line number, text or RejectedLine, raw bytes)`` for each line (record) of the chunk."""
        with open_source(chunk.path) as fileobj:
            if self._fmt is None:
                number = 0
                try:
                    for number, record in enumerate(read_tfrecord_frames(fileobj, chunk.path), start=1):
                        try:
                            yield number, parse_text_example(record), record
                        except Exception as error:  # not an Example with one text feature
                            yield number, RejectedLine("malformed", f"not a preprocess record: {error}"), record
                except CorruptRecord as error:  # the rest of the file cannot be framed
                    yield number + 1, RejectedLine("malformed", str(error)), b""
                return
            for index, line in enumerate(read_chunk_lines(fileobj, chunk)):
                try:
                    yield chunk.first_line + index, self._fmt.comment_from_line(line, chunk.column_index), line
                except RejectedLine as rejected:
                    yield chunk.first_line + index, rejected, line

    def process(self, chunk: FileChunk) -> Iterator:
        counts = collections.Counter()
        comments = []
        for number, text, raw in self._lines(chunk):
            counts["lines_read"] += 1
            if isinstance(text, RejectedLine):
                counts[text.reason] += 1
                yield beam.pvalue.TaggedOutput("rejected", rejected_line(chunk.path, number, raw, text))
                continue
            comments.append(Comment(chunk.path, number, text))
        comments.sort(key=lambda comment: len(comment.text))  # neighbours in a group
        _LOG.info("%s from line %d: %d comments to label, %d rejected", chunk.path, chunk.first_line,
                  len(comments), sum(counts[reason] for reason in REJECT_REASONS))
        for start in range(0, len(comments), self._group_size):
            yield comments[start : start + self._group_size]
        yield report_counts(COUNTER_NAMESPACE, counts)


class CountPredictions(beam.DoFn):
    """Pass predictions on, counting them (and each label, and kept / dropped under a filter)
    in ``stats``; with a rule, the kept ones also go to ``kept``."""

    def __init__(self, labels: Sequence[str] | None, rule: KeepRule | None):
        super().__init__()
        self._labels = None if labels is None else list(labels)
        self._rule = rule

    def process(self, prediction: Prediction) -> Iterator:
        yield prediction
        if not prediction.prepared:  # empty once prepared for the model: no label
            yield report_counts(COUNTER_NAMESPACE, {"empty": 1})
            return
        counts = {"predicted": 1, "ids": prediction.num_ids, "padded_ids": prediction.padded_ids}
        if prediction.label is not None:
            counts[LABEL_PREFIX + prediction.label] = 1
        if self._rule is not None:
            if self._rule.keeps_prediction(prediction, self._labels):
                counts["kept"] = 1
                yield beam.pvalue.TaggedOutput("kept", prediction.prepared)
            else:
                counts["dropped"] = 1
        yield report_counts(COUNTER_NAMESPACE, counts)


def prediction_json(prediction: Prediction, labels: Sequence[str] | None) -> str:
    """A prediction as one JSON line: file, line, text, and the label with each class's
    probability (``null`` for an empty comment), or the score of a regressor."""
    comment = prediction.comment
    values = {"file": comment.file, "line": comment.line, "text": comment.text}
    if labels is None:
        values["score"] = prediction.score
    else:
        values["label"] = prediction.label
        values["probabilities"] = (
            None if prediction.probabilities is None else dict(zip(labels, prediction.probabilities))
        )
    return json.dumps(values, ensure_ascii=False)


def prediction_record(prediction: Prediction) -> bytes:
    """A prediction as a ``tf.train.Example`` (:func:`~kcbert_tf.text.records.prediction_example`)."""
    comment = prediction.comment
    return prediction_example(comment.file, comment.line, comment.text, prediction.label,
                              prediction.probabilities, prediction.score)


class BatchPredict(beam.PTransform):
    """Comment files → ``{"predictions", "kept", "rejected", "stats"}``.

    ``predictions``: a :class:`Prediction` per line that gave a comment (label None where the
    prepared comment is empty).  ``kept``: the prepared text of each comment ``rule`` keeps
    (empty without a rule).  ``rejected``: a dict per unreadable line (file, line, reason, raw
    bytes escaped).  ``stats``: one dict with the counts of :data:`STATS_KEYS` and one
    ``label:NAME`` count per label.  ``input_format`` is a line format or ``"records"``;
    ``saved_model`` a classifier SavedModel (its own preprocessor prepares each comment) or a
    LiteRT directory (``export-litert``: workers need no TensorFlow), ``labels`` its labels (None:
    a regressor).
    """

    def __init__(
        self,
        file_pattern: str,
        input_format: InputFormat | str,
        saved_model: str,
        labels: Sequence[str] | None,
        *,
        rule: KeepRule | None = None,
        batch_size: int = 64,
        chunk_bytes: int = 1 << 20,
        env_vars: dict[str, str] | None = None,
    ):
        super().__init__()
        self._file_pattern = file_pattern
        if isinstance(input_format, str):
            input_format = None if input_format == RECORDS_FORMAT else InputFormat.parse(input_format)
        self._fmt = input_format
        self._saved_model = saved_model
        self._labels = None if labels is None else list(labels)
        self._rule = rule
        self._batch_size = batch_size
        self._chunk_bytes = chunk_bytes
        self._env_vars = env_vars

    def expand(self, pbegin):
        chunks = pbegin | "ChunkFiles" >> ChunkFiles(self._file_pattern, self._fmt, self._chunk_bytes, COUNTER_NAMESPACE)
        read = (
            chunks["chunks"]
            | "ReadAndGroup"
            >> beam.ParDo(
                ReadCommentGroups(self._fmt, self._batch_size * BATCHES_A_GROUP)
            ).with_outputs("rejected", "stats", main="groups")
        )
        handler_type = LiteRtClassifierHandler if is_litert_model(self._saved_model) else ClassifierHandler
        handler = handler_type(self._saved_model, self._labels, batch_size=self._batch_size, env_vars=self._env_vars)
        predicted = read.groups | "Classify" >> RunInference(handler.with_no_batching())
        counted = (
            predicted
            | "Count" >> beam.ParDo(CountPredictions(self._labels, self._rule)).with_outputs(
                "kept", "stats", main="predictions"
            )
        )
        keys = STATS_KEYS + tuple(LABEL_PREFIX + label for label in self._labels or ())
        stats = (chunks["stats"], read.stats, counted.stats) | "Stats" >> TotalStats(keys)
        return {"predictions": counted.predictions, "kept": counted.kept, "rejected": read.rejected, "stats": stats}


# --- The command --------------------------------------------------------------------------------


def job_stats(settings: dict, counts: dict, *written: list) -> dict:
    """``stats.json``: the counts (labels grouped), the job's settings and the files written."""
    labels = {key[len(LABEL_PREFIX):]: value for key, value in counts.items() if key.startswith(LABEL_PREFIX)}
    stats = {key: value for key, value in counts.items() if not key.startswith(LABEL_PREFIX)}
    if settings.get("filter") is None:
        del stats["kept"], stats["dropped"]
    names = ("prediction_files", "kept_files", "rejected_files")
    return {**stats, "labels": labels, **settings, **{name: sorted(files) for name, files in zip(names, written)}}


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcbert-tf batch-predict",
        description=(
            "Label every comment of a corpus with a classifier (Beam RunInference over its SavedModel), "
            "and optionally keep only the comments whose label passes a filter, as preprocess records. "
            "Any other option is a Beam pipeline option (--runner DataflowRunner --project ... "
            "--region ... --temp_location gs://... --extra_package dist/kcbert_tf-*.tar.gz)."
        ),
    )
    parser.add_argument("--model", required=True,
                        help="a classifier SavedModel (export-savedmodel) or model directory (finetune, import-hf); "
                        "a directory is exported to OUTPUT/model/ first")
    parser.add_argument("--input", required=True, help="file, glob or gs:// path of comments")
    parser.add_argument("--output", required=True, help="directory for the predictions, stats.json, rejected/ and kept/")
    parser.add_argument("--format", default="text",
                        help="text (a comment a line), tsv:COLUMN, csv:COLUMN (header row), jsonl:FIELD, or records "
                        "(the TFRecords of `kcbert-tf preprocess`)")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, default="jsonl",
                        help="predictions as JSON lines (default) or tf.train.Example TFRecords")
    parser.add_argument("--keep-labels", default=None, help="keep the comments predicted as one of these labels (a,b)")
    parser.add_argument("--drop-labels", default=None, help="keep every comment but those predicted as one of these")
    parser.add_argument("--min-probability", type=float, default=0.0,
                        help="a label counts for --keep-labels / --drop-labels from this probability on (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="comments a batch, sorted by length (64)")
    parser.add_argument("--chunk-mb", type=float, default=1,
                        help="cut text input files into chunks of this size; each is sorted by length (1)")
    parser.add_argument("--num-shards", type=int, default=0, help="prediction files to write (default: runner decides)")
    parser.add_argument("--overwrite", action="store_true", help="replace predictions already in --output")
    return parser


@dataclasses.dataclass(frozen=True)
class Classifier:
    """What the job needs to know of its classifier: the SavedModel, its labels (None: a
    regressor) and its kind."""

    saved_model: str
    labels: list | None
    kind: str


@dataclasses.dataclass(frozen=True)
class CheckedJob:
    """A job checked before Beam starts: where it reads and writes, in which formats, with which
    classifier and filter, how it batches."""

    input: str
    fmt: InputFormat | None  # None: preprocess's TFRecords
    input_bytes: int
    output: str
    output_format: str
    classifier: Classifier
    rule: KeepRule | None
    batch_size: int
    chunk_bytes: int
    num_shards: int


def _label_list(flag: str, value: str | Sequence[str], labels: list | None, model: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(name.strip() for name in items if name.strip())
    if labels is None:
        raise UserError(f"{flag}: {model} is a regressor (a score, no labels); it cannot filter by label")
    unknown = [name for name in names if name not in labels]
    if unknown or not names:
        raise UserError(f"{flag} {','.join(items)}: unknown label(s) {unknown or items}; {model}'s labels are "
                        f"{', '.join(labels)}")
    return names


def _saved_classifier(model: str) -> Classifier:
    """The classifier of a SavedModel (``export-savedmodel``); a UserError for anything else."""
    info = read_export_info(model)
    if not FileSystems.exists(FileSystems.join(model, "saved_model.pb")):
        raise UserError(f"--model {model}: neither a SavedModel (no saved_model.pb) nor a model directory "
                        "(no config.json); pass the output of `kcbert-tf finetune`, `import-hf` or `export-savedmodel`")
    if info.get("kind") not in ("classifier", "regressor"):
        raise UserError(f"--model {model}: a {info.get('kind', 'SavedModel without assets/export.json')}, "
                        "not a comment classifier; pass a classifier fine-tuned with `kcbert-tf finetune` "
                        "(or its export-savedmodel)")
    if "text" not in info.get("outputs", ()):
        raise UserError(f"--model {model}: exported by an earlier kcbert-tf (its signatures do not give the "
                        "prepared text); export it again with `kcbert-tf export-savedmodel`")
    if info.get("segments", 1) == 2:
        raise UserError(f"--model {model}: a sentence-pair classifier (two texts an example); batch-predict "
                        "labels single comments: use `kcbert-tf predict` for pairs")
    return Classifier(model, info.get("labels"), info["kind"])


def _litert_classifier(model: str) -> Classifier:
    """The classifier of a LiteRT directory (``export-litert``), served as it is; a UserError for
    anything but a single-text sentence classifier."""
    from kcbert_tf.litert.litert_dir import LiteRtDir

    record = LiteRtDir.read(model).use()
    if record.head != "sequence_classification":
        raise UserError(f"--model {model}: a LiteRT {record.head} model, not a comment classifier; pass the "
                        "export-litert of a classifier fine-tuned with `kcbert-tf finetune`")
    if record.segments == 2:
        raise UserError(f"--model {model}: a sentence-pair classifier ({record.task}: two texts an example); "
                        "batch-predict labels single comments: use `kcbert-tf predict` for pairs")
    return Classifier(model, None if record.labels is None else list(record.labels),
                      "regressor" if record.labels is None else "classifier")


def _directory_classifier(model: str) -> Classifier:
    """The classifier of a model directory (``finetune``, ``import-hf``), before it is exported;
    a UserError for anything but a single-text sentence classifier with its task record."""
    from kcbert_tf.model.model_dir import ModelDir

    source = ModelDir.read(model)
    task = source.task
    if source.config.head != "sequence_classification" or task is None:
        raise UserError(f"--model {model}: a {source.config.architecture}"
                        f"{'' if task else ' without a task record'}, not a comment classifier; pass a classifier "
                        "fine-tuned with `kcbert-tf finetune` (or imported from a transformers "
                        "BertForSequenceClassification with `import-hf`)")
    if task.segments == 2:
        raise UserError(f"--model {model}: a sentence-pair classifier ({task.task}: two texts an example); "
                        "batch-predict labels single comments: use `kcbert-tf predict` for pairs")
    labels = source.config.labels
    return Classifier(model, labels, "regressor" if labels is None else "classifier")


def _export_to_output(model: str, output: str) -> str:
    """Export the model directory ``model`` to ``OUTPUT/model`` (any Beam filesystem: workers read
    it from there); return that path."""
    from kcbert_tf.conversion.saved_model import export_saved_model

    target = FileSystems.join(output, MODEL_DIR)
    print(f"batch-predict: exporting {model} to {target}", flush=True)
    with tempfile.TemporaryDirectory() as local:
        exported = export_saved_model(model, os.path.join(local, "sm"))
        for directory, _, files in os.walk(exported):
            relative = os.path.relpath(directory, exported)
            for name in files:
                path = FileSystems.join(target, name) if relative == "." else FileSystems.join(target, relative, name)
                with open(os.path.join(directory, name), "rb") as source_file, FileSystems.create(path) as copy:
                    shutil.copyfileobj(source_file, copy, 1 << 24)
    return target


def build_pipeline(pipeline: beam.Pipeline, job: CheckedJob, env_vars: dict) -> None:
    """Add the whole job to ``pipeline``: BatchPredict, then the predictions, kept comments,
    rejected lines and stats."""
    labels = job.classifier.labels
    outputs = pipeline | "BatchPredict" >> BatchPredict(
        job.input,
        job.fmt or RECORDS_FORMAT,
        job.classifier.saved_model,
        labels,
        rule=job.rule,
        batch_size=job.batch_size,
        chunk_bytes=job.chunk_bytes,
        env_vars=env_vars,
    )
    prefix = FileSystems.join(job.output, PREDICTIONS_PREFIX)
    if job.output_format == "jsonl":
        prediction_files = (
            outputs["predictions"]
            | "ToJson" >> beam.Map(prediction_json, labels)
            | "WritePredictions" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl", num_shards=job.num_shards)
        )
    else:
        prediction_files = (
            outputs["predictions"]
            | "ToExamples" >> beam.Map(prediction_record)
            | "WritePredictions"
            >> beam.io.WriteToTFRecord(prefix, file_name_suffix=RECORDS_SUFFIX, num_shards=job.num_shards)
        )
    kept_files = (
        outputs["kept"]
        | "KeptToRecords" >> beam.Map(text_example)
        | "WriteKept"
        >> beam.io.WriteToTFRecord(FileSystems.join(job.output, KEPT_DIR, KEPT_PREFIX), file_name_suffix=RECORDS_SUFFIX)
    ) if job.rule is not None else (pipeline | "NoKeptFiles" >> beam.Create([]))
    rejected_files = (
        outputs["rejected"]
        | "RejectedToJson" >> beam.Map(json.dumps, ensure_ascii=False)
        | "WriteRejected"
        >> beam.io.WriteToText(FileSystems.join(job.output, REJECTED_DIR, "rejected"), file_name_suffix=".jsonl")
    )
    info = read_export_info(job.classifier.saved_model)
    settings = {
        "input": job.input,
        "format": str(job.fmt or RECORDS_FORMAT),
        "model": job.classifier.saved_model,
        "kind": job.classifier.kind,
        "max_seq_length": info.get("max_seq_length"),
        "clean": bool(info.get("clean")),
        "filter": None if job.rule is None else dataclasses.asdict(job.rule),
    }
    _ = outputs["stats"] | "WriteStats" >> beam.ParDo(
        WriteStatsFile(FileSystems.join(job.output, STATS_FILE), functools.partial(job_stats, settings)),
        beam.pvalue.AsList(prediction_files),
        beam.pvalue.AsList(kept_files),
        beam.pvalue.AsList(rejected_files),
    )


def summarize(stats: dict, counters: dict[str, int]) -> str:
    """The console summary: the Beam counters, the labels and the filter's result."""
    lines = [format_counters(COUNTER_NAMESPACE, STATS_KEYS, counters)]
    rejected = sum(stats[reason] for reason in REJECT_REASONS)
    lines.append(f"predicted {stats['predicted']:,} of {stats['lines_read']:,} lines ({stats['empty']:,} empty, "
                 f"{rejected:,} rejected) into {len(stats['prediction_files'])} file(s); padding: "
                 f"{stats['padded_ids'] / max(1, stats['ids']):.2f}x the real ids")
    if stats["labels"]:
        lines.append("labels: " + ", ".join(f"{name} {count:,}" for name, count in stats["labels"].items()))
    if "kept" in stats:
        lines.append(f"kept {stats['kept']:,} comment(s), dropped {stats['dropped']:,}, in "
                     f"{len(stats['kept_files'])} record file(s) for make-pretraining-data")
    return "\n".join(lines)


def model_loads(result) -> tuple[int, float]:
    """How many times the workers loaded the model and the seconds it took on average
    (RunInference's metric); ``(0, 0.0)`` when the runner does not report it."""
    try:
        query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace("batch_predict_model"))
    except Exception:  # Some runners cannot report metrics.
        return 0, 0.0
    count, total_ms = 0, 0.0
    for distribution in query["distributions"]:
        if distribution.key.metric.name.endswith("load_model_latency_milli_secs"):
            value = distribution.committed or distribution.attempted
            if value and value.count:
                count, total_ms = count + value.count, total_ms + value.sum
    return count, total_ms / 1000 / max(1, count)


def batch_predict(model: str, input: str, output: str, *, format: str = "text", output_format: str = "jsonl",
                  keep_labels: str | Sequence[str] | None = None, drop_labels: str | Sequence[str] | None = None,
                  min_probability: float = 0.0, batch_size: int = 64, chunk_mb: float = 1.0, num_shards: int = 0,
                  overwrite: bool = False, pipeline_args: Sequence[str] = ()) -> dict:
    """Label (and filter) the comments of ``input`` with the classifier ``model`` (a SavedModel,
    or a model directory exported first) into ``output``; return the stats (also in
    ``OUTPUT/stats.json``).  ``pipeline_args`` are Beam's options (``--runner DataflowRunner``, ...).
    Fails before Beam starts (and before anything is written) on a bad setting, model, input or
    output; raises :class:`UserError`."""
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if chunk_mb <= 0:
        raise UserError(f"--chunk-mb must be > 0, got {chunk_mb}")
    if not 0.0 <= min_probability <= 1.0:
        raise UserError(f"--min-probability must be within [0, 1], got {min_probability}")
    if keep_labels is not None and drop_labels is not None:
        raise UserError("--keep-labels and --drop-labels: pass one of them")
    if output_format not in OUTPUT_FORMATS:
        raise UserError(f"--output-format {output_format}: one of {', '.join(OUTPUT_FORMATS)}")
    fmt = None
    if format != RECORDS_FORMAT:
        try:
            fmt = InputFormat.parse(format)
        except ValueError as error:
            raise UserError(f"--format: {error} (or records, the output of `kcbert-tf preprocess`)") from None
    model = model.rstrip("/")
    is_litert = is_litert_model(model)
    is_model_dir = not is_litert and FileSystems.exists(FileSystems.join(model, "config.json"))
    if not is_model_dir and not FileSystems.exists(model):
        raise UserError(f"--model {model}: no such directory")
    # The model is checked (and its labels against the filter) before anything is exported.
    if is_litert:
        classifier = _litert_classifier(model)
    else:
        classifier = _directory_classifier(model) if is_model_dir else _saved_classifier(model)
    rule = None
    if keep_labels is not None:
        rule = KeepRule(keep=_label_list("--keep-labels", keep_labels, classifier.labels, model),
                        min_probability=min_probability)
    elif drop_labels is not None:
        rule = KeepRule(drop=_label_list("--drop-labels", drop_labels, classifier.labels, model),
                        min_probability=min_probability)
    if fmt is None:
        input = records_of_directory(input, RECORDS_SUFFIX)  # the output directory of preprocess
        inputs = match_input_files(input, InputFormat("text"))
        others = [metadata.path for metadata in inputs if not is_tfrecord_path(metadata.path)]
        if others:
            raise UserError(f"--input {input}: --format records reads the TFRecords of `kcbert-tf preprocess`, "
                            f"and {others[0]} is not one; pass --format text (or tsv:COLUMN, ...) for it")
    else:
        inputs = match_input_files(input, fmt)
    for pattern in (f"{PREDICTIONS_PREFIX}-*", f"{KEPT_DIR}/*"):
        refuse_occupied_output(output, pattern, overwrite)
    if is_model_dir:
        classifier = dataclasses.replace(classifier, saved_model=_export_to_output(model, output))
    job = CheckedJob(input, fmt, sum(metadata.size_in_bytes for metadata in inputs), output, output_format,
                      classifier, rule, batch_size, max(1, int(chunk_mb * (1 << 20))), num_shards)
    options = job_pipeline_options(pipeline_args, job.input_bytes, multi_process_min_bytes=MULTI_PROCESS_MIN_BYTES)
    all_options = options.get_all_options()
    workers = all_options.get("direct_num_workers") or os.cpu_count() or 1
    # Local worker processes share the machine's cores: each gets its part for TensorFlow.
    local_processes = "." in all_options["runner"] and all_options["direct_running_mode"] == "multi_processing"
    env_vars = {}
    if local_processes and "TF_NUM_INTRAOP_THREADS" not in os.environ:  # the caller's setting wins
        env_vars["TF_NUM_INTRAOP_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    classifier = job.classifier
    print(
        f"batch-predict: {job.input} ({job.fmt or RECORDS_FORMAT}, {job.input_bytes / 1e6:.1f} MB) with "
        f"{classifier.saved_model} ({classifier.kind}, labels {classifier.labels}) -> {job.output} on "
        f"{all_options['runner'].rsplit('.', 1)[-1]}"
        f"{f' ({workers} local worker processes)' if local_processes else ''}",
        flush=True,
    )
    loads: list[tuple[int, float]] = []

    def build(pipeline):
        build_pipeline(pipeline, job, env_vars)

    stats, counters = run_job(options, build, FileSystems.join(job.output, STATS_FILE), COUNTER_NAMESPACE,
                              on_result=lambda result: loads.append(model_loads(result)))
    if overwrite:  # Only now, with the new files complete, drop the old ones.
        delete_stale_files(job.output, (f"{PREDICTIONS_PREFIX}-*", f"{KEPT_DIR}/*", f"{REJECTED_DIR}/*"),
                           stats["prediction_files"] + stats["kept_files"] + stats["rejected_files"])
    print(summarize(stats, counters), flush=True)
    if loads and loads[0][0]:
        print(f"model loaded {loads[0][0]} time(s) (once per worker process), {loads[0][1]:.1f} s on average",
              flush=True)
    return stats


def run(argv: Sequence[str] | None = None) -> dict:
    """``kcbert-tf batch-predict``: the flags (the rest are Beam's options) parsed into one
    :func:`batch_predict` call; return the stats."""
    return call_with_flags(batch_predict, build_arg_parser(), argv, pipeline_args=True)


#: A local run stays in one process whatever the input's size (``--direct_num_workers`` and
#: ``--direct_running_mode`` override it): TensorFlow already spreads each batch over every core,
#: and a second process only adds its start and a second copy of the model (measured on 2 cores,
#: kcbert-base: 2 processes ran slower than 1; benchmarks/batch_predict.py).
MULTI_PROCESS_MIN_BYTES = sys.maxsize


if __name__ == "__main__":
    run()
