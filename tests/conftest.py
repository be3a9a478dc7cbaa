"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder as the working directory: runs/ and other outputs land in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def torch():
    """PyTorch, the reference a comparison test checks against: only such a test asks for it, so
    only it skips where torch is not installed."""
    return pytest.importorskip("torch")
