"""The pretraining input pipeline (kcbert_tf.training.input_pipeline): masking, reproducibility, sharding, checks.

The masks are checked against the rule written out here (BERT's: 15% of the ordinary tokens,
80% [MASK] / 10% random / 10% kept) and against the unmasked input, statistically over many
sequences; records are written with ``tf.io.TFRecordWriter`` and read back with plain
``tf.data`` as the reference, never with the module under test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from kcbert_tf.text import masking
from kcbert_tf.training import input_pipeline as data
from kcbert_tf.cli import main as cli

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
NOT_CANDIDATES = (PAD, CLS, SEP, MASK)


# --- references ----------------------------------------------------------------------------------


def packed_rows(count: int, length: int, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """Sequences shaped like make-pretraining-data's: [CLS], comments of 1-40 ids each ending in
    [SEP] (some [UNK], now and then a literal [MASK]), [PAD] to the end; some full, some short."""
    rows = np.zeros((count, length), dtype=np.int64)
    for row in rows:
        row[0] = CLS
        end = length if rng.random() < 0.6 else int(rng.integers(2, length + 1))
        position = 1
        while position < end - 1:
            size = min(int(rng.integers(1, 41)), end - 1 - position)
            tokens = rng.integers(5, vocab_size, size)
            tokens[rng.random(size) < 0.02] = UNK
            tokens[rng.random(size) < 0.002] = MASK
            row[position : position + size] = tokens
            row[position + size] = SEP
            position += size + 1
    return rows


def expected_predictions(rows: np.ndarray, max_predictions: int, rate: float = 0.15) -> np.ndarray:
    """BERT's count, on the ordinary tokens: min(P, c, max(1, round(rate * c))) per row."""
    candidates = (~np.isin(rows, NOT_CANDIDATES)).sum(axis=1)
    return np.array(
        [min(max_predictions, c, max(1, round(rate * c))) for c in candidates.tolist()]
    )


