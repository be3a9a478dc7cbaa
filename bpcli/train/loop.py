"""The training loop and the run folder it fills, built so that no run is ever lost.

A run folder holds ``spec.yaml`` (the resolved spec), ``metrics.csv`` (one row
per epoch, or per iteration for full-batch ``gd``; appended and flushed row by
row), ``loss.png``, ``model.npz`` (final weights), ``last.npz`` and
``best.npz`` (checkpoints, written atomically) and ``summary.json``. The loop
is the lecture's::

    while previous_step_size > precision and iters < max_iters:
        prev_W = cur_W
        cur_W -= gamma * dL/dW
        previous_step_size = abs(cur_W - prev_W)

with the step rule supplied by the optimizer, its lr by the schedule, and
batches drawn from the training split; early stopping watches validation.

A checkpoint holds everything the loop's future depends on: the weights and the
model's buffers (batchnorm's running statistics, the preprocessing statistics),
the optimizer's buffers and step count, the states of both generators (one
shuffles, the other draws dropout masks and augmentations), the position in
the current epoch with that epoch's sample order and partial sums, the
early-stopping counters and the best metric so far. So a run stopped anywhere (Ctrl-C,
SIGTERM, a kill between checkpoints) and resumed gives the very weights an
uninterrupted run gives.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import resource
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from .augment import augment
from ..errors import CheckFailed, InputError, Interrupted
from ..nn.model import Model
from .optim import OPTIMIZERS
from ..explain.plots import plot_runs
from .schedule import Schedule

COLUMNS = ["epoch", "step", "train_loss", "data_loss", "reg_loss", "val_loss", "train_accuracy",
           "val_accuracy", "grad_norm", "lr", "elapsed_s"]
EVAL_CHUNK = 512   # validation runs in chunks of this many samples: its activations stay small
CHECKPOINT_SECONDS = 1.0  # at most one last.npz / best.npz write a second (gd logs every step)


def new_run_dir(wanted: Path) -> Path:
    """``wanted``, or ``wanted-2``, ``wanted-3``, ...: an existing run is never overwritten."""
    path, k = wanted, 1
    while path.exists():
        k += 1
        path = wanted.with_name(f"{wanted.name}-{k}")
    path.mkdir(parents=True)
    return path


def check_batch(model: Model, n_train: int) -> int:
    bs = model.spec.data["training"]["batch_size"]
    if bs == "full":
        bs = n_train
    if bs > n_train:
        raise model.spec.error("training.batch_size", f"batch_size {bs} is larger than the "
                                                       f"{n_train} training samples")
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


# ---------------------------------------------------------------- files written safely
def _atomic(path: Path, write: Callable) -> None:
    """Write to a temporary file beside ``path``, then rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def save_checkpoint(path: Path, model: Model, opt, state: dict) -> None:
    arrays = model.arrays()
    for pname, buffers in opt.state.items():
        for key, value in buffers.items():
            arrays[f"__opt__/{pname}/{key}"] = np.asarray(value)
    arrays["__state__"] = np.array(json.dumps(state))  # a unicode array: no pickle needed to read
    _atomic(Path(path), lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Path, model: Model, opt) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        state = json.loads(str(arrays.pop("__state__")))
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read checkpoint: {e}", file=str(path)) from None
    for name, w in model.arrays().items():
        if name not in arrays or arrays[name].shape != w.shape:
            raise InputError(f"checkpoint does not fit the spec at {name}", file=str(path))
        w[...] = arrays[name]
    for key, value in arrays.items():
        if key.startswith("__opt__/"):
            _, pname, buf = key.split("/", 2)
            opt.state.setdefault(pname, {})[buf] = value
    opt.t = state["opt_t"]
    return state


