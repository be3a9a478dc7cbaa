"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder as the working directory: runs/ and other outputs land in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
