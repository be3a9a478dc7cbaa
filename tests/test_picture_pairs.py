"""Picture pairs: a folder of inputs and a folder of targets matched by name (data.targets,
--targets), read as masks (a class index per pixel) under a classifier loss and as pictures
under a regression loss; the builtin shape_masks; augmentation that moves each target with its
input; a same-resolution network trained on picture folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import bpcli
from bpcli.errors import InputError
from bpcli.spec.sections import AUGMENT
from bpcli.train import data, images
from bpcli.train.augment import augment, augment_pairs
from helpers import cli, ok


def gray(a: np.ndarray, path: Path) -> Path:
    """``a`` (values 0..255, or 0..65535 for uint16) as a grayscale picture at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def noisy_and_clean(root: Path, n: int = 6, size: int = 8, seed: int = 0):
    """root/noisy/i.png (8-bit) and root/clean/i.png: the clean picture plus noise, clipped."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        clean = rng.integers(40, 200, (size, size)).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
        gray(clean, root / "clean" / f"{i}.png")
        gray(noisy, root / "noisy" / f"{i}.png")
    return root / "noisy", root / "clean"


def pictures_and_masks(root: Path, n: int = 6, size: int = 8, seed: int = 0, top: int = 1):
    """root/images/i.png and root/masks/i.png: mask = top where the picture is brighter than 127,
    else 0; (pictures, masks) as arrays."""
    rng = np.random.default_rng(seed)
    xs, ms = [], []
    for i in range(n):
        x = rng.integers(0, 256, (size, size)).astype(np.uint8)
        m = np.where(x > 127, top, 0).astype(np.uint8)
        gray(x, root / "images" / f"{i}.png")
        gray(m, root / "masks" / f"{i}.png")
        xs.append(x)
        ms.append(m)
    return np.array(xs), np.array(ms)


def spec(loss="mse", channels=1, size=8, out=1, **data_options) -> dict:
    """Two same-padded conv2d layers: an output of ``out`` channels at the input's size."""
    return {"name": "pairs", "input": [channels, size, size], "seed": 0,
            "data": data_options or None,
            "layers": [{"conv2d": {"channels": 4, "kernel": 3, "pad": "same"}}, "relu",
                       {"conv2d": {"channels": out, "kernel": 3, "pad": "same"}}],
            "loss": loss, "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": 2, "batch_size": 4}}


def classifier_spec(**data_options) -> dict:
    """A spec whose loss is a classifier's (what makes targets masks); its network ends in dense,
    as a per-sample classifier, so it validates whatever per-pixel losses exist."""
    s = spec("softmax_cross_entropy", **data_options)
    s["layers"] = [{"dense": {"units": 2}}]
    return s


def write(tmp_path: Path, s: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(s, sort_keys=False))
    return path


# ---------------------------------------------------------------- matching
def test_inputs_and_targets_are_matched_by_name_whatever_their_suffix(tmp_path):
    for name in ("b.png", "a.png", "sub/c.jpg", ".hidden.png"):
        gray(np.zeros((4, 4), np.uint8), tmp_path / "in" / name)
    for name in ("a.tif", "b.png", "sub/c.png", ".hidden.png"):
        gray(np.zeros((4, 4), np.uint8), tmp_path / "out" / name)
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    (tmp_path / "out" / "README.md").write_text("not a picture")
    inputs, targets = images.pairs(tmp_path / "in", tmp_path / "out", source="in",
                                   targets_source="out")
    assert [f.relative_to(tmp_path / "in").as_posix() for f in inputs] == [
        "a.png", "b.png", "sub/c.jpg"]
    assert [f.relative_to(tmp_path / "out").as_posix() for f in targets] == [
        "a.tif", "b.png", "sub/c.png"]


