"""The Python API: ``bpcli.build(spec) -> Model`` with live parameters, forward, loss and gradients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine import backend, backward, evaluate, forward_tangent
from ..errors import InputError
from ..core.document import Spec
from ..core.fields import Invalid
from .graph import compile_spec, modal
from .initializers import init_weights
from .losses import LOSSES
from .preprocess import statistics


@dataclass
class Step:
    """What one pass of :meth:`Model.step` gives: the loss trained on (``data_loss`` plus the
    regularization penalty ``reg_loss``, 0.0 without one), the network output (N, outputs), the
    gradients by parameter name (None without ``grad``) and, in training mode, the batch
    statistics by output name (batchnorm's ``layers.<i>.batch_moments``: mean over biased var,
    (2, C), saved by its batch_norm primitive). The
    losses are floats and the output a host array whatever the model's device; the gradients
    and batch statistics live where the parameters do."""

    loss: float
    data_loss: float
    reg_loss: float
    output: np.ndarray
    grads: dict[str, np.ndarray] | None
    batch_stats: dict[str, np.ndarray]


PREDICT_BATCH = 4096  # samples per forward pass of predict: memory stays bounded on any input


@dataclass
class Prediction:
    """What a model says about N samples (:meth:`Model.predict`).

    ``output`` is the network output (N, outputs). For a classification loss, ``classes`` names
    the K classes in index order (the run's ``data.classes`` names, else the loss's: "0" ..
    "K-1", or "-1"/"+1" for the ±1 losses), ``labels`` (N,) holds each sample's predicted class
    name and ``probabilities`` (N, K) the class probabilities (softmax of the scores; for
    logistic [1 − σ(f), σ(f)]), or None for a loss that defines none (hinge). Otherwise
    ``classes`` and ``probabilities`` are None and ``labels`` is the output itself: the
    regression estimates, in the labels' unit.
    """

    output: np.ndarray
    probabilities: np.ndarray | None
    labels: np.ndarray
    classes: list[str] | None


class Model:
    """A compiled spec, its parameters and its state.

    ``params`` maps ``layers.<i>.weight`` / ``layers.<i>.bias`` to arrays that
    the model reads on every call: writing into them changes the model.
    ``buffers`` holds the state that is not trained (batchnorm's
    ``layers.<i>.running_mean`` / ``running_var``, ``preprocess.shift`` /
    ``preprocess.scale``), read the same way and saved with the weights.

    ``program`` is the evaluation program, deterministic: what ``forward``,
    ``loss``, validation, ``bpcli eval`` and gradcheck run. ``train_program``
    is the training program (the same object unless a layer is dropout or
    batchnorm); the API functions take ``train=True`` and, with dropout, the
    ``masks`` to use (:meth:`draw_masks`).

    ``device`` is where the parameters, buffers and every step's arrays live: ``cpu`` (NumPy) as
    built, ``gpu`` (CuPy) after :meth:`to`. Data and random draws are given on the host and
    moved; outputs and losses come back to the host.
    """

    def __init__(self, spec: Spec, dtype=None):
        self.spec = spec
        self.dtype = np.dtype(dtype or spec.data["dtype"])
        self.program, compiled = compile_spec(spec)
        self.param_info, self.buffer_info = compiled.params, compiled.buffers
        self.layer_shapes = compiled.shapes  # each layer's input and output shapes
        if modal(spec):
            self.train_program, train = compile_spec(spec, training=True)
            self.noise_info, self.updates = train.noise, train.updates
        else:
            self.train_program, self.noise_info, self.updates = self.program, [], []
        self.min_batch = max((u.min_batch for u in self.updates), default=1)
        self.loss_def = LOSSES[spec.data["loss"]["name"]]
        self.output_shape = self.program.outputs["output"].shape
        self.regularized = "reg_loss" in self.program.outputs
        self.params = self.init_params(spec.data["seed"])
        self.buffers = {b.name: np.full(b.shape, b.start, dtype=self.dtype)
                        for b in self.buffer_info}
        self.device = "cpu"

    def to(self, device: str | None) -> Model:
        """Move the parameters and buffers to ``device`` (``cpu`` or ``gpu``; None: stay) and run
        every later call there; returns the model. The arrays are replaced by copies on the
        device. Raises InputError (without a path) when the device is not there."""
        if device is None or device == self.device:
            return self
        backend.check(device)
        self.params = {k: backend.to_device(w, device) for k, w in self.params.items()}
        self.buffers = {k: backend.to_device(w, device) for k, w in self.buffers.items()}
        self.device = device
        return self

    # ------------------------------------------------------------ parameters
    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """Weights drawn by the spec's ``init`` (default He normal, std sqrt(2 / fan_in), the usual
        choice for ReLU nets) from one generator seeded by ``seed``; zero biases."""
        return init_weights(self.param_info, self.spec.data["init"], seed, self.dtype)

    def require_params(self, purpose: str) -> None:
        """InputError at the spec's ``layers`` when the network has no parameters: there is no
        gradient to ``purpose`` (train). Such a network is a valid spec: it computes, and
        gradcheck checks its layers' input gradients."""
        if not self.params:
            names = ", ".join(layer.kind for layer in self.spec.network)
            raise self.spec.error("layers", f"the network ({names}) has no parameters, so there "
                                            f"is nothing to {purpose}: add a layer with weights "
                                            f"(dense, conv1d, conv2d, batchnorm)")

    def n_params(self) -> int:
        return int(sum(w.size for w in self.params.values()))

    def arrays(self, host: bool = False) -> dict[str, np.ndarray]:
        """Everything ``model.npz`` holds: the parameters and the buffers, by name; the live
        arrays on the model's device, or with ``host`` NumPy arrays as files hold them (copies
        from a GPU, the live arrays on the CPU)."""
        arrays = {**self.params, **self.buffers}
        return {k: backend.to_host(w) for k, w in arrays.items()} if host else arrays

    def save(self, path) -> None:
        np.savez(path, **self.arrays(host=True))

    def load_params(self, path) -> None:
        """Parameters and buffers from a ``model.npz`` (or a checkpoint) written for this spec."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                loaded = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read weights: {e}", file=str(path)) from None
        for name, w in self.arrays().items():
            if name not in loaded:
                raise InputError(f"weights file has no array {name!r} (it has "
                                 f"{', '.join(loaded) or 'none'})", file=str(path))
            if loaded[name].shape != w.shape:
                raise InputError(f"{name} has shape {loaded[name].shape}, the spec needs {w.shape}",
                                 file=str(path))
            w[...] = backend.to_device(loaded[name], self.device)

    def fit_preprocess(self, X) -> None:
        """Set the preprocessing statistics (spec's ``preprocess``) from training inputs X."""
        name = self.spec.data["preprocess"]
        if name == "none":
            return
        shift, scale = statistics(name, X)
        self.buffers["preprocess.shift"][...] = backend.to_device(shift, self.device)
        self.buffers["preprocess.scale"][...] = backend.to_device(scale, self.device)

    # ------------------------------------------------------------ training mode
    def draw_masks(self, n: int, rng) -> dict[str, np.ndarray]:
        """One step's random inputs of the training program for a batch of n samples (dropout's
        0/1 keep masks, in the model's dtype), drawn from ``rng`` in layer order."""
        return {m.name: m.draw(rng, (n, *m.shape[1:])).astype(self.dtype) for m in self.noise_info}

    def update_buffers(self, stats: dict, n: int) -> None:
        """After a training step on n samples: each layer's buffer update (batchnorm's running
        statistics) from the batch statistics a training :meth:`step` returned."""
        for u in self.updates:
            prefix = f"layers.{u.layer}."
            mine = {k[len(prefix):]: v for k, v in self.buffers.items() if k.startswith(prefix)}
            u.rule(mine, {short: stats[name] for short, name in u.stats.items()}, n)

    def _mode(self, train: bool, masks):
        """(program, extra inputs) for the mode; dropout in training mode needs its masks."""
        if not train:
            return self.program, {}
        missing = [m.name for m in self.noise_info if masks is None or m.name not in masks]
        if missing:
            raise ValueError(f"training mode needs the dropout masks {', '.join(missing)}: "
                             f"pass masks=model.draw_masks(n, rng)")
        return self.train_program, masks or {}

    # ------------------------------------------------------------ data
    def prepare(self, X, y=None):
        """Raw data -> what :meth:`step` takes: X cast to the model's dtype, its sample shape
        checked against the spec's ``input``; labels checked and converted for the loss (class
        indices one-hot, 0/1 read as -1/+1, ...). Raises InputError with the numbers."""
        X = self.prepare_x(X)
        if self.loss_def.label_shape(self.output_shape) is None:
            return X, None
        if y is None:
            raise InputError(f"the {self.loss_def.name} loss needs labels y")
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise InputError(f"data has {X.shape[0]} samples in X but {y.shape[0]} labels in y")
        given = y.shape
        try:
            y = self.loss_def.labels(y, self.output_shape, self.spec.data["loss"])
        except Invalid as e:
            raise InputError(f"{self.loss_def.name} loss: {e}") from None
        want = self.loss_def.label_shape(self.output_shape)[1:]
        if y.shape != (X.shape[0], *want):
            raise InputError(f"{self.loss_def.name} loss: labels y of shape {given[1:]} per sample "
                             f"do not fit the network output {tuple(self.output_shape[1:])}")
        return X, y.astype(self.dtype, copy=False)

    def prepare_x(self, X):
        """X (N, *input) cast to the model's dtype; a memory-mapped array stays on disk (the
        training loop casts it batch by batch). Raises InputError if the sample shape differs."""
        if not isinstance(X, np.memmap):
            X = np.asarray(X)
        want = tuple(self.spec.data["input"])
        if X.ndim < 1 or X.shape[1:] != want:
            raise InputError(f"data X has samples of shape {X.shape[1:]}, but the spec's input is "
                             f"{list(want)}")
        if isinstance(X, np.memmap):
            return X
        return X.astype(self.dtype, copy=False)

    def inputs(self, X, y=None, masks=None) -> dict:
        """The program's input values by name: parameters, buffers, ``X``, ``y`` and, in training
        mode, the dropout masks: what :func:`~bpcli.engine.evaluate` takes. Host data is moved
        to the model's device."""
        if self.device != "cpu":
            X = backend.to_device(X, self.device)
            y = None if y is None else backend.to_device(y, self.device)
            masks = {k: backend.to_device(m, self.device) for k, m in (masks or {}).items()}
        values = dict(self.params, X=X)
        values.update(self.buffers)
        if y is not None:
            values["y"] = y
        if masks:
            values.update(masks)
        return values

    # ------------------------------------------------------------ the API
    def step(self, X, y=None, *, train: bool = False, masks=None, grad: bool = True) -> Step:
        """One forward pass (and, with ``grad``, one backward pass) on prepared X, y (as
        :meth:`prepare` returns them): the loss parts, the output, dL/dW for every parameter by
        reverse mode, and in training mode the batch statistics :meth:`update_buffers` reads.

        ``train`` runs the training program (dropout with ``masks`` from :meth:`draw_masks`,
        batchnorm on batch statistics) without updating any buffer: the trainer does that after
        its step. The backward pass drops intermediate values once read (memory is reused).
        """
        prog, extra = self._mode(train, masks)
        env = evaluate(prog, self.inputs(X, y, extra))
        outs = prog.outputs
        output = backend.to_host(env[outs["output"].id])
        losses = {k: float(env[outs[k].id]) if k in outs else 0.0
                  for k in ("loss", "data_loss", "reg_loss")}
        stats = {name: env[outs[name].id] for u in self.updates for name in u.stats.values()
                 if name in outs and train}
        grads = backward(prog, env, "loss", list(self.params), release=True) if grad else None
        return Step(losses["loss"], losses["data_loss"], losses["reg_loss"], output, grads, stats)

    def forward(self, X, *, train: bool = False, masks=None) -> np.ndarray:
        """The network output before the loss for raw X, shape (N, outputs), a host array."""
        prog, extra = self._mode(train, masks)
        env = evaluate(prog, self.inputs(self.prepare_x(X), None, extra), until="output")
        return backend.to_host(env[prog.outputs["output"].id])

    def loss(self, X, y=None, *, train: bool = False, masks=None) -> float:
        """The loss trained on (data loss plus any penalty) for raw X, y."""
        X, y = self.prepare(X, y)
        return self.step(X, y, train=train, masks=masks, grad=False).loss

    def loss_and_grad(self, X, y=None, *, train: bool = False,
                      masks=None) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and dL/dW for every parameter by reverse mode (backpropagation), raw X, y."""
        X, y = self.prepare(X, y)
        s = self.step(X, y, train=train, masks=masks)
        return s.loss, s.grads

    def accuracy(self, X, y) -> float | None:
        """The fraction classified right, for raw X, y; None for a loss without accuracy."""
        if self.loss_def.accuracy is None:
            return None
        X, y = self.prepare(X, y)
        return self.loss_def.accuracy(self.forward(X), y)

    def directional_derivative(self, X, y, direction: dict) -> tuple[float, float]:
        """Forward mode: the loss and dL along ``direction`` (a dict like params), in one pass."""
        X, y = self.prepare(X, y)
        tangents = {k: backend.to_device(np.asarray(v, dtype=self.dtype), self.device)
                    for k, v in direction.items()}
        value, tangent = forward_tangent(self.program, self.inputs(X, y), tangents, "loss")
        return float(value), float(tangent)

    # ------------------------------------------------------------ predictions
    def predict(self, X, *, batch_size: int = PREDICT_BATCH) -> Prediction:
        """The evaluation program's answer for raw X (N, *input): :class:`Prediction`.

        X is run ``batch_size`` samples at a time (a memory-mapped X stays on disk). Raises
        InputError if the sample shape differs from the spec's ``input``.
        """
        X = X if isinstance(X, np.ndarray) else np.asarray(X)
        self.prepare_x(X[:0] if X.ndim else X)  # the sample shape checked before any work
        chunks = [self.forward(np.asarray(X[i:i + batch_size]))
                  for i in range(0, X.shape[0], batch_size)]
        output = (np.concatenate(chunks) if chunks
                  else np.zeros((0, *self.output_shape[1:]), dtype=self.dtype))
        return self.interpret(output)

    def interpret(self, output) -> Prediction:
        """A network output (N, outputs), as :meth:`step` or :meth:`forward` gives it, read as the
        loss reads it: predicted classes and probabilities, or regression estimates."""
        clf = self.loss_def.classifier
        if clf is None:
            return Prediction(output, None, output, None)
        classes = self.classes()
        probabilities = None if clf.probabilities is None else clf.probabilities(output)
        return Prediction(output, probabilities, np.asarray(classes)[clf.decide(output)], classes)

    @property
    def n_classes(self) -> int | None:
        """How many classes the loss tells apart (softmax cross-entropy: one per output; the ±1
        losses: 2, from 1 output), None for a loss without classes."""
        clf = self.loss_def.classifier
        return None if clf is None else len(clf.names(self.output_shape))

    def outputs_key(self) -> str | None:
        """The key path that sets how many outputs the network gives, ``layers[i].dense.units``
        of the dense layer the output comes from (through the layers after it, each by its own
        input) when its units are the output's width; else None."""
        network = self.spec.network
        index = len(network) - 1
        while index >= 0 and network[index].kind != "dense":
            index = network[index].sources[0]
        if index < 0 or len(self.output_shape) != 2:
            return None
        layer = network[index]
        return layer.field_path("units") if layer.fields["units"] == self.output_shape[1] else None

    def classes(self) -> list[str] | None:
        """The names of the classes in index order, None for a loss without classes: the spec's
        ``data.classes`` when it lists names, else the loss's own ("0" .. "K-1"; "-1", "+1")."""
        clf = self.loss_def.classifier
        if clf is None:
            return None
        default = clf.names(self.output_shape)
        named = (self.spec.data.get("data") or {}).get("classes")
        if not isinstance(named, (list, tuple)):  # builtin shapes' count of classes names none
            return default
        if len(named) != len(default):
            raise InputError(f"data.classes names {len(named)} classes, but the "
                             f"{self.loss_def.name} loss tells {len(default)} apart",
                             file=self.spec.file, path="data.classes")
        return [str(c) for c in named]
