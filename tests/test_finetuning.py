"""`kcbert-tf finetune`: a tiny model learns the card's tasks beyond the majority class.

The start is a tiny model with the real KcBERT vocab (random weights: the tests are about the
fine-tuning machinery, not about pretraining).  References: the majority class and the variance
of the eval labels (what a model that learned nothing scores), transformers' tokenizer for the
ids when the saved model is scored again, numpy for the accuracy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, model_config, reference_tokenizer, shared_file
from kcbert_tf.cli import main as cli
from kcbert_tf.model.presets import load_model


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory, kcbert_vocab):
    """A model directory to fine-tune: the tiny config with the real 30,000-token vocab."""
    import keras

    from kcbert_tf.model.config import BertConfig
    from kcbert_tf.model.model_dir import ModelDir
    from kcbert_tf.model.presets import build_model
    from kcbert_tf.text.vocab import read_vocab

    keras.utils.set_random_seed(0)
    config = BertConfig.from_dict(model_config(vocab_size=30000, intermediate_size=128, max_position_embeddings=128))
    directory = tmp_path_factory.mktemp("init") / "model"
    ModelDir.write(str(directory), config, read_vocab(kcbert_vocab), build_model(config))
    return directory


def slice_of(source, path, first: int, count: int):
    """Lines ``first .. first + count - 1`` of a task file, with its header."""
    lines = source.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join([lines[0]] + lines[first : first + count]) + "\n", encoding="utf-8")
    return path


def tf_value(event) -> float:
    import tensorflow as tf

    return tf.make_ndarray(event.tensor_proto)


def finetune(*args) -> int:
    return cli(["finetune", *map(str, args)])


def test_a_single_sentence_task_learns_and_the_saved_model_scores_what_metrics_json_says(init_dir, tmp_path, kcbert_vocab):
    nsmc = shared_file("nsmc/train.txt")
    train, evaluation = slice_of(nsmc, tmp_path / "train.txt", 1, 1200), slice_of(nsmc, tmp_path / "eval.txt", 9001, 400)
    out = tmp_path / "nsmc"
    assert finetune("--task", "nsmc", "--train", train, "--eval", evaluation, "--init", init_dir, "--output", out,
                    "--epochs", "3", "--batch-size", "32", "--learning-rate", "1e-3") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    labels = [line.split("\t")[2] for line in evaluation.read_text().split("\n")[1:] if line]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    record = json.loads((out / "task.json").read_text())
    assert len(metrics["epochs"]) == 3 and record["labels"] == ["0", "1"] and "labels" not in metrics
    assert (record["task"], record["head"], record["max_seq_length"], record["clean"]) == ("nsmc", "sequence_classification", 50, True)
    assert metrics["best"]["accuracy"] > majority + 0.1, (metrics["best"], majority)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "logs", "metrics.json", "model.weights.h5", "task.json", "vocab.txt"]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "0", "1": "1"} and config["problem_type"] == "single_label_classification"

    # TensorBoard has the eval curve: one accuracy point per epoch, at the optimizer step.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "logs" / "validation"), size_guidance={"tensors": 0})
    events.Reload()
    steps_per_epoch = -(-1200 // 32)  # every example once per epoch: the last batch filled up
    points = [(event.step, float(tf_value(event))) for event in events.Tensors("accuracy")]
    assert [step for step, _ in points] == [steps_per_epoch * epoch for epoch in (1, 2, 3)]
    assert [value for _, value in points] == pytest.approx([epoch["accuracy"] for epoch in metrics["epochs"]])

    # Score the saved (best-epoch) model again: ids from transformers' tokenizer, accuracy by numpy.
    from kcbert_tf.text.cleaning import clean

    model = load_model(out)
    hf = reference_tokenizer(kcbert_vocab, tmp_path / "hf")
    texts = [clean(line.split("\t")[1]) for line in evaluation.read_text().split("\n")[1:] if line]
    batch = hf(texts, truncation=True, max_length=50, padding="max_length", return_tensors="np")
    logits = model.predict({
        "token_ids": batch["input_ids"].astype("int32"),
        "segment_ids": batch["token_type_ids"].astype("int32"),
        "padding_mask": batch["attention_mask"].astype("int32"),
    }, verbose=0)
    accuracy = float(np.mean(logits.argmax(-1) == np.asarray(labels, int)))
    assert accuracy == pytest.approx(metrics["best"]["accuracy"], abs=1.5 / len(labels))

    # `predict` on the eval file: one line per input, in order, the same predictions.
    assert cli(["predict", "--model", str(out), "--input", str(evaluation), "--output", str(tmp_path / "p.tsv")]) == 0
    lines = (tmp_path / "p.tsv").read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert lines[0].split("\t") == ["id", "document", "label", "predicted", "p_0", "p_1"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[0] for row in rows] == [line.split("\t")[0] for line in evaluation.read_text().split("\n")[1:] if line]
    predicted = np.asarray([int(row[3]) for row in rows])
    assert np.mean(predicted == logits.argmax(-1)) > 0.99  # ids of ours vs transformers' may tie-break apart
    probabilities = np.asarray([[float(row[4]), float(row[5])] for row in rows])
    assert np.allclose(probabilities.sum(1), 1, atol=2e-4) and (probabilities.argmax(1) == predicted).all()


@pytest.mark.slow
def test_the_texts_are_packed_once_per_run_however_many_epochs(init_dir, tmp_path, monkeypatch):
    """Every text goes through clean -> tokenize -> pack once (counted at the preprocessor's
    ``pack``), not once an epoch; the evaluation's too."""
    from kcbert_tf.model.text_classifier_preprocessor import KcBertTextClassifierPreprocessor

    packed = []
    pack = KcBertTextClassifierPreprocessor.pack

    def counted(self, texts, pairs=None, **kwargs):
        packed.extend(texts.numpy().tolist())
        return pack(self, texts, pairs, **kwargs)

    monkeypatch.setattr(KcBertTextClassifierPreprocessor, "pack", counted)
    source = shared_file("nsmc/train.txt")
    train, dev = slice_of(source, tmp_path / "t.txt", 1, 300), slice_of(source, tmp_path / "d.txt", 301, 100)
    out = tmp_path / "once"
    assert finetune("--task", "nsmc", "--train", train, "--eval", dev, "--init", init_dir, "--output", out,
                    "--epochs", "3", "--batch-size", "32") == 0
    skipped = json.loads((out / "metrics.json").read_text())["skipped_empty"]
    assert len(packed) == 300 - skipped["train"] + 100 - skipped["eval"]


