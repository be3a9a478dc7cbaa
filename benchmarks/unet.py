"""Issue 21's benchmark rows: bpcli's U-Net against the same network in PyTorch, and eval's
memory and time against PyTorch's forward in batches.

    python benchmarks/unet.py [--quick] [--out benchmarks/results]

Both libraries run at 1 thread (``torch.set_num_threads(1)``; NumPy's BLAS through threadpoolctl,
``bpcli.engine.threads.limit``, as bpcli's default ``--threads 1``), float32.

1. **A U-Net epoch.** The network of ``specs/unet_shapes.yaml`` (its layers read from the spec
   and written out in ``torch.nn.functional``), from the same initial weights (copied from the
   bpcli model), on the spec's built-in data (``shape_masks``: 2,000 pictures 1×32×32 and their
   class maps 0..3), split as training splits it (``bpcli.train.data.split``: 1,600 training,
   400 validation), ``preprocess: standardize`` with the training split's statistics, batch
   32, Adam lr 0.003, the loss ``dice_cross_entropy`` (MONAI's DiceCELoss: cross-entropy over
   pixels + soft Dice with batch=True, smooth 1e-5; the PyTorch version written out below and
   checked to equal bpcli's loss on one batch to 1e-6 before anything is timed). The two
   libraries train in turn, epoch by epoch, on the same batches: one NumPy permutation per
   epoch shared by both. **No augmentation** here (the spec's ``augment: {flip: true}`` is left
   out: its random flips would be a third implementation to keep equal). bpcli's epoch is
   ``Model.step`` + its Adam on each batch (what ``bpcli train`` does per step, without its
   bookkeeping: gradient norm, accuracy, checkpoints); PyTorch's is forward, ``backward()`` and
   ``torch.optim.Adam.step()``. Seconds per epoch: the median over the epochs after the first
   (the warm-up); the ratio bpcli / PyTorch: the median of each epoch's ratio (the two run
   back to back, so a machine busy with something else slows both alike).
2. **Mean Dice after training the same way.** After the spec's 10 epochs (4 with ``--quick``),
   each one's validation mean Dice: class maps by argmax over the 4 channels, Dice per class
   2|A∩B| / (|A| + |B|) over all validation pixels, averaged over the classes present (in the
   truth or the prediction); and the difference. Issue 21's target: within 0.01.
3. **Evaluation memory and time.** 256 random pictures 1×128×128 (an ``.npz`` with X and y,
   targets a blurred copy of X) through a 4-layer conv2d network (16 channels, kernel 3, pad
   same, ReLU between, the last conv to 1 channel, loss mse) trained for one step by ``bpcli
   train`` on 32 other pictures, so that a real run folder exists. bpcli: the user's path,
   ``bpcli eval RUN --data eval.npz --json`` as one process, with eval's default batch (the
   run's training batch, 32, capped so that one batch's activations stay under 256 MB: 20
   here) and again with ``--batch-size 32``; and, in a process of its own,
   ``bpcli.train.evaluate.evaluate`` on the same data (forward, loss, PSNR, SSIM, MAE, RMSE),
   with its forward alone timed too. PyTorch: the same weights, forward in batches of 32 under
   ``torch.no_grad()`` plus the mse, in its own process. Peak resident memory of each process
   (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in a small wrapper process that starts it), and
   wall time: the whole process (PyTorch's counted with one pass, as eval makes one), and the
   work inside it (the median of 3 passes over the 256 pictures, the first included). Issue
   21's targets: bpcli under 1 GB, within 2× PyTorch's time; the time target is judged on
   ``evaluate()`` against PyTorch's forward, both in-process (neither counts the interpreter's
   start and imports).

Results: ``unet.json`` in ``--out``; a table on stdout. ``bpcli bench specs/unet_shapes.yaml
--batch 32`` (where the U-Net step spends its time, by layer) is run too and kept in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "unet_shapes.yaml"
BATCH = 32
# the ``bpcli`` command, as its entry point runs it (the console script of this interpreter)
BPCLI = [sys.executable, "-c", "import sys; from bpcli.cli import run; sys.argv[0] = 'bpcli'; "
                               "sys.exit(run())"]
EVAL_N, EVAL_SIZE = 256, 128
REPEAT = 3  # timed passes over the 256 pictures in each evaluation process (median)
EVAL_SPEC = f"""\
name: eval-conv4
version: 1
input: [1, {EVAL_SIZE}, {EVAL_SIZE}]
dtype: float32
seed: 0
layers:
  - conv2d: {{channels: 16, kernel: 3, pad: same}}
  - relu
  - conv2d: {{channels: 16, kernel: 3, pad: same}}
  - relu
  - conv2d: {{channels: 16, kernel: 3, pad: same}}
  - relu
  - conv2d: {{channels: 1, kernel: 3, pad: same}}
