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
from helpers import cli, ok, tiny_spec


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
    """A folder with the tiny spec, one finished 1-epoch run of it, ``run``, and inputs.npz."""
    import numpy as np

    root = tmp_path_factory.mktemp("trained")
    np.savez(root / "inputs.npz", X=np.random.default_rng(0).normal(size=(5, 32)))
    (root / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    assert main(["train", str(root / "s.yaml"), "-q", "--out", str(root / "run")]) == 0
    return root


def json_commands(root: Path) -> dict:
    """The arguments that make each command with --json print its JSON."""
    spec, run = root / "s.yaml", root / "run"
    return {"train": None,  # train has no --json
            "runs": [root], "eval": [run], "validate": [spec], "show": [spec],
            "predict": [run, "--data", root / "inputs.npz"],
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


# ---------------------------------------------------------------- 3. commands feeding commands, every loss
def loss_case(root: Path, name: str) -> tuple[Path, Path]:
    """A tiny spec ending in ``name``'s loss, and a .npz of 48 samples with labels the loss's own
    ``example_labels`` makes (one output, or 3 class scores where the loss needs several)."""
    import numpy as np

    from bpcli.nn.losses import LOSSES
    from bpcli.core.fields import Invalid

    loss = LOSSES[name]
    units = 1
    try:
        loss.check_output((48, 1))
    except Invalid:
        units = 3
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 32))
    y = loss.example_labels(rng, 48, (48, units))
    data = root / f"{name}.npz"
    np.savez(data, X=X) if y is None else np.savez(data, X=X, y=y)
    spec = root / f"{name}.yaml"
    spec.write_text(tiny_spec(name=name, loss=name, optimizer={"name": "sgd", "lr": 0.01},
                              layers=[{"conv1d": {"channels": 2, "kernel": 3, "pad": "same"}},
                                      "relu", {"dense": {"units": units}}],
                              training={"epochs": 1, "batch_size": 16}))
    return spec, data


def every_loss():
    from bpcli.nn.losses import LOSSES

    return list(LOSSES)


@pytest.mark.parametrize("loss", every_loss())
def test_preflight_hands_gradcheck_what_it_can_check_for_every_loss(loss, workdir, capsys):
    spec, data = loss_case(workdir, loss)
    _, err = ok(capsys, "train", spec, "--data", data, "--preflight", "-q", "--out", "pre")
    assert "preflight gradcheck passed" in err
    assert (workdir / "pre" / "model.npz").exists()


