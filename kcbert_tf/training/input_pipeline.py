"""The pretraining input pipeline: packed ``token_ids`` records → masked-LM batches for ``fit``.

``make-pretraining-data`` writes fixed-length sequences (``[CLS] comment [SEP] comment [SEP] …
[PAD]…``) without masks; this module draws the masks afresh every epoch, google-research/bert
style, and hands KerasHub's ``BertMaskedLM`` the inputs it declares (its preprocessor's keys)::

    x = {"token_ids": int32 [B, L], "segment_ids": int32 [B, L] (zeros),
         "padding_mask": int32 [B, L] (token_ids != [PAD]), "mask_positions": int32 [B, P]}
    y = mask_ids int32 [B, P]               # the original ids at mask_positions
    sample_weight = mask_weights float32 [B, P]   # 1 for a prediction, 0 for an unused slot

**Masking** (:mod:`kcbert_tf.text.masking`). The candidates are the ordinary tokens: every id but ``[PAD]``, ``[CLS]``, ``[SEP]``
and ``[MASK]`` (``[UNK]`` is a candidate, as in BERT and KerasHub: it stands for real text;
``[MASK]`` only occurs when a comment literally says "[MASK]", and predicting ``[MASK]`` for
``[MASK]`` teaches nothing).  A sequence with ``c`` candidates gets
``n = min(P, c, max(1, round(0.15 * c)))`` positions, drawn uniformly without replacement; of
those 80% become ``[MASK]``, 10% a random ordinary id (uniform over ``[5, vocab_size)``; it can
by chance be the original) and 10% stay.  ``P`` (``max_predictions``) is fixed, so every shape is
static (TPUs need that): BERT's ``max_predictions_per_seq`` 20 at 128 positions, scaled with the
length (:func:`max_predictions_for`).  Unused slots have position 0, id 0, weight 0.

**Randomness without state.** Sequence ``i`` of the run (counted across passes over the data)
is masked with Philox words ``i * W .. (i + 1) * W`` of the stream keyed by ``seed``, drawn with
TensorFlow's stateless random ops — so a whole chunk of consecutive sequences takes one op call,
the masks differ every pass, and ``skip_sequences=n`` reproduces exactly what an uninterrupted
run sees after ``n`` sequences (resume after a kill).  Each pass reads the files in an order
drawn from ``(seed, pass)`` and shuffles the records in windows keyed by ``(seed, pass,
window)``, also with stateless ops: the stream depends on ``seed`` alone, not on TensorFlow's
global seed, on how many random ops ran before, or on how many replicas train on it.

**The same global batches on any number of replicas.** Global batch ``j`` is sequences
``j * B .. (j + 1) * B - 1`` of that stream.  Under ``tf.distribute`` each input pipeline (one
per host) builds the global batches and keeps its rows, cut into one batch per replica it feeds;
each batch's prediction weights are scaled so that the loss is the mean over the real
predictions of the *global* batch.  So training on 1, 2 or 8 replicas sees the same examples and
the same loss at every step.

**Resuming is arithmetic.** Where sequence ``n`` lies (pass, file, record) follows from the
files' record counts (:func:`record_counts`, from ``stats.json``), so a resumed run starts
reading at that file and reads at most one file's records to reach it, whatever the step.

Example:

>>> import tensorflow as tf
>>> masked = mask_tokens(tf.constant([2, 10, 11, 12, 13, 3, 0, 0]), seed=0, index=0,
...                      vocab_size=100, max_predictions=2)
>>> int(masked["mask_positions"][0]) in (1, 2, 3, 4), int(masked["mask_positions"][1])
(True, 0)

In training (see :func:`dataset_fn` for ``tf.distribute``)::

    check_pretraining_files("pretraining-128/", 128, 30000)   # fails early, naming file and fix
    ds = pretraining_dataset("pretraining-128/", seq_length=128, global_batch_size=256,
                             vocab_size=30000, seed=0)
    model.fit(ds, steps_per_epoch=1000, epochs=10)
"""

from __future__ import annotations

import functools
import inspect
import io
import itertools
import json
from typing import Callable, Sequence

import tensorflow as tf
from google.protobuf.message import DecodeError

