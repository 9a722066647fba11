"""``kcbert-tf batch-predict``: the Beam RunInference job gives ``kcbert-tf predict``'s labels and
probabilities on the shared NSMC sample, counts every line once, and its filter keeps exactly
the comments whose label passes (checked in plain Python on predict's output)."""

from __future__ import annotations

import collections
import csv
import gzip
import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import randomize, shared_file
from kcbert_tf.cli import main as cli
from kcbert_tf.text.cleaning import clean

LABELS = ("none", "offensive", "hate")


def write_classifier(directory: pathlib.Path, vocab_file: pathlib.Path, labels, *, text_column: str,
                     text_pair: str | None = None, max_seq_length: int = 48, seed: int = 3) -> pathlib.Path:
    """A tiny random sentence classifier (or regressor, ``labels`` None) on the real vocab, with
    the task record ``finetune`` would write."""
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.task_record import TaskRecord
    from kcbert_tf.text.vocab import read_vocab

    vocab = read_vocab(vocab_file)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64).with_labels(
                            None if labels is None else list(labels))
    model = build_model(config)
    randomize(model, seed)
    record = TaskRecord("custom", config.head, max_seq_length, clean=True,
                        labels=None if labels is None else tuple(labels), segments=2 if text_pair else 1,
                        options={"columns": {"text": text_column, "label": "label", "text_pair": text_pair}})
    ModelDir.write(str(directory), config, vocab, model, task=record)
    return directory


@pytest.fixture(scope="module")
def classifier(kcbert_vocab, tmp_path_factory) -> pathlib.Path:
    return write_classifier(tmp_path_factory.mktemp("classifier"), kcbert_vocab, LABELS, text_column="document")


