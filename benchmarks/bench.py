"""Time one training step (forward + backward) of bpcli's engine against hand-written NumPy and PyTorch.

    python benchmarks/bench.py [--quick] [--out benchmarks/results]

All implementations run interleaved in one process, round after round, on the
same parameters and data; each figure is the median over rounds of the mean
step time within a round. Ratios are bpcli / hand-NumPy and bpcli / PyTorch,
measured in the same run, so machine load affects numerator and denominator
alike. Results go to ``step_times.csv`` and ``step_times.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import (  # noqa: E402
    SPEC,
    SPEC2D,
    hand_step,
    hand_step_2d,
    torch_step_2d_factory,
    torch_step_factory,
)

import bpcli  # noqa: E402
from bpcli.engine.memory import keep_freed_memory

BATCHES = (1, 16, 64, 256, 1024)


def _time(fn, min_seconds):
    """Mean seconds per call over enough calls to fill ``min_seconds``."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / n


def _data_1d(model, batch, rng):
    X = rng.standard_normal((batch, SPEC["input"][0]))
    Xp, yp = model.prepare(X, rng.choice([-1.0, 1.0], batch))
    return Xp, yp, yp                       # engine labels, hand labels, torch labels


def _data_2d(model, batch, rng):
    X = rng.standard_normal((batch, *SPEC2D["input"]))
    labels = rng.integers(0, 10, batch)
    Xp, onehot = model.prepare(X, labels)
    return Xp, onehot, labels


# name: (spec, hand-written step, PyTorch step factory, data maker)
NETWORKS = {
    "conv1d": (SPEC, hand_step, torch_step_factory, _data_1d),
    "conv2d": (SPEC2D, hand_step_2d, torch_step_2d_factory, _data_2d),
}


def bench_steps(rounds: int, min_seconds: float, networks=NETWORKS, batches=BATCHES):
    rows = []
    for net, (spec, hand, torch_factory, make_data) in networks.items():
        for dtype in ("float32", "float64"):
            for batch in batches:
                rows.append(_bench_one(net, spec, hand, torch_factory, make_data, dtype, batch,
                                       rounds, min_seconds))
                print(_line(rows[-1]), flush=True)
    return rows


def _bench_one(net, spec, hand, torch_factory, make_data, dtype, batch, rounds, min_seconds):
    model = bpcli.build(spec, dtype=dtype)
    Xp, yp, labels = make_data(model, batch, np.random.default_rng(batch))
    def engine_step():
        s = model.step(Xp, yp)
        return s.loss, s.grads
    impls = {"bpcli": engine_step,
             "hand": lambda: hand(model.params, Xp, yp)}
    torch_step = torch_factory(model.params)
    if torch_step is not None:
        import torch

        Xt, yt = torch.from_numpy(Xp), torch.from_numpy(np.asarray(labels))
        impls["torch"] = lambda: torch_step(Xt, yt)
    # the same numbers from each, else the comparison is meaningless
    ref = hand(model.params, Xp, yp)[1]
    for fn in impls.values():
        grads = fn()[1]
        for k in ref:
            np.testing.assert_allclose(np.asarray(grads[k]), ref[k],
                                       rtol=2e-3 if dtype == "float32" else 1e-9,
                                       atol=1e-5 if dtype == "float32" else 1e-12)
        fn()  # warm up
    times = {name: [] for name in impls}
    for _ in range(rounds):
        for name, fn in impls.items():
            times[name].append(_time(fn, min_seconds))
    row = {"network": net, "dtype": dtype, "batch": batch}
    row.update({f"{k}_ms": 1e3 * float(np.median(v)) for k, v in times.items()})
    row["bpcli/hand"] = row["bpcli_ms"] / row["hand_ms"]
    if "torch_ms" in row:
        row["bpcli/torch"] = row["bpcli_ms"] / row["torch_ms"]
    return row


