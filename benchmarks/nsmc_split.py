"""The NSMC split the fine-tuning benchmarks share (`finetune_parity`, `pretraining_value`).

The NSMC sample ``$KCBERT_TF_DATA/nsmc/train.txt`` (10,000 rows, ``id<TAB>document<TAB>label``
with a header) is shuffled with a seeded ``random.Random`` and cut into a training file and an
evaluation file, each with the header, written as they were read (raw lines: cleaning is the
reader's business).  The same seed and sizes give the same two files on any machine.

    from benchmarks.nsmc_split import NSMC, write_split
    train_path, eval_path = write_split(tmp_dir, train_size=8000, eval_size=2000, seed=0)
"""

from __future__ import annotations

import os
import pathlib
import random

__all__ = ["SHARED", "NSMC", "VOCAB", "COMMENTS", "shared_data_absent", "write_split"]

#: The real datasets the benchmarks read (benchmarks/README.md, "Data"): the directory named by
#: ``KCBERT_TF_DATA``, else a ``shared/data`` beside the checkout.
SHARED = pathlib.Path(os.environ.get("KCBERT_TF_DATA") or pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
NSMC = SHARED / "nsmc" / "train.txt"
VOCAB = SHARED / "kcbert" / "vocab.txt"
COMMENTS = SHARED / "comments" / "news_comments.txt"


def shared_data_absent(*paths: pathlib.Path) -> bool:
    """Whether any of ``paths`` is missing (the shared data is absent on this machine); if so,
    print the benchmark's one "skipped" line naming them."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        print(f"skipped: the real data is absent ({', '.join(missing)}; set KCBERT_TF_DATA)")
    return bool(missing)


def write_split(
    directory: str | pathlib.Path, *, train_size: int, eval_size: int, seed: int, source: pathlib.Path = NSMC
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``train.txt`` (``train_size`` rows) and ``eval.txt`` (the next ``eval_size`` rows) of
    ``source`` shuffled with ``seed`` into ``directory``; return their paths."""
    lines = source.read_text(encoding="utf-8").split("\n")
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    if train_size + eval_size > len(rows):
        raise ValueError(f"{source} has {len(rows):,} rows; asked for {train_size:,} + {eval_size:,}")
    random.Random(seed).shuffle(rows)
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "train.txt", directory / "eval.txt"
    for path, part in zip(paths, (rows[:train_size], rows[train_size : train_size + eval_size])):
        path.write_text("\n".join([header, *part]) + "\n", encoding="utf-8")
    return paths