class _MetricsLog:
    """metrics.csv, one line per row, flushed at once: a killed run keeps every row it wrote."""

    def __init__(self, path: Path, columns: list[str], keep_until_step: int | None = None):
        self.path, self.columns = path, columns
        if keep_until_step is None:
            self.path.write_text(",".join(columns) + "\n")
        else:  # resuming: drop rows written after the checkpoint, they will be written again
            text = path.read_text()
            if not text.endswith("\n"):  # a line cut short by a kill: never a whole row
                text = text[:text.rfind("\n") + 1]
            kept = [r for r in csv.DictReader(text.splitlines()) if int(r["step"]) <= keep_until_step]
            lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in kept]
            _atomic(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))
        self.file = open(path, "a", newline="")

    def write(self, row: dict) -> None:
        self.file.write(",".join("" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float)
                                 else str(row[c]) for c in self.columns) + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


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


class _EarlyStopping:
    """Counts evaluations since the metric last improved (strictly: lower loss, higher accuracy)."""

    def __init__(self, cfg, state=None):
        self.metric, self.patience = cfg["metric"], cfg["patience"]
        self.sign = 1.0 if self.metric == "val_loss" else -1.0
        self.best, self.best_epoch, self.waited = (state or {}).get("best"), \
            (state or {}).get("best_epoch"), (state or {}).get("waited", 0)

    def should_stop(self, row) -> bool:
        value = row[self.metric]
        if self.best is None or self.sign * value < self.sign * self.best:
            self.best, self.best_epoch, self.waited = value, row["epoch"], 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    def state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited}

    def reason(self, unit) -> str:
        return (f"early stopping: {self.metric} did not improve for {self.patience} evaluations "
                f"(best {self.best:.4g} at {unit} {self.best_epoch})")


# ---------------------------------------------------------------- where a NaN comes from
def locate_nonfinite(model: Model, X, y, masks=None) -> str:
    """The first graph node whose value (forward) or adjoint (backward) is not finite, in the
    training program with the step's dropout ``masks``."""
    from ..engine import backward, evaluate

    prog = model.train_program
    env = evaluate(prog, model._values(X, y, masks))
    for e in prog.eqns:
        v = env[e.out.id]
        if not np.all(np.isfinite(v)):
            return f"forward pass, {e.origin} {e.prim.name} (output {np.asarray(v).shape})"
    found = []

    def watch(e, i, contrib, total):
        if not found and not np.all(np.isfinite(contrib)):
            found.append(f"backward pass, {e.origin} {e.prim.name} (gradient of input {i})")
    backward(prog, env, "loss", list(model.params), on_step=watch)
    return found[0] if found else "no single node (the values are finite when recomputed)"


