"""The engine on another device: the discipline that keeps rules device-neutral, checked on the
CPU; the same training on every device; checkpoints that cross devices; what --device says
when the GPU is not there.

A rule that builds a host array behind the engine's back (``np.zeros(shape)`` without
``like=``, ``np.asarray(x)``, ``np.array(...)``), or calls what CuPy lacks (a function CuPy does
not have, a keyword its signature does not take), works with NumPy and breaks on a GPU. The
stand-in (device_stand_in.py) is a device array on the CPU that refuses both as CuPy 14 does. A
rule passes when it hands back stand-ins computed from stand-ins, with NumPy's values.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
from device_stand_in import (DeviceArray, HostArrayMixedIn, ImplicitCopyToHost, NotOnCuPy, dev,
                             numpy_arithmetic)
from helpers import run_arrays, tiny_spec
from test_primitives import CASES, In, Traced

from bpcli.cli import main
from bpcli.engine import PRIMITIVES, backend, backward, evaluate, forward_tangent


def test_the_stand_in_catches_host_arrays():
    x = dev([1.0, -2.0])
    assert type(np.maximum(x, 0)) is DeviceArray
    assert type(np.zeros(3, like=x)) is DeviceArray
    assert type(x.sum()) is DeviceArray and x.sum().ndim == 0
    assert type(np.zeros(3)) is np.ndarray       # made behind the engine's back: caught below
    assert type(np.asarray(x)) is np.ndarray
    with pytest.raises(HostArrayMixedIn):
        x + np.ones(2)
    with pytest.raises(HostArrayMixedIn):
        x[np.array([0])]
    with pytest.raises(HostArrayMixedIn):
        x[...] = np.ones(2)


@pytest.mark.parametrize("call, says", [
    # NEP 35 hands NumPy's Python-level defaults on: CuPy's full has no device keyword
    (lambda x: np.full(3, 1.0, dtype=x.dtype, like=x), "np.full -> cupy.full"),
    (lambda x: x.max(initial=0), "ndarray.max"),
    (lambda x: np.exp(x, where=x > 0), "take only out, dtype, casting"),
    (lambda x: np.add(x, [1.0, 2.0]), "arrays and scalars only"),
    (lambda x: np.lib.scimath.sqrt(x), "has no cupy.lib.scimath.sqrt"),
    (lambda x: x.flags.writeable, "writeable"),
    (lambda x: x.setflags(write=False), "no attribute 'setflags'"),
])
def test_the_stand_in_refuses_what_cupy_refuses(call, says):
    with pytest.raises((NotOnCuPy, AttributeError), match=says):
        call(dev([1.0, -2.0]))


def test_installed_the_stand_in_refuses_an_implicit_copy_to_the_host(stand_in_gpu):
    x = dev([1.0, -2.0])
    for convert in (np.asarray, np.array, np.asanyarray):
        with pytest.raises(ImplicitCopyToHost):
            convert(x)
    assert type(np.asarray([3.0], like=x)) is DeviceArray      # the explicit move, NEP 35
    assert backend.to_host(x).tolist() == [1.0, -2.0]           # the explicit copy back


def test_the_stand_in_takes_what_cupy_takes():
    x = dev([[1.0, -2.0], [3.0, 0.5]])
    i = np.argmax(x, axis=1)[:, None]
    for r in (np.zeros((2, 1), dtype=np.intp, like=x), np.full_like(x, 2.0, shape=(3,)),
              np.take_along_axis(x, i, axis=1), x.sum(axis=0, keepdims=True),
              x.astype(np.float32, copy=False), np.bincount(np.zeros(2, dtype=np.intp, like=x),
                                                            weights=x[0], minlength=3)):
        assert type(r) is DeviceArray
    np.put_along_axis(x, i, 0.0, axis=1)
    np.copyto(x, 7.0, where=x < 0)
    assert x.get().tolist() == [[0.0, 7.0], [0.0, 0.5]]


def test_the_record_of_cupy_is_the_installed_cupys():
    """Where CuPy is installed (a GPU machine, or any machine: it imports without one), what
    the stand-in believes of it is checked against it: every recorded function, method and
    ufunc is there with the recorded parameters."""
    pytest.importorskip("cupy")
    from cupy_api import load, record

    recorded, installed = load(), record()
    for part in ("functions", "methods", "ufunc_methods"):
        changed = {k: (v, installed[part].get(k)) for k, v in recorded[part].items()
                   if installed[part].get(k) != v}
        assert not changed, (f"CuPy {installed['cupy']} differs from the record of "
                             f"{recorded['cupy']} in {part}: {changed}; re-record with "
                             f"python tests/cupy_api.py --write")
    assert set(recorded["ufuncs"]) <= set(installed["ufuncs"])
    # and the entry points bpcli.engine.backend calls itself, which the stand-in plays
    import functools

    import cupy

    for path in ("asarray", "cuda.runtime.getDeviceCount", "cuda.get_current_stream",
                 "lib.stride_tricks.as_strided", "ndarray.get"):
        assert callable(functools.reduce(getattr, path.split("."), cupy)), path
    assert cupy.ndarray.__module__ == "cupy"  # backend.on_device tells a CuPy array by it


def _device_args(case):
    """The case's inputs as device arrays; constants as the engine has them there (arrays moved,
    numbers kept)."""
    return [dev(a.value) if isinstance(a, In) else dev(a) if isinstance(a, np.ndarray) else a
            for a in case.args]


def _call(case, rule, fn, *args, **kw):
    """``fn(*args, **kw)``, failing with the primitive and the rule when it makes a host array."""
    try:
        r = fn(*args, **kw)
    except HostArrayMixedIn as e:
        pytest.fail(f"primitive {case.prim!r}, {rule}: {e} (case {case.id})")
    for part in (r if isinstance(r, tuple) else (r,)):
        assert type(part) is DeviceArray, (f"primitive {case.prim!r}, {rule}: returned a "
                                           f"{type(part).__name__}, not a device array "
                                           f"(case {case.id})")
    return r


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_rule_keeps_its_arrays_on_the_device(case, stand_in_gpu):
    prim = PRIMITIVES[case.prim]
    host = [a.value if isinstance(a, In) else a for a in case.args]
    args = _device_args(case)
    y = _call(case, "forward", prim.impl, *args, **case.params)
    y_host = prim.impl(*host, **case.params)
    saved = {}
    if prim.saves:
        (y, saved["saved"]), y_host = y, y_host[0]
    np.testing.assert_array_equal(y.view(np.ndarray), y_host)
    rng = np.random.default_rng(0)
    for i, a in enumerate(case.args):
        if not isinstance(a, In):
            continue
        g = dev(rng.standard_normal(np.shape(y)))
        t = dev(rng.standard_normal(a.value.shape))
        _call(case, f"vjp[{i}]", prim.vjp[i], g, y, *args, **case.params, **saved)
        _call(case, f"jvp[{i}]", prim.jvp[i], t, y, *args, **case.params)
    if prim.branch is not None:
        _call(case, "branch", prim.branch, *args, **case.params)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_engine_runs_every_primitive_on_the_device(case, stand_in_gpu):
    t = Traced(case.prim, case.args, case.params)  # array constants move with the values
    values = {k: dev(v) for k, v in t.values.items()}
    env = evaluate(t.prog, values)
    assert type(env[t.prog.outputs["s"].id]) is DeviceArray
    grads = backward(t.prog, env, "s", t.names)
    assert all(type(g) is DeviceArray for g in grads.values()), case.id
    value, tangent = forward_tangent(t.prog, values, {n: dev(np.ones_like(values[n]))
                                                      for n in t.names}, "y")
    assert type(value) is DeviceArray and type(tangent) is DeviceArray, case.id


# ---------------------------------------------------------------- training across devices
# conv1d, batchnorm (buffers), dropout (masks) and adam (optimizer state): every kind of array
SPEC = tiny_spec(layers=[{"conv1d": {"channels": 4, "kernel": 5, "pad": "same"}},
                         {"batchnorm": {}}, "relu", {"dropout": {"rate": 0.25}}, {"dense": {"units": 1}}],
                 training={"epochs": 2})
def _metrics(run):
    """metrics.csv's numbers, every column but the clock."""
    import csv

    with open(f"{run}/metrics.csv") as f:
        return np.array([[float(v) if v else np.nan for k, v in r.items() if k != "elapsed_s"]
                         for r in csv.DictReader(f)])


