"""The wheel as pip users get it: built from the checkout, installed outside it, it pretrains the
tiny model from another directory with the packaged configs (``--config kcbert-tiny
--train-config pretrain-tiny``)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

#: Not copied for the build: what .gitignore leaves out (a stale build/lib would reach the wheel).
_NOT_SOURCES = {".git", ".venv", ".venv-tf2.20", "build", "dist", "demo-output", ".whl", ".pytest_cache"}


def _sources(directory: str, names: list[str]) -> set[str]:
    top = pathlib.Path(directory) == REPO
    return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in _NOT_SOURCES)}


def _run(args: list[str], cwd: pathlib.Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``args`` run to the end (killed at ``timeout``), its output in the failure message."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _tiny_vocab(corpus: pathlib.Path, size: int) -> list[str]:
    """A WordPiece vocab of exactly ``size`` tokens (kcbert-tiny's vocab_size): the specials, each
    character of ``corpus`` alone and as ``##`` continuation, then unused slots."""
    chars = sorted({c for c in corpus.read_text(encoding="utf-8") if not c.isspace()})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [t for c in chars for t in (c, f"##{c}")][: size - len(tokens)]
    return tokens + [f"[unused{i}]" for i in range(size - len(tokens))]


@pytest.mark.slow
def test_the_installed_wheel_pretrains_from_another_directory(tmp_path):
    source, dist, site, work = (tmp_path / name for name in ("source", "dist", "site", "work"))
    shutil.copytree(REPO, source, ignore=_sources)  # the checkout as it is now, built apart
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(dist), str(source)], cwd=tmp_path)
    (wheel,) = dist.glob("kcbert_tf-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for config in (source / "configs").glob("*.json"):
        assert f"kcbert_tf/configs/{config.name}" in names, config.name
    assert "kcbert_tf/configs/kcbert-base.json" in names
    assert "kcbert_tf/resources/demo_comments.txt" in names
    assert not [name for name in names if name.startswith("configs/")]  # not a top-level package
    modules = {
        path.relative_to(source).as_posix()
        for root in ("kcbert_tf", "beam_jobs")
        for path in (source / root).rglob("*.py")
    }
    assert modules - names == set()  # every module of every subpackage, new ones included

    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
          str(wheel)], cwd=tmp_path)
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    python = [sys.executable]

    # The installed package, not the checkout (whose editable install the venv also holds).
    where = _run(python + ["-c", (
        "import json, kcbert_tf, kcbert_tf.configs\n"
        "from kcbert_tf.config_files import resolve_config\n"
        "print(json.dumps([kcbert_tf.__file__, kcbert_tf.configs.__file__,"
        " resolve_config('kcbert-tiny', flag='--config'),"
        " resolve_config('pretrain-tiny.json', flag='--train-config')]))"
    )], cwd=work, env=env)
    package, configs, tiny, recipe = map(pathlib.Path, json.loads(where.stdout.splitlines()[-1]))
    for path in (package, configs, tiny, recipe):
        assert path.is_relative_to(site) and not path.is_relative_to(REPO), path
    assert tiny.read_bytes() == (REPO / "configs" / "kcbert-tiny.json").read_bytes()
    assert recipe.read_bytes() == (REPO / "configs" / "pretrain-tiny.json").read_bytes()

    # Tiny data (vocab of kcbert-tiny's 3,000 tokens, 64 ids a record), then pretrain on it.
    corpus = site / "kcbert_tf" / "resources" / "demo_comments.txt"
    model_config = json.loads(tiny.read_text())
    (work / "vocab.txt").write_text("\n".join(_tiny_vocab(corpus, model_config["vocab_size"])) + "\n", encoding="utf-8")
    cli = python + ["-m", "kcbert_tf.cli"]
    _run(cli + ["make-pretraining-data", "--input", str(corpus), "--vocab", "vocab.txt", "--output", "data",
                "--max-seq-length", "64", "--num-shards", "1"], cwd=work, env=env)
    _run(cli + ["pretrain", "--config", "kcbert-tiny", "--train-config", "pretrain-tiny", "--data", "data",
                "--model-dir", "run", "--steps", "4", "--batch-size", "4"], cwd=work, env=env, timeout=600)

    state = json.loads((work / "run" / "training_state.json").read_text())
    assert state["steps"] == 4
    expected = json.loads(recipe.read_text())  # the packaged recipe, with the flags' overrides
    for field in ("learning_rate", "weight_decay", "mask_rate", "log_every", "mixed_precision", "seed"):
        assert state["train_config"][field] == expected[field], field
    assert (state["train_config"]["train_steps"], state["train_config"]["batch_size"]) == (4, 4)
    written = json.loads((work / "run" / "config.json").read_text())
    for field in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        assert written[field] == model_config[field], field
    assert (work / "run" / "model.weights.h5").exists()

    # The installed batch-predict: fine-tune the model a little on the packaged sentiment sample,
    # then label the packaged comments with it, on Beam, from the installed package alone.
    resources = site / "kcbert_tf" / "resources"
    _run(cli + ["finetune", "--task", "nsmc", "--train", str(resources / "demo_sentiment_train.tsv"), "--eval",
                str(resources / "demo_sentiment_eval.tsv"), "--init", "run", "--output", "sentiment", "--epochs", "1",
                "--batch-size", "16", "--max-seq-length", "32"], cwd=work, env=env, timeout=600)
    labelled = _run(cli + ["batch-predict", "--model", "sentiment", "--input", str(corpus), "--output", "labelled",
                           "--keep-labels", "1"], cwd=work, env=env, timeout=600)
    stats = json.loads((work / "labelled" / "stats.json").read_text())
    lines = corpus.read_text(encoding="utf-8").count("\n")
    assert stats["lines_read"] == lines == stats["predicted"] + stats["empty"]
    assert stats["kept"] == stats["labels"].get("1", 0) and "kept" in labelled.stdout
