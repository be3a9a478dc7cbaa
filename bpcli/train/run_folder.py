"""The run folder: the one place its file names are written down, and what makes a folder a run.

A run folder is made by ``bpcli train`` (or one variant of ``bpcli sweep``) and holds:

==============  ==========================================================================
``spec.yaml``   the resolved spec, written first: a folder with it is a run
``metrics.csv`` one row per epoch (per iteration for full-batch gd), appended and flushed
``loss.png``    the curves of metrics.csv
``model.npz``   the final weights and model state
``last.npz``    the checkpoint ``--resume`` continues from
``last.prev.npz`` the checkpoint before it, kept while training (removed when training ends)
``best.npz``    the checkpoint with the best validation metric
``summary.json`` why training stopped, final and best metrics, provenance, time, memory
``status.json`` a sweep variant's outcome (ok, failed, diverged), written last
``running.json`` while training: the host, process id and start of the one writer (its lock)
``write_failed.json`` a write that failed (disk full): which file, why; removed by the next
==============  ==========================================================================

Every file but metrics.csv is written whole to a temporary name (unique to the process) and
renamed, so a reader never sees half of one; a sweep folder is marked by its plan,
``sweep.json``. A new last.npz is written to its temporary file first, then the old last.npz
is renamed last.prev.npz, then the temporary file last.npz: at every moment a whole
checkpoint is on disk, and a resume that finds last.npz damaged (or missing, stopped between
the two renames) continues from last.prev.npz. Every file read back is checked: a damaged one
is an InputError naming it and what to do (:meth:`RunFolder.damaged`).

One process writes a folder at a time (:func:`hold`): it holds a lock on the folder (flock)
for the command's whole life and names itself in running.json; a second writer is refused,
told who holds it.

What a run folder holds also says how its training stands (:meth:`RunFolder.state`, one of
:data:`STATUSES`): summary.json is written only when training ends, so a folder without one
is training now (its running.json names a process that is alive) or was killed, and a
last.npz that has taken more steps than summary.json counts was resumed since that summary.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shlex
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import InputError, WriteFailed

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
    "write_failed": "a file could not be written (a full disk, a file size limit, no permission): "
                    "write_failed.json names it and why; the files before it are intact, and once "
                    "there is room bpcli train --resume RUN continues from its last checkpoint",
    "damaged": "a file it needs cannot be read back (cut short or overwritten after bpcli "
               "wrote it whole): the line below names it and what to do",
    # a sweep variant that never trained: its status.json holds the reason (sweep.csv's message)
    "failed": "a sweep variant refused before training (its values do not fit the spec, or the "
              "data): its status.json and sweep.csv say why",
    "error": "a sweep variant that stopped on an unexpected error: its status.json and "
             "sweep.csv hold it",
    "died": "a sweep variant whose worker process died (kill -9, out of memory, a crash): "
            "bpcli sweep --resume SWEEP runs it again",
}
RESUMABLE = ("interrupted", "killed", "write_failed")
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
    note: str | None = None        # write_failed: which file and why
    checkpoint: bool = True        # a whole checkpoint to resume from (write_failed: maybe none)

    def final_row(self) -> dict:
        """The final metrics as ``final_<name>``, and ``best_<metric>`` where there is one (the
        metric the run watched: val_loss, or val_accuracy for early stopping on it): the metric
        columns of a row of ``bpcli runs`` and of sweep.csv."""
        return ({f"final_{k}": v for k, v in self.final.items()}
                | {f"best_{k}": v for k, v in self.best.items()})

    @property
    def resumable(self) -> bool:
        """Whether ``bpcli train --resume`` continues it (as it is, without more --epochs)."""
        return self.status in RESUMABLE and self.checkpoint


def stopped_as(stop_reason: str) -> str:
    """The status a summary.json's ``stop_reason`` tells: interrupted, diverged or finished."""
    for status in ("interrupted", "diverged"):
        if stop_reason.startswith(status):
            return status
    return "finished"


