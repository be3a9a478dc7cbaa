"""Folders of pictures: class subfolders as torchvision's ImageFolder reads them, Pillow's
decoding (PNG, JPEG, 16-bit PNG), the spec's channels and size, unlabelled folders for
prediction, bad pictures as clear errors, and a conv2d network trained on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import bpcli
from bpcli.cli import main
from bpcli.errors import InputError
from bpcli.train import data, images


def bars(kind: str, rng, size: int = 8) -> np.ndarray:
    """A dark picture (0..0.2 noise) with one bright bar (0.8..1) across it: a row or a column."""
    a = rng.uniform(0, 0.2, (size, size))
    at = rng.integers(1, size - 1)
    if kind == "horizontal":
        a[at] = rng.uniform(0.8, 1.0, size)
    else:
        a[:, at] = rng.uniform(0.8, 1.0, size)
    return a


def save(a: np.ndarray, path: Path) -> None:
    """An 8-bit PNG, a JPEG (quality 95), or a 16-bit PNG when the name ends in 16.png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith("16.png"):
        Image.fromarray(np.round(a * 65535).astype(np.uint16)).save(path)
    elif path.suffix == ".jpg":
        Image.fromarray(np.round(a * 255).astype(np.uint8)).save(path, quality=95)
    else:
        Image.fromarray(np.round(a * 255).astype(np.uint8)).save(path)


def make_folder(root: Path, n: int, seed: int) -> Path:
    """root/horizontal and root/vertical, n pictures each: PNG, JPEG and 16-bit PNG in turn."""
    rng = np.random.default_rng(seed)
    for kind in ("horizontal", "vertical"):
        for i in range(n):
            name = [f"{i:03d}.png", f"{i:03d}.jpg", f"{i:03d}_16.png"][i % 3]
            save(bars(kind, rng), root / kind / name)
    return root


def spec(channels=1, size=8, **data_options) -> dict:
    return {"name": "bars", "input": [channels, size, size], "seed": 0, "data": data_options or None,
            "layers": [{"conv2d": {"channels": 4, "kernel": 3, "pad": "same"}}, "relu",
                       {"maxpool2d": {"size": 2}}, {"dense": {"units": 2}}],
            "loss": "softmax_cross_entropy", "optimizer": {"name": "adam", "lr": 0.02},
            "training": {"epochs": 15, "batch_size": 16}}


def read(path, labels="required", **kw):
    return data.read(bpcli.load_spec(spec(**kw)), path, labels=labels)


def test_class_folders_are_sorted_classes_and_pictures_scale_to_0_1(workdir):
    rng = np.random.default_rng(0)
    pictures = {"z/a.png": bars("vertical", rng), "b/x.png": bars("horizontal", rng),
                "b/y16.png": bars("horizontal", rng), "b/deeper/w.jpg": bars("vertical", rng)}
    for name, a in pictures.items():
        save(a, Path("pics") / name)
    d = read("pics")
    assert d.classes == ["b", "z"]
    assert d.names == ["b/deeper/w.jpg", "b/x.png", "b/y16.png", "z/a.png"]  # class, then path
    assert d.y.tolist() == [0, 0, 0, 1] and d.X.shape == (4, 1, 8, 8)
    np.testing.assert_allclose(d.X[1, 0], np.round(pictures["b/x.png"] * 255) / 255, atol=1e-7)
    # 16 bits kept: Pillow's 8-bit conversion would have clipped or rounded them
    np.testing.assert_allclose(d.X[2, 0], np.round(pictures["b/y16.png"] * 65535) / 65535, atol=1e-7)
    np.testing.assert_allclose(d.X[0, 0], pictures["b/deeper/w.jpg"], atol=0.06)  # JPEG is lossy
    assert d.X.dtype == np.float32  # the spec's dtype: no copy to make later


