"""docs/spec-reference.md, generated from the field tables.

    python -m bpcli.spec.reference --write docs/spec-reference.md   (make docs)
    python -m bpcli.spec.reference                                  (print it)

tests/test_docs.py checks that the file holds exactly ``document()``, so the
documented defaults cannot drift from the ones the validator applies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..train.augment import AUGMENT
from ..nn.initializers import INITIALIZERS
from ..nn.layers import LAYERS
from ..nn.network import WIRING
from ..nn.losses import LOSSES
from ..train.optim import OPTIMIZERS
from ..train.schedule import SCHEDULES
from ..core.fields import Param
from .sections import DATA, EARLY_STOPPING, REGULARIZATION, TOP, TRAINING

COMMAND = "python -m bpcli.spec.reference --write docs/spec-reference.md"

HEADER = f"""# Spec reference

Every key a spec may hold, its default and its meaning. Generated from the field tables in the
code by [`bpcli/spec/reference.py`](../bpcli/spec/reference.py): do not edit it by hand, run
`make docs` (`{COMMAND}`). How to write, check and change a spec: [writing-specs.md](writing-specs.md).
"""


def _default(p: Param) -> str:
    if p.required:
        return "required"
    d = p.default
    if d is None:
        return "—"
    if isinstance(d, bool):
        return f"`{str(d).lower()}`"
    if isinstance(d, dict):
        return "`" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "`"
    return f"`{d}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bare | would end the table cell


def _fields(params) -> list[str]:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{p.name}` | {_default(p)} | {_cell(p.doc)} |" for p in params]
    return rows


def _table_with_fields(kind, defs) -> list[str]:
    """A table of names and definitions, then the fields of those that have any."""
    out = [f"| {kind} | definition |", "|---|---|"]
    out += [f"| `{d.name}` | {_cell(d.doc)} |" for d in defs.values()]
    return out + [""] + [line for d in defs.values() if d.params
                         for line in [f"`{d.name}` fields:", ""] + _fields(d.params) + [""]]


def markdown() -> str:
    """The reference's tables: top-level keys, sections, then each table of names with its fields."""
    out = ["## Top level", ""] + _fields(TOP)
    out += ["", "## `data`", ""] + _fields(DATA)
    out += ["", "## `training`", ""] + _fields(TRAINING)
    out += ["", "## `training.early_stopping`", ""] + _fields(EARLY_STOPPING)
    out += ["", "## `training.augment`", ""] + _fields(AUGMENT)
    out += ["", "## `regularization`", ""] + _fields(REGULARIZATION)
    out += ["", "## Layers", "", "| layer | what it computes | example |", "|---|---|---|"]
    out += [f"| `{d.name}` | {_cell(d.doc)} | `{d.example}` |" for d in LAYERS.values()]
    out += ["", "Every layer may also take these keys, which wire a graph (a layer without them "
            "takes the layer before it; see [writing graphs](writing-specs.md#graphs)):", ""]
    out += _fields(WIRING)
    out += [""] + [line for d in LAYERS.values() if d.params
                   for line in [f"`{d.name}` fields:", ""] + _fields(d.params) + [""]]
    out += ["## Initializers (`init`)", ""] + _table_with_fields("init", INITIALIZERS)
    out += ["## Losses", ""] + _table_with_fields("loss", LOSSES)
    out += ["## Optimizers", ""]
    for d in OPTIMIZERS.values():
        out += [f"`{d.name}`: {d.doc}.", ""] + _fields(d.params) + [""]
    out += ["## Schedules (`schedule`)", ""]
    for d in SCHEDULES.values():
        out += [f"`{d.name}`: {d.doc}.", ""] + (_fields(d.params) + [""] if d.params else [])
    return "\n".join(out).rstrip("\n")


def document() -> str:
    """The whole text of docs/spec-reference.md."""
    return HEADER + "\n" + markdown() + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Print or write bpcli's spec reference (Markdown).")
    ap.add_argument("--write", type=Path, metavar="FILE", help="write it to FILE instead of printing")
    args = ap.parse_args(argv)
    if args.write is None:
        print(document(), end="")
    else:
        args.write.write_text(document(), encoding="utf-8")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