def test_an_input_folder_with_targets_is_not_read_as_class_folders(tmp_path):
    # sub-folders of inputs are matched to the same sub-folders of targets, never classes
    noisy, clean = noisy_and_clean(tmp_path)
    for folder in (noisy, clean):
        (folder / "more").mkdir()
        (folder / "0.png").rename(folder / "more" / "0.png")
    d = data.read(bpcli.load_spec(spec(path=str(noisy), targets=str(clean))))
    assert d.classes is None and "more/0.png" in d.names
    assert d.y.shape == (6, 1, 8, 8)


def test_unmatched_inputs_and_targets_are_named_together_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    noisy, clean = noisy_and_clean(tmp_path)
    (noisy / "1.png").rename(noisy / "extra.png")
    for i in range(25):  # more targets without an input than one message names
        gray(np.zeros((8, 8), np.uint8), clean / f"lone{i:02d}.png")
    code, _, err = cli(capsys, "train", write(tmp_path, spec()), "--data", "noisy",
                       "--targets", "clean", "--out", "run")
    assert code == 2 and not (tmp_path / "run").exists()
    message = err.strip()
    assert "\n" not in message                     # one paragraph
    assert "noisy: 1 input without a target in clean: extra.png" in message
    assert "26 targets without an input in noisy: 1.png, lone00.png" in message
    assert "lone18.png, and 6 more" in message and "lone19.png" not in message


def test_two_pictures_with_one_name_are_refused(tmp_path):
    noisy, clean = noisy_and_clean(tmp_path, n=2)
    gray(np.zeros((8, 8), np.uint8), clean / "0.tif")
    with pytest.raises(InputError, match=r"one name but their suffix \(0.png and 0.tif\)"):
        data.read(bpcli.load_spec(spec(path=str(noisy), targets=str(clean))))


def test_targets_go_with_pictures_from_a_folder(tmp_path, capsys):
    s = spec(builtin="shapes", n=20, targets="masks")
    code, _, err = cli(capsys, "validate", write(tmp_path, s))
    assert code == 2 and "data.targets: target pictures go with input pictures from a folder" in err
    s = spec(builtin="shapes", n=20)
    code, _, err = cli(capsys, "train", write(tmp_path, s), "--targets", tmp_path, "--out",
                       tmp_path / "run")
    assert code == 2 and "--targets: target pictures from a folder goes with training data" in err


def test_a_pairs_spec_names_the_missing_targets_of_another_picture_folder(tmp_path):
    noisy, clean = noisy_and_clean(tmp_path)
    s = bpcli.load_spec(spec(path=str(noisy), targets=str(clean)))
    with pytest.raises(InputError, match=r"without targets, but this spec trains on picture pairs"):
        data.read(s, noisy, targets=None)


# ---------------------------------------------------------------- masks
def test_masks_hold_a_class_index_per_pixel(tmp_path):
    xs, ms = pictures_and_masks(tmp_path)
    s = bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                        targets=str(tmp_path / "masks")))
    d = data.read(s)
    assert d.y.dtype == np.int64 and d.y.shape == (6, 8, 8)
    assert np.array_equal(d.y, ms)                          # sorted by name: 0.png .. 5.png
    assert np.array_equal(d.X[:, 0], xs.astype(np.float32) / 255)
    assert d.target_names[0].endswith("masks/0.png")


def test_masks_of_only_0_and_255_read_as_classes_0_and_1_with_one_note(tmp_path, capsys):
    _, ms = pictures_and_masks(tmp_path, top=255)
    s = bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                        targets=str(tmp_path / "masks")))
    d = data.read(s)
    assert np.array_equal(d.y, ms // 255)
    err = capsys.readouterr().err
    assert err.count("bpcli: note:") == 1
    assert "every mask holds only the values 0 and 255, read as classes 0 and 1" in err


def test_palette_masks_are_read_by_index_never_by_colour(tmp_path):
    pictures_and_masks(tmp_path)
    m = np.arange(64, dtype=np.uint8).reshape(8, 8) % 3
    palette = [0, 0, 0, 255, 0, 0, 0, 128, 255] + [0] * (256 - 3) * 3  # black, red, blue
    for i in range(6):
        p = Image.fromarray(m)
        p.putpalette(palette)
        p.save(tmp_path / "masks" / f"{i}.png")
    s = bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                        targets=str(tmp_path / "masks"),
                                        classes=["background", "red", "blue"]))
    d = data.read(s)
    assert Image.open(tmp_path / "masks" / "0.png").mode == "P"
    assert np.array_equal(d.y[0], m) and d.classes == ["background", "red", "blue"]


