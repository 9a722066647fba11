"""The benchmarks run end to end on a tiny size (the timing itself stays out of tests): each
prints its table and checks that ours gives the peer's results."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, shared_file


@pytest.mark.slow
def test_predict_speed_runs_and_agrees_with_transformers():
    shared_file("nsmc/train.txt")  # skips when the shared data is absent
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.predict_speed", "--layers", "1", "--hidden", "64", "--rows", "40"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("side "))) + 1:][:3]
    assert [line.split()[0] for line in table] == ["transformers", "kcbert-tf", "SavedModel"]
    assert "probabilities equal within 1e-4: yes" in result.stdout
