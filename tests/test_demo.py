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
                      "fill-mask", "finetune", "predict", "export-hf", "export-savedmodel", "batch-predict"]
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
    served = table[-3].split()
    assert served[0] == "export-savedmodel" and served[4:8] == [line.split("\t")[1] for line in predictions[1:]]

    # batch-predict labelled the cleaned corpus with that SavedModel: every comment once, and the
    # kept records are the comments labelled 1.
    import json

    stats = json.loads((out / "labelled" / "stats.json").read_text(encoding="utf-8"))
    cleaned = json.loads((out / "cleaned" / "stats.json").read_text(encoding="utf-8"))
    assert stats["predicted"] == stats["lines_read"] == cleaned["kept"]
    rows = [json.loads(line) for path in sorted((out / "labelled").glob("predictions-*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]
    assert stats["kept"] == sum(row["label"] == "1" for row in rows) == stats["labels"].get("1", 0)
