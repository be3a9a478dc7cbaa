"""``bpcli inspect``: the layer table (output shapes, parameters, FLOPs per sample), the lecture's
banded Toeplitz matrix W1 as a picture, learned kernels, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bpcli
from bpcli.explain.layer_table import summary, toeplitz_matrix

from helpers import cli

SPECS = Path(__file__).resolve().parents[1] / "specs"
LECTURE = SPECS / "lecture_cnn.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

IMAGE = """\
name: tiny-image
input: [2, 8, 8]
layers:
  - conv2d: {channels: 3, kernel: 3, pad: same}
  - relu
  - maxpool2d: {size: 2}
  - conv2d: {channels: 4, kernel: 2, stride: 2, impl: toeplitz}
  - elu
  - avgpool2d: {size: 2, stride: 1, pad: 1}
  - dense: {units: 2}
loss: softmax_cross_entropy
"""


@pytest.fixture
def image_spec(tmp_path):
    path = tmp_path / "image.yaml"
    path.write_text(IMAGE)
    return path


def test_lecture_table_counts_the_lectures_parameters(capsys):
    # W1 and W2 are 5-tap kernels, W3 a 1x64 matrix: 5, 5 and 64 parameters, nothing else
    code, out, err = cli(capsys, "inspect", LECTURE, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [r["params"] for r in report["layers"]] == [5, 0, 5, 0, 64, 0]
    assert [r["output_shape"] for r in report["layers"]] == [[1, 64]] * 4 + [[1], [1]]
    # conv: 64 outputs x 5 taps multiply-adds, x2; relu: 1 per element; dense: 64 multiply-adds, x2
    assert [r["flops"] for r in report["layers"]] == [640, 64, 640, 64, 128, 1]
    assert report["total"] == {"params": 74, "flops": 1537}
    assert report["layers"][0]["fields"] == {"channels": 1, "kernel": 5, "pad": "same", "bias": False}
    assert report["picture"] is None


def test_lecture_table_as_text(capsys):
    code, out, _ = cli(capsys, "inspect", LECTURE)
    assert code == 0
    cells = [[c.strip() for c in line.split("│")] for line in out.splitlines() if "│" in line]
    layer_rows = [c for c in cells if c[0].isdigit()]
    assert [(c[1], c[3], c[4], c[5]) for c in layer_rows] == [
        ("conv1d", "1×64", "5", "640"), ("relu", "1×64", "0", "64"),
        ("conv1d", "1×64", "5", "640"), ("relu", "1×64", "0", "64"),
        ("dense", "1", "64", "128"), ("relu", "1", "0", "1")]
    total = next(c for c in cells if c[1] == "total")
    assert (total[4], total[5]) == ("74", "1,537")
    assert "channels=1 kernel=5 pad=same" in out


def test_flops_of_image_layers_follow_the_stated_convention(image_spec):
    model = bpcli.build(image_spec)
    rows = summary(model)["layers"]
    assert [tuple(r["output_shape"]) for r in rows] == [(3, 8, 8), (3, 8, 8), (3, 4, 4), (4, 2, 2),
                                                       (4, 2, 2), (4, 3, 3), (2,)]
    assert [r["params"] for r in rows] == [3 * 2 * 9 + 3, 0, 0, 4 * 3 * 4 + 4, 0, 0, 2 * 36 + 2]
    conv = 2 * (3 * 64) * (2 * 9) + 3 * 64            # multiply-adds x2, plus the bias adds
    toeplitz = 2 * (4 * 4) * (3 * 16) + 4 * 4         # the full T(w), 16 x 48, zeros included
    pool_max = 3 * 4 * 4 * 4                          # one comparison per window element
    pool_avg = 4 * 3 * 3 * 4                          # one addition per window element
    dense = 2 * 2 * 36 + 2
    assert [r["flops"] for r in rows] == [conv, 3 * 64, pool_max, toeplitz, 4 * 4, pool_avg, dense]


def test_toeplitz_picture_is_the_banded_matrix_of_the_initial_weights(capsys, tmp_path):
    png = tmp_path / "W1.png"
    code, out, err = cli(capsys, "inspect", LECTURE, "--toeplitz", 0, "--out", png)
    assert code == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert f"picture: {png}" in out
    # the matrix drawn: kernel w = [a, b, c, d, e] on the band, centred (pad same), 64 x 64
    model = bpcli.build(LECTURE)
    w = model.params["layers.0.weight"][0, 0]
    T = np.zeros((64, 64), dtype=w.dtype)
    for t in range(64):
        for k in range(5):
            if 0 <= t + k - 2 < 64:
                T[t, t + k - 2] = w[k]
    np.testing.assert_array_equal(toeplitz_matrix(model, 0), T)


def _fake_run(tmp_path, spec_path, scale):
    """A run folder as bpcli train leaves it (spec.yaml, model.npz), with known weights."""
    model = bpcli.build(spec_path)
    for w in model.params.values():
        w *= scale
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text(model.spec.to_yaml())
    model.save(run / "model.npz")
    return run, model


def test_toeplitz_and_kernels_of_a_trained_run(capsys, tmp_path, image_spec):
    run, trained = _fake_run(tmp_path, image_spec, scale=3.0)
    code, out, err = cli(capsys, "inspect", "--run", run, "--toeplitz", 3, "--out", tmp_path / "W.png",
                         "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["picture"] == str(tmp_path / "W.png")
    assert (tmp_path / "W.png").read_bytes()[:8] == PNG_MAGIC
    code, out, err = cli(capsys, "inspect", "--run", run, "--kernels", "--out", tmp_path / "K.png")
    assert code == 0, err
    assert (tmp_path / "K.png").read_bytes()[:8] == PNG_MAGIC
    assert "trained" in out
    # the run's weights, not the spec's initial ones: T(w) of layer 3, 16 x 48
    model = bpcli.build(run / "spec.yaml")
    model.load_params(run / "model.npz")
    T = toeplitz_matrix(model, 3)
    assert T.shape == (16, 48)
    np.testing.assert_array_equal(np.sort(np.unique(T[T != 0])),
                                  np.sort(np.unique(trained.params["layers.3.weight"])))


@pytest.mark.parametrize("args,message", [
    (["--toeplitz", 9], "layer index 9 is out of range: the spec has layers 0 to 5"),
    (["--toeplitz", -1], "--toeplitz: must be an integer >= 0, got -1"),
    (["--toeplitz", 1], "layers[1] is relu, which has no matrix view"),
    (["--toeplitz", 0, "--kernels"], "one picture at a time"),
])
def test_bad_picture_requests_exit_2_with_a_message(capsys, tmp_path, args, message):
    code, out, err = cli(capsys, "inspect", LECTURE, *args, "--out", tmp_path / "x.png")
    assert code == 2
    assert err.startswith("bpcli: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_kernels_of_a_spec_without_convolutions_is_bad_input(capsys, tmp_path):
    code, _, err = cli(capsys, "inspect", SPECS / "linear_regression.yaml", "--kernels",
                       "--out", tmp_path / "k.png")
    assert code == 2 and "no conv1d or conv2d layer" in err


@pytest.mark.parametrize("args,message", [
    ([], "give a spec file, or --run RUN"),
    ([LECTURE, "--run", "somewhere"], "not both"),
    (["--run", "no-such-run"], "not a run folder"),
    (["no-such.yaml"], "spec file not found"),
])
def test_spec_or_run_is_required(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "inspect", *args)
    assert code == 2 and message in err, err


def test_a_dense_layers_matrix_view_is_its_weight_the_lectures_w3():
    model = bpcli.build(LECTURE)
    np.testing.assert_array_equal(toeplitz_matrix(model, 4), model.params["layers.4.weight"])
