"""LiteRT exports and serving them without TensorFlow.

The reference is transformers: a seeded random ``BertForSequenceClassification`` on the real
KcBERT vocab, brought in with ``import-hf``, exported with ``export-litert`` at fp32 and int8 and
served with ``predict``; its probabilities must be transformers' (PyTorch, on KcBERT's ``clean()``
and ``AutoTokenizer``'s ids) within float rounding at fp32, and within the export's stated bound at
int8, for real comments given raw.  The serving process imports no TensorFlow, Keras or PyTorch.
"""

from __future__ import annotations

import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from conftest import reference_tokenizer
from kcbert_tf.cli import main as cli
from kcbert_tf.text.cleaning import clean

LABELS = ["부정", "중립", "긍정"]
LENGTH = 40


def run_cli(*argv) -> None:
    assert cli([str(arg) for arg in argv]) == 0, argv


@pytest.fixture(scope="module")
def transformers_classifier(kcbert_vocab, tmp_path_factory):
    """A seeded tiny transformers classifier with the real vocab, saved as a user has it."""
    import torch
    import transformers

    vocab = kcbert_vocab.read_text(encoding="utf-8").splitlines()
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=300,
                                     id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    torch.manual_seed(3)
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():  # logits far enough from 0 that the probabilities say something
        model.classifier.weight.mul_(20.0)
    directory = tmp_path_factory.mktemp("hf")
    model.save_pretrained(directory)
    reference = reference_tokenizer(kcbert_vocab, directory)
    return model, reference, directory


@pytest.fixture(scope="module")
def exports(transformers_classifier, tmp_path_factory):
    """import-hf of it, with the record's length set to LENGTH, and its LiteRT exports."""
    _, _, hf_dir = transformers_classifier
    root = tmp_path_factory.mktemp("exports")
    run_cli("import-hf", "--input", hf_dir, "--output", root / "ours")
    record = json.loads((root / "ours" / "task.json").read_text(encoding="utf-8"))
    (root / "ours" / "task.json").write_text(json.dumps({**record, "max_seq_length": LENGTH}), encoding="utf-8")
    for precision in ("fp32", "int8"):
        run_cli("export-litert", "--model", root / "ours", "--output", root / precision, "--precision", precision)
    return root


@pytest.fixture(scope="module")
def reviews(news_comments, tmp_path_factory):
    """Raw real comments as a predict input (a TSV with a ``text`` column), an empty one and the
    longest (cut to LENGTH) among them."""
    raw = [line.replace("\t", " ") for line in news_comments.read_text(encoding="utf-8").split("\n")[:400]]
    texts = raw[:150] + [" ", max(raw, key=len)]
    path = tmp_path_factory.mktemp("input") / "comments.tsv"
    path.write_text("id\ttext\n" + "".join(f"{i}\t{text}\n" for i, text in enumerate(texts)), encoding="utf-8")
    return texts, path


def transformers_probabilities(transformers_classifier, texts) -> np.ndarray:
    import torch

    model, reference, _ = transformers_classifier
    encoded = reference([clean(text) for text in texts], truncation=True, max_length=LENGTH, padding=True,
                        return_tensors="pt")
    with torch.inference_mode():
        return torch.softmax(model(**encoded).logits, -1).numpy()


