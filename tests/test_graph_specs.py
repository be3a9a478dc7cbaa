"""Networks that are not chains: ``name``, ``from``, ``add`` and ``concat``.

Wiring mistakes are reported all at once at their lines; a ResNet block computes what
PyTorch's modules compute with the same weights (forward and every gradient, float64); every
compiled program passes the program checker, which itself catches broken programs; chain specs
keep the fingerprints they had before graphs existed; the commands work on a graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import cli

import bpcli
from bpcli.engine.program import Builder, ProgramError, check
from bpcli.errors import InputError
from bpcli.spec.validate import check as check_spec, load

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, layers_yaml: str, input_shape="[2, 6, 6]") -> Path:
    path = tmp_path / "graph.yaml"
    path.write_text(f"input: {input_shape}\nloss: mse\nlayers:\n{layers_yaml}")
    return path


# ---------------------------------------------------------------- wiring mistakes, all at once
def test_every_wiring_mistake_is_reported_at_once_with_its_line(tmp_path):
    path = write(tmp_path, """\
  - conv2d: {channels: 2, kernel: 3, pad: same, name: enc1}
  - relu: {name: enc1}
  - conv2d: {channels: 2, kernel: 3, pad: same, from: enc2}
  - add: {with: [dec]}
  - relu: {name: input}
  - conv2d: {channels: 2, kernel: 1, from: ecn1, name: dec}
""")
    with pytest.raises(InputError) as info:
        check_spec(str(path))
    found = {(e.line, e.path): e.message for e in info.value.errors}
    assert set(found) == {(5, "layers[1].relu.name"), (6, "layers[2].conv2d.from"),
                          (7, "layers[3].add.with[0]"), (8, "layers[4].relu.name"),
                          (9, "layers[5].conv2d.from")}
    assert "taken by layers[0]" in found[5, "layers[1].relu.name"]
    assert "no earlier layer is named 'enc2'" in found[6, "layers[2].conv2d.from"]
    assert "'dec' is the name of layers[5], which comes after this layer" in found[
        7, "layers[3].add.with[0]"]
    assert "input is the network's input" in found[8, "layers[4].relu.name"]
    assert "did you mean 'enc1'?" in found[9, "layers[5].conv2d.from"]


def test_shapes_that_cannot_be_added_or_joined_name_both_shapes_in_every_branch(tmp_path):
    path = write(tmp_path, """\
  - conv2d: {channels: 3, kernel: 3, pad: same, name: a}
  - add: {with: [input]}
  - conv2d: {channels: 2, kernel: 3, from: input, name: b}
  - concat: {with: [a]}