from kcbert_tf.errors import UserError
from kcbert_tf.text.masking import check_masking, continuation_pieces, mask_tokens, max_predictions_for
from kcbert_tf.text.records import TOKEN_IDS_FEATURE, CorruptRecord, read_tfrecord_frames
from kcbert_tf.text.vocab import PAD_ID
from kcbert_tf.training.strategy import per_replica_batch_size

__all__ = [
    "DataError",
    "resolve_files",
    "records_seq_length",
    "check_pretraining_files",
    "pretraining_dataset",
    "eval_dataset",
    "dataset_fn",
    "record_counts",
]

#: The record files of a ``make-pretraining-data`` output directory.
RECORDS_GLOB = "*.tfrecord"

#: The statistics ``make-pretraining-data`` writes beside its files (with ``record_counts``).
STATS_FILE = "stats.json"

#: :func:`check_pretraining_files` reads every record when all files together are this small.
FULL_SCAN_BYTES = 256 << 20

#: Sequences parsed and masked together (rounded to whole batches).
MASK_CHUNK = 1024

_EPOCHS_FOREVER = 1 << 62
_RECORD_BUFFER_BYTES = 1 << 20
_CHECK_CHUNK = 4096


class DataError(UserError):
    """Pretraining records that cannot be trained on; the message names the file and the fix."""


# --- the files -----------------------------------------------------------------------------------


def resolve_files(file_pattern: str | Sequence[str]) -> list[str]:
    """The record files, sorted: for each pattern, a directory's ``*.tfrecord`` files or what a
    path or glob matches (local or ``gs://``).  Raises :class:`DataError` when one matches
    nothing."""
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    if not patterns:
        raise DataError("no pretraining record files given")
    files: set[str] = set()
    for pattern in patterns:
        try:
            if tf.io.gfile.isdir(pattern):
                matched = tf.io.gfile.glob(pattern.rstrip("/") + "/" + RECORDS_GLOB)
            else:
                matched = tf.io.gfile.glob(pattern)
            matched = [path for path in matched if not tf.io.gfile.isdir(path)]
        except tf.errors.OpError as error:
            raise DataError(f"{pattern}: cannot list it ({error.message})") from None
        if not matched:
            raise DataError(
                f"{pattern}: no pretraining record file matches; pass the --output directory of "
                "`kcbert-tf make-pretraining-data` or a glob of its pretraining-*.tfrecord files"
            )
        files.update(matched)
    return sorted(files)


def _regenerate(path: str) -> str:
    return f"regenerate {path} with `kcbert-tf make-pretraining-data` or leave it out"


def _check_record(
    record: bytes,
    path: str,
    number: int,
    seq_length: int | None,
    vocab_size: int | None,
    length_from: str | None = None,
) -> int:
    """Raise :class:`DataError` unless ``record`` is a packed sequence of ``seq_length`` ids
    (any length when ``None``) below ``vocab_size`` (unchecked when ``None``); return its length.
    ``length_from``: the file ``seq_length`` was read from, when it was not given."""
    try:
        feature_map = tf.train.Example.FromString(record).features.feature
    except DecodeError:
        raise DataError(
            f"{path}: record {number} is not a tf.train.Example; {_regenerate(path)}"
        ) from None
    if TOKEN_IDS_FEATURE not in feature_map:
        found = ", ".join(sorted(feature_map)) or "none"
        raise DataError(
            f"{path}: record {number} has no {TOKEN_IDS_FEATURE!r} feature (features: {found}); "
            "pass the output of `kcbert-tf make-pretraining-data` (the output of `preprocess` "
            "holds 'text', not token ids)"
        )
    feature = feature_map[TOKEN_IDS_FEATURE]
    if feature.WhichOneof("kind") != "int64_list":
        raise DataError(
            f"{path}: record {number}: {TOKEN_IDS_FEATURE!r} is a {feature.WhichOneof('kind')}, "
            f"not an int64_list; {_regenerate(path)}"
        )
    values = feature.int64_list.value
    if seq_length is not None and len(values) != seq_length and length_from:
        raise DataError(
            f"{path}: record {number} has {len(values)} token ids, but the records of "
            f"{length_from} have {seq_length}: the files come from `make-pretraining-data` runs "
            "with different --max-seq-length; train on one run's files, or regenerate these"
        )
    if seq_length is not None and len(values) != seq_length:
        raise DataError(
            f"{path}: record {number} has {len(values)} token ids, expected {seq_length}: the "
            f"data was made with `make-pretraining-data --max-seq-length {len(values)}`; train "
            f"with --max-seq-length {len(values)}, or regenerate the data with "
            f"--max-seq-length {seq_length}"
        )
    if not values:
        raise DataError(f"{path}: record {number} has no token ids; {_regenerate(path)}")
    low, high = min(values), max(values)
    if vocab_size is not None and (high >= vocab_size or low < 0):
        bad = high if high >= vocab_size else low
        raise DataError(
            f"{path}: record {number} holds token id {bad}, outside the model's vocab_size "
            f"{vocab_size}: the data was made with a different vocab.txt than the model config's; "
            "use the model config that matches the vocab the data was made with, or regenerate "
            "the data with the model's vocab"
        )
    return len(values)


