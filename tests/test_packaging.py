"""The package as users and Beam workers get it: the console command and the sdist for Dataflow."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tarfile

from conftest import REPO

KCBERT_TF = pathlib.Path(sys.executable).parent / "kcbert-tf"


def test_console_command_lists_the_subcommands():
    result = subprocess.run([str(KCBERT_TF), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "preprocess" in result.stdout


def test_preprocess_help_names_every_option():
    result = subprocess.run(
        [str(KCBERT_TF), "preprocess", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    for flag in ("--input", "--output", "--min-chars", "--format", "--num-shards", "--overwrite"):
        assert flag in result.stdout


def test_sdist_ships_every_module_a_beam_worker_needs(tmp_path):
    """Dataflow workers install this sdist (--extra_package): the jobs and the library must be in it."""
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    egg_info = REPO / "kcbert_tf.egg-info"
    existed = egg_info.exists()
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
        )
    finally:  # the build's metadata, left in the checkout, would shadow the installed package's
        if not existed:
            shutil.rmtree(egg_info, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    name = result.stdout.strip().splitlines()[-1]
    assert name.startswith("kcbert_tf-") and name.endswith(".tar.gz")
    with tarfile.open(tmp_path / name) as archive:
        members = {member.split("/", 1)[1] for member in archive.getnames() if "/" in member}
    for module in (
        "beam_jobs/clean_dedup.py",
        "beam_jobs/batch_predict.py",
        "beam_jobs/classifier_handler.py",
        "beam_jobs/comment_files.py",
        "beam_jobs/pipeline_options.py",
        "beam_jobs/pretraining_data.py",
        "beam_jobs/job_files.py",
        "beam_jobs/job_reporting.py",
        "kcbert_tf/errors.py",
        "kcbert_tf/text/__init__.py",
        "kcbert_tf/text/packing.py",
        "kcbert_tf/text/tokenizer.py",
        "kcbert_tf/text/vocab.py",
        "kcbert_tf/text/bert_char_classes.py",
        "kcbert_tf/text/cleaning.py",
        "kcbert_tf/text/comment_sources.py",
        "kcbert_tf/text/records.py",
        "kcbert_tf/model/config.py",
        "kcbert_tf/resources/demo_comments.txt",
        "pyproject.toml",
    ):
        assert module in members, module