""")
    with pytest.raises(InputError) as info:
        check_spec(str(path))
    errors = {e.path: e for e in info.value.errors}
    assert set(errors) == {"layers[1].add.with", "layers[3].concat.with"}
    assert errors["layers[1].add.with"].line == 5
    assert ("add cannot take its inputs of shapes (3, 6, 6) and (2, 6, 6): shapes must agree"
            in errors["layers[1].add.with"].message)
    assert ("concat cannot take its inputs of shapes (2, 4, 4) and (3, 6, 6): every axis but "
            "the channel axis" in errors["layers[3].concat.with"].message)


def test_a_wiring_mistake_is_one_paragraph_and_exit_2(tmp_path, capsys):
    path = write(tmp_path, "  - relu\n  - add: {with: [skip]}\n")
    code, out, err = cli(capsys, "validate", path)
    assert code == 2
    assert f"{path}:5:" in err and "no earlier layer is named 'skip'" in err


def test_a_layer_cannot_take_its_own_output_and_with_is_for_merges(tmp_path):
    path = write(tmp_path, "  - relu: {name: a}\n  - add: {with: [me], name: me}\n")
    with pytest.raises(InputError, match="'me' is this layer's own name"):
        check_spec(str(path))
    path = write(tmp_path, "  - relu: {name: a}\n  - relu: {with: [a]}\n")
    with pytest.raises(InputError, match=r"relu takes one input: with is for the layers that "
                                         r"merge several \(add, concat\).*use from"):
        check_spec(str(path))


def test_name_and_from_are_checked_as_fields(tmp_path):
    path = write(tmp_path, "  - relu: {name: 3x}\n  - relu: {from: [a]}\n")
    with pytest.raises(InputError) as info:
        check_spec(str(path))
    paths = {e.path for e in info.value.errors}
    assert paths == {"layers[0].relu.name", "layers[1].relu.from"}


# ---------------------------------------------------------------- the same numbers as PyTorch
def _resnet_block_spec():
    layers = [
        {"conv2d": {"channels": 3, "kernel": 3, "pad": 1, "name": "stem"}},
        {"conv2d": {"channels": 3, "kernel": 3, "pad": 1, "bias": False}}, "relu",
        {"conv2d": {"channels": 3, "kernel": 3, "pad": 1}},
        {"add": {"with": ["stem"]}}, {"relu": {"name": "block"}},          # identity shortcut
        {"conv2d": {"channels": 4, "kernel": 3, "stride": 2, "pad": 1}}, {"tanh": {"name": "f"}},
        {"conv2d": {"channels": 4, "kernel": 1, "stride": 2, "from": "block"}},   # projection
        {"add": {"with": ["f"]}},
        "relu",
    ]
    return {"name": "block", "input": [2, 6, 6], "dtype": "float64", "seed": 0, "layers": layers,
            "loss": "mse"}


def test_a_resnet_block_computes_what_torch_computes_forward_and_every_gradient():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model = bpcli.build(_resnet_block_spec())
    rng = np.random.default_rng(3)
    for w in model.params.values():
        w[...] = rng.standard_normal(w.shape) * 0.5
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    X = rng.standard_normal((4, 2, 6, 6))
    x = torch.tensor(X, requires_grad=True)

    def conv(h, i, **kw):
        return F.conv2d(h, p[f"layers.{i}.weight"], p.get(f"layers.{i}.bias"), **kw)
    stem = conv(x, 0, padding=1)
    block = F.relu(conv(F.relu(conv(stem, 1, padding=1)), 3, padding=1) + stem)
    f = torch.tanh(conv(block, 6, stride=2, padding=1))
    out = F.relu(conv(block, 8, stride=2) + f)

    np.testing.assert_allclose(model.forward(X), out.detach().numpy(), rtol=1e-13, atol=1e-13)
    Y = rng.standard_normal(tuple(out.shape))
    ((out - torch.tensor(Y)) ** 2).mean().backward()
    prepared = model.prepare(X, Y)
    step = model.step(*prepared, grad=True)
    for name, t in p.items():
        np.testing.assert_allclose(step.grads[name], t.grad.numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    np.testing.assert_allclose(step.loss, ((out.detach().numpy() - Y) ** 2).mean(), rtol=1e-13)


def test_a_unet_join_concatenates_channels_as_torch_cat():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    spec = {"name": "join", "input": [2, 4, 4], "dtype": "float64", "seed": 0, "loss": "mse",
            "layers": [{"conv2d": {"channels": 3, "kernel": 3, "pad": 1, "name": "enc"}},
                       {"conv2d": {"channels": 2, "kernel": 1}},
                       {"concat": {"with": ["enc", "input"]}},
                       {"conv2d": {"channels": 1, "kernel": 3, "pad": 1}}]}
    model = bpcli.build(spec)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    X = np.random.default_rng(4).standard_normal((3, 2, 4, 4))
    x = torch.tensor(X, requires_grad=True)
    enc = F.conv2d(x, p["layers.0.weight"], p["layers.0.bias"], padding=1)
    mid = F.conv2d(enc, p["layers.1.weight"], p["layers.1.bias"])
    out = F.conv2d(torch.cat([mid, enc, x], dim=1), p["layers.3.weight"], p["layers.3.bias"],
                   padding=1)
    np.testing.assert_allclose(model.forward(X), out.detach().numpy(), rtol=1e-13, atol=1e-13)
    Y = np.random.default_rng(5).standard_normal(tuple(out.shape))
    ((out - torch.tensor(Y)) ** 2).mean().backward()
    _, grads = model.loss_and_grad(X, Y)
    for name, t in p.items():
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)


# ---------------------------------------------------------------- the program checker
def test_every_shipped_spec_compiles_to_a_program_the_checker_accepts():
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        model = bpcli.build(load(str(path)))
        check(model.program)
        check(model.train_program)


def _tiny_program():
    b = Builder()
    x = b.input("x", (None, 3))
    w = b.input("w", (3, 2))
    b.output("y", (x @ w).sum())
    return b.program()


def test_the_program_checker_accepts_a_sound_program_and_names_each_kind_of_fault():
    prog = _tiny_program()
    check(prog)
    # an equation reading a value before it is defined (the tape out of order)
    broken = _tiny_program()
    broken.eqns.reverse()
    with pytest.raises(ProgramError, match="reads v.* before it is defined"):
        check(broken)
    # an output shape its primitive's rule does not give
    from dataclasses import replace
    from bpcli.engine.program import Var
    wrong = _tiny_program()
    e = wrong.eqns[0]
    wrong.eqns[0] = replace(e, out=Var(e.out.id, (None, 5), None))
    with pytest.raises(ProgramError, match=r"output has shape \(N,5\), but matmul of"):
        check(wrong)
    # a value defined twice
    twice = _tiny_program()
    twice.eqns.append(twice.eqns[0])
    with pytest.raises(ProgramError, match="defined a second time"):
        check(twice)
    # an output nothing defines
    dangling = _tiny_program()
    dangling.outputs["z"] = Var(99, (), None)
    with pytest.raises(ProgramError, match="output 'z'"):
        check(dangling)


# ---------------------------------------------------------------- chains stay as they were
# each shipped chain spec's fingerprint before graphs existed (bpcli at ec86057)
FINGERPRINTS = {"image_cnn": "849574d7972b0195", "lecture_cnn": "19b9ed92aaa8903b",
                "linear_regression": "7eb4a64b47910907", "pulse_cnn": "fe9e59b63b35fe70",
                "two_layer_sumsq": "d983ea9e589430e2"}


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_chain_specs_keep_their_fingerprints(name):
    spec = load(str(ROOT / "specs" / f"{name}.yaml"))
    assert spec.network.is_chain
    assert spec.fingerprint() == FINGERPRINTS[name]


# ---------------------------------------------------------------- commands on a graph
def test_inspect_shows_each_layers_wiring_and_shapes(capsys):
    code, out, _ = cli(capsys, "inspect", ROOT / "specs" / "resnet_shapes.yaml", "--json")
    assert code == 0
    import json
    rows = json.loads(out)["layers"]
    adds = [r for r in rows if r["layer"] == "add"]
    assert [a["wiring"] for a in adds] == [{"with": ["stem"]}, {"with": ["residual2"]}]
    assert adds[1]["input_shapes"] == [[16, 14, 14], [16, 14, 14]]
    projection = rows[15]
    assert projection["wiring"] == {"from": "block1"} and projection["input_shapes"] == [[8, 28, 28]]
    code, out, _ = cli(capsys, "inspect", ROOT / "specs" / "resnet_shapes.yaml")
    assert "with=[stem]" in out and "from=block1" in out


def test_set_rewires_a_layer(capsys, tmp_path):
    spec = ROOT / "specs" / "resnet_shapes.yaml"
    code, _, err = cli(capsys, "validate", spec, "--set", "layers[8].add.with=[block1]")
    assert code == 2 and "'block1' is the name of layers[9], which comes after" in err and "--set" in err
    code, out, _ = cli(capsys, "validate", spec, "--set", "layers[15].conv2d.from=stem")
    assert code == 0, out


def test_gradcheck_checks_each_layer_of_a_graph_including_every_input_of_a_merge(capsys,
                                                                                  tmp_path):
    import json

    import yaml
    path = tmp_path / "block.yaml"
    path.write_text(yaml.safe_dump(_resnet_block_spec()))
    code, out, err = cli(capsys, "gradcheck", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    layers = {r["layer"]: r for r in report["layers"]}
    assert layers["layers[4] (add)"]["passed"] and layers["layers[9] (add)"]["passed"]


def test_the_docs_unet_computes_what_torch_computes_forward_and_every_gradient():
    """docs/graphs/unet.yaml (conv, maxpool, conv2d_transpose, upsample2d bilinear, two concat
    joins) against the same network written with torch.nn.functional, the same weights."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    spec = load(str(ROOT / "docs" / "graphs" / "unet.yaml"))
    spec = load({**spec.raw, "dtype": "float64"})
    model = bpcli.build(spec)
    rng = np.random.default_rng(11)
    for w in model.params.values():
        w[...] = rng.standard_normal(w.shape) * 0.4
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    X = rng.standard_normal((3, 1, 16, 16))
    x = torch.tensor(X, requires_grad=True)

    def conv(h, i, **kw):
        return F.conv2d(h, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"], **kw)
    enc1 = F.relu(conv(x, 0, padding="same"))
    enc2 = F.relu(conv(F.max_pool2d(enc1, 2), 3, padding="same"))
    h = F.relu(conv(F.max_pool2d(enc2, 2), 6, padding="same"))
    h = F.conv_transpose2d(h, p["layers.8.weight"], p["layers.8.bias"], stride=2)
    h = F.relu(conv(torch.cat([h, enc2], dim=1), 10, padding="same"))
    h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
    h = torch.cat([conv(h, 13, padding="same"), enc1], dim=1)
    out = conv(F.relu(conv(h, 15, padding="same")), 17)

    np.testing.assert_allclose(model.forward(X), out.detach().numpy(), rtol=1e-12, atol=1e-13)
    Y = rng.standard_normal(tuple(out.shape))
    ((out - torch.tensor(Y)) ** 2).mean().backward()
    L, grads = model.loss_and_grad(X, Y)
    np.testing.assert_allclose(L, ((out.detach().numpy() - Y) ** 2).mean(), rtol=1e-12)
    for name, t in p.items():
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-11, atol=1e-13,
                                   err_msg=name)


