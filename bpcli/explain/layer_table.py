"""What a spec's network is made of (``bpcli inspect``): per layer, its output shape, its
parameters and its FLOPs per sample; and pictures of its convolutions as the lecture draws
them, as banded Toeplitz matrices and as kernels.

FLOPs are counted per sample over the primitives each layer compiles to, so they follow
what the engine actually computes:

- a multiply-add counts 2: ``conv`` is 2 · out_channels · out_positions · in_channels ·
  kernel_size, ``matmul`` (dense) is 2 · outputs · inner size;
- a reduction (``sum``, ``mean``, ``max``: pooling) counts 1 per element it reads;
- every other arithmetic primitive (bias add, activations) counts 1 per output element,
  however costly the function (``exp`` counts 1 like ``add``);
- layout (reshape, transpose, pad, windows, broadcast_to) counts 0, and so does work on
  the weights alone, done once per batch (building T(w) for ``impl: toeplitz``).

So ``impl: toeplitz`` shows the price of the lecture's view: its product with the full
matrix T(w), zeros included, costs 2 · rows · columns, where ``impl: fast`` costs only the
band.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..nn.layers import LAYERS
from ..nn.network import previous
from .plots import pyplot, save

_LINES = 8  # up to this many conv1d kernels are drawn as lines, more as a mosaic


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def eqn_flops(e) -> int:
    """FLOPs of one equation for one sample (the module docstring's convention, each primitive's
    rule on its ``defprim``); 0 without a batch axis (work on the weights alone)."""
    if not e.out.shape or e.out.shape[0] is not None:
        return 0
    return e.prim.flops(e.out.shape, *(np.shape(a) if not hasattr(a, "shape") else a.shape
                                       for a in e.inputs), **e.params)


def _fields(name, cfg) -> dict:
    """The fields worth showing: required ones and those that differ from their default (a
    merging layer's ``with`` is shown by the readers as its inputs, not as a field)."""
    return {p.name: cfg[p.name] for p in LAYERS[name].params
            if p.name in cfg and (p.required or cfg[p.name] != p.default)}


def _show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "[" + ",".join(map(str, v)) + "]"
    return str(v)


def show_fields(fields: dict) -> str:
    """``channels=1 kernel=5 pad=same bias=false``."""
    return " ".join(f"{k}={_show(v)}" for k, v in fields.items())


def describe(name, cfg) -> str:
    """``conv1d channels=1 kernel=5 pad=same bias=false``."""
    return " ".join(filter(None, [name, show_fields(_fields(name, cfg))]))


def _by_layer(model) -> list[list]:
    """The equations each layer compiled to, in order (their origin names the layer)."""
    eqns = [[] for _ in model.spec.network]
    for e in model.program.eqns:
        if e.origin.layer() is not None:
            eqns[e.origin.layer()].append(e)
    return eqns


def output_shapes(model) -> list[tuple]:
    """The shape of one sample after each layer, as compilation recorded it."""
    return [tuple(s.output[1:]) for s in model.layer_shapes]


def input_shapes(model) -> list[list[tuple]]:
    """The shapes of one sample of each layer's inputs (its input, then ``with``'s)."""
    return [[tuple(shape[1:]) for shape in s.inputs] for s in model.layer_shapes]


def wiring(network, layer) -> dict:
    """The layer's wiring keys as a spec would write them: ``name``, and ``from`` and ``with``
    where it takes more or other than the layer before it; {} for a layer of a chain."""
    out = {"name": layer.name} if layer.name else {}
    first, *others = (network.source_name(s) for s in layer.sources)
    if layer.sources[0] != previous(layer.index):
        out["from"] = first
    if others:
        out["with"] = others
    return out


def summary(model) -> dict:
    """Per layer: index, kind, its name (None), the layers it takes (``from``: ``input`` or
    their names, ``layers[i]`` for an unnamed one), shown fields, input shapes and output shape
    (one sample), parameter count, FLOPs per sample; and the totals."""
    rows = []
    network = model.spec.network
    for layer, eqns, shape, ins in zip(network, _by_layer(model), output_shapes(model),
                                       input_shapes(model)):
        i = layer.index
        rows.append({
            "index": i, "layer": layer.kind, "name": layer.name,
            "from": [network.source_name(s) for s in layer.sources],
            "fields": _fields(layer.kind, layer.fields),
            "description": describe(layer.kind, layer.fields),
            "wiring": wiring(network, layer),
            "input_shapes": [list(s) for s in ins], "output_shape": list(shape),
            "params": sum(_size(p.shape) for p in model.param_info if p.layer == i),
            "flops": sum(eqn_flops(e) for e in eqns)})
    return {"name": model.spec.data["name"], "input": list(model.spec.data["input"]),
            "layers": rows, "total": {"params": sum(r["params"] for r in rows),
                                      "flops": sum(r["flops"] for r in rows)}}


def _matrix_layer(model, i):
    layers = model.spec.network
    if not 0 <= i < len(layers):
        raise InputError(f"layer index {i} is out of range: the spec has layers 0 to "
                         f"{len(layers) - 1}", path="--toeplitz")
    name, cfg = layers[i].kind, layers[i].fields
    if LAYERS[name].matrix is None:
        raise InputError(f"layers[{i}] is {name}, which has no matrix view: a convolution's is "
                         f"its banded Toeplitz matrix, dense's its weight; layers with one here: "
                         f"{', '.join(map(str, matrix_indices(model))) or 'none'}",
                         path="--toeplitz")
    return name, cfg


def matrix_indices(model) -> list[int]:
    """The layers with a matrix view (``LayerDef.matrix``): convolutions and dense."""
    return [layer.index for layer in model.spec.network if layer.definition.matrix is not None]


def kernel_indices(model) -> list[int]:
    """The layers whose weight has kernel axes (out, in, *kernel): the convolutions."""
    return [i for i in matrix_indices(model)
            if f"layers.{i}.weight" in model.params and model.params[f"layers.{i}.weight"].ndim >= 3]


def out_in_weight(model, i) -> np.ndarray:
    """Layer i's weight with its out axis first and its in axis second, whatever its layout
    (``LayerDef.weight_axes``: a transposed convolution keeps PyTorch's (in, out, *kernel))."""
    w = model.params.get(f"layers.{i}.weight")
    if w is None:   # a fixed matrix (upsampling): no weight
        return None
    out_axis, in_axis = model.spec.network[i].definition.weight_axes
    return np.moveaxis(w, (out_axis, in_axis), (0, 1)) if w.ndim >= 2 else w


def toeplitz_matrix(model, i) -> np.ndarray:
    """Layer i as the explicit matrix T with y = T x for one sample (flattened; channels first),
    bias left out, from the model's current weights: a convolution's banded Toeplitz matrix
    T(w) (the lecture's W1, W2), a dense layer's weight (W3)."""
    name, cfg = _matrix_layer(model, i)
    return LAYERS[name].matrix(cfg, input_shapes(model)[i][0], model.params.get(f"layers.{i}.weight"))


_ZOOM = 96   # a matrix with more rows or columns than this also gets a panel of its corner


def toeplitz_figure(model, i, source="initial weights"):
    """Layer i's T(w) as an image, 0 white, positive red, negative blue, lines between the
    blocks of a multi-channel (block-)Toeplitz matrix; returns the Figure.

    The panel's shape follows the matrix's (within 1:2.5 either way; the title says when rows
    or columns are squeezed); a matrix over 96 rows or columns also gets a panel of its top-left
    96×96 corner at one square per entry, where the bands of a 2-D convolution can be seen."""
    from matplotlib.patches import Rectangle

    plt = pyplot()
    T = toeplitz_matrix(model, i)
    name, cfg = model.spec.network[i].kind, model.spec.network[i].fields
    w = out_in_weight(model, i)
    if w is None:   # upsampling: one block per channel, on the diagonal
        o_ch = c_ch = input_shapes(model)[i][0][0] if len(input_shapes(model)[i][0]) >= 2 else 1
    else:           # channel blocks of a convolution; one block for dense
        o_ch, c_ch = w.shape[:2] if w.ndim >= 3 else (1, 1)
    scale = float(np.abs(T).max()) or 1.0
    rows, cols = T.shape
    zoom = max(rows, cols) > _ZOOM
    ratio = float(np.clip(rows / cols, 1 / 2.5, 2.5))   # the whole matrix's panel, height/width
    side = 5.5 if zoom else 7.0
    height = min(side * ratio, 7.5)   # the whole matrix's panel, in inches
    fig, axes = plt.subplots(1, 2 if zoom else 1, squeeze=False, layout="constrained",
                             width_ratios=[height / ratio, side] if zoom else None,
                             figsize=(height / ratio + (side if zoom else 0) + 1.5,
                                      max(height, side * min(rows / cols, 1.0) if zoom else 0,
                                          2.5) + 1.5))
    ax = axes[0][0]
    style = {"cmap": "RdBu_r", "vmin": -scale, "vmax": scale}
    im = ax.imshow(T, interpolation="antialiased", aspect=(cols / rows) * ratio, **style)
    for k in range(1, o_ch):
        ax.axhline(k * rows / o_ch - 0.5, color="0.6", lw=0.6)
    for k in range(1, c_ch):
        ax.axvline(k * cols / c_ch - 0.5, color="0.6", lw=0.6)
    squeeze = (rows / cols) / ratio
    ax.set_title(("the whole matrix" if zoom else "") + (f" (rows squeezed {squeeze:.3g}×)" if squeeze > 1.01 else
                                       f" (columns squeezed {1 / squeeze:.3g}×)" if squeeze < 0.99
                                       else ""), fontsize=10)
    ax.set_xlabel("input (channel, position)")
    ax.set_ylabel("output (channel, position)")
    if zoom:
        r, c = min(rows, _ZOOM), min(cols, _ZOOM)
        ax.add_patch(Rectangle((-0.5, -0.5), c, r, fill=False, ec="black", lw=1.2))
        corner = axes[0][1]
        corner.imshow(T[:r, :c], interpolation="nearest", **style)
        corner.set_title(f"its top-left corner: rows 0–{r - 1}, columns 0–{c - 1}", fontsize=10)
        corner.set_xlabel("input index")
        corner.set_ylabel("output index")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.6)
    fig.suptitle(f"layers[{i}] {describe(name, cfg)}\nT(w), {rows}×{cols}: y = T x  ({source})",
                 fontsize=11)
    return fig


