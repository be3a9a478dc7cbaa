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
from reference import SPEC, hand_step, torch_step_factory  # noqa: E402

import bpcli  # noqa: E402

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


def bench_steps(rounds: int, min_seconds: float):
    rows = []
    for dtype in ("float32", "float64"):
        for batch in BATCHES:
            model = bpcli.build(SPEC, dtype=dtype)
            rng = np.random.default_rng(batch)
            X = rng.standard_normal((batch, SPEC["input"][0])).astype(dtype)
            y = rng.choice([-1.0, 1.0], batch)
            Xp, yp = model.prepare(X, y)
            impls = {"bpcli": lambda: model._loss_and_grad(Xp, yp),
                     "hand": lambda: hand_step(model.params, Xp, yp)}
            torch_step = torch_step_factory(model.params)
            if torch_step is not None:
                import torch

                Xt, yt = torch.from_numpy(Xp), torch.from_numpy(yp)
                impls["torch"] = lambda: torch_step(Xt, yt)
            # same numbers from each, else the comparison is meaningless
            ref = hand_step(model.params, Xp, yp)[1]
            for name, fn in impls.items():
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
            row = {"dtype": dtype, "batch": batch}
            row.update({f"{k}_ms": 1e3 * float(np.median(v)) for k, v in times.items()})
            row["bpcli/hand"] = row["bpcli_ms"] / row["hand_ms"]
            if "torch_ms" in row:
                row["bpcli/torch"] = row["bpcli_ms"] / row["torch_ms"]
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _line(row):
    s = f"{row['dtype']:>8} {row['batch']:>6} {row['bpcli_ms']:10.3f} {row['hand_ms']:10.3f}"
    s += f" {row['torch_ms']:10.3f}" if "torch_ms" in row else f" {'—':>10}"
    s += f" {row['bpcli/hand']:11.2f}"
    s += f" {row['bpcli/torch']:12.2f}" if "bpcli/torch" in row else f" {'—':>12}"
    return s


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, dtype in zip(axes, ("float32", "float64")):
        sub = [r for r in rows if r["dtype"] == dtype]
        b = [r["batch"] for r in sub]
        for key, label in (("bpcli_ms", "bpcli engine"), ("hand_ms", "hand-written NumPy"),
                           ("torch_ms", "PyTorch CPU")):
            if all(key in r for r in sub):
                ax.plot(b, [r[key] for r in sub], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_title(f"one forward + backward step, {dtype}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ms per step (median)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    rounds, min_seconds = (3, 0.05) if args.quick else (7, 0.2)
    print(f"bpcli {bpcli.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("network: conv1d(8, k9, same) relu conv1d(8, k9, same) relu dense(1) logistic, "
          "input length 256")
    print(f"{'dtype':>8} {'batch':>6} {'bpcli ms':>10} {'hand ms':>10} {'torch ms':>10} "
          f"{'bpcli/hand':>11} {'bpcli/torch':>12}")
    rows = bench_steps(rounds, min_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.DataFrame(rows).to_csv(args.out / "step_times.csv", index=False)
    plot(rows, args.out / "step_times.png")
    print(f"wrote {args.out / 'step_times.csv'} and {args.out / 'step_times.png'}")


if __name__ == "__main__":
    main()
