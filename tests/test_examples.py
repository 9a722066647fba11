"""The examples run as written: each script in examples/ in a fresh process, in a scratch
directory, on the real NSMC sample when it is there (else the project's own labelled sample)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, SHARED_DATA

EXAMPLES = sorted((REPO / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_the_example_runs_to_its_end(script, tmp_path):
    env = {**os.environ, "WORK": str(tmp_path / "work"), "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"}
    if (SHARED_DATA / "nsmc" / "train.txt").exists():
        env["KCBERT_TF_DATA"] = str(SHARED_DATA)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("done")