def _check_all_records(
    frames, path: str, seq_length: int, vocab_size: int, length_from: str | None
) -> int:
    """Check every record of a file, a chunk at a time with ``tf.io.parse_example`` (fast); a
    chunk that fails is checked record by record to name the first bad one.  Returns the count."""
    spec = {TOKEN_IDS_FEATURE: tf.io.FixedLenFeature([seq_length], tf.int64)}
    count = 0
    while True:
        records = list(itertools.islice(frames, _CHECK_CHUNK))
        if not records:
            return count
        try:
            ids = tf.io.parse_example(records, spec)[TOKEN_IDS_FEATURE].numpy()
            good = bool(((ids >= 0) & (ids < vocab_size)).all())
        except (tf.errors.OpError, UnicodeDecodeError):  # TF's message may quote bad bytes.
            good = False
        if not good:
            for number, record in enumerate(records, start=count + 1):
                _check_record(record, path, number, seq_length, vocab_size, length_from)
        count += len(records)


def _first_records(files: list[str]):
    """``(path, first record or None)`` for each file; a corrupt first record is a DataError."""
    for path in files:
        try:
            with tf.io.gfile.GFile(path, "rb") as handle:
                yield path, next(read_tfrecord_frames(handle, path), None)
        except CorruptRecord as error:
            raise DataError(f"{error}; {_regenerate(path)}") from None


def records_seq_length(file_pattern: str | Sequence[str]) -> int:
    """The number of ids per sequence of the records (the ``--max-seq-length`` they were made
    with), read from the first record.  :func:`check_pretraining_files` checks that all agree."""
    for path, record in _first_records(resolve_files(file_pattern)):
        if record is not None:
            return _check_record(record, path, 1, None, None)
    raise DataError(
        f"{file_pattern}: the files hold no record; regenerate the data with "
        "`kcbert-tf make-pretraining-data`"
    )


def check_pretraining_files(
    file_pattern: str | Sequence[str],
    seq_length: int | None,
    vocab_size: int,
    *,
    full_scan_bytes: int | None = FULL_SCAN_BYTES,
) -> list[str]:
    """The record files of ``file_pattern`` (directories, paths or globs), checked before
    training; ``seq_length=None`` takes the first record's length (:func:`records_seq_length`).

    Raises :class:`DataError` naming the file and the fix for: nothing matching, no records at
    all, a record that is not an Example, has no ``token_ids``, has the wrong length (made with
    another ``--max-seq-length``) or ids outside ``vocab_size`` (another vocab), and a corrupt
    (bad checksum) or truncated file.  The first record of every file is always checked; when
    all files together are at most ``full_scan_bytes`` (256 MiB; ``None``: no limit) every
    record of every file is.  Beyond that size, later damage surfaces during training as a
    ``tf.errors.DataLossError`` ("corrupted record at N", "truncated record at N": TensorFlow
    does not say which file); ``check_pretraining_files(..., full_scan_bytes=None)`` names it.
    """
    files = resolve_files(file_pattern)
    length_from = None
    if seq_length is None:
        seq_length = records_seq_length(files)
        length_from = next(path for path, record in _first_records(files) if record is not None)
    try:
        total = sum(tf.io.gfile.stat(path).length for path in files)
    except tf.errors.OpError as error:
        raise DataError(f"{file_pattern}: cannot read it ({error.message})") from None
    if full_scan_bytes is not None and total > full_scan_bytes:
        records = 0
        for path, record in _first_records(files):
            if record is not None:
                _check_record(record, path, 1, seq_length, vocab_size, length_from)
                records += 1
    else:
        records = 0
        for path in files:
            with tf.io.gfile.GFile(path, "rb") as handle:
                frames = read_tfrecord_frames(io.BytesIO(handle.read()), path)
                try:
                    records += _check_all_records(
                        frames, path, seq_length, vocab_size, length_from
                    )
                except CorruptRecord as error:
                    raise DataError(f"{error}; {_regenerate(path)}") from None
    if not records:
        raise DataError(
            f"{file_pattern}: the {len(files)} file(s) hold no record; regenerate the data with "
            "`kcbert-tf make-pretraining-data`"
        )
    return files


