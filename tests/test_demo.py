"""`make demo`'s stages wired together (`kcbert-tf demo`), on a short pretraining run."""

from __future__ import annotations

import os

from kcbert_tf.cli import main as cli


def test_the_demo_runs_every_stage_and_transformers_loads_both_exports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["demo", "--output", str(out), "--pretrain-steps", "20"]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.rindex("stage "):].splitlines()
    stages = [line.split()[0] for line in table[1:-1]]
    assert stages == ["preprocess", "train-tokenizer", "make-pretraining-data", "pretrain", "export-hf",
                      "fill-mask", "finetune", "predict", "export-hf", "export-savedmodel"]
    assert table[-1].startswith("total")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    AutoModelForMaskedLM.from_pretrained(str(out / "hf"))
    classifier = AutoModelForSequenceClassification.from_pretrained(str(out / "sentiment-hf"))
    assert classifier.config.id2label == {0: "0", 1: "1"}
    AutoTokenizer.from_pretrained(str(out / "sentiment-hf"))
    predictions = (out / "predictions.tsv").read_text(encoding="utf-8").splitlines()
    assert predictions[0].split("\t") == ["document", "predicted", "p_0", "p_1"] and len(predictions) == 5

    # The SavedModel, fed the raw sentences, predicts what `predict` (Python clean(), Keras) does.
    served = table[-2].split()
    assert served[0] == "export-savedmodel" and served[4:8] == [line.split("\t")[1] for line in predictions[1:]]