@pytest.mark.parametrize("loss", every_loss())
def test_resume_continues_training_for_every_loss(loss, workdir, capsys):
    spec, data = loss_case(workdir, loss)
    ok(capsys, "train", spec, "--data", data, "-q", "--out", "r")
    ok(capsys, "train", "--resume", "r", "--epochs", 2, "-q")
    summary = json.loads((workdir / "r" / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["stop_reason"] == "finished 2 epochs"


@pytest.mark.slow
@pytest.mark.parametrize("loss", every_loss())
def test_a_sweep_trains_every_variant_for_every_loss(loss, workdir, capsys):
    import pandas as pd

    spec, data = loss_case(workdir, loss)
    ok(capsys, "sweep", spec, "--data", data, "--grid", "optimizer.lr=0.01,0.02", "--workers", 1,
       "--out", "sw")
    table = pd.read_csv(workdir / "sw" / "sweep.csv")
    assert list(table["status"]) == ["ok", "ok"], table["message"].tolist()


# ---------------------------------------------------------------- 4. what training skips or stops is said
def test_skipped_batches_are_counted_in_every_row_the_summary_and_the_last_words(workdir, capsys):
    import pandas as pd

    # an lr of 1e30 sends the weights to inf after the first step: every later batch is non-finite
    (workdir / "nan.yaml").write_text(tiny_spec(optimizer={"name": "sgd", "lr": 1e30},
                                                training={"epochs": 30, "batch_size": 32}))
    out, err = ok(capsys, "train", "nan.yaml", "-q", "--on-nan", "skip", "--out", "r")
    metrics = pd.read_csv(workdir / "r" / "metrics.csv")
    summary = json.loads((workdir / "r" / "summary.json").read_text())
    batches_per_epoch = 5  # 150 training samples in batches of 32
    assert len(metrics) == 30 and metrics["skipped_batches"].notna().all()
    assert metrics["skipped_batches"].sum() == summary["skipped_batches"]
    assert summary["skipped_batches"] + summary["steps"] == 30 * batches_per_epoch
    assert summary["skipped_batches"] > 0.9 * 30 * batches_per_epoch
    assert f"{summary['skipped_batches']} of {30 * batches_per_epoch} batches skipped" in \
        summary["skipped_note"]
    assert err.splitlines()[-1] == f"bpcli: warning: {summary['skipped_note']}"


def test_resuming_with_too_few_epochs_says_where_the_run_is(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec())
    ok(capsys, "train", "s.yaml", "-q", "--out", "r")  # 3 epochs
    code, _, err = cli(capsys, "train", "--resume", "r", "--epochs", 2, "-q")
    assert code == 2
    assert "this run is at epoch 3, past the 2 epochs asked for; give --epochs N with N > 3" in err
    assert "finished its 2 epochs" not in err
    code, _, err = cli(capsys, "train", "--resume", "r", "-q")
    assert code == 2 and "already finished its 3 epochs; give --epochs N with N > 3" in err


# ---------------------------------------------------------------- 5. spec differences listed, --force says them
def test_a_resume_refusal_lists_each_differing_key_with_both_values(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capsys, "train", "s.yaml", "-q", "--out", "r", "--set", "preprocess=standardize")
    code, _, err = cli(capsys, "train", "s.yaml", "--resume", "r", "--epochs", 2, "-q")
    assert code == 2 and "in 1 key(s)" in err
    assert "preprocess: 'standardize' -> 'none'" in err and "--force" in err
    _, err = ok(capsys, "train", "s.yaml", "--resume", "r", "--epochs", 2, "-q", "--force")
    assert "--force: continuing r with" in err and "preprocess: 'standardize' -> 'none'" in err
    assert "preprocess: none" in (workdir / "r" / "spec.yaml").read_text()


# ---------------------------------------------------------------- 6. sweeps kept small
@pytest.mark.slow
def test_sweep_set_and_epochs_apply_to_every_variant_and_stay_out_of_the_names(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec())
    ok(capsys, "sweep", "s.yaml", "--grid", "optimizer.lr=0.01,0.02", "--set", "data.n=120",
       "--set", "optimizer.name=sgd", "--epochs", 1, "--workers", 1, "--out", "sw")
    names = sorted(p.name for p in (workdir / "sw").iterdir() if p.is_dir())
    assert names == ["000_lr=0.01", "001_lr=0.02"]
    for name in names:
        spec = yaml.safe_load((workdir / "sw" / name / "spec.yaml").read_text())
        assert spec["training"]["epochs"] == 1 and spec["data"]["n"] == 120
        assert spec["optimizer"]["name"] == "sgd"


def test_variant_names_use_three_significant_digits_yet_never_collide(workdir):
    from bpcli.spec.validate import load
    from bpcli.train import sweep as sw

    (workdir / "s.yaml").write_text(tiny_spec())
    s = load(workdir / "s.yaml")
    drawn = sw.plan(s, {}, sw.parse_ranges(["optimizer.lr=1e-4:1:log"]), 5, 1, 0)
    for v in drawn:
        text = v.name.split("lr=")[1]
        assert float(text) == pytest.approx(v.values["optimizer.lr"], rel=5e-3)
        assert len(text.replace("0.", "").replace("e-0", "").lstrip("0")) <= 3, v.name
    close = sw.plan(s, {"optimizer.lr": [0.0081449, 0.0081441, 0.3]}, {}, 0, 2, 0)
    labels = [v.name.split("_", 1)[1] for v in close]
    assert len(set(labels)) == len(labels) == 6
    assert labels[-2:] == ["lr=0.3_seed=0", "lr=0.3_seed=1"]


def test_a_misspelt_grid_or_range_path_gets_the_did_you_mean_of_set(workdir, capsys):
    (workdir / "s.yaml").write_text(tiny_spec())
    code, _, err = cli(capsys, "sweep", "s.yaml", "--grid", "optimizer.lrr=0.1,0.2")
    assert code == 2 and err.startswith("bpcli: error: --grid optimizer.lrr: unknown key 'lrr'")
    assert "(did you mean 'lr'?)" in err
    code, _, err = cli(capsys, "sweep", "s.yaml", "--random", 2, "--range", "trainng.epochs=1:3:int")
    assert code == 2 and "--range trainng.epochs" in err and "did you mean 'training'" in err
    assert not (workdir / "runs").exists()


@pytest.mark.slow
def test_ctrl_c_during_a_sweep_says_how_to_resume_it(workdir, capsys, monkeypatch):
    from bpcli.train import sweep as sw

    def interrupted(folder, **kwargs):
        raise KeyboardInterrupt  # as Ctrl-C arrives while the variants train

    (workdir / "s.yaml").write_text(tiny_spec())
    with monkeypatch.context() as patch:
        patch.setattr(sw, "run_sweep", interrupted)
        code, _, err = cli(capsys, "sweep", "s.yaml", "--grid", "optimizer.lr=0.01,0.02",
                           "--out", "sw")
    assert code == 130 and "bpcli sweep --resume sw" in err
    ok(capsys, "sweep", "--resume", "sw", "--workers", 1)  # and that command finishes it
    assert len(list((workdir / "sw").glob("*/summary.json"))) == 2


# ---------------------------------------------------------------- 7. 80-column terminals
def render(renderable, width=80) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, highlight=False, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def test_the_runs_table_keeps_headers_and_names_whole_at_80_columns(workdir, capsys):
    from bpcli.cli.render import runs_table
    from bpcli.train.runs import list_runs

    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    long_name = "pulse-detector-with-a-rather-long-name-seed-1234"
    ok(capsys, "train", "s.yaml", "-q", "--out", f"runs/{long_name}")
    text = render(runs_table(list_runs(workdir / "runs"), "runs"))
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    # whole, on one line: the least telling columns make room, and are named under the table
    assert any(line.startswith(long_name + " ") for line in text.splitlines()), text
    for word in ("run", "status", "epochs", "val", "accuracy", "loss"):
        assert word in text.split(), word
    assert "left out to fit 80 columns: steps" in text


def test_the_progress_line_keeps_the_epoch_count_and_eta_at_80_columns():
    from bpcli.cli.render import progress_bar, status_text, where_text
    from bpcli.train.loop import Position

    bar = progress_bar(__import__("rich.console").console.Console(width=80, file=open("/dev/null", "w")))
    task = bar.add_task("epoch", total=300, status="",
                        where=where_text(Position("epoch", 300, 65, 40, 40)))
    bar.update(task, completed=65, status=status_text(
        {"epoch": 65, "step": 2600, "train_loss": 0.1234567, "val_loss": 0.2345678,
         "val_accuracy": 0.9, "elapsed_s": 12.5}))
    text = render(bar.make_tasks_table(bar.tasks))
    line, = text.strip("\n").splitlines()
    assert len(line) <= 80 and line.split()[:2] == ["epoch", "65/300"]
    assert "ETA" in line and "loss 0.1235" in line


# ---------------------------------------------------------------- a network without parameters
def test_a_network_without_parameters_checks_its_layers_and_is_not_trained(workdir, capsys):
    """Found by the fuzz oracle: such a spec is valid (it computes: pooling or an activation
    alone), but training and gradcheck crashed on the empty parameter set. gradcheck now checks
    its layers' input gradients; train refuses at the spec's layers, before any folder."""
    spec = workdir / "np.yaml"
    spec.write_text("input: [2, 8]\nlayers: [{maxpool1d: {size: 2}}, relu]\nloss: sum_squares\n"
                    "data: {builtin: pulses, n: 40}\n")
    assert main(["validate", str(spec)]) == 0
    assert "no parameters, so bpcli train will refuse it" in capsys.readouterr().out
    assert main(["gradcheck", str(spec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["parameters"] == [] and report["directions"] == []
    assert [r["layer"] for r in report["layers"]] == ["layers[0] (maxpool1d)", "layers[1] (relu)"]
    assert main(["train", str(spec), "-q", "--out", "np"]) == 2
    err = capsys.readouterr().err
    assert "np.yaml:2:1: layers: the network (maxpool1d, relu) has no parameters" in err
    assert "Traceback" not in err and not (workdir / "np").exists()
