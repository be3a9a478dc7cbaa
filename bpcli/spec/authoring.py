"""Writing specs: every error at once (``bpcli validate``), the resolved spec (``bpcli show``) and
starter specs (``bpcli init``). The CLI prints what these return."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..errors import InputError
from ..core.fields import did_you_mean
from ..core.document import Spec
from .validate import check
from .templates import TEMPLATES, render


def validate_spec(source, sets=()) -> dict:
    """A summary of a spec that has no problem; else one InputError listing every problem.

    Every structural problem is found at once; the shapes are then checked by
    compiling the network, which stops at the first layer that cannot take its
    input (the shapes after it are unknown); then the data the spec names, if any, is read and
    checked against it as train checks it (its shape, classes against the outputs).
    """
    from ..nn.model import Model
    from ..train.run import read_fitted

    spec = check(source, sets=sets)
    model = Model(spec)
    data = _data(spec)
    if data is not None:  # the data at hand: read and checked against the spec as train does
        read_fitted(spec)
    return {"file": spec.file, "name": spec.data["name"], "layers": len(spec.data["layers"]),
            "parameters": model.n_params(),
            "output_shape": [int(n) for n in model.output_shape[1:]],
            "loss": spec.data["loss"]["name"], "data": data}


def _data(spec: Spec) -> str | None:
    """Where the spec's data comes from; a data file that is not there is an error already."""
    cfg = spec.data["data"]
    if cfg is None or not (cfg["builtin"] or cfg["path"]):  # options only: --data gives the file
        return None
    if cfg["builtin"]:
        return f"builtin {cfg['builtin']} (n={cfg['n']})"
    found = {}
    for key in ("path", "val_path"):
        if cfg[key]:
            path = Path(cfg[key])
            found[key] = path if path.is_absolute() else spec.base_dir / path
            if not found[key].exists():
                raise spec.error(f"data.{key}", f"no such file: {found[key]} (a relative path is "
                                                f"read from the spec's folder)")
    return str(found["path"]) + (f" (validation: {found['val_path']})" if "val_path" in found
                                 else "")


def summary_line(summary: dict) -> str:
    data = summary["data"] or "none, train it with --data FILE"
    untrainable = ("; no parameters, so bpcli train will refuse it (gradcheck still checks its "
                   "layers)" if not summary["parameters"] else "")
    return (f"{summary['file'] or summary['name']}: ok, {summary['layers']} layers, "
            f"{summary['parameters']:,} parameters, output shape {tuple(summary['output_shape'])}, "
            f"{summary['loss']} loss; data: {data}{untrainable}")


def show_text(spec: Spec, as_json: bool = False) -> str:
    """The resolved spec, every default filled in: YAML with a header comment, or JSON."""
    if as_json:
        return json.dumps(spec.data, indent=2) + "\n"
    source = spec.file or spec.data["name"]
    sets = "".join(f"\n#   --set {item}" for _, item in spec.sets)
    return (f"# {source} as bpcli {__version__} reads it: every default filled in{sets}\n"
            + spec.to_yaml())


def write_template(template: str, out: Path) -> Path:
    """Write a starter spec to ``out``, never over an existing file."""
    if template not in TEMPLATES:
        raise InputError(f"unknown template {template!r}{did_you_mean(template, TEMPLATES)}; "
                         f"known: {', '.join(TEMPLATES)}", path="--template")
    out = Path(out)
    text = render(template, str(out))
    try:
        with open(out, "x", encoding="utf-8") as f:  # "x": fails if the file exists
            f.write(text)
    except FileExistsError:
        raise InputError("already exists; bpcli init never overwrites a file: choose another "
                         "--out", file=str(out)) from None
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", file=str(out)) from None
    return out