# --- the pipeline --------------------------------------------------------------------------------


def _check_settings(
    seq_length,
    global_batch_size,
    vocab_size,
    max_predictions,
    seed,
    skip_sequences=0,
    mask_rate=0.15,
):
    """Raise ``ValueError`` for a setting no pipeline can take (before any file is read); every
    entry point (:func:`pretraining_dataset`, :func:`eval_dataset`, :func:`dataset_fn`) calls it."""
    if seq_length < 2:
        raise ValueError(f"seq_length must be >= 2, got {seq_length}")
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
    check_masking(seq_length, max_predictions, vocab_size, mask_rate)
    if skip_sequences < 0:
        raise ValueError(f"skip_sequences must be >= 0, got {skip_sequences}")
    if not 0 <= seed < 1 << 31:
        raise ValueError(f"seed must be in 0..2**31-1, got {seed}")
    if not 0 < mask_rate <= 1:
        raise ValueError(f"mask_rate must be in (0, 1], got {mask_rate}")


def _pipeline_share(input_context: tf.distribute.InputContext | None, global_batch_size: int):
    """(pipelines, this pipeline's id, replicas it feeds, a replica's batch size)."""
    if input_context is None:
        return 1, 0, 1, global_batch_size
    replicas = input_context.num_replicas_in_sync
    batch = per_replica_batch_size(global_batch_size, replicas)
    pipelines = input_context.num_input_pipelines
    if replicas % pipelines:
        raise ValueError(f"{replicas} replicas do not split over {pipelines} input pipelines")
    return pipelines, input_context.input_pipeline_id, replicas // pipelines, batch


def _count_file_records(path: str) -> int:
    """Records in one TFRecord file, counted from the length headers alone (seeking past the
    data: no record is read or parsed).  A damaged tail counts as a record: reading it is what
    reports the damage."""
    count = 0
    with tf.io.gfile.GFile(path, "rb") as handle:
        size = handle.size()
        offset = 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(min(8, size - offset))
            count += 1
            if len(header) < 8:
                break
            offset += 16 + int.from_bytes(header, "little")
    return count


def record_counts(files: Sequence[str]) -> list[int]:
    """The number of records in each file, the index that makes resuming arithmetic.

    Read from the ``record_counts`` of the ``stats.json`` that ``make-pretraining-data`` writes
    beside its files when it lists them (no file is opened), else counted from the files'
    record headers (one pass of seeks, once per start).
    """
    counts: dict[str, int] = {}
    for directory in sorted({_dirname(path) for path in files}):
        stats_path = directory + "/" + STATS_FILE
        try:
            with tf.io.gfile.GFile(stats_path, "r") as handle:
                listed = json.load(handle).get("record_counts") or {}
        except (tf.errors.OpError, ValueError, AttributeError):
            continue
        for name, count in listed.items():
            counts[directory + "/" + name] = int(count)
    return [counts[path] if path in counts else _count_file_records(path) for path in files]


def _files_with_counts(file_pattern, counts: Sequence[int] | None) -> tuple[list[str], list[int]]:
    """The record files of ``file_pattern`` and their record counts (given, or read)."""
    files = resolve_files(file_pattern)
    counts = list(counts) if counts is not None else record_counts(files)
    if not sum(counts):
        raise DataError(f"{file_pattern}: the files hold no record; {_regenerate(files[0])}")
    return files, counts


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else "."


