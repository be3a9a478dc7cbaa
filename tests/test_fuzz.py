"""Fuzzing the commands with broken specs: whatever a spec holds, bpcli answers cleanly.

Hypothesis starts from the shipped specs and the init templates (shrunk to tiny data) and
mutates them: deletes keys, changes types, drops random values (strings, numbers, lists,
None, mappings) in random places, misspells keys, adds unknown keys, swaps names for other
known names, and mangles the YAML text itself. Each mutant goes through ``bpcli validate``,
``train`` (one epoch), ``gradcheck`` and, as a run folder's spec, ``eval``. Every outcome must be
exit 0 or 1, or exit 2 with ``bpcli: error:`` on stderr, never a traceback.

The examples are fixed (derandomized) so the suite is repeatable; ``BPCLI_FUZZ=20`` runs twenty
times as many, freshly random each time.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpcli.cli import main
from bpcli.nn.initializers import INITIALIZERS
from bpcli.nn.layers import LAYERS
from bpcli.nn.losses import LOSSES
from bpcli.train.optim import OPTIMIZERS
from bpcli.train.schedule import SCHEDULES
from bpcli.spec.sections import DATA, EARLY_STOPPING, REGULARIZATION, TOP, TRAINING
from bpcli.spec.templates import TEMPLATES, render

ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("BPCLI_FUZZ", "1"))


def fuzz_settings(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    derandomize=SCALE == 1, suppress_health_check=list(HealthCheck))


def _tiny(spec: dict) -> dict:
    """The same spec on a few dozen samples, in small batches: it trains in milliseconds."""
    spec = copy.deepcopy(spec)
    if not isinstance(spec.get("data"), dict):
        spec["data"] = {"builtin": "pulses"}
    spec["data"]["n"] = 40
    training = spec.setdefault("training", {})
    if isinstance(training.get("batch_size"), int):
        training["batch_size"] = 8
    if "max_iters" in training:
        training["max_iters"] = 3
    return spec


BASES = [_tiny(yaml.safe_load(p.read_text())) for p in sorted((ROOT / "specs").glob("*.yaml"))]
BASES += [_tiny(yaml.safe_load(render(t, "t.yaml"))) for t in TEMPLATES]

NAMES = sorted({*LAYERS, *LOSSES, *OPTIMIZERS, *SCHEDULES, *INITIALIZERS, "pulses", "linear",
                "same", "valid", "full", "float32", "float64", "val_loss", "val_accuracy"})
KEYS = sorted({p.name for table in (TOP, DATA, TRAINING, EARLY_STOPPING, REGULARIZATION)
               for p in table}
              | {p.name for d in [*LAYERS.values(), *LOSSES.values(), *OPTIMIZERS.values(),
                                  *SCHEDULES.values(), *INITIALIZERS.values()] for p in d.params})

# Numbers stay small: a layer of 10^9 units is a memory error, not a spec error.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 40),
                    st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.text(max_size=8), st.sampled_from(NAMES), st.sampled_from(KEYS))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=3)),
    max_leaves=6)


def _paths(node, here=()):
    """Every key path in a spec (mappings and lists), the spec itself first."""
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, here + (i,))


def _get(node, path):
    for p in path:
        node = node[p]
    return node


def _misspell(draw, word: str) -> str:
    if not word:
        return "x"
    i = draw(st.integers(0, len(word) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
    if how == "drop":
        return word[:i] + word[i + 1:] or "x"
    if how == "double":
        return word[:i] + word[i] + word[i:]
    if how == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + draw(st.sampled_from("aeiouxz_1")) + word[i + 1:]


def _mutate(draw, spec: dict) -> None:
    paths = list(_paths(spec))
    op = draw(st.sampled_from(["delete", "replace", "misspell", "add", "retype", "rename",
                               "layers", "nudge", "nudge"]))
    path = draw(st.sampled_from(paths[1:] or [()]))
    parent = _get(spec, path[:-1]) if path else None
    if op == "delete" and path:
        del parent[path[-1]]
    elif op == "replace" and path:
        parent[path[-1]] = draw(VALUES)
    elif op == "misspell" and path and isinstance(parent, dict) and isinstance(path[-1], str):
        parent[_misspell(draw, path[-1])] = parent.pop(path[-1])
    elif op == "add":
        mappings = [p for p in paths if isinstance(_get(spec, p), dict)]
        target = _get(spec, draw(st.sampled_from(mappings)))
        target[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)))] = draw(VALUES)
    elif op == "retype" and path:
        value = parent[path[-1]]
        parent[path[-1]] = draw(st.sampled_from([[value], str(value), {"name": value}, None]))
    elif op == "rename":
        # another known name where a name stands: reaches shapes, losses and optimizers
        names = [p for p in paths if p and isinstance(_get(spec, p), str)]
        if names:
            where = draw(st.sampled_from(names))
            same_kind = next((sorted(t) for t in (LAYERS, LOSSES, OPTIMIZERS, SCHEDULES,
                                                  INITIALIZERS) if _get(spec, where) in t), NAMES)
            _get(spec, where[:-1])[where[-1]] = draw(st.sampled_from(same_kind))
    elif op == "nudge":
        # another plausible number where a number stands: reaches shapes, steps and splits
        numbers = [p for p in paths if p and type(_get(spec, p)) in (int, float)]
        if numbers:
            where = draw(st.sampled_from(numbers))
            number = draw(st.integers(0, 9) if type(_get(spec, where)) is int
                          else st.floats(0, 1.5))
            _get(spec, where[:-1])[where[-1]] = number
    elif op == "layers" and isinstance(spec.get("layers"), list):
        layers = spec["layers"]
        name = draw(st.sampled_from(sorted(LAYERS)))
        params = LAYERS[name].params
        fields = {p.name: draw(st.integers(1, 6)) for p in params if p.required}
        if params and draw(st.booleans()):
            fields[draw(st.sampled_from(params)).name] = draw(VALUES)
        layers.insert(draw(st.integers(0, len(layers))), {name: fields} if fields else name)
        if len(layers) > 1 and draw(st.booleans()):
            del layers[draw(st.integers(0, len(layers) - 1))]


@st.composite
def mutated_specs(draw):
    spec = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, spec)
    return spec


YAML_CHARS = ":{}[]-,#&*!|>'\"\t\n %@`?~ abc019"


@st.composite
def mangled_texts(draw):
    """A spec's YAML text with characters cut, repeated or inserted at random places."""
    text = yaml.safe_dump(draw(st.sampled_from(BASES)), sort_keys=False, default_flow_style=None)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        how = draw(st.sampled_from(["cut", "insert", "repeat"]))
        if how == "cut":
            text = text[:i] + text[j:]
        elif how == "insert":
            text = text[:i] + draw(st.text(alphabet=YAML_CHARS, max_size=4)) + text[i:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


def bpcli(*args) -> tuple[int, str, str]:
    """Run bpcli in-process; any exception escaping main() fails the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def assert_clean(result, args):
    code, out, err = result
    where = f"bpcli {' '.join(map(str, args))}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert code in (0, 1, 2), where
    assert "Traceback" not in out and "Traceback" not in err, where
    if code == 2:
        assert err.startswith("bpcli: error: "), where


def _write(folder: Path, spec) -> Path:
    path = folder / "spec.yaml"
    path.write_text(spec if isinstance(spec, str) else
                    yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def run_on(spec, *command):
    """Write the spec into a fresh folder and run ``bpcli COMMAND spec.yaml ...`` there."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _write(folder, spec)
        args = [command[0], path, *[str(a).replace("{tmp}", tmp) for a in command[1:]]]
        assert_clean(bpcli(*args), args)


@pytest.fixture(autouse=True)
def _quiet_numpy():
    import numpy as np

    with np.errstate(all="ignore"):
        yield


@fuzz_settings(250)
@given(mutated_specs())
def test_validate_mutated_specs(spec):
    run_on(spec, "validate")


@fuzz_settings(150)
@given(st.one_of(mangled_texts(), st.text(max_size=200),
                 VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
def test_validate_random_yaml_text(text):
    run_on(text, "validate")


@fuzz_settings(200)
@given(mutated_specs())
def test_show_mutated_specs(spec):
    run_on(spec, "show", "--json")


@fuzz_settings(200)
@given(mutated_specs())
def test_train_mutated_specs(spec):
    run_on(spec, "train", "--epochs", 1, "-q", "--out", "{tmp}/run")


@fuzz_settings(200)
@given(mutated_specs())
def test_gradcheck_mutated_specs(spec):
    run_on(spec, "gradcheck", "--mode", "fast", "--samples", 2, "--directions", 2)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One finished run of a tiny base spec, whose recorded spec eval's fuzzing mutates."""
    root = tmp_path_factory.mktemp("fuzz-run")
    spec = _write(root, BASES[2])
    assert main(["train", str(spec), "--epochs", "1", "-q", "--out", str(root / "run")]) == 0
    return root / "run"


@fuzz_settings(200)
@given(data=st.data())
def test_eval_runs_with_mutated_specs(trained_run, data):
    resolved = yaml.safe_load((trained_run / "spec.yaml").read_text())
    spec = copy.deepcopy(resolved)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data.draw, spec)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(trained_run, run)
        _write(run, spec)
        args = ["eval", run, "--json"]
        assert_clean(bpcli(*args), args)
