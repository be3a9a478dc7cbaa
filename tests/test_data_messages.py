"""What a newcomer's own data ran into, each refused as one paragraph that names the culprit and
what to do (exit code 2, no traceback, no run folder): a picture folder laid out by split, a class
misspelt on one row, a cell reading ``n/a``, a misspelt label column, a folder with nothing bpcli
reads in it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import cli, ok, pictures, tiny_spec

# Line numbers: 1 name  2 input  3 seed  4 layers:  5 dense 8  6 relu  7 dense 3  8 loss
CLASSIFIER = """\
name: messages
input: [2]
seed: 0
layers:
  - dense: {units: 8}
  - relu
  - dense: {units: 3}
loss: softmax_cross_entropy
optimizer: {name: adam, lr: 0.01}
training: {epochs: 1, batch_size: 8}
"""

PICTURES = """\
name: pictures
input: [1, 8, 8]
seed: 0
layers:
  - conv2d: {channels: 2, kernel: 3, pad: same}
  - relu
  - dense: {units: 2}
loss: softmax_cross_entropy
optimizer: {name: adam, lr: 0.01}
training: {epochs: 1, batch_size: 4}
"""


def refused(capfd, *args) -> str:
    """bpcli ARGS must exit 2 with one paragraph on stderr, nothing on stdout, no run folder."""
    code, out, err = cli(capfd, *args)
    assert code == 2, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert err.startswith("bpcli: error: ") and err.count("\n") == 1, err
    assert out == "" and not Path("runs").exists() and not Path("out").exists()
    return err


def animals(path: Path, odd: dict | None = None, n: int = 300) -> Path:
    """A CSV of ``n`` rows: columns height, weight and label (dog, cat, bird in turn); ``odd`` maps
    a data row (0-based) to the label it holds instead. Data row i is on line i + 2."""
    labels = np.resize(np.array(["dog", "cat", "bird"], dtype=object), n)
    for row, label in (odd or {}).items():
        labels[row] = label
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"height": rng.standard_normal(n), "weight": rng.standard_normal(n),
                  "label": labels}).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- 1. a folder laid out by split
def test_a_folder_of_train_and_val_folders_is_not_two_classes(workdir, capfd):
    """ds/train/<class>, ds/val/<class>: the classes are a level down; read as two classes
    "train" and "val", the outputs check would ask for 2 units and lock the mistake in."""
    for split in ("train", "val"):
        for kind in ("cat", "dog"):
            pictures(workdir / "ds" / split / kind)
    (workdir / "p.yaml").write_text(PICTURES)
    err = refused(capfd, "train", "p.yaml", "--data", "ds", "-q")
    assert "ds: " in err and "--data ds/train --val-data ds/val" in err, err
    assert "cat, dog" in err and "units" not in err
    # what it suggests trains
    ok(capfd, "train", "p.yaml", "--data", "ds/train", "--val-data", "ds/val", "-q", "--out", "r")


def test_class_folders_that_share_sub_folder_names_are_still_classes(workdir, capfd):
    """cat/{2019, 2020}, dog/{2019, 2020} has the shape of a split layout (first/{cat, dog}):
    only names tell them apart, so folders not named as splits stay classes."""
    for kind in ("cat", "dog"):
        for year in ("2019", "2020"):
            pictures(workdir / "ds" / kind / year)
    (workdir / "p.yaml").write_text(PICTURES)
    ok(capfd, "train", "p.yaml", "--data", "ds", "-q", "--out", "r")


def test_folders_named_with_a_split_word_are_a_split(workdir, capfd):
    for split in ("train_2020", "validation_2020"):
        for kind in ("cat", "dog"):
            pictures(workdir / "ds" / split / kind)
    (workdir / "p.yaml").write_text(PICTURES)
    err = refused(capfd, "train", "p.yaml", "--data", "ds", "-q")
    assert "--data ds/train_2020 --val-data ds/validation_2020" in err, err


def test_folders_named_as_splits_are_not_classes(workdir, capfd):
    """ds/train/*.png and ds/test/*.png: pictures without classes, in folders named as splits."""
    pictures(workdir / "ds" / "train")
    pictures(workdir / "ds" / "test")
    (workdir / "p.yaml").write_text(PICTURES)
    err = refused(capfd, "train", "p.yaml", "--data", "ds", "-q")
    assert "train, test" in err or "test, train" in err, err
    assert "--data ds/train --val-data ds/test" in err, err
    assert "one sub-folder of pictures per class" in err


def test_classes_with_sub_folders_of_their_own_are_still_classes(workdir, capfd):
    """cat/{siamese, persian}, dog/{poodle, pug}: pictures at any depth below a class folder."""
    for kind, breeds in (("cat", ("siamese", "persian")), ("dog", ("poodle", "pug"))):
        for breed in breeds:
            pictures(workdir / "ds" / kind / breed)
    (workdir / "p.yaml").write_text(PICTURES)
    ok(capfd, "train", "p.yaml", "--data", "ds", "-q", "--out", "r")


# ---------------------------------------------------------------- 2. a class misspelt on a row
def test_a_rare_class_is_named_with_its_line_and_the_class_it_looks_like(workdir, capfd):
    """One row of 'dgo' among 300 of dog, cat, bird: 4 classes for 3 outputs. Before "set units:
    4", the message names the rare class, its line and the likely class it misspells."""
    animals(workdir / "a.csv", {5: "dgo"})
    (workdir / "c.yaml").write_text(CLASSIFIER)
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    rare = "'dgo' appears on 1 row (line 7), like 'dog': a typo?"
    assert rare in err and "data.classes" in err, err
    assert "units: 4" in err and err.index(rare) < err.index("units: 4"), err


def test_two_rows_of_a_rare_class_name_both_lines(workdir, capfd):
    animals(workdir / "a.csv", {5: "brid", 40: "brid"})
    (workdir / "c.yaml").write_text(CLASSIFIER)
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "'brid' appears on 2 rows (lines 7, 42), like 'bird'" in err, err


def test_classes_that_are_all_common_are_not_called_typos(workdir, capfd):
    """4 classes of 75 rows each for 3 outputs: no class is rare, the units are what is wrong."""
    pd.DataFrame({"a": np.arange(300.0), "b": np.arange(300.0),
                  "label": np.resize(["dog", "cat", "bird", "fish"], 300)}).to_csv(
        workdir / "a.csv", index=False)
    (workdir / "c.yaml").write_text(CLASSIFIER)
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "typo" not in err and "units: 4" in err, err


def test_a_rare_class_folder_of_pictures_is_named_with_its_file(workdir, capfd):
    pictures(workdir / "ds" / "cat", 12)
    pictures(workdir / "ds" / "dog", 12)
    pictures(workdir / "ds" / "dgo", 1)
    (workdir / "p.yaml").write_text(PICTURES)
    err = refused(capfd, "train", "p.yaml", "--data", "ds", "-q")
    assert "'dgo' holds 1 picture (dgo/0.png), like 'dog': a typo?" in err, err


def test_a_label_outside_the_spec_classes_names_data_classes_at_train_time(workdir, capfd):
    """No run exists while training: the classes are the spec's data.classes."""
    animals(workdir / "a.csv", {5: "dgo"})
    (workdir / "c.yaml").write_text(CLASSIFIER)
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q",
                  "--set", "data.classes=[bird, cat, dog]")
    assert "a.csv: line 7: class 'dgo' is not one of data.classes (bird, cat, dog): did you mean " \
           "'dog'?" in err and "trained" not in err, err


# ---------------------------------------------------------------- 3. n/a and NA cells
def test_a_cell_reading_n_a_is_reported_as_its_text_and_its_place_once(workdir, capfd):
    animals(workdir / "a.csv")
    text = Path("a.csv").read_text().splitlines()
    height, _, label = text[5].split(",")
    text[5] = f"{height},n/a,{label}"  # line 6
    Path("a.csv").write_text("\n".join(text) + "\n")
    (workdir / "c.yaml").write_text(CLASSIFIER)
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "a.csv:6: line 6, column 'weight': 'n/a' is not a number" in err, err
    assert "is empty" not in err and "row 6" not in err and "of the file" not in err


def test_na_is_text_and_an_empty_cell_is_empty(workdir, capfd):
    (workdir / "c.yaml").write_text(CLASSIFIER)
    Path("a.csv").write_text("height,weight,label\n1,2,dog\n3,NA,cat\n")
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "a.csv:3: line 3, column 'weight': 'NA' is not a number" in err, err
    Path("a.csv").write_text("height,weight,label\n1,2,dog\n3,,cat\n")
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "a.csv:3: line 3, column 'weight': the cell is empty" in err, err


def test_a_label_reading_n_a_is_named_as_written(workdir, capfd):
    (workdir / "c.yaml").write_text(CLASSIFIER)
    Path("a.csv").write_text("height,weight,label\n1,2,dog\n3,4,n/a\n")
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "a.csv:3: line 3, column 'label': the label is missing ('n/a')" in err, err


def test_an_infinite_cell_is_named_by_its_line_and_column(workdir, capfd):
    # 'inf' reads as a number, so it got past the cell check and was refused later by sample
    # index ("X has a non-finite value inf at sample 1, position [1]"), which a user must map back
    (workdir / "c.yaml").write_text(CLASSIFIER)
    Path("a.csv").write_text("height,weight,label\n1,2,dog\n3,inf,cat\n")
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert "a.csv:3: line 3, column 'weight': inf is not a finite number" in err, err
    # a regression target: the same, as a target
    (workdir / "r.yaml").write_text(CLASSIFIER.replace("units: 3", "units: 1")
                                    .replace("softmax_cross_entropy", "mse"))
    Path("r.csv").write_text("height,weight,size\n1,2,0.5\n3,4,0.25\n5,6,-1e999\n")
    err = refused(capfd, "train", "r.yaml", "--data", "r.csv", "--target", "size", "-q")
    assert "r.csv:4: line 4, column 'size': the target -inf is not a finite number" in err, err


def test_a_class_named_none_is_a_class_once_data_classes_lists_it(workdir, capfd):
    # 'None' or 'NA' reads as a missing label (pandas' missing-value texts), unless the spec
    # declares it a class: a "no finding" class named None must be trainable
    (workdir / "c.yaml").write_text(CLASSIFIER.replace("units: 3", "units: 2"))
    Path("a.csv").write_text("height,weight,label\n" + "1,2,cat\n3,4,None\n" * 8)
    err = refused(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q")
    assert ("a.csv:3: line 3, column 'label': the label is missing ('None'); give every row a "
            "label, or drop the row (if 'None' is a class, list the classes in data.classes)"
            in err), err
    ok(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label", "-q",
       "--set", "data.classes=[cat, None]", "--out", "run")
    code, out, err = cli(capfd, "eval", "run", "--data", "a.csv", "--json")
    assert code == 0, err
    assert sorted(json.loads(out)["per_class"]) == ["None", "cat"], out


def test_decimal_commas_are_named_and_read_with_data_decimal(workdir, capfd):
    # European spreadsheets write 3,14 with fields apart by ; : the delimiter is sniffed right,
    # and the first such cell says which option reads it
    (workdir / "c.yaml").write_text(CLASSIFIER.replace("units: 3", "units: 2"))
    Path("eu.csv").write_text("height;weight;label\n" + "1,5;-0,352;cat\n3;2,25;dog\n" * 6)
    err = refused(capfd, "train", "c.yaml", "--data", "eu.csv", "--target", "label", "-q")
    assert ("eu.csv:2: line 2, column 'height': '1,5' is not a number: if the file writes "
            "decimal commas, set data.decimal: ','") in err, err
    ok(capfd, "train", "c.yaml", "--data", "eu.csv", "--target", "label", "-q", "--out", "run",
       "--set", "data.decimal=','")
    code, out, err = cli(capfd, "predict", "run", "--data", "eu.csv", "--json")
    assert code == 0 and len(json.loads(out)) == 12, err
    from bpcli.train.tables import read_table
    from bpcli.train.data import options
    t = read_table(Path("eu.csv"), options(decimal=",", target="label"), labels="required",
                   source="eu.csv", notes=[])
    assert t.X[:2].tolist() == [[1.5, -0.352], [3.0, 2.25]]
    err = refused(capfd, "train", "c.yaml", "--data", "eu.csv", "--target", "label", "-q",
                  "--set", "data.decimal=','", "--set", "data.delimiter=','")
    assert "data.decimal ',' is also the field delimiter" in err, err
    # one column: nothing to sniff a delimiter from, and the decimal mark is not taken for one
    Path("one.csv").write_text("x\n3,14\n2,5\n")
    t = read_table(Path("one.csv"), options(decimal=","), labels="none", source="one.csv",
                   notes=[])
    assert t.X[:, 0].tolist() == [3.14, 2.5]


def test_a_header_that_looks_like_a_data_row_gets_a_note(workdir, capfd):
    # no header line, text labels: line 1 is not all numbers, but its text stands above the
    # text of the lines below and its numbers above numbers (csv.Sniffer.has_header's test), so
    # it is a row of data (UCI's iris.data is so), and a note says how to say otherwise
    (workdir / "c.yaml").write_text(CLASSIFIER.replace("units: 3", "units: 2"))
    Path("a.csv").write_text("1.5,2,cat\n" + "3,4,dog\n1,2,cat\n" * 6)
    code, out, err = cli(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "-1", "-q",
                         "--out", "run")
    assert code == 0, err
    assert ("a.csv: line 1 (1.5, 2, cat) read as data, not column names: its text stands above "
            "columns of text and its numbers above numbers") in err
    assert "10 training and 3 validation samples" in err   # 13 rows: none taken for names
    # a name above a column of numbers: a header, though its other fields are numbers
    (workdir / "r.yaml").write_text(CLASSIFIER.replace("units: 3", "units: 1")
                                    .replace("softmax_cross_entropy", "mse"))
    Path("n.csv").write_text("1.5,2,size\n" + "3,4,0.5\n1,2,0.25\n" * 6)
    code, out, err = cli(capfd, "train", "r.yaml", "--data", "n.csv", "--target", "-1", "-q",
                         "--out", "run1")
    assert code == 0, err
    assert ("n.csv: line 1 (1.5, 2, size) read as column names, though all but one of its fields "
            "are numbers: if it is a row of data with a text label, set data.header: false") in err
    Path("b.csv").write_text("height,weight,label\n" + "3,4,dog\n1,2,cat\n" * 6)
    code, out, err = cli(capfd, "train", "c.yaml", "--data", "b.csv", "--target", "-1", "-q",
                         "--out", "run2")
    assert code == 0 and "read as column names" not in err, err


def test_a_small_data_set_trains_with_the_default_batch_size_and_says_so(workdir, capfd):
    # 10 training samples and the default batch_size 32 (not written in the spec): every step
    # takes all 10, as PyTorch's DataLoader would, with a note (it was refused at a key the spec
    # does not hold)
    (workdir / "c.yaml").write_text(CLASSIFIER.replace("units: 3", "units: 2")
                                    .replace(", batch_size: 8", ""))
    Path("a.csv").write_text("height,weight,label\n" + "1,2,cat\n3,4,dog\n" * 6)
    code, out, err = cli(capfd, "train", "c.yaml", "--data", "a.csv", "--target", "label",
                         "-q", "--out", "run")
    assert code == 0, err
    assert ("note: training.batch_size 32 is more than the 10 training samples: every step "
            "takes all 10") in err, err
    assert json.loads(Path("run/summary.json").read_text())["steps"] == 1
    # one sample: val_split holds none out, and says what that means
    Path("one.csv").write_text("height,weight,label\n1,2,cat\n")
    code, out, err = cli(capfd, "train", "c.yaml", "--data", "one.csv", "--target", "label",
                         "-q", "--out", "run1", "--set", "data.classes=[cat, dog]")
    assert ("note: data.val_split 0.2 of 1 samples holds none out: no validation metrics"
            in err), (code, err)


# ---------------------------------------------------------------- 4. a misspelt label column
def test_a_misspelt_target_column_gets_a_suggestion(workdir, capfd):
    (workdir / "c.yaml").write_text(CLASSIFIER)
    Path("iris.csv").write_text("length,width,species\n1,2,setosa\n3,4,virginica\n")
    err = refused(capfd, "train", "c.yaml", "--data", "iris.csv", "--target", "specie", "-q")
    assert "no label column 'specie' (did you mean 'species'?)" in err, err


# ---------------------------------------------------------------- 5. a folder with nothing to read
def test_an_empty_folder_says_what_a_data_folder_holds_and_is_named_as_typed(workdir, capfd):
    (workdir / "c.yaml").write_text(CLASSIFIER)
    (workdir / "data" / "empty").mkdir(parents=True)
    err = refused(capfd, "train", "c.yaml", "--data", "data/empty", "-q")
    assert "bpcli: error: data/empty: " in err and str(workdir) not in err, err
    assert "X.npy" in err and "y.npy" in err and "one sub-folder of pictures per class" in err


def test_a_folder_outside_the_working_folder_is_named_as_typed(workdir, capfd, monkeypatch):
    (workdir / "c.yaml").write_text(CLASSIFIER)
    (workdir / "empty").mkdir()
    (workdir / "inner").mkdir()
    monkeypatch.chdir(workdir / "inner")
    err = refused(capfd, "train", "../c.yaml", "--data", "../empty", "-q")
    assert "bpcli: error: ../empty: " in err and str(workdir) not in err, err


def test_a_folder_of_tables_points_at_the_files(workdir, capfd):
    (workdir / "c.yaml").write_text(CLASSIFIER)
    animals(workdir / "data" / "train.csv")
    err = refused(capfd, "train", "c.yaml", "--data", "data", "-q")
    assert "train.csv" in err and "--data data/train.csv" in err, err


def test_eval_of_a_table_without_labels_points_to_predict(workdir, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "y": np.where(X[:, 0] > 0, "b", "a")}).to_csv(
        "t.csv", index=False)
    pd.DataFrame({"u": X[:5, 0], "v": X[:5, 1]}).to_csv("new.csv", index=False)
    Path("s.yaml").write_text(tiny_spec(input=[2], data=None, layers=[{"dense": {"units": 2}}],
                                        loss="softmax_cross_entropy", training={"epochs": 1}))
    ok(capsys, "train", "s.yaml", "--data", "t.csv", "-q", "--out", "r")
    code, _, err = cli(capsys, "eval", "r", "--data", "new.csv")
    assert code == 2 and "holds the run's feature columns (u, v) but no label column 'y'" in err
    assert "use bpcli predict RUN --data new.csv" in err
    ok(capsys, "predict", "r", "--data", "new.csv")
