"""``bpcli export``: a trained network leaves bpcli as a file other runtimes run (ONNX).

:func:`export_run` writes a run's network, with the weights and state of a checkpoint, as an
ONNX model (:mod:`bpcli.export.onnx_model`; each layer's operators are on its definition,
``LayerDef.onnx``). The ``onnx`` package is an optional extra, ``pip install 'bpcli[export]'``
(which brings ``onnxruntime`` too, to run the file); without it exporting is an
:class:`~bpcli.errors.InputError` saying so.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

FORMATS = ("onnx",)
DEFAULT_OPSET = 17  # a current opset every onnxruntime since 1.11 runs

# The operators ONNX Runtime's CPU provider (1.32) has no float64 kernel for: a float64 model that
# uses one is valid ONNX which ONNX Runtime refuses to load (NOT_IMPLEMENTED). bpcli export says
# so when it writes one; tests/test_export.py runs such models through onnx's reference
# evaluator and checks that ONNX Runtime names one of these as what it lacks.
ORT_NO_FLOAT64 = frozenset({"Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool",
                            "GlobalMaxPool", "Resize", "Elu", "Softplus"})


@dataclass(frozen=True)
class Exported:
    """What :func:`export_run` wrote: the file, its opset, and its inputs and outputs as
    (name, shape) pairs, ``"N"`` the batch size."""

    path: Path
    opset: int
    inputs: list
    outputs: list
    metadata: dict
    notes: tuple = ()   # what a user should know about the file (a runtime that cannot run it)


def require(package: str):
    """The module ``package``, or InputError naming it and the extra that installs it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise InputError(f"bpcli export needs the {package} package, which is not installed: "
                         f"pip install 'bpcli[export]'") from None


def to_onnx(model, *, opset: int = DEFAULT_OPSET, checkpoint: str | None = None):
    """The :class:`~bpcli.nn.model.Model`'s network as a checked ``onnx.ModelProto`` (see
    :mod:`bpcli.export.onnx_model`): ``onnxruntime.InferenceSession(proto.SerializeToString())``
    runs it. ``checkpoint`` is recorded in its metadata. Raises InputError for bad input."""
    require("onnx")
    from .onnx_model import build

    return build(model, opset=opset, checkpoint=checkpoint)


def default_path(run, checkpoint: str) -> Path:
    """``<run folder name>.onnx`` in the working directory (``-best`` added for best)."""
    return Path(f"{Path(run).resolve().name}{'-best' if checkpoint == 'best' else ''}.onnx")


def export_run(run, out=None, *, checkpoint: str = "final", opset: int = DEFAULT_OPSET,
               fmt: str = "onnx", force: bool = False) -> Exported:
    """Write the network of the run folder ``run`` (its ``checkpoint``, final or best) to ``out``
    (default :func:`default_path`) as ONNX (``fmt``, the one format) at ``opset``: whole to a
    temporary name, then renamed, so nothing half-written is left. A file already at ``out``
    is replaced only with ``force``. Raises InputError for bad input, before writing anything."""
    from ..train.run_folder import RunFolder, atomic_write

    if fmt not in FORMATS:
        raise InputError(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", path="--format")
    path = Path(out) if out is not None else default_path(run, checkpoint)
    if path.suffix != ".onnx":
        raise InputError("the file name must end in .onnx", file=str(path), path="--out")
    if not path.parent.is_dir():
        raise InputError("its folder does not exist", file=str(path), path="--out")
    if path.is_dir():
        raise InputError("is a folder: give a file name", file=str(path), path="--out")
    if path.exists() and not force:
        raise InputError("the file exists, and bpcli export never replaces a file unless told: "
                         "give --force to replace it, or --out another name", file=str(path),
                         path="--out")
    folder = RunFolder.open(run)
    folder.weights(checkpoint)  # a run without them says what to do, with or without onnx
    require("onnx")  # before any work
    model = folder.load_model(checkpoint)
    proto = to_onnx(model, opset=opset, checkpoint=checkpoint)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return Exported(path, opset, [(v.name, dims(v)) for v in proto.graph.input],
                    [(v.name, dims(v)) for v in proto.graph.output],
                    {p.key: p.value for p in proto.metadata_props}, _notes(model, proto))


def _notes(model, proto) -> tuple:
    """A float64 model whose operators ONNX Runtime's CPU provider cannot run in float64."""
    missing = sorted({node.op_type for node in proto.graph.node} & ORT_NO_FLOAT64)
    if model.dtype.itemsize != 8 or not missing:
        return ()
    return (f"ONNX Runtime's CPU provider has no float64 kernel for {', '.join(missing)}: it "
            f"refuses to load this float64 model, which other runtimes (onnx's reference "
            f"evaluator) run; train with --set dtype=float32 for a model ONNX Runtime runs",)
