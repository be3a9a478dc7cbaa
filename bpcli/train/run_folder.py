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
``running.json`` while training: the host and process id doing it, removed when it ends
==============  ==========================================================================

Every file but metrics.csv is written whole to a temporary name and renamed, so a reader
never sees half of one; a sweep folder is marked by its plan, ``sweep.json``.

What a run folder holds also says how its training stands (:meth:`RunFolder.state`, one of
:data:`STATUSES`): summary.json is written only when training ends, so a folder without one
is training now (its running.json names a process that is alive) or was killed, and a
last.npz that has taken more steps than summary.json counts was resumed since that summary.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
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

# how a run stands, by what its folder holds: bpcli runs shows it, and docs/training.md
STATUSES = {
    "running": "training now: running.json names its process, alive on this machine (or on "
               "another, which cannot be checked from here)",
    "finished": "training ended as its spec asks (all its epochs, converged, or stopped early)",
    "interrupted": "stopped by Ctrl-C or SIGTERM with its checkpoint saved: bpcli train --resume "
                   "RUN continues it",
    "diverged": "stopped at a non-finite loss or gradient; the last finite weights are kept",
    "killed": "no summary.json and no process training it (kill -9, a crash, a lost machine): "
              "bpcli train --resume RUN continues it from last.npz",
    "started": "no checkpoint yet: in its first epoch, or killed there; nothing to resume",
    # a sweep variant that never trained: its status.json holds the reason (sweep.csv's message)
    "failed": "a sweep variant refused before training (its values do not fit the spec, or the "
              "data): its status.json and sweep.csv say why",
    "error": "a sweep variant that stopped on an unexpected error: its status.json and "
             "sweep.csv hold it",
}
RESUMABLE = ("interrupted", "killed")
FINAL_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")  # summary's "final"


@dataclass(frozen=True)
class RunState:
    """How far a run got (:meth:`RunFolder.state`): ``status`` (a key of :data:`STATUSES`),
    ``epochs`` with a metrics row (the last row's epoch) of the ``epochs_asked`` by its spec
    (None without a readable spec.yaml), optimizer ``steps``, the ``final`` metrics (the last
    row's: summary.json's, or metrics.csv's when there is no summary), the ``best`` value of the
    metric it watched (by name), the summary's ``stop_reason`` (None without one) and its
    ``skipped`` batches."""

    status: str
    epochs: int
    epochs_asked: int | None
    steps: int
    final: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)   # {"val_loss": v} or {"val_accuracy": v}
    stop_reason: str | None = None
    skipped: int = 0

    def final_row(self) -> dict:
        """The final metrics as ``final_<name>``, and ``best_<metric>`` where there is one (the
        metric the run watched: val_loss, or val_accuracy for early stopping on it): the metric
        columns of a row of ``bpcli runs`` and of sweep.csv."""
        return ({f"final_{k}": v for k, v in self.final.items()}
                | {f"best_{k}": v for k, v in self.best.items()})

    @property
    def resumable(self) -> bool:
        """Whether ``bpcli train --resume`` continues it (as it is, without more --epochs)."""
        return self.status in RESUMABLE


def stopped_as(stop_reason: str) -> str:
    """The status a summary.json's ``stop_reason`` tells: interrupted, diverged or finished."""
    for status in ("interrupted", "diverged"):
        if stop_reason.startswith(status):
            return status
    return "finished"


