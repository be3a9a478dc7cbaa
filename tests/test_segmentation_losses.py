"""The per-pixel losses against their definitions, in float64: PyTorch's cross_entropy and
binary_cross_entropy_with_logits, soft Dice written out (and MONAI's DiceLoss where installed).

Each loss is built on a program whose input is the network output ``f``, so its value and its
gradient dL/df come straight from the engine; one comparison runs a whole tiny conv2d network
against the same network in torch. Then: stability at logits of +-1000, labels that cannot be
right, pixel accuracy, two epochs of ``bpcli train`` on an .npz of images and masks, and the
ONNX probabilities of a segmentation head."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import bpcli
from bpcli.cli import main
from bpcli.engine import Builder, backward, evaluate
from bpcli.errors import InputError
from bpcli.nn.losses import IGNORED, LOSSES

rng = np.random.default_rng(21)


def fields(loss, k: int) -> dict:
    """The loss's resolved fields (defaults filled) for K channels, as a spec gives them to its
    builder."""
    spec = bpcli.load_spec({"input": [k], "layers": ["relu"], "loss": loss})
    return spec.data["loss"]


def loss_and_grad(loss, f, y):
    """bpcli's loss of the output ``f`` for raw labels ``y`` and dL/df, through the engine."""
    cfg = fields(loss, f.shape[1])
    d = LOSSES[cfg["name"]]
    shape = (None, *f.shape[1:])
    b = Builder()
    fv = b.input("f", shape)
    yv = b.input("y", d.label_shape(shape))
    b.output("loss", d.build(b, fv, yv, cfg))
    prog = b.program()
    env = evaluate(prog, {"f": f, "y": d.labels(y, shape, cfg)})
    return float(env[prog.outputs["loss"].id]), backward(prog, env, "loss", ["f"])["f"]


def torch_loss_and_grad(torch, f, reference):
    ft = torch.tensor(f, requires_grad=True)
    L = reference(ft)
    L.backward()
    return L.item(), ft.grad.numpy()


def assert_same(ours, theirs, rtol=1e-12):
    (L, g), (L_ref, g_ref) = ours, theirs
    assert L == pytest.approx(L_ref, rel=rtol, abs=1e-15)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------- cross-entropy on label maps
CE_CASES = {
    "plain": {},
    "ignore_index": {"ignore_index": 255},
    "ignore_index-torch-default": {"ignore_index": -100},
    "weights": {"weights": [1.0, 2.0, 0.5, 3.0]},
    "weights-ignore_index": {"weights": [1.0, 2.0, 0.5, 3.0], "ignore_index": 255},
    "label_smoothing": {"label_smoothing": 0.2},
    "all-three": {"weights": [0.3, 2.0, 1.0, 4.0], "ignore_index": 255, "label_smoothing": 0.4},
}


def torch_cross_entropy(torch, given: dict, y):
    """f -> torch's cross_entropy of f against labels y with the loss fields ``given`` (weights,
    ignore_index, label_smoothing) as torch names them."""
    w, ignore = given.get("weights"), given.get("ignore_index")
    return lambda ft: torch.nn.functional.cross_entropy(
        ft, torch.tensor(y), weight=None if w is None else torch.tensor(w, dtype=torch.float64),
        ignore_index=-100 if ignore is None else ignore,
        label_smoothing=given.get("label_smoothing", 0.0))


@pytest.mark.parametrize("spatial", [(5, 6), (7,), (2, 3, 4)], ids=["2d", "1d", "3d"])
@pytest.mark.parametrize("name", CE_CASES)
def test_cross_entropy_on_label_maps_matches_torch(name, spatial, torch):
    given = CE_CASES[name]
    f = 3 * rng.standard_normal((3, 4, *spatial))
    y = rng.integers(0, 4, (3, *spatial))
    ignore = given.get("ignore_index")
    if ignore is not None:
        y.reshape(-1)[::5] = ignore  # every fifth pixel left out
    ours = loss_and_grad({"name": "softmax_cross_entropy", **given}, f, y)
    assert_same(ours, torch_loss_and_grad(torch, f, torch_cross_entropy(torch, given, y)))


