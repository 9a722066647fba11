"""The README and docs/ run as written: every ```python block (not marked ``illustrative``) of a
page runs, in order, in one fresh process, in a scratch directory holding what the pages name: a
transformers checkpoint ``kcbert-base`` (small, random, on a vocab trained on the demo comments),
NSMC-format ``nsmc/train.txt`` and ``nsmc/test.txt`` (the project's labelled sample) and
``comments.txt``.  Illustrative blocks must still compile; the pages link only inside the
repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
BLOCK = re.compile(r"^```(\w[\w ]*)?\n(.*?)^```", re.S | re.M)
RESOURCES = REPO / "kcbert_tf" / "resources"


def python_blocks(page) -> list[tuple[str, str]]:
    """(info string, code) of each python block of ``page``."""
    return [(info.strip(), code) for info, code in BLOCK.findall(page.read_text(encoding="utf-8"))
            if (info or "").split(" ")[0] == "python"]


def test_every_python_block_is_run_or_marked_illustrative_and_compiles():
    for page in PAGES:
        for info, code in python_blocks(page):
            assert info in ("python", "python illustrative"), f"{page.name}: ```{info}"
            compile(code, f"{page.name}:block", "exec")


def test_the_pages_point_only_inside_the_repository():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "DESIGN.md" not in text, page.name
        prose = re.sub(r"`[^`\n]*`", "", BLOCK.sub("", text))
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}"


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300
    first_screen = "\n".join(lines[:60])
    assert "make demo" in first_screen and "make test" in first_screen
    assert "Quick start in Python" in "\n".join(lines[:80])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """What the pages' code names, in a scratch directory."""
    import transformers

    from kcbert_tf.training.vocab_training import train_tokenizer

    root = tmp_path_factory.mktemp("docs")
    stats = train_tokenizer(str(RESOURCES / "demo_comments.txt"), str(root / "vocab"), vocab_size=2000,
                            limit_alphabet=1000)
    config = transformers.BertConfig(vocab_size=stats["vocab_size"], hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertForMaskedLM(config).save_pretrained(root / "kcbert-base")
    shutil.copy(root / "vocab" / "vocab.txt", root / "kcbert-base" / "vocab.txt")
    (root / "kcbert-base" / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}))
    (root / "nsmc").mkdir()
    shutil.copy(RESOURCES / "demo_sentiment_train.tsv", root / "nsmc" / "train.txt")
    shutil.copy(RESOURCES / "demo_sentiment_eval.tsv", root / "nsmc" / "test.txt")
    shutil.copy(RESOURCES / "demo_comments.txt", root / "comments.txt")
    return root


RUNNABLE = [page for page in PAGES if any(info == "python" for info, _ in python_blocks(page))]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[page.relative_to(REPO).as_posix() for page in RUNNABLE])
def test_the_python_blocks_of_a_page_run(page, sandbox, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(sandbox, work)
    code = "\n\n".join(block for info, block in python_blocks(page) if info == "python")
    (work / "page.py").write_text(code + "\nprint('page ran')\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "page.py"], cwd=work, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("page ran")