def test_a_sentence_pair_task_learns_beyond_the_majority_class(init_dir, tmp_path):
    source = shared_file("question-pair/train.tsv")
    dev = shared_file("question-pair/dev.tsv")
    out = tmp_path / "qp"
    assert finetune("--task", "question-pair", "--train", slice_of(source, tmp_path / "t.tsv", 1, 2000), "--eval", dev,
                    "--init", init_dir, "--output", out, "--epochs", "3", "--batch-size", "32", "--learning-rate", "1e-3") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    labels = [line.split("\t")[2] for line in dev.read_text().split("\n")[1:] if line]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    assert metrics["best"]["accuracy"] > majority + 0.03, (metrics["best"], majority)


@pytest.mark.slow
def test_a_regression_task_on_two_replicas_learns_a_correlation(init_dir, tmp_path):
    """Without pretraining, 2,000 KorSTS pairs teach a tiny model a weak but real signal: a
    model that learned nothing correlates about 0 +- 0.05 (1 / sqrt(400)) with the scores."""
    train = slice_of(shared_file("korsts/train.tsv"), tmp_path / "t.tsv", 1, 2000)
    dev = slice_of(shared_file("korsts/dev.tsv"), tmp_path / "d.tsv", 1, 400)
    out = tmp_path / "sts"
    result = subprocess.run(
        [sys.executable, "-m", "kcbert_tf.cli", "finetune", "--task", "korsts", "--train", str(train), "--eval", str(dev),
         "--init", str(init_dir), "--output", str(out), "--epochs", "4", "--batch-size", "32", "--learning-rate", "1e-3",
         "--cpu-replicas", "2"],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    scores = [float(line.split("\t")[4]) for line in dev.read_text().split("\n")[1:] if line]
    assert metrics["replicas"] == 2 and json.loads((out / "task.json").read_text())["labels"] is None
    assert metrics["best"]["spearman"] > 0.1 and metrics["best"]["pearson"] > 0.1, metrics["best"]
    assert len(scores) == metrics["eval_examples"] == 400
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["num_labels"] == 1


def test_bad_input_is_one_clear_line_and_nothing_is_written(init_dir, tmp_path, capsys):
    good = tmp_path / "good.tsv"
    good.write_text("document\tlabel\n" + "좋아요\t1\n싫어요\t0\n" * 40, encoding="utf-8")
    unseen = tmp_path / "unseen.tsv"
    unseen.write_text("document\tlabel\n좋아요\t1\n그저그래\t2\n", encoding="utf-8")
    words = tmp_path / "words.tsv"
    words.write_text("document\tlabel\n좋아요\thigh\n", encoding="utf-8")
    cases = [
        (["--task", "sst2"], "unknown task 'sst2'"),
        (["--task", "nsmc", "--eval", unseen], "label(s) ['2'] never occur in"),
        (["--task", "nsmc", "--text-column", "review"], "no column 'review'; the header has ['document', 'label']"),
        (["--task", "custom", "--text-column", "document", "--label-column", "label", "--regression", "--train", words],
         "words.tsv:2: label 'high' is not a number"),
        (["--task", "nsmc", "--init", tmp_path], "lacks config.json"),
    ]
    for extra, message in cases:
        argv = {"--train": good, "--eval": good, "--init": init_dir, "--output": tmp_path / "out"}
        flags = list(extra)
        for flag, value in argv.items():
            if flag not in flags:
                flags += [flag, value]
        assert finetune(*flags) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("kcbert-tf finetune: error:"), err
        assert message in err[-1], err[-1]
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("architecture", ["BertForMaskedLM", "BertForSequenceClassification"])
def test_init_from_a_hugging_face_directory_starts_from_its_encoder(tmp_path, architecture):
    """``--init`` takes a transformers checkpoint as it is: with learning rate 0 the fine-tuned
    model's encoder must give transformers' own hidden states and pooled output for it."""
    import torch
    from transformers import BertModel

    from kcbert_tf.conversion.hugging_face import verification_ids
    from test_hugging_face import hf_directory, small_vocab

    source = hf_directory(tmp_path / "hf", architecture=architecture)
    vocab = small_vocab(201)
    data = tmp_path / "data.tsv"
    data.write_text("document\tlabel\n" + "".join(f"{vocab[5 + i]}{vocab[9 + i]}\t{i % 2}\n" for i in range(64)), encoding="utf-8")
    out = tmp_path / "out"
    assert finetune("--task", "nsmc", "--train", data, "--eval", data, "--init", source, "--output", out,
                    "--epochs", "1", "--batch-size", "16", "--learning-rate", "0") == 0
    model = load_model(out)
    ids = verification_ids(vocab, 64)
    mask = (ids != 0).astype("int32")
    ours = model.backbone.predict(
        {"token_ids": ids.astype("int32"), "segment_ids": np.zeros_like(mask), "padding_mask": mask}, verbose=0
    )
    reference = BertModel.from_pretrained(str(source)).eval()
    with torch.no_grad():
        theirs = reference(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype("int64")))
    assert np.abs(ours["sequence_output"] - theirs.last_hidden_state.numpy()).max() < 1e-4
    if architecture == "BertForSequenceClassification":  # BertForMaskedLM checkpoints have no pooler
        assert np.abs(ours["pooled_output"] - theirs.pooler_output.numpy()).max() < 1e-4
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "0", "1": "1"}


