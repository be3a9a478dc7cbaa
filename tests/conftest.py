"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder as the working directory: runs/ and other outputs land in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["cpu", "stand-in", "gpu"])
def device(request, monkeypatch):
    """Each device the engine can run on: cpu always; ``gpu`` played by the CuPy stand-in
    (tests/device_stand_in.py: NumPy's arithmetic behind CuPy's refusals) always; the real gpu
    where CuPy finds a CUDA GPU (elsewhere skipped, saying which is missing). The value is the
    device name the code takes, ``cpu`` or ``gpu``; ``device_stand_in.numpy_arithmetic(device)``
    tells whether results must equal the CPU's bits."""
    from bpcli.engine import backend
    from bpcli.errors import InputError

    if request.param == "stand-in":
        from device_stand_in import install

        return install(monkeypatch)
    try:
        backend.check(request.param)
    except InputError as e:
        pytest.skip(f"no {request.param} here: {e}")
    return request.param


@pytest.fixture
def stand_in_gpu(monkeypatch):
    """``gpu`` played by the stand-in only (tests of the stand-in and the discipline it guards)."""
    from device_stand_in import install

    return install(monkeypatch)


@pytest.fixture
def torch():
    """PyTorch, the reference a comparison test checks against: only such a test asks for it, so
    only it skips where torch is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture
def onnx():
    """The onnx package, for the export tests: only they ask for it, so only they skip without it."""
    return pytest.importorskip("onnx")


@pytest.fixture
def ort():
    """ONNX Runtime, which runs what bpcli exports."""
    return pytest.importorskip("onnxruntime")
