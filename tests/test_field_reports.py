"""Field reports (issue 12): each fault fixed as a kind, across every command it applies to.

Every command runs in-process through :func:`bpcli.cli.main` in a fresh working directory.
The commands and their options are read from the Typer app, so a new command or option is
covered the day it is added.
"""

from __future__ import annotations

import inspect
import json
import typing
from pathlib import Path

import pytest
import yaml
from typer.models import ArgumentInfo, OptionInfo

from bpcli.cli import app, main
from bpcli.cli.options import checks_of, flag
from helpers import tiny_spec


def cli(capsys, *args):
    """``bpcli ARGS`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys, *args):
    code, out, err = cli(capsys, *args)
    assert code == 0, f"bpcli {' '.join(map(str, args))} exited {code}\nstdout: {out}\nstderr: {err}"
    return out, err


def commands():
    """(name, the function as written) for every command of the app."""
    for c in app.registered_commands:
        yield c.name or c.callback.__name__, inspect.unwrap(c.callback)


def options(fn):
    """(parameter, --name, type) of every option of a command."""
    hints = typing.get_type_hints(fn)
    for name, p in inspect.signature(fn).parameters.items():
        if isinstance(p.default, OptionInfo):
            yield name, flag(p), hints[name]


def required_args(fn) -> list[str]:
    """Placeholder values for the command's required arguments and options, enough for the
    command line to parse: an option check must stop the command before it reads any of them."""
    args = []
    for name, p in inspect.signature(fn).parameters.items():
        info = p.default
        if isinstance(info, ArgumentInfo) and info.default is ...:
            args.append("nothere.yaml")
        elif isinstance(info, OptionInfo) and info.default is ...:
            args += [flag(p), "x=1"]
    return args


NUMERIC = {int, float, typing.Optional[int], typing.Optional[float]}


# ---------------------------------------------------------------- 1. options checked up front, by name
def every_checked_option():
    for command, fn in commands():
        checks = checks_of(fn)
        for name, option, hint in options(fn):
            if hint in NUMERIC or name in checks:
                yield command, fn, name, option


@pytest.mark.parametrize("command,fn,name,option",
                         list(every_checked_option()),
                         ids=[f"{c}{o}" for c, _, _, o in every_checked_option()])
def test_every_numeric_or_choice_option_is_checked_before_any_work_naming_itself(
        command, fn, name, option, workdir, capsys):
    checks = checks_of(fn)
    assert name in checks, f"bpcli {command} {option} has no check: declare it with cli.options.option"
    # every numeric option's rule refuses -1 (counts, sizes, seeds, steps, indices, digits)
    bad = "nonsense" if hasattr(checks[name][1], "choices") else "-1"
    code, out, err = cli(capsys, command, *required_args(fn), f"{option}={bad}")
    assert code == 2, err
    assert err.startswith(f"bpcli: error: {option}: must be "), err
    assert "Traceback" not in err and out == ""
    assert list(workdir.iterdir()) == []  # nothing half-written


def test_epochs_and_seed_are_blamed_on_the_option_not_on_a_line_of_the_spec(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec())
    code, _, err = cli(capsys, "train", "s.yaml", "--epochs", 0)
    assert (code, err) == (2, "bpcli: error: --epochs: must be a positive integer, got 0\n")
    code, _, err = cli(capsys, "train", "s.yaml", "--seed=-1")
    assert (code, err) == (2, "bpcli: error: --seed: must be an integer >= 0, got -1\n")
    code, _, err = cli(capsys, "gradcheck", "s.yaml", "--mode", "exactly")
    assert code == 2 and err.startswith("bpcli: error: --mode: must be one of auto, exact, fast")
    assert "did you mean 'exact'" in err
    assert not (workdir / "runs").exists()


def test_a_good_value_passes_its_check_and_reaches_the_command(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec())
    out, _ = ok(capsys, "train", "s.yaml", "-q", "--epochs", 1, "--seed", 0,
                "--checkpoint-every", 1, "--on-nan", "skip")
    assert json.loads((workdir / "runs/tiny-pulses/summary.json").read_text())["epochs"] == 1


# ---------------------------------------------------------------- 2. data on stdout, nothing else
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder with the tiny spec and one finished 1-epoch run of it, ``run``."""
    root = tmp_path_factory.mktemp("trained")
    (root / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", str(root / "s.yaml"), "-q", "--out", str(root / "run")]) == 0
    return root


def json_commands(root: Path) -> dict:
    """The arguments that make each command with --json print its JSON."""
    spec, run = root / "s.yaml", root / "run"
    return {"train": None,  # train has no --json
            "runs": [root], "eval": [run], "validate": [spec], "show": [spec],
            "gradcheck": [spec, "--mode", "fast", "--samples", 2, "--directions", 2],
            "bench": [spec, "--batch", 2, "--steps", 1], "inspect": [spec],
            "trace": ["ln(x1) + x1*x2", "--at", "x1=2,x2=5"]}


def test_every_json_option_prints_json_alone(trained, workdir, capsys):
    table = json_commands(trained)
    for command, fn in commands():
        if "--json" not in [o for _, o, _ in options(fn)]:
            continue
        assert table.get(command) is not None, f"bpcli {command} --json: add it to json_commands"
        out, _ = ok(capsys, command, *table[command], "--json")
        json.loads(out)  # the whole of stdout is one JSON document


def test_graph_dot_is_a_dot_file_and_its_note_goes_to_stderr(trained, workdir, capsys):
    for target in (trained / "s.yaml", "ln(x1) + x1*x2 - sin(x2)"):
        out, err = ok(capsys, "graph", target, "--dot", "--out", "g.png")
        assert out.startswith("digraph") and out.rstrip().endswith("}"), out[-200:]
        assert "graphs:" not in out and "graphs: g.png" in err


def test_show_and_schema_print_their_document_alone(trained, workdir, capsys):
    out, _ = ok(capsys, "show", trained / "s.yaml")
    assert yaml.safe_load(out)["training"]["epochs"] == 1
    out, _ = ok(capsys, "schema")
    assert json.loads(out)["type"] == "object"