def test_a_hugging_face_start_that_transformers_disagrees_with_ends_the_run_before_writing(tmp_path, monkeypatch,
                                                                                            capsys):
    """The check of a Hugging Face ``--init`` runs beside training (transformers in a child
    process) and still stops the run, with nothing written, when the two disagree."""
    from kcbert_tf.conversion import hugging_face
    from test_hugging_face import hf_directory, small_vocab

    source = hf_directory(tmp_path / "hf", architecture="BertForMaskedLM")
    vocab = small_vocab(201)
    data = tmp_path / "data.tsv"
    data.write_text("document\tlabel\n" + "".join(f"{vocab[5 + i]}\t{i % 2}\n" for i in range(32)), encoding="utf-8")
    monkeypatch.setattr(hugging_face, "TOLERANCE", -1.0)  # no difference can pass
    assert finetune("--task", "nsmc", "--train", data, "--eval", data, "--init", source, "--output", tmp_path / "out",
                    "--epochs", "1", "--batch-size", "16") == 2
    err = capsys.readouterr().err
    assert "verification failed: the Keras and transformers last hidden states differ" in err, err[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["data.tsv", "hf"]


@pytest.mark.slow
@pytest.mark.parametrize("task, buckets", [("nsmc", "16,32"), ("word-tags", "auto")])
def test_one_and_two_replicas_fine_tune_to_the_same_weights(dropout_free_model_dir, tmp_path, task, buckets):
    """N replicas train like 1 (DESIGN's fixed point), for a sentence task and for NER (whose loss
    is the mean over the global batch's labelled tokens, however they fall on the replicas): with
    dropout 0, the same seed, batch and steps, the weights agree to float32 rounding.  Before the
    training order was drawn up front, the distributed dataset shuffled anew and trained on
    other batches (max |delta| 6e-3).  The sentence case pads to bucket widths, as on a TPU, and
    its 90 reviews leave each epoch's last batch 10 real rows and 6 fillers, split unevenly over
    the replicas."""
    if task == "nsmc":
        data = slice_of(shared_file("nsmc/train.txt"), tmp_path / "data.tsv", 1, 90)
    else:
        data = REPO / "tests" / "data" / "naver_ner_sample.tsv"
    outs = {}
    for replicas in (1, 2):
        outs[replicas] = tmp_path / f"r{replicas}"
        result = subprocess.run(
            [sys.executable, "-m", "kcbert_tf.cli", "finetune", "--task", task, "--train", str(data), "--eval", str(data),
             "--init", str(dropout_free_model_dir), "--output", str(outs[replicas]), "--epochs", "2",
             "--batch-size", "16", "--learning-rate", "1e-3", "--cpu-replicas", str(replicas),
             "--length-buckets", buckets],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]

    one, two = (load_model(outs[n]) for n in (1, 2))
    start = load_model(dropout_free_model_dir)
    moved = max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(one.backbone.weights, start.backbone.weights))
    differ = max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(one.weights, two.weights))
    assert moved > 1e-3 and differ < 1e-5, (moved, differ)
