"""The training loop, built so that no run is ever lost.

The loop is the lecture's::

    while previous_step_size > precision and iters < max_iters:
        prev_W = cur_W
        cur_W -= gamma * dL/dW
        previous_step_size = abs(cur_W - prev_W)

with the step rule supplied by the optimizer, its lr by the schedule, and batches
drawn from the training split; early stopping watches validation. It fills a
:class:`~bpcli.train.run_folder.RunFolder`: a metrics row per epoch (per iteration
for full-batch ``gd``) as soon as it exists, checkpoints, the final weights, the
summary and the picture.

A checkpoint holds everything the loop's future depends on (the model's arrays, the
optimizer's buffers and a :class:`~bpcli.train.checkpoint.TrainState`), so a run
stopped anywhere (Ctrl-C, SIGTERM, a kill between checkpoints) and resumed gives the
very weights an uninterrupted run gives.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import platform
import resource
import shlex
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..engine import backward, evaluate
from ..engine.threads import info as threads_info, limit as limit_threads, \
    resolve as resolve_threads
from ..errors import CheckFailed, InputError, Interrupted, WriteFailed
from ..explain.plots import plot_runs
from ..nn.model import Model
from .augment import augment_pairs, moved_targets
from .evaluate import batch_size
from .checkpoint import (EarlyStopping, TrainState, generators, load_checkpoint, save_checkpoint,
                         zero_sums)
from .optim import OPTIMIZERS
from .run_folder import FINAL_METRICS, RunFolder, atomic_write
from .schedule import Schedule

COLUMNS = ["epoch", "step", "train_loss", "data_loss", "reg_loss", "val_loss", "train_accuracy",
           "val_accuracy", "grad_norm", "lr", "skipped_batches", "elapsed_s"]
CHECKPOINT_SECONDS = 1.0  # at most one last.npz / best.npz write a second (gd logs every step)
PROGRESS_SECONDS = 0.1    # within an epoch, progress is told where the run stands this often
TIMES = ("data", "compute", "metrics", "optimizer", "evaluation", "checkpoint")


def check_batch(model: Model, n_train: int) -> int:
    """The batch size in samples for ``n_train`` training samples: the spec's
    ``training.batch_size``, all of them for ``full`` or a size beyond them (one batch a step,
    as PyTorch's DataLoader gives); InputError at that key when it cannot work."""
    bs = model.spec.data["training"]["batch_size"]
    bs = n_train if bs == "full" else min(bs, n_train)
    if model.min_batch > 1 and (bs < model.min_batch or 0 < n_train % bs < model.min_batch):
        raise model.spec.error("training.batch_size", f"batchnorm on features normalizes each one "
                                                       f"over the batch, so every batch needs "
                                                       f"{model.min_batch} samples or more, but "
                                                       f"with batch_size {bs} and {n_train} "
                                                       f"training samples one holds fewer; choose "
                                                       f"another batch_size")
    return bs


def fingerprint(X, y) -> str:
    """sha256 of the data's bytes, read in chunks (a memory-mapped file is never loaded whole)."""
    h = hashlib.sha256()
    for a in (X, y):
        if a is None:
            continue
        h.update(str((a.shape, a.dtype.str)).encode())
        rows = max(1, (1 << 24) // max(1, a[:1].nbytes))
        for start in range(0, a.shape[0], rows):
            h.update(np.ascontiguousarray(a[start:start + rows]).tobytes())
    return h.hexdigest()[:16]


class MetricsLog:
    """metrics.csv, one line per row, flushed at once: a killed run keeps every row it wrote."""

    def __init__(self, path: Path, columns: list[str], keep_until_step: int | None = None):
        self.path, self.columns = path, columns
        if keep_until_step is None:
            atomic_write(path, lambda f: f.write((",".join(columns) + "\n").encode()))
        else:  # resuming: drop rows written after the checkpoint, they will be written again
            text = path.read_text()
            if not text.endswith("\n"):  # a line cut short by a kill: never a whole row
                text = text[:text.rfind("\n") + 1]
            kept = [r for r in csv.DictReader(text.splitlines()) if int(r["step"]) <= keep_until_step]
            lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in kept]
            atomic_write(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))
        try:
            self.file = open(path, "a", newline="")
        except OSError as e:
            raise WriteFailed(path, e) from None

    def write(self, row: dict) -> None:
        """One row: a number as written (a float by repr, so a NaN measured is ``nan`` and an
        infinity ``inf``), None or a column the row lacks as an empty cell: not measured
        (:meth:`RunFolder.read_metrics` reads the two back apart). WriteFailed when the disk
        refuses it (a row cut short there has no newline: readers leave it out)."""
        try:
            self.file.write(",".join("" if row.get(c) is None else repr(row[c])
                                     if isinstance(row[c], float) else str(row[c])
                                     for c in self.columns) + "\n")
            self.file.flush()
        except OSError as e:
            raise WriteFailed(self.path, e) from None

    def close(self):
        try:
            self.file.close()
        except OSError:  # a row that could not be flushed: WriteFailed has said so already
            pass