# ---------------------------------------------------------------- the loop
class Trainer:
    """One run: the loop, its state, and the files it keeps up to date."""

    def __init__(self, model: Model, train_set, val_set, run_dir: Path, *, source: str = "",
                 progress: Callable | None = None, command: str = "", checkpoint_every: int = 1,
                 on_nan: str = "stop", data_fingerprint: str | None = None):
        spec = self.spec = model.spec.data
        self.model, self.run_dir = model, Path(run_dir)
        self.train_set, self.val_set = train_set, val_set
        self.source, self.progress, self.command = source, progress, command
        self.checkpoint_every, self.on_nan = checkpoint_every, on_nan
        self.cfg, self.tcfg = spec["optimizer"], spec["training"]
        if self.tcfg["early_stopping"] is not None and val_set is None:
            raise model.spec.error("training.early_stopping", "needs validation data, but the "
                                                              "validation split is empty")
        self.opt = OPTIMIZERS[self.cfg["name"]].make(self.cfg)
        self.n = train_set[0].shape[0]
        self.bs = check_batch(model, self.n)
        self.per_step = OPTIMIZERS[self.cfg["name"]].full_batch  # gd: one row per iteration
        self.schedule = Schedule(spec["schedule"], self.cfg["lr"], self.tcfg["epochs"],
                                 -(-self.n // self.bs), self.tcfg["max_iters"])
        self.has_acc = model.loss_def.accuracy is not None
        self.best_metric = (self.tcfg["early_stopping"] or {}).get("metric", "val_loss")
        self.columns = [c for c in COLUMNS if self._applies(c)]
        self.data_fingerprint = data_fingerprint or fingerprint(*train_set)
        self.augment = self.tcfg["augment"]
        model.fit_preprocess(train_set[0])  # statistics of the training split only
        # the state a checkpoint keeps
        self.rng = np.random.default_rng(spec["seed"] + 2)        # the epochs' sample orders
        self.noise_rng = np.random.default_rng(spec["seed"] + 3)  # dropout masks, augmentation
        self.epoch, self.steps, self.batch, self.order = 1, 0, 0, None
        self.sums, self.seen, self.skipped = self._zero(), 0, 0
        self.gnorm, self.lr = float("nan"), self.schedule.at(0)   # the last step's, for its row
        self.best = None
        self.best_snapshot = None     # (arrays, state) of the best row, not yet on disk
        self.written = {"last": -1e9, "best": -1e9}
        self.stopping = None
        self.elapsed_before = 0.0
        self.times = dict.fromkeys(("data", "compute", "metrics", "optimizer", "evaluation",
                                    "checkpoint"), 0.0)

    def _applies(self, c):
        return {"data_loss": self.model.regularized, "reg_loss": self.model.regularized,
                "val_loss": self.val_set is not None,
                "train_accuracy": self.has_acc,
                "val_accuracy": self.has_acc and self.val_set is not None}.get(c, True)

    @staticmethod
    def _zero():
        return dict.fromkeys(("loss", "data_loss", "reg_loss", "accuracy"), 0.0)

    # ------------------------------------------------------------ state
    def state(self) -> dict:
        return {"epoch": self.epoch, "steps": self.steps, "batch": self.batch,
                "order": None if self.order is None else self.order.tolist(),
                "sums": self.sums, "seen": self.seen, "skipped": self.skipped,
                "rng": self.rng.bit_generator.state,
                "noise_rng": self.noise_rng.bit_generator.state,
                "opt_t": self.opt.t, "best": self.best, "gnorm": self.gnorm, "lr": self.lr,
                "stopping": self.stopping.state() if self.stopping else None,
                "elapsed_s": self.elapsed(), "spec_hash": self.model.spec.fingerprint(),
                "data_fingerprint": self.data_fingerprint}

    def restore(self, path: Path) -> None:
        s = load_checkpoint(path, self.model, self.opt)
        if s.get("data_fingerprint") not in (None, self.data_fingerprint):
            raise InputError("the data differs from the data this run was trained on (its "
                             "fingerprint changed); resume needs the same data", file=str(path))
        self.epoch, self.steps, self.batch = s["epoch"], s["steps"], s["batch"]
        self.order = None if s["order"] is None else np.asarray(s["order"])
        self.sums, self.seen, self.skipped = s["sums"], s["seen"], s["skipped"]
        self.rng.bit_generator.state = s["rng"]
        if "noise_rng" in s:  # checkpoints from before dropout and augmentation have none
            self.noise_rng.bit_generator.state = s["noise_rng"]
        self.best = s["best"]
        self.gnorm, self.lr = s.get("gnorm", self.gnorm), s.get("lr", self.lr)
        self.stopping_state = s["stopping"]
        self.elapsed_before = s["elapsed_s"]

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    def checkpoint(self, force: bool = False) -> None:
        """last.npz (and a pending best.npz), unless one was written less than a second ago."""
        t = time.perf_counter()
        if force or t - self.written["last"] >= CHECKPOINT_SECONDS:
            save_checkpoint(self.run_dir / "last.npz", self.model, self.opt, self.state())
            self.written["last"] = t
        self._flush_best(force)
        self.times["checkpoint"] += time.perf_counter() - t

    def _flush_best(self, force: bool) -> None:
        t = time.perf_counter()
        if self.best_snapshot is not None and (force or t - self.written["best"] >= CHECKPOINT_SECONDS):
            arrays, state = self.best_snapshot
            _atomic(self.run_dir / "best.npz",
                    lambda f: np.savez(f, **arrays, __state__=np.array(json.dumps(state))))
            self.best_snapshot, self.written["best"] = None, t

    # ------------------------------------------------------------ evaluation
    def evaluate(self):
        """Validation loss and accuracy, in chunks so a large split never sits in memory twice."""
        X, y = self.val_set
        m = self.model
        total, data_sum, acc_sum, reg = 0, 0.0, 0.0, 0.0
        for start in range(0, X.shape[0], EVAL_CHUNK):
            Xc = np.asarray(X[start:start + EVAL_CHUNK], dtype=m.dtype)
            yc = None if y is None else y[start:start + EVAL_CHUNK]
            losses, out = m._losses_and_output(Xc, yc)
            k = Xc.shape[0]
            data_sum += losses["data_loss"] * (k if m.loss_def.reduction == "mean" else 1)
            reg = losses["reg_loss"]
            if self.has_acc:
                acc_sum += m.loss_def.accuracy(out, yc) * k
            total += k
        data = data_sum / total if m.loss_def.reduction == "mean" else data_sum
        return data + reg, (acc_sum / total if self.has_acc else None)

    # ------------------------------------------------------------ the loop
    def run(self, log: _MetricsLog) -> dict:
        """Train to the end (or a stop); keep metrics, checkpoints and summary current."""
        tcfg = self.tcfg
        if tcfg["early_stopping"]:
            self.stopping = _EarlyStopping(tcfg["early_stopping"], getattr(self, "stopping_state", None))
        self.t0 = time.perf_counter()
        self.started = getattr(self, "started", datetime.now(timezone.utc))
        starts = range(0, self.n, self.bs)
        stop = None
        with _Signals() as signals:
            while self.epoch <= tcfg["epochs"] and stop is None:
                if self.batch == 0:  # a new epoch (a resumed one keeps its order and sums)
                    shuffled = tcfg["shuffle"] and self.bs < self.n
                    self.order = self.rng.permutation(self.n) if shuffled else None
                    self.sums, self.seen = self._zero(), 0
                while self.batch < len(starts) and stop is None and not signals.caught:
                    stop = self._step(log, starts)
                if signals.caught and stop is None:
                    self.checkpoint(force=True)
                    self.finish(log, f"interrupted by {signals.caught} at epoch {self.epoch}, "
                                     f"step {self.steps}")
                    raise Interrupted(f"stopped by {signals.caught} after step {self.steps} (epoch "
                                      f"{self.epoch}); the checkpoint is saved. Resume with: "
                                      f"bpcli train --resume {self.run_dir}")
                last = stop is not None or self.epoch == tcfg["epochs"]
                if not self.per_step and self.seen and self.record(log, last) and not last:
                    stop = self.stopping.reason("epoch")
                self.epoch, self.batch, self.order = self.epoch + 1, 0, None
                if stop is not None or self.epoch > tcfg["epochs"]:
                    self.checkpoint(force=True)
                elif (self.epoch - 1) % self.checkpoint_every == 0:
                    self.checkpoint()
        return self.finish(log, stop or f"finished {tcfg['epochs']} epochs")

    def _batch(self, start):
        """This step's samples: a slice (a view) or the shuffled order's gather, cast, augmented."""
        Xtr, ytr = self.train_set
        if self.order is None:
            Xb = Xtr[start:start + self.bs]
            yb = None if ytr is None else ytr[start:start + self.bs]
        else:
            idx = self.order[start:start + self.bs]
            Xb, yb = Xtr[idx], None if ytr is None else ytr[idx]
        Xb = np.asarray(Xb, dtype=self.model.dtype)  # a memory-mapped file: this batch only
        if self.augment is not None:
            Xb = augment(Xb, self.augment, self.noise_rng)
        return Xb, yb, self.model.draw_masks(Xb.shape[0], self.noise_rng)

    def _step(self, log, starts) -> str | None:
        """One optimizer step on the next batch; the reason to stop, if it is time to."""
        model, tcfg = self.model, self.tcfg
        t = time.perf_counter()
        Xb, yb, masks = self._batch(starts[self.batch])
        t2 = time.perf_counter()
        losses, grads, out, stats = model._train_step(Xb, yb, masks)
        t3 = time.perf_counter()
        self.times["data"] += t2 - t
        self.times["compute"] += t3 - t2
        loss = losses["loss"]
        self.gnorm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
        self.lr = self.schedule.at(self.steps)
        if not (np.isfinite(loss) and np.isfinite(self.gnorm)):
            where = locate_nonfinite(model, Xb, yb, masks)
            if self.on_nan == "skip":
                self.batch += 1
                self.skipped += 1
                return None
            summary = self.finish(log, f"diverged at epoch {self.epoch}, step {self.steps + 1}: "
                                       f"loss {loss}, gradient norm {self.gnorm}; first non-finite "
                                       f"value in the {where}")
            raise CheckFailed(
                f"training diverged at epoch {self.epoch}, step {self.steps + 1}: the loss is "
                f"{loss} and the gradient norm {self.gnorm}; the first non-finite value appears in "
                f"the {where}. Try a smaller optimizer.lr (now {self.lr}), or --on-nan skip. The "
                f"last finite checkpoint and the run so far are in {self.run_dir} "
                f"({summary['steps']} steps).")
        self.batch += 1
        m = Xb.shape[0]
        if self.per_step:
            self.sums, self.seen = self._zero(), 0
        for k, v in losses.items():
            self.sums[k] += v * m
        if self.has_acc:
            self.sums["accuracy"] += model.loss_def.accuracy(out, yb) * m
        self.seen += m
        t4 = time.perf_counter()
        self.times["metrics"] += t4 - t3
        step_size = self.opt.step(model.params, grads, self.lr, measure=tcfg["precision"] > 0)
        model.update_buffers(stats, m)  # batchnorm's running statistics
        self.times["optimizer"] += time.perf_counter() - t4
        self.steps += 1
        stop = None
        if tcfg["precision"] and step_size < tcfg["precision"]:
            stop = (f"converged: step size {step_size:.3g} < precision {tcfg['precision']:.3g} "
                    f"after {self.steps} steps")
        elif tcfg["max_iters"] and self.steps >= tcfg["max_iters"]:
            stop = f"reached max_iters = {tcfg['max_iters']}"
        last = stop is not None or (self.epoch == tcfg["epochs"] and self.batch == len(starts))
        if self.per_step and self.record(log, last) and not last:
            stop = self.stopping.reason("iteration")
        return stop

    def record(self, log, last) -> bool:
        """One metrics row from the summed losses of its steps; True if early stopping says stop."""
        s, seen = self.sums, self.seen
        row = {"epoch": self.epoch, "step": self.steps, "train_loss": s["loss"] / seen}
        if self.model.regularized:
            row.update(data_loss=s["data_loss"] / seen, reg_loss=s["reg_loss"] / seen)
        if self.has_acc:
            row["train_accuracy"] = s["accuracy"] / seen
        unit = self.steps if self.per_step else self.epoch
        evaluate = self.val_set is not None and (last or unit % self.tcfg["eval_every"] == 0)
        if evaluate:
            t = time.perf_counter()
            row["val_loss"], acc = self.evaluate()
            if self.has_acc:
                row["val_accuracy"] = acc
            self.times["evaluation"] += time.perf_counter() - t
            self._keep_best(row)
        row.update(grad_norm=self.gnorm, lr=self.lr, elapsed_s=self.elapsed())
        log.write(row)
        self.last_row = row
        if self.progress:
            self.progress(row)
        return evaluate and self.stopping is not None and self.stopping.should_stop(row)

    def _keep_best(self, row) -> None:
        value = row.get(self.best_metric)
        if value is None:
            return
        better = (self.best is None or (value < self.best["value"] if self.best_metric == "val_loss"
                                        else value > self.best["value"]))
        if better:
            self.best = {"metric": self.best_metric, "value": value, "epoch": row["epoch"],
                         "step": row["step"]}
            # a copy in memory now, on disk within a second (and always at the end)
            self.best_snapshot = ({k: w.copy() for k, w in self.model.arrays().items()},
                                  self.state())

    def _best_summary(self):
        """The best evaluated row by the watched metric; ``val_loss`` is there when that is the metric."""
        if self.best is None:
            return None
        out = dict(self.best)
        if out["metric"] == "val_loss":
            out["val_loss"] = out["value"]
        return out

    def finish(self, log, stop) -> dict:
        log.close()
        self._flush_best(True)
        run_dir = self.run_dir
        _atomic(run_dir / "model.npz", lambda f: np.savez(f, **self.model.arrays()))
        last = getattr(self, "last_row", {})
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        summary = {
            "name": self.spec["name"],
            "stop_reason": stop,
            "epochs": int(last.get("epoch", 0)),
            "steps": self.steps,
            "final": {k: (None if v is None else float(v)) for k, v in last.items()
                      if k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")},
            "best": self._best_summary(),
            "n_params": self.model.n_params(),
            "data": self.source,
            "data_fingerprint": self.data_fingerprint,
            "n_train": self.n,
            "n_val": 0 if self.val_set is None else int(self.val_set[0].shape[0]),
            "skipped_batches": self.skipped,
            "seed": self.spec["seed"],
            "spec_hash": self.model.spec.fingerprint(),
            "started": self.started.isoformat(timespec="seconds"),
            "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "elapsed_s": round(self.elapsed(), 3),
            "time_s": {k: round(v, 4) for k, v in self.times.items()},
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "command": self.command,
            "versions": {"bpcli": __version__, "numpy": np.__version__,
                         "python": platform.python_version()},
        }
        _atomic(run_dir / "summary.json", lambda f: f.write((json.dumps(summary, indent=2) + "\n").encode()))
        if last:
            plot_runs([run_dir], run_dir / "loss.png")
        return summary


def train(model: Model, train_set, val_set, run_dir: Path, *, source: str = "",
          progress: Callable | None = None, command: str = "", checkpoint_every: int = 1,
          on_nan: str = "stop", data_fingerprint: str | None = None) -> dict:
    """Train ``model`` in place on prepared ``(X, y)`` arrays; fill the run folder; the summary."""
    t = Trainer(model, train_set, val_set, run_dir, source=source, progress=progress,
                command=command, checkpoint_every=checkpoint_every, on_nan=on_nan,
                data_fingerprint=data_fingerprint)
    return t.run(_MetricsLog(Path(run_dir) / "metrics.csv", t.columns))


def resume(model: Model, train_set, val_set, run_dir: Path, **kw) -> dict:
    """Continue the run in ``run_dir`` from its ``last.npz``, appending to its metrics."""
    run_dir = Path(run_dir)
    t = Trainer(model, train_set, val_set, run_dir, **kw)
    t.restore(run_dir / "last.npz")
    if t.epoch > t.tcfg["epochs"]:
        raise InputError(f"this run already finished its {t.tcfg['epochs']} epochs; give --epochs N "
                         f"with N > {t.tcfg['epochs']} to train further", file=str(run_dir))
    try:
        prior = json.loads((run_dir / "summary.json").read_text())
        t.started = datetime.fromisoformat(prior["started"])
    except (OSError, ValueError, KeyError):
        pass
    return t.run(_MetricsLog(run_dir / "metrics.csv", t.columns, keep_until_step=t.steps))


def write_spec(model: Model, run_dir: Path) -> None:
    text = (f"# resolved spec of this run (every default filled in), written by bpcli {__version__}\n"
            + model.spec.to_yaml())
    _atomic(Path(run_dir) / "spec.yaml", lambda f: f.write(text.encode()))


def command_line(argv=None) -> str:
    """The command as typed: ``argv`` when the CLI ran in-process, else the process's arguments."""
    return " ".join(["bpcli", *(sys.argv[1:] if argv is None else map(str, argv))])
