"""init: each initializer's distribution (std, bounds) as torch.nn.init defines it, fans as torch
computes them, zero biases, per-layer overrides, and the same weights for the same seed.

And ``bpcli init``'s templates for a newcomer's own data: the classifier template trains as
written and, on a CSV of class names, after only the edits its comments name; the cnn2d
template's comments name both ways in for pictures. (Every template validating, building and
training is in test_spec_ux.py.)"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

import bpcli
from bpcli.nn.initializers import INITIALIZERS, fans
from bpcli.spec.templates import render

from helpers import cli, ok

# 64·32·5 = 10240 conv weights and 10·2048 dense weights: sample moments within a few percent
LAYERS = [{"conv1d": {"channels": 64, "kernel": 5, "pad": "same"}}, "relu", {"dense": {"units": 10}}]
CONV_FANS = (32 * 5, 64 * 5)     # weight (64, 32, 5): fan_in = in·k, fan_out = out·k
DENSE_FANS = (64 * 32, 10)       # weight (10, 2048)


def build(init=None, seed=0, dtype="float64"):
    spec = {"name": "i", "input": [32, 32], "dtype": dtype, "seed": seed, "layers": LAYERS,
            "loss": "softmax_cross_entropy"}
    if init is not None:
        spec["init"] = init
    return bpcli.build(spec)


def weights(model):
    return model.params["layers.0.weight"], model.params["layers.2.weight"]


def test_fans_are_torchs():
    torch = pytest.importorskip("torch")
    for shape in [(64, 32, 5), (10, 2048), (3, 1, 7), (8, 3, 3, 5)]:
        assert fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_default_is_he_normal_std_sqrt_2_over_fan_in():
    for w, (fan_in, _) in zip(weights(build()), (CONV_FANS, DENSE_FANS)):
        assert w.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.03)
        assert abs(w.mean()) < 0.05 * np.sqrt(2 / fan_in)


def test_he_default_draws_exactly_as_before_in_parameter_order():
    # one generator seeded by the spec's seed, standard normals scaled by sqrt(2 / fan_in)
    rng = np.random.default_rng(3)
    conv = rng.standard_normal((64, 32, 5)) * np.sqrt(2 / CONV_FANS[0])
    dense = rng.standard_normal((10, 2048)) * np.sqrt(2 / DENSE_FANS[0])
    got = weights(build(seed=3))
    np.testing.assert_array_equal(got[0], conv)
    np.testing.assert_array_equal(got[1], dense)


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_is_glorot_uniform_on_plus_minus_gain_sqrt_6_over_fan_sum(gain):
    torch = pytest.importorskip("torch")
    for w, (fan_in, fan_out) in zip(weights(build({"name": "xavier", "gain": gain})),
                                    (CONV_FANS, DENSE_FANS)):
        a = gain * np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
        assert w.std() == pytest.approx(a / np.sqrt(3), rel=0.03)  # uniform(-a, a): std a/sqrt 3
        ref = torch.nn.init.xavier_uniform_(torch.empty(w.shape, dtype=torch.float64), gain=gain)
        assert float(ref.abs().max()) <= a and w.std() == pytest.approx(float(ref.std()), rel=0.05)


def test_normal_has_the_given_mean_and_std():
    for w in weights(build({"name": "normal", "mean": 0.5, "std": 0.02})):
        assert w.mean() == pytest.approx(0.5, abs=0.002)
        assert w.std() == pytest.approx(0.02, rel=0.03)
    assert build("normal").spec.data["init"] == {"name": "normal", "mean": 0.0, "std": 1.0,
                                                 "layers": {}}


@pytest.mark.parametrize("cfg, low, high", [
    ({"name": "uniform", "low": -0.2, "high": 0.6}, -0.2, 0.6),
    ({"name": "uniform", "a": 0.3}, -0.3, 0.3),
    ("uniform", 0.0, 1.0),                                   # torch.nn.init.uniform_'s defaults
])
def test_uniform_stays_within_its_bounds_and_fills_them(cfg, low, high):
    for w in weights(build(cfg)):
        assert low <= w.min() < low + 0.01 * (high - low)
        assert high - 0.01 * (high - low) < w.max() < high
        assert w.std() == pytest.approx((high - low) / np.sqrt(12), rel=0.03)


def test_zeros_and_biases_are_zero():
    model = build("zeros")
    assert not any(w.any() for w in model.params.values())
    for name in ("he", "xavier", "normal", "uniform"):
        assert not build(name).params["layers.0.bias"].any()


def test_per_layer_override_replaces_the_default_for_that_layer_only():
    model = build({"name": "xavier", "layers": {2: {"name": "normal", "std": 0.01}}})
    conv, dense = weights(model)
    assert np.abs(conv).max() <= np.sqrt(6 / sum(CONV_FANS))
    assert dense.std() == pytest.approx(0.01, rel=0.03)
    # {layers: ...} alone keeps he for the rest
    conv, dense = weights(build({"layers": {0: "zeros"}}))
    assert not conv.any() and dense.std() == pytest.approx(np.sqrt(2 / DENSE_FANS[0]), rel=0.03)


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_same_seed_same_weights_other_seed_other_weights(name):
    a, b, c = build(name, seed=4), build(name, seed=4), build(name, seed=5)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    if name != "zeros":
        assert not np.array_equal(a.params["layers.0.weight"], c.params["layers.0.weight"])


def test_weights_are_cast_to_the_spec_dtype():
    assert all(w.dtype == np.float32 for w in build("xavier", dtype="float32").params.values())


@pytest.mark.parametrize("init, words", [
    ("glorot", ["init", "unknown initializer 'glorot'"]),
    ({"name": "uniform", "a": 0.1, "low": -1.0}, ["init.a", "not both"]),
    ({"name": "uniform", "low": 1.0, "high": 0.5}, ["init.low", "below high"]),
    ({"name": "normal", "std": 0}, ["init.std", "number > 0"]),
    ({"name": "he", "layers": {1: "xavier"}}, ["init.layers.1", "layers[1] (relu) has no weights"]),
    ({"name": "he", "layers": {7: "xavier"}}, ["init.layers.7", "index of a layer, 0..2"]),
    ({"name": "he", "layers": {0: "xavierr"}}, ["init.layers.0", "did you mean 'xavier'"]),
    ({"name": "he", "layers": [0]}, ["init.layers", "mapping of layer index"]),
])
def test_bad_init_is_an_error_naming_the_field(init, words):
    with pytest.raises(bpcli.InputError) as e:
        build(init)
    for w in words:
        assert w in str(e.value)


def test_init_errors_point_at_the_line_in_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("input: [4]\nlayers: [dense: {units: 2}, relu]\nloss: mse\n"
                    "init:\n  name: he\n  layers:\n    1: xavier\n")
    with pytest.raises(bpcli.InputError) as e:
        bpcli.build(path)
    assert "s.yaml:7:" in str(e.value) and "init.layers.1" in str(e.value)


# ---------------------------------------------------------------- bpcli init, on your own data
def iris_like_csv(path, rows=90):
    """4 feature columns on scales 1 to 100 and a label column of 3 class names, the classes 3
    standard deviations apart."""
    rng = np.random.default_rng(0)
    names = ["setosa", "versicolor", "virginica"]
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for i in range(rows):
        k = i % 3
        x = rng.normal(3.0 * k, 1.0, 4) * [1, 10, 100, 0.1]
        lines.append(",".join(f"{v:.4f}" for v in x) + f",{names[k]}")
    path.write_text("\n".join(lines) + "\n")


def test_classifier_template_is_an_mlp_on_a_stand_in_table_and_trains_as_written(capsys, workdir):
    ok(capsys, "init", "--template", "classifier")
    spec = yaml.safe_load((workdir / "classifier.yaml").read_text())
    assert spec["data"]["builtin"] == "pulses" and spec["input"] == [16]  # 16 "feature columns"
    assert spec["loss"] == "softmax_cross_entropy"
    assert [next(iter(layer)) if isinstance(layer, dict) else layer
            for layer in spec["layers"]] == ["dense", "relu", "dense"]
    assert spec["layers"][-1]["dense"]["units"] == 2  # pulses' classes: 0 and 1
    out, _ = ok(capsys, "validate", "classifier.yaml")
    assert "ok" in out
    out, _ = ok(capsys, "train", "classifier.yaml", "--epochs", 2, "-q", "--out", "run")
    assert "finished 2 epochs" in out and (workdir / "run" / "model.npz").exists()


def test_classifier_template_marks_exactly_the_input_and_the_last_layers_units_to_change():
    lines = render("classifier", "c.yaml").splitlines()
    marked = [line.split("#")[0].strip() for line in lines
              if "CHANGE" in line and not line.startswith("#")]
    assert marked == ["input: [16]", "- dense: {units: 2}"]
    assert marked[1] == [line.split("#")[0].strip() for line in lines if "dense:" in line][-1]


def test_classifier_template_trains_on_a_csv_of_class_names_after_the_edits_its_comments_name(
        capsys, workdir):
    """A CSV of 4 feature columns and a label column of 3 names: the --set's the template's comment
    gives for 4 columns and 3 classes, --data and --target, and nothing else."""
    iris_like_csv(workdir / "flowers.csv")
    text = render("classifier", "classifier.yaml")
    sets = re.findall(r"--set '([^']+)'", text)
    assert sets == ["input=[4]", "layers[2].dense.units=3"]
    assert "--data FILE.csv --target COLUMN" in text
    ok(capsys, "init", "--template", "classifier")
    _, err = ok(capsys, "train", "classifier.yaml", "--data", "flowers.csv", "--target", "species",
                *[a for s in sets for a in ("--set", s)], "-q", "--out", "run")
    assert "72 training and 18 validation samples from flowers.csv" in err
    out, _ = ok(capsys, "eval", "run", "--json")
    result = json.loads(out)
    assert result["classes"] == ["setosa", "versicolor", "virginica"]  # read from the label column
    assert result["n"] == 18 and result["accuracy"] >= 0.9


def test_classifier_template_as_written_names_the_edits_a_csv_needs(capsys, workdir):
    """Forgetting an edit is refused with the --set that makes it."""
    iris_like_csv(workdir / "flowers.csv")
    ok(capsys, "init", "--template", "classifier")
    code, _, err = cli(capsys, "train", "classifier.yaml", "--data", "flowers.csv", "--target",
                       "species", "-q", "--out", "run")
    assert code == 2 and "--set 'input=[4]'" in err
    code, _, err = cli(capsys, "train", "classifier.yaml", "--data", "flowers.csv", "--target",
                       "species", "--set", "input=[4]", "-q", "--out", "run")
    assert code == 2 and "3 classes (setosa, versicolor, virginica)" in err
    assert "--set 'layers[2].dense.units=3'" in err


def test_cnn2d_template_names_a_picture_folder_and_an_npz_and_its_resize_hint_works(capsys,
                                                                                     workdir):
    """DIR/cat and DIR/dog of 32x32 pictures: the comment's --data DIR, its units and its
    data.resize train the template as written otherwise."""
    from PIL import Image

    text = render("cnn2d", "cnn2d.yaml")
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for words in ("--data DIR", "one subfolder of pictures per class", "data.resize: true",
                  "--data images.npz", "(N, 1, 28, 28)"):
        assert words in comments, words
    units = re.search(r"bpcli train cnn2d.yaml --data DIR --set '([^']+)'", comments)[1]
    assert units == "layers[6].dense.units=2"  # 2 classes: cat and dog
    rng = np.random.default_rng(0)
    for kind in ("cat", "dog"):
        (workdir / "pics" / kind).mkdir(parents=True)
        for i in range(20):
            Image.fromarray((rng.random((32, 32)) * 255).astype(np.uint8)).save(
                workdir / "pics" / kind / f"{i}.png")
    ok(capsys, "init", "--template", "cnn2d")
    code, _, err = cli(capsys, "train", "cnn2d.yaml", "--data", "pics", "--out", "run", "-q",
                       "--set", units)
    assert code == 2 and "data.resize: true" in err
    _, err = ok(capsys, "train", "cnn2d.yaml", "--data", "pics", "--out", "run", "-q", "--epochs",
                1, "--set", units, "--set", "data.resize=true")
    assert "32 training and 8 validation samples from pics" in err