def unmasked(batch_x: dict, mask_ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The sequences before masking: the masked ids with the targets put back."""
    tokens = np.array(batch_x["token_ids"]).copy()
    rows, slots = np.nonzero(np.asarray(weights))
    tokens[rows, np.asarray(batch_x["mask_positions"])[rows, slots]] = np.asarray(mask_ids)[
        rows, slots
    ]
    return tokens


def write_records(path, rows) -> None:
    """Pretraining records the way TensorFlow writes them (not with kcbert_tf.text.records)."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            example = tf.train.Example()
            example.features.feature["token_ids"].int64_list.value.extend(list(map(int, row)))
            writer.write(example.SerializeToString())


def read_records(files, length: int) -> np.ndarray:
    """Every sequence of ``files`` in order, parsed by plain tf.data."""
    spec = {"token_ids": tf.io.FixedLenFeature([length], tf.int64)}
    rows = tf.data.TFRecordDataset([str(f) for f in files]).map(
        lambda record: tf.io.parse_single_example(record, spec)["token_ids"]
    )
    return np.stack(list(rows.as_numpy_iterator()))


def as_numpy(batches) -> list:
    return [tf.nest.map_structure(np.asarray, batch) for batch in batches]


def sequences(batches) -> list[tuple]:
    """Each sequence of ``batches`` (in order) as a hashable row of its unmasked ids."""
    return [tuple(row) for x, y, w in batches for row in unmasked(x, y, w).tolist()]


def slot_sets(batches) -> list[tuple]:
    """Each sequence's chosen positions."""
    return [
        tuple(positions[weights > 0].tolist())
        for x, _, w in batches
        for positions, weights in zip(x["mask_positions"], w)
    ]


# --- masking -------------------------------------------------------------------------------------


def test_max_predictions_scale_bert_s_20_at_128():
    assert [masking.max_predictions_for(n) for n in (128, 300, 512, 64, 8)] == [20, 45, 77, 10, 2]
    assert all(masking.max_predictions_for(n) == math.ceil(0.15 * n - 1e-9) for n in range(2, 600))


def test_masking_statistics_over_20000_packed_sequences():
    rng = np.random.default_rng(7)
    length, vocab_size, slots = 128, 30_000, 20
    rows = packed_rows(20_000, length, vocab_size, rng)
    out = masking.mask_tokens(
        rows, seed=11, index=5_000, vocab_size=vocab_size, max_predictions=slots
    )
    assert {name: (value.dtype, tuple(value.shape)) for name, value in out.items()} == {
        "token_ids": (tf.int32, (20_000, length)),
        "mask_positions": (tf.int32, (20_000, slots)),
        "mask_ids": (tf.int32, (20_000, slots)),
        "mask_weights": (tf.float32, (20_000, slots)),
    }
    tokens, positions = out["token_ids"].numpy(), out["mask_positions"].numpy()
    mask_ids, weights = out["mask_ids"].numpy(), out["mask_weights"].numpy()

    # How many: BERT's count on the ordinary tokens, slots filled first, unused slots all 0.
    chosen = expected_predictions(rows, slots)
    assert (weights.sum(axis=1) == chosen).all()
    valid = np.arange(slots) < chosen[:, None]
    assert (weights == valid).all()
    assert (positions[~valid] == 0).all() and (mask_ids[~valid] == 0).all()
    candidates = ~np.isin(rows, NOT_CANDIDATES)
    assert abs(chosen.sum() / candidates.sum() - 0.15) < 0.005

    # Which: distinct ascending positions of ordinary tokens, targets are the original ids.
    row_index = np.nonzero(valid)[0]
    picked = positions[valid]
    assert all((np.diff(p[v]) > 0).all() for p, v in zip(positions, valid))
    assert candidates[row_index, picked].all()  # never [PAD] [CLS] [SEP] [MASK]
    assert (mask_ids[valid] == rows[row_index, picked]).all()
    selected = np.zeros_like(candidates)
    selected[row_index, picked] = True
    assert (tokens[~selected] == rows[~selected]).all()  # nothing else changes

    # Uniform over the candidates: position p of row r is chosen with probability n_r / c_r.
    expected = (candidates * (chosen / np.maximum(candidates.sum(axis=1), 1))[:, None]).sum(0)
    observed = selected.sum(axis=0)
    busy = expected > 50
    assert (np.abs(observed - expected)[busy] <= 5 * np.sqrt(expected[busy]) + 1).all()

    # What they become: 80% [MASK], 10% a random ordinary id, 10% unchanged (a random id
    # equals the original with probability 1 / (vocab_size - 5), which counts as unchanged).
    new, old = tokens[row_index, picked], rows[row_index, picked]
    total = len(new)
    coincide = 0.1 / (vocab_size - 5)
    for name, share, expected_share in (
        ("[MASK]", (new == MASK).mean(), 0.8),
        ("unchanged", (new == old).mean(), 0.1 + coincide),
        ("random", ((new != MASK) & (new != old)).mean(), 0.1 - coincide),
    ):
        sigma = math.sqrt(expected_share * (1 - expected_share) / total)
        assert abs(share - expected_share) < 5 * sigma, (name, share, expected_share)
    replaced = new[(new != MASK) & (new != old)]
    assert replaced.min() >= 5 and replaced.max() < vocab_size
    counts = np.histogram(replaced, bins=20, range=(5, vocab_size))[0]
    chi2 = ((counts - len(replaced) / 20) ** 2 / (len(replaced) / 20)).sum()
    assert chi2 < 50  # 19 degrees of freedom: p < 2e-4


def test_a_random_replacement_can_be_the_original_with_a_small_vocab():
    # Ordinary ids are 5, 6, 7: a random replacement keeps the original one time in three.
    rng = np.random.default_rng(3)
    rows = np.concatenate(
        [np.full((4_000, 1), CLS), rng.integers(5, 8, (4_000, 62)), np.full((4_000, 1), SEP)], 1
    )
    out = masking.mask_tokens(rows, seed=1, index=0, vocab_size=8, max_predictions=10)
    valid = out["mask_weights"].numpy() > 0
    rows_index = np.nonzero(valid)[0]
    positions = out["mask_positions"].numpy()[valid]
    new, old = out["token_ids"].numpy()[rows_index, positions], rows[rows_index, positions]
    assert set(np.unique(new).tolist()) <= {MASK, 5, 6, 7}
    for share, expected_share in ((new == old).mean(), 0.1 + 0.1 / 3), ((new == MASK).mean(), 0.8):
        sigma = math.sqrt(expected_share * (1 - expected_share) / len(new))
        assert abs(share - expected_share) < 5 * sigma


def test_masks_depend_only_on_seed_stream_and_the_sequence_index():
    rows = packed_rows(64, 32, 100, np.random.default_rng(1))
    settings = dict(vocab_size=100, max_predictions=5)
    batch = masking.mask_tokens(rows, seed=4, index=1_000, **settings)
    for r in (0, 1, 33, 63):
        alone = masking.mask_tokens(rows[r], seed=4, index=1_000 + r, **settings)
        for name, value in alone.items():
            assert value.shape == batch[name].shape[1:]
            np.testing.assert_array_equal(value.numpy(), batch[name][r].numpy())
    again = masking.mask_tokens(rows, seed=4, index=1_000, **settings)
    for name in batch:
        np.testing.assert_array_equal(batch[name].numpy(), again[name].numpy())
    for other in (
        masking.mask_tokens(rows, seed=5, index=1_000, **settings),
        masking.mask_tokens(rows, seed=4, index=1_064, **settings),
        masking.mask_tokens(rows, seed=4, index=1_000, stream=1, **settings),
    ):
        differs = (other["mask_positions"].numpy() != batch["mask_positions"].numpy()).any(1)
        assert differs.mean() > 0.8


def test_edge_rows_no_candidates_one_candidate_and_the_cap():
    rows = np.array(
        [
            [CLS, SEP] + [PAD] * 14,  # nothing to predict
            [CLS, 9, SEP] + [PAD] * 13,  # one ordinary token: max(1, round(0.15)) = 1
            [CLS, MASK, UNK, SEP] + [PAD] * 12,  # a literal [MASK] is never a target; [UNK] is
            [CLS] + list(range(5, 19)) + [SEP],  # 14 candidates: round(2.1) = 2
        ]
    )
    out = masking.mask_tokens(rows, seed=0, index=0, vocab_size=50, max_predictions=3)
    weights, positions = out["mask_weights"].numpy(), out["mask_positions"].numpy()
    assert weights.sum(1).tolist() == [0, 1, 1, 2]
    assert positions[0].tolist() == [0, 0, 0] and positions[1].tolist() == [1, 0, 0]
    assert positions[2, 0] == 2 and out["mask_ids"].numpy()[2].tolist() == [UNK, 0, 0]
    capped = masking.mask_tokens(rows[3], seed=0, index=0, vocab_size=50, max_predictions=1)
    assert capped["mask_weights"].numpy().tolist() == [1.0]
    with pytest.raises(ValueError, match="max_predictions must be in 1..16"):
        masking.mask_tokens(rows, seed=0, index=0, vocab_size=50, max_predictions=17)


# --- the pipeline ------------------------------------------------------------------------------

LENGTH, VOCAB = 16, 50


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory):
    """100 distinct sequences of 16 ids in three files of 40, 35 and 25 records."""
    directory = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(5)
    rows = packed_rows(140, LENGTH, VOCAB, rng)
    rows = np.unique(rows[(~np.isin(rows, NOT_CANDIDATES)).sum(1) >= 3], axis=0)[:100]
    rows = rows[rng.permutation(len(rows))]
    assert len(rows) == 100
    sizes = np.cumsum([0, 40, 35, 25])
    for shard in range(3):
        write_records(
            directory / f"pretraining-{shard:05d}-of-00003.tfrecord",
            rows[sizes[shard] : sizes[shard + 1]],
        )
    return directory


