"""``bpcli eval`` and ``bpcli predict``: the metrics against scikit-learn, every field each kind of
loss adds (read from its ``LossDef``: ``classifier``, ``classifier.score``, ``regressor``), the
checkpoint chosen, the pictures, the refusal to score training data as if it were held out,
predict's rows, chunking, and bad input."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import bpcli
from bpcli.cli import main
from bpcli.explain import metrics, score_plots
from bpcli.nn.losses import LOSSES
from bpcli.core.fields import Invalid
from bpcli.train import evaluate
from bpcli.train.data import Dataset
from helpers import PNG_MAGIC, bad, cli, ok, tiny_spec

N, FEATURES = 40, 4


# ---------------------------------------------------------------- the metrics vs scikit-learn
@pytest.fixture
def sklearn():
    """scikit-learn, the reference the metrics are checked against: only those tests ask for it."""
    return pytest.importorskip("sklearn.metrics")


def _classes(seed, n=200, k=4):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    # mostly right, and class k-1 never predicted: zero_division matters
    predicted = np.where((rng.random(n) < 0.6) & (truth < k - 1), truth, rng.integers(0, k - 1, n))
    return truth, predicted, k


@pytest.mark.parametrize("seed", range(5))
def test_confusion_and_per_class_scores_are_scikit_learns(sklearn, seed):
    truth, predicted, k = _classes(seed)
    cm = metrics.confusion_matrix(truth, predicted, k)
    np.testing.assert_array_equal(cm, sklearn.confusion_matrix(truth, predicted, labels=range(k)))
    p, r, f, s = sklearn.precision_recall_fscore_support(truth, predicted, labels=range(k),
                                                         zero_division=0)
    ours = metrics.per_class(cm)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    np.testing.assert_array_equal(ours["support"], s)
    assert ours["precision"][k - 1] == 0.0  # never predicted: 0, not nan
    assert metrics.macro_f1(cm) == pytest.approx(
        sklearn.f1_score(truth, predicted, labels=range(k), average="macro", zero_division=0))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_by_ranks_is_scikit_learns_with_ties(sklearn, seed):
    rng = np.random.default_rng(seed)
    positive = rng.random(300) < 0.3
    score = np.round(positive * 0.8 + rng.standard_normal(300), 1)  # rounded: many ties
    assert len(np.unique(score)) < 300
    assert metrics.roc_auc(positive, score) == pytest.approx(
        sklearn.roc_auc_score(positive, score), abs=1e-12)


def test_roc_auc_written_out_and_undefined_with_one_class():
    # positives 0.8, 0.4; negatives 0.4, 0.1: of the 4 pairs, 3 won and 1 tied -> 3.5 / 4
    assert metrics.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == 0.875
    assert metrics.ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]) is None


def _probabilities(seed, n=300, k=4):
    # softmax of class scores that lean towards the truth, rounded to 2 digits: many ties
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    f = rng.standard_normal((n, k)) + 1.5 * np.eye(k)[truth]
    e = np.exp(f)
    return truth, np.round(e / e.sum(axis=1, keepdims=True), 2)


@pytest.mark.parametrize("seed", range(5))
def test_one_vs_rest_and_macro_roc_auc_are_scikit_learns(sklearn, seed):
    truth, p = _probabilities(seed)
    p = p / p.sum(axis=1, keepdims=True)  # scikit-learn wants rows summing to 1
    each = metrics.roc_auc_one_vs_rest(truth, p)
    for k in range(p.shape[1]):
        assert each[k] == pytest.approx(sklearn.roc_auc_score(truth == k, p[:, k]), abs=1e-12)
    assert metrics.macro_roc_auc(each) == pytest.approx(
        sklearn.roc_auc_score(truth, p, multi_class="ovr", average="macro"), abs=1e-12)


def test_a_class_absent_from_the_labels_has_no_auc_and_is_left_out_of_the_mean():
    # class 2 never occurs: no positives, no area. Class 0: its positives 0.7, 0.6 against its
    # negatives 0.2, 0.5, 0.6 win 5 pairs and tie 1 -> 5.5 / 6; class 1 ranks by column 1
    truth = np.array([0, 0, 1, 1, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1],
                  [0.6, 0.3, 0.1]])
    each = metrics.roc_auc_one_vs_rest(truth, p)
    assert each[0] == pytest.approx(5.5 / 6)
    # class 1: positives 0.7, 0.4, 0.3 against negatives 0.2, 0.3: 5 won, 1 tied -> 5.5 / 6
    assert each[1] == pytest.approx(5.5 / 6)
    assert each[2] is None
    assert metrics.macro_roc_auc(each) == pytest.approx(5.5 / 6)  # (each[0] + each[1]) / 2
    assert metrics.macro_roc_auc([None, None]) is None
    # one class alone: no negatives anywhere, so no class has an area
    assert metrics.roc_auc_one_vs_rest([1, 1], p[:2]) == [None, None, None]


@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_scores_are_scikit_learns(sklearn, outputs):
    rng = np.random.default_rng(outputs)
    truth = rng.standard_normal((50, outputs)) * [1, 10, 0.1][:outputs]
    predicted = truth + 0.5 * rng.standard_normal(truth.shape)
    assert metrics.mae(truth, predicted) == pytest.approx(sklearn.mean_absolute_error(truth, predicted))
    assert metrics.rmse(truth, predicted) == pytest.approx(
        sklearn.root_mean_squared_error(truth, predicted))
    assert metrics.r2(truth, predicted) == pytest.approx(sklearn.r2_score(truth, predicted))
    constant = np.ones((5, 1))
    assert metrics.r2(constant, constant) == sklearn.r2_score(constant, constant) == 1.0
    assert metrics.r2(constant, constant + 1) == sklearn.r2_score(constant, constant + 1) == 0.0


# ---------------------------------------------------------------- one trained run per loss
def outputs_for(loss_def) -> int:
    """3 outputs where the loss takes them (K classes, or 3 targets), else the 1 it needs."""
    try:
        loss_def.check_output((None, 3))
        return 3
    except Invalid:
        return 1


def expected_keys(loss_def) -> set:
    """eval --json's keys, from the loss's facts alone."""
    keys = {"loss", "n", "data", "checkpoint"}
    if loss_def.classifier is not None:
        keys |= {"accuracy", "classes", "confusion_matrix", "per_class", "macro_f1"}
        if loss_def.classifier.score is not None or loss_def.classifier.probabilities is not None:
            keys.add("roc_auc")
    if loss_def.regressor:
        keys |= {"mae", "rmse", "r2"}
    return keys


def expected_class_keys(loss_def, k) -> set:
    """The keys of each class in eval --json's per_class: with K > 2 class probabilities and no
    binary score (softmax), each class's one-vs-rest roc_auc too."""
    clf = loss_def.classifier
    keys = {"precision", "recall", "f1", "support"}
    if clf.score is None and clf.probabilities is not None and k > 2:
        keys.add("roc_auc")
    return keys


