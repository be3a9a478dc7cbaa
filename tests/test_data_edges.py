"""Data at the edges, each as train, eval and predict read it: numbers checked in the dtype they
will be used in (a cell of 7e+38 overflows float32), constant features judged relative to their
size (scikit-learn#17794), text tables known by their content (UCI's iris.data), arrays stored
channels last (data.layout), one-hot labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import bpcli
from bpcli.errors import InputError
from bpcli.nn.preprocess import statistics
from bpcli.train import data

from helpers import cli, ok


def refused(capfd, *args) -> str:
    """bpcli ARGS must exit 2 with one paragraph on stderr, nothing on stdout, no run folder."""
    code, out, err = cli(capfd, *args)
    assert code == 2, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert err.startswith("bpcli: error: ") and err.count("\n") == 1, err
    assert out == "" and not Path("runs").exists()
    return err


def write_spec(name: str, input_shape, layers, loss="softmax_cross_entropy", **top) -> str:
    spec = {"name": Path(name).stem, "input": list(input_shape), "seed": 0, "layers": layers,
            "loss": loss, "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": 1, "batch_size": 16}, **top}
    Path(name).write_text(yaml.safe_dump(spec, sort_keys=False))
    return name


DENSE = [{"dense": {"units": 8}}, "relu", {"dense": {"units": 3}}]
CONV = [{"conv2d": {"channels": 2, "kernel": 3}}, "relu", {"dense": {"units": 3}}]


# ---------------------------------------------------------------- 5. numbers at the edges
def table(path: str, rows: int = 40, odd: dict | None = None, header: str = "a,b,c,y") -> str:
    """A CSV of ``rows`` rows of three features and a label 0..2; ``odd`` maps (data row,
    column) to the text the cell holds instead. Data row i is on line i + 2."""
    rng = np.random.default_rng(0)
    cells = [[f"{v:.3f}" for v in rng.standard_normal(3)] + [str(i % 3)] for i in range(rows)]
    for (row, col), text in (odd or {}).items():
        cells[row][col] = text
    Path(path).write_text(header + "\n" + "".join(",".join(r) + "\n" for r in cells))
    return path


def test_a_cell_that_overflows_float32_is_named_by_line_and_column(workdir, capfd):
    # 7e+38 is finite in float64, where the cells were checked, and inf in float32, where the
    # network runs: the run "diverged ... try a smaller optimizer.lr" (fastai/fastai#486)
    spec = write_spec("s.yaml", [3], DENSE)
    table("big.csv", odd={(7, 2): "7e+38"})
    err = refused(capfd, "train", spec, "--data", "big.csv", "-q")
    assert ("big.csv:9: line 9, column 'c': 7e+38 overflows float32 (the spec's dtype; its "
            "largest is 3.4e+38) and would be inf in training") in err, err
    assert "set dtype: float64" in err and "diverged" not in err
    # in float64 the same cell is a number like any other
    ok(capfd, "train", spec, "--data", "big.csv", "-q", "--set", "dtype=float64", "--out", "r64")
    # a regression target is used in the spec's dtype too
    reg = write_spec("r.yaml", [3], [{"dense": {"units": 1}}], loss="mse")
    Path("t.csv").write_text("a,b,c,y\n" + "1,2,3,0.5\n" * 5 + "1,2,3,-9e+38\n")
    err = refused(capfd, "train", reg, "--data", "t.csv", "-q")
    assert "t.csv:7: line 7, column 'y': the target -9e+38 overflows float32" in err, err


def test_an_array_value_that_overflows_float32_is_named_by_sample_and_position(workdir, capfd):
    spec = write_spec("s.yaml", [3], DENSE)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), np.arange(30) % 3
    X[12, 1] = 1e39
    np.savez("big.npz", X=X, y=y)
    Path("big").mkdir()
    np.save("big/X.npy", X)   # memory-mapped: checked slab by slab
    np.save("big/y.npy", y)
    for path in ("big.npz", "big"):
        err = refused(capfd, "train", spec, "--data", path, "-q")
        assert (f"{path}: X at sample 12, position [1]: 1e+39 overflows float32 (the spec's "
                f"dtype; its largest is 3.4e+38)") in err, err
    reg = write_spec("r.yaml", [3], [{"dense": {"units": 1}}], loss="mse")
    X[12, 1] = 0.0
    np.savez("ybig.npz", X=X, y=np.where(np.arange(30) == 4, -5e38, 1.0))
    err = refused(capfd, "train", reg, "--data", "ybig.npz", "-q")
    assert "ybig.npz: y at sample 4: -5e+38 overflows float32" in err, err


def test_eval_and_predict_check_numbers_in_the_runs_dtype(workdir, capfd):
    spec = write_spec("s.yaml", [3], DENSE)
    ok(capfd, "train", spec, "--data", table("good.csv"), "-q", "--out", "run")
    table("bad.csv", odd={(3, 0): "-4e+38"})
    for command in ("eval", "predict"):
        err = refused(capfd, command, "run", "--data", "bad.csv")
        assert "bad.csv:5: line 5, column 'a': -4e+38 overflows float32" in err, err


def test_a_constant_feature_is_only_shifted_in_float64_too():
    # scikit-learn#17794: 0.1 on every row has a float64 std of ~1e-17 (rounding in the mean),
    # and dividing by it made 0.1001 a thousand billion standard deviations away
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = np.column_stack([np.full(1000, 0.1), rng.standard_normal(1000), np.full(1000, 1e6 / 3)])
    shift, scale = statistics("standardize", X)
    assert scale[0] == 1.0 and scale[2] == 1.0 and 0.9 < scale[1] < 1.1
    np.testing.assert_allclose(shift, X.mean(axis=0), rtol=1e-15)
    reference = StandardScaler().fit(X)   # its _is_constant_feature: the same bound
    np.testing.assert_allclose(scale, reference.scale_, rtol=1e-12)
    assert abs((0.1001 - shift[0]) / scale[0]) < 1e-3   # a small change stays small
    # minmax: a range of rounding (0.1 + 0.2 against 0.3) is no range either
    X = np.column_stack([np.where(np.arange(10) % 2, 0.1 + 0.2, 0.3), np.arange(10.0)])
    assert np.ptp(X[:, 0]) > 0
    shift, scale = statistics("minmax", X)
    assert scale[0] == 1.0 and scale[1] == 9.0
    # a real variation, however small beside the values, is kept
    X = np.column_stack([1.0 + 1e-9 * rng.standard_normal(1000)])
    assert statistics("standardize", X)[1][0] < 1e-8


def test_training_standardizes_a_constant_float64_feature_to_a_shift(workdir):
    s = {"name": "c", "input": [2], "dtype": "float64", "seed": 0, "preprocess": "standardize",
         "layers": [{"dense": {"units": 1}}], "loss": "mse",
         "training": {"epochs": 1, "batch_size": 10}}
    rng = np.random.default_rng(0)
    X = np.column_stack([np.full(200, 0.1), rng.standard_normal(200)])
    np.savez("c.npz", X=X, y=X[:, 1])
    from bpcli.train.run import execute, prepare

    p = prepare(bpcli.load_spec(s), data="c.npz")
    execute(p, workdir / "run")
    assert p.model.buffers["preprocess.scale"][0] == 1.0
    f = p.model.forward(np.array([[0.1, 0.5], [0.1001, 0.5]]))
    assert abs(f[1, 0] - f[0, 0]) < 0.01, f


# ---------------------------------------------------------------- 7. files as they come
IRIS = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]


def iris(path: str, sep: str = ",", n: int = 30) -> str:
    """UCI's iris.data layout: 4 numbers and the class name a line, no header, a blank line at
    the end."""
    rng = np.random.default_rng(0)
    lines = [sep.join([*(f"{v:.1f}" for v in rng.normal(5 + i % 3, 0.3, 4)), IRIS[i % 3]])
             for i in range(n)]
    Path(path).write_text("\n".join(lines) + "\n\n")
    return path


@pytest.mark.parametrize("name,sep,what", [
    ("iris.data", ",", "comma-separated text, 5 columns (4 of numbers)"),
    ("iris.txt", "\t", "tab-separated text"),
    ("iris.dat", ";", "semicolon-separated text"),
    ("iris", "  ", "whitespace-separated text"),
])
def test_a_text_table_is_known_by_its_content(name, sep, what, workdir, capfd):
    spec = write_spec("s.yaml", [4], DENSE)
    iris(name, sep)
    _, err = ok(capfd, "train", spec, "--data", name, "-q", "--out", "run")
    assert (f"note: {name}: its name says no kind of data, so it is read by its content: "
            f"{what}") in err, err
    assert "(data.format: csv says so)" in err
    # no header: line 1 is data, and the last column, the only one of text, holds the labels
    assert f"{name}: line 1 (" in err and "read as data, not column names" in err
    assert "the last column (4), the only one holding text" in err
    assert "24 training and 6 validation samples" in err
    recorded = yaml.safe_load(Path("run/spec.yaml").read_text())["data"]
    assert recorded["classes"] == IRIS and recorded["target"] == 4
    # eval and predict read files of the same kind the same way
    out, _ = ok(capfd, "eval", "run", "--data", name, "--json")
    assert json.loads(out)["n"] == 30
    Path("new").write_text("5.1 3.5 1.4 0.2\n7.0 3.2 4.7 1.4\n")
    out, _ = ok(capfd, "predict", "run", "--data", "new")
    assert out.splitlines()[0].startswith("prediction,p_Iris-setosa") and len(out.splitlines()) == 3


def test_data_format_says_what_a_file_is(workdir, capfd):
    spec = write_spec("s.yaml", [4], DENSE, data={"path": iris("iris.data"), "format": "csv"})
    _, err = ok(capfd, "train", spec, "-q", "--out", "run")
    assert "read by its content" not in err   # told, not sniffed
    rng = np.random.default_rng(0)
    np.savez("arrays.npz", X=rng.standard_normal((20, 4)), y=np.arange(20) % 3)
    Path("arrays.npz").rename("arrays.bin")
    _, err = ok(capfd, "train", spec, "--data", "arrays.bin", "-q", "--out", "r2",
                "--set", "data.format=npz")
    assert "read by its content" not in err
    # unsaid, the same file is known by its first bytes
    _, err = ok(capfd, "train", spec, "--data", "arrays.bin", "-q", "--out", "r3",
                "--set", "data.format=null")
    assert "its content: a zip archive of .npy arrays" in err
    # a name that says its kind wins over data.format (a run's recorded format is for the
    # files whose name says nothing)
    np.savez("more.npz", X=rng.standard_normal((20, 4)), y=np.arange(20) % 3)
    ok(capfd, "eval", "run", "--data", "more.npz")
    # compressed, the content is looked at once decompressed
    import gzip

    Path("iris.data.gz").write_bytes(gzip.compress(Path("iris.data").read_bytes()))
    d = data.read(bpcli.load_spec(spec), "iris.data.gz")
    assert d.classes == IRIS and d.X.shape == (30, 4)
    capfd.readouterr()
    err = refused(capfd, "train", spec, "--set", "data.format=csv-ish")
    assert "data.format: must be one of csv, npz, npy, images" in err


@pytest.mark.parametrize("name,content,found", [
    ("notes.txt", b"Iris data set\nThese are the notes, not the numbers.\n",
     "text whose lines split into 3 or 7 fields"),
    ("blob", bytes(range(200, 256)) * 4, "binary, not text: it starts with bytes c8 c9"),
    ("words.data", b"setosa,small\nvirginica,large\n", "comma-separated text with no column of "
                                                       "numbers"),
])
def test_an_unknown_file_says_what_was_tried(name, content, found, workdir, capfd):
    spec = write_spec("s.yaml", [4], DENSE)
    Path(name).write_bytes(content)
    err = refused(capfd, "train", spec, "--data", name, "-q")
    assert err.startswith(f"bpcli: error: {name}: unknown data file"), err
    assert "tried its name (bpcli knows .npz; .npy; .csv and .tsv" in err and ".png" in err
    assert f"and its content ({found}" in err, err
    assert "say which with data.format: csv, npz, npy, images" in err


def test_a_folder_holding_a_text_table_points_at_it(workdir, capfd):
    Path("d").mkdir()
    iris("d/iris.data")
    err = refused(capfd, "train", write_spec("s.yaml", [4], DENSE), "--data", "d", "-q")
    assert "a table is given as the file itself: --data d/iris.data" in err, err


def test_names_above_numbers_are_still_a_header_whatever_the_name(workdir):
    spec = bpcli.load_spec({"name": "h", "input": [2], "layers": [{"dense": {"units": 3}}],
                            "loss": "softmax_cross_entropy"})
    Path("h.data").write_text("a,b,y\n1,2,cat\n3,4,dog\n5,6,bird\n")
    d = data.read(spec, "h.data")
    assert d.features == ["a", "b"] and d.classes == ["bird", "cat", "dog"] and len(d.X) == 3


# ---------------------------------------------------------------- 8. channels last, one-hot y
def test_channels_last_arrays_are_named_so_never_a_new_input(workdir, capfd):
    spec = write_spec("s.yaml", [3, 8, 8], CONV)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 8, 8, 3)), np.arange(30) % 3
    np.savez("hwc.npz", X=X, y=y)
    err = refused(capfd, "train", spec, "--data", "hwc.npz", "-q")
    assert ("hwc.npz: has samples of shape (8, 8, 3): the spec's input [3, 8, 8] with the "
            "channels last (height, width, channels)") in err, err
    assert "data.layout: channels_last" in err and "np.moveaxis(X, -1, 1)" in err
    assert "input: [8, 8, 3]" not in err and "input=[8, 8, 3]" not in err
    # said so, they are transposed as they are read; eval and predict read them alike
    ok(capfd, "train", spec, "--data", "hwc.npz", "-q", "--out", "run",
       "--set", "data.layout=channels_last")
    d = data.read(bpcli.load_run("run").spec, "hwc.npz")
    np.testing.assert_array_equal(d.X, np.moveaxis(X, -1, 1))
    ok(capfd, "eval", "run", "--data", "hwc.npz")
    ok(capfd, "predict", "run", "--data", "hwc.npz")
    # a picture is a picture by its first bytes too, whatever its name (pictures are decoded
    # channels first: data.layout is about arrays)
    from PIL import Image

    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save("photo", format="PNG")
    out, err = ok(capfd, "predict", "run", "--data", "photo")
    assert "read by its content: a PNG picture" in err and out.count("\n") == 2, (out, err)
    # a run trained channels first says so to eval, with the way to say it there
    np.savez("chw.npz", X=np.moveaxis(X, -1, 1), y=y)
    ok(capfd, "train", spec, "--data", "chw.npz", "-q", "--out", "first")
    err = refused(capfd, "eval", "first", "--data", "hwc.npz")
    assert "--set data.layout=channels_last" in err, err
    ok(capfd, "eval", "first", "--data", "hwc.npz", "--set", "data.layout=channels_last")


def test_channels_last_from_a_memory_mapped_folder_and_flat_rows(workdir, capfd):
    spec = write_spec("s.yaml", [3, 8, 8], CONV, data={"layout": "channels_last"})
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 8, 8, 3)), np.arange(30) % 3
    Path("f").mkdir()
    np.save("f/X.npy", X)
    np.save("f/y.npy", y)
    d = data.read(bpcli.load_spec(spec), "f")
    assert isinstance(d.X, np.memmap)   # a view: still on disk
    np.testing.assert_array_equal(d.X, np.moveaxis(X, -1, 1))
    ok(capfd, "train", spec, "--data", "f", "-q", "--out", "run")
    # a CSV row of 192 numbers laid out (height, width, channels), as image tables often are
    rows = np.column_stack([X.reshape(30, -1), y])
    np.savetxt("flat.csv", rows, delimiter=",", fmt="%.6f")
    _, err = ok(capfd, "train", spec, "--data", "flat.csv", "--target", "-1", "-q",
                "--out", "run2")
    assert "each row of 192 numbers read as (8, 8, 3), channels last (data.layout)" in err, err
    d = data.read(bpcli.load_run("run2").spec, "flat.csv")
    np.testing.assert_allclose(d.X, np.moveaxis(X, -1, 1), atol=1e-6)


def test_channels_last_targets_move_with_their_inputs_and_first_is_refused(workdir):
    spec = bpcli.load_spec({"name": "d", "input": [3, 8, 8], "data": {"layout": "channels_last"},
                            "layers": [{"conv2d": {"channels": 3, "kernel": 3, "pad": "same"}}],
                            "loss": "mse"})
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 8, 8, 3)), rng.standard_normal((5, 8, 8, 3))
    np.savez("pairs.npz", X=X, y=y)
    d = data.read(spec, "pairs.npz")
    np.testing.assert_array_equal(d.y, np.moveaxis(y, -1, 1))
    np.savez("first.npz", X=np.moveaxis(X, -1, 1), y=np.moveaxis(y, -1, 1))
    with pytest.raises(InputError, match=r"the channels first already, but data.layout says "
                                         r"channels_last: leave data.layout out"):
        data.read(spec, "first.npz")


def test_pictures_of_another_size_channels_last_get_both_changes(workdir, capfd):
    spec = write_spec("s.yaml", [1, 28, 28], CONV)
    np.savez("hwc.npz", X=np.zeros((10, 8, 8, 3)), y=np.arange(10) % 3)
    err = refused(capfd, "train", spec, "--data", "hwc.npz", "-q")
    assert ("look like 8x8 pictures of 3 channels stored channels last, but the spec's input is "
            "[1, 28, 28]") in err, err
    assert "--set 'input=[3, 8, 8]' --set data.layout=channels_last" in err
    assert "input=[8, 8, 3]" not in err


def test_one_hot_labels_are_read_as_class_indices(workdir, capfd):
    spec = write_spec("s.yaml", [4], DENSE)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 4)), np.arange(200) % 3
    np.savez("onehot.npz", X=X, y=np.eye(3)[y])
    _, err = ok(capfd, "train", spec, "--data", "onehot.npz", "-q", "--out", "run")
    assert ("onehot.npz: y holds one-hot rows, shape (200, 3): read as the class indices 0..2 "
            "(each row's argmax)") in err, err
    np.testing.assert_array_equal(data.read(bpcli.load_spec(spec), "onehot.npz").y, y)
    # eval reads them alike, and scores them as the indices they stand for
    np.savez("idx.npz", X=X, y=y)
    a, _ = ok(capfd, "eval", "run", "--data", "onehot.npz", "--json")
    b, _ = ok(capfd, "eval", "run", "--data", "idx.npz", "--json")
    a, b = json.loads(a), json.loads(b)
    assert a.pop("data") == "onehot.npz" and b.pop("data") == "idx.npz"
    assert a == b and a["n"] == 200


def test_labels_that_are_not_one_hot_quote_the_files_shape_and_argmax(workdir, capfd):
    spec = write_spec("s.yaml", [4], DENSE)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    soft = rng.dirichlet(np.ones(3), 200)
    np.savez("soft.npz", X=X, y=soft)
    err = refused(capfd, "train", spec, "--data", "soft.npz", "-q")
    # the file's shape, not the training split's (160, 3)
    assert "soft.npz: y has shape (200, 3) in the file" in err and "(160, 3)" not in err, err
    assert "one class index 0..2 a sample" in err and "y.argmax(axis=1)" in err
    multi = (rng.random((200, 3)) < 0.5).astype(float)
    multi[0] = [1, 1, 0]
    np.savez("multi.npz", X=X, y=multi)
    err = refused(capfd, "train", spec, "--data", "multi.npz", "-q")
    assert "sample 0 ([1, 1, 0]) has 2 classes at once" in err and \
        "loss: sigmoid_cross_entropy" in err, err


def test_multi_label_targets_are_left_to_a_loss_that_takes_them(workdir, capfd):
    spec = write_spec("s.yaml", [4], DENSE, loss="sigmoid_cross_entropy")
    rng = np.random.default_rng(0)
    y = np.eye(3)[np.arange(40) % 3]   # one-hot rows are K yes/no answers to this loss
    np.savez("m.npz", X=rng.standard_normal((40, 4)), y=y)
    d = data.read(bpcli.load_spec(spec), "m.npz")
    np.testing.assert_array_equal(d.y, y)
    _, err = ok(capfd, "train", spec, "--data", "m.npz", "-q", "--out", "run")
    assert "one-hot" not in err


def test_labels_of_another_shape_quote_the_files_shape(workdir, capfd):
    # the loss's own check ran on the training split: "got shape (160, 2, 3)", a shape no file has
    spec = write_spec("s.yaml", [4], DENSE)
    X = np.random.default_rng(0).standard_normal((200, 4))
    np.savez("y3.npz", X=X, y=np.zeros((200, 2, 3)))
    err = refused(capfd, "train", spec, "--data", "y3.npz", "-q")
    assert ("y3.npz: softmax_cross_entropy loss: labels must be one class index per sample, got "
            "shape (200, 2, 3)") in err, err
    multi = write_spec("m.yaml", [4], DENSE, loss="sigmoid_cross_entropy")
    np.savez("y5.npz", X=X, y=np.zeros((200, 5)))
    err = refused(capfd, "train", multi, "--data", "y5.npz", "-q")
    assert ("y5.npz: sigmoid_cross_entropy loss: targets of shape (5,) per sample do not fit the "
            "network output (3,) (y in the file: shape (200, 5))") in err, err