def atomic_write(path: Path, write: Callable, text: bool = False, keep: Path | None = None):
    """``write(f)`` into a temporary file beside ``path`` (binary; text, newlines as written, when
    ``text``), flushed to the disk, then rename: readers see old or new, never half, and an
    error halfway (or a Ctrl-C) leaves no temporary file. The temporary name holds the process
    id and a random part, so two writers never share one. ``keep``: where the file ``path``
    held before goes (renamed there just before the new one takes its place). Returns what
    ``write`` returns; WriteFailed (naming ``path``) when the disk refuses it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", newline="") if text else open(tmp, "xb") as f:
            result = write(f)
            f.flush()
            os.fsync(f.fileno())  # on the disk before the rename: a crash leaves old or new
        if keep is not None and path.exists():
            os.replace(path, keep)
        os.replace(tmp, path)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise WriteFailed(path, e) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return result


def npz_problem(path: Path, quick: bool = False) -> str | None:
    """Why the .npz at ``path`` cannot be read back whole; None when it can. Every array is read
    (zip checks each against its CRC), or with ``quick`` only the archive's directory, which a
    file cut short has lost (what ``bpcli runs`` checks, without reading every run's weights)."""
    import zipfile
    import zlib

    import numpy as np

    path = Path(path)
    try:
        n = path.stat().st_size
        if n == 0:
            return "it is empty"
        if not zipfile.is_zipfile(path):
            return f"{n} bytes, not a whole .npz archive: its end, the zip directory, is missing"
        if quick:
            with zipfile.ZipFile(path) as z:
                z.namelist()
            return None
        with np.load(path, allow_pickle=False) as f:
            for name in f.files:
                f[name]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        return f"{type(e).__name__}: {e}"
    return None


# ---------------------------------------------------------------- one writer per folder
_HELD: dict[str, list] = {}  # the folders this process holds: real path -> [fd, depth]


@contextlib.contextmanager
def hold(folder, what: str = "run"):
    """Be the one writer of ``folder`` (a run, or a sweep: ``what``) for the ``with`` block.

    An exclusive lock on the folder itself (flock, released by the kernel however the process
    ends, kill -9 too) is taken first; then, under it, running.json is checked (a live process
    named there that locks nothing: another host's) and written with this host, process id and
    the time (the holder's name, for the refusal of a second writer). Re-entrant within a
    process. InputError, naming the holder (process, host, since when), when another holds it.
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fd = _lock(folder)
    if fd is None:
        raise _busy(folder, what, _holder(folder, wait=2.0))
    try:
        mark = RunFolder(folder).trainer()
        if mark is not None:  # no lock but a live process: another host's, or an older bpcli
            raise _busy(folder, what, mark)
        RunFolder(folder).mark_running()
        _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[key]
            RunFolder(folder).clear_running()
    finally:
        os.close(fd)  # the lock goes with it


def holding(what: str):
    """A decorator: the function, whose first argument is a folder, runs holding it
    (:func:`hold`)."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def held(folder, *args, **kwargs):
            with hold(folder, what):
                return fn(folder, *args, **kwargs)
        return held
    return wrap


def _lock(folder: Path) -> int | None:
    """A file descriptor holding an exclusive flock on ``folder``; None when another holds it.
    Where folders cannot be locked (NFS), a lock file in it, ``.lock``, is locked instead."""
    import fcntl

    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise InputError(f"cannot open the folder: {e.strerror}", file=str(folder)) from None
    for attempt in range(2):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as e:
            os.close(fd)
            if attempt:
                raise WriteFailed(folder / ".lock", e) from None
            try:
                fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e2:
                raise WriteFailed(folder / ".lock", e2) from None
    return None


def _holder(folder: Path, wait: float) -> dict | None:
    """running.json of the process holding ``folder``, waiting up to ``wait`` seconds for the
    holder to write it (it does so just after taking the lock)."""
    end = time.monotonic() + wait
    while True:
        try:
            return json.loads((Path(folder) / RunFolder.RUNNING).read_text())
        except (OSError, ValueError):
            if time.monotonic() > end:
                return None
            time.sleep(0.05)


def _busy(folder: Path, what: str, mark: dict | None) -> InputError:
    doing = "trained" if what == "run" else "run"
    if isinstance(mark, dict) and "pid" in mark:
        since = f" since {mark['since']}" if mark.get("since") else ""
        who = f"by process {mark['pid']} on {mark.get('host', 'this host')}{since}"
    else:
        who = "by another process (which has not yet written its running.json)"
    return InputError(f"this {what} is being {doing} now, {who}: one process writes a {what} "
                      f"folder at a time; let it end (or stop it) before resuming it",
                      file=str(folder))


class RunFolder:
    """A run folder on disk; its attributes are the paths of its files (module docstring)."""

    SPEC, METRICS, PLOT, MODEL = "spec.yaml", "metrics.csv", "loss.png", "model.npz"
    LAST, BEST, SUMMARY, STATUS = "last.npz", "best.npz", "summary.json", "status.json"
    RUNNING, LAST_PREV, WRITE_FAILED = "running.json", "last.prev.npz", "write_failed.json"
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
        """A new folder at ``wanted``, or ``wanted-2``, ``wanted-3``, ...: nothing is overwritten,
        and two processes making one at once get one each (mkdir is the test, not exists)."""
        wanted = Path(wanted)
        path, k = wanted, 1
        while True:
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                k += 1
                path = wanted.with_name(f"{wanted.name}-{k}")
            except OSError as e:
                raise WriteFailed(path, e, "Nothing was written.") from None

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
    last_prev = property(lambda self: self.path / self.LAST_PREV)
    write_failed = property(lambda self: self.path / self.WRITE_FAILED)

    def hold(self):
        """:func:`hold` on this run folder: be its one writer for a ``with`` block."""
        return hold(self.path, "run")

    # ------------------------------------------------------------ who is training it
    def mark_running(self) -> None:
        """Write running.json (this host, process id, its start time as /proc tells it and as a
        person reads it): this process writes the folder now."""
        mark = {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid()),
                "since": datetime.now().astimezone().isoformat(timespec="seconds")}
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
            todo = f"finish it with bpcli train --resume {_q(self.path)} (it continues from last.npz)"
        elif state.status == "started":
            why = ("training never ended, and it has no checkpoint to resume from (it was killed "
                   "in its first epoch)")
            todo = f"train it again with bpcli train {_q(self.spec)}"
        elif state.status == "interrupted":
            why = f"training was {state.stop_reason}"
            todo = f"finish it with bpcli train --resume {_q(self.path)}"
        elif state.status == "write_failed":
            why = f"training stopped after epoch {state.epochs}{of}: {state.note}"
            todo = (f"make room, then finish it with bpcli train --resume {_q(self.path)}"
                    if state.resumable else f"make room, then train it again with bpcli train "
                                            f"{_q(self.spec)}")
        else:
            raise InputError(f"the run folder has no {self.MODEL}: {_NEEDED_FOR[self.MODEL]}",
                             file=str(self.path))
        raise InputError(f"the run folder has no {self.MODEL}, the weights training ends with: "
                         f"{why}. To use this run, {todo}{self._or_best()}", file=str(self.path))

    def _or_best(self) -> str:
        """``, or use --checkpoint best for best.npz (...)`` when best.npz is whole; else ''."""
        best = self.checkpoint_state(self.best) if self.best.is_file() else None
        if not (best and best.get("best")) or npz_problem(self.best, quick=True):
            return ""
        b = best["best"]
        return (f", or use --checkpoint best for {self.BEST} (the best {b['metric']} so far, "
                f"{b['value']:.4g} at epoch {b['epoch']})")

    # ------------------------------------------------------------ files that cannot be read back
    def damaged(self, name: str, problem: str) -> InputError:
        """The InputError for this run's file ``name`` that cannot be read back (``problem``):
        which, why, and what to do."""
        again = f"train it again: bpcli train {_q(self.spec)}"
        todo = {
            self.SPEC: "The run's resolved spec is lost with it: train again from your spec file",
            self.MODEL: f"Its final weights are lost: to use this run, {again}"
                        + self._or_best().replace(", or use", "; or use"),
            self.BEST: f"Use the final weights instead (model.npz: leave out --checkpoint "
                       f"best), or {again}",
            self.LAST: f"bpcli train --resume continues from {self.LAST_PREV}, the checkpoint "
                       f"before it, where that one is whole; else {again}",
            self.SUMMARY: f"The weights do not depend on it; for a whole record of the run, "
                          f"{again}",
            self.METRICS: f"The weights do not depend on it; for the run's curves, {again}",
            self.STATUS: "It holds a sweep variant's outcome: remove it, and bpcli sweep "
                         "--resume runs the variant again",
        }.get(name, f"To use this run, {again}")
        return InputError(f"damaged: cut short or overwritten after bpcli wrote it whole "
                          f"({problem}). {todo}", file=str(self.file(name)))

    def read_npz(self, name: str) -> None:
        """Check that this run's .npz ``name`` reads back whole; InputError (:meth:`damaged`)
        if it does not."""
        problem = npz_problem(self.file(name))
        if problem is not None:
            raise self.damaged(name, problem)

    def damage(self) -> InputError | None:
        """The first file a listing finds damaged, without reading every array: spec.yaml
        not YAML, metrics.csv not numbers, or an .npz whose zip directory is gone (cut short);
        a last.npz so only when last.prev.npz is not whole either, since a resume falls back to
        it. None if none is."""
        try:
            self.read_spec()
            if self.metrics.is_file():
                self.read_metrics()
        except InputError as e:
            return e
        for name in (self.MODEL, self.BEST, self.LAST):
            if self.file(name).is_file():
                problem = npz_problem(self.file(name), quick=True)
                if problem is not None and not (name == self.LAST and self.last_prev.is_file()
                                                and npz_problem(self.last_prev, quick=True)
                                                is None):
                    return self.damaged(name, problem)
        return None

    def resume_from(self) -> str | None:
        """Make last.npz the checkpoint a resume continues from, read back whole: when it is
        damaged (or missing: stopped between the two renames of a checkpoint's write),
        last.prev.npz, the one before it, takes its place, and the note returned says so (None
        when last.npz was whole). InputError when there is none, or none is whole."""
        problem = npz_problem(self.last) if self.last.is_file() else None
        if self.last.is_file() and problem is None:
            return None
        if self.last_prev.is_file() and npz_problem(self.last_prev) is None:
            state = self.checkpoint_state(self.last_prev) or {}
            why = f"is damaged ({problem})" if problem else "is missing"
            try:
                os.replace(self.last_prev, self.last)
            except OSError as e:
                raise WriteFailed(self.last, e) from None
            return (f"{self.LAST} {why}: continuing from {self.LAST_PREV}, the checkpoint "
                    f"before it (step {state.get('steps', '?')}, epoch {state.get('epoch', '?')}"
                    f" in progress), now {self.LAST}")
        if problem is None:
            raise InputError(f"the run folder has no {self.LAST}: {_NEEDED_FOR[self.LAST]}",
                             file=str(self.path))
        prev = (f"and {self.LAST_PREV}, the checkpoint before it, is not whole either "
                f"({npz_problem(self.last_prev)})" if self.last_prev.is_file()
                else f"and there is no {self.LAST_PREV} to fall back to")
        raise InputError(f"damaged: cut short or overwritten after bpcli wrote it whole "
                         f"({problem}), {prev}: nothing can resume this run; train it again: "
                         f"bpcli train {_q(self.spec)}", file=str(self.last))

    # ------------------------------------------------------------ writes that fail
    def note_write_failed(self, failed: WriteFailed) -> None:
        """Record that writing ``failed.file`` failed in write_failed.json, so that the run's
        state says so, and fill in ``failed.todo``: what stands, what to do. On a full disk
        the note takes running.json's place (overwritten where it lies, then renamed: no new
        block needed)."""
        note = {"file": failed.file, "reason": failed.reason,
                "when": datetime.now().astimezone().isoformat(timespec="seconds")}
        data = json.dumps(note).encode()
        try:
            atomic_write(self.write_failed, lambda f: f.write(data))
            recorded = True
        except WriteFailed:
            try:
                with open(self.running, "r+b") as f:
                    f.write(data)
                    f.truncate()
                os.replace(self.running, self.write_failed)
                recorded = True
            except OSError:
                recorded = False
        state = self.checkpoint_state(self.last) if self.last.is_file() else None
        if state is not None:
            todo = (f"The run stopped there, its files before it intact: make room (or raise "
                    f"the limit), then bpcli train --resume {_q(self.path)} continues from "
                    f"{self.LAST} (step {state.get('steps')}, epoch {state.get('epoch')} in "
                    f"progress)")
        else:
            todo = (f"The run stopped before its first checkpoint, so there is nothing to "
                    f"resume: make room (or raise the limit), then train it again")
        if not recorded:
            todo += f" ({self.WRITE_FAILED} could not be written either)"
        failed.todo = todo + "."

    def write_failure(self) -> str | None:
        """write_failed.json as a sentence (``last.npz: File too large (EFBIG)``); None if
        there is none."""
        try:
            note = json.loads(self.write_failed.read_text())
            return f"writing {Path(note['file']).name} failed: {note['reason']}"
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return f"a write failed ({self.WRITE_FAILED} says no more)"

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
        try:
            summary, state = self.read_summary(), self.state()
        except InputError as e:  # the weights do not depend on the record: they are read still
            return f"checkpoint final: {self.MODEL} (the run's record cannot be read: {e})"
        if summary is None:
            return f"checkpoint final: {self.MODEL}"
        if state.status == "finished":
            return "checkpoint final"
        of = f" of {state.epochs_asked}" if state.epochs_asked is not None else ""
        if state.status == "killed":  # this summary and model.npz are of an earlier stop
            return (f"{self.MODEL}, written when training stopped at step {summary['steps']} "
                    f"({summary['epochs']}{of} epochs done); the run was resumed since, then "
                    f"killed: bpcli train --resume {_q(self.path)} finishes it")
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

    def read_json(self, path: Path, needs: tuple = ()) -> dict:
        """A JSON object of this run (summary.json, status.json) with the keys ``needs``;
        InputError naming it (:meth:`damaged`) when it cannot be read back."""
        try:
            data = json.loads(path.read_text())
        except ValueError as e:
            raise self.damaged(path.name, f"not JSON: {e}") from None
        except OSError as e:
            raise InputError(f"cannot read {path.name}: {e.strerror or e}",
                             file=str(path)) from None
        if not isinstance(data, dict) or any(k not in data for k in needs):
            lacks = [k for k in needs if not isinstance(data, dict) or k not in data]
            raise self.damaged(path.name, f"it lacks {', '.join(lacks) or 'its keys'}")
        return data

    def read_summary(self) -> dict | None:
        """summary.json, or None while the run has not finished."""
        return (self.read_json(self.summary, ("stop_reason", "epochs", "steps", "final"))
                if self.summary.is_file() else None)

    def read_status(self) -> dict:
        """status.json: a sweep variant's outcome (``status``, ``message``, ``wall_s``)."""
        return self.read_json(self.status, ("status",))

    def read_spec(self) -> dict:
        """spec.yaml as a mapping (the run's resolved spec); InputError if it is not one."""
        import yaml

        try:
            data = yaml.safe_load(self.spec.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise self.damaged(self.SPEC, f"not YAML: {str(e).splitlines()[0]}") from None
        except OSError as e:
            raise InputError(f"cannot read {self.SPEC}: {e.strerror or e}",
                             file=str(self.spec)) from None
        # a mapping is a spec, however edited: validation names what is wrong in it, at its
        # line (a hand-edited key is no damage); only what is no mapping at all is damaged
        if not isinstance(data, dict):
            raise self.damaged(self.SPEC, "it is not a resolved spec: not a mapping of keys")
        return data

    def checkpoint_state(self, path: Path) -> dict | None:
        """The training state a checkpoint (last.npz, best.npz) was saved with, as JSON (the
        ``TrainState`` of :mod:`bpcli.train.checkpoint`: ``epoch`` in progress, ``steps``,
        ``best`` row, ...); None when the file is missing or unreadable."""
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as f:
                return json.loads(str(f["__state__"]))
        except Exception:  # noqa: BLE001 (a damaged zip raises BadZipFile, EOFError, zlib.error)
            return None

    def epochs_asked(self) -> int | None:
        """``training.epochs`` of spec.yaml (the run's resolved spec); None if unreadable."""
        try:
            return int(self.read_spec()["training"]["epochs"])
        except (InputError, ValueError, TypeError, KeyError):
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
        running = self.trainer() is not None
        failure = None if running else self.write_failure()
        if summary is not None and failure is None and (self.status.is_file()
                                                        or not self._resumed_since(summary)):
            watched = summary.get("best") or {}
            best = {watched["metric"]: watched["value"]} if "metric" in watched else {}
            return RunState(stopped_as(summary["stop_reason"]), int(summary["epochs"]), asked,
                            int(summary["steps"]), dict(summary["final"]), best,
                            summary["stop_reason"], int(summary.get("skipped_batches") or 0))
        checkpoint = self.last.is_file() or self.last_prev.is_file()
        status = ("running" if running else "write_failed" if failure is not None
                  else "killed" if checkpoint else "started")
        if not self.metrics.is_file():
            return RunState(status, 0, asked, 0, note=failure, checkpoint=checkpoint)
        rows = self.read_metrics()
        if rows.empty:
            return RunState(status, 0, asked, 0, note=failure, checkpoint=checkpoint)
        last = rows.iloc[-1]
        final = {k: None if _missing(last[k]) else float(last[k])
                 for k in FINAL_METRICS if k in rows}
        best = {}
        if "val_loss" in rows and rows["val_loss"].notna().any():
            best = {"val_loss": float(rows["val_loss"].min())}
        skipped = int(rows["skipped_batches"].sum()) if "skipped_batches" in rows else 0
        return RunState(status, int(last["epoch"]), asked, int(last["step"]), final, best,
                        None, skipped, failure, checkpoint)

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
            raise self.damaged(self.METRICS, str(e).strip()) from None
        except OSError as e:
            raise InputError(f"cannot read {self.METRICS}: {e.strerror or e}",
                             file=str(self.metrics)) from None
        if not {"epoch", "step"} <= set(frame.columns):
            raise self.damaged(self.METRICS, "its header has no epoch and step columns")
        if frame.empty:  # the header alone: a run that diverged or stopped before its first row
            return frame.astype(float)
        for c in frame:
            values = frame[c]
            if not pd.api.types.is_numeric_dtype(values):
                bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
                i = int(np.argmax(bad.to_numpy()))
                raise self.damaged(self.METRICS, f"column {c}, row {i + 1} holds "
                                                 f"{values.iloc[i]!r}, which is not a number")
            if values.isna().any():
                empty = (cells[c].fillna("").str.strip() == "").to_numpy()
                frame[c] = pd.arrays.FloatingArray(values.to_numpy(float), empty)
        return frame

    def load_spec(self):
        from ..spec.validate import load

        self.read_spec()  # a damaged one is named as such, with what to do
        return load(self.spec)

    def load_model(self, checkpoint: str = "final"):
        """The trained :class:`~bpcli.nn.model.Model`: the run's resolved spec with the weights
        and state (batchnorm statistics, preprocessing) of ``checkpoint``, final or best."""
        from ..nn.model import Model

        weights = self.weights(checkpoint)
        model = Model(self.load_spec())
        try:
            model.load_params(weights)
        except Exception:  # a damaged zip raises BadZipFile, EOFError, zlib.error, ValueError
            self.read_npz(weights.name)  # names the damage and what to do
            raise
        return model


def _q(path) -> str:
    """A path as a shell reads it back (quoted where it holds a space)."""
    return shlex.quote(str(path))


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
