"""A :class:`~bpcli.nn.model.Model` as an ONNX model, written with the ``onnx`` package's helpers.

The graph is the evaluation program before the loss: input ``X`` (``N``, *input) in the model's
dtype, the preprocessing ``(X - shift) / scale`` as its first nodes (``Sub``, ``Div``, the
statistics as initializers), then each layer's lowering (``LayerDef.onnx``, on its definition
in :mod:`bpcli.nn.layers`; dropout is no node, batchnorm uses its running statistics). Outputs:
``output``, the network's output (N, outputs): logits, score or prediction; and, for a loss
with probabilities (``LossDef.onnx_probabilities``), ``probabilities`` (N, K), what
``Model.predict`` gives. ``metadata_props`` record where the file came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from .. import __version__
from ..errors import InputError
from ..explain.layer_table import output_shapes
from ..nn.network import NETWORK_INPUT
from .writer import GraphWriter, Value


def _batch(shape) -> list:
    return ["N", *shape[1:]]


def _lower_layers(g: GraphWriter, model, x: Value) -> Value:
    """Each layer's lowering on the values its sources gave (a merging layer gets the list of
    them), shapes as compilation recorded them; returns the network's output."""
    arrays = model.arrays()
    values = {NETWORK_INPUT: x}
    for layer, shape in zip(model.spec.network, output_shapes(model)):
        lower = layer.definition.onnx
        if not callable(lower):
            why = lower or "it has no ONNX lowering (LayerDef.onnx)"
            raise InputError(f"{layer.kind} cannot be exported to ONNX: {why}",
                             file=model.spec.file, path=layer.path)
        g.scope(layer.prefix, str(layer))
        params = {k[len(layer.prefix):]: v for k, v in arrays.items() if k.startswith(layer.prefix)}
        inputs = [values[s] for s in layer.sources]
        y = lower(g, inputs if layer.definition.merges else inputs[0], layer.fields, params)
        values[layer.index] = Value(getattr(y, "name", y), (None, *shape))
    return values[len(model.spec.network) - 1]


def metadata(model, checkpoint: str | None) -> dict[str, str]:
    """Provenance: bpcli version, spec name and fingerprint, checkpoint, loss, class names; and
    what X holds when the model was trained on a table or pictures (:func:`input_metadata`)."""
    props = {"bpcli_version": __version__, "spec_name": model.spec.data["name"],
             "spec_fingerprint": model.spec.fingerprint(), "loss": model.loss_def.name}
    if checkpoint:
        props["checkpoint"] = checkpoint
    classes = model.classes()
    if classes is not None:
        props["classes"] = json.dumps(classes)
    return {**props, **input_metadata(model.spec)}


def input_metadata(spec) -> dict[str, str]:
    """What bpcli does before the graph, for a spec trained on a CSV or on pictures (JSON text):

    - a CSV: ``input_columns``, the feature columns in the order X holds them (names, or
      positions for a file without a header), and ``label_column``;
    - a folder of pictures (when it is still there to tell): ``input_pictures``, how a picture
      becomes one sample of X: decoded by Pillow, resized (bilinear) or not, converted to the
      Pillow ``mode`` of the spec's channels, each 8-bit value divided by 255 (16-bit by
      65535), laid out channels, height, width.

    Nothing for builtin data or arrays (.npz, .npy): X is then what the file holds.
    """
    from ..train import images

    cfg = spec.data["data"] or {}
    if cfg.get("features") is not None:
        props = {"input_columns": json.dumps(list(cfg["features"]))}
        if cfg.get("target") is not None:
            props["label_column"] = json.dumps(cfg["target"])
        return props
    path = Path(cfg["path"]) if cfg.get("path") else None
    if path is None or not path.is_dir() or not images.is_image_folder(path):
        return {}
    channels, height, width = spec.data["input"]
    return {"input_pictures": json.dumps({
        "layout": ["channels", "height", "width"], "channels": channels, "height": height,
        "width": width, "mode": images.MODES[channels],
        "resize": "bilinear" if cfg.get("resize") else "none",
        "divide_by": images.DIVIDE_BY, "range": [0, 1]})}


def build(model, *, opset: int, checkpoint: str | None = None) -> onnx.ModelProto:
    """The model's evaluation program before the loss, as a checked ONNX model at ``opset``.

    Raises :class:`InputError` for an opset the onnx package does not know or too old for an
    operator written (naming both), and for a layer that has no ONNX form (naming it).
    """
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise InputError(f"must be an opset from 1 to {newest} (the newest the installed onnx "
                         f"package knows), got {opset}", path="--opset")
    g = GraphWriter(model.dtype, opset)
    x = X = Value("X", (None, *model.spec.data["input"]))
    preprocess = model.spec.data["preprocess"]
    if preprocess != "none":
        g.scope("preprocess.", f"preprocess ({preprocess})")
        centred = g.op("Sub", x, g.const(model.buffers["preprocess.shift"], "shift"))
        x = Value(g.op("Div", centred, g.const(model.buffers["preprocess.scale"], "scale")),
                  x.shape)
    x = _lower_layers(g, model, x)
    g.scope("", f"the {model.loss_def.name} loss's probabilities")
    outputs = [(g.rename(x.name, "output"), x.shape)]
    head = model.loss_def.onnx_probabilities
    if head is not None:
        p = g.rename(head(g, "output", len(model.output_shape)), "probabilities")
        # (N, K) per sample, (N, K, *S) per pixel: the shape the loss's own probabilities have
        probe = np.zeros((1, *model.output_shape[1:]), dtype=model.dtype)
        outputs.append((p, (None, *model.loss_def.classifier.probabilities(probe).shape[1:])))
    g.check_opset()
    elem = helper.np_dtype_to_tensor_dtype(model.dtype)
    graph = helper.make_graph(
        g.nodes, model.spec.data["name"],
        [helper.make_tensor_value_info(X.name, elem, _batch(X.shape))],
        [helper.make_tensor_value_info(name, elem, _batch(shape)) for name, shape in outputs],
        g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="bpcli",
                              producer_version=__version__,
                              doc_string=f"bpcli export of {model.spec.data['name']}",
                              ir_version=helper.find_min_ir_version_for(opsets))
    helper.set_model_props(proto, metadata(model, checkpoint))
    onnx.checker.check_model(proto, full_check=True)
    return proto