def _train(workdir, out, *args):
    spec = workdir / "spec.yaml"
    spec.write_text(SPEC)
    assert main(["train", str(spec), "-q", "--out", out, *args]) == 0


def _same_run(a, b, exact):
    """Two runs' metrics and final weights: the same bits, or the same to float32 rounding."""
    ma, mb, wa, wb = _metrics(a), _metrics(b), run_arrays(a), run_arrays(b)
    assert wa.keys() == wb.keys()
    if exact:
        assert np.array_equal(ma, mb, equal_nan=True)
        assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    else:  # a GPU sums in another order: float32 rounding, over two epochs of steps
        np.testing.assert_allclose(ma, mb, rtol=1e-4)
        for k in wa:
            np.testing.assert_allclose(wa[k], wb[k], rtol=1e-3, atol=1e-5, err_msg=k)


def _check_devices_agree(workdir, device, exact):
    _train(workdir, "cpu", "--device", "cpu")
    _train(workdir, "here", "--device", device)
    _same_run("cpu", "here", exact)
    assert json.loads((workdir / "here" / "summary.json").read_text())["device"] == device
    # a checkpoint written on one device resumes on the other, both ways
    for way, (first, then) in enumerate(((device, "cpu"), ("cpu", device))):
        run = f"{first}-then-{then}-{way}"
        _train(workdir, run, "--device", first, "--epochs", "1")
        assert main(["train", "--resume", run, "--epochs", "2", "-q", "--device", then]) == 0
        _same_run("cpu", run, exact)


