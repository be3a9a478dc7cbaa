"""A user's own tables: every data option of a CSV, class names, recorded columns, validation
files, the unshuffled split's warning, every bad table as one clear error, and scikit-learn's
shipped data files trained as they are."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import bpcli
from bpcli.cli import main
from bpcli.errors import InputError
from bpcli.train import data


def spec(input_shape=(2,), units=2, loss="softmax_cross_entropy", **data_options) -> dict:
    return {"name": "t", "input": list(input_shape), "seed": 0, "data": data_options or None,
            "layers": [{"dense": {"units": units}}], "loss": loss,
            "optimizer": {"name": "adam", "lr": 0.05}, "training": {"epochs": 2, "batch_size": 8}}


def read(path=None, labels="required", input_shape=(2,), **options):
    return data.read(bpcli.load_spec(spec(input_shape, **options)), path, labels=labels)


def bpcli_run(capfd, *args):
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    return code, out, err


def write_spec(spec_file, **kw) -> Path:
    Path(spec_file).write_text(yaml.safe_dump(spec(**kw), sort_keys=False))
    return Path(spec_file)


TABLE = "a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n7,8,bird\n"


# ---------------------------------------------------------------- header, skip_rows, delimiter
def test_a_header_names_the_columns(workdir, capfd):
    Path("t.csv").write_text(TABLE)
    d = read("t.csv")
    np.testing.assert_array_equal(d.X, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert d.features == ["a", "b"] and d.target == "y"
    assert capfd.readouterr().err == ""  # nothing to say: line 1 is plainly names


def test_a_first_row_of_numbers_is_data_and_bpcli_says_so(workdir, capfd):
    Path("t.csv").write_text("1,2,0\n3,4,1\n5,6,0\n")
    d = read("t.csv", target=-1)
    assert d.X.shape == (3, 2) and d.y.tolist() == [0, 1, 0]  # the first sample is kept
    assert d.features == [0, 1] and d.target == 2                # positions without a header
    err = capfd.readouterr().err
    assert "t.csv: line 1 (1, 2, 0) is all numbers: read as data, not column names" in err


def test_header_true_and_false_override_the_guess(workdir):
    Path("t.csv").write_text("1,2,3\n4,5,0\n6,7,1\n")
    d = read("t.csv", header=True, target="3")  # the names are 1, 2, 3
    assert d.features == ["1", "2"] and d.X.shape == (2, 2)
    Path("u.csv").write_text("a,b,y\n4,5,0\n")
    with pytest.raises(InputError, match=r"line 1, column 0: 'a' is not a number"):
        read("u.csv", header=False, target=-1)


def test_skip_rows_skips_metadata_lines(workdir):
    # scikit-learn's iris.csv starts so: a line of counts and class names, then the data
    Path("iris.csv").write_text("3,2,setosa,versicolor\n5.1,3.5,0\n4.9,3.0,1\n4.7,3.2,1\n")
    d = read("iris.csv", skip_rows=1, target=-1)
    np.testing.assert_array_equal(d.X, [[5.1, 3.5], [4.9, 3.0], [4.7, 3.2]])
    assert d.y.tolist() == [0, 1, 1]
    Path("m.csv").write_text("# exported 2024-01-01\n\na,b,y\n1,2,0\n")  # a note, a blank line
    assert read("m.csv", skip_rows=2).features == ["a", "b"]


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zip", ".xz"])
def test_compressed_tables_read_as_the_plain_one(workdir, suffix):
    pd.read_csv(pd.io.common.StringIO(TABLE)).to_csv(f"t.csv{suffix}", index=False)
    Path("t.csv").write_text(TABLE)
    plain, packed = read("t.csv"), read(f"t.csv{suffix}")
    np.testing.assert_array_equal(packed.X, plain.X)
    assert packed.y.tolist() == plain.y.tolist() and packed.classes == plain.classes


@pytest.mark.parametrize("text", [
    "a\tb\ty\n1\t2\t0\n3\t4\t1\n",        # tabs
    "a  b   y\n1   2  0\n 3  4  1\n",    # runs of spaces
    "a|b|y\n1|2|0\n3|4|1\n",
    "a;b;y\n1;2;0\n3;4;1\n",
    "a , b , y\n1 , 2 , 0\n3 , 4 , 1\n",  # spaces around commas: names and numbers stripped
])
def test_the_delimiter_is_sniffed_and_names_stripped(workdir, text):
    Path("t.csv").write_text(text)
    d = read("t.csv")
    assert d.features == ["a", "b"] and d.y.tolist() == [0, 1]
    np.testing.assert_array_equal(d.X, [[1, 2], [3, 4]])


def test_a_given_delimiter_wins_over_the_sniffer(workdir):
    Path("t.csv").write_text("a;b,y\n1;2,0\n3;4,1\n")
    d = read("t.csv", delimiter=";", target="b,y", input_shape=(1,))
    assert d.features == ["a"] and d.classes == ["2,0", "4,1"]
    with pytest.raises(InputError, match=r"line 2, column 'a;b': '1;2' is not a number"):
        read("t.csv", delimiter=",", input_shape=(1,))


# ---------------------------------------------------------------- target and classes
@pytest.mark.parametrize("target,expect_y", [("y", [0, 1]), (-1, [0, 1]), ("-1", [0, 1]),
                                             (0, [1, 3]), ("a", [1, 3])])
def test_the_target_is_a_name_or_a_position(workdir, target, expect_y):
    Path("t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    d = read("t.csv", target=target)
    assert d.y.tolist() == expect_y and len(d.features) == 2


def test_class_names_become_indices_in_sorted_order(workdir):
    Path("t.csv").write_text(TABLE)
    d = read("t.csv")
    assert d.classes == ["bird", "cat", "dog"] and d.y.tolist() == [1, 2, 1, 0]


def test_the_spec_classes_fix_the_order_and_number_labels_index_them(workdir):
    Path("t.csv").write_text(TABLE)
    d = read("t.csv", units=3, classes=["dog", "cat", "bird"])
    assert d.classes == ["dog", "cat", "bird"] and d.y.tolist() == [1, 0, 1, 2]
    Path("n.csv").write_text("a,b,y\n1,2,0\n3,4,2\n")  # labels already indices
    d = read("n.csv", units=3, classes=["setosa", "versicolor", "virginica"])
    assert d.y.tolist() == [0, 2] and d.classes == ["setosa", "versicolor", "virginica"]


# ---------------------------------------------------------------- what training records
def test_training_records_classes_features_and_target_and_later_files_match_by_name(workdir, capfd):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    names = np.where(X[:, 0] + X[:, 2] > 0, "yes", "no")
    pd.DataFrame({"f1": X[:, 0], "f2": X[:, 1], "f3": X[:, 2], "label": names}).to_csv(
        "train.csv", index=False)
    write_spec("s.yaml", input_shape=(3,), target="label")
    code, _, err = bpcli_run(capfd, "train", "s.yaml", "--data", "train.csv", "-q")
    assert code == 0, err
    run_spec = bpcli.load_spec("runs/t/spec.yaml")
    entry = run_spec.data["data"]
    assert entry["classes"] == ["no", "yes"] and entry["features"] == ["f1", "f2", "f3"]
    assert entry["target"] == "label"
    # the same samples, columns shuffled, one extra column, the label column elsewhere
    pd.DataFrame({"label": names, "f3": X[:, 2], "note": "x", "f1": X[:, 0], "f2": X[:, 1]}).to_csv(
        "later.csv", index=False)
    later = data.read(run_spec, "later.csv")
    np.testing.assert_allclose(later.X, X.astype(np.float32), rtol=1e-6)
    assert later.y.tolist() == (names == "yes").astype(int).tolist()
    assert "later.csv: ignored column(s) note: not among the run's features" in capfd.readouterr().err
    # prediction: no label column at all
    pd.DataFrame({"f2": X[:, 1], "f1": X[:, 0], "f3": X[:, 2]}).to_csv("new.csv", index=False)
    assert data.read(run_spec, "new.csv", labels="none").y is None
    assert data.read(run_spec, "new.csv", labels="optional").X.shape == (40, 3)
    pd.DataFrame({"f1": X[:, 0], "label": names}).to_csv("short.csv", index=False)
    with pytest.raises(InputError, match=r"short.csv: lacks feature column\(s\) f2, f3 that the "
                                         r"run was trained on \(it has f1, label\)"):
        data.read(run_spec, "short.csv")
    pd.DataFrame({"f1": [0.0], "f2": [0.0], "f3": [0.0], "label": ["maybe"]}).to_csv(
        "odd.csv", index=False)
    with pytest.raises(InputError, match=r"odd.csv: line 2: class 'maybe' is not one of the "
                                         r"classes the run was trained on \(data.classes\): no, yes"):
        data.read(run_spec, "odd.csv")


def test_a_flat_row_is_reshaped_to_the_input_once(workdir, capfd):
    rows = np.arange(3 * 9).reshape(3, 9)
    pd.DataFrame(np.c_[rows, [0, 1, 0]]).to_csv("flat.csv", index=False, header=False)
    d = read("flat.csv", input_shape=(1, 3, 3), target=-1)
    np.testing.assert_array_equal(d.X, rows.reshape(3, 1, 3, 3))  # C order
    err = capfd.readouterr().err
    assert err.count("reshaped") == 1
    assert "flat.csv: each row of 9 numbers reshaped to the spec's input [1, 3, 3]" in err


def test_labels_optional_and_none(workdir):
    Path("t.csv").write_text("a,b\n1,2\n3,4\n")
    assert read("t.csv", labels="optional").y is None
    with pytest.raises(InputError, match="no label column 'y'; columns are a, b"):
        read("t.csv")
    Path("l.csv").write_text("a,b,y\n1,2,0\n")
    d = read("l.csv", labels="none")
    assert d.y is None and d.features == ["a", "b"]  # the label column is not a feature


# ---------------------------------------------------------------- validation files, splits
def two_classes(path, n, seed, header=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    label = np.where(X[:, 0] > 0, "right", "left")
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "side": label}).to_csv(path, index=False,
                                                                      header=header)


def test_val_data_is_read_as_the_training_file_and_replaces_the_split(workdir, capfd):
    two_classes("train.csv", 60, 0)
    two_classes("val.csv", 25, 1)
    write_spec("s.yaml", target="side")
    code, _, err = bpcli_run(capfd, "train", "s.yaml", "--data", "train.csv", "--val-data",
                             "val.csv", "-q")
    assert code == 0, err
    assert "60 training and 25 validation samples from train.csv" in err
    entry = bpcli.load_spec("runs/t/spec.yaml").data["data"]
    assert entry["val_path"] == str(workdir / "val.csv") and entry["classes"] == ["left", "right"]
    summary = json.loads(Path("runs/t/summary.json").read_text())
    assert "val_accuracy" in summary["final"]


def test_a_spec_val_path_is_relative_to_the_spec_file(workdir, capfd):
    Path("proj").mkdir()
    two_classes("proj/train.csv", 40, 0)
    two_classes("proj/val.csv", 10, 1)
    write_spec("proj/s.yaml", target="side", path="train.csv", val_path="val.csv")
    code, _, err = bpcli_run(capfd, "train", "proj/s.yaml", "-q")
    assert code == 0, err
    assert "40 training and 10 validation samples" in err


def test_set_data_options_work_with_data(workdir, capfd):
    two_classes("train.csv", 40, 0)
    write_spec("s.yaml")  # no data entry at all
    code, _, err = bpcli_run(capfd, "train", "s.yaml", "--data", "train.csv", "--set",
                             "data.val_split=0", "--set", "data.target=side", "-q")
    assert code == 0, err
    assert "40 training and 0 validation samples" in err


def test_an_unshuffled_split_of_sorted_labels_is_warned_about(workdir, capfd):
    Path("sorted").mkdir()
    X = np.random.default_rng(0).standard_normal((50, 2))
    np.save("sorted/X.npy", X)
    np.save("sorted/y.npy", np.repeat([0, 1], 25))  # class-sorted: validation holds only class 1
    write_spec("s.yaml")
    code, _, err = bpcli_run(capfd, "train", "s.yaml", "--data", "sorted", "-q")
    assert code == 0, err
    assert ("bpcli: warning: sorted is memory-mapped, so it is split without shuffling "
            "(validation = the last 10 of 50 samples), and the validation part (the last 10) "
            "holds only label 1") in err
    assert "data.val_path or --val-data" in err
    np.save("sorted/y.npy", np.arange(50) % 2)  # interleaved: nothing to say
    code, _, err = bpcli_run(capfd, "train", "s.yaml", "--data", "sorted", "--out", "r2", "-q")
    assert code == 0 and "warning" not in err


# ---------------------------------------------------------------- bad tables
def _file(name, text, **spec_data):
    def setup():
        Path(name).write_bytes(text if isinstance(text, bytes) else text.encode())
        write_spec("s.yaml", **spec_data)
        return ["s.yaml", "--data", name]
    return setup


def _train_then_val(val_text, **spec_data):
    def setup():
        Path("train.csv").write_text("a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n7,8,dog\n")
        Path("val.csv").write_text(val_text)
        write_spec("s.yaml", **spec_data)
        return ["s.yaml", "--data", "train.csv", "--val-data", "val.csv"]
    return setup


BAD = {
    "more-fields-than-header-names": (
        _file("bc.csv", "3,2,malignant,benign\n1,2,3,4,5,0\n6,7,8,9,10,1\n"),
        ["bc.csv:2:", "line 2 has 6 fields", "header (line 1) has names (4: 3, 2, malignant, benign)",
         "data.header: false", "data.skip_rows: 1"]),
    "ragged-row-without-header": (
        _file("r.csv", "1,2,0\n3,4,1\n5,6,7,0\n", target=-1),
        ["r.csv:3:", "line 3 has 4 fields but line 1 has 3"]),
    "empty-cell": (_file("e.csv", "a,b,y\n1,2,0\n3,,1\n"), ["e.csv:3:", "column 'b'", "is empty"]),
    "missing-label": (_file("m.csv", "a,b,y\n1,2,0\n3,4,\n"),
                      ["m.csv:3:", "column 'y'", "label is missing"]),
    "duplicate-names": (_file("d.csv", "a,a,y\n1,2,0\n"), ["d.csv:1:", "a more than once"]),
    "target-out-of-range": (_file("o.csv", "1,2,0\n3,4,1\n", target=7),
                            ["o.csv", "data.target 7 is not a column position", "3 columns"]),
    "no-header-default-target": (_file("h.csv", "1,2,0\n3,4,1\n"),
                                 ["h.csv", "no label column 'y'", "no header row", "-1"]),
    "every-line-skipped": (_file("k.csv", "a,b,y\n1,2,0\n", skip_rows=5),
                           ["k.csv", "empty after the 5 skipped line(s)"]),
    "not-utf8": (_file("u.csv", b"a,b,y\n1,2,\xff\xfe\n"), ["u.csv", "not UTF-8"]),
    "class-unseen-in-training": (_train_then_val("a,b,y\n1,2,cat\n3,4,bird\n"),
                                 ["val.csv", "line 3: class 'bird'", "trained on", "cat, dog"]),
    "val-file-lacks-a-feature": (_train_then_val("a,y\n1,cat\n"),
                                 ["val.csv", "lacks feature column(s) b"]),
    "number-label-not-a-class-index": (
        _file("n.csv", "a,b,y\n1,2,0\n3,4,2\n", classes=["x", "z"]),
        ["n.csv", "line 3: label 2 is not a class index 0..1 of data.classes (x, z)"]),
    "class-count-for-a-file": (_file("c.csv", TABLE, classes=3),
                               ["s.yaml", "data.classes", "builtin: shapes", "class names"]),
    "bad-delimiter": (_file("t.csv", TABLE, delimiter="::"), ["s.yaml", "data.delimiter", "'::'"]),
    "val-data-without-data": (lambda: (write_spec("s.yaml", builtin="pulses"),
                                       Path("v.csv").write_text(TABLE))
                              and ["s.yaml", "--val-data", "v.csv"],
                              ["--val-data", "give --data FILE too"]),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_bad_table_is_one_clear_error(case, workdir, capfd):
    setup, fragments = BAD[case]
    code, out, err = bpcli_run(capfd, "train", *setup(), "-q")
    assert code == 2, err
    assert err.startswith("bpcli: error: ") and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err}"
    assert out == "" and not Path("runs").exists()


def test_a_builtin_and_a_path_together_are_refused():
    with pytest.raises(InputError, match="data: give one of builtin: NAME or path: FILE, not both"):
        bpcli.load_spec(spec(builtin="pulses", path="x.csv"))


# ---------------------------------------------------------------- scikit-learn's files
SKLEARN = {  # file, spec input, classes, data options, layers, epochs
    "iris": ("iris.csv", [4], 3, {"skip_rows": 1, "target": -1}, 100),
    "wine": ("wine_data.csv", [13], 3, {"skip_rows": 1, "target": -1}, 100),
    "breast_cancer": ("breast_cancer.csv", [30], 2, {"skip_rows": 1, "target": -1}, 100),
    "digits": ("digits.csv.gz", [1, 8, 8], 10, {"target": -1}, 20),
}


def held_out(name, folder: Path):
    """The scikit-learn file split 75/25 (stratified, seed 0) into two files of its own format,
    metadata line included: (train file, test file)."""
    from sklearn.model_selection import train_test_split

    import sklearn

    file, _, _, options, _ = SKLEARN[name]
    source = Path(sklearn.__file__).parent / "datasets" / "data" / file
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt") as f:
        lines = f.read().splitlines()
    meta, rows = lines[:options.get("skip_rows", 0)], lines[options.get("skip_rows", 0):]
    labels = [r.rsplit(",", 1)[1] for r in rows]
    train, test = train_test_split(np.arange(len(rows)), test_size=0.25, stratify=labels,
                                   random_state=0)
    paths = []
    for part, index in (("train", train), ("test", test)):
        path = folder / (f"{name}_{part}" + "".join(source.suffixes))
        with opener(path, "wt") as f:
            f.write("\n".join(meta + [rows[i] for i in sorted(index)]) + "\n")
        paths.append(path)
    return paths


def sklearn_spec(name) -> dict:
    _, shape, k, options, epochs = SKLEARN[name]
    layers = [{"dense": {"units": 32}}, "relu", {"dense": {"units": k}}]
    if len(shape) == 3:
        layers = [{"conv2d": {"channels": 16, "kernel": 3, "pad": "same"}}, "relu",
                  {"maxpool2d": {"size": 2}}, {"dense": {"units": 64}}, "relu",
                  {"dense": {"units": k}}]
    return {"name": name, "input": shape, "seed": 0, "preprocess": "standardize", "data": options,
            "layers": layers, "loss": "softmax_cross_entropy",
            "optimizer": {"name": "adam", "lr": 0.01 if len(shape) == 1 else 0.003},
            "training": {"epochs": epochs, "batch_size": 16 if len(shape) == 1 else 32}}


def mlp_accuracy(train, test) -> float:
    """scikit-learn's MLPClassifier (32 hidden units) on the same split, features standardized."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    def arrays(path):
        a = np.loadtxt(path, delimiter=",", skiprows=1 if path.suffix == ".csv" else 0)
        return a[:, :-1], a[:, -1].astype(int)

    (Xtr, ytr), (Xte, yte) = arrays(train), arrays(test)
    scaler = StandardScaler().fit(Xtr)
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1000, random_state=0)
    return mlp.fit(scaler.transform(Xtr), ytr).score(scaler.transform(Xte), yte)


