"""Networks whose answer is a picture: their scores (segmentation: pixel accuracy, IoU, Dice;
restoration: PSNR, SSIM, MAE, RMSE) against scikit-learn's and scikit-image's, predictions
written as pictures or arrays, eval's grid, and the batches eval and predict run in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import bpcli
from bpcli.cli import main
from bpcli.explain import metrics, score_plots
from bpcli.train import evaluate
from bpcli.nn.model import Model
from bpcli.train.data import Dataset
from helpers import PNG_MAGIC, bad, cli, ok

N, SIDE = 24, 16


@pytest.fixture
def sklearn():
    """scikit-learn, the reference the pixel scores are checked against."""
    return pytest.importorskip("sklearn.metrics")


# ---------------------------------------------------------------- segmentation vs scikit-learn
def _class_maps(seed, n=6, k=4, side=9, ignore=None):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, (n, side, side))
    predicted = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, k, truth.shape))
    if ignore is not None:
        truth[rng.random(truth.shape) < 0.1] = ignore
    return truth, predicted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixel_confusion_iou_and_dice_are_scikit_learns_over_pixels(sklearn, seed):
    k = 4
    truth, predicted = _class_maps(seed, k=k)
    cm = metrics.pixel_confusion(truth, predicted, k).sum(axis=0)
    y, p = truth.reshape(-1), predicted.reshape(-1)
    labels = list(range(k))
    np.testing.assert_array_equal(cm, sklearn.confusion_matrix(y, p, labels=labels))
    s = metrics.segmentation(cm)
    iou = sklearn.jaccard_score(y, p, labels=labels, average=None)  # every class present
    dice = sklearn.f1_score(y, p, labels=labels, average=None)
    np.testing.assert_allclose(s["iou"], iou, rtol=1e-12)
    np.testing.assert_allclose(s["dice"], dice, rtol=1e-12)
    assert s["pixel_accuracy"] == pytest.approx(sklearn.accuracy_score(y, p), rel=1e-12)
    assert s["mean_iou"] == pytest.approx(iou.mean(), rel=1e-12)
    assert s["mean_dice"] == pytest.approx(dice.mean(), rel=1e-12)
    # Dice is 2 IoU / (1 + IoU), class by class
    np.testing.assert_allclose(s["dice"], 2 * s["iou"] / (1 + s["iou"]), rtol=1e-12)


def test_each_samples_confusion_matrix_is_its_own_pixels(sklearn):
    truth, predicted = _class_maps(3, n=5, k=3)
    each = metrics.pixel_confusion(truth, predicted, 3)
    assert each.shape == (5, 3, 3)
    for i in range(5):
        np.testing.assert_array_equal(
            each[i], sklearn.confusion_matrix(truth[i].ravel(), predicted[i].ravel(),
                                              labels=[0, 1, 2]))


def test_an_ignored_label_leaves_its_pixels_out(sklearn):
    truth, predicted = _class_maps(4, k=3, ignore=255)
    cm = metrics.pixel_confusion(truth, predicted, 3).sum(axis=0)
    keep = truth.reshape(-1) != 255
    np.testing.assert_array_equal(cm, sklearn.confusion_matrix(
        truth.reshape(-1)[keep], predicted.reshape(-1)[keep], labels=[0, 1, 2]))
    assert cm.sum() == keep.sum()


def test_a_class_neither_present_nor_predicted_is_undefined_and_left_out_of_the_means():
    truth = np.array([[[0, 0], [1, 1]]])
    predicted = np.array([[[0, 1], [1, 1]]])
    s = metrics.segmentation(metrics.pixel_confusion(truth, predicted, 3).sum(axis=0))
    # class 0: |T ∩ P| = 1, |T ∪ P| = 2; class 1: 2 and 3; class 2: 0 / 0
    np.testing.assert_allclose(s["iou"][:2], [1 / 2, 2 / 3])
    np.testing.assert_allclose(s["dice"][:2], [2 * 1 / (2 + 1), 2 * 2 / (2 + 3)])
    assert np.isnan(s["iou"][2]) and np.isnan(s["dice"][2])
    assert s["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert s["pixel_accuracy"] == pytest.approx(3 / 4)


def test_segmentation_scores_name_the_classes_and_give_each_samples_mean(sklearn):
    truth, predicted = _class_maps(5, n=3, k=3)
    scores, each = evaluate.segmentation_scores(truth, predicted, ["sky", "road", "car"])
    assert set(scores) == {"pixel_accuracy", "classes", "confusion_matrix", "per_class",
                           "mean_iou", "mean_dice"}
    assert list(scores["per_class"]) == ["sky", "road", "car"]
    assert [r["support"] for r in scores["per_class"].values()] == \
        [int((truth == c).sum()) for c in range(3)]
    json.dumps(scores, allow_nan=False)  # JSON as it is: no NaN
    for i in range(3):
        dice = sklearn.f1_score(truth[i].ravel(), predicted[i].ravel(), labels=[0, 1, 2],
                                average=None, zero_division=np.nan)
        assert each["dice"][i] == pytest.approx(np.nanmean(dice))


def test_sigmoid_masks_lose_their_one_channel_axis():
    class Stand:  # a model's two facts class_maps reads
        output_shape = (None, 1, 4, 4)

        class loss_def:
            class classifier:
                decide = staticmethod(lambda f: (f > 0).astype(np.int64))

    f = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    np.testing.assert_array_equal(evaluate.class_maps(Stand, f), (f[:, 0] > 0))


# ---------------------------------------------------------------- restoration vs scikit-image
def _pictures(seed, n=4, c=1, side=SIDE):
    rng = np.random.default_rng(seed)
    truth = rng.random((n, c, side, side))
    return truth, np.clip(truth + 0.1 * rng.standard_normal(truth.shape), 0, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_and_ssim_are_scikit_images_picture_by_picture(channels):
    truth, predicted = _pictures(channels, c=channels)
    r = metrics.data_range(truth)
    assert r == 1.0  # pictures read / 255 lie in [0, 1]
    psnr, ssim = metrics.psnr(truth, predicted, r), metrics.ssim(truth, predicted, r)
    for i in range(len(truth)):
        assert psnr[i] == pytest.approx(peak_signal_noise_ratio(truth[i], predicted[i],
                                                                data_range=1.0), rel=1e-12)
        t, p = (truth[i, 0], predicted[i, 0]) if channels == 1 else (truth[i], predicted[i])
        assert ssim[i] == pytest.approx(structural_similarity(
            t, p, data_range=1.0, channel_axis=None if channels == 1 else 0), rel=1e-12)


def test_the_data_range_is_the_targets_own_beyond_zero_to_one():
    truth, predicted = _pictures(7)
    truth, predicted = 40 * truth - 10, 40 * predicted - 10
    r = metrics.data_range(truth)
    assert r == pytest.approx(truth.max() - truth.min())
    assert metrics.psnr(truth, predicted, r)[0] == pytest.approx(
        peak_signal_noise_ratio(truth[0], predicted[0], data_range=r))


def test_ssim_of_small_pictures_takes_the_largest_window_that_fits():
    truth, predicted = _pictures(8, side=5)
    ssim = metrics.ssim(truth, predicted, 1.0)
    assert ssim[0] == pytest.approx(structural_similarity(truth[0, 0], predicted[0, 0],
                                                          data_range=1.0, win_size=5))
    assert metrics.ssim(*_pictures(9, side=2), 1.0) is None


def test_restoration_scores_mae_and_rmse_are_over_every_pixel(sklearn):
    truth, predicted = _pictures(10)
    scores, each = evaluate.restoration_scores(truth, predicted)
    assert scores["mae"] == pytest.approx(sklearn.mean_absolute_error(truth.ravel(),
                                                                      predicted.ravel()))
    assert scores["rmse"] == pytest.approx(np.sqrt(sklearn.mean_squared_error(truth.ravel(),
                                                                              predicted.ravel())))
    assert scores["psnr"] == pytest.approx(each["psnr"].mean())
    assert scores["data_range"] == 1.0
    exact, _ = evaluate.restoration_scores(truth, truth)
    assert exact["psnr"] is None and exact["ssim"] == pytest.approx(1.0)  # infinite: null in JSON


# ---------------------------------------------------------------- a denoiser, end to end
def _denoiser(root: Path, name: str = "den") -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    clean = rng.random((N, 1, SIDE, SIDE))
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
    data = root / f"{name}.npz"
    np.savez(data, X=noisy, y=clean)
    spec = root / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({
        "name": name, "input": [1, SIDE, SIDE], "seed": 0,
        "data": {"path": str(data), "val_split": 0.25},
        "layers": [{"conv2d": {"channels": 4, "kernel": 3, "pad": "same"}}, "relu",
                   {"conv2d": {"channels": 1, "kernel": 3, "pad": "same"}}],
        "loss": "mse", "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 1, "batch_size": 8}}))
    assert main(["train", str(spec), "--out", str(root / name), "-q"]) == 0
    return root / name, data


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    """A run of a 2-layer conv denoiser (mse) on pictures (N, 1, 16, 16) in an .npz."""
    return _denoiser(tmp_path_factory.mktemp("denoiser"))


def test_eval_of_a_denoiser_gives_psnr_ssim_mae_rmse_of_its_outputs(denoiser, capfd):
    run, data = denoiser
    s = json.loads(ok(capfd, "eval", run, "--data", data, "--json")[0])
    assert set(s) == {"loss", "n", "data", "checkpoint", "psnr", "ssim", "data_range", "mae",
                      "rmse"}
    d = np.load(data)
    out = bpcli.load_run(run).forward(d["X"])
    assert s["data_range"] == 1.0
    assert s["psnr"] == pytest.approx(np.mean([peak_signal_noise_ratio(
        d["y"][i], out[i].astype(np.float64), data_range=1.0) for i in range(N)]), rel=1e-6)
    assert s["ssim"] == pytest.approx(np.mean([structural_similarity(
        d["y"][i, 0], out[i, 0].astype(np.float64), data_range=1.0) for i in range(N)]), rel=1e-5)
    assert s["rmse"] == pytest.approx(np.sqrt(s["loss"]), rel=1e-5)  # mse trains on its square
    text = ok(capfd, "eval", run, "--data", data)[0]
    assert "PSNR" in text and "SSIM" in text and "data range 1" in text


def test_eval_plot_of_a_denoiser_is_a_grid_of_pictures_titled_with_psnr(denoiser, capfd,
                                                                        workdir):
    run, data = denoiser
    _, err = ok(capfd, "eval", run, "--data", data, "--plot", "grid.png")
    assert Path("grid.png").read_bytes()[:8] == PNG_MAGIC and "grid.png" in err
    model, d = bpcli.load_run(run), np.load(data)
    ev = evaluate.evaluate(model, Dataset(d["X"], d["y"], "d"))
    fig = score_plots.restoration_grid(d["X"][:4], ev.truth[:4], ev.prediction.output[:4],
                                       [f"PSNR {v:.2f} dB" for v in ev.per_sample["psnr"][:4]])
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 16  # 4 samples: input, target, prediction, error
    titles = [ax.get_title() for ax in panels]
    assert titles[:4] == ["input", "target", f"prediction: PSNR {ev.per_sample['psnr'][0]:.2f} dB",
                          "|prediction − target|"]
    np.testing.assert_allclose(panels[3].images[0].get_array(),
                               np.abs(ev.prediction.output[0] - ev.truth[0]).mean(axis=0),
                               rtol=1e-6)
    assert not any(ax.collections for ax in panels)  # no scatter of pixels


def _scaled(picture, top: int, dtype):
    """A restored picture as written: clipped to [0, 1], times 255 or 65535, rounded."""
    return np.rint(np.clip(picture.astype(np.float64), 0, 1) * top).astype(dtype)


def test_predict_to_a_folder_writes_one_8_bit_picture_per_sample_by_index(denoiser, capfd,
                                                                         workdir):
    run, data = denoiser
    _, err = ok(capfd, "predict", run, "--data", data, "--out", "restored")
    assert f"{N} pictures" in err
    files = sorted(Path("restored").iterdir())
    assert [f.name for f in files] == [f"{i:02d}.png" for i in range(N)]
    out = bpcli.load_run(run).forward(np.load(data)["X"])
    for i in (0, N - 1):
        with Image.open(files[i]) as img:
            assert img.mode == "L" and img.size == (SIDE, SIDE)
            np.testing.assert_array_equal(np.asarray(img),
                                          _scaled(out[i, 0], 255, np.uint8))


@pytest.mark.parametrize("bits", [8, 16])
def test_predict_on_a_folder_of_pictures_keeps_their_stems_and_bit_depth(denoiser, capfd,
                                                                         workdir, bits):
    run, _ = denoiser
    rng = np.random.default_rng(bits)
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    Path("noisy").mkdir()
    stems = ["scan_a", "scan_b", "z.2"]
    for stem in stems:
        Image.fromarray(rng.integers(0, top, (SIDE, SIDE), dtype=dtype)).save(f"noisy/{stem}.png")
    ok(capfd, "predict", run, "--data", "noisy", "--out", "clean")
    assert sorted(p.name for p in Path("clean").iterdir()) == [f"{s}.png" for s in stems]
    X = np.stack([np.asarray(Image.open(f"noisy/{s}.png"), dtype=np.float64)[None] / top
                  for s in stems])
    out = bpcli.load_run(run).forward(X)
    for i, stem in enumerate(stems):
        with Image.open(f"clean/{stem}.png") as img:
            assert img.mode == ("L" if bits == 8 else "I;16")
            np.testing.assert_array_equal(np.asarray(img),
                                          _scaled(out[i, 0], top, dtype))


def test_predict_to_npz_holds_the_arrays_and_the_names(denoiser, capfd, workdir):
    run, data = denoiser
    ok(capfd, "predict", run, "--data", data, "--out", "sub/pred.npz")
    with np.load("sub/pred.npz", allow_pickle=False) as f:
        assert set(f.files) == {"output", "prediction", "names"}
        np.testing.assert_array_equal(f["output"], bpcli.load_run(run).forward(np.load(data)["X"]))
        np.testing.assert_array_equal(f["prediction"], f["output"])
        assert f["names"].tolist() == [f"{i:02d}" for i in range(N)]
    assert [p.name for p in Path("sub").iterdir()] == ["pred.npz"]  # no temp file left


def test_a_classifiers_npz_holds_classes_and_probabilities(capfd, workdir):
    rng = np.random.default_rng(0)
    np.savez("c.npz", X=rng.standard_normal((30, 4)), y=rng.integers(0, 3, 30))
    Path("c.yaml").write_text(yaml.safe_dump({
        "name": "c", "input": [4], "data": {"path": "c.npz"},
        "layers": [{"dense": {"units": 3}}], "loss": "softmax_cross_entropy",
        "training": {"epochs": 1}}))
    ok(capfd, "train", "c.yaml", "-q")
    ok(capfd, "predict", "runs/c", "--data", "c.npz", "--out", "c_pred.npz")
    model = bpcli.load_run("runs/c")
    p = model.predict(np.load("c.npz")["X"])
    with np.load("c_pred.npz", allow_pickle=False) as f:
        assert f["classes"].tolist() == p.classes
        np.testing.assert_array_equal(f["classes"][f["prediction"]], p.labels)
        np.testing.assert_allclose(f["probabilities"], p.probabilities)
    # rows per sample are not pictures: a folder is refused
    assert "not a picture" in bad(capfd, "predict", "runs/c", "--data", "c.npz", "--out", "dir")


def test_predict_refuses_an_unknown_suffix_and_rows_of_pictures(denoiser, capfd, workdir):
    run, data = denoiser
    err = bad(capfd, "predict", run, "--data", data, "--out", "x.txt")
    assert "--out" in err and ".txt" in err and ".npz" in err
    assert not Path("x.txt").exists()
    err = bad(capfd, "predict", run, "--data", data)  # CSV on stdout: 256 columns a sample
    assert "picture" in err and "--out DIR" in err and ".npz" in err
    assert "picture" in bad(capfd, "predict", run, "--data", data, "--out", "p.csv")


# ---------------------------------------------------------------- masks as pictures
def _segmenter(root: Path, loss: str, classes: int, channels: int) -> Path:
    spec = root / f"{loss}.yaml"
    spec.write_text(yaml.safe_dump({
        "name": loss, "input": [1, SIDE, SIDE], "seed": 0,
        "data": {"builtin": "shape_masks", "n": N, "classes": classes, "val_split": 0.25},
        "layers": [{"conv2d": {"channels": 4, "kernel": 3, "pad": "same"}}, "relu",
                   {"conv2d": {"channels": channels, "kernel": 3, "pad": "same"}}],
        "loss": loss, "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 1, "batch_size": 8}}))
    assert main(["train", str(spec), "--out", str(root / loss), "-q"]) == 0
    return root / loss


@pytest.fixture(scope="module")
def segmenters(tmp_path_factory):
    """Runs on the builtin shape masks: softmax over 4 classes (background and 3 shapes) per
    pixel, and a one-channel sigmoid mask (discs)."""
    root = tmp_path_factory.mktemp("segmenters")
    return {"softmax_cross_entropy": _segmenter(root, "softmax_cross_entropy", 3, 4),
            "sigmoid_cross_entropy": _segmenter(root, "sigmoid_cross_entropy", 1, 1)}


def _shape_masks(n=N, classes=3, seed=0):
    from bpcli.train.data import shape_masks

    return shape_masks(n, [1, SIDE, SIDE], seed, classes=classes)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "sigmoid_cross_entropy"])
def test_eval_of_a_segmenter_is_scikit_learns_over_its_pixels(segmenters, loss, capfd, sklearn):
    run = segmenters[loss]
    s = json.loads(ok(capfd, "eval", run, "--json")[0])
    assert {"pixel_accuracy", "classes", "confusion_matrix", "per_class", "mean_iou",
            "mean_dice"} <= set(s) and "accuracy" not in s
    summary = json.loads((run / "summary.json").read_text())["final"]
    assert s["pixel_accuracy"] == pytest.approx(summary["val_accuracy"])
    model = bpcli.load_run(run)
    val = evaluate.scored_data(model)  # the validation split, as training drew it
    ev = evaluate.evaluate(model, val)
    f = model.forward(val.X)
    predicted = np.argmax(f, axis=1) if f.shape[1] > 1 else (f[:, 0] > 0).astype(int)
    y, p = ev.truth.reshape(-1), predicted.reshape(-1)
    k = len(s["classes"])
    assert k == (4 if loss == "softmax_cross_entropy" else 2)
    np.testing.assert_array_equal(s["confusion_matrix"],
                                  sklearn.confusion_matrix(y, p, labels=list(range(k))))
    dice = sklearn.f1_score(y, p, labels=list(range(k)), average=None, zero_division=np.nan)
    got = [row["dice"] for row in s["per_class"].values()]
    np.testing.assert_allclose([np.nan if v is None else v for v in got], dice)
    text = ok(capfd, "eval", run)[0]
    assert "pixel accuracy" in text and "mean IoU" in text and "confusion matrix over pixels" in text


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "sigmoid_cross_entropy"])
def test_predict_writes_masks_as_palette_pictures_named_by_their_inputs(segmenters, loss, capfd,
                                                                        workdir):
    run = segmenters[loss]
    d = _shape_masks(3, seed=5)
    Path("scans").mkdir()
    for i, x in enumerate(d.X):
        Image.fromarray(np.rint(x[0] * 255).astype(np.uint8)).save(f"scans/cell_{i}.png")
    ok(capfd, "predict", run, "--data", "scans", "--out", "masks")
    assert sorted(p.name for p in Path("masks").iterdir()) == [f"cell_{i}.png" for i in range(3)]
    X = np.stack([np.asarray(Image.open(f"scans/cell_{i}.png"), dtype=np.float64)[None] / 255
                  for i in range(3)])
    f = bpcli.load_run(run).forward(X)
    for i in range(3):
        with Image.open(f"masks/cell_{i}.png") as img:
            assert img.mode == "P" and img.size == (SIDE, SIDE)
            want = np.argmax(f[i], axis=0) if f.shape[1] > 1 else (f[i, 0] > 0)
            np.testing.assert_array_equal(np.asarray(img), want)
    ok(capfd, "predict", run, "--data", "scans", "--out", "masks.npz")
    with np.load("masks.npz", allow_pickle=False) as z:
        assert z["prediction"].shape == (3, SIDE, SIDE)
        assert z["names"].tolist() == [f"cell_{i}.png" for i in range(3)]
    assert "picture" in bad(capfd, "predict", run, "--data", "scans")


def test_eval_plot_of_a_segmenter_draws_the_grid(segmenters, capfd, workdir):
    ok(capfd, "eval", segmenters["softmax_cross_entropy"], "--plot", "seg.png")
    assert Path("seg.png").read_bytes()[:8] == PNG_MAGIC


def test_a_mask_is_a_palette_picture_whose_index_is_the_class(workdir):
    classes = np.random.default_rng(0).integers(0, 5, (7, 9))
    evaluate.mask_picture(classes, 5).save("mask.png")
    with Image.open("mask.png") as img:
        assert img.mode == "P" and img.size == (9, 7)
        np.testing.assert_array_equal(np.asarray(img), classes)
        palette = np.array(img.getpalette()[:15]).reshape(5, 3)
    np.testing.assert_array_equal(palette, score_plots.class_palette(5))
    assert len({tuple(c) for c in palette}) == 5 and tuple(palette[0]) == (0, 0, 0)
    np.testing.assert_array_equal(score_plots.class_palette(2), [[0, 0, 0], [255, 255, 255]])


def test_the_segmentation_grid_shows_masks_wrong_pixels_and_each_samples_dice():
    truth, predicted = _class_maps(11, n=2, k=3)
    X = np.random.default_rng(0).random((2, 1, 9, 9))
    fig = score_plots.segmentation_grid(X, truth, predicted, ["Dice 0.500, IoU 0.333"] * 2,
                                        ["a", "b", "c"])
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels[:3]] == ["input", "target",
                                                      "prediction: Dice 0.500, IoU 0.333"]
    np.testing.assert_array_equal(panels[3].images[0].get_array(), truth[0] != predicted[0])
    assert panels[3].get_title() == f"wrong pixels: {(truth[0] != predicted[0]).mean():.1%}"


# ---------------------------------------------------------------- batches
def test_any_batch_size_gives_the_same_bits(denoiser, capfd, workdir):
    run, data = denoiser
    for size in (1, 5, N):
        ok(capfd, "predict", run, "--data", data, "--out", f"b{size}.npz", "--batch-size", size)
    with np.load("b1.npz") as one, np.load("b5.npz") as five, np.load(f"b{N}.npz") as whole:
        assert np.array_equal(one["output"], whole["output"])
        assert np.array_equal(five["output"], whole["output"])
    by_1 = json.loads(ok(capfd, "eval", run, "--data", data, "--json", "--batch-size", 1)[0])
    at_once = json.loads(ok(capfd, "eval", run, "--data", data, "--json", "--batch-size", N)[0])
    # the loss too: taken over every output at once, whatever batches made them
    assert by_1 == at_once


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_bad_batch_size_is_refused(denoiser, capfd, value):
    run, data = denoiser
    for command in (["eval", run], ["predict", run, "--data", data, "--out", "x.npz"]):
        err = bad(capfd, *command, "--batch-size", value)
        assert "--batch-size" in err and value in err


def test_the_default_batch_is_the_training_batch_capped_by_its_activations(denoiser,
                                                                          monkeypatch):
    model = bpcli.load_run(denoiser[0])
    per_sample = evaluate.activation_bytes(model)
    # input, conv + bias, relu, conv + bias, and the loss's per-pixel values, in float32
    assert per_sample >= 4 * SIDE * SIDE * (1 + 4 + 4 + 1)
    assert evaluate.batch_size(model) == 8  # training.batch_size
    assert evaluate.batch_size(model, 3) == 3
    monkeypatch.setattr(evaluate, "BATCH_BYTES", 3 * per_sample)
    assert evaluate.batch_size(model) == 3
    monkeypatch.setattr(evaluate, "BATCH_BYTES", 1)
    assert evaluate.batch_size(model) == 1


def test_out_of_memory_names_the_batch_and_how_to_shrink_it(denoiser, capfd, monkeypatch):
    run, data = denoiser

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Model, "step", no_memory)
    monkeypatch.setattr(Model, "forward", no_memory)
    err = bad(capfd, "eval", run, "--data", data, "--batch-size", "16")
    assert "16 samples at a time" in err and "smaller --batch-size" in err
    err = bad(capfd, "predict", run, "--data", data, "--out", "x.npz")
    assert "8 samples at a time" in err and "--batch-size 2" in err
