"""init: each initializer's distribution (std, bounds) as torch.nn.init defines it, fans as torch
computes them, zero biases, per-layer overrides, and the same weights for the same seed.
(``bpcli init``'s templates are tested in test_templates.py and test_spec_ux.py.)"""

from __future__ import annotations


import numpy as np
import pytest

import bpcli
from bpcli.nn.initializers import INITIALIZERS, fans


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