def test_inspect_draws_the_matrices_and_kernels_of_transposed_convs_and_upsampling(capsys,
                                                                                   tmp_path):
    """A transposed convolution's weight is (in, out, *kernel): its kernel picture and its
    matrix's channel blocks read it as (out, in) through LayerDef.weight_axes; upsampling has a
    matrix and no weight."""
    from bpcli.explain.layer_table import kernel_indices, out_in_weight, toeplitz_matrix
    unet = ROOT / "docs" / "graphs" / "unet.yaml"
    model = bpcli.build(load(str(unet)))
    assert model.params["layers.8.weight"].shape == (16, 8, 2, 2)      # PyTorch's (in, out, ...)
    assert out_in_weight(model, 8).shape == (8, 16, 2, 2)
    assert toeplitz_matrix(model, 8).shape == (8 * 8 * 8, 16 * 4 * 4)
    assert toeplitz_matrix(model, 12).shape == (8 * 16 * 16, 8 * 8 * 8)
    assert 12 not in kernel_indices(model) and 8 in kernel_indices(model)
    for args in (["--toeplitz", "8"], ["--toeplitz", "12"], ["--kernels"]):
        code, out, err = cli(capsys, "inspect", unet, *args, "--out", tmp_path / "p.png")
        assert code == 0, err
        assert (tmp_path / "p.png").stat().st_size > 0


def test_init_layers_names_a_layer_by_its_name_or_its_index(tmp_path):
    path = write(tmp_path, """\
  - conv2d: {channels: 2, kernel: 3, pad: same, name: stem}
  - conv2d: {channels: 2, kernel: 3, pad: same}
init: {name: he, layers: {stem: zeros, 1: xavier}}
""")
    spec = load(str(path))
    assert set(spec.data["init"]["layers"]) == {0, 1}
    model = bpcli.build(spec)
    assert not model.params["layers.0.weight"].any() and model.params["layers.1.weight"].any()
    path.write_text(path.read_text().replace("stem: zeros", "stme: zeros"))
    with pytest.raises(InputError, match=r"init.layers.stme: must be the index of a layer, 0..1 "
                                         r"or a layer's name \(stem\), got 'stme' \(did you mean "
                                         r"'stem'\?\)"):
        load(str(path))