def all_records(directory) -> list[tuple]:
    return [tuple(r) for r in read_records(sorted(directory.glob("*.tfrecord")), LENGTH).tolist()]


def train_batches(directory, count: int, **settings) -> list:
    options = dict(seq_length=LENGTH, global_batch_size=10, vocab_size=VOCAB, seed=3)
    dataset = data.pretraining_dataset(str(directory), **{**options, **settings})
    return as_numpy(dataset.take(count))


def test_batches_have_the_keras_hub_format_and_static_shapes(record_dir):
    dataset = data.pretraining_dataset(
        str(record_dir), seq_length=LENGTH, global_batch_size=10, vocab_size=VOCAB
    )
    x_spec, y_spec, w_spec = dataset.element_spec
    slots = masking.max_predictions_for(LENGTH)
    assert {name: (spec.dtype, tuple(spec.shape)) for name, spec in x_spec.items()} == {
        "token_ids": (tf.int32, (10, LENGTH)),
        "segment_ids": (tf.int32, (10, LENGTH)),
        "padding_mask": (tf.int32, (10, LENGTH)),
        "mask_positions": (tf.int32, (10, slots)),
    }
    assert (y_spec.dtype, tuple(y_spec.shape)) == (tf.int32, (10, slots))
    assert (w_spec.dtype, tuple(w_spec.shape)) == (tf.float32, (10, slots))
    [(x, y, w)] = as_numpy(dataset.take(1))
    original = unmasked(x, y, w)
    assert (x["padding_mask"] == (original != PAD)).all() and not x["segment_ids"].any()
    assert ((w > 0).sum(1) == expected_predictions(original, slots)).all()
    # Every real prediction weighs B * P / n (n: the batch's predictions): the weighted loss
    # over the B * P slots is then the mean over the real predictions, as BERT's is.
    n = expected_predictions(original, slots).sum()
    np.testing.assert_allclose(w[w > 0], 10 * slots / n, rtol=1e-6)