def _rss_mb() -> float:
    """This process's resident memory now (Linux /proc), in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def bench_epoch(epochs: int = 3, n: int = 4000):
    """A real training run of specs/pulse_cnn.yaml: where an epoch's time goes (summary.json's
    time_s), and its memory against data + parameters + one batch's activations.

    Run it first in a fresh process: the peak resident memory is a high-water mark for life.
    """
    import tempfile

    from bpcli.engine import evaluate
    from bpcli.spec.validate import load, set_value
    from bpcli.train import run

    spec = set_value(load(Path(__file__).resolve().parents[1] / "specs" / "pulse_cnn.yaml"),
                     "training.epochs", epochs)
    spec = set_value(spec, "data.n", n)
    import pandas  # noqa: F401  (libraries a run loads anyway belong to the baseline)

    from bpcli.explain.plots import pyplot
    pyplot()
    before = _rss_mb()
    p = run.prepare(spec)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run.execute(p, Path(tmp) / "run")
    t = summary["time_s"]
    total = summary["elapsed_s"]
    share = {k: v / total for k, v in t.items()}
    share["other"] = 1 - sum(share.values())
    # what the run must hold: the data set (as loaded and as prepared), the parameters with the
    # optimizer's two buffers each, and every value of one training step
    bs = spec.data["training"]["batch_size"]
    X, y = p.train
    env = evaluate(p.model.program, p.model.inputs(X[:bs], y[:bs]))
    activations = sum(getattr(v, "nbytes", 0) for v in env)
    data = sum(a.nbytes for part in (p.train, p.val) for a in part if a is not None)
    params = 3 * sum(w.nbytes for w in p.model.params.values())
    need = (2 * data + params + activations) / 2 ** 20      # builtin data exists as float64 first
    grew = summary["peak_rss_mb"] - before
    return {"epochs": epochs, "seconds": total, "share": share,
            "data_and_optimizer": share["data"] + share["optimizer"],
            "peak_rss_mb": summary["peak_rss_mb"], "rss_before_mb": round(before, 1),
            "needed_mb": round(need, 1), "growth_over_needed": round(grew / need, 2)}


def _line(row):
    s = f"{row['network']:>7} {row['dtype']:>8} {row['batch']:>6} {row['bpcli_ms']:10.3f} {row['hand_ms']:10.3f}"
    s += f" {row['torch_ms']:10.3f}" if "torch_ms" in row else f" {'—':>10}"
    s += f" {row['bpcli/hand']:11.2f}"
    s += f" {row['bpcli/torch']:12.2f}" if "bpcli/torch" in row else f" {'—':>12}"
    return s


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = list(dict.fromkeys(r["network"] for r in rows))
    fig, axes = plt.subplots(len(nets), 2, figsize=(11, 4 * len(nets)), squeeze=False)
    for i, net in enumerate(nets):
        for ax, dtype in zip(axes[i], ("float32", "float64")):
            sub = [r for r in rows if r["dtype"] == dtype and r["network"] == net]
            b = [r["batch"] for r in sub]
            for key, label in (("bpcli_ms", "bpcli engine"), ("hand_ms", "hand-written NumPy"),
                               ("torch_ms", "PyTorch CPU")):
                if sub and all(key in r for r in sub):
                    ax.plot(b, [r[key] for r in sub], marker="o", label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("batch size")
            ax.set_ylabel("ms per step (median)")
            ax.set_title(f"{net} network, {dtype}: one forward + backward step")
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    rounds, min_seconds = (3, 0.05) if args.quick else (7, 0.2)
    print(f"bpcli {bpcli.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("conv1d: conv1d(8, k9, same) relu conv1d(8, k9, same) relu dense(1) logistic, length 256")
    print("conv2d: conv2d(8, 3x3) relu maxpool2 conv2d(16, 3x3) relu maxpool2 dense(10) softmax CE, "
          "1x28x28")
    print(f"{'network':>7} {'dtype':>8} {'batch':>6} {'bpcli ms':>10} {'hand ms':>10} {'torch ms':>10} "
          f"{'bpcli/hand':>11} {'bpcli/torch':>12}")
    epoch = bench_epoch(1, 100_000)   # first: its memory figures need a fresh process
    rows = bench_steps(rounds, min_seconds)
    print(f"pulse_cnn epoch: {epoch['seconds'] / epoch['epochs']:.3f} s; data + optimizer "
          f"{100 * epoch['data_and_optimizer']:.1f}% of the time ("
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in epoch["share"].items())
          + f"); memory grew {epoch['peak_rss_mb'] - epoch['rss_before_mb']:.1f} MB over the "
          f"{epoch['rss_before_mb']} MB of the loaded interpreter, "
          f"{epoch['growth_over_needed']}x the {epoch['needed_mb']} MB of data + parameters + "
          f"one batch's activations")
    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame(rows).to_csv(args.out / "step_times.csv", index=False)
    (args.out / "epoch.json").write_text(__import__("json").dumps(epoch, indent=2) + "\n")
    plot(rows, args.out / "step_times.png")
    print(f"wrote {args.out / 'step_times.csv'}, {args.out / 'epoch.json'} and "
          f"{args.out / 'step_times.png'}")


if __name__ == "__main__":
    keep_freed_memory()  # as the command line does (bpcli/engine/memory.py)
    main()