def expected_columns(loss_def, classes) -> list:
    clf = loss_def.classifier
    if clf is None:
        k = outputs_for(loss_def)
        return ["output"] if k == 1 else [f"output_{i}" for i in range(k)]
    if clf.probabilities is None:
        return ["prediction", "score"]
    k = outputs_for(loss_def)
    if k > 1 and clf.probabilities(np.zeros((1, k))).shape[1] == 2 * k:
        # multi-label (sigmoid_cross_entropy on K outputs): a yes/no answer and P(yes) per output
        return [*(f"prediction_{j}" for j in range(k)), *(f"p_{j}" for j in range(k))]
    shown = classes[1:] if clf.score is not None else classes  # binary: the positive class's
    return ["prediction", *(f"p_{c}" for c in shown)]


def train_on_random(root: Path, name: str, loss: str, k: int):
    """A run of the ``loss`` with ``k`` outputs trained 2 epochs on random inputs with labels its
    LossDef draws, and a data file of N samples (X, y) to score: (run folder, data file)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, FEATURES))
    y = LOSSES[loss].example_labels(rng, N, (None, k))
    data = root / f"{name}.npz"
    np.savez(data, X=X, **({} if y is None else {"y": y}))
    spec = root / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({
        "name": name, "input": [FEATURES], "seed": 0,
        "data": {"path": str(data), "val_split": 0.25},
        "layers": [{"dense": {"units": 8}}, "relu", {"dense": {"units": k}}],
        "loss": loss, "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 2, "batch_size": 10}}))
    assert main(["train", str(spec), "--out", str(root / name), "-q"]) == 0
    return root / name, data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """For each loss: :func:`train_on_random` with 3 outputs where the loss takes them."""
    root = tmp_path_factory.mktemp("losses")
    return {name: train_on_random(root, name, name, outputs_for(loss_def))
            for name, loss_def in LOSSES.items()}


@pytest.mark.parametrize("name", list(LOSSES))
def test_eval_json_has_every_field_of_its_kind_of_loss(name, runs, capfd):
    run, data = runs[name]
    loss_def = LOSSES[name]
    out, _ = ok(capfd, "eval", run, "--data", data, "--json")
    s = json.loads(out)
    assert set(s) == expected_keys(loss_def)
    assert s["n"] == N and s["checkpoint"] == "final" and s["data"] == str(data)
    model = bpcli.load_run(run)
    d = np.load(data)
    y = d["y"] if "y" in d.files else None
    assert s["loss"] == pytest.approx(model.loss(d["X"], y), rel=1e-5)
    clf = loss_def.classifier
    if clf is not None:
        _, prepared = model.prepare(d["X"], y)
        truth, predicted = clf.truth(prepared), clf.decide(model.forward(d["X"]))
        k = len(s["classes"])
        assert s["classes"] == (["-1", "+1"] if clf.score is not None
                                else [str(i) for i in range(k)])
        cm = [[int(np.sum((truth == i) & (predicted == j))) for j in range(k)] for i in range(k)]
        assert s["confusion_matrix"] == cm
        assert s["accuracy"] == pytest.approx(model.accuracy(d["X"], y))
        assert list(s["per_class"]) == s["classes"]
        assert [c["support"] for c in s["per_class"].values()] == [sum(row) for row in cm]
        for c in s["per_class"].values():
            assert set(c) == expected_class_keys(loss_def, k)
        assert s["macro_f1"] == pytest.approx(np.mean([c["f1"] for c in s["per_class"].values()]))
        if clf.score is not None:
            assert s["roc_auc"] == pytest.approx(
                metrics.roc_auc(truth == 1, model.forward(d["X"])[:, 0]))
    else:
        assert "roc_auc" not in s  # a regression (or sum_squares) run has no classes to rank
    if loss_def.regressor:
        f = model.forward(d["X"]).astype(float)
        assert s["mae"] == pytest.approx(np.abs(f - y).mean(), rel=1e-6)
        assert s["rmse"] == pytest.approx(np.sqrt(((f - y) ** 2).mean(axis=0)).mean(), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_eval_text_shows_the_same_scores(name, runs, capfd):
    run, data = runs[name]
    s = json.loads(ok(capfd, "eval", run, "--data", data, "--json")[0])
    out, _ = ok(capfd, "eval", run, "--data", data)
    assert f"loss {s['loss']:.6g} on {N} samples (checkpoint final)" in out
    if "classes" in s:
        assert f"accuracy {s['accuracy']:.4f}" in out and "per class" in out
        assert "confusion matrix" in out and all(c in out for c in s["classes"])
    if s.get("roc_auc") is not None:
        assert f"ROC AUC {s['roc_auc']:.4f}" in out
    if "r2" in s:
        assert f"R² {s['r2']:.4f}" in out


@pytest.mark.parametrize("name", list(LOSSES))
def test_predict_csv_columns_rows_and_order(name, runs, capfd):
    run, data = runs[name]
    loss_def = LOSSES[name]
    model = bpcli.load_run(run)
    X = np.load(data)["X"]
    out, _ = ok(capfd, "predict", run, "--data", data)
    df = pd.read_csv(StringIO(out), dtype={"prediction": str})  # stdout holds the CSV and only it
    assert list(df.columns) == expected_columns(loss_def, model.classes())
    assert len(df) == N
    p = model.predict(X)
    f = model.forward(X)
    if loss_def.classifier is None:
        np.testing.assert_allclose(df.to_numpy(), f.reshape(N, -1), rtol=1e-6)
        return
    if "prediction" not in df:   # multi-label: each output its own yes/no, P(yes) = sigmoid
        k = f.shape[1]
        decided = loss_def.classifier.decide(f)
        for j in range(k):
            assert df[f"prediction_{j}"].astype(int).tolist() == decided[:, j].tolist()
            np.testing.assert_allclose(df[f"p_{j}"], 1 / (1 + np.exp(-f[:, j])), rtol=1e-6)
        return
    assert df["prediction"].tolist() == [model.classes()[i] for i in loss_def.classifier.decide(f)]
    assert df["prediction"].tolist() == p.labels.tolist()
    if p.probabilities is not None:
        np.testing.assert_allclose(p.probabilities.sum(axis=1), 1.0, rtol=1e-6)
        for k, c in enumerate(p.classes):
            if f"p_{c}" in df:
                np.testing.assert_allclose(df[f"p_{c}"], p.probabilities[:, k], rtol=1e-6)


def _eval_json(capfd, run, data) -> dict:
    return json.loads(ok(capfd, "eval", run, "--data", data, "--json")[0])


@pytest.fixture(scope="module")
def softmax_2(tmp_path_factory):
    """A softmax_cross_entropy run over 2 classes (:func:`train_on_random`)."""
    return train_on_random(tmp_path_factory.mktemp("softmax_2"), "softmax_2",
                           "softmax_cross_entropy", 2)


def test_eval_of_two_class_softmax_is_scikit_learns_auc_of_the_second_class(sklearn, softmax_2,
                                                                           capfd):
    run, data = softmax_2
    d = np.load(data)
    p = bpcli.load_run(run).predict(d["X"]).probabilities
    s = _eval_json(capfd, run, data)
    assert s["roc_auc"] == pytest.approx(sklearn.roc_auc_score(d["y"], p[:, 1]), abs=1e-12)
    assert all(set(c) == {"precision", "recall", "f1", "support"}
               for c in s["per_class"].values())  # 2 classes: one area, no per-class column
    assert f"ROC AUC {s['roc_auc']:.4f}" in ok(capfd, "eval", run, "--data", data)[0]


def test_eval_of_three_class_softmax_is_scikit_learns_macro_one_vs_rest(sklearn, runs, capfd):
    run, data = runs["softmax_cross_entropy"]
    d = np.load(data)
    p = bpcli.load_run(run).predict(d["X"]).probabilities.astype(float)
    assert set(d["y"]) == {0, 1, 2}
    s = _eval_json(capfd, run, data)
    assert s["roc_auc"] == pytest.approx(
        sklearn.roc_auc_score(d["y"], p, multi_class="ovr", average="macro"), abs=1e-12)
    for k, name in enumerate(s["classes"]):
        assert s["per_class"][name]["roc_auc"] == pytest.approx(
            sklearn.roc_auc_score(d["y"] == k, p[:, k]), abs=1e-12)


def test_eval_of_softmax_without_a_class_in_the_labels_averages_the_others(runs, capfd,
                                                                           tmp_path):
    run, data = runs["softmax_cross_entropy"]
    d = np.load(data)
    keep = d["y"] != 2
    two = tmp_path / "no_class_2.npz"
    np.savez(two, X=d["X"][keep], y=d["y"][keep])
    p = bpcli.load_run(run).predict(d["X"][keep]).probabilities
    s = _eval_json(capfd, run, two)
    y = d["y"][keep]
    each = [metrics.roc_auc(y == k, p[:, k]) for k in (0, 1)]
    assert [s["per_class"][c]["roc_auc"] for c in ("0", "1")] == pytest.approx(each)
    assert s["per_class"]["2"]["roc_auc"] is None  # null in the JSON: no sample of class 2
    assert s["roc_auc"] == pytest.approx(np.mean(each))
    text = ok(capfd, "eval", run, "--data", two)[0]
    assert "ROC AUC (one vs rest)" in text and f"{each[0]:.4g}" in text
    assert "left out (not in the labels): 2" in text


def test_prediction_of_the_python_api(runs):
    model = bpcli.load_run(runs["softmax_cross_entropy"][0])
    X = np.load(runs["softmax_cross_entropy"][1])["X"]
    p = model.predict(X)
    f = model.forward(X)
    softmax = np.exp(f) / np.exp(f).sum(axis=1, keepdims=True)
    assert p.classes == ["0", "1", "2"] and p.output.shape == (N, 3)
    np.testing.assert_allclose(p.probabilities, softmax, rtol=1e-5)
    assert p.labels.tolist() == [str(i) for i in f.argmax(axis=1)]

    logistic = bpcli.load_run(runs["logistic"][0])
    p = logistic.predict(X)
    f = logistic.forward(X)[:, 0]
    np.testing.assert_allclose(p.probabilities[:, 1], 1 / (1 + np.exp(-f)), rtol=1e-5)
    assert p.labels.tolist() == ["+1" if v > 0 else "-1" for v in f]

    mse = bpcli.load_run(runs["mse"][0])
    p = mse.predict(X)
    assert p.classes is None and p.probabilities is None
    np.testing.assert_array_equal(p.labels, mse.forward(X))


def test_predict_json_and_out_file(runs, capfd, workdir):
    run, data = runs["softmax_cross_entropy"]
    rows = json.loads(ok(capfd, "predict", run, "--data", data, "--json")[0])
    csv_out, _ = ok(capfd, "predict", run, "--data", data)
    table = pd.read_csv(StringIO(csv_out), dtype={"prediction": str})
    assert len(rows) == N and list(rows[0]) == list(table.columns)
    assert [r["prediction"] for r in rows] == table["prediction"].tolist()
    np.testing.assert_allclose([r["p_1"] for r in rows], table["p_1"], rtol=1e-6)

    out, err = ok(capfd, "predict", run, "--data", data, "--out", "sub/preds.csv")
    assert out == "" and "sub/preds.csv" in err
    assert (workdir / "sub" / "preds.csv").read_text() == csv_out
    assert [p.name for p in (workdir / "sub").iterdir()] == ["preds.csv"]  # no temp file left


def test_a_label_column_is_ignored_and_may_be_missing(runs, capfd, workdir):
    run, data = runs["mse"]
    d = np.load(data)
    names = [f"x{i}" for i in range(FEATURES)]
    pd.DataFrame(d["X"], columns=names).assign(y=d["y"][:, 0]).to_csv("with.csv", index=False)
    pd.DataFrame(d["X"], columns=names).to_csv("without.csv", index=False)
    with_label = ok(capfd, "predict", run, "--data", "with.csv")[0]
    without = ok(capfd, "predict", run, "--data", "without.csv")[0]
    from_npz = ok(capfd, "predict", run, "--data", data)[0]
    assert with_label == without
    np.testing.assert_allclose(pd.read_csv(StringIO(without)), pd.read_csv(StringIO(from_npz)),
                               rtol=1e-6)


def test_chunks_smaller_than_the_data_give_the_same_rows_and_scores(runs):
    run, data = runs["softmax_cross_entropy"]
    model = bpcli.load_run(run)
    d = np.load(data)
    dataset = Dataset(d["X"], d["y"], str(data))
    whole = pd.concat(evaluate.prediction_rows(model, dataset))
    frames = list(evaluate.prediction_rows(model, dataset, chunk=7))
    assert [len(f) for f in frames] == [7] * 5 + [5]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole.reset_index(drop=True))
    # the same numbers, up to float32 rounding (BLAS sums a batch of another size in another order)
    np.testing.assert_allclose(model.predict(d["X"], batch_size=3).output,
                               model.predict(d["X"]).output, rtol=1e-6, atol=1e-6)
    by_7, at_once = evaluate.evaluate(model, dataset, chunk=7), evaluate.evaluate(model, dataset)
    assert by_7.scores["loss"] == pytest.approx(at_once.scores["loss"], rel=1e-6)
    assert by_7.scores["confusion_matrix"] == at_once.scores["confusion_matrix"]


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_best_reads_best_npz(runs, capfd, workdir):
    run, data = runs["logistic"]
    copy = workdir / "run"
    shutil.copytree(run, copy)
    fresh = bpcli.build(copy / "spec.yaml")  # untrained weights as best.npz: unlike model.npz
    fresh.save(copy / "best.npz")
    d = np.load(data)
    final = json.loads(ok(capfd, "eval", copy, "--data", data, "--json")[0])
    best = json.loads(ok(capfd, "eval", copy, "--data", data, "--json", "--checkpoint", "best")[0])
    assert best["checkpoint"] == "best" and final["checkpoint"] == "final"
    assert best["loss"] == pytest.approx(fresh.loss(d["X"], d["y"]), rel=1e-5)
    assert final["loss"] == pytest.approx(bpcli.load_run(copy).loss(d["X"], d["y"]), rel=1e-5)
    assert best["loss"] != pytest.approx(final["loss"], rel=1e-5)
    rows = pd.read_csv(StringIO(ok(capfd, "predict", copy, "--data", data, "--checkpoint",
                                   "best")[0]))
    np.testing.assert_allclose(rows["p_+1"], fresh.predict(d["X"]).probabilities[:, 1], rtol=1e-5)


# ---------------------------------------------------------------- validation split or nothing
def test_eval_scores_the_validation_split_and_says_so(capfd, workdir):
    Path("tiny.yaml").write_text(tiny_spec())  # 200 samples, val_split 0.25
    ok(capfd, "train", "tiny.yaml", "-q")
    run = workdir / "runs" / "tiny-pulses"
    out, _ = ok(capfd, "eval", run)
    assert out.startswith("the validation split of builtin pulses") and "on 50 samples" in out
    s = json.loads(ok(capfd, "eval", run, "--json")[0])
    summary = json.loads((run / "summary.json").read_text())["final"]
    assert s["n"] == 50 and s["data"].startswith("the validation split")
    assert s["loss"] == pytest.approx(summary["val_loss"], rel=1e-5)
    assert s["accuracy"] == pytest.approx(summary["val_accuracy"])


def test_eval_without_validation_data_is_an_error_not_the_training_data(capfd, workdir):
    Path("all.yaml").write_text(tiny_spec(name="all", data={"val_split": 0}))
    ok(capfd, "train", "all.yaml", "-q")
    run = workdir / "runs" / "all"
    err = bad(capfd, "eval", run)
    assert "no validation data" in err and "data.val_split" in err and "--data" in err
    assert "spec.yaml" in err
    np.savez("other.npz", X=np.random.default_rng(1).standard_normal((30, 32)), y=np.ones(30))
    assert json.loads(ok(capfd, "eval", run, "--data", "other.npz", "--json")[0])["n"] == 30


# ---------------------------------------------------------------- pictures
def test_eval_plot_draws_the_confusion_matrix(runs, capfd, workdir):
    run, data = runs["softmax_cross_entropy"]
    _, err = ok(capfd, "eval", run, "--data", data, "--plot", "cm.png")
    assert Path("cm.png").read_bytes()[:8] == PNG_MAGIC and "cm.png" in err
    s = json.loads(ok(capfd, "eval", run, "--data", data, "--json")[0])
    fig = score_plots.confusion_figure(s["confusion_matrix"], s["classes"])
    counts, share = fig.axes
    assert len(fig.axes) == 2
    for ax in (counts, share):
        assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
        assert [t.get_text() for t in ax.get_xticklabels()] == s["classes"]
        assert [t.get_text() for t in ax.get_yticklabels()] == s["classes"]
    np.testing.assert_array_equal(counts.images[0].get_array(), s["confusion_matrix"])
    rows = np.asarray(s["confusion_matrix"], dtype=float)
    np.testing.assert_allclose(share.images[0].get_array(), rows / rows.sum(axis=1, keepdims=True))
    assert [t.get_text() for t in counts.texts] == [str(v) for row in s["confusion_matrix"]
                                                    for v in row]


def test_eval_plot_draws_predicted_against_true_for_regression(runs, capfd, workdir):
    run, data = runs["mae"]
    ok(capfd, "eval", run, "--data", data, "--plot", "reg.png")
    assert Path("reg.png").read_bytes()[:8] == PNG_MAGIC
    model = bpcli.load_run(run)
    d = np.load(data)
    ev = evaluate.evaluate(model, Dataset(d["X"], d["y"], "d"))
    fig = score_plots.regression_figure(ev.truth, ev.prediction.output)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "true value" and ax.get_ylabel() == "predicted value"
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 0], d["y"].reshape(-1))
    np.testing.assert_allclose(points[:, 1], model.forward(d["X"]).reshape(-1), rtol=1e-6)
    (identity,) = ax.get_lines()
    x, y = identity.get_data()
    np.testing.assert_array_equal(x, y)
    assert min(x) <= points.min() and max(x) >= points.max()


# ---------------------------------------------------------------- bad input
def test_bad_input_is_one_paragraph_and_writes_nothing(runs, capfd, workdir):
    run, data = runs["logistic"]
    assert "nothere" in bad(capfd, "predict", "nothere", "--data", data)
    assert "not a run folder" in bad(capfd, "eval", "nothere")
    no_best = workdir / "no-best"
    shutil.copytree(run, no_best)
    (no_best / "best.npz").unlink()
    for command in (["eval"], ["predict", "--data", data]):
        err = bad(capfd, *command[:1], no_best, *command[1:], "--checkpoint", "best")
        assert "best.npz" in err
        err = bad(capfd, *command[:1], no_best, *command[1:], "--checkpoint", "latest")
        assert "--checkpoint" in err and "final, best" in err and "latest" in err
    pd.DataFrame(np.zeros((3, FEATURES + 1)), columns=list("abcde")).to_csv("wide.csv", index=False)
    err = bad(capfd, "predict", run, "--data", "wide.csv", "--out", "p.csv")
    assert "wide.csv" in err and "(5,)" in err and "[4]" in err
    assert not Path("p.csv").exists() and not list(workdir.glob(".p.csv*"))
    pd.DataFrame({"a": [1.0, "x"], "b": [1, 2], "c": [1, 2], "d": [1, 2]}).to_csv("text.csv",
                                                                                  index=False)
    assert "text.csv" in (err := bad(capfd, "predict", run, "--data", "text.csv")) and "'x'" in err
    assert "--plot" in bad(capfd, "eval", run, "--data", data, "--plot", "cm.bmpx")
    assert "sum_squares" in bad(capfd, "eval", runs["sum_squares"][0], "--data",
                                runs["sum_squares"][1], "--plot", "x.png")
    assert not list(workdir.glob("*.png")) and not list(workdir.glob(".*tmp"))


def test_every_loss_with_an_accuracy_is_a_classifier_and_none_is_both():
    for d in LOSSES.values():
        assert (d.accuracy is None) == (d.classifier is None), d.name
        assert not (d.regressor and d.classifier), d.name


# ---------------------------------------------------------------- pictures in, names out
def test_predict_on_a_folder_of_pictures_names_files_and_classes(capfd, workdir):
    from PIL import Image

    rng = np.random.default_rng(0)
    bar = {"horizontal": lambda a, k: a.__setitem__((k, slice(None)), 1.0),
           "vertical": lambda a, k: a.__setitem__((slice(None), k), 1.0)}
    for kind, draw in bar.items():
        for i in range(12):
            a = 0.1 * rng.random((8, 8))
            draw(a, int(rng.integers(1, 7)))
            Path("train", kind).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(a * 255).astype(np.uint8)).save(f"train/{kind}/{i}.png")
    Path("new").mkdir()
    for i, kind in enumerate(["vertical", "horizontal", "vertical"]):
        a = np.zeros((8, 8))
        bar[kind](a, 3 + i)
        Image.fromarray(np.round(a * 255).astype(np.uint8)).save(f"new/{i}_{kind}.png")
    Path("bars.yaml").write_text(yaml.safe_dump({
        "name": "bars", "input": [1, 8, 8], "seed": 0, "data": {"path": "train", "val_split": 0.25},
        "layers": ["flatten", {"dense": {"units": 2}}], "loss": "softmax_cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.05}, "training": {"epochs": 30, "batch_size": 6}}))
    ok(capfd, "train", "bars.yaml", "-q")
    run = workdir / "runs" / "bars"
    s = json.loads(ok(capfd, "eval", run, "--json")[0])
    assert s["classes"] == ["horizontal", "vertical"] and s["n"] == 6
    rows = pd.read_csv(StringIO(ok(capfd, "predict", run, "--data", "new")[0]))
    assert list(rows.columns) == ["file", "prediction", "p_horizontal", "p_vertical"]
    assert rows["file"].tolist() == ["0_vertical.png", "1_horizontal.png", "2_vertical.png"]
    assert rows["prediction"].tolist() == ["vertical", "horizontal", "vertical"]
    np.testing.assert_allclose(rows["p_horizontal"] + rows["p_vertical"], 1.0, rtol=1e-6)


def test_eval_scores_the_runs_own_validation_file(workdir, capfd):
    """A run trained with --val-data is scored on that file, read as training read it."""
    from bpcli.train.data import pulses

    for name, n, seed in (("train.npz", 120, 0), ("val.npz", 30, 1)):
        d = pulses(n, (32,), seed)
        np.savez(workdir / name, X=d.X, y=d.y)
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capfd, "train", "s.yaml", "--data", "train.npz", "--val-data", "val.npz", "-q",
       "--out", "run")
    scores = json.loads(ok(capfd, "eval", "run", "--json")[0])
    assert scores["n"] == 30 and "val.npz" in scores["data"]


def test_eval_of_a_run_without_a_data_entry_asks_for_data(workdir, capfd):
    (workdir / "s.yaml").write_text(tiny_spec(training={"epochs": 1}))
    ok(capfd, "train", "s.yaml", "-q", "--out", "run")
    spec = yaml.safe_load((workdir / "run" / "spec.yaml").read_text())
    spec["data"] = None
    (workdir / "run" / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert "give --data FILE" in bad(capfd, "eval", "run")


def test_predict_reads_with_the_runs_options_unless_set_changes_one(workdir, capfd):
    """A run trained on a file with a metadata line (skip_rows: 1) reads new files the same way;
    --set data.skip_rows=0 reads a file without it. Only data.* may be set."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.where(X[:, 0] > 0, "up", "down")
    rows = "\n".join(f"{a:.5f},{b:.5f},{c:.5f},{t}" for (a, b, c), t in zip(X, y))
    (workdir / "train.csv").write_text("60,3,down,up\n" + rows + "\n")
    (workdir / "s.yaml").write_text(
        "input: [3]\ndata: {path: train.csv, skip_rows: 1, header: false, target: -1}\n"
        "layers: [dense: {units: 2}]\nloss: softmax_cross_entropy\n"
        "training: {epochs: 2, batch_size: 16}\n")
    ok(capfd, "train", "s.yaml", "-q", "--out", "run")
    (workdir / "new.csv").write_text("\n".join(rows.splitlines()[:5]) + "\n")
    carried = pd.read_csv(StringIO(ok(capfd, "predict", "run", "--data", "new.csv")[0]))
    changed = pd.read_csv(StringIO(ok(capfd, "predict", "run", "--data", "new.csv",
                                      "--set", "data.skip_rows=0")[0]))
    assert len(carried) == 4 and len(changed) == 5       # the first line was skipped, then read
    assert "--set: eval and predict change only how data is read" in bad(
        capfd, "predict", "run", "--data", "new.csv", "--set", "optimizer.lr=1")