loss: mse
optimizer: {{name: adam, lr: 0.001}}
training: {{epochs: 1, batch_size: {BATCH}}}
"""


# ---------------------------------------------------------------- the U-Net in PyTorch
def layer_list(spec) -> list[tuple[str, dict]]:
    """The spec's layers as (kind, options); a bare name (``relu``) has no options."""
    out = []
    for entry in spec.data["layers"]:
        if isinstance(entry, str):
            out.append((entry, {}))
        else:
            (kind, cfg), = entry.items()
            out.append((kind, cfg or {}))
    return out


def torch_forward(layers, w, X, train: bool = True):
    """The spec's layers in torch.nn.functional on X (N, C, H, W) (or (N, C, L) for conv1d),
    weights ``w`` by bpcli's names (``layers.<i>.weight`` / ``bias``; conv2d_transpose's are (in,
    out, kh, kw) in both, dense's (units, in) in both). ``train`` matters to batchnorm alone: batch
    statistics (no running statistics updated, as bpcli's ``Model.step``), else the running
    statistics ``layers.<i>.running_mean`` / ``running_var`` from ``w``."""
    import torch
    import torch.nn.functional as F

    named, h = {}, X
    for i, (kind, cfg) in enumerate(layers):
        W, b = w.get(f"layers.{i}.weight"), w.get(f"layers.{i}.bias")
        if kind == "conv1d":
            assert cfg.get("stride", 1) == 1 and cfg.get("dilation", 1) == 1, cfg
            assert cfg.get("groups", 1) == 1, cfg
            pad = cfg.get("pad", 0)
            pad = {"same": W.shape[-1] // 2, "valid": 0}.get(pad, pad)
            assert cfg.get("pad") != "same" or W.shape[-1] % 2, "pad same with an even kernel"
            h = F.conv1d(h, W, b, padding=pad)
        elif kind == "batchnorm":
            if train:
                h = F.batch_norm(h, None, None, W, b, training=True, eps=cfg.get("eps", 1e-5))
            else:
                h = F.batch_norm(h, w[f"layers.{i}.running_mean"], w[f"layers.{i}.running_var"],
                                 W, b, training=False, eps=cfg.get("eps", 1e-5))
        elif kind == "dense":  # flattened in C order first, as bpcli's dense does
            h = F.linear(h.reshape(h.shape[0], -1), W, b)
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        elif kind == "conv2d":
            assert cfg.get("stride", 1) == 1 and cfg.get("dilation", 1) == 1, cfg
            pad = cfg.get("pad", 0)
            pad = W.shape[-1] // 2 if pad == "same" else pad
            h = F.conv2d(h, W, b, padding=pad)
        elif kind == "conv2d_transpose":
            assert cfg.get("pad", 0) == 0 and cfg.get("output_pad", 0) == 0, cfg
            h = F.conv_transpose2d(h, W, b, stride=cfg.get("stride", 1))
        elif kind == "relu":
            h = F.relu(h)
        elif kind == "maxpool2d":
            assert cfg.get("pad", 0) == 0, cfg
            h = F.max_pool2d(h, cfg["size"], cfg.get("stride") or cfg["size"])
        elif kind == "concat":  # its input, then the outputs ``with`` names, along channels
            h = torch.cat([h, *(named[n] for n in cfg["with"])], dim=1)
        else:
            raise NotImplementedError(f"layers[{i}]: {kind} is not written out in PyTorch here")
        if cfg.get("name"):
            named[cfg["name"]] = h
    return h


def torch_dice_ce(logits, y, smooth=1e-5):
    """MONAI's DiceCELoss (lambda_dice = lambda_ce = 1, softmax, include_background, batch=True):
    cross-entropy averaged over pixels + 1 - mean over classes c of
    (2 sum p t + smooth) / (sum p + sum t + smooth), sums over the batch and the pixels."""
    import torch.nn.functional as F

    ce = F.cross_entropy(logits, y)
    p = F.softmax(logits, dim=1)
    t = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    overlap = (p * t).sum(dim=(0, 2, 3))
    size = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    dice = 1.0 - ((2.0 * overlap + smooth) / (size + smooth)).mean()
    return dice + ce


def mean_dice(truth, predicted, k):
    """Dice per class 2|A∩B| / (|A| + |B|) over all pixels, averaged over the classes present in
    the truth or the prediction."""
    dices = []
    for c in range(k):
        a, b = truth == c, predicted == c
        size = int(a.sum()) + int(b.sum())
        if size:
            dices.append(2.0 * int((a & b).sum()) / size)
    return float(np.mean(dices))


# ---------------------------------------------------------------- 1 and 2: the U-Net
def unet(epochs: int) -> dict:
    import torch

    import bpcli
    from bpcli.spec.validate import load
    from bpcli.train import data
    from bpcli.train.evaluate import evaluate
    from bpcli.train.optim import OPTIMIZERS

    spec = load(SPEC)
    cfg = spec.data
    assert cfg["preprocess"] == "standardize" and cfg["loss"]["name"] == "dice_cross_entropy"
    smooth, lr = cfg["loss"]["smooth"], cfg["optimizer"]["lr"]
    whole = data.read(spec)
    (Xtr, ytr), (Xva, yva) = data.split(whole, cfg["data"]["val_split"], cfg["seed"])
    model = bpcli.build(spec)
    model.fit_preprocess(Xtr)                       # the training split's statistics, as training
    k = model.output_shape[1]
    # bpcli takes prepared arrays (X float32, labels (N, 1, H, W)), as the trainer holds them
    bX, bY = model.prepare(Xtr, ytr)
    tX = np.ascontiguousarray(Xtr, dtype=np.float32)
    tY = np.ascontiguousarray(ytr, dtype=np.int64)
    opt = OPTIMIZERS[cfg["optimizer"]["name"]].make(cfg["optimizer"])

    layers = layer_list(spec)
    w = {name: torch.tensor(a, requires_grad=True) for name, a in model.arrays().items()
         if name.startswith("layers.")}
    shift = torch.tensor(model.buffers["preprocess.shift"])
    scale = torch.tensor(model.buffers["preprocess.scale"])
    topt = torch.optim.Adam(list(w.values()), lr=lr, betas=(cfg["optimizer"]["beta1"],
                                                           cfg["optimizer"]["beta2"]),
                            eps=cfg["optimizer"]["eps"])

    def tnet(xb):
        return torch_forward(layers, w, (xb - shift) / scale)

    # the loss (and the network's output and gradients) agree on one batch before anything
    # is timed
    s = model.step(bX[:BATCH], bY[:BATCH], train=True)
    out = tnet(torch.from_numpy(tX[:BATCH]))
    tl = torch_dice_ce(out, torch.from_numpy(tY[:BATCH]), smooth)
    tl.backward()
    tloss = float(tl.detach())
    out_diff = float(np.abs(out.detach().numpy() - s.output).max())
    grad_diff = max(float(np.abs(w[n].grad.numpy() - g).max() / np.abs(g).max())
                    for n, g in s.grads.items())
    for v in w.values():
        v.grad = None
    loss_diff = abs(tloss - s.loss)
    print(f"one batch: bpcli loss {s.loss:.7f}, PyTorch {tloss:.7f} (|diff| {loss_diff:.1e}); "
          f"outputs differ by at most {out_diff:.1e}, gradients by {grad_diff:.1e} of their "
          f"largest value")
    assert loss_diff <= 1e-6, f"the losses differ by {loss_diff:.3g}"
    assert grad_diff <= 1e-4, f"the gradients differ by {grad_diff:.3g}"

    def bpcli_epoch(order):
        for start in range(0, order.size, BATCH):
            idx = order[start:start + BATCH]
            st = model.step(bX[idx], bY[idx], train=True)
            opt.step(model.params, st.grads, lr, measure=False)
        return st.loss

    def torch_epoch(order):
        for start in range(0, order.size, BATCH):
            idx = order[start:start + BATCH]
            topt.zero_grad(set_to_none=True)
            loss = torch_dice_ce(tnet(torch.from_numpy(tX[idx])), torch.from_numpy(tY[idx]),
                                 smooth)
            loss.backward()
            topt.step()
        return float(loss.detach())

    rng = np.random.default_rng(cfg["seed"])
    times = {"bpcli": [], "torch": []}
    print(f"{'epoch':>5} {'bpcli s':>8} {'torch s':>8} {'ratio':>6} {'bpcli loss':>11} "
          f"{'torch loss':>11}")
    for e in range(1, epochs + 1):
        order = rng.permutation(tX.shape[0])        # one order a epoch, shared
        t = time.perf_counter()
        bl = bpcli_epoch(order)
        times["bpcli"].append(time.perf_counter() - t)
        t = time.perf_counter()
        tl = torch_epoch(order)
        times["torch"].append(time.perf_counter() - t)
        print(f"{e:>5} {times['bpcli'][-1]:>8.3f} {times['torch'][-1]:>8.3f} "
              f"{times['bpcli'][-1] / times['torch'][-1]:>6.2f} {bl:>11.5f} {tl:>11.5f}",
              flush=True)

    # validation mean Dice of each, by the same function
    bout = model.forward(Xva)
    with torch.no_grad():
        tout = tnet(torch.from_numpy(np.ascontiguousarray(Xva, dtype=np.float32))).numpy()
    truth = np.asarray(yva)
    dice_b = mean_dice(truth, bout.argmax(axis=1), k)
    dice_t = mean_dice(truth, tout.argmax(axis=1), k)
    ev = evaluate(model, data.Dataset(Xva, yva, "validation split"))  # bpcli eval's own Dice
    timed = {n: t[1:] or t for n, t in times.items()}  # after the warm-up epoch
    med = {n: float(np.median(t)) for n, t in timed.items()}
    # each epoch's ratio (the two ran back to back on the same batches, so a busy machine
    # slows both alike), then their median
    ratio = float(np.median(np.array(timed["bpcli"]) / np.array(timed["torch"])))
    return {
        "spec": str(SPEC.relative_to(ROOT)), "train_samples": int(tX.shape[0]),
        "val_samples": int(truth.shape[0]), "batch": BATCH, "epochs": epochs,
        "augmentation": "none (the spec's flip is left out)",
        "one_batch_loss": {"bpcli": s.loss, "torch": tloss, "abs_diff": loss_diff,
                           "output_max_abs_diff": out_diff,
                           "grad_max_rel_diff": grad_diff},
        "epoch_s": {"bpcli": times["bpcli"], "torch": times["torch"]},
        "epoch_s_median": med, "epoch_s_median_of": f"epochs 2..{epochs}" if epochs > 1 else "1",
        "epoch_ratio": ratio, "epoch_ratio_of_medians": med["bpcli"] / med["torch"],
        "val_mean_dice": {"bpcli": dice_b, "torch": dice_t, "difference": dice_b - dice_t,
                          "bpcli_eval_mean_dice": ev.scores["mean_dice"]},
        "dice_target_met": abs(dice_b - dice_t) <= 0.01,
    }


# ---------------------------------------------------------------- 3: evaluation, in processes
# Peak memory is read in a small wrapper process that starts the command and asks
# getrusage(RUSAGE_CHILDREN) after it ends: a process started straight from this one would
# inherit this one's high-water mark (Linux carries the resident size at fork into ru_maxrss
# across exec), and this one holds PyTorch and the U-Net's data.
MEASURE = """import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
wall = time.perf_counter() - t
print(json.dumps({"rc": rc, "wall_s": wall,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),
      file=sys.stderr)
"""


def run_measured(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh wrapper process; its wall time, peak resident memory (ru_maxrss
    of RUSAGE_CHILDREN in the wrapper, kilobytes on Linux) and stdout."""
    p = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    *errors, last = p.stderr.rstrip("\n").split("\n")
    m = json.loads(last)
    if p.returncode or m["rc"]:
        raise RuntimeError(f"{' '.join(cmd)} exited {m['rc']}:\n" + "\n".join(errors)[-3000:])
    return {"wall_s": m["wall_s"], "peak_rss_mb": m["maxrss_kb"] / 1024, "stdout": p.stdout}


def child_bpcli(run: str, npz: str) -> None:
    """In its own process: bpcli.train.evaluate.evaluate on the .npz, and its forward alone."""
    import resource

    import bpcli
    from bpcli.engine.threads import limit
    from bpcli.train import data
    from bpcli.train.evaluate import batch_outputs, batch_size, evaluate

    model = bpcli.load_run(run)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with limit(1):
        dataset = data.read(model.spec, npz)
        size = batch_size(model)
        t_eval, t_forward = [], []
        for _ in range(REPEAT):
            t = time.perf_counter()
            ev = evaluate(model, dataset)
            t_eval.append(time.perf_counter() - t)
            t = time.perf_counter()
            for _ in batch_outputs(model, dataset.X, size):
                pass
            t_forward.append(time.perf_counter() - t)
    print(json.dumps({"evaluate_s": float(np.median(t_eval)), "evaluate_runs_s": t_eval,
                      "forward_s": float(np.median(t_forward)), "forward_runs_s": t_forward,
                      "batch": size,
                      "rss_after_imports_mb": rss_loaded, "loss": ev.scores["loss"],
                      "psnr": ev.scores.get("psnr")}))


def child_torch(run: str, npz: str) -> None:
    """In its own process: the same network in PyTorch, forward in batches of 32, no_grad."""
    import resource

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    weights = np.load(Path(run) / "model.npz")
    w = {k: torch.from_numpy(np.ascontiguousarray(weights[k])) for k in weights.files
         if k.startswith("layers.")}
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with np.load(npz) as f:
        X, y = f["X"], f["y"]
    t_forward = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        se = 0.0
        with torch.no_grad():
            for start in range(0, X.shape[0], BATCH):
                h = torch.from_numpy(X[start:start + BATCH])
                for i in (0, 2, 4):
                    h = F.relu(F.conv2d(h, w[f"layers.{i}.weight"], w[f"layers.{i}.bias"],
                                        padding=1))
                h = F.conv2d(h, w["layers.6.weight"], w["layers.6.bias"], padding=1)
                se += float(((h - torch.from_numpy(y[start:start + BATCH])) ** 2).sum())
        t_forward.append(time.perf_counter() - t)
    print(json.dumps({"forward_s": float(np.median(t_forward)), "forward_runs_s": t_forward,
                      "batch": BATCH, "rss_after_imports_mb": rss_loaded,
                      "loss": se / y.size}))


def evaluation(workdir: Path) -> dict:
    rng = np.random.default_rng(21)
    (workdir / "conv4.yaml").write_text(EVAL_SPEC)

    def pictures(n):
        X = rng.random((n, 1, EVAL_SIZE, EVAL_SIZE), dtype=np.float32)
        # targets: a 3x3 box blur of X (a restoration of sorts; any target serves for timing)
        p = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        y = sum(p[:, :, i:i + EVAL_SIZE, j:j + EVAL_SIZE] for i in range(3) for j in range(3)) / 9
        return X, y.astype(np.float32)

    np.savez(workdir / "train.npz", *(), **dict(zip("Xy", pictures(BATCH))))
    np.savez(workdir / "eval.npz", **dict(zip("Xy", pictures(EVAL_N))))
    bpcli_cmd = BPCLI
    run = workdir / "run"
    run_measured([*bpcli_cmd, "train", str(workdir / "conv4.yaml"), "--data",
                  str(workdir / "train.npz"), "--out", str(run), "--set", "data.val_split=0",
                  "-q"])
    me = [sys.executable, str(Path(__file__).resolve())]
    cli = run_measured([*bpcli_cmd, "eval", str(run), "--data", str(workdir / "eval.npz"),
                        "--json"])
    cli32 = run_measured([*bpcli_cmd, "eval", str(run), "--data", str(workdir / "eval.npz"),
                          "--json", "--batch-size", str(BATCH)])
    inproc = run_measured([*me, "--child", "bpcli", str(run), str(workdir / "eval.npz")])
    torch_ = run_measured([*me, "--child", "torch", str(run), str(workdir / "eval.npz")])
    cli_scores = json.loads(cli["stdout"])
    b, t = json.loads(inproc["stdout"]), json.loads(torch_["stdout"])
    # the PyTorch process as if it had made one pass (the first) instead of REPEAT
    torch_one_pass = torch_["wall_s"] - sum(t["forward_runs_s"][1:])
    assert abs(b["loss"] - t["loss"]) <= 1e-5 * max(1.0, abs(t["loss"])), (b["loss"], t["loss"])
    return {
        "images": f"{EVAL_N} x 1x{EVAL_SIZE}x{EVAL_SIZE} float32", "batch": BATCH,
        "network": "conv2d 16 k3 same, relu, x3, conv2d 1 k3 same; mse",
        "loss": {"bpcli_eval": cli_scores["loss"], "bpcli_evaluate": b["loss"],
                 "torch": t["loss"]},
        "bpcli_cli": {"process_s": cli["wall_s"], "peak_rss_mb": cli["peak_rss_mb"],
                      "batch": b["batch"]},
        "bpcli_cli_batch32": {"process_s": cli32["wall_s"], "peak_rss_mb": cli32["peak_rss_mb"],
                              "batch": BATCH},
        "bpcli_evaluate": {"process_s": inproc["wall_s"], "peak_rss_mb": inproc["peak_rss_mb"],
                           "rss_after_imports_mb": b["rss_after_imports_mb"],
                           "evaluate_s": b["evaluate_s"], "forward_s": b["forward_s"],
                           "evaluate_runs_s": b["evaluate_runs_s"],
                           "forward_runs_s": b["forward_runs_s"], "batch": b["batch"]},
        "torch": {"process_s": torch_["wall_s"], "peak_rss_mb": torch_["peak_rss_mb"],
                  "rss_after_imports_mb": t["rss_after_imports_mb"], "forward_s": t["forward_s"],
                  "forward_runs_s": t["forward_runs_s"], "one_pass_process_s": torch_one_pass},
        "ratios": {"evaluate_over_torch_forward": b["evaluate_s"] / t["forward_s"],
                   "forward_over_torch_forward": b["forward_s"] / t["forward_s"],
                   "cli_process_over_torch_process": cli["wall_s"] / torch_one_pass,
                   "cli_rss_over_torch_rss": cli["peak_rss_mb"] / torch_["peak_rss_mb"]},
        "memory_target_met": max(cli["peak_rss_mb"], cli32["peak_rss_mb"]) < 1024,
        "time_target_met": b["evaluate_s"] / t["forward_s"] <= 2.0,
    }


def layer_bench() -> list[dict]:
    """``bpcli bench specs/unet_shapes.yaml --batch 32 --json``: where a step spends its time."""
    r = run_measured([*BPCLI, "bench", str(SPEC), "--batch", str(BATCH),
                      "--json"])
    return json.loads(r["stdout"])


# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 U-Net epochs instead of the spec's 10")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--child", nargs=3, metavar=("LIB", "RUN", "NPZ"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        lib, run, npz = a.child
        return (child_bpcli if lib == "bpcli" else child_torch)(run, npz)

    import torch

    import bpcli.spec.validate
    from bpcli.engine.threads import limit

    torch.set_num_threads(1)
    epochs = 4 if a.quick else bpcli.spec.validate.load(SPEC).data["training"]["epochs"]
    t0 = time.perf_counter()
    with limit(1):
        u = unet(epochs)
    with tempfile.TemporaryDirectory() as tmp:
        ev = evaluation(Path(tmp))
    bench = layer_bench()
    rows = bench["layers"]

    print(f"\nU-Net epoch ({u['train_samples']} samples, batch {BATCH}, 1 thread): bpcli "
          f"{u['epoch_s_median']['bpcli']:.3f} s, PyTorch {u['epoch_s_median']['torch']:.3f} s "
          f"(medians); bpcli/PyTorch {u['epoch_ratio']:.2f} (median of the epochs' ratios)")
    d = u["val_mean_dice"]
    print(f"validation mean Dice after {epochs} epochs: bpcli {d['bpcli']:.4f}, PyTorch "
          f"{d['torch']:.4f}, difference {d['difference']:+.4f} (target |diff| <= 0.01: "
          f"{'met' if u['dice_target_met'] else 'missed'})")
    c, b, t, r = ev["bpcli_cli"], ev["bpcli_evaluate"], ev["torch"], ev["ratios"]
    c32 = ev["bpcli_cli_batch32"]
    print(f"\neval of {ev['images']}:")
    print(f"{'':34} {'batch':>5} {'peak RSS MB':>11} {'process s':>10} {'work s':>8}")
    print(f"{'bpcli eval (CLI)':34} {c['batch']:>5} {c['peak_rss_mb']:>11.0f} "
          f"{c['process_s']:>10.2f}")
    print(f"{'bpcli eval --batch-size 32 (CLI)':34} {BATCH:>5} {c32['peak_rss_mb']:>11.0f} "
          f"{c32['process_s']:>10.2f}")
    print(f"{'bpcli evaluate()':34} {b['batch']:>5} {b['peak_rss_mb']:>11.0f} "
          f"{'':>10} {b['evaluate_s']:>8.2f}")
    print(f"{'  its forward alone':34} {b['batch']:>5} {'':>11} {'':>10} {b['forward_s']:>8.2f}")
    print(f"{'PyTorch forward, no_grad':34} {BATCH:>5} {t['peak_rss_mb']:>11.0f} "
          f"{t['one_pass_process_s']:>10.2f} {t['forward_s']:>8.2f}")
    print(f"(after imports: bpcli {b['rss_after_imports_mb']:.0f} MB, PyTorch "
          f"{t['rss_after_imports_mb']:.0f} MB)")
    print(f"ratios: evaluate()/torch forward {r['evaluate_over_torch_forward']:.2f}, forward/"
          f"forward {r['forward_over_torch_forward']:.2f}, process/process "
          f"{r['cli_process_over_torch_process']:.2f}, peak RSS {r['cli_rss_over_torch_rss']:.2f}"
          f"; targets: under 1 GB {'met' if ev['memory_target_met'] else 'missed'}, within 2x "
          f"{'met' if ev['time_target_met'] else 'missed'}")
    print(f"\nbpcli bench {SPEC.relative_to(ROOT)} --batch {BATCH}: {bench['step_ms']:.1f} ms "
          f"a step; its 5 largest shares:")
    for row in sorted(rows, key=lambda r: -r["share"])[:5]:
        print(f"  {row['layer']:30} forward {row['forward_ms']:6.2f} ms, backward "
              f"{row['backward_ms']:6.2f} ms, {100 * row['share']:4.1f}%")
    try:  # the commit measured (bpcli as imported: its path says whether it is this checkout)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True).stdout.strip() or None
    except OSError:
        commit = None
    result = {"date": date.today().isoformat(), "commit": commit,
              "bpcli_path": str(Path(bpcli.__file__).parent),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "threads": 1, "numpy": np.__version__, "torch": torch.__version__,
              "python": platform.python_version(), "quick": a.quick,
              "load_average_1min": os.getloadavg()[0], "unet": u, "evaluation": ev,
              "bench_unet_batch32": bench,
              "total_s": time.perf_counter() - t0}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "unet.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {a.out / 'unet.json'} ({result['total_s']:.0f} s)")


if __name__ == "__main__":
    from bpcli.engine.memory import keep_freed_memory

    keep_freed_memory()  # as the command line does (bpcli/engine/memory.py)
    sys.exit(main())