def read_predictions(path: pathlib.Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.mark.slow
@pytest.mark.parametrize("precision, bound", [("fp32", 1e-4), ("int8", None)])
def test_predict_on_a_litert_directory_gives_transformers_probabilities(
    transformers_classifier, exports, reviews, precision, bound, tmp_path
):
    from kcbert_tf.litert.export import INT8_BOUND

    texts, path = reviews
    run_cli("predict", "--model", exports / precision, "--input", path, "--output", tmp_path / "out.tsv",
            "--batch-size", "16", "--threads", "2")
    rows = read_predictions(tmp_path / "out.tsv")
    assert [row["id"] for row in rows] == [str(i) for i in range(len(texts))]
    assert rows[-2]["predicted"] == "" and all(row["predicted"] for i, row in enumerate(rows) if i != len(rows) - 2)
    kept = [i for i in range(len(texts)) if clean(texts[i])]
    expected = transformers_probabilities(transformers_classifier, [texts[i] for i in kept])
    got = np.array([[float(rows[i][f"p_{name}"]) for name in LABELS] for i in kept])
    # The file holds 4 decimals: fp32 agrees to its rounding; int8 within the export's bound.
    assert np.abs(got - expected).max() <= (bound or INT8_BOUND) + 5e-5
    agreement = np.mean([rows[i]["predicted"] == LABELS[int(p.argmax())] for i, p in zip(kept, expected)])
    assert agreement >= (1.0 if precision == "fp32" else 0.9)
    info = json.loads((exports / precision / "litert.json").read_text(encoding="utf-8"))
    assert info["precision"] == precision and info["verification"]["ids_equal_transformers"]


@pytest.mark.slow
def test_the_runner_on_transformers_ids_gives_transformers_logits(transformers_classifier, exports, news_comments):
    """The model file alone (no tokenizer of ours): batches of every length, resized in turn."""
    import torch

    from kcbert_tf.litert.runner import LiteRtRunner
    from kcbert_tf.tasks.length_batches import predict_by_length

    model, reference, _ = transformers_classifier
    texts = [clean(line) for line in news_comments.read_text(encoding="utf-8").split("\n")[:300]]
    encoded = reference(texts, truncation=True, max_length=LENGTH, padding=True, return_tensors="np")
    inputs = {"token_ids": encoded["input_ids"], "segment_ids": encoded["token_type_ids"],
              "padding_mask": encoded["attention_mask"]}
    runner = LiteRtRunner.from_file(str(exports / "fp32" / "model.tflite"), threads=1)
    got = predict_by_length(runner, inputs, batch_size=7)
    with torch.inference_mode():
        expected = model(**{key: torch.from_numpy(value) for key, value in encoded.items()}).logits.numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    delegation = runner.delegation()
    assert delegation["delegated"].get("FULLY_CONNECTED", 0) >= 2 * 6  # every dense layer in XNNPACK


RUN = """
import json, sys
from kcbert_tf.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


@pytest.mark.slow
def test_serving_a_litert_directory_imports_neither_tensorflow_keras_nor_torch(exports, reviews, tmp_path):
    _, path = reviews
    result = subprocess.run([sys.executable, "-c", RUN, "predict", "--model", str(exports / "int8"), "--input",
                             str(path), "--output", str(tmp_path / "out.tsv")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr[-2000:]
    loaded = [name for name in ("tensorflow", "keras", "keras_hub", "tensorflow_text", "torch", "transformers",
                                "apache_beam", "sklearn", "scipy") if name in report["modules"]]
    assert loaded == []
    assert {"ai_edge_litert", "tokenizers"} <= set(report["modules"])


@pytest.mark.slow
def test_litert_and_keras_predict_write_the_same_file(exports, reviews, tmp_path):
    """Same columns, same rows, same labels, probabilities within fp32 rounding (4 decimals)."""
    _, path = reviews
    run_cli("predict", "--model", exports / "ours", "--input", path, "--output", tmp_path / "keras.tsv")
    run_cli("predict", "--model", exports / "fp32", "--input", path, "--output", tmp_path / "litert.tsv")
    keras_rows, litert_rows = read_predictions(tmp_path / "keras.tsv"), read_predictions(tmp_path / "litert.tsv")
    assert list(keras_rows[0]) == list(litert_rows[0])
    assert [row["predicted"] for row in keras_rows] == [row["predicted"] for row in litert_rows]
    for name in LABELS:
        a = np.array([float(row[f"p_{name}"] or "nan") for row in keras_rows])
        b = np.array([float(row[f"p_{name}"] or "nan") for row in litert_rows])
        np.testing.assert_allclose(a, b, atol=1.5e-4)


@pytest.mark.slow
def test_a_failed_verification_writes_nothing(exports, tmp_path, monkeypatch, capsys):
    from kcbert_tf.litert import export

    monkeypatch.setattr(export, "INT8_BOUND", 0.0)
    assert cli(["export-litert", "--model", str(exports / "ours"), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "verification failed" in err and "--precision fp32" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("head", ["token_classification", "question_answering"])
def test_token_and_span_heads_export_verified_against_keras(kcbert_vocab, head, tmp_path):
    from conftest import randomize
    from kcbert_tf.litert.litert_dir import LiteRtDir
    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.model.task_record import TaskRecord
    from kcbert_tf.text.vocab import read_vocab

    vocab = read_vocab(kcbert_vocab)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    labels = ["O", "B-PS", "I-PS"] if head == "token_classification" else None
    config = config.for_head(head, labels)
    model = build_model(config)
    randomize(model)
    ModelDir.write(str(tmp_path / "model"), config, vocab, model, task=TaskRecord.default(head, 64, labels))
    run_cli("export-litert", "--model", tmp_path / "model", "--output", tmp_path / "litert")
    litert = LiteRtDir.read(tmp_path / "litert")
    assert litert.info["head"] == head and litert.info["verification"]["max_difference"] <= 0.05
    ids = np.array([[2, 100, 200, 300, 3, 0]], np.int32)
    outputs = litert.runner(threads=1)({"token_ids": ids, "segment_ids": 0 * ids, "padding_mask": (ids > 0) * 1})
    assert outputs.shape == ((1, 6, 3) if labels else (1, 6, 2))
    assert cli(["predict", "--model", str(tmp_path / "litert"), "--input", str(tmp_path / "x")]) == 2


def test_bad_litert_directories_and_flags_are_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "model.tflite").write_bytes(b"")
    assert cli(["predict", "--model", str(tmp_path / "empty"), "--input", "x.tsv"]) == 2
    assert "config.json" in capsys.readouterr().err
    assert cli(["predict", "--model", str(tmp_path / "empty"), "--input", "x.tsv", "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    assert cli(["export-litert", "--model", str(tmp_path), "--output", str(tmp_path / "o"), "--precision", "int4"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_the_lean_serving_install_predicts_from_a_litert_directory(exports, reviews, transformers_classifier, tmp_path):
    """``pip install 'kcbert-tf[litert]'`` of the wheel into a fresh target: no TensorFlow, torch or
    KerasHub there, and ``predict`` from it (an interpreter that sees nothing else) gives
    transformers' probabilities."""
    import shutil

    from test_wheel import REPO, _run, _sources

    source, dist, target = tmp_path / "source", tmp_path / "dist", tmp_path / "site"
    shutil.copytree(REPO, source, ignore=_sources)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
          str(dist), str(source)], cwd=tmp_path)
    (wheel,) = dist.glob("kcbert_tf-*.whl")
    _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(target),
          f"{wheel}[litert]"], cwd=tmp_path, timeout=900)
    installed = {path.name for path in target.iterdir()}
    assert {"kcbert_tf", "ai_edge_litert", "tokenizers"} <= installed
    assert not installed & {"tensorflow", "tensorflow_text", "torch", "keras", "keras_hub", "transformers"}

    texts, path = reviews
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    python = getattr(sys, "_base_executable", sys.executable)
    _run([python, "-S", "-s", "-c", RUN, "predict", "--model", str(exports / "fp32"), "--input", str(path),
          "--output", str(tmp_path / "out.tsv")], cwd=tmp_path, env=env)
    rows = read_predictions(tmp_path / "out.tsv")
    kept = [i for i in range(len(texts)) if clean(texts[i])]
    expected = transformers_probabilities(transformers_classifier, [texts[i] for i in kept])
    got = np.array([[float(rows[i][f"p_{name}"]) for name in LABELS] for i in kept])
    assert np.abs(got - expected).max() <= 1.5e-4


