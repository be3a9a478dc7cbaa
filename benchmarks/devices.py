"""bpcli on each device against PyTorch on the same: one training step and one epoch.

    python benchmarks/devices.py [--batches 100 4096] [--rounds 3] [--devices cpu gpu]
                                 [--out benchmarks/results]

Two networks, float32, plain SGD, the same starting weights in both libraries:

- ``convbase``: MNIST-1D's ConvBase (conv1d 25 channels k5, k3, k3, each with ReLU, dense to 10)
  on synthetic MNIST-1D-like signals (length 40, 10 classes: a class's template shifted and
  noised), at least 40 samples per class;
- ``image``: a 1×64×64 image network (two blocks of conv2d 3×3 + ReLU + 2×2 max-pool, 16 and 32
  channels, dense to 10) on noisy random images.

The epoch runs over max(400, batch) samples in a fresh random order. On the CPU bpcli and
PyTorch run at 1 thread and at all the cores this process may use; on a GPU (CuPy found and a
CUDA device, and PyTorch with CUDA) bpcli ``--device gpu`` against PyTorch CUDA, waiting for the
device before every clock read. Rows that cannot run here are printed with the reason. Each
figure is the median over rounds, the two libraries interleaved round by round; ratios are
bpcli / PyTorch from the same rounds. Results: ``devices.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import bpcli
from bpcli.engine import backend
from bpcli.engine.memory import keep_freed_memory
from bpcli.engine.threads import available, limit
from bpcli.errors import InputError
from bpcli.train.optim import OPTIMIZERS

LR = 0.01
NETWORKS = {
    "convbase": {"name": "convbase", "input": [1, 40], "dtype": "float32",
                 "layers": [{"conv1d": {"channels": 25, "kernel": 5, "pad": "same"}}, "relu",
                            {"conv1d": {"channels": 25, "kernel": 3, "pad": "same"}}, "relu",
                            {"conv1d": {"channels": 25, "kernel": 3, "pad": "same"}}, "relu",
                            {"dense": {"units": 10}}],
                 "loss": "softmax_cross_entropy", "optimizer": {"name": "sgd", "lr": LR}},
    "image": {"name": "image", "input": [1, 64, 64], "dtype": "float32",
              "layers": [{"conv2d": {"channels": 16, "kernel": 3, "pad": "same"}}, "relu",
                         {"maxpool2d": {"size": 2}},
                         {"conv2d": {"channels": 32, "kernel": 3, "pad": "same"}}, "relu",
                         {"maxpool2d": {"size": 2}}, {"dense": {"units": 10}}],
              "loss": "softmax_cross_entropy", "optimizer": {"name": "sgd", "lr": LR}},
}


def synthetic(net: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n samples (float32) and their labels 0..9: each class a fixed random template, shifted
    and noised (MNIST-1D's recipe, without its digit shapes)."""
    shape = tuple(NETWORKS[net]["input"])
    templates = rng.standard_normal((10, *shape)).astype(np.float32)
    y = np.arange(n) % 10
    X = np.roll(templates[y], rng.integers(-3, 4), axis=-1)
    return (X + 0.5 * rng.standard_normal(X.shape)).astype(np.float32), y


# ---------------------------------------------------------------- the two libraries
class Bpcli:
    """bpcli's model and SGD on ``device``: a step is Model.step plus the optimizer's update."""

    def __init__(self, net, device):
        self.model = bpcli.build(NETWORKS[net]).to(device)
        self.opt = OPTIMIZERS["sgd"].make({"name": "sgd", "lr": LR, "momentum": 0.0,
                                           "nesterov": False, "weight_decay": 0.0,
                                           "grad_clip": None})

    def weights(self):
        return self.model.arrays(host=True)

    def step(self, X, y):
        s = self.model.step(X, y, train=True)
        self.opt.step(self.model.params, s.grads, LR, measure=False)
        backend.synchronize(next(iter(self.model.params.values())))
        return s.loss

    def prepare(self, X, y):
        # on the device, as PyTorch's prepare puts its tensors there: a timed step then moves no
        # data (an epoch prepares every batch, so both libraries pay the copy there)
        X, y = self.model.prepare(X, y)
        device = self.model.device
        return backend.to_device(X, device), None if y is None else backend.to_device(y, device)


