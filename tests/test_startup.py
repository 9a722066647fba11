"""A command imports only what it uses: `predict` on a model directory of ours loads neither
PyTorch, transformers nor Beam, nor scikit-learn, SciPy or soynlp (each costs seconds of start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

from kcbert_tf.model.config import BertConfig
from kcbert_tf.model.model_dir import ModelDir
from kcbert_tf.model.task_record import TaskRecord

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "좋", "##아", "싫", "##어"]
NOT_NEEDED = ("torch", "transformers", "apache_beam", "sklearn", "scipy", "soynlp")

RUN = """
import json, sys
from kcbert_tf.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def test_predict_imports_only_what_it_uses(tmp_path):
    from kcbert_tf.model.presets import build_model

    config = BertConfig(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16).with_labels(["neg", "pos"])
    record = TaskRecord("custom", config.head, 16, clean=True, labels=("neg", "pos"),
                        options={"columns": {"text": "text", "label": "label", "text_pair": None}})
    ModelDir.write(str(tmp_path / "model"), config, VOCAB, build_model(config), task=record)
    (tmp_path / "in.tsv").write_text("text\n좋아 ㅋㅋㅋㅋ\n싫어\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", RUN, "predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "in.tsv"),
         "--output", str(tmp_path / "out.tsv")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr[-2000:]
    assert [name for name in NOT_NEEDED if name in report["modules"]] == []
    assert len((tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()) == 3


def test_tensorflow_jobs_import_neither_sklearn_nor_scipy(tmp_path):
    """make-pretraining-data and train-tokenizer use TensorFlow without Keras: TensorFlow is
    imported with scikit-learn and SciPy hidden, and neither PyTorch nor transformers loads."""
    (tmp_path / "vocab.txt").write_text("".join(f"{token}\n" for token in VOCAB), encoding="utf-8")
    (tmp_path / "cleaned.txt").write_text("좋아 좋아\n싫어 좋아 싫어\n", encoding="utf-8")
    for argv in (
        ["make-pretraining-data", "--input", str(tmp_path / "cleaned.txt"), "--vocab", str(tmp_path / "vocab.txt"),
         "--output", str(tmp_path / "records"), "--max-seq-length", "8"],
        ["train-tokenizer", "--input", str(tmp_path / "cleaned.txt"), "--output", str(tmp_path / "vocab-out"),
         "--vocab-size", "20", "--limit-alphabet", "10", "--min-frequency", "1"],
    ):
        result = subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, text=True, timeout=300,
                                cwd=tmp_path)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["code"] == 0, result.stderr[-2000:]
        assert [name for name in ("torch", "transformers", "sklearn", "scipy") if name in report["modules"]] == [], argv[0]
    assert (tmp_path / "records" / "stats.json").exists()
    assert (tmp_path / "vocab-out" / "vocab.txt").exists()