def test_same_seed_same_batches_and_every_epoch_whole_reshuffled_and_remasked(record_dir):
    first, second = train_batches(record_dir, 30), train_batches(record_dir, 30)
    for a, b in zip(first, second):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    records = all_records(record_dir)
    epochs = [first[0:10], first[10:20], first[20:30]]  # 100 records, batches of 10
    seen = [sequences(epoch) for epoch in epochs]
    assert all(sorted(epoch) == sorted(records) for epoch in seen)  # whole epochs
    assert seen[0] != seen[1] != seen[2]  # a new order each epoch
    masks = [dict(zip(sequences(epoch), slot_sets(epoch))) for epoch in epochs]
    changed = np.mean([masks[0][row] != masks[1][row] for row in records])
    assert changed > 0.7
    other = train_batches(record_dir, 10, seed=4)
    assert sequences(other) != seen[0]


def test_the_stream_does_not_depend_on_tensorflow_s_global_seed(record_dir):
    reference = train_batches(record_dir, 12)
    try:
        for global_seed in (0, 12345):
            tf.random.set_seed(global_seed)
            tf.random.uniform([3])  # random ops run before must not matter either
            for a, b in zip(reference, train_batches(record_dir, 12)):
                tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    finally:
        tf.random.set_seed(None)


@pytest.mark.parametrize("skip", [40, 100, 230])  # in a window, a new pass, mid-window
def test_skip_sequences_continues_exactly_where_an_unbroken_run_was(record_dir, skip):
    def unbatched(skip_sequences: int, count: int):
        dataset = data.pretraining_dataset(
            str(record_dir),
            seq_length=LENGTH,
            global_batch_size=10,
            vocab_size=VOCAB,
            seed=9,
            shuffle_buffer=30,
            skip_sequences=skip_sequences,
        )
        return as_numpy(dataset.unbatch().take(count))

    whole = unbatched(0, 300)
    resumed = unbatched(skip, 300 - skip)
    assert len(resumed) == 300 - skip
    for a, b in zip(whole[skip:], resumed):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)


