"""The training loop's state and the checkpoints that hold it: a run resumes to the same bits.

A checkpoint (``last.npz``, ``best.npz``) is one .npz: the model's parameters and buffers
by name (as ``model.npz``), the optimizer's buffers (``__opt__/<entry>/<buffer>``) and the
:class:`TrainState` as JSON in a unicode array (``__state__``), so that ``np.load(...,
allow_pickle=False)`` reads all of it and nothing in it can run code.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine import backend
from ..errors import InputError
from ..nn.model import Model
from .run_folder import atomic_write

SUMS = ("loss", "data_loss", "reg_loss", "accuracy")


def zero_sums() -> dict:
    return dict.fromkeys(SUMS, 0.0)


@dataclass
class EarlyStopping:
    """Counts evaluations since ``metric`` last improved (strictly: lower loss, higher accuracy)."""

    metric: str
    patience: int
    best: float | None = None
    best_epoch: int | None = None
    waited: int = 0

    def should_stop(self, row) -> bool:
        value, sign = row[self.metric], 1.0 if self.metric == "val_loss" else -1.0
        if self.best is None or sign * value < sign * self.best:
            self.best, self.best_epoch, self.waited = value, row["epoch"], 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    def reason(self, unit) -> str:
        return (f"early stopping: {self.metric} did not improve for {self.patience} evaluations "
                f"(best {self.best:.4g} at {unit} {self.best_epoch})")


@dataclass
class TrainState:
    """Everything the rest of a run depends on besides the arrays (model, optimizer buffers).

    The two generators are kept as objects and saved as their bit generators' states: ``rng``
    draws each epoch's sample order, ``noise_rng`` dropout masks and augmentations.
    """

    rng: np.random.Generator
    noise_rng: np.random.Generator
    lr: float                         # the lr of the last step (a row reports it)
    epoch: int = 1                    # the epoch in progress, from 1
    steps: int = 0                    # optimizer steps taken
    batch: int = 0                    # batches of this epoch done
    order: np.ndarray | None = None   # this epoch's sample order; None: the data's order
    sums: dict = field(default_factory=zero_sums)  # this row's sums of loss parts, accuracy
    seen: int = 0                     # samples in ``sums``
    skipped: int = 0                  # batches skipped (--on-nan skip), whole run
    skipped_row: int = 0              # ... since the last metrics row
    gnorm: float = float("nan")       # the last step's gradient norm
    best: dict | None = None          # the best evaluated row: metric, value, epoch, step
    stopping: EarlyStopping | None = None
    elapsed_s: float = 0.0            # training time before this process (resumed runs)
    started: str = ""                 # when the run first started, ISO 8601, UTC
    spec_hash: str = ""
    data_fingerprint: str = ""        # the training data's (loop.fingerprint); "": not recorded
    val_data_fingerprint: str = ""    # the validation samples' ("": none, or an older checkpoint)
    threads: int | None = None        # the batch-slice workers it ran with (any count: the same bits)

    def to_json(self) -> str:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["rng"], d["noise_rng"] = self.rng.bit_generator.state, self.noise_rng.bit_generator.state
        d["order"] = None if self.order is None else self.order.tolist()
        d["stopping"] = None if self.stopping is None else dataclasses.asdict(self.stopping)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str, seed: int) -> TrainState:
        d = json.loads(text)
        rng, noise_rng = generators(seed)
        rng.bit_generator.state = d.pop("rng")
        noise_rng.bit_generator.state = d.pop("noise_rng")
        order = d.pop("order")
        stopping = d.pop("stopping")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(rng, noise_rng, order=None if order is None else np.asarray(order),
                   stopping=None if stopping is None else EarlyStopping(**stopping),
                   **{k: v for k, v in d.items() if k in known})


def generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The sample-order and noise generators of a run with this seed (seed + 1 splits the data)."""
    return np.random.default_rng(seed + 2), np.random.default_rng(seed + 3)


def save_checkpoint(path: Path, arrays: dict, opt, state: TrainState,
                    keep: Path | None = None) -> None:
    """``arrays`` (the model's, by name), the optimizer's buffers and step count, the state;
    host copies of arrays on a device, so any device resumes the run. ``keep``: where the
    checkpoint ``path`` held goes once the new one is whole on the disk (last.prev.npz)."""
    arrays = {k: backend.to_host(v) for k, v in arrays.items()}
    for entry, buffers in opt.state.items():
        for key, value in buffers.items():
            arrays[f"__opt__/{entry}/{key}"] = backend.to_host(value)
    arrays["__opt_t__"] = np.asarray(opt.t)
    arrays["__state__"] = np.array(state.to_json())  # a unicode array: no pickle needed to read
    atomic_write(Path(path), lambda f: np.savez(f, **arrays), keep=keep)


def misfit(shapes: dict, model: Model) -> str | None:
    """The first of ``model``'s arrays that a checkpoint's ``shapes`` (name -> shape) does not
    hold in its shape ("layers.0.weight: run (8, 1, 9), spec (4, 1, 5)"); None if all fit."""
    for name, w in model.arrays().items():
        if shapes.get(name) != w.shape:
            had = "none" if name not in shapes else str(tuple(shapes[name]))
            return f"{name}: run {had}, spec {tuple(w.shape)}"
    return None


def load_checkpoint(path: Path, model: Model, opt) -> TrainState:
    """Restore the model's arrays and the optimizer from a checkpoint, onto the model's device;
    its :class:`TrainState`. InputError naming the file when it does not read back whole."""
    import zipfile
    import zlib

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        text = str(arrays.pop("__state__"))
        state = TrainState.from_json(text, model.spec.data["seed"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            zlib.error) as e:
        raise InputError(f"cannot read checkpoint: damaged: cut short or overwritten after "
                         f"bpcli wrote it whole ({type(e).__name__}: {e}); a resume falls back "
                         f"to the checkpoint before it (last.prev.npz) where that one is whole",
                         file=str(path)) from None
    wrong = misfit({k: a.shape for k, a in arrays.items()}, model)
    if wrong is not None:
        raise InputError(f"checkpoint does not fit the spec at {wrong}", file=str(path))
    for name, w in model.arrays().items():
        w[...] = backend.to_device(arrays[name], model.device)
    for key, value in arrays.items():
        if key.startswith("__opt__/"):
            _, entry, buf = key.split("/", 2)
            opt.state.setdefault(entry, {})[buf] = backend.to_device(value, model.device)
    # checkpoints written before TrainState kept the step count in the state's JSON
    opt.t = int(arrays["__opt_t__"]) if "__opt_t__" in arrays else json.loads(text)["opt_t"]
    return state