@pytest.mark.parametrize("name", [
    "iris", *(pytest.param(n, marks=pytest.mark.slow) for n in ("wine", "breast_cancer", "digits"))])
def test_scikit_learns_files_train_as_they_are(name, workdir, capfd):
    train, test = held_out(name, workdir)
    Path("s.yaml").write_text(yaml.safe_dump(sklearn_spec(name), sort_keys=False))
    code, _, err = bpcli_run(capfd, "train", "s.yaml", "--data", train, "--val-data", test, "-q")
    assert code == 0, err
    accuracy = json.loads(Path(f"runs/{name}/summary.json").read_text())["final"]["val_accuracy"]
    reference = mlp_accuracy(train, test)
    n_test = len(pd.read_csv(test, header=None, skiprows=SKLEARN[name][3].get("skip_rows", 0)))
    # as good as scikit-learn's MLP on the held-out samples, give or take two of them
    assert accuracy >= reference - 2 / n_test, (accuracy, reference)


def test_class_names_as_text_in_npz_and_y_npy_are_classes(workdir):
    # y = np.array(["cat", "dog", ...]) is what np.savez gives for names: read as a CSV's names
    # are (sorted, or in data.classes' order); allow_pickle stays off (text is not an object)
    X = np.arange(12.0).reshape(6, 2)
    names = np.array(["dog", "cat", "bird"] * 2)
    np.savez("n.npz", X=X, y=names)
    Path("f").mkdir()
    np.save("f/X.npy", X)
    np.save("f/y.npy", names)
    for path in ("n.npz", "f"):
        d = read(path)
        assert d.classes == ["bird", "cat", "dog"] and d.y.tolist() == [2, 1, 0, 2, 1, 0]
        d = read(path, classes=["dog", "cat", "bird"])
        assert d.y.tolist() == [0, 1, 2, 0, 1, 2]
    np.savez("bad.npz", X=X, y=np.array([b"x"] * 6))
    with pytest.raises(InputError, match=r"array y has dtype \|S1; real numbers are needed "
                                         r"\(or, for y, class names as text\)"):
        read("bad.npz")
