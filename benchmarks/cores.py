"""Issue 23's benchmark: bpcli's engine on imaging-size networks at 1 and 2 threads, against
PyTorch (CPU) at the same thread count, in one process, ratios from the same rounds.

    python benchmarks/cores.py [--quick] [--out DIR] [--only NAME ...] [--rounds N]

**Networks** (float32; each written as a bpcli YAML spec to a temporary folder and built with
``bpcli.build``; PyTorch runs the same layers in ``torch.nn.functional``, ``torch_forward`` of
benchmarks/unet.py, from bpcli's initial parameters copied by name):

- ``cnn128``: input 1×128×128; conv2d 16 k3 same, batchnorm, relu, maxpool2d 2; the same with 32
  and 64 channels; dense 3; softmax_cross_entropy; batch 32.
- ``cnn96``: the same on 3×96×96; batch 32.
- ``unet128``: the layers of specs/unet_shapes.yaml (two encoder stages, bottleneck, two
  conv2d_transpose + concat decoder stages, 4 class scores per pixel) on 1×128×128, its own loss
  ``dice_cross_entropy`` (cross-entropy over pixels + soft Dice, MONAI's DiceCELoss; in PyTorch
  ``torch_dice_ce`` of benchmarks/unet.py); the spec's ``preprocess`` and ``augment`` are left
  out (outside the step); batch 32.
- ``convbase``: MNIST-1D's ConvBase as benchmarks/devices.py defines it (conv1d 25 k5, k3, k3
  same, each with relu, dense 10; input 1×40), on that file's synthetic signals; batch 100 (as
  devices.py's rows) and 32.

**A training step**: bpcli ``model.step(X, y, train=True, masks=masks)`` (forward, loss, backward:
the gradient of every parameter; no optimizer update) against PyTorch's forward + loss +
``backward()`` (batchnorm on batch statistics, ``training=True``). X and labels are
``bpcli.explain.gradcheck.random_batch`` (standard normal inputs, random labels) prepared by
``model.prepare``, and the same arrays for PyTorch (convbase: devices.py's ``synthetic``).
Before anything is timed, one step of each is compared: the losses must agree to 1e-4 relative and
every gradient to 1e-3 of its largest entry (an AssertionError says which otherwise), so that the
two compute the same thing.

**Validation**: cnn128's evaluation pass over 256 samples in batches of 32 (the training batch;
the trainer's own validation chunk, ``train.evaluate.batch_size``, caps it at 19 here to keep a
batch's activations under 256 MB: the JSON keeps that figure as ``trainer_batch``): bpcli the
call the trainer's validation loop makes,
``model.step(X, y, grad=False)`` (evaluation program: batchnorm on its running statistics, and the
loss); PyTorch the forward + cross-entropy under ``torch.no_grad()`` with batchnorm in evaluation
mode on the same running statistics (set to random values first, so that the check above, made
for this pass too, means something). Milliseconds per 256 samples.

**Timing**: bpcli at n threads is ``bpcli.engine.threads.limit(n)`` (n batch-slice workers, every
BLAS / OpenMP pool at 1 thread); PyTorch is ``torch.set_num_threads(n)``, set outside ``limit``
(whose threadpoolctl limit would otherwise hold PyTorch's OpenMP pool at 1). Thread counts: 1, 2,
and ``threads.available()`` when that is more. Each implementation warms up at every thread count,
then runs enough steps a round to fill ``--min-seconds`` (0.3 s); each round runs both
implementations at every thread count back to back (which goes first alternates round by round),
``--rounds`` rounds (5). Figures: the median over the rounds of each round's mean time a step;
bpcli/PyTorch and the speed-ups (1 thread / n threads) are the medians of each round's own ratio,
so a machine that slows down mid-run slows both sides of a ratio alike. ``--quick``: 2 rounds of
0.05 s, convbase at batch 100 only, the validation pass over 64 samples: a check that it runs,
not figures to quote.

**Issue 23's targets**: bpcli / PyTorch ≤ 1.2 at 1 thread and ≤ 1.3 at 2 threads on both imaging
networks (cnn128, cnn96) at batch 32; bpcli's speed-up 1 → 2 threads ≥ 1.7× on a quiet 2-core
machine; validation ≤ 1.5× PyTorch's time.

Results: a markdown table on stdout; ``cores.json`` in ``--out`` (default benchmarks/results):
the rows, the date, the machine, NumPy's and PyTorch's versions, the load average at the start
and at the end (``os.getloadavg()``: a busy machine spoils the thread speed-ups). Without PyTorch
the bpcli rows alone are measured and the ratio columns stay empty.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import yaml

import bpcli
from bpcli.engine.memory import keep_freed_memory
from bpcli.engine.threads import available, limit
from bpcli.explain.gradcheck import random_batch
from bpcli.train.evaluate import batch_size

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import devices  # noqa: E402  (benchmarks/devices.py: ConvBase's spec and data)
from unet import layer_list, torch_dice_ce, torch_forward  # noqa: E402,F401

UNET_SPEC = ROOT / "specs" / "unet_shapes.yaml"
LOSS_TOL, GRAD_TOL = 1e-4, 1e-3
WIRING_TOL, VANISHING = 5e-2, 1e-4
VAL_SAMPLES, VAL_BATCH = 256, 32


# ---------------------------------------------------------------- the specs
def cnn_spec(name: str, input_shape: list[int]) -> dict:
    layers = []
    for channels in (16, 32, 64):
        layers += [{"conv2d": {"channels": channels, "kernel": 3, "pad": "same"}}, "batchnorm",
                   "relu", {"maxpool2d": {"size": 2}}]
    layers.append({"dense": {"units": 3}})
    return {"name": name, "version": 1, "input": input_shape, "dtype": "float32", "seed": 0,
            "data": {"builtin": "shapes", "n": 256, "classes": 3, "val_split": 0.2},
            "layers": layers, "loss": "softmax_cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.003},
            "training": {"epochs": 1, "batch_size": 32}}


def unet_spec() -> dict:
    spec = yaml.safe_load(UNET_SPEC.read_text())
    spec["name"], spec["input"] = "unet128", [1, 128, 128]
    spec.pop("preprocess", None)                    # a map before the network: not the step's
    spec.get("training", {}).pop("augment", None)   # done on the batch before the step
    return spec


def convbase_spec() -> dict:
    spec = copy.deepcopy(devices.NETWORKS["convbase"])
    spec.update(version=1, seed=0, training={"epochs": 1, "batch_size": 100})
    return spec


# name -> (spec, batches, batches with --quick)
NETWORKS = {
    "cnn128": (lambda: cnn_spec("cnn128", [1, 128, 128]), (32,), (32,)),
    "cnn96": (lambda: cnn_spec("cnn96", [3, 96, 96]), (32,), (32,)),
    "unet128": (unet_spec, (32,), (32,)),
    "convbase": (convbase_spec, (100, 32), (100,)),
}


# ---------------------------------------------------------------- one network, both libraries
class Case:
    """One network at one batch: bpcli's model, its prepared batch and masks, and (with PyTorch)
    the same weights, batch and loss in PyTorch."""

    def __init__(self, name: str, spec: dict, batch: int, workdir: Path, torch, seed: int = 0):
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        self.name, self.batch, self.torch = name, batch, torch
        self.model = m = bpcli.build(path)
        self.input = "×".join(str(d) for d in m.spec.data["input"])
        if name == "convbase":
            X, y = devices.synthetic("convbase", batch, np.random.default_rng(seed))
        else:
            X, y = random_batch(m, batch, seed)
        self.X, self.y = m.prepare(X, y)
        self.masks = m.draw_masks(batch, np.random.default_rng(seed))
        self.labels = np.asarray(y, dtype=np.int64)
        self.loss = m.spec.data["loss"]
        if torch is not None:
            self.layers = layer_list(m.spec)
            self.w = self.torch_weights()
            self.tX = torch.from_numpy(np.ascontiguousarray(self.X))
            self.tY = torch.from_numpy(self.labels)

    def torch_weights(self):
        t = self.torch
        w = {k: t.tensor(np.asarray(v), requires_grad=True) for k, v in self.model.params.items()}
        w.update({k: t.tensor(np.asarray(v)) for k, v in self.model.buffers.items()})
        return w

    def torch_loss(self, out, y):
        F = self.torch.nn.functional
        loss = self.loss
        if loss["name"] == "softmax_cross_entropy":
            return F.cross_entropy(out, y)
        if loss["name"] == "dice_cross_entropy":
            assert loss["dice_weight"] == 1.0 and loss["ce_weight"] == 1.0, loss
            return torch_dice_ce(out, y, loss["smooth"])
        raise NotImplementedError(f"{self.name}: loss {loss['name']} not written in PyTorch here")

    # a training step of each
    def bpcli_step(self):
        return self.model.step(self.X, self.y, train=True, masks=self.masks)

    def torch_step(self):
        for k, v in self.w.items():
            if v.requires_grad:
                v.grad = None
        loss = self.torch_loss(torch_forward(self.layers, self.w, self.tX, train=True), self.tY)
        loss.backward()
        return loss

    def check(self) -> dict:
        """One step of each, compared (AssertionError otherwise): the losses to LOSS_TOL
        relative; the gradient of the last layer's weight to GRAD_TOL of its largest entry; every
        other gradient to WIRING_TOL of its largest entry (float32 sums over 10^4..10^5 values
        per channel differ by more than GRAD_TOL between the two, a wiring mistake by O(1)),
        except gradients that vanish in both (a conv bias before batchnorm: exactly 0 but for
        rounding, under VANISHING times the largest gradient entry of the network)."""
        s = self.bpcli_step()
        tl = float(self.torch_step().detach())
        loss_rel = abs(s.loss - tl) / max(abs(tl), 1e-30)
        assert loss_rel <= LOSS_TOL, (
            f"{self.name}: bpcli's loss {s.loss:.7g} and PyTorch's {tl:.7g} differ by "
            f"{loss_rel:.2g} relative (> {LOSS_TOL}): not the same computation")
        grads = {}
        for n, g in s.grads.items():
            tg = self.w[n].grad
            assert tg is not None, f"{self.name}: PyTorch has no gradient for {n}"
            grads[n] = (np.asarray(g), tg.numpy())
        largest = max(max(np.abs(g).max(), np.abs(t).max()) for g, t in grads.values())
        diffs, vanishing = {}, []
        for n, (g, t) in grads.items():
            scale = max(np.abs(g).max(), np.abs(t).max())
            if scale < VANISHING * largest:
                vanishing.append(n)
                continue
            diffs[n] = float(np.abs(t - g).max() / scale)
        last = [n for n in self.model.params if n.endswith(".weight")][-1]
        assert diffs[last] <= GRAD_TOL, (
            f"{self.name}: the gradient of {last} differs between bpcli and PyTorch by "
            f"{diffs[last]:.2g} of its largest entry (> {GRAD_TOL}): not the same computation")
        worst = max(diffs, key=diffs.get)
        assert diffs[worst] <= WIRING_TOL, (
            f"{self.name}: the gradient of {worst} differs between bpcli and PyTorch by "
            f"{diffs[worst]:.2g} of its largest entry (> {WIRING_TOL}): not the same computation")
        return {"bpcli_loss": s.loss, "torch_loss": tl, "loss_rel_diff": loss_rel,
                "grad_checked": last, "grad_rel_diff": diffs[last],
                "grad_max_rel_diff": diffs[worst], "grad_worst": worst,
                "grad_rel_diffs": diffs, "grad_vanishing": vanishing}


class Validation:
    """cnn128's evaluation pass: n samples in batches of VAL_BATCH, as the trainer's validation
    loop runs them."""

    def __init__(self, case: Case, n: int):
        m, self.case, self.torch = case.model, case, case.torch
        rng = np.random.default_rng(1)
        for k, v in m.buffers.items():   # running statistics other than their start (0 and 1)
            if k.endswith("running_mean"):
                v[...] = rng.normal(0.0, 0.3, v.shape)
            elif k.endswith("running_var"):
                v[...] = rng.uniform(0.5, 2.0, v.shape)
        X, y = random_batch(m, n, 1)
        self.X, self.y = m.prepare(X, y)
        self.n, self.chunk, self.trainer_chunk = n, VAL_BATCH, batch_size(m)
        if self.torch is not None:
            case.w = case.torch_weights()
            self.tX = self.torch.from_numpy(np.ascontiguousarray(self.X))
            self.tY = self.torch.from_numpy(np.asarray(y, dtype=np.int64))

    def bpcli_pass(self) -> float:
        """As the trainer's validation loop (bpcli/train/loop.py): step without gradients."""
        m, total = self.case.model, 0.0
        for start in range(0, self.n, self.chunk):
            Xc = np.asarray(self.X[start:start + self.chunk], dtype=m.dtype)
            s = m.step(Xc, self.y[start:start + self.chunk], grad=False)
            total += s.data_loss * Xc.shape[0]
        return total / self.n

    def torch_pass(self) -> float:
        c, total = self.case, 0.0
        with self.torch.no_grad():
            for start in range(0, self.n, self.chunk):
                out = torch_forward(c.layers, c.w, self.tX[start:start + self.chunk], train=False)
                k = out.shape[0]
                total += float(c.torch_loss(out, self.tY[start:start + self.chunk])) * k
        return total / self.n

    def check(self) -> dict:
        b, t = self.bpcli_pass(), self.torch_pass()
        rel = abs(b - t) / max(abs(t), 1e-30)
        assert rel <= LOSS_TOL, (f"validation: bpcli's loss {b:.7g} and PyTorch's {t:.7g} differ "
                                 f"by {rel:.2g} relative (> {LOSS_TOL}): not the same computation")
        return {"bpcli_loss": b, "torch_loss": t, "loss_rel_diff": rel}