def test_pictures_are_converted_to_the_spec_channels(workdir):
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    Path("c/one").mkdir(parents=True)
    Image.fromarray(rgb).save("c/one/p.png")
    Image.fromarray(rgb[..., 0]).save("c/one/q.bmp")
    Image.fromarray(rgb[..., 1]).save("c/one/r.tif")
    color = read("c", channels=3)
    np.testing.assert_allclose(color.X[0], np.moveaxis(rgb, -1, 0) / 255, atol=1e-7)
    np.testing.assert_allclose(color.X[1], np.repeat(rgb[None, ..., 0], 3, 0) / 255, atol=1e-7)
    gray = read("c", channels=1)
    expect = np.asarray(Image.fromarray(rgb).convert("L")) / 255  # ITU-R 601-2 luma, as Pillow's
    np.testing.assert_allclose(gray.X[0, 0], expect, atol=1e-7)
    np.testing.assert_allclose(gray.X[2, 0], rgb[..., 1] / 255, atol=1e-7)


def test_another_size_is_an_error_unless_resize(workdir):
    save(np.full((10, 12), 0.5), Path("s/a/big.png"))
    with pytest.raises(InputError) as e:
        read("s")
    assert str(e.value).startswith("s/a/big.png: is 10x12 pixels (height x width), but the "
                                   "spec's input is 8x8 ([1, 8, 8]); set data.resize: true")
    d = read("s", resize=True)
    assert d.X.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(d.X, 128 / 255, atol=1e-6)  # a flat grey stays that grey


def test_a_folder_of_pictures_alone_is_unlabelled(workdir):
    rng = np.random.default_rng(2)
    for i in range(3):
        save(bars("vertical", rng), Path("new") / f"{i}.png")
    d = read("new", labels="none")
    assert d.y is None and d.names == ["0.png", "1.png", "2.png"] and d.X.shape == (3, 1, 8, 8)
    assert read("new", labels="optional").y is None
    with pytest.raises(InputError, match="new: has images .* but no class subfolders"):
        read("new")


def test_a_class_training_never_saw_is_named(workdir):
    make_folder(Path("train"), 3, 0)
    save(np.zeros((8, 8)), Path("other/diagonal/d.png"))
    save(np.zeros((8, 8)), Path("other/vertical/v.png"))
    with pytest.raises(InputError, match=r"other: folder 'diagonal' \(diagonal/d.png\): class "
                                         r"'diagonal' is not one of the classes the run was "
                                         r"trained on \(data.classes\): horizontal, vertical"):
        read("other", classes=["horizontal", "vertical"])
    assert read("other", labels="none").names == ["diagonal/d.png", "vertical/v.png"]


@pytest.mark.parametrize("make,words", [
    (lambda: Path("b/a/x.png").write_bytes(b"not a picture"), ["b/a/x.png", "cannot read as a picture"]),
    (lambda: Path("b/x.png").write_bytes(b""),
     ["b: holds both images (x.png, ...) and subfolders (a)"]),
    (lambda: save(np.zeros((8, 8)), Path("b/c/y.png")), ["b: class folder 'a' holds no images"]),
])
def test_bad_picture_folders_are_clear_errors(workdir, make, words):
    Path("b/a").mkdir(parents=True)  # a class folder, empty unless the case fills it
    make()
    with pytest.raises(InputError) as e:
        read("b")
    for w in words:
        assert w in str(e.value)


def test_every_unusable_picture_is_named_at_once(workdir, capfd, monkeypatch):
    # a big folder with three broken files is mended in one go, not one run per file
    from helpers import cli

    make_folder(Path("b"), 4, 0)
    Path("b/horizontal/000.png").write_bytes(b"not a picture")
    Path("b/vertical/003.png").write_bytes(Path("b/vertical/000.png").read_bytes()[:60])
    save(np.zeros((9, 9)), Path("b/vertical/001.jpg"))
    Path("s.yaml").write_text(yaml.safe_dump(spec()))
    code, out, err = cli(capfd, "train", "s.yaml", "--data", "b", "-q")
    assert code == 2 and out == "" and not Path("runs").exists()
    lines = err.strip().splitlines()
    assert [line.split(": ")[2] for line in lines[:3]] == [
        "b/horizontal/000.png", "b/vertical/001.jpg", "b/vertical/003.png"], err
    assert "cannot read as a picture" in lines[0] and "is 9x9 pixels" in lines[1], err
    assert lines[3] == "bpcli: 3 errors", err
    # a folder of nothing but broken files stops reading after MAX_REPORTED of them
    monkeypatch.setattr(images, "MAX_REPORTED", 2)
    with pytest.raises(InputError) as e:
        read("b")
    assert [str(one).split(":")[0] for one in e.value.errors] == [
        "b/horizontal/000.png", "b/vertical/001.jpg", "b"]
    assert "stopped reading after 2 different problems, at 6 of 8 pictures" in str(e.value)