def shares(directory, pipelines: int, replicas: int, global_batch: int, **settings) -> list[list]:
    """Every pipeline's batches of one pass, as tf.distribute would ask for them."""
    return [
        as_numpy(
            data.pretraining_dataset(
                str(directory),
                seq_length=LENGTH,
                global_batch_size=global_batch,
                vocab_size=VOCAB,
                repeat=False,
                input_context=tf.distribute.InputContext(pipelines, pipeline, replicas),
                **settings,
            )
        )
        for pipeline in range(pipelines)
    ]


@pytest.mark.parametrize(
    "pipelines, replicas, global_batch",
    [(1, 2, 10), (2, 2, 10), (2, 4, 20), (4, 4, 20), (1, 8, 24)],
)
def test_any_split_of_the_replicas_sees_the_same_global_batches(record_dir, pipelines, replicas, global_batch):
    """The invariant that makes N replicas train like 1: put back together in replica order,
    the per-replica batches are exactly the one-replica global batches (rows, masks, weights)."""
    settings = dict(seed=4, shuffle_buffer=30)
    [whole] = shares(record_dir, 1, 1, global_batch, **settings)
    parts = shares(record_dir, pipelines, replicas, global_batch, **settings)
    per_pipeline = replicas // pipelines
    assert [len(part) for part in parts] == [len(whole) * per_pipeline] * pipelines
    shape = (global_batch // replicas, LENGTH)
    assert all(x["token_ids"].shape == shape for part in parts for x, _, _ in part)
    for step, reference in enumerate(whole):
        pieces = [part[step * per_pipeline + r] for part in parts for r in range(per_pipeline)]
        joined = tf.nest.map_structure(lambda *values: np.concatenate(values), *pieces)
        tf.nest.map_structure(np.testing.assert_array_equal, joined, reference)
    seen = sequences(whole)  # one pass: each record once (a last partial global batch dropped)
    assert len(whole) == 100 // global_batch and len(set(seen)) == len(seen)
    assert set(seen) <= set(all_records(record_dir))


def test_default_strategy_distributes_global_batches(record_dir):
    strategy = tf.distribute.get_strategy()
    dataset = strategy.distribute_datasets_from_function(
        data.dataset_fn(
            str(record_dir), seq_length=LENGTH, global_batch_size=10, vocab_size=VOCAB, repeat=False
        )
    )
    batches = as_numpy(dataset)
    assert len(batches) == 10 and batches[0][0]["token_ids"].shape == (10, LENGTH)
    assert sorted(sequences(batches)) == sorted(all_records(record_dir))


MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from kcbert_tf.training import input_pipeline as data
    from test_input_pipeline import unmasked
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = strategy.distribute_datasets_from_function(data.dataset_fn(
        sys.argv[1], seq_length=16, global_batch_size=10, vocab_size=50, repeat=False))
    replicas = [[], []]
    shapes = set()
    for x, y, w in dataset:
        parts = [strategy.experimental_local_results(v) for v in (x, y, w)]
        for replica in range(2):
            xr, yr, wr = (tf.nest.map_structure(np.asarray, part[replica]) for part in parts)
            shapes.add(xr["token_ids"].shape)
            replicas[replica] += unmasked(xr, yr, wr).tolist()
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "shapes": sorted(shapes),
                      "rows": replicas}))
    """
)


def test_mirrored_strategy_over_two_cpus_gives_each_replica_its_own_half(record_dir):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(record_dir)],
        cwd=REPO / "tests",
        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}", "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["shapes"] == [[5, LENGTH]]
    halves = [[tuple(row) for row in rows] for rows in report["rows"]]
    assert len(halves[0]) == len(halves[1]) == 50 and not set(halves[0]) & set(halves[1])
    assert sorted(halves[0] + halves[1]) == sorted(all_records(record_dir))


def test_eval_batches_are_the_files_in_order_with_the_same_masks_every_pass(record_dir):
    dataset = data.eval_dataset(
        str(record_dir), seq_length=LENGTH, global_batch_size=8, vocab_size=VOCAB, seed=2
    )
    first, second = as_numpy(dataset), as_numpy(dataset)
    assert len(first) == 12  # 100 records: 12 full batches of 8, the last 4 records dropped
    for a, b in zip(first, second):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert sequences(first) == all_records(record_dir)[:96]
    stepped = data.eval_dataset(
        str(record_dir), seq_length=LENGTH, global_batch_size=8, vocab_size=VOCAB, steps=30
    )
    assert len(as_numpy(stepped)) == 30


def test_settings_are_checked_up_front(record_dir):
    with pytest.raises(ValueError, match="skip_sequences 5 is not a whole number of global batches of 10"):
        data.pretraining_dataset(
            str(record_dir),
            seq_length=LENGTH,
            global_batch_size=10,
            vocab_size=VOCAB,
            skip_sequences=5,
            input_context=tf.distribute.InputContext(2, 0, 2),
        )
    with pytest.raises(ValueError, match="max_predictions must be in 1..16"):
        data.dataset_fn(
            str(record_dir), seq_length=LENGTH, global_batch_size=8, vocab_size=VOCAB,
            max_predictions=17,
        )
    with pytest.raises(data.DataError, match="nothing-\\*.tfrecord: no pretraining record file"):
        data.pretraining_dataset(
            str(record_dir / "nothing-*.tfrecord"),
            seq_length=LENGTH,
            global_batch_size=8,
            vocab_size=VOCAB,
        )


# --- checking the files before training ----------------------------------------------------------


def good_rows(count: int) -> np.ndarray:
    return packed_rows(count, LENGTH, VOCAB, np.random.default_rng(count))


def example(**features) -> bytes:
    message = tf.train.Example()
    for name, values in features.items():
        feature = message.features.feature[name]
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return message.SerializeToString()


def write_raw(path, records: list[bytes]) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)


def test_good_files_pass_and_the_length_can_be_read_from_them(tmp_path):
    write_records(tmp_path / "b.tfrecord", good_rows(30))
    write_records(tmp_path / "a.tfrecord", good_rows(20))
    (tmp_path / "empty.tfrecord").write_bytes(b"")  # an empty shard: allowed
    expected = [str(tmp_path / name) for name in ("a.tfrecord", "b.tfrecord", "empty.tfrecord")]
    assert data.check_pretraining_files(str(tmp_path), LENGTH, VOCAB) == expected
    assert data.check_pretraining_files(str(tmp_path / "*.tfrecord"), None, VOCAB) == expected
    assert data.check_pretraining_files([expected[1], expected[0]], LENGTH, VOCAB) == expected[:2]
    assert data.records_seq_length(str(tmp_path)) == LENGTH


def corrupt(path, records: list[bytes], damage: str) -> str:
    """Write ``records``, then damage the file: ``flip`` a byte of the third record's payload,
    ``truncate`` its last bytes.  Returns the byte offset of the damaged record."""
    write_raw(path, records)
    raw = bytearray(path.read_bytes())
    offset = sum(16 + len(record) for record in records[:2])
    if damage == "flip":
        raw[offset + 12 + 3] ^= 0xFF
        path.write_bytes(bytes(raw))
        return offset
    path.write_bytes(bytes(raw[:-5]))
    return sum(16 + len(record) for record in records[:-1])


BAD_FILES = {  # case: (what to write, message)
    "no match": (None, "{tmp}/nothing*.tfrecord: no pretraining record file matches"),
    "only empty files": ({"a.tfrecord": []}, "hold no record; regenerate the data"),
    "preprocess records instead": (
        {"a.tfrecord": [example(text=["댓글".encode()])]},
        "{tmp}/a.tfrecord: record 1 has no 'token_ids' feature (features: text); pass the "
        "output of `kcbert-tf make-pretraining-data`",
    ),
    "token_ids as bytes": (
        {"a.tfrecord": [example(token_ids=[b"x"])]},
        "{tmp}/a.tfrecord: record 1: 'token_ids' is a bytes_list, not an int64_list",
    ),
    "not an Example": (
        {"a.tfrecord": [b"\xff\xfe not a protobuf"]},
        "{tmp}/a.tfrecord: record 1 is not a tf.train.Example",
    ),
    "made with another --max-seq-length": (
        {"a.tfrecord": [example(token_ids=[CLS] + [7] * 30 + [SEP])]},
        "{tmp}/a.tfrecord: record 1 has 32 token ids, expected 16: the data was made with "
        "`make-pretraining-data --max-seq-length 32`; train with --max-seq-length 32, or "
        "regenerate the data with --max-seq-length 16",
    ),
    "a later record of the wrong length": (
        {"a.tfrecord": [example(token_ids=r) for r in good_rows(6).tolist()[:4]]
         + [example(token_ids=[CLS, 7, SEP])]},
        "{tmp}/a.tfrecord: record 5 has 3 token ids, expected 16",
    ),
    "made with another vocab": (
        {"b.tfrecord": [example(token_ids=r) for r in good_rows(8).tolist()]
         + [example(token_ids=[CLS] + [VOCAB + 7] * 14 + [SEP])]},
        "{tmp}/b.tfrecord: record 9 holds token id 57, outside the model's vocab_size 50: the "
        "data was made with a different vocab.txt than the model config's",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_clear_errors_naming_file_and_fix(tmp_path, case):
    files, message = BAD_FILES[case]
    for name, records in (files or {}).items():
        write_raw(tmp_path / name, records)
    pattern = str(tmp_path / ("nothing*.tfrecord" if files is None else "*.tfrecord"))
    with pytest.raises(data.DataError) as caught:
        data.check_pretraining_files(pattern, LENGTH, VOCAB)
    assert message.format(tmp=tmp_path) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_files_of_different_lengths_are_refused_when_the_length_is_inferred(tmp_path):
    write_records(tmp_path / "a.tfrecord", good_rows(5))
    write_records(tmp_path / "b.tfrecord", packed_rows(5, 32, VOCAB, np.random.default_rng(0)))
    with pytest.raises(data.DataError, match=r"b.tfrecord: record 1 has 32 token ids, but the "
                       r"records of .*a.tfrecord have 16"):
        data.check_pretraining_files(str(tmp_path), None, VOCAB)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_files_are_found_in_a_full_scan(tmp_path, damage):
    records = [example(token_ids=row) for row in good_rows(6).tolist()]
    write_records(tmp_path / "a.tfrecord", good_rows(3))
    offset = corrupt(tmp_path / "b.tfrecord", records, damage)
    problem = "corrupt record at byte" if damage == "flip" else "truncated record at byte"
    damage = "corrupt" if damage == "flip" else "truncated"
    with pytest.raises(data.DataError) as caught:
        data.check_pretraining_files(str(tmp_path), LENGTH, VOCAB)
    assert f"{tmp_path}/b.tfrecord: {problem} {offset}" in str(caught.value)
    assert "regenerate" in str(caught.value)
    # Over the full-scan size only first records are read: later damage is left to training,
    # where tf.data reports it as a DataLossError (without the file's name).
    files = data.check_pretraining_files(str(tmp_path), LENGTH, VOCAB, full_scan_bytes=0)
    assert len(files) == 2
    dataset = data.eval_dataset(
        str(tmp_path / "b.tfrecord"), seq_length=LENGTH, global_batch_size=1, vocab_size=VOCAB
    )
    with pytest.raises(tf.errors.DataLossError, match=f"{damage}\\w* record at \\d+"):
        as_numpy(dataset)


def test_a_corrupt_first_record_is_found_without_a_full_scan(tmp_path):
    path = tmp_path / "a.tfrecord"
    write_records(path, good_rows(3))
    raw = bytearray(path.read_bytes())
    raw[14] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match=r"a.tfrecord: corrupt record at byte 0"):
        data.check_pretraining_files(str(path), LENGTH, VOCAB, full_scan_bytes=0)


# --- real data -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_comments_packed_with_the_real_vocab(news_comments, kcbert_vocab, tmp_path, capsys):
    lines = news_comments.read_text(encoding="utf-8").splitlines(keepends=True)[:2_000]
    (tmp_path / "comments.txt").write_text("".join(lines), encoding="utf-8")
    cleaned, packed = tmp_path / "cleaned", tmp_path / "packed"
    comments = str(tmp_path / "comments.txt")
    assert cli(["preprocess", "--input", comments, "--output", str(cleaned)]) == 0
    argv = ["--input", str(cleaned), "--vocab", str(kcbert_vocab), "--output", str(packed)]
    assert cli(["make-pretraining-data", *argv, "--max-seq-length", "64", "--num-shards", "2"]) == 0
    capsys.readouterr()

    files = data.check_pretraining_files(str(packed), None, 30_000)
    assert data.records_seq_length(str(packed)) == 64 and len(files) == 2
    reference = read_records(files, 64)
    known = {tuple(row) for row in reference.tolist()}
    assert len(known) == len(reference)
    batches = as_numpy(
        data.pretraining_dataset(
            str(packed), seq_length=64, global_batch_size=32, vocab_size=30_000, seed=1
        ).take(len(reference) // 32 + 2)
    )
    seen = []
    for x, y, w in batches:
        original = unmasked(x, y, w)
        assert all(tuple(row) in known for row in original.tolist())
        assert (x["padding_mask"] == (original != PAD)).all()
        assert ((w > 0).sum(1) == expected_predictions(original, 10)).all()
        chosen = np.zeros(original.shape, bool)
        rows, slots = np.nonzero(w)
        chosen[rows, x["mask_positions"][rows, slots]] = True
        assert (x["token_ids"][~chosen] == original[~chosen]).all()
        seen += [tuple(row) for row in original.tolist()]
    assert sorted(seen[: len(reference)]) == sorted(known)  # the first epoch: every sequence once


def test_keras_hub_bert_masked_lm_trains_on_the_batches(record_dir):
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=LENGTH,
    )
    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    dataset = data.pretraining_dataset(
        str(record_dir), seq_length=LENGTH, global_batch_size=10, vocab_size=VOCAB
    )
    history = model.fit(dataset, steps_per_epoch=3, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    evaluation = data.eval_dataset(
        str(record_dir), seq_length=LENGTH, global_batch_size=10, vocab_size=VOCAB, steps=4
    )
    assert evaluation.cardinality() == 4
    assert model.evaluate(evaluation, verbose=0, return_dict=True)["loss"] > 0


def test_resuming_never_reads_the_records_it_skips(tmp_path):
    """Resume is arithmetic: a run resumed past a whole file does not open that file, so even
    a file that is unreadable by then does not stop it (re-reading the consumed stream would
    fail on it with a DataLossError)."""
    rows = packed_rows(60, LENGTH, VOCAB, np.random.default_rng(1))
    write_records(tmp_path / "pretraining-00000-of-00002.tfrecord", rows[:30])
    write_records(tmp_path / "pretraining-00001-of-00002.tfrecord", rows[30:])
    settings = dict(seq_length=LENGTH, global_batch_size=10, vocab_size=VOCAB, shuffle_buffer=0, counts=[30, 30])
    for seed in range(20):  # a seed whose first pass reads file 0 first
        first = data.pretraining_dataset(str(tmp_path), seed=seed, repeat=False, **settings)
        if sequences(as_numpy(first.take(1)))[0] in {tuple(row) for row in rows[:30].tolist()}:
            break
    reference = as_numpy(data.pretraining_dataset(str(tmp_path), seed=seed, repeat=False, **settings))
    damaged = tmp_path / "pretraining-00000-of-00002.tfrecord"
    damaged.write_bytes(b"\xff" * damaged.stat().st_size)  # consumed, then lost
    resumed = as_numpy(data.pretraining_dataset(str(tmp_path), seed=seed, repeat=False, skip_sequences=30, **settings))
    assert len(resumed) == 3
    for a, b in zip(reference[3:], resumed):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    with pytest.raises(tf.errors.DataLossError):  # what re-reading the consumed records meets
        as_numpy(data.pretraining_dataset(str(tmp_path), seed=seed, repeat=False, **settings))