def draw_toeplitz(model, i, out, source="initial weights") -> Path:
    """:func:`toeplitz_figure` written to the PNG ``out``."""
    return save(toeplitz_figure(model, i, source), out)


def _kernel_mosaic(w):
    """conv2d weights (out, in, kh, kw) as one image: in channels down, out channels across,
    one blank (NaN) row and column between kernels."""
    o_ch, c_ch, kh, kw = w.shape
    grid = np.full((c_ch * (kh + 1) - 1, o_ch * (kw + 1) - 1), np.nan)
    for o in range(o_ch):
        for c in range(c_ch):
            grid[c * (kh + 1):c * (kh + 1) + kh, o * (kw + 1):o * (kw + 1) + kw] = w[o, c]
    return grid


def draw_kernels(model, out, source="initial weights") -> Path:
    """Every conv layer's kernels, one panel each: a few conv1d kernels as lines over the taps
    (the lecture's one kernel of 5), more of them, and conv2d kernels, as a mosaic of small
    images, in channels down and out channels across, 0 white, positive red, negative blue."""
    plt = pyplot()
    convs = kernel_indices(model)
    if not convs:
        raise InputError("the spec has no conv1d or conv2d layer: no kernels to draw",
                         path="--kernels")
    layers = model.spec.network
    # a conv1d kernel in a mosaic is an image one row high
    weights = [w if w.ndim == 4 or w.shape[0] * w.shape[1] <= _LINES else w[:, :, None, :]
               for w in (out_in_weight(model, i) for i in convs)]
    # each panel as tall as its picture needs: a mosaic keeps square pixels
    heights = [0.45 if w.ndim == 3 else float(np.clip((w.shape[1] * (w.shape[2] + 1))
                                                      / (w.shape[0] * (w.shape[3] + 1)), 0.2, 1.5))
               for w in weights]
    fig, axes = plt.subplots(len(convs), 1, figsize=(8, 1.2 + 7 * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, i, w in zip(axes[:, 0], convs, weights):
        name, cfg = layers[i].kind, layers[i].fields
        if w.ndim == 3:
            for o in range(w.shape[0]):
                for c in range(w.shape[1]):
                    ax.plot(w[o, c], marker="o", label=f"out {o}, in {c}")
            ax.axhline(0, color="0.6", lw=0.6)
            ax.set_xlabel("tap k")
            ax.set_ylabel("w[out, in, k]")
            ax.set_xticks(range(w.shape[2]))
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))   # off the lines
        else:
            o_ch, c_ch, kh, kw = w.shape
            scale = float(np.abs(w).max()) or 1.0
            im = ax.imshow(_kernel_mosaic(w), cmap="RdBu_r", vmin=-scale, vmax=scale,
                           interpolation="nearest")
            ax.set_xticks([o * (kw + 1) + (kw - 1) / 2 for o in range(o_ch)], range(o_ch))
            ax.set_yticks([c * (kh + 1) + (kh - 1) / 2 for c in range(c_ch)], range(c_ch))
            ax.set_xlabel("out channel")
            ax.set_ylabel("in channel")
            ax.tick_params(length=0, labelsize=7)
            fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(f"layers[{i}] {describe(name, cfg)}", fontsize=9)
    fig.suptitle(f"{model.spec.data['name']}: kernels ({source})", fontsize=11)
    fig.tight_layout()
    return save(fig, out)