def _pass_key(seed: int, epoch) -> tf.Tensor:
    """The stateless key of pass ``epoch`` over the data (file order and window shuffles)."""
    return tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0], tf.int64), tf.cast(epoch, tf.int64)
    )


def _file_order(seed: int, epoch, num_files: int, shuffle: bool) -> tf.Tensor:
    """The order pass ``epoch`` reads the files in: a permutation keyed by ``(seed, epoch)``."""
    order = tf.range(num_files, dtype=tf.int64)
    if not shuffle:
        return order
    return tf.random.experimental.stateless_shuffle(order, seed=_pass_key(seed, epoch))


def _window_shuffle(records: tf.data.Dataset, seed: int, epoch, window: int, first_window) -> tf.data.Dataset:
    """Shuffle consecutive windows of ``window`` records, window ``w`` keyed by ``(seed, epoch, w)``."""
    key = _pass_key(seed, epoch)

    @tf.autograph.experimental.do_not_convert
    def permute(number, block):
        return tf.random.experimental.stateless_shuffle(
            block, seed=tf.random.experimental.stateless_fold_in(key, number + 1)
        )

    return (
        records.batch(window)
        .enumerate(start=first_window)
        .map(permute, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .unbatch()
    )


def _sequence_stream(
    files: list[str],
    counts: list[int],
    *,
    seed: int,
    shuffle: bool,
    window: int,
    start: int,
    repeat: bool,
) -> tf.data.Dataset:
    """``(index, serialized record)``: the global order of the sequences, from sequence ``start``.

    Pass ``e`` over the data reads the files in the order :func:`_file_order` draws for it, one
    after the other, and (with ``window`` > 1) shuffles each run of ``window`` consecutive records
    of that stream with its own key.  Sequence ``i`` of the stream is record ``i mod total`` of
    pass ``i div total``: so the place of sequence ``start`` is arithmetic on the files' record
    counts, and resuming reads at most one file's records before it (never the data consumed).
    The order does not depend on how many replicas or input pipelines train on it.
    """
    total = sum(counts)
    names = tf.constant(files)
    window = max(1, window) if shuffle else 1
    first_pass, offset = divmod(start, total)

    def reader(paths) -> tf.data.Dataset:
        return tf.data.TFRecordDataset(paths, buffer_size=_RECORD_BUFFER_BYTES)

    # The pass the stream starts in: skip whole files by arithmetic, then records within one.
    order = _file_order(seed, first_pass, len(files), shuffle).numpy().tolist()
    window_start = offset // window * window
    before = 0
    for position, file_index in enumerate(order):
        if before + counts[file_index] > window_start:
            break
        before += counts[file_index]
    remaining = [files[index] for index in order[position:]]
    records = reader(remaining).skip(window_start - before)
    if window > 1:
        records = _window_shuffle(records, seed, first_pass, window, window_start // window)
    records = records.skip(offset - window_start)

    if repeat:

        @tf.autograph.experimental.do_not_convert
        def whole_pass(epoch):
            paths = tf.gather(names, _file_order(seed, epoch, len(files), shuffle))
            records = reader(paths)
            if window > 1:
                records = _window_shuffle(records, seed, epoch, window, 0)
            return records

        later = tf.data.Dataset.range(first_pass + 1, _EPOCHS_FOREVER).flat_map(whole_pass)
        records = records.concatenate(later)
    return records.enumerate(start=start)


def _masked_batches(
    indexed: tf.data.Dataset,
    *,
    seq_length: int,
    global_batch_size: int,
    vocab_size: int,
    max_predictions: int,
    mask_rate: float,
    seed: int,
    share: tuple[int, int, int, int],
    whole_word_vocab: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Numbered records → this pipeline's ``(x, y, sample_weight)`` per-replica batches.

    The records are cut into global batches, parsed and masked about :data:`MASK_CHUNK` sequences
    at a time (one call of each op per chunk, which is what makes masking cheap), each sequence
    by its global index.  Each global batch's prediction weights are scaled by ``B * P / n``
    (``n`` the real predictions in it), so that Keras' ``sum_over_batch_size`` loss, summed over
    the replicas, is the mean over the global batch's real predictions, as BERT's is, whatever
    the replica count.  Then this pipeline keeps its rows of every global batch, as consecutive
    per-replica batches (a last partial global batch is dropped).
    """
    pipelines, pipeline_id, replicas, batch_size = share
    spec = {TOKEN_IDS_FEATURE: tf.io.FixedLenFeature([seq_length], tf.int64)}
    per_chunk = max(1, MASK_CHUNK // global_batch_size)
    rows = replicas * batch_size  # this pipeline's rows of a global batch
    first_row = pipeline_id * rows
    continuation = None if whole_word_vocab is None else continuation_pieces(whole_word_vocab)

    @tf.autograph.experimental.do_not_convert
    def to_model_inputs(indices, serialized):
        full = tf.shape(serialized)[0] // global_batch_size * global_batch_size
        token_ids = tf.io.parse_example(serialized[:full], spec)[TOKEN_IDS_FEATURE]
        masked = mask_tokens(
            token_ids,
            seed=seed,
            index=indices[0],
            vocab_size=vocab_size,
            max_predictions=max_predictions,
            mask_rate=mask_rate,
            continuation=continuation,
        )
        original = tf.cast(token_ids, tf.int32)
        x = {
            "token_ids": masked["token_ids"],
            "segment_ids": tf.zeros_like(original),
            "padding_mask": tf.cast(original != PAD_ID, tf.int32),
            "mask_positions": masked["mask_positions"],
        }
        weights = tf.reshape(masked["mask_weights"], [-1, global_batch_size * max_predictions])
        scale = global_batch_size * max_predictions / tf.reduce_sum(weights, axis=1, keepdims=True)
        weights = tf.reshape(weights * scale, [-1, max_predictions])
        batches = (x, masked["mask_ids"], weights)

        def share_of(value):  # [k * B, ...] → this pipeline's [k * replicas, b, ...]
            value = tf.reshape(value, [-1, global_batch_size, value.shape[1]])
            value = value[:, first_row : first_row + rows]
            return tf.reshape(value, [-1, batch_size, value.shape[2]])

        return tf.nest.map_structure(share_of, batches)

    chunks = indexed.batch(global_batch_size * per_chunk).map(
        to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return chunks.unbatch()


def _finish(dataset: tf.data.Dataset, sharded: bool) -> tf.data.Dataset:
    if sharded:  # Already split per input pipeline: tf.distribute must not shard it again.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _settings_checked(builder):
    """A dataset builder whose settings are checked (:func:`_check_settings`) before it builds;
    :func:`dataset_fn` checks once itself and then calls the bare ``builder`` per pipeline."""
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def checked(file_pattern, **settings):
        _check_bound_settings(signature, file_pattern, settings)
        return builder(file_pattern, **settings)

    checked.builder = builder
    return checked


def _check_bound_settings(signature: inspect.Signature, file_pattern, settings: dict) -> None:
    bound = signature.bind(file_pattern, **settings)
    bound.apply_defaults()
    values = bound.arguments
    _check_settings(
        values["seq_length"], values["global_batch_size"], values["vocab_size"],
        values["max_predictions"], values["seed"], values.get("skip_sequences", 0), values["mask_rate"],
    )


@_settings_checked
def pretraining_dataset(
    file_pattern: str | Sequence[str],
    *,
    seq_length: int,
    global_batch_size: int,
    vocab_size: int,
    seed: int = 0,
    max_predictions: int | None = None,
    mask_rate: float = 0.15,
    shuffle_buffer: int = 10_000,
    skip_sequences: int = 0,
    repeat: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    counts: Sequence[int] | None = None,
    whole_word_vocab: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Training batches ``(x, y, sample_weight)`` for ``BertMaskedLM.fit``, masked afresh
    every pass over the data, reproducible for ``seed``.

    ``file_pattern``: ``make-pretraining-data`` output directories, record files or globs
    (``gs://`` works).  Each pass reads the files in a new order and shuffles the records in
    windows of ``shuffle_buffer`` (0: none).  The global batches are the same whatever the
    number of replicas: with ``input_context`` (see :func:`dataset_fn`) this is one input
    pipeline's rows of each, as batches of ``global_batch_size / replicas``, one per replica it
    feeds.  ``skip_sequences``: sequences the run has already consumed (steps ×
    ``global_batch_size``); the stream continues exactly where that run was, found by arithmetic
    on ``counts`` (records per file, default :func:`record_counts`), not by re-reading.  Batches
    are always full; ``repeat=False`` stops at the end of the pass the stream starts in.
    ``whole_word_vocab``: the data's vocab, to mask whole words (a piece and its ``##`` pieces
    together, :func:`~kcbert_tf.text.masking.mask_tokens`); None: token by token, as KcBERT.
    """
    if shuffle_buffer < 0:
        raise ValueError(f"shuffle_buffer must be >= 0, got {shuffle_buffer}")
    if skip_sequences % global_batch_size:
        raise ValueError(
            f"skip_sequences {skip_sequences} is not a whole number of global batches of "
            f"{global_batch_size}; pass steps done × global batch size"
        )
    files, counts = _files_with_counts(file_pattern, counts)
    stream = _sequence_stream(
        files, counts, seed=seed, shuffle=True, window=shuffle_buffer,
        start=skip_sequences, repeat=repeat,
    )
    batches = _masked_batches(
        stream,
        seq_length=seq_length,
        global_batch_size=global_batch_size,
        vocab_size=vocab_size,
        max_predictions=max_predictions or max_predictions_for(seq_length),
        mask_rate=mask_rate,
        seed=seed,
        share=_pipeline_share(input_context, global_batch_size),
        whole_word_vocab=whole_word_vocab,
    )
    return _finish(batches, sharded=input_context is not None)


@_settings_checked
def eval_dataset(
    file_pattern: str | Sequence[str],
    *,
    seq_length: int,
    global_batch_size: int,
    vocab_size: int,
    seed: int = 0,
    max_predictions: int | None = None,
    mask_rate: float = 0.15,
    steps: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    counts: Sequence[int] | None = None,
    whole_word_vocab: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Evaluation batches: the files in name order, no shuffle, the same masks on every pass
    (so numbers are comparable between evaluations), the same global batches on any number of
    replicas.

    One pass over the data by default (a last partial batch is dropped: shapes stay static);
    with ``steps``, exactly that many global batches (the data repeats if it is shorter): each
    input pipeline gives ``steps`` batches to each replica it feeds.
    """
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    files, counts = _files_with_counts(file_pattern, counts)
    share = _pipeline_share(input_context, global_batch_size)
    stream = _sequence_stream(
        files, counts, seed=seed, shuffle=False, window=0, start=0, repeat=steps is not None
    )
    batches = _masked_batches(
        stream,
        seq_length=seq_length,
        global_batch_size=global_batch_size,
        vocab_size=vocab_size,
        max_predictions=max_predictions or max_predictions_for(seq_length),
        mask_rate=mask_rate,
        seed=seed,
        share=share,
        whole_word_vocab=whole_word_vocab,
    )
    if steps is not None:  # Known length: Keras shows progress and expects no early end.
        per_pipeline = steps * share[2]
        batches = batches.take(per_pipeline).apply(
            tf.data.experimental.assert_cardinality(per_pipeline)
        )
    return _finish(batches, sharded=input_context is not None)


DatasetFn = Callable[[tf.distribute.InputContext], tf.data.Dataset]


def dataset_fn(
    file_pattern: str | Sequence[str],
    make: Callable[..., tf.data.Dataset] | None = None,
    **settings,
) -> DatasetFn:
    """``make`` (:func:`pretraining_dataset`, the default, or :func:`eval_dataset`) with its
    ``settings``, as ``strategy.distribute_datasets_from_function`` takes it: a function of the
    ``tf.distribute.InputContext``.  The settings are checked now, once."""
    builder = getattr(make or pretraining_dataset, "builder", make)
    _check_bound_settings(inspect.signature(builder), file_pattern, settings)
    return functools.partial(_with_context, builder, file_pattern, **settings)


def _with_context(make, file_pattern, input_context, **settings) -> tf.data.Dataset:
    return make(file_pattern, input_context=input_context, **settings)