class Torch:
    """The same network in PyTorch (torch.nn.functional), from bpcli's starting weights."""

    def __init__(self, net, weights, device):
        import torch

        self.torch, self.net, self.device = torch, net, device
        self.w = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in weights.items()}
        self.opt = torch.optim.SGD(list(self.w.values()), lr=LR)

    def prepare(self, X, y):
        t = self.torch
        return t.tensor(X, device=self.device), t.tensor(y, device=self.device)

    def step(self, X, y):
        F, w = self.torch.nn.functional, self.w
        self.opt.zero_grad()
        if self.net == "convbase":
            h = X
            for i, pad in ((0, 2), (2, 1), (4, 1)):
                h = F.relu(F.conv1d(h, w[f"layers.{i}.weight"], w[f"layers.{i}.bias"], padding=pad))
            last = 6
        else:
            h = X
            for i in (0, 3):
                h = F.max_pool2d(F.relu(F.conv2d(h, w[f"layers.{i}.weight"], w[f"layers.{i}.bias"],
                                                 padding=1)), 2)
            last = 6
        f = F.linear(h.reshape(h.shape[0], -1), w[f"layers.{last}.weight"], w[f"layers.{last}.bias"])
        loss = F.cross_entropy(f, y)
        loss.backward()
        self.opt.step()
        if self.device == "cuda":
            self.torch.cuda.synchronize()
        return float(loss.detach())


# ---------------------------------------------------------------- timing
def timed_step(lib, X, y, repeat):
    lib.step(X, y)  # warm up: plans, kernels, caches
    start = time.perf_counter()
    for _ in range(repeat):
        lib.step(X, y)
    return (time.perf_counter() - start) / repeat


def timed_epoch(lib, X, y, batch, rng):
    order = rng.permutation(X.shape[0])
    start = time.perf_counter()
    for s in range(0, X.shape[0], batch):
        idx = order[s:s + batch]
        lib.step(*lib.prepare(X[idx], y[idx]))
    return time.perf_counter() - start


def compare(net, batch, bpcli_device, torch_device, threads, rounds, repeat):
    """Median step and epoch seconds of both libraries, interleaved; bpcli / PyTorch ratios."""
    rng = np.random.default_rng(0)
    n = max(400, batch)
    X, y = synthetic(net, n, rng)
    b = Bpcli(net, bpcli_device)
    libs = {"bpcli": b}
    try:
        libs["torch"] = Torch(net, b.weights(), torch_device)
    except ImportError:
        pass
    times = {k: {"step": [], "epoch": []} for k in libs}
    if "torch" in libs:
        libs["torch"].torch.set_num_threads(threads)
    with limit(threads):
        for _ in range(rounds):
            for name, lib in libs.items():
                times[name]["step"].append(timed_step(lib, *lib.prepare(X[:batch], y[:batch]),
                                                      repeat))
                times[name]["epoch"].append(timed_epoch(lib, X, y, batch, rng))
    row = {"network": net, "batch": batch, "samples": n, "device": bpcli_device, "threads": threads}
    for name, t in times.items():
        for what, values in t.items():
            row[f"{name}_{what}_ms"] = 1e3 * float(np.median(values))
    if "torch" in libs:
        for what in ("step", "epoch"):
            row[f"{what}_ratio"] = row[f"bpcli_{what}_ms"] / row[f"torch_{what}_ms"]
    return row


def gpu_missing() -> str | None:
    """Why the GPU rows cannot run here, or None."""
    try:
        backend.check("gpu")
    except InputError as e:
        return str(e)
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    return None if torch.cuda.is_available() else "PyTorch finds no CUDA device"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[100, 4096])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5, help="steps per timed step figure")
    ap.add_argument("--devices", nargs="+", choices=["cpu", "gpu"], default=["cpu", "gpu"],
                    help="which rows to run (the CPU rows at batch 4096 take minutes)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    a = ap.parse_args(argv)
    plans = [("cpu", "cpu", t) for t in sorted({1, available()}) if "cpu" in a.devices]
    why = gpu_missing() if "gpu" in a.devices else "not asked for (--devices)"
    if why is None:
        plans.append(("gpu", "cuda", 1))
    rows = []
    print(f"{'network':9} {'batch':>5} {'device':6} {'thr':>3} {'bpcli step':>11} "
          f"{'torch step':>11} {'ratio':>6} {'bpcli epoch':>12} {'torch epoch':>12} {'ratio':>6}")
    for net in NETWORKS:
        for batch in a.batches:
            for device, torch_device, threads in plans:
                r = compare(net, batch, device, torch_device, threads, a.rounds, a.repeat)
                rows.append(r)
                print(f"{net:9} {batch:>5} {device:6} {threads:>3} {r['bpcli_step_ms']:>9.2f}ms "
                      f"{r.get('torch_step_ms', float('nan')):>9.2f}ms "
                      f"{r.get('step_ratio', float('nan')):>6.2f} {r['bpcli_epoch_ms']:>10.1f}ms "
                      f"{r.get('torch_epoch_ms', float('nan')):>10.1f}ms "
                      f"{r.get('epoch_ratio', float('nan')):>6.2f}", flush=True)
    if why is not None:
        print(f"gpu rows skipped: {why}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "devices.json").write_text(json.dumps(
        {"rows": rows, "gpu_skipped": why, "machine": platform.processor() or platform.machine(),
         "numpy": np.__version__, "python": platform.python_version()}, indent=1))
    print(f"results: {a.out / 'devices.json'}")


if __name__ == "__main__":
    keep_freed_memory()  # as the command line does (bpcli/engine/memory.py)
    sys.exit(main())
