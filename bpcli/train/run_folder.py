"""The run folder: the one place its file names are written down, and what makes a folder a run.

A run folder is made by ``bpcli train`` (or one variant of ``bpcli sweep``) and holds:

==============  ==========================================================================
``spec.yaml``   the resolved spec, written first: a folder with it is a run
``metrics.csv`` one row per epoch (per iteration for full-batch gd), appended and flushed
``loss.png``    the curves of metrics.csv
``model.npz``   the final weights and model state
``last.npz``    the checkpoint ``--resume`` continues from
``best.npz``    the checkpoint with the best validation metric
``summary.json`` why training stopped, final and best metrics, provenance, time, memory
``status.json`` a sweep variant's outcome (ok, failed, diverged), written last
==============  ==========================================================================

Every file but metrics.csv is written whole to a temporary name and renamed, so a reader
never sees half of one; a sweep folder is marked by its plan, ``sweep.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import InputError

SWEEP_PLAN = "sweep.json"

# what each file is needed for, for the message when it is missing
_NEEDED_FOR = {"model.npz": "the final weights (written when training ends)",
               "last.npz": "the checkpoint to resume from (written after the first epoch)",
               "best.npz": "the best checkpoint (written once validation has improved)",
               "metrics.csv": "the metrics rows (written from the first epoch on)",
               "summary.json": "the summary (written when training ends)"}


def atomic_write(path: Path, write: Callable) -> None:
    """Write to a temporary file beside ``path``, then rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


class RunFolder:
    """A run folder on disk; its attributes are the paths of its files (module docstring)."""

    SPEC, METRICS, PLOT, MODEL = "spec.yaml", "metrics.csv", "loss.png", "model.npz"
    LAST, BEST, SUMMARY, STATUS = "last.npz", "best.npz", "summary.json", "status.json"
    CHECKPOINTS = {"final": MODEL, "best": BEST}   # what --checkpoint names, and its file

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------ finding and making
    @staticmethod
    def is_run(path) -> bool:
        return (Path(path) / RunFolder.SPEC).is_file()

    @staticmethod
    def is_sweep(path) -> bool:
        return (Path(path) / SWEEP_PLAN).is_file()

    @classmethod
    def create(cls, wanted) -> RunFolder:
        """A new folder at ``wanted``, or ``wanted-2``, ``wanted-3``, ...: nothing is overwritten."""
        wanted = Path(wanted)
        path, k = wanted, 1
        while path.exists():
            k += 1
            path = wanted.with_name(f"{wanted.name}-{k}")
        path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def open(cls, path, *needs: str) -> RunFolder:
        """The run folder at ``path``; an InputError if it is not one or lacks a file in ``needs``."""
        folder = cls(path)
        if not folder.path.is_dir():
            raise InputError("not a run folder: there is no such folder", file=str(path))
        if not cls.is_run(path):
            hint = " (it is a sweep folder: give one of its variants)" if cls.is_sweep(path) else ""
            raise InputError(f"not a run folder: it has no {cls.SPEC}, which bpcli train writes "
                             f"first{hint}", file=str(path))
        for name in needs:
            if not (folder.path / name).is_file():
                raise InputError(f"the run folder has no {name}: {_NEEDED_FOR.get(name, name)}",
                                 file=str(path))
        return folder

    def file(self, name: str) -> Path:
        return self.path / name

    # the path of each file, by the name the class gives it
    spec = property(lambda self: self.path / self.SPEC)
    metrics = property(lambda self: self.path / self.METRICS)
    plot = property(lambda self: self.path / self.PLOT)
    model = property(lambda self: self.path / self.MODEL)
    last = property(lambda self: self.path / self.LAST)
    best = property(lambda self: self.path / self.BEST)
    summary = property(lambda self: self.path / self.SUMMARY)
    status = property(lambda self: self.path / self.STATUS)

    def weights(self, checkpoint: str = "final") -> Path:
        """model.npz (``final``) or best.npz (``best``), which must exist."""
        if checkpoint not in self.CHECKPOINTS:
            raise InputError(f"checkpoint must be {' or '.join(self.CHECKPOINTS)}, got "
                             f"{checkpoint!r}", path="--checkpoint")
        name = self.CHECKPOINTS[checkpoint]
        return RunFolder.open(self.path, name).file(name)

    # ------------------------------------------------------------ reading and writing
    def write_spec(self, spec) -> None:
        text = (f"# resolved spec of this run (every default filled in), written by bpcli "
                f"{__version__}\n" + spec.to_yaml())
        atomic_write(self.spec, lambda f: f.write(text.encode()))

    def write_json(self, path: Path, data: dict) -> None:
        atomic_write(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))

    def read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read {path.name}: {e}", file=str(path)) from None

    def read_summary(self) -> dict | None:
        """summary.json, or None while the run has not finished."""
        return self.read_json(self.summary) if self.summary.is_file() else None

    def read_metrics(self):
        """metrics.csv as a pandas DataFrame, one row per epoch (or iteration).

        An empty cell is a value not measured (no validation on that row, a training loss of an
        epoch whose every batch was skipped) and reads as ``pd.NA``, which ``isna()`` counts; a
        ``nan`` cell is a value measured as NaN (a loss that diverged) and reads as ``np.nan``,
        which it does not. A column holding either is pandas' nullable ``Float64``, where the
        two stay apart (``to_numpy(float)`` makes both NaN); the others are plain int64 or
        float64. A last line without its newline (a run killed mid-row) is left out, as resume
        leaves it out. InputError if the file is missing, unreadable or holds a cell that is not
        a number.
        """
        import io

        import numpy as np
        import pandas as pd

        if not self.metrics.is_file():
            raise InputError(f"the run folder has no {self.METRICS}: {_NEEDED_FOR[self.METRICS]}",
                             file=str(self.path))
        try:
            text = self.metrics.read_text()
            if not text.endswith("\n"):
                text = text[:text.rfind("\n") + 1]
            # read twice: as numbers ('nan' and '' both NaN), and as written, to tell them apart
            frame = pd.read_csv(io.StringIO(text))
            cells = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {self.METRICS}: {e}", file=str(self.metrics)) from None
        for c in frame:
            values = frame[c]
            if not pd.api.types.is_numeric_dtype(values):
                bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
                i = int(np.argmax(bad.to_numpy()))
                raise InputError(f"cannot read {self.METRICS}: column {c}, row {i + 1} holds "
                                 f"{values.iloc[i]!r}, which is not a number",
                                 file=str(self.metrics))
            if values.isna().any():
                empty = (cells[c].fillna("").str.strip() == "").to_numpy()
                frame[c] = pd.arrays.FloatingArray(values.to_numpy(float), empty)
        return frame

    def load_spec(self):
        from ..spec.validate import load

        return load(self.spec)

    def load_model(self, checkpoint: str = "final"):
        """The trained :class:`~bpcli.nn.model.Model`: the run's resolved spec with the weights
        and state (batchnorm statistics, preprocessing) of ``checkpoint``, final or best."""
        from ..nn.model import Model

        weights = self.weights(checkpoint)
        model = Model(self.load_spec())
        model.load_params(weights)
        return model


def final_metrics(summary: dict) -> dict:
    """A summary.json's final metrics as ``final_<name>``, and ``best_val_loss`` where there is one."""
    row = {f"final_{k}": v for k, v in summary["final"].items()}
    if (summary.get("best") or {}).get("val_loss") is not None:
        row["best_val_loss"] = summary["best"]["val_loss"]
    return row