@pytest.mark.slow
def test_training_and_resuming_agree_on_every_device(workdir, device):
    _check_devices_agree(workdir, device, exact=numpy_arithmetic(device))


# every layer, optimizer and loss, and every shipped spec, on a GPU: on the stand-in the CPU's very
# bits (each rule, optimizer update and loss head is device-neutral), on a real one its curve
EVERY_LAYER = tiny_spec(layers=[
    {"conv1d": {"channels": 3, "kernel": 3, "pad": "same"}}, {"leaky_relu": {"slope": 0.1}},
    {"maxpool1d": {"size": 3, "stride": 2, "pad": 1}}, {"batchnorm": {}}, {"elu": {}},
    {"avgpool1d": {"size": 2, "pad": 1}}, "tanh", {"dropout": {"rate": 0.2}}, "flatten",
    {"dense": {"units": 4}}, "sigmoid", "softplus", {"dense": {"units": 1}}], training={"epochs": 1})
SHAPES = {"input": [1, 12, 12], "data": {"builtin": "shapes", "n": 60, "classes": 3,
                                         "val_split": 0.25},
          "layers": [{"conv2d": {"channels": 2, "kernel": 3, "pad": 1}}, "relu",
                     {"maxpool2d": {"size": 3, "stride": 2, "pad": 1}},
                     {"avgpool2d": {"size": 2}}, {"dense": {"units": 3}}],
          "loss": "softmax_cross_entropy", "training": {"epochs": 1}}
LINEAR = {"input": [3], "data": {"builtin": "linear", "n": 60, "val_split": 0.25},
          "layers": [{"dense": {"units": 1}}], "training": {"epochs": 1}}
STAND_IN_SPECS = {
    "every-layer": EVERY_LAYER, "conv2d-softmax": tiny_spec(**SHAPES),
    **{f"optimizer-{o}": tiny_spec(optimizer={"name": o, "lr": 0.01},
                                   training={"epochs": 1, "batch_size": "full" if o == "gd" else 32})
       for o in ("gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adamw")},
    **{f"loss-{loss}": tiny_spec(**LINEAR, loss=loss) for loss in ("mse", "mae", "huber")},
    "loss-hinge": tiny_spec(loss="hinge", training={"epochs": 1}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", [*STAND_IN_SPECS, "specs/image_cnn.yaml", "specs/lecture_cnn.yaml",
                                  "specs/linear_regression.yaml", "specs/pulse_cnn.yaml",
                                  "specs/two_layer_sumsq.yaml"])
@pytest.mark.parametrize("device", ["stand-in", "gpu"], indirect=True)
def test_every_layer_optimizer_loss_and_shipped_spec_trains_on_a_gpu(workdir, device, name):
    from pathlib import Path

    if name in STAND_IN_SPECS:
        spec, small = workdir / "spec.yaml", []
        spec.write_text(STAND_IN_SPECS[name])
    else:  # a shipped spec, on fewer samples and one epoch (a few steps of gd)
        spec = Path(__file__).parents[1] / name
        small = ["--epochs", "1", "--set", "data.n=80"]
    for where in ("cpu", device):
        assert main(["train", str(spec), "-q", "--out", where, "--device", where, *small]) == 0
    _same_run("cpu", "gpu", exact=numpy_arithmetic(device))


