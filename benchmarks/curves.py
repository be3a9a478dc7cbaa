"""Every shipped spec trained on the CPU and on the GPU: the same curve, to float rounding.

    python benchmarks/curves.py [--specs specs/*.yaml] [--out benchmarks/results]

Each spec in ``specs/`` is trained in full twice with ``bpcli train SPEC --device cpu`` and
``--device gpu`` (the same seed, so the same initial weights, sample order, dropout masks and
augmentations: random numbers stay on the host). The two runs' metrics.csv are compared epoch by
epoch: the largest relative difference of train_loss and val_loss, and the final validation
accuracy of each. A GPU sums in another order than NumPy's BLAS, so the curves agree to float
rounding, growing slowly over the epochs; a device bug shows as a jump. Also the whole-run wall
time on each device (one run each: a rough figure, compilation of CUDA kernels included).

Writes ``gpu_curves.csv`` and ``gpu_curves.png`` (each spec's loss curves, CPU solid, GPU dashed)
in ``--out``. Without a GPU it says why and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bpcli.cli import main as bpcli
from bpcli.engine import backend
from bpcli.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def train(spec: Path, device: str, folder: Path) -> tuple[pd.DataFrame, float]:
    """``bpcli train SPEC --device DEVICE`` into ``folder``: its metrics and wall seconds."""
    start = time.perf_counter()
    code = bpcli(["train", str(spec), "-q", "--device", device, "--out", str(folder)])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"bpcli train {spec} --device {device} exited {code}")
    return pd.read_csv(folder / "metrics.csv"), seconds


def relative_difference(cpu: pd.DataFrame, gpu: pd.DataFrame, column: str) -> float:
    """max |a - b| / max(|a|, 1e-12) of one metrics column over the epochs both runs have (NaN
    where the column is missing: no validation data)."""
    if column not in cpu or column not in gpu:
        return float("nan")
    n = min(len(cpu), len(gpu))
    a, b = cpu[column].to_numpy(float)[:n], gpu[column].to_numpy(float)[:n]
    ok = ~(np.isnan(a) | np.isnan(b))
    if not ok.any():
        return float("nan")
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-12)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=Path, nargs="+", default=sorted((ROOT / "specs").glob("*.yaml")))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    a = ap.parse_args(argv)
    try:
        backend.check("gpu")
    except InputError as e:
        print(f"no GPU here, nothing compared: {e}")
        return 0
    rows, curves = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.specs:
            m = {}
            for device in ("cpu", "gpu"):
                m[device], seconds = train(spec, device, Path(tmp) / f"{spec.stem}-{device}")
                m[f"{device}_s"] = seconds
            cpu, gpu = m["cpu"], m["gpu"]
            row = {"spec": spec.name, "epochs_cpu": len(cpu), "epochs_gpu": len(gpu),
                   "train_loss_rel_diff": relative_difference(cpu, gpu, "train_loss"),
                   "val_loss_rel_diff": relative_difference(cpu, gpu, "val_loss"),
                   "final_train_loss_cpu": float(cpu["train_loss"].iloc[-1]),
                   "final_train_loss_gpu": float(gpu["train_loss"].iloc[-1]),
                   "final_val_accuracy_cpu": float(cpu.get("val_accuracy", pd.Series([np.nan])).iloc[-1]),
                   "final_val_accuracy_gpu": float(gpu.get("val_accuracy", pd.Series([np.nan])).iloc[-1]),
                   "cpu_s": m["cpu_s"], "gpu_s": m["gpu_s"]}
            rows.append(row)
            curves[spec.name] = (cpu, gpu)
            print(", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()), flush=True)
            # after every spec: a run cut short by a time limit keeps what it measured
            a.out.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(a.out / "gpu_curves.csv", index=False)
    _plot(curves, a.out / "gpu_curves.png")
    print(f"results: {a.out / 'gpu_curves.csv'}, {a.out / 'gpu_curves.png'}")
    return 0


def _plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.2), squeeze=False)
    for ax, (name, (cpu, gpu)) in zip(axes[0], curves.items()):
        for frame, style, device in ((cpu, "-", "cpu"), (gpu, "--", "gpu")):
            for column, color in (("train_loss", "C0"), ("val_loss", "C1")):
                if column in frame and frame[column].notna().any():
                    ax.plot(frame["epoch"], frame[column], style, color=color,
                            label=f"{column} ({device})")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    axes[0][0].set_ylabel("loss")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
