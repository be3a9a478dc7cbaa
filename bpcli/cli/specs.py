"""Commands for writing specs: validate, show, schema, init."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import InputError
from ..core.fields import one_of
from ..spec.templates import TEMPLATES
from . import SPEC, command, out
from .options import option


@command
def validate(spec: Path = SPEC,
             set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                            help="validate SPEC with this change (repeatable)"),
             as_json: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Check SPEC: every problem at once, each with file:line:column and key path, then shapes."""
    from ..spec.authoring import summary_line, validate_spec

    try:
        summary = validate_spec(spec, set_)
    except InputError as e:
        if as_json:
            print(json.dumps({"ok": False, "errors": [
                {"file": x.file, "line": x.line, "column": x.column, "path": x.path,
                 "message": x.message} for x in e.errors]}))
            raise typer.Exit(2) from None
        raise
    if as_json:
        print(json.dumps({"ok": True, **summary}))
    else:
        out.print(summary_line(summary), markup=False)


@command
def show(spec: Path = SPEC,
         set_: List[str] = typer.Option([], "--set", metavar="KEY.PATH=VALUE",
                                        help="show SPEC with this change (repeatable)"),
         as_json: bool = typer.Option(False, "--json", help="print JSON instead of YAML"),
         program: bool = typer.Option(False, "--program", help="print the compiled program "
                                      "instead: one line per equation, with shapes and the layer "
                                      "it came from"),
         training: bool = typer.Option(False, "--training", help="with --program: the training "
                                       "program (dropout masks, batch statistics)")):
    """Print SPEC resolved, as bpcli trains it: every default filled in (YAML, or --json); or the
    static program it compiles to (--program)."""
    from ..spec.authoring import show_text
    from ..spec.validate import check

    if training and not program:
        raise InputError("--training shows the training program: give it with --program",
                         path="--training")
    s = check(spec, sets=set_)  # every problem at once: the command wrapper prints each
    if program:
        from ..nn.model import Model

        model = Model(s)
        sys.stdout.write(str(model.train_program if training else model.program) + "\n")
        return
    sys.stdout.write(show_text(s, as_json))


@command
def schema(out_file: Optional[Path] = typer.Option(None, "--out", help="write it to this file "
                                                   "[default: print it]")):
    """A JSON Schema of specs, for editors that complete and check YAML while you type."""
    from ..spec.json_schema import dumps

    text = dumps()
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", file=str(out_file)) from None
    out.print(f"JSON Schema: {out_file}", markup=False)


@command
def init(template: str = option("lecture", check=one_of(*TEMPLATES),
                                help=f"starter spec: {', '.join(TEMPLATES)}"),
         out_file: Optional[Path] = typer.Option(None, "--out", help="spec file to write "
                                                 "[default: <template>.yaml]; never overwritten")):
    """Write a commented starter spec (it validates as written) to edit and train."""
    from ..spec.authoring import write_template

    path = write_template(template, out_file or Path(f"{template}.yaml"))
    out.print(f"wrote {path} (template {template}); next: bpcli validate {shlex.quote(str(path))}, "
              f"then bpcli train {shlex.quote(str(path))}", markup=False)