@pytest.mark.slow
def test_batch_predict_serves_a_litert_directory_as_predict_does(exports, reviews, tmp_path):
    """Beam's RunInference with the LiteRT handler: every line once, the labels and probabilities
    of ``predict`` on the same directory, and no model exported first."""
    texts, path = reviews
    run_cli("predict", "--model", exports / "int8", "--input", path, "--output", tmp_path / "predict.tsv")
    reference = read_predictions(tmp_path / "predict.tsv")
    run_cli("batch-predict", "--model", exports / "int8", "--input", path, "--format", "tsv:text", "--output",
            tmp_path / "labelled", "--chunk-mb", "0.002", "--batch-size", "8")
    rows = sorted((json.loads(line) for file in sorted((tmp_path / "labelled").glob("predictions-*.jsonl"))
                   for line in file.read_text(encoding="utf-8").splitlines()), key=lambda row: row["line"])
    assert [row["line"] for row in rows] == list(range(2, len(texts) + 2))
    assert [row["label"] or "" for row in rows] == [want["predicted"] for want in reference]
    labelled = [(row, want) for row, want in zip(rows, reference) if want["predicted"]]
    got = np.array([[row["probabilities"][name] for name in LABELS] for row, _ in labelled])
    want = np.array([[float(want[f"p_{name}"]) for name in LABELS] for _, want in labelled])
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert not (tmp_path / "labelled" / "model").exists()


@pytest.mark.slow
def test_int8_accuracy_on_held_out_nsmc_is_within_half_a_point_of_fp32(kcbert_vocab, tmp_path):
    """A classifier fine-tuned here on the shared NSMC sample from a transformers start: its int8
    LiteRT export's accuracy on held-out reviews is within 0.5 points of its fp32 export's (and
    the fp32 export's labels are the Keras model's)."""
    import random

    import torch
    import transformers

    from conftest import shared_file

    nsmc = shared_file("nsmc/train.txt")
    header, *rows = nsmc.read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(rows)
    (tmp_path / "train.tsv").write_text("\n".join([header, *rows[:4000]]) + "\n", encoding="utf-8")
    (tmp_path / "held-out.tsv").write_text("\n".join([header, *rows[4000:6000]]) + "\n", encoding="utf-8")

    vocab = kcbert_vocab.read_text(encoding="utf-8").splitlines()
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=512, max_position_embeddings=300)
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "start")
    reference_tokenizer(kcbert_vocab, tmp_path / "start")
    run_cli("finetune", "--task", "nsmc", "--init", tmp_path / "start", "--train", tmp_path / "train.tsv", "--eval",
            tmp_path / "held-out.tsv", "--output", tmp_path / "nsmc", "--epochs", "2", "--learning-rate", "1e-3",
            "--seed", "1")
    accuracy = {}
    for name in ("keras", "fp32", "int8"):
        model = tmp_path / "nsmc"
        if name != "keras":
            model = tmp_path / name
            run_cli("export-litert", "--model", tmp_path / "nsmc", "--output", model, "--precision", name)
        run_cli("predict", "--model", model, "--input", tmp_path / "held-out.tsv", "--output", tmp_path / f"{name}.tsv")
        predictions = read_predictions(tmp_path / f"{name}.tsv")
        accuracy[name] = np.mean([row["predicted"] == row["label"] for row in predictions])
    print(f"held-out NSMC accuracy: {accuracy}")
    assert accuracy["keras"] > 0.6  # it learned something: the comparison means something
    assert accuracy["fp32"] == accuracy["keras"]
    assert abs(accuracy["int8"] - accuracy["fp32"]) <= 0.005