@pytest.mark.parametrize("name", CE_CASES)
def test_cross_entropy_on_vectors_with_weights_and_ignore_index_matches_torch(name, torch):
    given = CE_CASES[name]
    f = 3 * rng.standard_normal((9, 4))
    y = rng.integers(0, 4, 9)
    ignore = given.get("ignore_index")
    if ignore is not None:
        y[[1, 4]] = ignore
    ours = loss_and_grad({"name": "softmax_cross_entropy", **given}, f, y)
    assert_same(ours, torch_loss_and_grad(torch, f, torch_cross_entropy(torch, given, y)))


def test_cross_entropy_on_vectors_keeps_its_first_program():
    # the (N, K) program without weights or ignore_index is the one it always was, one-hot
    # labels included, so runs and their numbers do not change
    for eps, prims in [(0.0, ["log_softmax", "mul", "sum", "mean", "neg"]),
                       (0.1, ["mul", "add", "log_softmax", "mul", "sum", "mean", "neg"])]:
        model = bpcli.build({"input": [3], "layers": [{"dense": {"units": 4}}],
                             "loss": {"name": "softmax_cross_entropy", "label_smoothing": eps}})
        loss_eqns = [e.prim.name for e in model.program.eqns if e.origin.part == "loss"]
        assert loss_eqns == prims
        assert model.prepare(np.zeros((2, 3)), [2, 0])[1].tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]


def test_label_maps_are_never_copied_one_hot():
    model = bpcli.build({"input": [1, 6, 6], "layers": [{"conv2d": {"channels": 5, "kernel": 1}}],
                         "loss": {"name": "softmax_cross_entropy", "ignore_index": 255}})
    y = rng.integers(0, 5, (2, 6, 6))
    y[0, 0, 0] = 255
    _, prepared = model.prepare(np.zeros((2, 1, 6, 6)), y)
    assert prepared.shape == (2, 1, 6, 6)  # one number per pixel, the class axis kept as 1
    assert prepared[0, 0, 0, 0] == IGNORED
    assert {e.prim.name for e in model.program.eqns} >= {"gather", "lookup"}


def test_a_whole_network_on_label_maps_matches_torch(torch):
    """conv2d -> softmax_cross_entropy with weights and ignore_index: the loss and every weight's
    gradient, against torch's conv2d and cross_entropy with the same weights."""
    F = torch.nn.functional
    model = bpcli.build({"input": [2, 5, 6], "dtype": "float64",
                         "layers": [{"conv2d": {"channels": 3, "kernel": 3, "pad": 1}}],
                         "loss": {"name": "softmax_cross_entropy", "ignore_index": 255,
                                  "weights": [2.0, 1.0, 0.5]}})
    X = rng.standard_normal((4, 2, 5, 6))
    y = rng.integers(0, 3, (4, 5, 6))
    y[:, 0, :] = 255
    L, grads = model.loss_and_grad(X, y)
    W = torch.tensor(model.params["layers.0.weight"], requires_grad=True)
    b = torch.tensor(model.params["layers.0.bias"], requires_grad=True)
    ref = F.cross_entropy(F.conv2d(torch.tensor(X), W, b, padding=1), torch.tensor(y),
                          weight=torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64), ignore_index=255)
    ref.backward()
    assert L == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(grads["layers.0.weight"], W.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["layers.0.bias"], b.grad.numpy(), rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------- binary cross-entropy on logits
@pytest.mark.parametrize("shape, pos_weight", [
    ((3, 1, 4, 5), None), ((3, 1, 4, 5), 2.5), ((6, 3), None), ((6, 3), [0.5, 2.0, 4.0]),
    ((2, 2, 3, 3), [3.0, 0.25]),
], ids=["mask", "mask-pos_weight", "multi-label", "multi-label-pos_weight-each",
        "two-masks-pos_weight-each"])
def test_sigmoid_cross_entropy_matches_torch(shape, pos_weight, torch):
    F = torch.nn.functional
    f = 3 * rng.standard_normal(shape)
    t = rng.integers(0, 2, shape).astype(float)
    # torch lays pos_weight along the last axis; along the channel axis it is (K, 1, 1)
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    if pw is not None and pw.ndim:
        pw = pw.reshape((-1,) + (1,) * (len(shape) - 2))
    reference = lambda ft: F.binary_cross_entropy_with_logits(  # noqa: E731
        ft, torch.tensor(t), pos_weight=pw)
    ours = loss_and_grad({"name": "sigmoid_cross_entropy", "pos_weight": pos_weight}, f, t)
    assert_same(ours, torch_loss_and_grad(torch, f, reference))
    if shape[1] == 1:  # a one-channel mask may come without its channel axis
        assert loss_and_grad({"name": "sigmoid_cross_entropy", "pos_weight": pos_weight}, f,
                             t[:, 0])[0] == ours[0]


@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy", "softmax_cross_entropy",
                                  "dice_cross_entropy", "dice"])
