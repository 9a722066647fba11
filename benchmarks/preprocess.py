"""Benchmark: `kcbert-tf preprocess` (Beam) against a plain single-process Python loop.

Both read the same file (the shared real comments repeated to >= --lines lines), clean every line
with `kcbert_tf.text.cleaning.clean`, keep those of >= 10 characters and drop duplicates; the loop with
a `set`, the job with its full data flow (chunks, dedup buckets, TFRecords, rejected lines,
stats.json).  The job's time is the wall time of `beam_jobs.clean_dedup.run`, from pipeline
construction to stats on disk.  Prints a table and the ratio job / loop.

    .venv/bin/python -m benchmarks.preprocess [--lines 240000] [--repeats 3]
"""

from __future__ import annotations

import os
import sys


import argparse
import contextlib
import io
import logging
import pathlib
import tempfile
import time

from beam_jobs.clean_dedup import run
from kcbert_tf.text.cleaning import MIN_CHARS, clean

from benchmarks.nsmc_split import COMMENTS  # noqa: E402 - the real comments


def plain_loop(path: str) -> int:
    """The reference: read, clean, filter by length, set."""
    kept = set()
    with open(path, "rb") as handle:
        for line in handle:
            text = clean(line.rstrip(b"\n").decode("utf-8"))
            if len(text) >= MIN_CHARS:
                kept.add(text)
    return len(kept)


def beam_job(path: str, output: str, extra: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        stats = run(["--input", path, "--output", output, "--overwrite", *extra])
    return stats["kept"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=240_000, help="at least this many input lines")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs each")
    args = parser.parse_args()
    if not COMMENTS.exists():
        print(f"skipped: {COMMENTS} is absent (the shared real comments)")
        return 0
    logging.getLogger().setLevel(logging.ERROR)
    source = COMMENTS.read_bytes()
    copies = -(-args.lines // source.count(b"\n"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "comments.txt")
        pathlib.Path(path).write_bytes(source * copies)
        lines = source.count(b"\n") * copies
        candidates = [
            ("plain Python loop (1 process)", lambda: plain_loop(path)),
            ("preprocess, default settings", lambda: beam_job(path, os.path.join(tmp, "a"), [])),
            (
                "preprocess, a worker process per core",
                lambda: beam_job(
                    path,
                    os.path.join(tmp, "b"),
                    ["--direct_num_workers=0", "--direct_running_mode=multi_processing"],
                ),
            ),
        ]
        rows = []
        for name, job in candidates:
            best, kept = float("inf"), None
            for _ in range(args.repeats):
                start = time.perf_counter()
                kept = job()
                best = min(best, time.perf_counter() - start)
            rows.append((name, kept, best, lines / best))
            print(f"  {name}: {best:.2f} s", file=sys.stderr, flush=True)
    loop_rate = rows[0][3]
    print(f"\n{lines:,} input lines ({copies} x the shared comments), {os.cpu_count()} cores, best of {args.repeats}\n")
    print(f"| {'method':<46} | {'kept':>7} | {'seconds':>7} | {'lines/s':>9} | {'vs loop':>7} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 9}|")
    for name, kept, seconds, rate in rows:
        print(f"| {name:<46} | {kept:>7,} | {seconds:>7.2f} | {rate:>9,.0f} | {rate / loop_rate:>6.2f}x |")
    if len({row[1] for row in rows}) != 1:
        print("ERROR: the methods kept different numbers of comments", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
