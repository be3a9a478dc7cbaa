"""``bpcli init``'s templates for a newcomer's own data: the classifier template trains as written
and, on a CSV of class names, after only the edits its comments name; the cnn2d template's
comments name both ways in for pictures. (Every template validating, building and training is in
test_spec_ux.py.)"""

from __future__ import annotations

import json
import re

import numpy as np
import yaml

from bpcli.spec.templates import render

from helpers import cli, ok, pictures


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
    text = render("cnn2d", "cnn2d.yaml")
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for words in ("--data DIR", "one subfolder of pictures per class", "data.resize: true",
                  "--data images.npz", "(N, 1, 28, 28)"):
        assert words in comments, words
    units = re.search(r"bpcli train cnn2d.yaml --data DIR --set '([^']+)'", comments)[1]
    assert units == "layers[6].dense.units=2"  # 2 classes: cat and dog
    for kind in ("cat", "dog"):
        pictures(workdir / "pics" / kind, n=20, size=32)
    ok(capsys, "init", "--template", "cnn2d")
    code, _, err = cli(capsys, "train", "cnn2d.yaml", "--data", "pics", "--out", "run", "-q",
                       "--set", units)
    assert code == 2 and "data.resize: true" in err
    _, err = ok(capsys, "train", "cnn2d.yaml", "--data", "pics", "--out", "run", "-q", "--epochs",
                1, "--set", units, "--set", "data.resize=true")
    assert "32 training and 8 validation samples from pics" in err
