"""The training loop and the run folder it fills.

A run folder holds ``spec.yaml`` (the resolved spec), ``metrics.csv`` (one row
per epoch, or per iteration for full-batch ``gd``; ``data_loss`` and
``reg_loss`` beside ``train_loss`` when the spec has regularization), ``loss.png``,
``model.npz`` (weights, ``np.load(..., allow_pickle=False)``) and
``summary.json``. The loop is the lecture's::

    while previous_step_size > precision and iters < max_iters:
        prev_W = cur_W
        cur_W -= gamma * dL/dW
        previous_step_size = abs(cur_W - prev_W)

with the step rule supplied by the optimizer, its lr by the schedule, and
batches drawn from the training split; early stopping watches validation.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .errors import CheckFailed
from .model import Model
from .optim import OPTIMIZERS
from .plot import plot_runs
from .schedule import Schedule

COLUMNS = ["epoch", "step", "train_loss", "data_loss", "reg_loss", "val_loss", "train_accuracy",
           "val_accuracy", "grad_norm", "lr", "elapsed_s"]


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
        return n_train
    if bs > n_train:
        raise model.spec.error("training.batch_size", f"batch_size {bs} is larger than the "
                                                       f"{n_train} training samples")
    return bs


class _EarlyStopping:
    """Counts evaluations since the metric last improved (strictly: lower loss, higher accuracy)."""

    def __init__(self, cfg):
        self.metric, self.patience = cfg["metric"], cfg["patience"]
        self.sign = 1.0 if self.metric == "val_loss" else -1.0
        self.best = self.best_epoch = None
        self.waited = 0

    def should_stop(self, row) -> bool:
        value = row[self.metric]
        if self.best is None or self.sign * value < self.sign * self.best:
            self.best, self.best_epoch, self.waited = value, row["epoch"], 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    def reason(self, unit) -> str:
        return (f"early stopping: {self.metric} did not improve for {self.patience} evaluations "
                f"(best {self.best:.4g} at {unit} {self.best_epoch})")


def train(model: Model, train_set, val_set, run_dir: Path, *, source: str = "",
          progress: Callable | None = None, command: str = "") -> dict:
    """Train ``model`` in place on prepared ``(X, y)`` arrays; write the run folder; return the summary.

    Each step: loss and gradient by one forward and one backward pass, then the optimizer's
    update with the schedule's lr for this step. Rows are written per epoch (per iteration for
    ``gd``); validation is evaluated every ``training.eval_every`` rows and on the last one.
    """
    spec = model.spec.data
    cfg, tcfg = spec["optimizer"], spec["training"]
    if tcfg["early_stopping"] is not None and val_set is None:
        raise model.spec.error("training.early_stopping", "needs validation data, but the "
                                                          "validation split is empty")
    opt = OPTIMIZERS[cfg["name"]].make(cfg)
    Xtr, ytr = train_set
    n = Xtr.shape[0]
    bs = check_batch(model, n)
    full = bs == n
    per_step = OPTIMIZERS[cfg["name"]].full_batch  # gd: one row per iteration
    schedule = Schedule(spec["schedule"], cfg["lr"], tcfg["epochs"], -(-n // bs), tcfg["max_iters"])
    stopping = _EarlyStopping(tcfg["early_stopping"]) if tcfg["early_stopping"] else None
    has_acc = model.loss_def.accuracy is not None
    rng = np.random.default_rng(spec["seed"] + 2)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    rows: list[dict] = []
    steps, stop = 0, f"finished {tcfg['epochs']} epochs"

    def record(epoch, sums, seen, grad_norm, lr, last):
        """One metrics row from the summed losses of its steps; True if early stopping says stop."""
        row = {"epoch": epoch, "step": steps, "train_loss": sums["loss"] / seen}
        if model.regularized:
            row.update(data_loss=sums["data_loss"] / seen, reg_loss=sums["reg_loss"] / seen)
        if has_acc:
            row["train_accuracy"] = sums["accuracy"] / seen
        evaluate = val_set is not None and (last or (epoch if not per_step else steps)
                                            % tcfg["eval_every"] == 0)
        if evaluate:
            row["val_loss"], vout = model._loss_and_output(*val_set)
            if has_acc:
                row["val_accuracy"] = model.loss_def.accuracy(vout, val_set[1])
        row.update(grad_norm=grad_norm, lr=lr, elapsed_s=time.perf_counter() - t0)
        rows.append(row)
        if progress:
            progress(row)
        return evaluate and stopping is not None and stopping.should_stop(row)

    def zero():
        return dict.fromkeys(("loss", "data_loss", "reg_loss", "accuracy"), 0.0)

    done = False
    for epoch in range(1, tcfg["epochs"] + 1):
        order = rng.permutation(n) if (tcfg["shuffle"] and not full) else None
        sums, seen = zero(), 0
        for start in range(0, n, bs):
            if order is None:  # contiguous slices are views: no copy per step
                Xb, yb = Xtr[start:start + bs], None if ytr is None else ytr[start:start + bs]
            else:
                idx = order[start:start + bs]
                Xb, yb = Xtr[idx], None if ytr is None else ytr[idx]
            losses, grads, out = model._losses_grad_output(Xb, yb)
            loss = losses["loss"]
            gnorm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
            lr = schedule.at(steps)
            if not (np.isfinite(loss) and np.isfinite(gnorm)):
                _finish(model, run_dir, rows, spec, started, t0, steps, source, command,
                        stop=f"diverged at step {steps + 1}: loss {loss}, gradient norm {gnorm}")
                raise CheckFailed(f"training diverged at epoch {epoch}, step {steps + 1}: the loss "
                                  f"is {loss} and the gradient norm {gnorm}; try a smaller "
                                  f"optimizer.lr (now {lr}). The run so far is in {run_dir}")
            m = Xb.shape[0]
            if per_step:
                sums, seen = zero(), 0
            for k, v in losses.items():
                sums[k] += v * m
            if has_acc:
                sums["accuracy"] += model.loss_def.accuracy(out, yb) * m
            seen += m
            step_size = opt.step(model.params, grads, lr)
            steps += 1
            if step_size < tcfg["precision"]:
                stop, done = (f"converged: step size {step_size:.3g} < precision "
                              f"{tcfg['precision']:.3g} after {steps} steps"), True
            elif tcfg["max_iters"] and steps >= tcfg["max_iters"]:
                stop, done = f"reached max_iters = {tcfg['max_iters']}", True
            last = done or epoch == tcfg["epochs"]
            if per_step and record(epoch, sums, seen, gnorm, lr, last) and not last:
                stop, done = stopping.reason("iteration"), True
            if done:
                break
        last = done or epoch == tcfg["epochs"]
        if not per_step and record(epoch, sums, seen, gnorm, lr, last) and not last:
            stop, done = stopping.reason("epoch"), True
        if done:
            break
    return _finish(model, run_dir, rows, spec, started, t0, steps, source, command, stop=stop)


def _finish(model, run_dir, rows, spec, started, t0, steps, source, command, *, stop) -> dict:
    import pandas as pd

    run_dir = Path(run_dir)
    df = pd.DataFrame(rows)
    df = df[[c for c in COLUMNS if c in df.columns]] if rows else pd.DataFrame(columns=COLUMNS[:3])
    df.to_csv(run_dir / "metrics.csv", index=False)
    model.save(run_dir / "model.npz")
    last = rows[-1] if rows else {}
    best = None
    if "val_loss" in df.columns and len(df):
        i = int(df["val_loss"].idxmin())
        best = {"val_loss": float(df["val_loss"][i]), "epoch": int(df["epoch"][i]),
                "step": int(df["step"][i])}
    summary = {
        "name": spec["name"],
        "stop_reason": stop,
        "epochs": int(last.get("epoch", 0)),
        "steps": steps,
        "final": {k: (None if v is None else float(v)) for k, v in last.items()
                  if k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")},
        "best": best,
        "n_params": model.n_params(),
        "data": source,
        "seed": spec["seed"],
        "spec_hash": model.spec.fingerprint(),
        "started": started.isoformat(timespec="seconds"),
        "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "command": command,
        "versions": {"bpcli": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if rows:
        plot_runs([run_dir], run_dir / "loss.png")
    return summary


def write_spec(model: Model, run_dir: Path) -> None:
    (Path(run_dir) / "spec.yaml").write_text(
        f"# resolved spec of this run (every default filled in), written by bpcli {__version__}\n"
        + model.spec.to_yaml())


def command_line(argv=None) -> str:
    """The command as typed: ``argv`` when the CLI ran in-process, else the process's arguments."""
    return " ".join(["bpcli", *(sys.argv[1:] if argv is None else map(str, argv))])