# ---------------------------------------------------------------- timing
def mean_seconds(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def run_at(lib: str, threads: int, fn, repeat: int, torch) -> float:
    """Mean seconds of fn at ``threads``: bpcli inside ``limit``, PyTorch outside it."""
    if lib == "bpcli":
        with limit(threads):
            return mean_seconds(fn, repeat)
    torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads, (torch.get_num_threads(), threads)
    return mean_seconds(fn, repeat)


def measure(fns: dict, settings: list[int], rounds: int, min_s: float, torch) -> dict:
    """{lib: {threads: [each round's mean seconds]}}, libs and thread counts interleaved."""
    repeat = {}
    for lib, fn in fns.items():
        for t in settings:
            run_at(lib, t, fn, 1, torch)                    # warm up: plans, pools, caches
            once = run_at(lib, t, fn, 1, torch)
            repeat[lib, t] = max(1, math.ceil(min_s / max(once, 1e-6)))
    times = {lib: {t: [] for t in settings} for lib in fns}
    order = list(fns)
    for r in range(rounds):
        for t in settings:
            for lib in (order if r % 2 == 0 else order[::-1]):
                times[lib][t].append(run_at(lib, t, fns[lib], repeat[lib, t], torch))
    return times


def summarize(times: dict, settings: list[int]) -> tuple[list[dict], list[dict]]:
    """Rows per thread count (ms, ratio) and speed-up rows (1 thread over n)."""
    med = statistics.median
    rows, speedups = [], []
    for t in settings:
        row = {"threads": t}
        for lib, by_t in times.items():
            row[f"{lib}_ms"] = 1e3 * med(by_t[t])
            row[f"{lib}_rounds_ms"] = [1e3 * v for v in by_t[t]]
        if "torch" in times:
            row["ratio"] = med([b / p for b, p in zip(times["bpcli"][t], times["torch"][t])])
            row["ratio_of_medians"] = row["bpcli_ms"] / row["torch_ms"]
        rows.append(row)
    for t in settings[1:]:
        sp = {"threads": f"1→{t}"}
        for lib, by_t in times.items():
            sp[f"{lib}_speedup"] = med([a / b for a, b in zip(by_t[1], by_t[t])])
        speedups.append(sp)
    return rows, speedups


# ---------------------------------------------------------------- main
def fmt(v, spec, suffix=""):
    return "" if v is None else f"{v:{spec}}{suffix}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 rounds of 0.05 s, fewer batches: a check that it runs")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--only", nargs="+", choices=list(NETWORKS) + ["validation"],
                    help="these networks only (validation: cnn128's evaluation pass)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds [5; --quick 2]")
    ap.add_argument("--min-seconds", type=float, default=None,
                    help="least time of one implementation in a round [0.3; --quick 0.05]")
    a = ap.parse_args(argv)
    rounds = a.rounds or (2 if a.quick else 5)
    min_s = a.min_seconds or (0.05 if a.quick else 0.3)
    chosen = a.only or [*NETWORKS, "validation"]

    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: bpcli's rows only, the ratio columns empty")

    load_start = os.getloadavg()
    cores = available()
    settings = sorted({1, 2, cores})
    t0 = time.perf_counter()
    rows, checks, printed = [], {}, False
    with tempfile.TemporaryDirectory() as tmp:
        for name, (make, batches, quick_batches) in NETWORKS.items():
            want = name in chosen or (name == "cnn128" and "validation" in chosen)
            if not want:
                continue
            spec = make()
            for batch in (quick_batches if a.quick else batches):
                case = Case(name, spec, batch, Path(tmp), torch)
                info = {"network": name, "input": case.input, "batch": batch}
                fns = {"bpcli": case.bpcli_step}
                if torch is not None:
                    with limit(1):
                        checks[f"{name}/{batch}"] = case.check()
                    fns["torch"] = case.torch_step
                if name in chosen:
                    per_t, speedups = summarize(measure(fns, settings, rounds, min_s, torch),
                                                settings)
                    rows += [{"kind": "train_step", **info, **r} for r in per_t]
                    rows += [{"kind": "speedup", **info, **r} for r in speedups]
                    if not printed:
                        print("Training step (ms a step; speed-up: 1 thread's time over n "
                              "threads')\n" + HEADER)
                        printed = True
                    for r in rows[-len(per_t) - len(speedups):]:
                        print(table_line(r), flush=True)
                if name == "cnn128" and "validation" in chosen and batch == 32:
                    val = Validation(case, 64 if a.quick else VAL_SAMPLES)
                    vfns = {"bpcli": val.bpcli_pass}
                    if torch is not None:
                        with limit(1):
                            checks["validation"] = val.check()
                        vfns["torch"] = val.torch_pass
                    per_t, speedups = summarize(measure(vfns, settings, rounds, min_s, torch),
                                                settings)
                    vinfo = {"network": "cnn128 validation", "input": case.input,
                             "batch": val.chunk, "samples": val.n,
                             "trainer_batch": val.trainer_chunk}
                    rows += [{"kind": "validation", **vinfo, **r} for r in per_t]
                    rows += [{"kind": "validation_speedup", **vinfo, **r} for r in speedups]
    load_end = os.getloadavg()

    val = [r for r in rows if r["kind"].startswith("validation")]
    if val:
        print(f"\nValidation pass (ms per {val[0]['samples']} samples, batches of "
              f"{val[0]['batch']})\n" + HEADER)
        for r in val:
            print(table_line(r))
    print()
    for key, c in checks.items():
        print(f"check {key}: loss bpcli {c['bpcli_loss']:.6g} / PyTorch {c['torch_loss']:.6g} "
              f"(rel. diff {c['loss_rel_diff']:.1e})"
              + (f", {c['grad_checked']}'s gradient {c['grad_rel_diff']:.1e}, the farthest "
                 f"{c['grad_worst']}'s {c['grad_max_rel_diff']:.1e} (of their largest entries)"
                 if "grad_checked" in c else ""))
    print(f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} (1 min); "
          f"{cores} cores available; {rounds} rounds of >= {min_s} s"
          + (" (--quick: not figures to quote)" if a.quick else ""))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True).stdout.strip() or None
    except OSError:
        commit = None
    result = {"date": date.today().isoformat(), "commit": commit,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
                         f"({cores} available)",
              "numpy": np.__version__, "torch": None if torch is None else torch.__version__,
              "python": platform.python_version(), "quick": a.quick, "rounds": rounds,
              "min_seconds": min_s, "threads": settings,
              "load_average_start": list(load_start), "load_average_end": list(load_end),
              "checks": checks, "rows": rows, "total_s": time.perf_counter() - t0}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "cores.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"results: {a.out / 'cores.json'} ({result['total_s']:.0f} s)")


HEADER = ("| network | input | batch | threads | bpcli ms | torch ms | bpcli/torch |\n"
          "|---|---|---:|---:|---:|---:|---:|")


def table_line(r) -> str:
    if r["kind"].endswith("speedup"):
        return (f"| {r['network']} | {r['input']} | {r['batch']} | speed-up {r['threads']} | "
                f"{fmt(r.get('bpcli_speedup'), '.2f', '×')} | "
                f"{fmt(r.get('torch_speedup'), '.2f', '×')} | |")
    return (f"| {r['network']} | {r['input']} | {r['batch']} | {r['threads']} | "
            f"{fmt(r.get('bpcli_ms'), '.1f')} | {fmt(r.get('torch_ms'), '.1f')} | "
            f"{fmt(r.get('ratio'), '.2f')} |")



if __name__ == "__main__":
    keep_freed_memory()  # as the command line does (bpcli/engine/memory.py)
    sys.exit(main())
