"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder as the working directory: runs/ and other outputs land in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["cpu", "gpu"])
def device(request):
    """Each device the engine can run on: cpu always, gpu where CuPy finds a CUDA GPU (elsewhere
    skipped, saying which is missing)."""
    from bpcli.engine import backend
    from bpcli.errors import InputError

    try:
        backend.check(request.param)
    except InputError as e:
        pytest.skip(f"no {request.param} here: {e}")
    return request.param


@pytest.fixture
def torch():
    """PyTorch, the reference a comparison test checks against: only such a test asks for it, so
    only it skips where torch is not installed."""
    return pytest.importorskip("torch")