def test_predict_takes_one_picture_and_train_refuses_it(workdir, capfd):
    from helpers import cli

    make_folder(Path("p"), 6, 0)
    save(bars("vertical", np.random.default_rng(3)), Path("new/one.png"))
    Path("s.yaml").write_text(yaml.safe_dump(spec() | {"training": {"epochs": 1,
                                                                     "batch_size": 4}}))
    assert cli(capfd, "train", "s.yaml", "--data", "p", "--out", "run", "-q")[0] == 0
    code, out, err = cli(capfd, "predict", "run", "--data", "new/one.png")
    assert code == 0, err
    assert out.splitlines()[0] == "file,prediction,p_horizontal,p_vertical"
    assert out.splitlines()[1].startswith("one.png,") and len(out.splitlines()) == 2
    folder = cli(capfd, "predict", "run", "--data", "new")[1]
    assert folder == out   # the same picture as one file or in a folder of one: the same answer
    code, out, err = cli(capfd, "eval", "run", "--data", "new/one.png")
    assert code == 2 and "new/one.png: is one picture, which has no label" in err, err
    # a table given to a picture run: its shape is the problem, not its text cells
    Path("t.csv").write_text("a,b,c,species\n1,2,3,setosa\n")
    code, out, err = cli(capfd, "predict", "run", "--data", "t.csv")
    assert code == 2 and ("t.csv: has samples of shape (4,) (feature columns a, b, c, species), "
                          "but the run's input is [1, 8, 8], 64 numbers a sample") in err, err


def test_an_image_folder_needs_an_image_input(workdir):
    make_folder(Path("p"), 1, 0)
    s = spec()
    s["input"], s["layers"] = [64], [{"dense": {"units": 2}}]
    with pytest.raises(InputError, match=r"p: is a folder of pictures: the spec's input must be "
                                         r"\[channels, height, width\] with channels 1, 3, 4"):
        data.read(bpcli.load_spec(s), "p")


def test_reading_in_chunks_gives_the_same_array(workdir, monkeypatch):
    make_folder(Path("p"), 5, 0)
    whole = read("p").X
    monkeypatch.setattr(images, "CHUNK", 3)
    monkeypatch.setattr(images, "PROGRESS_FROM", 1)  # the progress bar's path too
    np.testing.assert_array_equal(read("p").X, whole)


def test_a_conv2d_network_learns_the_bars_through_bpcli_train(workdir, capfd):
    make_folder(Path("train"), 60, 0)
    make_folder(Path("held_out"), 20, 1)
    Path("bars.yaml").write_text(yaml.safe_dump(spec(), sort_keys=False))
    code = main(["train", "bars.yaml", "--data", "train", "--val-data", "held_out", "-q"])
    err = capfd.readouterr().err
    assert code == 0, err
    assert "120 training and 40 validation samples from train" in err
    summary = json.loads(Path("runs/bars/summary.json").read_text())
    assert summary["final"]["val_accuracy"] >= 0.9  # chance is 0.5
    assert bpcli.load_spec("runs/bars/spec.yaml").data["data"]["classes"] == ["horizontal",
                                                                               "vertical"]


def test_a_palette_picture_is_resized_bilinear_as_the_others(workdir):
    # Pillow resizes palette indices (and 1-bit pictures) by nearest neighbour whatever filter
    # it is asked for; bpcli promises bilinear (the exported metadata says so): colours first
    rgb = np.random.default_rng(4).integers(0, 256, (4, 4, 3)).astype(np.uint8)
    Path("p/a").mkdir(parents=True)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save("p/a/x.png")
    as_rgb = Image.open("p/a/x.png").convert("RGBA").resize((8, 8), Image.Resampling.BILINEAR)
    d = read("p", channels=3, resize=True)
    np.testing.assert_allclose(d.X[0], np.moveaxis(np.asarray(as_rgb.convert("RGB")), -1, 0) / 255,
                               atol=1e-7)