@pytest.fixture(scope="module")
def nsmc_rows(tmp_path_factory) -> pathlib.Path:
    """The first 400 rows of the shared NSMC sample (read in place; a copy in tmp, never the repo)."""
    source = shared_file("nsmc/train.txt")
    lines = source.read_text(encoding="utf-8").split("\n")[:401]
    path = tmp_path_factory.mktemp("nsmc") / "reviews.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(argv, capsys) -> tuple[int, str, str]:
    code = cli(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_predictions(output: pathlib.Path) -> list[dict]:
    rows = []
    for path in sorted(output.glob("predictions-*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted(rows, key=lambda row: (row["file"], row["line"]))


def read_kept(output: pathlib.Path) -> list[str]:
    from kcbert_tf.text.records import read_texts

    return list(read_texts(str(output / "kept" / "*.tfrecord*")))


def test_batch_predict_equals_predict_on_nsmc_and_filters_exactly(classifier, nsmc_rows, tmp_path, capsys):
    """Labels and probabilities within 1e-4 of ``predict`` (which writes 4 decimals) on 400 real
    reviews; every line in stats.json; the kept records = predict's rows that pass the rule."""
    predicted = tmp_path / "predict.tsv"
    code, _, err = run_cli(["predict", "--model", str(classifier), "--input", str(nsmc_rows),
                            "--output", str(predicted)], capsys)
    assert code == 0, err
    with predicted.open(encoding="utf-8", newline="") as handle:
        reference = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(reference) == 400

    output = tmp_path / "labelled"
    code, out, err = run_cli(["batch-predict", "--model", str(classifier), "--input", str(nsmc_rows),
                              "--format", "tsv:document", "--output", str(output), "--keep-labels", "none,hate",
                              "--min-probability", "0.4", "--chunk-mb", "0.004"], capsys)
    assert code == 0, err
    rows = read_predictions(output)
    stats = json.loads((output / "stats.json").read_text(encoding="utf-8"))

    # Every data line once, in file-line order: the header is line 1, so row i is line i + 2.
    assert [row["line"] for row in rows] == list(range(2, 402))
    labelled = [(row, want) for row, want in zip(rows, reference) if want["predicted"]]
    assert all(row["label"] is None for row, want in zip(rows, reference) if not want["predicted"])
    assert [row["label"] for row, _ in labelled] == [want["predicted"] for _, want in labelled]
    got = np.array([[row["probabilities"][name] for name in LABELS] for row, _ in labelled])
    want = np.array([[float(want[f"p_{name}"]) for name in LABELS] for _, want in labelled])
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert [row["text"] for row in rows] == [want["document"] for want in reference]
    assert len(set(row["label"] for row, _ in labelled)) == 3  # a test of every label

    counts = collections.Counter(want["predicted"] for want in reference if want["predicted"])
    assert stats["lines_read"] == 400 and stats["files"] == 1
    assert stats["predicted"] == len(labelled) and stats["empty"] == 400 - len(labelled)
    assert stats["labels"] == {name: counts[name] for name in LABELS}
    assert stats["lines_read"] == stats["predicted"] + stats["empty"] + sum(
        stats[reason] for reason in ("undecodable", "nul_byte", "too_long", "malformed"))

    # The filter: keep "none" and "hate" predicted with p >= 0.4, as preprocess records of the
    # cleaned text (what make-pretraining-data reads).
    kept = [clean(want["document"]) for want in reference
            if want["predicted"] in ("none", "hate") and float(want[f"p_{want['predicted']}"]) >= 0.4]
    assert 0 < len(kept) < len(labelled)
    assert sorted(read_kept(output)) == sorted(kept)
    assert stats["kept"] == len(kept) and stats["dropped"] == len(labelled) - len(kept)
    assert (output / "model" / "saved_model.pb").exists()  # the model directory was exported
    assert "kept" in out and "labels: none" in out


def test_records_input_drop_filter_and_tfrecord_output(classifier, tmp_path, capsys):
    """``--format records`` reads preprocess's output directory; ``--drop-labels`` keeps all but
    the confident drops; predictions as TFRecords hold what the JSON lines hold."""
    import tensorflow as tf

    from kcbert_tf.text.records import read_texts

    raw = tmp_path / "raw.txt"
    texts = [f"이 영화 {i}번째 댓글은 정말 재미있었어요 ㅋㅋㅋㅋ" if i % 3 else f"최악의 영화 {i} 다시는 안 봄!!!!"
             for i in range(60)]
    raw.write_text("\n".join(texts) + "\n", encoding="utf-8")
    cleaned = tmp_path / "cleaned"
    assert run_cli(["preprocess", "--input", str(raw), "--output", str(cleaned)], capsys)[0] == 0
    corpus = sorted(read_texts(str(cleaned / "*.tfrecord*")))

    as_json, as_records = tmp_path / "json", tmp_path / "records"
    common = ["batch-predict", "--model", str(classifier), "--input", str(cleaned), "--format", "records",
              "--drop-labels", "offensive", "--min-probability", "0.3"]
    assert run_cli(common + ["--output", str(as_json)], capsys)[0] == 0
    code, _, err = run_cli(common + ["--output", str(as_records), "--output-format", "tfrecord",
                                     "--model", str(as_json / "model")], capsys)
    assert code == 0, err
    rows = read_predictions(as_json)
    assert sorted(row["text"] for row in rows) == corpus
    keeps = [row["text"] for row in rows
             if not (row["label"] == "offensive" and row["probabilities"]["offensive"] >= 0.3)]
    assert sorted(read_kept(as_json)) == sorted(keeps) == sorted(read_kept(as_records))

    records = []
    for path in sorted(as_records.glob("predictions-*.tfrecord*")):
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            feature = tf.train.Example.FromString(record).features.feature
            records.append({"file": feature["file"].bytes_list.value[0].decode(),
                            "line": feature["line"].int64_list.value[0],
                            "text": feature["text"].bytes_list.value[0].decode(),
                            "label": feature["label"].bytes_list.value[0].decode(),
                            "probabilities": dict(zip(LABELS, feature["probabilities"].float_list.value))})
    records.sort(key=lambda row: (row["file"], row["line"]))
    assert [(r["file"], r["line"], r["text"], r["label"]) for r in records] == [
        (r["file"], r["line"], r["text"], r["label"]) for r in rows]
    for record, row in zip(records, rows):
        for name in LABELS:
            assert record["probabilities"][name] == pytest.approx(row["probabilities"][name], abs=1e-6)
    # make-pretraining-data reads the kept records directly, as it reads preprocess's directory.
    pretraining = tmp_path / "pretraining"
    code, _, err = run_cli(["make-pretraining-data", "--input", str(as_json / "kept"), "--vocab",
                            str(shared_file("kcbert/vocab.txt").parent), "--max-seq-length", "32",
                            "--output", str(pretraining)], capsys)
    assert code == 0, err
    assert json.loads((pretraining / "stats.json").read_text())["comments"] == len(keeps)


# --- The transform, with a TestPipeline ----------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(classifier, tmp_path_factory) -> pathlib.Path:
    from kcbert_tf.conversion.saved_model import export_saved_model

    return pathlib.Path(export_saved_model(classifier, tmp_path_factory.mktemp("sm") / "sm"))


def test_transform_accounts_for_every_line_and_equals_the_model_on_each_comment_alone(saved_model, tmp_path):
    """Compressed text and JSONL input with undecodable, NUL, malformed and empty lines: each line
    is a prediction (in its file and line), an empty one or a rejected one; each label and
    probability is the SavedModel's on that comment alone (no batch, no sorting, no padding)."""
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from beam_jobs.batch_predict import BatchPredict

    comments = [line for line in shared_file("comments/news_comments.txt").read_text(encoding="utf-8").split("\n")
                if line.strip()][:150]
    text_lines = [c.encode() for c in comments[:100]]
    text_lines[10] = b"\xff\xfe broken utf-8"
    text_lines[20] = b"   "  # empty once prepared
    text_lines[30] = b"nul \x00 byte"
    text_lines[40] = "ㅋ".encode() + b"\xf0\x9f\x98"  # cut inside an emoji
    with gzip.open(tmp_path / "a.txt.gz", "wb") as handle:
        handle.write(b"\n".join(text_lines) + b"\n")
    json_lines = [json.dumps({"body": c}, ensure_ascii=False) for c in comments[100:]]
    json_lines[5] = "{not json"
    json_lines[6] = json.dumps({"other": "x"})
    (tmp_path / "b.jsonl").write_text("\n".join(json_lines) + "\n", encoding="utf-8")

    served = tf.saved_model.load(str(saved_model))
    expected, expected_rejected, expected_empty = [], [], []
    for name, lines, fmt in (("a.txt.gz", text_lines, "text"), ("b.jsonl", [l.encode() for l in json_lines], "jsonl")):
        for number, raw in enumerate(lines, start=1):
            path = str(tmp_path / name)
            try:
                text = raw.decode("utf-8")
                if "\x00" in text:
                    raise ValueError
                text = json.loads(text)["body"] if fmt == "jsonl" else text
            except (ValueError, KeyError):
                expected_rejected.append((path, number))
                continue
            if not clean(text):
                expected_empty.append((path, number))
                continue
            probabilities = served.signatures["serving_default"](text=tf.constant([text]))["probabilities"].numpy()[0]
            expected.append((path, number, LABELS[int(probabilities.argmax())], [float(p) for p in probabilities]))
    assert len(expected_rejected) == 5 and len(expected_empty) == 1

    def close_to(want):
        """A matcher: the same (file, line, label) rows, probabilities within 1e-5."""
        def match(got):
            got, wanted = sorted(got), sorted(want)
            assert [row[:3] for row in got] == [row[:3] for row in wanted]
            np.testing.assert_allclose([row[3] for row in got], [row[3] for row in wanted], atol=1e-5)
        return match

    for fmt, pattern, names in (("text", "a.txt.gz", ["a"]), ("jsonl:body", "b.jsonl", ["b"])):
        want = [row for row in expected if pathlib.Path(row[0]).name.startswith(names[0])]
        with TestPipeline() as pipeline:
            outputs = pipeline | BatchPredict(str(tmp_path / pattern), fmt, str(saved_model), list(LABELS),
                                              batch_size=4, chunk_bytes=2000)
            labelled = outputs["predictions"] | beam.Filter(lambda p: p.label is not None)
            assert_that(labelled | "Key" >> beam.Map(
                lambda p: (p.comment.file, p.comment.line, p.label, list(p.probabilities))), close_to(want), label="labels")
            empty = outputs["predictions"] | beam.Filter(lambda p: p.label is None) | beam.Map(
                lambda p: (p.comment.file, p.comment.line))
            assert_that(empty, equal_to([e for e in expected_empty if pathlib.Path(e[0]).name.startswith(names[0])]),
                        label="empty")
            assert_that(outputs["rejected"] | beam.Map(lambda r: (r["file"], r["line"])),
                        equal_to([r for r in expected_rejected if pathlib.Path(r[0]).name.startswith(names[0])]),
                        label="rejected")
            lines = len(text_lines) if fmt == "text" else len(json_lines)
            assert_that(outputs["stats"] | beam.Map(lambda s: (s["lines_read"], s["predicted"] + s["empty"] + sum(
                s[r] for r in ("undecodable", "nul_byte", "too_long", "malformed")), s["files"])),
                equal_to([(lines, lines, 1)]), label="stats")


# --- A regressor, and what a worker imports ------------------------------------------------------


def test_regressor_scores_equal_predict(kcbert_vocab, tmp_path, capsys):
    model = write_classifier(tmp_path / "regressor", kcbert_vocab, None, text_column="text", seed=5)
    comments = [c for c in shared_file("comments/news_comments.txt").read_text(encoding="utf-8").split("\n")[:60]
                if c.strip() and "\t" not in c]
    (tmp_path / "in.tsv").write_text("text\n" + "\n".join(comments) + "\n", encoding="utf-8")
    assert run_cli(["predict", "--model", str(model), "--input", str(tmp_path / "in.tsv"), "--output",
                    str(tmp_path / "p.tsv")], capsys)[0] == 0
    want = [float(line.split("\t")[-1]) for line in (tmp_path / "p.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    code, _, err = run_cli(["batch-predict", "--model", str(model), "--input", str(tmp_path / "in.tsv"), "--format",
                            "tsv:text", "--output", str(tmp_path / "out")], capsys)
    assert code == 0, err
    rows = read_predictions(tmp_path / "out")
    assert [row["line"] for row in rows] == list(range(2, len(comments) + 2))
    assert all("label" not in row for row in rows)
    np.testing.assert_allclose([row["score"] for row in rows], want, atol=1e-4)


WORKER = textwrap.dedent(
    """
    import sys
    import importlib.util

    missing = [name for name in NOT_INSTALLED if importlib.util.find_spec(name) is not None]
    assert not missing, f"the worker's site-packages should not have {missing}"
    from beam_jobs import batch_predict  # the module whose DoFns a worker unpickles
    from beam_jobs.classifier_handler import ClassifierHandler, Comment
    handler = ClassifierHandler(sys.argv[1], ["none", "offensive", "hate"], batch_size=2)
    model = handler.load_model()
    texts = ["재밌다", "이 영화 정말 최악이다", "배우 연기가 좋았어요 ㅎㅎ"]
    predictions = handler.run_inference([Comment("f", i, t) for i, t in enumerate(texts)], model)
    assert [p.comment.text for p in predictions] == texts and all(p.label for p in predictions)
    loaded = [m for m in ("kcbert_tf.model", "kcbert_tf.conversion") if m in sys.modules]
    print("loaded:", loaded)
    """
)

#: What a batch-predict worker does without: KerasHub (our model layers), the peers, scikit-learn
#: and SciPy.  (Keras stays: ``pip install tensorflow`` installs it, and tensorflow_text imports
#: ``tf.keras`` when it loads.)
NOT_INSTALLED = ("keras_hub", "transformers", "torch", "sklearn", "scipy")


def worker_site_packages(directory: pathlib.Path) -> pathlib.Path:
    """A site-packages of links to this one's entries, less :data:`NOT_INSTALLED` (and their
    metadata): a worker where only the job's own dependencies are installed."""
    import site

    source = pathlib.Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    directory.mkdir()
    for entry in source.iterdir():
        stem = entry.name.split("-")[0].split(".")[0].lower()
        if stem in NOT_INSTALLED or stem.replace("_", "-") in NOT_INSTALLED or entry.suffix == ".pth":
            continue
        (directory / entry.name).symlink_to(entry)
    return directory


def test_a_worker_needs_only_tensorflow_and_tensorflow_text(saved_model, tmp_path):
    """A Dataflow worker imports the job's module and runs the handler in a Python whose
    site-packages lacks KerasHub, transformers, torch, scikit-learn and SciPy (what ``pip install
    tensorflow tensorflow-text apache-beam`` does not install), and loads none of the model
    layers."""
    import os

    repo = pathlib.Path(__file__).parents[1]
    site_packages = worker_site_packages(tmp_path / "site-packages")
    environment = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{site_packages}"}
    result = subprocess.run([sys.executable, "-S", "-c", WORKER.replace("NOT_INSTALLED", repr(NOT_INSTALLED)),
                             str(saved_model)], capture_output=True, text=True, timeout=300, cwd=repo, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"


# --- Bad input: one line, status 2, nothing written ----------------------------------------------


@pytest.fixture(scope="module")
def other_models(kcbert_vocab, tmp_path_factory) -> dict:
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.text.vocab import read_vocab

    root = tmp_path_factory.mktemp("others")
    vocab = read_vocab(kcbert_vocab)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    ModelDir.write(str(root / "mlm"), config, vocab, build_model(config))
    return {
        "mlm": root / "mlm",
        "pair": write_classifier(root / "pair", kcbert_vocab, ["0", "1"], text_column="q1", text_pair="q2"),
        "regressor": write_classifier(root / "regressor", kcbert_vocab, None, text_column="text"),
    }


@pytest.mark.parametrize("case", ["masked-lm", "masked-lm-filter", "pair", "unknown-label", "regressor-filter", "missing-column",
                                  "both-filters", "no-model", "occupied"])
def test_bad_input_is_one_line_and_status_2_with_nothing_written(case, classifier, other_models, nsmc_rows, tmp_path,
                                                                 capsys):
    output = tmp_path / "out"
    argv = ["batch-predict", "--model", str(classifier), "--input", str(nsmc_rows), "--format", "tsv:document",
            "--output", str(output)]
    fragments = {
        "masked-lm": (["--model", str(other_models["mlm"])], "not a comment classifier"),
        "masked-lm-filter": (["--model", str(other_models["mlm"]), "--keep-labels", "none"], "not a comment classifier"),
        "pair": (["--model", str(other_models["pair"])], "sentence-pair classifier"),
        "unknown-label": (["--keep-labels", "none,spam"], "unknown label(s) ['spam']"),
        "regressor-filter": (["--model", str(other_models["regressor"]), "--drop-labels", "hate"], "is a regressor"),
        "missing-column": (["--format", "tsv:comments"], "the header has no column 'comments'"),
        "both-filters": (["--keep-labels", "none", "--drop-labels", "hate"], "pass one of them"),
        "no-model": (["--model", str(tmp_path / "nothing")], "no such directory"),
        "occupied": ([], "already holds"),
    }
    extra, fragment = fragments[case]
    if case == "occupied":
        output.mkdir()
        (output / "predictions-00000-of-00001.jsonl").write_text("earlier\n")
    code, out, err = run_cli(argv + extra, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("kcbert-tf batch-predict: error: ")]
    assert len(lines) == 1 and fragment in lines[0], err
    if case == "occupied":
        assert [p.name for p in output.iterdir()] == ["predictions-00000-of-00001.jsonl"]
        assert (output / "predictions-00000-of-00001.jsonl").read_text() == "earlier\n"
    else:
        assert not output.exists() or not any(output.iterdir())