def test_losses_are_finite_for_logits_of_1000(loss, torch):
    F = torch.nn.functional
    K = 1 if loss in ("sigmoid_cross_entropy", "dice") else 2
    f = 1000.0 * rng.choice([-1.0, 1.0], (4, K, 3, 3))
    y = rng.integers(0, 2, (4, 3, 3))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        L, g = loss_and_grad(loss, f, y)
    assert np.isfinite(L) and np.isfinite(g).all()
    reference = {"sigmoid_cross_entropy": lambda ft: F.binary_cross_entropy_with_logits(
                     ft, torch.tensor(y[:, None], dtype=torch.float64)),
                 "softmax_cross_entropy": lambda ft: F.cross_entropy(ft, torch.tensor(y))}
    if loss in reference:
        assert_same((L, g), torch_loss_and_grad(torch, f, reference[loss]))


# ---------------------------------------------------------------- Dice
def dice_written_out(f, y, smooth=1e-5):
    """1 - mean over classes c of (2 sum p t + smooth) / (sum p + sum t + smooth), the sums over
    the batch and every pixel (MONAI's DiceLoss, batch=True); p = softmax over the channels and t
    the one-hot labels, or for one channel p = sigmoid(f) and t the mask."""
    if f.shape[1] == 1:
        p, t = 1 / (1 + np.exp(-f)), y.reshape(f.shape)
    else:
        e = np.exp(f - f.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        t = np.moveaxis(np.eye(f.shape[1])[y], -1, 1)
    axes = (0, *range(2, f.ndim))
    overlap, size = (p * t).sum(axis=axes), p.sum(axis=axes) + t.sum(axis=axes)
    return 1 - np.mean((2 * overlap + smooth) / (size + smooth))


def dice_gradient(f, y, smooth=1e-5):
    """dL/df of :func:`dice_written_out`, by central differences."""
    g = np.zeros_like(f)
    for j in np.ndindex(f.shape):
        e = np.zeros_like(f)
        e[j] = 1e-6
        g[j] = (dice_written_out(f + e, y, smooth) - dice_written_out(f - e, y, smooth)) / 2e-6
    return g


@pytest.mark.parametrize("K, spatial, smooth", [(3, (4, 5), 1e-5), (2, (6,), 1.0), (1, (4, 5), 1e-5),
                                                (4, (), 0.1)],
                         ids=["3-classes", "2-classes-1d-smooth-1", "mask", "vectors"])
def test_dice_is_the_formula_written_out(K, spatial, smooth):
    f = 2 * rng.standard_normal((3, K, *spatial))
    y = rng.integers(0, max(K, 2), (3, *spatial))
    L, g = loss_and_grad({"name": "dice", "smooth": smooth}, f, y)
    assert L == pytest.approx(dice_written_out(f, y, smooth), rel=1e-12)
    np.testing.assert_allclose(g, dice_gradient(f, y, smooth), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("K", [3, 1])
def test_dice_matches_monai(K):
    torch = pytest.importorskip("torch")
    monai = pytest.importorskip("monai")
    f = 2 * rng.standard_normal((3, K, 4, 5))
    y = rng.integers(0, max(K, 2), (3, 4, 5))
    reference = monai.losses.DiceLoss(batch=True, softmax=K > 1, sigmoid=K == 1,
                                      to_onehot_y=K > 1, smooth_nr=1e-5, smooth_dr=1e-5)
    ft = torch.tensor(f, requires_grad=True)
    L_ref = reference(ft, torch.tensor(y[:, None]))
    L_ref.backward()
    assert_same(loss_and_grad("dice", f, y), (L_ref.item(), ft.grad.numpy()), rtol=1e-10)


@pytest.mark.parametrize("K", [3, 1])
def test_dice_cross_entropy_is_the_weighted_sum_of_its_parts(K, torch):
    F = torch.nn.functional
    f = 2 * rng.standard_normal((3, K, 4, 5))
    y = rng.integers(0, max(K, 2), (3, 4, 5))
    L, g = loss_and_grad({"name": "dice_cross_entropy", "dice_weight": 0.7, "ce_weight": 1.5},
                         f, y)
    # MONAI's DiceCELoss: lambda_dice Dice + lambda_ce CE (binary on logits for one channel)
    ce = (F.binary_cross_entropy_with_logits(torch.tensor(f), torch.tensor(y[:, None], dtype=torch.float64))
          if K == 1 else F.cross_entropy(torch.tensor(f), torch.tensor(y)))
    assert L == pytest.approx(0.7 * dice_written_out(f, y) + 1.5 * ce.item(), rel=1e-12)
    L_ce, g_ce = loss_and_grad({"name": "sigmoid_cross_entropy" if K == 1
                                else "softmax_cross_entropy"}, f, y)
    np.testing.assert_allclose(g, 0.7 * dice_gradient(f, y) + 1.5 * g_ce, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- labels, fields, accuracy
def seg_model(loss, channels, spatial=(4, 4)):
    return bpcli.build({"input": [1, *spatial],
                        "layers": [{"conv2d": {"channels": channels, "kernel": 1}}], "loss": loss})


@pytest.mark.parametrize("loss, channels, y, words", [
    ("softmax_cross_entropy", 3, [[7, 0], [255, 1]], ["0..2", "[7, 255]", "the values: [0, 1, 7, 255]"]),
    ({"name": "softmax_cross_entropy", "ignore_index": 255}, 3, [[7, 0], [255, 1]],
     ["or ignore_index 255", "found [7]"]),
    ("softmax_cross_entropy", 3, [[0.5, 0], [1, 1]], ["found [0.5]"]),
    ("dice", 2, [[2, 0], [1, 1]], ["0..1", "found [2]"]),
    ("dice", 1, [[2, 0], [1, 1]], ["0/1", "found [2]"]),
    ("sigmoid_cross_entropy", 1, [[0, -1], [1, 1]], ["0/1", "found [-1]"]),
    ("softmax_cross_entropy", 3, [[0, 1, 2], [1, 1, 1]], ["(2, 3) per sample", "(2, 2)"]),
], ids=["out-of-range", "ignore_index-but-not-7", "not-an-integer", "dice-classes", "dice-mask",
        "bce-targets", "shape"])
def test_bad_labels_name_the_values_found(loss, channels, y, words):
    model = seg_model(loss, channels, (2, 2))
    labels = np.array([y, y])
    with pytest.raises(InputError) as e:
        model.prepare(np.zeros((2, 1, *model.spec.data["input"][1:])), labels)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_fields_that_do_not_fit_the_output_are_refused_at_their_key():
    with pytest.raises(InputError, match=r"loss\.weights.*3 numbers.*2 classes"):
        seg_model({"name": "softmax_cross_entropy", "weights": [1, 2, 3]}, 2)
    with pytest.raises(InputError, match=r"loss\.pos_weight.*2 numbers.*1 channels"):
        seg_model({"name": "sigmoid_cross_entropy", "pos_weight": [1, 2]}, 1)
    with pytest.raises(InputError, match="K >= 2 class scores.*channels: K"):
        seg_model("softmax_cross_entropy", 1)
    with pytest.raises(InputError, match=r"loss\.weights.*number >= 0"):
        bpcli.load_spec({"input": [2], "layers": ["relu"],
                         "loss": {"name": "softmax_cross_entropy", "weights": [1, -2]}})
    with pytest.raises(InputError, match=r"loss\.ignore_index.*integer"):
        bpcli.load_spec({"input": [2], "layers": ["relu"],
                         "loss": {"name": "softmax_cross_entropy", "ignore_index": 2.5}})


def test_pixel_accuracy_leaves_ignored_pixels_out():
    model = seg_model({"name": "softmax_cross_entropy", "ignore_index": 9}, 2, (1, 4))
    f = np.array([[[[2.0, -1.0, 3.0, 0.0]], [[0.0, 1.0, 1.0, 5.0]]]])   # argmax 0, 1, 0, 1
    _, y = model.prepare(np.zeros((1, 1, 1, 4)), [[[0, 0, 9, 9]]])
    assert model.loss_def.accuracy(f, y) == 0.5                       # 2 pixels count, 1 right
    clf = model.loss_def.classifier
    assert clf.decide(f).tolist() == [[[0, 1, 0, 1]]]
    assert clf.truth(y).tolist() == [[[0, 0, IGNORED, IGNORED]]]
    np.testing.assert_allclose(clf.probabilities(f).sum(axis=1), 1.0)
    assert clf.probabilities(f).shape == f.shape


def test_one_channel_classifiers_decide_by_the_sign_per_pixel():
    f = np.array([[[[2.0, -1.0], [-3.0, 0.5]]]])                      # (1, 1, 2, 2)
    for loss in ("dice", "sigmoid_cross_entropy", "dice_cross_entropy"):
        model = seg_model(loss, 1, (2, 2))
        _, y = model.prepare(np.zeros((1, 1, 2, 2)), [[[1, 1], [0, 0]]])
        clf = model.loss_def.classifier
        assert clf.decide(f).tolist() == [[[1, 0], [0, 1]]]
        assert clf.truth(y).tolist() == [[[1, 1], [0, 0]]]
        assert model.loss_def.accuracy(f, y) == 0.5
        assert model.classes() == ["0", "1"]
        p = clf.probabilities(f)
        assert p.shape == (1, 2, 2, 2)
        np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-f[:, 0])))


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("loss, channels", [
    ({"name": "softmax_cross_entropy", "ignore_index": 255, "weights": [1.0, 2.0]}, 2),
    ("dice_cross_entropy", 2), ("dice", 1), ("sigmoid_cross_entropy", 1)],
    ids=["softmax_cross_entropy", "dice_cross_entropy", "dice", "sigmoid_cross_entropy"])