def test_a_mask_value_beyond_the_classes_names_the_mask_its_values_and_data_classes(tmp_path):
    pictures_and_masks(tmp_path)
    bad = np.zeros((8, 8), np.uint8)
    bad[0, :3] = [3, 7, 1]
    gray(bad, tmp_path / "masks" / "4.png")
    s = bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                        targets=str(tmp_path / "masks"), classes=["bg", "fg"]))
    with pytest.raises(InputError) as e:
        data.read(s)
    message = str(e.value)
    assert "masks/4.png (3, 7)" in message and "Values found: 0, 1, 3, 7" in message
    assert "not class indices 0..1 of data.classes (2: bg, fg)" in message


def test_a_colour_mask_is_refused(tmp_path):
    pictures_and_masks(tmp_path)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "masks" / "2.png")
    s = bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                        targets=str(tmp_path / "masks")))
    with pytest.raises(InputError, match=r"masks/2.png: is a colour picture \(RGB\)"):
        data.read(s)


def test_masks_are_resized_by_nearest_neighbour(tmp_path):
    pictures_and_masks(tmp_path)
    big = np.kron(np.array([[0, 1], [2, 0]], np.uint8), np.ones((8, 8), np.uint8))  # 16x16
    for i in range(6):
        gray(big, tmp_path / "masks" / f"{i}.png")
    s = bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                        targets=str(tmp_path / "masks"), resize=True))
    d = data.read(s)
    assert set(np.unique(d.y)) == {0, 1, 2}                    # no value between classes
    assert np.array_equal(d.y[0], np.kron([[0, 1], [2, 0]], np.ones((4, 4), int)))
    with pytest.raises(InputError, match=r"6 masks .* are 16x16 pixels .*\(a mask is as large "
                                         r"as its picture\)"):
        data.read(bpcli.load_spec(classifier_spec(path=str(tmp_path / "images"),
                                                  targets=str(tmp_path / "masks"))))