def test_eval_predict_and_bench_run_on_the_stand_in_gpu(workdir, stand_in_gpu, data_npz, capsys):
    _train(workdir, "r", "--epochs", "1")
    capsys.readouterr()
    for command in (["eval", "r", "--json"], ["predict", "r", "--data", "data.npz"]):
        results = []
        for device in ("cpu", "gpu"):
            assert main([*command, "--device", device]) == 0, command
            results.append(capsys.readouterr().out)
        assert results[0] == results[1], command
    assert main(["bench", str(workdir / "spec.yaml"), "--steps", "2", "--device", "gpu",
                 "--json"]) == 0


@pytest.fixture
def data_npz(workdir):
    rng = np.random.default_rng(0)
    np.savez(workdir / "data.npz", X=rng.standard_normal((10, 32)), y=rng.integers(0, 2, 10))


# ---------------------------------------------------------------- no GPU here: clear errors
def _no_cupy():
    return ModuleNotFoundError("No module named 'cupy'", name="cupy")


def _cupy_missing_a_library():  # pip install --no-deps cupy-cuda12x: its cuda-pathfinder missing
    return ModuleNotFoundError("No module named 'cuda'", name="cuda")


def _cupy_without_gpu():
    def count():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    return types.SimpleNamespace(cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=count)))


@pytest.mark.parametrize("cupy, says", [
    (_no_cupy, "--device: gpu needs CuPy, which is not installed: pip install 'bpcli[gpu]'"),
    (_cupy_missing_a_library, "--device: gpu needs CuPy, which is installed but does not import: "
                              "ModuleNotFoundError: No module named 'cuda'"),
    (_cupy_without_gpu, "--device: CuPy is installed but finds no CUDA GPU: RuntimeError: "
                        "cudaErrorNoDevice: no CUDA-capable device is detected")])
@pytest.mark.parametrize("command", ["train spec.yaml", "eval r", "predict r --data r",
                                     "bench spec.yaml", "gradcheck spec.yaml"])
def test_device_gpu_without_one_is_a_clear_error(workdir, monkeypatch, capsys, cupy, says,
                                                  command):
    (workdir / "spec.yaml").write_text(SPEC)
    monkeypatch.setattr(backend, "_cupy", cupy)
    assert main([*command.split(), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bpcli: error: {says}") and "Traceback" not in err
    assert not (workdir / "runs").exists()  # checked before any work


def test_the_spec_field_names_its_line_when_the_gpu_is_missing(workdir, monkeypatch, capsys):
    (workdir / "spec.yaml").write_text(tiny_spec(training={"device": "gpu"}))
    monkeypatch.setattr(backend, "_cupy", _no_cupy)
    assert main(["train", "spec.yaml", "-q"]) == 2
    err = capsys.readouterr().err
    assert "training.device: gpu needs CuPy" in err and "Traceback" not in err
    assert not (workdir / "runs").exists()  # refused before a run folder appears
    assert main(["train", "spec.yaml", "-q", "--device", "cpu", "--out", "r"]) == 0  # --device wins


def test_gradcheck_on_the_stand_in_gpu_gives_the_cpu_report(workdir, stand_in_gpu, capsys):
    """Every witness runs on the device: the same numbers, and no host array mixed in."""
    spec = workdir / "spec.yaml"
    spec.write_text(SPEC)
    reports = []
    for device in ("cpu", "gpu"):
        assert main(["gradcheck", str(spec), "--json", "--device", device]) == 0
        report = json.loads(capsys.readouterr().out)
        report.pop("cost")  # times
        reports.append(report)
    assert reports[0] == reports[1]
    assert reports[0]["passed"] and reports[0]["linear"]   # the dot-tests and Toeplitz rows ran


def test_a_sweep_variant_on_the_stand_in_gpu_gives_the_cpu_bits(workdir, stand_in_gpu):
    """A sweep's task (what a GPU worker process runs) trains where --device says, to the bits
    of the same variant on the CPU."""
    import io

    from bpcli.spec.validate import load
    from bpcli.train import sweep as sw

    (workdir / "spec.yaml").write_text(SPEC)
    spec = load(workdir / "spec.yaml")
    results = {d: sw.run_variant(spec.data, None, {"optimizer.lr": 0.02}, 3, None, None, 1,
                                 device=d) for d in ("cpu", "gpu")}
    for d, r in results.items():
        assert r["status"] == "ok", r["message"]
        assert r["summary"]["device"] == d
    weights = [np.load(io.BytesIO(results[d]["files"]["model.npz"])) for d in ("cpu", "gpu")]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0].files)
    assert results["cpu"]["files"]["metrics.csv"].split(b"\n")[1].split(b",")[:6] == \
        results["gpu"]["files"]["metrics.csv"].split(b"\n")[1].split(b",")[:6]
