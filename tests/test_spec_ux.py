"""Writing specs: bpcli validate (every error at once), show, schema, init, --set, versions.

Every command runs in-process through :func:`bpcli.cli.main` in a fresh working directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import bpcli
from bpcli.cli import main
from bpcli.errors import InputError
from bpcli.spec.json_schema import spec_schema
from bpcli.nn.layers import LAYERS
from bpcli.train.optim import OPTIMIZERS
from bpcli.spec.validate import check, load
from bpcli.spec.templates import TEMPLATES

from helpers import cli

SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.yaml"))

# A valid spec (line numbers on the left matter to the tests below).
GOOD = """\
name: good
input: [16]
data: {builtin: pulses, n: 60, val_split: 0.25}
layers:
  - conv1d: {channels: 2, kernel: 3, pad: same}
  - relu
  - dense: {units: 1}
loss: logistic
optimizer: {name: adam, lr: 0.01}
training: {epochs: 1, batch_size: 15}
"""

# Six independent mistakes, one per line 3..9 (none on 6).
SIX_ERRORS = """\
name: bad
input: [16]
dtype: float16
layers:
  - conv1d: {channels: 2, kernal: 3}
  - relu
  - dense: {units: -1, bias: maybe}
loss: logistc
optimizer: {name: adam, lr: fast}
"""


@pytest.fixture(autouse=True)
def good_and_six_yaml(workdir):
    """Every test here starts in conftest's workdir, with GOOD and SIX_ERRORS in it as good.yaml
    and six.yaml."""
    (workdir / "good.yaml").write_text(GOOD)
    (workdir / "six.yaml").write_text(SIX_ERRORS)


# ---------------------------------------------------------------- bpcli validate
def test_validate_reports_every_error_at_once_each_on_its_line(capsys, workdir):
    code, out, err = cli(capsys, "validate", "six.yaml")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[-1] == "bpcli: 6 errors in six.yaml"
    errors = lines[:-1]
    assert all(line.startswith("bpcli: error: six.yaml:") for line in errors)
    expected = [
        ("six.yaml:3:1: dtype:", "float16", "did you mean 'float64'?"),
        ("six.yaml:5:27: layers[0].conv1d.kernal:", "unknown key 'kernal'",
         "did you mean 'kernel'?"),
        ("six.yaml:7:13: layers[2].dense.units:", "positive integer", "got -1"),
        ("six.yaml:7:24: layers[2].dense.bias:", "true or false", "'maybe'"),
        ("six.yaml:8:1: loss:", "unknown loss 'logistc'", "did you mean 'logistic'?"),
        ("six.yaml:9:25: optimizer.lr:", "number > 0", "'fast'"),
    ]
    assert len(errors) == len(expected)
    for line, fragments in zip(errors, expected):  # in file order
        for fragment in fragments:
            assert fragment in line, (fragment, line)


def test_a_misspelt_required_key_is_reported_once(capsys, workdir):
    # kernal for kernel: the suggestion says it all, no second "missing required key 'kernel'"
    _, _, err = cli(capsys, "validate", "six.yaml")
    assert "missing required key 'kernel'" not in err


def test_a_name_in_the_wrong_case_is_suggested_as_itself(capsys, workdir):
    # difflib alone ranks 'elu' nearer 'Relu' than 'relu'
    (workdir / "case.yaml").write_text("name: case\ninput: [4]\nlayers:\n  - dense: {units: 3}\n"
                                       "  - Relu\n  - dense: {units: 1}\nloss: MSE\n"
                                       "optimizer: {name: sgd, lr: 0.1}\n")
    code, _, err = cli(capsys, "validate", "case.yaml")
    assert code == 2
    assert "unknown layer 'Relu' (did you mean 'relu'?)" in err, err
    assert "(did you mean 'mse'?)" in err, err


def test_load_raises_every_problem_in_file_order_as_check_does():
    # train, gradcheck, ... load their spec: a user sees every problem at once, from the top
    spec = {"input": [4], "layers": ["rleu", {"dense": {"units": 0}}], "loss": "mse"}
    for read in (load, check):
        with pytest.raises(InputError) as every:
            read(spec)
        assert [e.path for e in every.value.errors] == ["layers[0]", "layers[1].dense.units"]
        assert str(every.value).splitlines() == [str(e) for e in every.value.errors]
    with pytest.raises(InputError) as one:  # one problem: the error itself, with its path
        load({"input": [4], "layers": ["rleu"], "loss": "mse"})
    assert one.value.errors == [one.value] and one.value.path == "layers[0]"


def test_train_prints_every_problem_of_its_spec_first_line_first(workdir, capsys):
    Path("bad.yaml").write_text("input: [4]\ndata: {builtin: linear, traget: y}\n"
                                "layers: [{dense: {units: 1}}]\nloss: mse\n"
                                "training: {epochs: 2, batchsize: 8}\n")
    assert main(["train", "bad.yaml"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("bpcli: error: bad.yaml:2:") and "data.traget" in err[0]
    assert err[1].startswith("bpcli: error: bad.yaml:5:") and "training.batchsize" in err[1]
    assert err[2] == "bpcli: 2 errors in bad.yaml"


def test_dependent_checks_are_skipped_after_an_error():
    # an unknown builtin does not also make "give exactly one of builtin or path" appear, and an
    # unknown optimizer leaves batch_size alone
    with pytest.raises(InputError) as e:
        check({"input": [4], "layers": [{"dense": {"units": 1}}], "loss": "mse",
               "data": {"builtin": "pulsess"}, "optimizer": "gdd",
               "training": {"batch_size": 8, "early_stopping": {"patience": 0}}})
    # a dict has no lines: the errors come in the order they were found
    assert [x.path for x in e.value.errors] == ["optimizer", "data.builtin",
                                                "training.early_stopping.patience"]


def test_duplicate_keys_are_all_reported(capsys, workdir):
    (workdir / "dup.yaml").write_text(GOOD + "seed: 1\nseed: 2\nloss: mse\n")
    code, _, err = cli(capsys, "validate", "dup.yaml")
    assert code == 2
    assert "dup.yaml:12:1: seed: key 'seed' appears twice" in err
    assert "dup.yaml:13:1: loss: key 'loss' appears twice" in err


def test_one_error_reads_as_any_other_error(capsys, workdir):
    (workdir / "one.yaml").write_text(GOOD.replace("units: 1", "units: 0"))
    code, out, err = cli(capsys, "validate", "one.yaml")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "bpcli: error: one.yaml:7:13: layers[2].dense.units: must be a positive integer, got 0"]


def test_shape_errors_are_positioned_once_the_spec_is_right(capsys, workdir):
    (workdir / "kernel.yaml").write_text(GOOD.replace("kernel: 3, pad: same", "kernel: 40"))
    code, _, err = cli(capsys, "validate", "kernel.yaml")
    assert code == 2
    assert err.startswith("bpcli: error: kernel.yaml:5:27: layers[0].conv1d.kernel: conv1d "
                          "cannot take its input of shape (16,): kernel 40")
    (workdir / "outputs.yaml").write_text(GOOD.replace("units: 1", "units: 3"))
    _, _, err = cli(capsys, "validate", "outputs.yaml")
    assert err.startswith("bpcli: error: outputs.yaml:8:1: loss: logistic needs a network output "
                          "of 1 value per sample")
    (workdir / "init.yaml").write_text(GOOD + "init: {layers: {1: xavier}}\n")
    _, _, err = cli(capsys, "validate", "init.yaml")
    assert "init.yaml:11:17: init.layers.1: layers[1] (relu) has no weights" in err


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_validate_every_shipped_spec_in_one_line(capsys, spec):
    code, out, err = cli(capsys, "validate", spec)
    model = bpcli.build(spec)
    assert code == 0 and err == ""
    assert out.strip().splitlines() == [
        f"{spec}: ok, {len(model.spec.data['layers'])} layers, {model.n_params():,} parameters, "
        f"output shape {tuple(model.output_shape[1:])}, {model.spec.data['loss']['name']} loss; "
        f"data: builtin {model.spec.data['data']['builtin']} (n={model.spec.data['data']['n']})"]


def test_validate_json(capsys, workdir):
    code, out, _ = cli(capsys, "validate", "good.yaml", "--json")
    assert code == 0
    assert json.loads(out) == {"ok": True, "file": "good.yaml", "name": "good", "layers": 3,
                               "parameters": 2 * 3 + 2 + 32 + 1, "output_shape": [1],
                               "loss": "logistic", "data": "builtin pulses (n=60)"}
    code, out, _ = cli(capsys, "validate", "six.yaml", "--json")
    report = json.loads(out)
    assert code == 2 and report["ok"] is False and len(report["errors"]) == 6
    assert report["errors"][0] == {"file": "six.yaml", "line": 3, "column": 1, "path": "dtype",
                                   "message": "must be one of float32, float64, got 'float16' "
                                              "(did you mean 'float64'?)"}


def test_validate_checks_that_the_data_file_is_there(capsys, workdir):
    (workdir / "file.yaml").write_text(GOOD.replace("builtin: pulses, n: 60", "path: d.npz"))
    code, _, err = cli(capsys, "validate", "file.yaml")
    assert code == 2
    assert err.startswith("bpcli: error: file.yaml:3:8: data.path: no such file: d.npz")
    rng = np.random.default_rng(0)  # data that fits: validate reads it and checks it too
    np.savez(workdir / "d.npz", X=rng.standard_normal((20, 16)), y=np.arange(20) % 2)
    code, out, _ = cli(capsys, "validate", "file.yaml")
    assert code == 0 and out.strip().endswith("logistic loss; data: d.npz")
    code, out, _ = cli(capsys, "validate", "file.yaml", "--set", "data=null")
    assert code == 0 and out.strip().endswith("; data: none, train it with --data FILE")
    # the validation file too: named when there, an error where it is not
    code, _, err = cli(capsys, "validate", "file.yaml", "--set", "data.val_path=v.npz")
    assert code == 2 and "data.val_path: no such file: v.npz" in err, err
    np.savez(workdir / "v.npz", X=rng.standard_normal((8, 16)), y=np.arange(8) % 2)
    code, out, _ = cli(capsys, "validate", "file.yaml", "--set", "data.val_path=v.npz")
    assert code == 0 and out.strip().endswith("; data: d.npz (validation: v.npz)"), out


def test_validate_a_file_that_is_not_yaml(capsys, workdir):
    (workdir / "broken.yaml").write_text("input: [16\n")
    code, _, err = cli(capsys, "validate", "broken.yaml")
    assert code == 2 and err.startswith("bpcli: error: broken.yaml:1:8: invalid YAML")   # its "["
    code, _, err = cli(capsys, "validate", "absent.yaml")
    assert code == 2 and "absent.yaml: spec file not found" in err


# ---------------------------------------------------------------- bpcli show
def test_show_fills_every_default_and_reads_back(capsys, workdir):
    code, out, _ = cli(capsys, "show", "good.yaml")
    assert code == 0
    assert out.startswith("# good.yaml as bpcli ")
    shown = yaml.safe_load(out)
    assert shown == load("good.yaml").data
    assert shown["optimizer"] == {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999,
                                  "eps": 1e-8, "weight_decay": 0.0, "grad_clip": None}
    assert shown["layers"][0]["conv1d"]["stride"] == 1 and shown["version"] == 1
    # the shown spec is itself a spec, which resolves to the same thing
    (workdir / "shown.yaml").write_text(out)
    assert load("shown.yaml").data == dict(shown, name="good")


def test_show_json_and_with_errors(capsys, workdir):
    code, out, _ = cli(capsys, "show", "good.yaml", "--json")
    assert code == 0 and json.loads(out)["training"]["batch_size"] == 15
    code, out, err = cli(capsys, "show", "six.yaml")
    assert code == 2 and out == "" and err.count("bpcli: error: ") == 6


# ---------------------------------------------------------------- bpcli schema
def test_schema_defaults_and_descriptions_come_from_the_tables():
    schema = spec_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"input", "layers", "loss"}
    conv = next(o for o in schema["$defs"]["layer"]["oneOf"]
                if o.get("required") == ["conv1d"])["properties"]["conv1d"]
    stride = LAYERS["conv1d"].params[2]
    assert conv["properties"]["stride"]["default"] == stride.default == 1
    assert conv["properties"]["stride"]["description"] == stride.doc
    assert conv["required"] == ["channels", "kernel"]
    adam = next(o for o in schema["$defs"]["optimizer"]["oneOf"]
                if o.get("properties", {}).get("name", {}).get("const") == "adam")
    assert adam["properties"]["lr"]["default"] == 0.001
    assert set(adam["properties"]) == {"name", *(p.name for p in OPTIMIZERS["adam"].params)}


def test_schema_out_file(capsys, workdir):
    code, out, _ = cli(capsys, "schema", "--out", "s.json")
    assert code == 0 and "s.json" in out
    assert json.loads((workdir / "s.json").read_text()) == spec_schema()
    code, out, _ = cli(capsys, "schema")
    assert json.loads(out) == spec_schema()


def _as_json(data):
    return json.loads(json.dumps(data))  # what an editor sees: keys are strings


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_and_its_resolved_form_fits_the_schema(validator, spec):
    assert list(validator.iter_errors(_as_json(yaml.safe_load(spec.read_text())))) == []
    assert list(validator.iter_errors(_as_json(load(spec).data))) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_fits_the_schema(validator, template, workdir):
    assert main(["init", "--template", template, "--out", "t.yaml"]) == 0
    written = yaml.safe_load((workdir / "t.yaml").read_text())
    assert list(validator.iter_errors(_as_json(written))) == []


WRONG = {
    "unknown top key": ("traning: {epochs: 3}", None),
    "unknown layer": ("layers: [rleu]", None),
    "misspelt layer field": ("layers: [{conv1d: {channels: 2, kernal: 3}}]", None),
    "missing required field": ("layers: [{dense: {}}]", None),
    "bare name that needs fields": ("layers: [conv1d]", None),
    "negative units": ("layers: [{dense: {units: -1}}]", None),
    "two keys in a layer": ("layers: [{dense: {units: 1}, relu: null}]", None),
    "unknown loss": ("loss: logistc", None),
    "unknown optimizer field": ("optimizer: {name: adam, beta_1: 0.8}", None),
    "lr not a number": ("optimizer: {name: sgd, lr: fast}", None),
    "schedule without its required field": ("schedule: step", None),
    "fraction out of range": ("data: {builtin: pulses, val_split: 1.5}", None),
    "version 2": ("version: 2", None),
    "input of four axes": ("input: [1, 2, 3, 4]", None),
    "init override not an initializer": ("init: {layers: {0: glorot}}", None),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_wrong_specs_do_not_fit_the_schema(validator, case):
    base = yaml.safe_load(GOOD)
    base.update(yaml.safe_load(WRONG[case][0]))
    assert list(validator.iter_errors(_as_json(base))), case
    with pytest.raises(InputError):  # and bpcli agrees
        bpcli.build(base)


# ---------------------------------------------------------------- bpcli init
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_validates_and_builds(capsys, workdir, template):
    code, out, _ = cli(capsys, "init", "--template", template)
    assert code == 0 and f"wrote {template}.yaml" in out
    text = (workdir / f"{template}.yaml").read_text()
    assert text.count("\n#") >= 3  # commented
    code, out, _ = cli(capsys, "validate", f"{template}.yaml")
    assert code == 0 and "ok" in out
    assert bpcli.build(workdir / f"{template}.yaml").n_params() > 0


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_trains(capsys, workdir, template):
    assert main(["init", "--template", template, "--out", "t.yaml"]) == 0
    code, _, err = cli(capsys, "train", "t.yaml", "--epochs", 1, "--set", "data.n=80", "-q",
                       "--out", "run")
    assert code == 0, err
    assert (workdir / "run" / "model.npz").exists()


def test_cnn2d_is_a_2d_network_on_images(workdir):
    assert main(["init", "--template", "cnn2d"]) == 0
    spec = load("cnn2d.yaml").data
    assert spec["input"] == [1, 28, 28] and spec["data"]["builtin"] == "shapes"
    assert [layer.kind for layer in load("cnn2d.yaml").network][:3] == ["conv2d", "relu",
                                                                         "maxpool2d"]
    assert spec["layers"][-1]["dense"]["units"] == spec["data"]["classes"]


def test_init_never_overwrites(capsys, workdir):
    (workdir / "mine.yaml").write_text("keep me\n")
    code, out, err = cli(capsys, "init", "--out", "mine.yaml")
    assert code == 2 and out == ""
    assert err.startswith("bpcli: error: mine.yaml: already exists")
    assert (workdir / "mine.yaml").read_text() == "keep me\n"


def test_init_unknown_template(capsys, workdir):
    code, _, err = cli(capsys, "init", "--template", "cnn3d")
    assert code == 2 and err.startswith("bpcli: error: --template: must be one of lecture")
    assert "got 'cnn3d' (did you mean 'cnn2d'?)" in err
    assert not list(workdir.glob("cnn3d*"))


# ---------------------------------------------------------------- --set
def test_set_is_trained_with_and_recorded_in_the_run(capsys, workdir):
    code, _, err = cli(capsys, "train", "good.yaml", "-q", "--out", "run",
                       "--set", "optimizer.lr=0.02", "--set", "layers[0].conv1d.channels=3",
                       "--set", "training.shuffle=false", "--set", "loss.name=hinge")
    assert code == 0, err
    recorded = load(workdir / "run" / "spec.yaml").data
    assert recorded["optimizer"]["lr"] == 0.02
    assert recorded["layers"][0]["conv1d"]["channels"] == 3
    assert recorded["training"]["shuffle"] is False and recorded["loss"] == {"name": "hinge"}
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert "--set optimizer.lr=0.02" in summary["command"]
    assert summary["n_params"] == 3 * 3 + 3 + 3 * 16 + 1


def test_set_opens_bare_names_and_switches_entries():
    spec = load({"input": [4], "layers": ["relu", {"dense": {"units": 1}}], "loss": "mse",
                 "optimizer": {"name": "adam", "lr": 0.5}})
    from bpcli.spec.validate import apply_sets

    changed = apply_sets(spec, ["optimizer.name=sgd", "optimizer.momentum=0.9",
                                "layers[0].relu=null", "schedule.name=step",
                                "schedule.every=2", "init.layers.1=xavier", "data.builtin=linear",
                                "input=[2, 4]"])
    assert changed.data["optimizer"]["lr"] == 0.5  # kept: sgd has an lr too
    assert changed.data["optimizer"]["momentum"] == 0.9
    assert changed.data["schedule"]["every"] == 2
    assert changed.data["init"]["layers"][1]["name"] == "xavier"
    assert changed.data["data"]["builtin"] == "linear" and changed.data["input"] == [2, 4]
    assert spec.data["optimizer"]["name"] == "adam"  # the original is left alone


SET_ERRORS = {
    "unknown top key": ("trainig.epochs=3", ["--set trainig.epochs=3: unknown key 'trainig' in "
                                             "the spec (did you mean 'training'?)"]),
    "unknown field": ("optimizer.lrr=0.1", ["unknown key 'lrr' in optimizer",
                                            "did you mean 'lr'?", "known keys: name, lr"]),
    "unknown layer field": ("layers[0].conv1d.kernal=5", ["in layers[0].conv1d",
                                                          "did you mean 'kernel'?"]),
    "wrong layer": ("layers[0].dense.units=5", ["layers[0] is a conv1d layer, not dense"]),
    "index out of range": ("layers[7].relu=null", ["layers is a list; its indices are 0..2"]),
    "into a number": ("seed.x=1", ["seed is 0, which has no key 'x'"]),
    "no equals sign": ("optimizer.lr", ["--set optimizer.lr: is not KEY.PATH=VALUE"]),
    "bad path": ("layers[a].x=1", ["'layers[a].x' is not a key path"]),
    "bad YAML": ("optimizer.lr=[0.1", ["--set optimizer.lr=[0.1: the value is not YAML"]),
    "bad value": ("optimizer.lr=-1", ["good.yaml: optimizer.lr: must be a number > 0, got -1 "
                                      "(from --set optimizer.lr=-1)"]),
    "unknown name": ("loss.name=hinje", ["loss: unknown loss 'hinje' (did you mean 'hinge'?)",
                                         "(from --set loss.name=hinje)"]),
}


@pytest.mark.parametrize("case", SET_ERRORS, ids=list(SET_ERRORS))
@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_set_refuses_what_the_spec_cannot_have(capsys, workdir, command, case):
    item, fragments = SET_ERRORS[case]
    code, out, err = cli(capsys, command, "good.yaml", "--set", item)
    assert code == 2 and out == "", err
    assert err.startswith("bpcli: error: ") and len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err
    assert not (workdir / "runs").exists()


def test_gradcheck_with_set(capsys, workdir):
    code, out, _ = cli(capsys, "gradcheck", "good.yaml", "--json", "--set", "loss=mse",
                       "--set", "layers[0].conv1d.impl=toeplitz")
    assert code == 0 and json.loads(out)["passed"]


# ---------------------------------------------------------------- version
def test_a_spec_without_version_is_version_1(workdir):
    assert "version" not in GOOD
    assert load("good.yaml").data["version"] == 1
    (workdir / "v1.yaml").write_text("version: 1\n" + GOOD)
    assert load("v1.yaml").data == load("good.yaml").data | {"name": "good"}


def test_another_version_is_refused(capsys, workdir):
    (workdir / "v2.yaml").write_text("version: 2\n" + GOOD)
    code, _, err = cli(capsys, "validate", "v2.yaml")
    assert code == 2 and "v2.yaml:1:1: version: this bpcli reads spec version 1, got 2" in err