def test_per_pixel_labels_from_npz_pass_the_data_layer(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((5, 1, 8, 8)), rng.integers(0, 3, (5, 8, 8))
    np.savez(tmp_path / "seg.npz", X=X, y=y)
    d = data.read(bpcli.load_spec(classifier_spec(path=str(tmp_path / "seg.npz"),
                                                  classes=["a", "b", "c"])))
    assert np.array_equal(d.y, y) and d.y.dtype == np.int64 and d.classes == ["a", "b", "c"]
    y[2, 3, 4] = 5
    np.savez(tmp_path / "seg.npz", X=X, y=y)
    with pytest.raises(InputError, match=r"sample 2: label 5 is not a class index 0..2"):
        data.read(bpcli.load_spec(classifier_spec(path=str(tmp_path / "seg.npz"),
                                                  classes=["a", "b", "c"])))


def test_mask_values_are_checked_against_the_classes_an_output_tells_apart():
    y = np.zeros((3, 4, 4), np.int64)
    y[1, 0, 0], y[2, 1, 1] = 4, 255
    data.check_mask_values(y, 5, names=None, source="m", ignore=255, against="5 classes")
    with pytest.raises(InputError, match=r"2 label maps hold values .* sample 1 \(4\); sample 2 "
                                         r"\(255\)"):
        data.check_mask_values(y, 4, names=None, source="m", against="4 classes")


# ---------------------------------------------------------------- restoration targets
def test_restoration_targets_are_read_as_their_inputs_16_bit_included(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        gray(rng.integers(0, 256, (8, 8)).astype(np.uint8), tmp_path / "in" / f"{i}.png")
        gray(rng.integers(0, 65536, (8, 8)).astype(np.uint16), tmp_path / "out" / f"{i}.png")
    s = bpcli.load_spec(spec(path=str(tmp_path / "in"), targets=str(tmp_path / "out")))
    d = data.read(s)
    assert d.y.shape == (3, 1, 8, 8) and d.y.dtype == np.float32     # the spec's dtype
    for i in range(3):
        deep = np.asarray(Image.open(tmp_path / "out" / f"{i}.png"), dtype=np.float64)
        assert np.allclose(d.y[i, 0], deep / 65535, atol=1e-7)
        shallow = np.asarray(Image.open(tmp_path / "in" / f"{i}.png"), dtype=np.float64)
        assert np.allclose(d.X[i, 0], shallow / 255, atol=1e-7)


def test_restoration_targets_take_the_inputs_channels_and_resize(tmp_path):
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(
            (tmp_path / "in").mkdir(exist_ok=True) or tmp_path / "in" / f"{i}.png")
        gray(rng.integers(0, 256, (16, 16)).astype(np.uint8), tmp_path / "out" / f"{i}.png")
    d = data.read(bpcli.load_spec(spec(channels=3, out=3, path=str(tmp_path / "in"),
                                       targets=str(tmp_path / "out"), resize=True)))
    assert d.y.shape == (3, 3, 8, 8)
    assert np.array_equal(d.y[:, 0], d.y[:, 2])         # a gray picture read as RGB


# ---------------------------------------------------------------- builtin shape_masks
def test_shape_masks_are_the_shapes_pictures_with_their_masks():
    d = data.shape_masks(200, [1, 24, 24], seed=3, classes=3)
    same = data.shapes(200, [1, 24, 24], seed=3, classes=3)
    assert np.array_equal(d.X, same.X)                   # the very pictures of shapes
    assert d.y.shape == (200, 24, 24) and d.y.dtype == np.int64
    for i in range(200):                                  # one shape, of its own class, per picture
        assert set(np.unique(d.y[i])) == {0, same.y[i] + 1}
    inside, outside = d.X[:, 0][d.y > 0], d.X[:, 0][d.y == 0]
    assert inside.mean() > 0.6 > 0.1 > outside.mean()     # the mask lies on the bright shape
    binary = data.shape_masks(20, [1, 24, 24], seed=3, classes=1)
    assert set(np.unique(binary.y)) == {0, 1}


def test_shape_masks_is_a_builtin_set_of_a_spec(tmp_path, capsys):
    s = bpcli.load_spec(spec(builtin="shape_masks", n=12, classes=2))
    d = data.read(s)
    assert d.y.shape == (12, 8, 8) and d.y.max() == 2
    code, _, err = cli(capsys, "validate", write(tmp_path, spec(builtin="shapes", classes=1)))
    assert code == 2 and "classes: 1 is for builtin: shape_masks" in err


# ---------------------------------------------------------------- augmentation
EVERY_MOVE = {"crop": [5, 6], "flip": True, "rotate90": True, "shift": 2}


def config(**fields) -> dict:
    return {**{p.name: p.default for p in AUGMENT}, **fields}


@pytest.mark.parametrize("fill", ["zero", "wrap"])
@pytest.mark.parametrize("channel_axis", [False, True])
def test_a_mask_moves_with_its_picture_through_every_augmentation(fill, channel_axis):
    # the mask is a function of the picture (brighter than 0.5); after any change of place it
    # must still be: the same draws moved both, and no mask value was interpolated. Masks as
    # read (N, H, W) and as the losses prepare them (N, 1, H, W) alike
    rng = np.random.default_rng(0)
    X = rng.random((64, 1, 8, 8))
    y = (X[:, :1] if channel_axis else X[:, 0]) > 0.5
    y = y.astype(np.int64)
    for fields in [{k: v} for k, v in EVERY_MOVE.items()] + [EVERY_MOVE]:
        cfg = config(shift_fill=fill, **fields)
        Xa, ya = augment_pairs(X, y, cfg, np.random.default_rng(1), "masks")
        assert np.array_equal(ya, (Xa[:, :1] if channel_axis else Xa[:, 0]) > 0.5), fields
        assert ya.dtype == np.int64
        assert not np.array_equal(Xa, X)
        # the draws are the ones a batch without targets gets
        assert np.array_equal(Xa, augment(X, cfg, np.random.default_rng(1)))


def test_scale_and_noise_change_a_pictures_values_not_its_mask():
    rng = np.random.default_rng(0)
    X, y = rng.random((16, 1, 8, 8)), rng.integers(0, 3, (16, 8, 8))
    cfg = config(scale=[0.5, 2.0], noise={"std": 0.1}, **EVERY_MOVE)
    _, ya = augment_pairs(X, y, cfg, np.random.default_rng(1), "masks")
    _, moved = augment_pairs(X, y, config(**EVERY_MOVE), np.random.default_rng(1), "masks")
    assert np.array_equal(ya, moved)


def test_a_restoration_target_moves_and_scales_with_its_input():
    # target = 2 x input, a deterministic function of it, survives every change exactly
    rng = np.random.default_rng(0)
    X = rng.random((32, 2, 6, 6))
    cfg = config(scale=[0.5, 2.0], **EVERY_MOVE)
    Xa, ya = augment_pairs(X, 2 * X, cfg, np.random.default_rng(4), "pictures")
    assert np.array_equal(ya, 2 * Xa)


def test_one_dimensional_targets_move_with_their_signals():
    rng = np.random.default_rng(0)
    X = rng.random((32, 2, 16))
    cfg = config(crop=[11], flip=True, shift=3)
    Xa, ya = augment_pairs(X, X[:, 0] > 0.5, cfg, np.random.default_rng(2), "masks")
    assert np.array_equal(ya, Xa[:, 0] > 0.5)


def test_labels_per_sample_are_left_as_they_are():
    X, y = np.random.default_rng(0).random((8, 1, 6, 6)), np.arange(8)
    _, ya = augment_pairs(X, y, config(**EVERY_MOVE), np.random.default_rng(0), None)
    assert ya is y


def test_augmentations_that_cannot_apply_to_targets_are_refused_naming_the_key(tmp_path):
    s = spec(path="in", targets="out")
    s["training"]["augment"] = {"noise": {"std": 0.1}, "flip": True}
    with pytest.raises(InputError, match=r"training\.augment\.noise: noise would change the "
                                         r"inputs alone"):
        bpcli.load_spec(s)
    s["training"]["augment"] = {"crop": [9, 4]}
    with pytest.raises(InputError, match=r"training\.augment\.crop: crop \[9, 4\] must fit"):
        bpcli.load_spec(s)
    s["training"]["augment"] = {"crop": [4]}
    with pytest.raises(InputError, match=r"crop needs 2 sizes, \[height, width\]"):
        bpcli.load_spec(s)


# ---------------------------------------------------------------- end to end
def test_a_denoiser_trains_on_picture_folders_from_the_command_line(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    noisy_and_clean(tmp_path, n=8)
    s = spec(val_split=0.25)
    s["training"] = {"epochs": 3, "batch_size": 2,
                     "augment": {"flip": True, "rotate90": True, "shift": 1, "crop": [6, 6]}}
    path = write(tmp_path, s)
    _, err = ok(capsys, "train", path, "--data", "noisy", "--targets", "clean", "--out", "run")
    assert "6 training and 2 validation samples from noisy" in err
    recorded = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())["data"]
    assert recorded["targets"] == str((tmp_path / "clean").resolve())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert np.isfinite(summary["final"]["val_loss"])


def test_the_training_loop_moves_picture_targets_with_their_inputs(tmp_path, monkeypatch):
    from bpcli.train import loop
    from bpcli.train.run import execute, prepare

    seen = []

    def spy(X, y, cfg, rng, targets=None):
        Xa, ya = augment_pairs(X, y, cfg, rng, targets)
        seen.append((targets, np.array_equal(ya, Xa)))
        return Xa, ya
    monkeypatch.setattr(loop, "augment_pairs", spy)
    noisy, _ = noisy_and_clean(tmp_path, n=8)
    s = spec(path=str(noisy), targets=str(noisy), val_split=0.25)   # target = input: identity
    s["training"]["augment"] = EVERY_MOVE
    execute(prepare(bpcli.load_spec(s)), tmp_path / "run")
    assert seen == [("pictures", True)] * 4     # 2 epochs of 2 steps: 6 samples, batches of 4


def test_a_segmenter_trains_on_pictures_and_masks(tmp_path, capsys, monkeypatch):
    # two same-padded conv2d layers, softmax cross-entropy per pixel; masks stored as 0/255
    monkeypatch.chdir(tmp_path)
    pictures_and_masks(tmp_path, n=8, top=255)
    s = spec("softmax_cross_entropy", out=2, path="images", targets="masks", val_split=0.25)
    s["training"]["augment"] = {"noise": {"std": 0.05}, **EVERY_MOVE}  # noise: the input's alone
    _, err = ok(capsys, "train", write(tmp_path, s), "--out", "run")
    assert err.count("every mask holds only the values 0 and 255") == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0 <= summary["final"]["val_accuracy"] <= 1


def test_shape_masks_train_a_segmenter_with_no_files(tmp_path, capsys):
    s = spec("softmax_cross_entropy", size=12, out=3, builtin="shape_masks", n=24, classes=2)
    ok(capsys, "train", write(tmp_path, s), "--out", tmp_path / "run")
    s["layers"][-1]["conv2d"]["channels"] = 2                 # 3 classes: background and 2 shapes
    code, _, err = cli(capsys, "train", write(tmp_path, s), "--out", tmp_path / "run2")
    assert code == 2 and "not class indices 0..1 of the 2 classes the network's output" in err
    assert "Values found: 0, 1, 2; if there are 3 classes, the network needs 3 output" in err


def test_a_students_folders_train_evaluate_predict_to_pictures_and_export(tmp_path, capsys,
                                                                          monkeypatch):
    """The whole way with one's own folders: train on pictures and masks, eval on other folders
    with --data and --targets (segmentation scores), predict to a folder of palette masks named
    as the inputs, export to ONNX."""
    monkeypatch.chdir(tmp_path)
    pictures_and_masks(tmp_path / "train", n=8)
    pictures_and_masks(tmp_path / "test", n=4, seed=1)
    s = spec("softmax_cross_entropy", out=2)
    path = write(tmp_path, s)
    ok(capsys, "train", path, "--data", "train/images", "--targets", "train/masks", "--out",
       "runs/seg", "-q")
    code, out, err = cli(capsys, "eval", "runs/seg", "--data", "test/images", "--targets",
                         "test/masks", "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert scores["n"] == 4 and {"pixel_accuracy", "mean_iou", "mean_dice"} <= set(scores)
    code, _, err = cli(capsys, "eval", "runs/seg", "--targets", "test/masks")
    assert code == 2 and "--targets goes with --data" in err
    code, _, err = cli(capsys, "predict", "runs/seg", "--data", "test/images", "--out", "pred")
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "pred").glob("*.png"))
    assert written == [f"{i}.png" for i in range(4)]
    assert Image.open(tmp_path / "pred" / "0.png").mode == "P"
    pytest.importorskip("onnx")
    code, _, err = cli(capsys, "export", "runs/seg", "--out", "seg.onnx")
    assert code == 0, err


def test_noisy_shapes_pairs_the_shapes_pictures_with_themselves_before_the_noise():
    noisy = data.noisy_shapes(20, (1, 16, 16), seed=3)
    plain = data.shapes(20, (1, 16, 16), seed=3)
    np.testing.assert_array_equal(noisy.X, plain.X)          # the same draws as shapes
    assert noisy.y.shape == (20, 1, 16, 16)
    residual = noisy.X - noisy.y                              # the noise alone
    assert abs(residual.std() - 0.3) < 0.02 and abs(residual.mean()) < 0.02