def atomic_write(path: Path, write: Callable, text: bool = False):
    """``write(f)`` into a temporary file beside ``path`` (binary; text, newlines as written, when
    ``text``), then rename: readers see old or new, never half, and an error halfway (or a
    Ctrl-C) leaves no temporary file. Returns what ``write`` returns."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="") if text else open(tmp, "wb") as f:
            result = write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return result


class RunFolder:
    """A run folder on disk; its attributes are the paths of its files (module docstring)."""

    SPEC, METRICS, PLOT, MODEL = "spec.yaml", "metrics.csv", "loss.png", "model.npz"
    LAST, BEST, SUMMARY, STATUS = "last.npz", "best.npz", "summary.json", "status.json"
    RUNNING = "running.json"
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
    running = property(lambda self: self.path / self.RUNNING)

    # ------------------------------------------------------------ who is training it
    def mark_running(self) -> None:
        """Write running.json (this host, process id and its start time): training has started
        here."""
        mark = {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid())}
        atomic_write(self.running, lambda f: f.write(json.dumps(mark).encode()))

    def clear_running(self) -> None:
        self.running.unlink(missing_ok=True)

    def trainer(self) -> dict | None:
        """running.json's host and pid when that process still trains this run (alive on this
        host, or on another host, which cannot be checked from here); None when no process
        does: none was marked, or it died without clearing its mark (kill -9)."""
        try:
            mark = json.loads(self.running.read_text())
            host, pid = mark["host"], int(mark["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if host != socket.gethostname():
            return mark
        try:
            os.kill(pid, 0)  # signal 0: is there such a process (no signal is sent)
        except ProcessLookupError:
            return None
        except PermissionError:  # there is, another user's
            pass
        started = _started(pid)
        if started == "zombie" or (started and mark.get("started") not in (None, started)):
            return None  # killed but not yet reaped by its parent, or the id reused since
        return mark

    def weights(self, checkpoint: str = "final") -> Path:
        """model.npz (``final``) or best.npz (``best``), which must exist: without model.npz, an
        InputError saying how the run stands and what to do (resume it, or read best.npz)."""
        if checkpoint not in self.CHECKPOINTS:
            raise InputError(f"checkpoint must be {' or '.join(self.CHECKPOINTS)}, got "
                             f"{checkpoint!r}", path="--checkpoint")
        name = self.CHECKPOINTS[checkpoint]
        folder = RunFolder.open(self.path)
        if checkpoint == "final" and not folder.model.is_file():
            folder._no_final_weights()
        return RunFolder.open(self.path, name).file(name)

    def _no_final_weights(self):
        """Raise the InputError for a run without model.npz: why it has none, what to do."""
        state = self.state()
        of = f" of {state.epochs_asked}" if state.epochs_asked is not None else ""
        if state.status == "running":
            mark = self.trainer()
            why = (f"training is still running (process {mark['pid']} on {mark['host']}, at "
                   f"epoch {state.epochs}{of})")
            todo = "wait for it to end"
        elif state.status == "killed":
            why = (f"training never ended (no summary.json, and no process trains it: it was "
                   f"killed after epoch {state.epochs}{of})")
            todo = f"finish it with bpcli train --resume {self.path} (it continues from last.npz)"
        elif state.status == "started":
            why = ("training never ended, and it has no checkpoint to resume from (it was killed "
                   "in its first epoch)")
            todo = f"train it again with bpcli train {self.spec}"
        elif state.status == "interrupted":
            why = f"training was {state.stop_reason}"
            todo = f"finish it with bpcli train --resume {self.path}"
        else:
            raise InputError(f"the run folder has no {self.MODEL}: {_NEEDED_FOR[self.MODEL]}",
                             file=str(self.path))
        best = self.checkpoint_state(self.best) if self.best.is_file() else None
        if best and best.get("best"):
            b = best["best"]
            todo += (f", or use --checkpoint best for {self.BEST} (the best {b['metric']} so far, "
                     f"{b['value']:.4g} at epoch {b['epoch']})")
        raise InputError(f"the run folder has no {self.MODEL}, the weights training ends with: "
                         f"{why}. To use this run, {todo}", file=str(self.path))

    def weights_note(self, checkpoint: str = "final") -> str:
        """What the weights of ``checkpoint`` are, for eval's first line: ``checkpoint final``
        for the model.npz of a finished run, else the file and where training stood when it
        was written (``model.npz, written when training was interrupted by SIGINT at epoch 3,
        step 20: 2 of 10 epochs done``)."""
        if checkpoint == "best":
            best = (self.checkpoint_state(self.best) or {}).get("best")
            if not best:
                return "checkpoint best"
            return (f"checkpoint best: {self.BEST}, the best {best['metric']} "
                    f"({best['value']:.4g}) at epoch {best['epoch']}, step {best['step']}")
        summary, state = self.read_summary(), self.state()
        if summary is None:
            return f"checkpoint final: {self.MODEL}"
        if state.status == "finished":
            return "checkpoint final"
        of = f" of {state.epochs_asked}" if state.epochs_asked is not None else ""
        if state.status == "killed":  # this summary and model.npz are of an earlier stop
            return (f"{self.MODEL}, written when training stopped at step {summary['steps']} "
                    f"({summary['epochs']}{of} epochs done); the run was resumed since, then "
                    f"killed: bpcli train --resume {self.path} finishes it")
        stopped = summary["stop_reason"].split(":")[0]
        was = "was " if state.status == "interrupted" else ""
        return (f"{self.MODEL}, written when training {was}{stopped}: {summary['epochs']}{of} "
                f"epochs done")

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

    def checkpoint_state(self, path: Path) -> dict | None:
        """The training state a checkpoint (last.npz, best.npz) was saved with, as JSON (the
        ``TrainState`` of :mod:`bpcli.train.checkpoint`: ``epoch`` in progress, ``steps``,
        ``best`` row, ...); None when the file is missing or unreadable."""
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as f:
                return json.loads(str(f["__state__"]))
        except (OSError, ValueError, KeyError):
            return None

    def epochs_asked(self) -> int | None:
        """``training.epochs`` of spec.yaml (the run's resolved spec); None if unreadable."""
        import yaml

        try:
            return int(yaml.safe_load(self.spec.read_text())["training"]["epochs"])
        except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
            return None

    def state(self) -> RunState:
        """How the run stands (:class:`RunState`), from what its folder holds.

        With summary.json: finished, interrupted or diverged, as its ``stop_reason`` says, unless
        last.npz has taken more steps since (resumed, then killed). Without one (or with such a
        stale one): killed when there is a last.npz to resume from, else started; how far it
        got is then read from metrics.csv's last row. A sweep variant's summary is taken as it
        is (its files are copied in no particular order). InputError for a summary.json or
        metrics.csv that cannot be read.
        """
        asked = self.epochs_asked()
        summary = self.read_summary()
        if summary is not None and (self.status.is_file() or not self._resumed_since(summary)):
            watched = summary.get("best") or {}
            best = {watched["metric"]: watched["value"]} if "metric" in watched else {}
            return RunState(stopped_as(summary["stop_reason"]), int(summary["epochs"]), asked,
                            int(summary["steps"]), dict(summary["final"]), best,
                            summary["stop_reason"], int(summary.get("skipped_batches") or 0))
        status = ("running" if self.trainer() is not None
                  else "killed" if self.last.is_file() else "started")
        if not self.metrics.is_file():
            return RunState(status, 0, asked, 0)
        rows = self.read_metrics()
        if rows.empty:
            return RunState(status, 0, asked, 0)
        last = rows.iloc[-1]
        final = {k: None if _missing(last[k]) else float(last[k])
                 for k in FINAL_METRICS if k in rows}
        best = {}
        if "val_loss" in rows and rows["val_loss"].notna().any():
            best = {"val_loss": float(rows["val_loss"].min())}
        skipped = int(rows["skipped_batches"].sum()) if "skipped_batches" in rows else 0
        return RunState(status, int(last["epoch"]), asked, int(last["step"]), final, best,
                        None, skipped)

    def _resumed_since(self, summary: dict) -> bool:
        """Whether last.npz has taken more steps than ``summary`` counts: the run was resumed
        after that summary was written, and has not ended since."""
        state = self.checkpoint_state(self.last) if self.last.is_file() else None
        return state is not None and int(state.get("steps", 0)) > int(summary["steps"])

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
        if frame.empty:  # the header alone: a run that diverged or stopped before its first row
            return frame.astype(float)
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


def _missing(v) -> bool:
    import pandas as pd

    return v is None or bool(pd.isna(v))


def _started(pid: int) -> str | None:
    """When process ``pid`` started (Linux: /proc/PID/stat's starttime, clock ticks since boot),
    "zombie" for one that has died but is not yet reaped, None where /proc cannot tell."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return "zombie" if after_name[0] in ("Z", "X") else after_name[19]  # fields 3 and 22
