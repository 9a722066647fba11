"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(relative: str) -> pathlib.Path:
    """A file of ../shared/data, or skip the test naming what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def news_comments() -> pathlib.Path:
    """24,000 real, uncleaned Korean news comments, one a line."""
    return shared_file("comments/news_comments.txt")
