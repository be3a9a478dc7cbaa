"""The data side of training: preprocessing from the training split, augmentation of training
batches only, and the built-in shapes images."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bpcli
from bpcli.train import loop as train_mod
from bpcli.train.augment import AUGMENT, augment, augment_pairs
from bpcli.cli import main
from bpcli.train.data import SHAPES, shapes
from bpcli.errors import InputError
from bpcli.nn.preprocess import statistics
from bpcli.train.run import execute, prepare
from bpcli.core.fields import resolve


def spec(input_shape, layers, loss="mse", **top):
    return {"name": "t", "input": list(input_shape), "dtype": "float64", "seed": 0,
            "layers": layers, "loss": loss, **top}


# ---------------------------------------------------------------- preprocess
@pytest.mark.parametrize("sample,axes,shape", [
    ([5], (0,), (5,)),                    # a feature each
    ([3, 7], (0, 2), (3, 1)),             # a channel each, over its positions
    ([2, 4, 5], (0, 2, 3), (2, 1, 1)),
])
def test_statistics_are_per_feature_or_per_channel(sample, axes, shape):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, *sample)) * rng.uniform(0.5, 3, sample)
    X += rng.uniform(-2, 2, sample)
    shift, scale = statistics("standardize", X, chunk=7)  # chunked as for a memory-mapped file
    np.testing.assert_allclose(shift, X.mean(axis=axes).reshape(shape), rtol=1e-12)
    np.testing.assert_allclose(scale, X.std(axis=axes).reshape(shape), rtol=1e-12)
    shift, scale = statistics("minmax", X, chunk=7)
    np.testing.assert_array_equal(shift, X.min(axis=axes).reshape(shape))
    np.testing.assert_allclose(scale, (X.max(axis=axes) - X.min(axis=axes)).reshape(shape))


def test_a_constant_group_is_only_shifted():
    X = np.ones((10, 3))
    X[:, 1] = np.arange(10)
    for name in ("standardize", "minmax"):
        shift, scale = statistics(name, X)
        assert scale[0] == 1.0 and scale[2] == 1.0 and scale[1] > 1


def test_the_graph_applies_the_statistics_to_every_input():
    # forward with preprocess = forward without it on (X - shift) / scale, the same weights
    layers = [{"conv1d": {"channels": 2, "kernel": 3}}, {"dense": {"units": 1}}]
    with_pre = bpcli.build(spec([3, 8], layers, preprocess="standardize"))
    plain = bpcli.build(spec([3, 8], layers))
    for k, w in plain.params.items():
        w[...] = with_pre.params[k]
    rng = np.random.default_rng(1)
    shift, scale = rng.standard_normal((3, 1)), rng.uniform(0.5, 2, (3, 1))
    with_pre.buffers["preprocess.shift"][...] = shift
    with_pre.buffers["preprocess.scale"][...] = scale
    X = rng.standard_normal((4, 3, 8))
    np.testing.assert_allclose(with_pre.forward(X), plain.forward((X - shift) / scale), rtol=1e-13)
    assert set(with_pre.buffers) == {"preprocess.shift", "preprocess.scale"}
    assert "preprocess.shift" not in with_pre.params   # not trained


@pytest.mark.parametrize("name", ["standardize", "minmax"])
def test_statistics_come_from_the_training_split_and_are_saved(tmp_path, name):
    s = spec([6], [{"dense": {"units": 1}}], preprocess=name,
             data={"builtin": "linear", "n": 200, "val_split": 0.3},
             optimizer={"name": "adam", "lr": 0.01}, training={"epochs": 3, "batch_size": 20})
    p = prepare(bpcli.load_spec(s))
    execute(p, tmp_path / "run")
    shift, scale = statistics(name, p.train[0])
    np.testing.assert_allclose(p.model.buffers["preprocess.shift"], shift, rtol=1e-12)
    np.testing.assert_allclose(p.model.buffers["preprocess.scale"], scale, rtol=1e-12)
    everything = np.concatenate([p.train[0], p.val[0]])
    assert not np.allclose(statistics(name, everything)[0], shift)   # validation left out
    with np.load(tmp_path / "run" / "model.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["preprocess.shift"], p.model.buffers["preprocess.shift"])
        np.testing.assert_array_equal(f["preprocess.scale"], p.model.buffers["preprocess.scale"])


def test_bpcli_eval_reports_the_validation_loss_training_saw(tmp_path, capsys):
    s = spec([6], [{"dense": {"units": 1}}], preprocess="standardize",
             data={"builtin": "linear", "n": 200, "val_split": 0.3},
             optimizer={"name": "adam", "lr": 0.01}, training={"epochs": 3, "batch_size": 20})
    summary = execute(prepare(bpcli.load_spec(s)), tmp_path / "run")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["loss"] == pytest.approx(summary["final"]["val_loss"], rel=1e-12)


def test_preprocess_must_be_a_known_name():
    with pytest.raises(InputError, match="preprocess.*standardize"):
        bpcli.load_spec(spec([3], ["relu"], preprocess="normalize"))


# ---------------------------------------------------------------- augment, one change at a time
def cfg(**fields):
    return resolve(AUGMENT, fields, "training.augment", lambda path, msg: pytest.fail(msg))


def signals(n=40, shape=(2, 9)):
    return np.random.default_rng(5).standard_normal((n, *shape))


def images(n=40, shape=(1, 5, 5)):
    return np.random.default_rng(6).standard_normal((n, *shape))


def test_flip_reverses_some_samples_along_the_last_axis():
    X = signals()
    out = augment(X, cfg(flip=True), np.random.default_rng(0))
    flipped = [np.array_equal(o, x[..., ::-1]) for o, x in zip(out, X)]
    kept = [np.array_equal(o, x) for o, x in zip(out, X)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 30
    Y = images()  # 2-D: a horizontal flip, the width axis
    out = augment(Y, cfg(flip=True), np.random.default_rng(0))
    assert all(np.array_equal(o, y) or np.array_equal(o, y[:, :, ::-1]) for o, y in zip(out, Y))


def test_rotate90_turns_each_image_by_a_multiple_of_90_degrees():
    X = images()
    out = augment(X, cfg(rotate90=True), np.random.default_rng(0))
    turns = [next(k for k in range(4) if np.array_equal(o, np.rot90(x, k, axes=(1, 2))))
             for o, x in zip(out, X)]
    assert set(turns) == {0, 1, 2, 3}


@pytest.mark.parametrize("fill", ["zero", "wrap"])
def test_shift_moves_each_sample_by_at_most_shift_positions(fill):
    X = signals()

    def moved(x, k):  # y[j] = x[j - k]: np.roll, with zeros where the roll wrapped around
        y = np.roll(x, k, axis=-1)
        if fill == "zero" and k > 0:
            y[..., :k] = 0
        if fill == "zero" and k < 0:
            y[..., k:] = 0
        return y
    out = augment(X, cfg(shift=3, shift_fill=fill), np.random.default_rng(0))
    found = [[k for k in range(-3, 4) if np.array_equal(o, moved(x, k))] for o, x in zip(out, X)]
    assert all(found) and {f[0] for f in found} == set(range(-3, 4))


def test_shift_moves_images_along_height_and_width_independently():
    X = images(60, (1, 6, 6))
    out = augment(X, cfg(shift=1, shift_fill="wrap"), np.random.default_rng(0))
    offsets = [next((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)
                    if np.array_equal(o, np.roll(x, (a, b), axis=(1, 2)))) for o, x in zip(out, X)]
    assert len(set(offsets)) == 9


def test_scale_multiplies_each_sample_by_one_factor_in_the_range():
    X = signals()
    out = augment(X, cfg(scale=[0.5, 2.0]), np.random.default_rng(0))
    factors = (out / X).reshape(len(X), -1)
    np.testing.assert_allclose(factors, factors[:, :1] * np.ones_like(factors), rtol=1e-12)
    assert factors.min() >= 0.5 and factors.max() <= 2.0 and factors[:, 0].std() > 0.2


def test_noise_adds_gaussian_noise_of_the_given_std():
    X = signals(500)
    out = augment(X, cfg(noise={"std": 0.3}), np.random.default_rng(0))
    assert abs((out - X).std() - 0.3) < 0.01 and abs((out - X).mean()) < 0.01


def test_augment_copies_and_repeats_with_the_generator_state():
    X = images()
    before = X.copy()
    everything = cfg(flip=True, rotate90=True, shift=2, scale=[0.9, 1.1], noise={"std": 0.1})
    a = augment(X, everything, np.random.default_rng(7))
    b = augment(X, everything, np.random.default_rng(7))
    assert np.array_equal(X, before) and np.array_equal(a, b) and not np.array_equal(a, X)
    assert a.dtype == X.dtype
    assert augment(X.astype(np.float32), everything, np.random.default_rng(7)).dtype == np.float32


@pytest.mark.parametrize("input_shape,fields,key,words", [
    ([16], {"rotate90": True}, "rotate90", "needs images"),
    ([1, 4, 6], {"rotate90": True}, "rotate90", "square"),
    ([2, 8], {"shift": 8}, "shift", "smaller than"),
    ([1, 8, 4], {"shift": 4}, "shift", "smaller than"),
    ([8], {"scale": [2, 1]}, "scale", "0 < low <= high"),
    ([8], {"noise": 0.1}, "noise", "{std: S}"),
    ([8], {"shift_fill": "reflect"}, "shift_fill", "zero, wrap"),
    ([8], {"mixup": True}, "mixup", "unknown key"),
])
def test_augment_errors_name_the_field(input_shape, fields, key, words):
    layers = [{"dense": {"units": 1}}]
    with pytest.raises(InputError, match=rf"training\.augment\.{key}") as e:
        bpcli.build(spec(input_shape, layers, training={"augment": fields}))
    assert words in str(e.value)


def test_augmentation_changes_training_batches_only(tmp_path, monkeypatch):
    # every training step's batch goes through augment, nothing else does; validation and
    # bpcli eval score the data as it is
    calls = []

    def spy(X, y, c, rng, targets=None):
        calls.append(X.shape[0])
        return augment_pairs(X, y, c, rng, targets)
    monkeypatch.setattr(train_mod, "augment_pairs", spy)
    s = spec([16], [{"conv1d": {"channels": 2, "kernel": 3}}, {"dense": {"units": 1}}],
             loss="logistic", data={"builtin": "pulses", "n": 100, "val_split": 0.2},
             training={"epochs": 2, "batch_size": 16,
                       "augment": {"noise": {"std": 5.0}, "flip": True, "shift": 3}})
    p = prepare(bpcli.load_spec(s))
    train_before = p.train[0].copy()
    summary = execute(p, tmp_path / "run")
    assert calls == [16] * 10                       # 80 training samples, 5 steps an epoch
    assert np.array_equal(p.train[0], train_before)
    assert p.model.step(*p.val, grad=False).loss == pytest.approx(summary["final"]["val_loss"], rel=1e-12)
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0
    assert len(calls) == 10


# ---------------------------------------------------------------- builtin shapes
def test_shapes_draws_labelled_images_from_the_seed():
    d = shapes(300, [1, 28, 28], seed=4, classes=4)
    assert d.X.shape == (300, 1, 28, 28) and d.y.shape == (300,)
    assert d.y.dtype.kind == "i" and set(d.y) == {0, 1, 2, 3}
    assert np.array_equal(d.X, shapes(300, [1, 28, 28], seed=4, classes=4).X)
    assert not np.array_equal(d.X, shapes(300, [1, 28, 28], seed=5, classes=4).X)
    two = shapes(10, [3, 12, 12], seed=0)
    assert np.array_equal(two.X[:, 0], two.X[:, 2])   # every channel the same picture


def test_each_shape_is_the_region_its_distance_function_says():
    # d < 0 inside: the areas of a disc, a square, a cross, an equilateral triangle and a ring
    r = 40.0
    dy, dx = np.mgrid[-100:100:0.25, -100:100:0.25] + 0.125   # cell centres, off the outlines
    area = {k: float((f(dx, dy, r) < 0).sum()) * 0.25 ** 2 for k, f in SHAPES.items()}
    side = 1.8 * r * 2 / np.sqrt(3)        # height 1.8 r
    expect = {"disc": np.pi * r ** 2, "square": (1.7 * r) ** 2,
              "cross": 2 * (2 * r * 0.6 * r) - (0.6 * r) ** 2,
              "triangle": np.sqrt(3) / 4 * side ** 2,
              "ring": np.pi * ((1.05 * r) ** 2 - (0.55 * r) ** 2)}
    for k in SHAPES:
        assert area[k] == pytest.approx(expect[k], rel=0.005), k


def test_the_shape_is_brighter_than_the_background():
    d = shapes(200, [1, 28, 28], seed=0)
    centre = d.X[:, 0, 12:16, 12:16].mean()
    corners = d.X[:, 0, :2, :2].mean()
    assert centre > corners + 0.3


def test_shapes_needs_images_and_a_known_number_of_classes():
    with pytest.raises(InputError, match="data.builtin.*channels, height, width"):
        prepare(bpcli.load_spec(spec([28], [{"dense": {"units": 3}}], "softmax_cross_entropy",
                                     data={"builtin": "shapes"})))
    with pytest.raises(InputError, match="data.classes"):
        bpcli.load_spec(spec([1, 8, 8], [{"dense": {"units": 3}}], "softmax_cross_entropy",
                             data={"builtin": "shapes", "classes": 6}))
