"""What a run folder records is what happened: the validation data's fingerprint beside the
training data's (and resume refusing a changed validation file), ``--data`` replacing a builtin
set before ``--set`` is checked, and a NaN in metrics.csv read back, and drawn, apart from a
value that was never measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import cli, ok, tiny_spec


def table(path, n: int, seed: int, labels=("0", "1")) -> None:
    """A CSV of ``n`` samples: two features u, v and a label y (labels[0] left of u = 0,
    labels[1] right of it)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.where(X[:, 0] > 0, labels[1], labels[0])
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "y": y}).to_csv(path, index=False)


def file_spec(path, **overrides) -> None:
    """The tiny spec on 2 features from a file (no data entry: --data gives it), 1 epoch."""
    spec = {"input": [2], "data": None, "layers": [{"dense": {"units": 1}}],
            "training": {"epochs": 1, "batch_size": 8}, **overrides}
    Path(path).write_text(tiny_spec(**spec))


def folder_bytes(run) -> dict:
    return {p.name: p.read_bytes() for p in Path(run).iterdir() if p.is_file()}


def checkpoint_state(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["__state__"]))


# ---------------------------------------------------------------- 2. --data replaces a builtin set
def test_data_from_a_file_takes_a_class_list_set_on_a_builtin_spec(workdir, capsys):
    table("pets.csv", 48, 0, labels=("cat", "dog"))
    Path("s.yaml").write_text(tiny_spec(input=[2], layers=[{"dense": {"units": 2}}],
                                        loss="softmax_cross_entropy", training={"epochs": 1}))
    assert "builtin: pulses" in Path("s.yaml").read_text()
    # [dog, cat], not the sorted order reading would find: the set is what was applied
    ok(capsys, "train", "s.yaml", "--data", "pets.csv", "--set", "data.classes=[dog, cat]",
       "-q", "--out", "r")
    entry = yaml.safe_load(Path("r/spec.yaml").read_text())["data"]
    assert entry["classes"] == ["dog", "cat"] and entry["builtin"] is None
    assert entry["path"] == str(workdir / "pets.csv")


def test_a_class_list_on_a_builtin_set_without_data_is_still_refused(workdir, capsys):
    message = "a builtin set names its own classes; a list of class names is for data from a file"
    Path("s.yaml").write_text(tiny_spec())
    code, _, err = cli(capsys, "train", "s.yaml", "--set", "data.classes=[dog, cat]", "-q")
    assert code == 2 and "--set data.classes=[dog, cat]" in err and message in err
    Path("both.yaml").write_text(tiny_spec(data={"classes": ["dog", "cat"]}))
    for extra in ([], ["--data", "pets.csv"]):   # the spec itself is wrong, --data or not
        code, _, err = cli(capsys, "train", "both.yaml", *extra, "-q")
        assert code == 2 and "both.yaml" in err and "data.classes" in err and message in err
    assert not Path("runs").exists()