def test_bpcli_train_two_epochs_on_images_and_masks_from_an_npz(loss, channels, tmp_path):
    X = rng.standard_normal((24, 1, 8, 8))
    y = (X[:, 0] > 0).astype(np.int64)                 # the mask: where the picture is bright
    if isinstance(loss, dict):
        y[:, 0, :] = 255                               # a border row left out
    np.savez(tmp_path / "masks.npz", X=X, y=y)
    spec = tmp_path / "seg.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "seg", "input": [1, 8, 8], "seed": 0,
        "data": {"path": str(tmp_path / "masks.npz"), "val_split": 0.25},
        "layers": [{"conv2d": {"channels": 4, "kernel": 3, "pad": 1}}, "relu",
                   {"conv2d": {"channels": channels, "kernel": 3, "pad": 1}}],
        "loss": loss, "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 2, "batch_size": 8}}))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 0
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3 and "nan" not in lines[-1]


def test_a_segmentation_head_exports_per_pixel_probabilities():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from bpcli.export import to_onnx

    X = rng.standard_normal((3, 1, 5, 6)).astype(np.float32)
    for loss, channels in [("softmax_cross_entropy", 3), ("sigmoid_cross_entropy", 1)]:
        model = bpcli.build({"input": [1, 5, 6], "dtype": "float32", "loss": loss,
                             "layers": [{"conv2d": {"channels": channels, "kernel": 3, "pad": 1}}]})
        session = ort.InferenceSession(to_onnx(model).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        output, probabilities = session.run(None, {"X": X})
        want = model.predict(X).probabilities
        assert probabilities.shape == want.shape == (3, max(channels, 2), 5, 6)
        np.testing.assert_allclose(probabilities, want, rtol=1e-5, atol=1e-6)
