"""Small helpers several test files use (imported as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def run_arrays(run: Path, name: str = "model.npz") -> dict:
    """Every array a run folder's weights file holds (read without pickle)."""
    with np.load(Path(run) / name, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def same_bits(a: dict, b: dict) -> bool:
    """The same names and, for each, the very same bits."""
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
