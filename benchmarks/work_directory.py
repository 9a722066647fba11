"""Where a benchmark keeps its stages: ``--keep DIR`` (kept, and reused where the benchmark says
so) or a temporary directory removed at the end; the whole run's time printed either way."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
import time
from typing import Iterator


@contextlib.contextmanager
def work_directory(keep: str | None, prefix: str) -> Iterator[pathlib.Path]:
    """``keep`` (created if needed) or a fresh temporary directory named ``prefix...``."""
    work = pathlib.Path(keep) if keep else pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        yield work
    finally:
        print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
        if keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
