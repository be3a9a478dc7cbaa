"""Small helpers several test files use (imported as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml


def run_arrays(run: Path, name: str = "model.npz") -> dict:
    """Every array a run folder's weights file holds (read without pickle)."""
    with np.load(Path(run) / name, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def same_bits(a: dict, b: dict) -> bool:
    """The same names and, for each, the very same bits."""
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# A small 1-D CNN on a small built-in pulse set: trains in well under a second.
_TINY = {
    "name": "tiny-pulses",
    "input": [32],
    "seed": 0,
    "data": {"builtin": "pulses", "n": 200, "val_split": 0.25},
    "layers": [{"conv1d": {"channels": 4, "kernel": 5, "pad": "same"}}, "relu",
               {"dense": {"units": 1}}],
    "loss": "logistic",
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 3, "batch_size": 32},
}


def tiny_spec(**overrides) -> str:
    """YAML text of the tiny pulse detector (conv1d 4x5 same, relu, dense 1 on 32 samples of the
    builtin pulses; logistic loss, adam), one top-level key a line.

    Each keyword replaces that top-level key; a mapping given for a key that holds a mapping
    updates it, so a test names only what differs: ``tiny_spec(data={"n": 3000})``.
    """
    spec = copy.deepcopy(_TINY)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)


def cli(capture, *args):
    """``bpcli ARGS`` in-process, with pytest's ``capsys`` or ``capfd``: (exit code, stdout,
    stderr). A traceback is never an answer, whatever the exit code."""
    from bpcli.cli import main

    code = main([str(a) for a in args])
    captured = capture.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, captured.out, captured.err


def ok(capture, *args):
    """``bpcli ARGS`` that must succeed: (stdout, stderr)."""
    code, out, err = cli(capture, *args)
    assert code == 0, f"bpcli {' '.join(map(str, args))} exited {code}\nstdout: {out}\nstderr: {err}"
    return out, err


def bad(capture, *args) -> str:
    """``bpcli ARGS`` that must be refused as bad input: exit code 2, one paragraph on stderr,
    nothing on stdout; returns stderr."""
    code, out, err = cli(capture, *args)
    assert code == 2 and out == "" and err.startswith("bpcli: error: "), (code, out, err)
    assert len(err.strip().splitlines()) == 1, err
    return err


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"   # the first bytes of every PNG file


def pictures(folder, n: int = 3, size: int = 8) -> None:
    """``n`` grayscale PNGs of random noise, ``size`` x ``size`` pixels, in ``folder`` (made if
    missing): a class folder of a picture data set whose content does not matter."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(
            folder / f"{i}.png")