class _Signals:
    """SIGINT and SIGTERM set a flag; the loop finishes its step, saves, and stops."""

    def __init__(self):
        self.caught, self._old = None, {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (a Dask worker): leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.caught = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------- where a NaN comes from
def locate_nonfinite(model: Model, X, y, masks=None) -> str:
    """The first graph node whose value (forward) or adjoint (backward) is not finite, in the
    training program with the step's dropout ``masks``."""
    prog = model.train_program
    env = evaluate(prog, model.inputs(X, y, masks))
    for e in prog.eqns:
        v = env[e.out.id]
        if not np.all(np.isfinite(v)):
            return f"the forward pass, {e.origin} {e.prim.name} (output {np.shape(v)})"
    found = []

    def watch(e, i, contrib, total):
        if not found and not np.all(np.isfinite(contrib)):
            found.append(f"the backward pass, {e.origin} {e.prim.name} (gradient of input {i})")
    backward(prog, env, "loss", list(model.params), on_step=watch)
    return found[0] if found else "no single node: its values are finite when recomputed"


# ---------------------------------------------------------------- the loop
@dataclasses.dataclass(frozen=True)
class Position:
    """Where a run stands, for a progress display: in ``epoch`` (from 1) of ``total`` rows
    (``unit``: epochs, or iterations for full-batch gd, one step each), ``batch`` of its
    ``batches`` steps done; ``done`` is the rows done, a fraction within an epoch."""

    unit: str
    total: int
    epoch: int
    batch: int
    batches: int

    @property
    def done(self) -> float:
        return self.epoch - 1 + self.batch / self.batches


class Trainer:
    """One run: its settings (fixed for the run), its :class:`TrainState` (``self.state``, all
    that a checkpoint keeps) and the run folder it keeps up to date.

    ``progress(position, row)`` is told where the run stands (a :class:`Position`): when training
    starts (``row`` None), within an epoch every :data:`PROGRESS_SECONDS` at most (``row`` None),
    and after each metrics row (that ``row``).
    ``device`` (``cpu``, ``gpu``; None: the spec's ``training.device``) is where the model, its
    optimizer state and every batch live; the random draws (order, masks, augmentation) stay on
    the host generators and are moved, so every device follows the same samples. Raises
    InputError at ``training.device`` when that device is not there.

    ``data_fingerprint`` (default: :func:`fingerprint` of ``train_set``) stands for the training
    data; the validation samples get their own, :func:`fingerprint` of ``val_set`` as validation
    evaluates it (prepared: cast to the spec's dtype, labels as the loss takes them), whether they
    come from a file of their own or are split off the training data (then the training data's
    fingerprint covers them too, and this one tells the split apart). Both are kept in the
    checkpoints and summary.json, and :meth:`restore` refuses data that differs from either.
    """

    def __init__(self, model: Model, train_set, val_set, folder: RunFolder, *, source: str = "",
                 progress: Callable | None = None, command: str = "", checkpoint_every: int = 1,
                 on_nan: str = "stop", data_fingerprint: str | None = None,
                 threads: int | None = None, device: str | None = None):
        spec = model.spec.data
        self.model, self.folder = model, folder
        self.train_set, self.val_set = train_set, val_set
        self.source, self.progress, self.command = source, progress, command
        self.checkpoint_every, self.on_nan = checkpoint_every, on_nan
        self.threads = threads  # asked for; None: the default (threads.default)
        self.cfg, self.tcfg = spec["optimizer"], spec["training"]
        if self.tcfg["early_stopping"] is not None and val_set is None:
            raise model.spec.error("training.early_stopping", "needs validation data, but the "
                                                              "validation split is empty")
        try:
            model.to(device or self.tcfg["device"])
        except InputError as e:  # --device is checked before the command starts: this is the spec's
            raise model.spec.error("training.device", e.message) from None
        self.opt = OPTIMIZERS[self.cfg["name"]].make(self.cfg)
        self.n = train_set[0].shape[0]
        self.bs = check_batch(model, self.n)
        self.per_step = OPTIMIZERS[self.cfg["name"]].full_batch  # gd: one row per iteration
        self.batches = -(-self.n // self.bs)                      # per epoch
        self.schedule = Schedule(spec["schedule"], self.cfg["lr"], self.tcfg["epochs"],
                                 self.batches, self.tcfg["max_iters"])
        self.has_acc = model.loss_def.accuracy is not None
        self.best_metric = (self.tcfg["early_stopping"] or {}).get("metric", "val_loss")
        self.columns = [c for c in COLUMNS if self._applies(c)]
        self.data_fingerprint = data_fingerprint or fingerprint(*train_set)
        self.val_fingerprint = None if val_set is None else fingerprint(*val_set)
        model.fit_preprocess(train_set[0])  # statistics of the training split only
        stopping = self.tcfg["early_stopping"]
        self.state = TrainState(
            *generators(spec["seed"]), lr=self.schedule.at(0),
            stopping=None if stopping is None else EarlyStopping(stopping["metric"],
                                                                 stopping["patience"]),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            spec_hash=model.spec.fingerprint(), data_fingerprint=self.data_fingerprint,
            val_data_fingerprint=self.val_fingerprint or "", threads=resolve_threads(threads))
        # bookkeeping of this process, never checkpointed
        self.best_snapshot = None     # (arrays, state JSON) of the best row, not yet on disk
        self.written = {"last": -1e9, "best": -1e9}
        self.last_row: dict = {}
        self.last_skip = ""           # where the last skipped batch's first non-finite value was
        self.times = dict.fromkeys(TIMES, 0.0)
        self.t0 = time.perf_counter()
        self.told = -1e9              # when progress was last told where the run stands

    @property
    def unit(self) -> str:
        return "iteration" if self.per_step else "epoch"

    @property
    def total_rows(self) -> int:
        """The most metrics rows this run writes: its epochs, or its iterations for gd."""
        epochs, max_iters = self.tcfg["epochs"], self.tcfg["max_iters"]
        return min(epochs, max_iters or epochs) if self.per_step else epochs

    def tell(self, row: dict | None = None) -> None:
        """Tell ``progress`` where the run stands: always with a row, else at most every
        :data:`PROGRESS_SECONDS`."""
        now = time.perf_counter()
        if self.progress is None or (row is None and now - self.told < PROGRESS_SECONDS):
            return
        self.told = now
        st = self.state
        batches = 1 if self.per_step else self.batches
        self.progress(Position(self.unit, self.total_rows, st.epoch, min(st.batch, batches),
                               batches), row)

    def _applies(self, c):
        return {"data_loss": self.model.regularized, "reg_loss": self.model.regularized,
                "val_loss": self.val_set is not None,
                "train_accuracy": self.has_acc,
                "val_accuracy": self.has_acc and self.val_set is not None,
                "skipped_batches": self.on_nan == "skip"}.get(c, True)

    # ------------------------------------------------------------ checkpoints
    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at ``path``: weights, optimizer, state. InputError if
        the training or the validation data differs from what the run recorded (a checkpoint
        that recorded none, as older ones did not for validation, accepts any)."""
        state = load_checkpoint(path, self.model, self.opt)
        if state.data_fingerprint not in ("", self.data_fingerprint):
            raise InputError("the data differs from the data this run was trained on (its "
                             "fingerprint changed); resume needs the same data", file=str(path))
        if state.val_data_fingerprint not in ("", self.state.val_data_fingerprint):
            val_path = (self.model.spec.data["data"] or {}).get("val_path")
            if val_path is not None:   # the culprit is that file, not the checkpoint
                raise InputError(f"the validation data differs from the data the run in "
                                 f"{Path(path).parent} was validated on (its fingerprint "
                                 f"changed); resume needs the same validation data",
                                 file=str(val_path))
            raise InputError("the validation split differs from the one this run was validated "
                             "on (its fingerprint changed: the data, data.val_split or the seed "
                             "differ); resume needs the same validation data", file=str(path))
        # an older checkpoint recorded none: from now on the run keeps the one it resumed with
        state.val_data_fingerprint = self.state.val_data_fingerprint
        if self.state.stopping is not None and state.stopping is None:
            state.stopping = self.state.stopping
        state.started = state.started or self.state.started
        # the thread count is this machine's matter (every count gives the same bits): a
        # resumed run runs at the one asked for, or this machine's default
        state.threads = self.state.threads
        self.state = state

    def elapsed(self) -> float:
        return self.state.elapsed_s + time.perf_counter() - self.t0

    def _snapshot(self) -> TrainState:
        """The state as a checkpoint stores it now: with the training time so far."""
        return dataclasses.replace(self.state, elapsed_s=self.elapsed())

    def checkpoint(self, force: bool = False) -> None:
        """last.npz (and a pending best.npz), unless one was written less than a second ago."""
        t = time.perf_counter()
        if force or t - self.written["last"] >= CHECKPOINT_SECONDS:
            # the previous one stays, as last.prev.npz, until this one is whole on the disk
            save_checkpoint(self.folder.last, self.model.arrays(), self.opt, self._snapshot(),
                            keep=self.folder.last_prev)
            self.written["last"] = t
        self._flush_best(force)
        self.times["checkpoint"] += time.perf_counter() - t

    def _flush_best(self, force: bool) -> None:
        t = time.perf_counter()
        if self.best_snapshot is not None and (force or t - self.written["best"] >= CHECKPOINT_SECONDS):
            arrays, state = self.best_snapshot
            save_checkpoint(self.folder.best, arrays, self.opt, state)
            self.best_snapshot, self.written["best"] = None, t

    # ------------------------------------------------------------ evaluation
    def evaluate(self):
        """Validation loss and accuracy, in chunks so a large split never sits in memory twice."""
        X, y = self.val_set
        m = self.model
        total, data_sum, acc_sum, reg = 0, 0.0, 0.0, 0.0
        chunk = batch_size(m)  # the training batch, fewer where its activations would be large
        for start in range(0, X.shape[0], chunk):
            Xc = np.asarray(X[start:start + chunk], dtype=m.dtype)
            yc = None if y is None else y[start:start + chunk]
            s = m.step(Xc, yc, grad=False)
            k = Xc.shape[0]
            data_sum += s.data_loss * (k if m.loss_def.reduction == "mean" else 1)
            reg = s.reg_loss
            if self.has_acc:
                acc_sum += m.loss_def.accuracy(s.output, yc) * k
            total += k
        data = data_sum / total if m.loss_def.reduction == "mean" else data_sum
        return data + reg, (acc_sum / total if self.has_acc else None)

    # ------------------------------------------------------------ the loop
    def run(self, log: MetricsLog) -> dict:
        """Train to the end (or a stop); keep metrics, checkpoints and summary current."""
        tcfg, st = self.tcfg, self.state
        self.t0 = time.perf_counter()
        starts = range(0, self.n, self.bs)
        stop = None
        self.tell()  # the display (and its clock) starts with training, not after an epoch
        with _Signals() as signals, limit_threads(st.threads):
            while st.epoch <= tcfg["epochs"] and stop is None:
                # a signal met at an epoch's end (validation, checkpoint) stops here, before the
                # next epoch draws its order: a checkpoint at batch 0 holds the generator as it
                # was, so the resumed run draws the very order the uninterrupted one did
                if signals.caught:
                    self.interrupted(log, signals.caught)
                if st.batch == 0:  # a new epoch (a resumed one keeps its order and sums)
                    shuffled = tcfg["shuffle"] and self.bs < self.n
                    st.order = st.rng.permutation(self.n) if shuffled else None
                    st.sums, st.seen = zero_sums(), 0
                while st.batch < len(starts) and stop is None and not signals.caught:
                    stop = self.step(log, starts)
                if signals.caught and stop is None:
                    self.interrupted(log, signals.caught)
                last = stop is not None or st.epoch == tcfg["epochs"]
                if not self.per_step and (st.seen or st.skipped_row) and self.record(log, last) \
                        and not last:
                    stop = st.stopping.reason("epoch")
                st.epoch, st.batch, st.order = st.epoch + 1, 0, None
                if stop is not None or st.epoch > tcfg["epochs"]:
                    self.checkpoint(force=True)
                elif (st.epoch - 1) % self.checkpoint_every == 0:
                    self.checkpoint()
        n = tcfg["epochs"]
        return self.finish(log, stop or f"finished {n} epoch{'' if n == 1 else 's'}")

    def interrupted(self, log, how: str):
        """Stop for the signal ``how``: save the checkpoint, finish the run folder, raise
        Interrupted saying how to resume."""
        st = self.state
        self.checkpoint(force=True)
        self.finish(log, f"interrupted by {how} at epoch {st.epoch}, step {st.steps}")
        raise Interrupted(f"stopped by {how} after step {st.steps} (epoch {st.epoch}); the "
                          f"checkpoint is saved. Resume with: bpcli train --resume "
                          f"{shlex.quote(str(self.folder))}")

    def _batch(self, start):
        """This step's samples: a slice (a view) or the shuffled order's gather, cast, augmented."""
        Xtr, ytr = self.train_set
        st = self.state
        if st.order is None:
            Xb = Xtr[start:start + self.bs]
            yb = None if ytr is None else ytr[start:start + self.bs]
        else:
            idx = st.order[start:start + self.bs]
            Xb, yb = Xtr[idx], None if ytr is None else ytr[idx]
        Xb = np.asarray(Xb, dtype=self.model.dtype)  # a memory-mapped file: this batch only
        if self.tcfg["augment"] is not None:  # picture targets move with their inputs
            Xb, yb = augment_pairs(Xb, yb, self.tcfg["augment"], st.noise_rng, moved_targets(
                self.model.loss_def, self.model.spec.data["input"], self.model.output_shape))
        return Xb, yb, self.model.draw_masks(Xb.shape[0], st.noise_rng)

    def step(self, log, starts) -> str | None:
        """One optimizer step on the next batch; the reason to stop, if it is time to."""
        model, tcfg, st = self.model, self.tcfg, self.state
        t = time.perf_counter()
        Xb, yb, masks = self._batch(starts[st.batch])
        t2 = time.perf_counter()
        s = model.step(Xb, yb, train=True, masks=masks)
        t3 = time.perf_counter()
        self.times["data"] += t2 - t
        self.times["compute"] += t3 - t2
        st.gnorm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in s.grads.values())))
        st.lr = self.schedule.at(st.steps)
        if not (np.isfinite(s.loss) and np.isfinite(st.gnorm)):
            return self._nonfinite(log, s.loss, Xb, yb, masks)
        st.batch += 1
        m = Xb.shape[0]
        if self.per_step:
            st.sums, st.seen = zero_sums(), 0
        for k, v in (("loss", s.loss), ("data_loss", s.data_loss), ("reg_loss", s.reg_loss)):
            st.sums[k] += v * m
        if self.has_acc:
            st.sums["accuracy"] += model.loss_def.accuracy(s.output, yb) * m
        st.seen += m
        t4 = time.perf_counter()
        self.times["metrics"] += t4 - t3
        step_size = self.opt.step(model.params, s.grads, st.lr, measure=tcfg["precision"] > 0)
        model.update_buffers(s.batch_stats, m)  # batchnorm's running statistics
        self.times["optimizer"] += time.perf_counter() - t4
        st.steps += 1
        stop = None
        if tcfg["precision"] and step_size < tcfg["precision"]:
            stop = (f"converged: step size {step_size:.3g} < precision {tcfg['precision']:.3g} "
                    f"after {st.steps} steps")
        elif tcfg["max_iters"] and st.steps >= tcfg["max_iters"]:
            stop = f"reached max_iters = {tcfg['max_iters']}"
        last = stop is not None or (st.epoch == tcfg["epochs"] and st.batch == len(starts))
        if self.per_step and self.record(log, last) and not last:
            stop = st.stopping.reason("iteration")
        elif not self.per_step:
            self.tell()
        return stop

    def _nonfinite(self, log, loss, Xb, yb, masks) -> None:
        """A non-finite loss or gradient: skip the batch (``--on-nan skip``) or stop, naming the
        graph node where the first non-finite value appears."""
        st = self.state
        where = locate_nonfinite(self.model, Xb, yb, masks)
        if self.on_nan == "skip":
            st.batch += 1
            st.skipped += 1
            st.skipped_row += 1
            self.last_skip = where
            return None
        summary = self.finish(log, f"diverged at epoch {st.epoch}, step {st.steps + 1}: loss "
                                   f"{loss}, gradient norm {st.gnorm}; first non-finite value in "
                                   f"{where}")
        raise CheckFailed(
            f"training diverged at epoch {st.epoch}, step {st.steps + 1}: the loss is {loss} and "
            f"the gradient norm {st.gnorm}; the first non-finite value appears in {where}. "
            f"Try a smaller optimizer.lr (now {st.lr}), or --on-nan skip. The last finite "
            f"checkpoint and the run so far are in {self.folder} ({summary['steps']} steps).")

    def record(self, log, last) -> bool:
        """One metrics row from the summed losses of its steps; True if early stopping says stop."""
        st = self.state
        s, seen = st.sums, st.seen
        row = {"epoch": st.epoch, "step": st.steps,
               "train_loss": s["loss"] / seen if seen else None}
        if self.model.regularized and seen:
            row.update(data_loss=s["data_loss"] / seen, reg_loss=s["reg_loss"] / seen)
        if self.has_acc and seen:
            row["train_accuracy"] = s["accuracy"] / seen
        unit = st.steps if self.per_step else st.epoch
        evaluate = self.val_set is not None and (last or unit % self.tcfg["eval_every"] == 0)
        if evaluate:
            t = time.perf_counter()
            row["val_loss"], acc = self.evaluate()
            if self.has_acc:
                row["val_accuracy"] = acc
            self.times["evaluation"] += time.perf_counter() - t
            self._keep_best(row)
        row.update(grad_norm=st.gnorm, lr=st.lr, elapsed_s=self.elapsed())
        if self.on_nan == "skip":
            row["skipped_batches"], st.skipped_row = st.skipped_row, 0
        log.write(row)
        self.last_row = row
        self.tell(row)
        return evaluate and st.stopping is not None and st.stopping.should_stop(row)

    def _keep_best(self, row) -> None:
        value = row.get(self.best_metric)
        if value is None:
            return
        best = self.state.best
        better = (best is None or (value < best["value"] if self.best_metric == "val_loss"
                                   else value > best["value"]))
        if better:
            self.state.best = {"metric": self.best_metric, "value": value, "epoch": row["epoch"],
                               "step": row["step"]}
            # a copy in memory now, on disk within a second (and always at the end)
            self.best_snapshot = ({k: w.copy() for k, w in self.model.arrays().items()},
                                  self._snapshot())

    def _best_summary(self):
        """The best evaluated row by the watched metric; ``val_loss`` is there when that is the metric."""
        if self.state.best is None:
            return None
        out = dict(self.state.best)
        if out["metric"] == "val_loss":
            out["val_loss"] = out["value"]
        return out

    def finish(self, log, stop) -> dict:
        """Close the metrics, write model.npz, summary.json and loss.png; the summary."""
        log.close()
        self._flush_best(True)
        st, folder, last = self.state, self.folder, self.last_row
        atomic_write(folder.model, lambda f: np.savez(f, **self.model.arrays(host=True)))
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        attempted = st.steps + st.skipped
        summary = {
            "name": self.model.spec.data["name"],
            "stop_reason": stop,
            "epochs": int(last.get("epoch", 0)),
            "steps": st.steps,
            "final": {k: (None if v is None else float(v)) for k, v in last.items()
                      if k in FINAL_METRICS},
            "best": self._best_summary(),
            "n_params": self.model.n_params(),
            "data": self.source,
            "data_fingerprint": self.data_fingerprint,
            "val_data_fingerprint": self.val_fingerprint,
            "n_train": self.n,
            "n_val": 0 if self.val_set is None else int(self.val_set[0].shape[0]),
            "skipped_batches": st.skipped,
            "skipped_note": None if not st.skipped else (
                f"{st.skipped} of {attempted} batches skipped (non-finite loss or gradient, "
                f"--on-nan skip); the last one in {self.last_skip}"),
            "seed": self.model.spec.data["seed"],
            "spec_hash": self.model.spec.fingerprint(),
            "started": st.started,
            "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "elapsed_s": round(self.elapsed(), 3),
            "time_s": {k: round(v, 4) for k, v in self.times.items()},
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "threads": st.threads,
            "thread_pools": threads_info(),
            "device": self.model.device,
            "command": self.command,
            "versions": {"bpcli": __version__, "numpy": np.__version__,
                         "python": platform.python_version()},
        }
        folder.write_json(folder.summary, summary)
        folder.last_prev.unlink(missing_ok=True)  # last.npz is whole, and training has ended
        if last:
            plot_runs([(folder.path.name, folder.read_metrics())], folder.plot)
        return summary


def train(model: Model, train_set, val_set, folder: RunFolder, **options) -> dict:
    """Train ``model`` in place on prepared ``(X, y)`` arrays; fill the run folder; the summary.
    ``options`` are :class:`Trainer`'s keywords."""
    with folder.hold():
        t = Trainer(model, train_set, val_set, folder, **options)
        return _training(folder, t, lambda: MetricsLog(folder.metrics, t.columns))


def _training(folder: RunFolder, t: Trainer, open_log: Callable) -> dict:
    """``t.run`` on the log ``open_log()`` opens, in a folder this process holds: a write that
    fails is recorded (write_failed.json) and told with what to do; the log closed however
    it ends."""
    folder.write_failed.unlink(missing_ok=True)  # training again: an older failure is past
    log = None
    try:
        log = open_log()
        return t.run(log)
    except WriteFailed as e:
        folder.note_write_failed(e)
        raise
    finally:
        if log is not None:
            log.close()


def resume(model: Model, train_set, val_set, folder: RunFolder, **options) -> dict:
    """Continue the run in ``folder`` from its ``last.npz`` (or the checkpoint before it, where
    last.npz is damaged: :meth:`RunFolder.resume_from`), appending to its metrics. Holds the
    folder (:meth:`RunFolder.hold`): InputError naming the process that trains it now."""
    with folder.hold():
        return _resume(model, train_set, val_set, folder, **options)


def _resume(model: Model, train_set, val_set, folder: RunFolder, **options) -> dict:
    import pandas as pd

    folder.resume_from()
    rows = folder.read_metrics()  # the rows kept must read back: a damaged file is named here
    t = Trainer(model, train_set, val_set, folder, **options)
    t.restore(folder.last)
    kept = rows[rows["step"] <= t.state.steps] if not rows.empty else rows
    if not kept.empty:  # the row a stop before the next one reports (summary.json's final)
        t.last_row = {k: None if pd.isna(v) else v.item() if hasattr(v, "item") else v
                      for k, v in kept.iloc[-1].items()}
    done, asked = t.state.epoch - 1, t.tcfg["epochs"]  # epochs trained; epochs the spec asks for
    summary = folder.read_summary()
    ended = summary is not None and not folder._resumed_since(summary)
    if done == asked and not t.state.batch and not ended:
        # every epoch trained, but the end was never written (a write failed, a kill while
        # writing model.npz): write it now, from the last checkpoint
        return _training(folder, t, lambda: MetricsLog(folder.metrics, t.columns,
                                                       keep_until_step=t.state.steps))
    if done >= asked:
        plural = "" if asked == 1 else "s"
        where = (f"this run already finished its {asked} epoch{plural}"
                 if done == asked and not t.state.batch
                 else f"this run is at epoch {done}, past the {asked} epoch{plural} asked for")
        raise InputError(f"{where}; give --epochs N with N > {done} to train further",
                         file=str(folder))
    return _training(folder, t, lambda: MetricsLog(folder.metrics, t.columns,
                                                   keep_until_step=t.state.steps))
