"""The training loop and the run folder it fills.

A run folder holds ``spec.yaml`` (the resolved spec), ``metrics.csv`` (one row
per epoch, or per iteration for full-batch ``gd``), ``loss.png``,
``model.npz`` (weights, ``np.load(..., allow_pickle=False)``) and
``summary.json``. The loop is the lecture's::

    while previous_step_size > precision and iters < max_iters:
        prev_W = cur_W
        cur_W -= gamma * dL/dW
        previous_step_size = abs(cur_W - prev_W)

with the step rule supplied by the optimizer and batches drawn from the
training split.
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

COLUMNS = ["epoch", "step", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
           "grad_norm", "lr", "elapsed_s"]


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


def train(model: Model, train_set, val_set, run_dir: Path, *, source: str = "",
          progress: Callable | None = None, command: str = "") -> dict:
    """Train ``model`` in place on prepared ``(X, y)`` arrays; write the run folder; return the summary."""
    spec = model.spec.data
    cfg, tcfg = spec["optimizer"], spec["training"]
    opt = OPTIMIZERS[cfg["name"]].make(cfg)
    Xtr, ytr = train_set
    n = Xtr.shape[0]
    bs = check_batch(model, n)
    full = bs == n
    per_step = OPTIMIZERS[cfg["name"]].full_batch  # gd: one row per iteration
    has_acc = model.loss_def.accuracy is not None
    rng = np.random.default_rng(spec["seed"] + 2)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    rows: list[dict] = []
    steps, stop = 0, f"finished {tcfg['epochs']} epochs"
    acc_sum = loss_sum = 0.0
    seen = 0

    def record(epoch, train_loss, train_acc, grad_norm):
        row = {"epoch": epoch, "step": steps, "train_loss": train_loss}
        if val_set is not None:
            vl, vout = model._loss_and_output(*val_set)
            row["val_loss"] = vl
        if has_acc:
            row["train_accuracy"] = train_acc
            if val_set is not None:
                row["val_accuracy"] = model.loss_def.accuracy(vout, val_set[1])
        row.update(grad_norm=grad_norm, lr=cfg["lr"], elapsed_s=time.perf_counter() - t0)
        rows.append(row)
        if progress:
            progress(row)

    done = False
    for epoch in range(1, tcfg["epochs"] + 1):
        order = rng.permutation(n) if (tcfg["shuffle"] and not full) else None
        loss_sum = acc_sum = 0.0
        seen = 0
        for start in range(0, n, bs):
            if order is None:  # contiguous slices are views: no copy per step
                Xb, yb = Xtr[start:start + bs], None if ytr is None else ytr[start:start + bs]
            else:
                idx = order[start:start + bs]
                Xb, yb = Xtr[idx], None if ytr is None else ytr[idx]
            loss, grads, out = model._loss_grad_output(Xb, yb)
            gnorm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
            if not (np.isfinite(loss) and np.isfinite(gnorm)):
                _finish(model, run_dir, rows, spec, started, t0, steps, source, command,
                        stop=f"diverged at step {steps + 1}: loss {loss}, gradient norm {gnorm}")
                raise CheckFailed(f"training diverged at epoch {epoch}, step {steps + 1}: the loss "
                                  f"is {loss} and the gradient norm {gnorm}; try a smaller "
                                  f"optimizer.lr (now {cfg['lr']}). The run so far is in {run_dir}")
            acc = model.loss_def.accuracy(out, yb) if has_acc else None
            m = Xb.shape[0]
            loss_sum, seen = loss_sum + loss * m, seen + m
            acc_sum += (acc or 0.0) * m
            step_size = opt.step(model.params, grads)
            steps += 1
            if per_step:
                record(epoch, loss, acc, gnorm)
            if step_size < tcfg["precision"]:
                stop, done = (f"converged: step size {step_size:.3g} < precision "
                              f"{tcfg['precision']:.3g} after {steps} steps"), True
            elif tcfg["max_iters"] and steps >= tcfg["max_iters"]:
                stop, done = f"reached max_iters = {tcfg['max_iters']}", True
            if done:
                break
        if not per_step:
            record(epoch, loss_sum / seen, acc_sum / seen if has_acc else None, gnorm)
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

