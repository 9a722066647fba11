"""KorQuAD fine-tuning end to end: the eval split made in memory by article, EM/F1 each epoch,
predictions.json, `predict` giving the same answers, export to transformers'
BertForQuestionAnswering and back.  (Features, decoding and the metric: tests/test_qa_data.py.)"""

from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA, shared_file
from kcbert_tf.cli import main as cli


@pytest.fixture(scope="module")
def korquad():
    return shared_file("korquad/KorQuAD_v1.0_dev.json")


@pytest.mark.slow
def test_korquad_fine_tunes_answers_predicts_and_exports(korquad, dropout_free_model_dir, tmp_path):
    from kcbert_tf.tasks.qa.squad_files import read_squad, split_by_article

    out = tmp_path / "qa"
    assert cli(["finetune", "--task", "korquad", "--train", str(korquad), "--eval-split", "0.05", "--limit-train", "200",
                "--init", str(dropout_free_model_dir), "--output", str(out), "--epochs", "1", "--batch-size", "16",
                "--learning-rate", "1e-3", "--max-seq-length", "96", "--doc-stride", "48", "--max-query-length", "24"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    record = json.loads((out / "task.json").read_text(encoding="utf-8"))
    assert (record["task"], record["head"], record["max_seq_length"]) == ("korquad", "question_answering", 96)
    assert record["options"] == {"doc_stride": 48, "max_query_length": 24, "max_answer_length": 30}
    assert record["segments"] == 2
    assert "head" not in metrics and set(metrics["best"]) >= {"exact_match", "f1"}
    assert 0 <= metrics["best"]["exact_match"] <= metrics["best"]["f1"] <= 100

    # The eval side is whole articles of the file, as split_by_article (seed 42) draws them.
    _, held_out = split_by_article(read_squad(korquad, training=False).examples, 0.05, 42)
    predictions = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    assert list(predictions) == [example.id for example in held_out] == [e.id for e in held_out]
    assert metrics["eval_examples"] == len(held_out) and len({e.title for e in held_out}) >= 1
    for example in held_out:
        assert predictions[example.id] in example.context  # a span of its own context

    from kcbert_tf.model.presets import load_model
    from kcbert_tf.tasks.qa.task import predict_answers

    answerer = load_model(out)  # its preprocessor holds the windows it was trained with
    assert (answerer.preprocessor.doc_stride, answerer.preprocessor.max_query_length) == (48, 24)
    # Batched as the evaluation was (batch 16): the same sums in the same order.  After one epoch
    # of 200 questions many spans score within float noise of each other, so other batches may
    # pick others.
    assert predict_answers(answerer, held_out, batch_size=16) == predictions

    assert cli(["export-hf", "--model-dir", str(out), "--output", str(tmp_path / "hf")]) == 0
    from transformers import AutoModelForQuestionAnswering

    assert type(AutoModelForQuestionAnswering.from_pretrained(str(tmp_path / "hf"))).__name__ == "BertForQuestionAnswering"
    assert cli(["import-hf", "--input", str(tmp_path / "hf"), "--output", str(tmp_path / "again")]) == 0


def test_bad_qa_input_is_one_line(dropout_free_model_dir, tmp_path, capsys):
    (tmp_path / "not.json").write_text("{not json", encoding="utf-8")
    cases = [
        (["--task", "korquad", "--train", str(tmp_path / "not.json"), "--eval-split", "0.1"], "not.json"),
        (["--task", "nsmc", "--train", str(tmp_path / "not.json"), "--eval-split", "0.1"], "--task nsmc does not read --eval-split"),
        (["--task", "korquad", "--train", str(tmp_path / "not.json")], "--eval is required"),
        (["--task", "korquad", "--train", str(tmp_path / "not.json"), "--eval-split", "1.5"], "must be between 0 and 1"),
    ]
    korquad = SHARED_DATA / "korquad" / "KorQuAD_v1.0_dev.json"
    if korquad.exists():  # the preset's 300 positions, a 128-position model
        cases.append((["--task", "korquad", "--train", str(korquad), "--eval-split", "0.1"],
                      "--max-seq-length 300 (the korquad setting or yours) is more than max_position_embeddings 128"))
    for argv, message in cases:
        assert cli(["finetune", *argv, "--init", str(dropout_free_model_dir), "--output", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("kcbert-tf finetune: error:"), err
        assert not (tmp_path / "out").exists()
