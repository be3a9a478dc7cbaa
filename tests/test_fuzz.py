"""Fuzzing the commands with broken specs: each kind of mutation has the outcome it must give.

Hypothesis starts from the shipped specs and the init templates (shrunk to tiny data) and
mutates them. ``bpcli validate`` is held to what each kind of mutation must give:

- a misspelt key or name (one edit of a word of 3 or more letters): exit 2, "did you mean";
- an unknown key: exit 2, "unknown key 'KEY'";
- a mapping or a word where a scalar field stands: exit 2 naming the field's key path;
- a number outside its field's range (read from the field's own JSON Schema): exit 2 naming it;
- a required field deleted: exit 2, "missing required key 'NAME'";
- a number inside its field's range, away from the network's shapes: exit 0, and ``bpcli show``
  resolves the field to that number;
- anything else (1 to 3 random mutations, or the YAML text mangled): exit 0 or 2, never 1.

``show``, ``train`` (one epoch), ``gradcheck`` and, as a run folder's spec, ``eval`` are held to
``validate``'s verdict on the same spec: a spec it rejects, they reject with one of its errors; a
spec it accepts, they run, refusing only data or weights that do not fit it (``train`` also
refuses a network without parameters, and may stop, exit 1, on a diverging loss). Exit 2 always reads ``bpcli: error:``, never a traceback.

The examples are fixed (derandomized) so the suite is repeatable; ``BPCLI_FUZZ=20`` runs twenty
times as many, freshly random each time.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bpcli.cli import main
from bpcli.nn.initializers import INITIALIZERS
from bpcli.nn.layers import LAYERS
from bpcli.nn.losses import LOSSES
from bpcli.train.optim import OPTIMIZERS
from bpcli.train.schedule import SCHEDULES
from bpcli.spec.sections import (DATA, EARLY_STOPPING, NAMED, REGULARIZATION, SECTIONS, TOP,
                                  TRAINING)
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


# ---------------------------------------------------------------- mutations with a known outcome
def _fields_at(spec, where) -> dict | None:
    """{key: Param} of the mapping at ``where`` as the validator reads it; None where its keys are
    not fields (a layer entry's one-key mapping, ``init.layers``) or it is no mapping."""
    node = _get(spec, where)
    if not isinstance(node, dict):
        return None
    if where == ():
        return {p.name: p for p in TOP}
    if where in SECTIONS:
        return {p.name: p for p in SECTIONS[where]}
    if len(where) == 3 and where[0] == "layers" and where[2] in LAYERS:
        return {p.name: p for p in LAYERS[where[2]].params}
    table = (NAMED.get(where[0]) if len(where) == 1 else
             INITIALIZERS if len(where) == 3 and where[:2] == ("init", "layers") else None)
    if table is not None and node.get("name") in table:
        return {p.name: p for p in table[node["name"]].params}
    return None


def _field(spec, path):
    """The Param the key path ends at, or None."""
    fields = _fields_at(spec, path[:-1]) if path else None
    return fields.get(path[-1]) if fields else None


def _dotted(spec, path) -> str:
    """A key path as the validator's messages write it: layers[0].conv1d.kernel, init.layers.0."""
    out, node = "", spec
    for p in path:
        out += f"[{p}]" if isinstance(node, list) else f".{p}" if out else str(p)
        node = node[p]
    return out


def _naming(spec, path) -> str:
    """A pattern for an error about this key path (or a key below it): ``: data.n: must ...``."""
    return rf": {re.escape(_dotted(spec, path))}[:.\[]"


@dataclass
class Case:
    """A mutated spec and what ``bpcli validate`` must answer: its exit code, patterns its stderr
    must match, and (path, value) pairs ``bpcli show --json`` must resolve."""
    spec: dict
    code: int
    stderr: list = field(default_factory=list)
    resolves: list = field(default_factory=list)


def _number_schema(param) -> dict | None:
    """The numeric part of a field's JSON Schema ({"type": "integer", "minimum": 1}), if any."""
    check = param.check
    schema = getattr(check, "json", None) or getattr(getattr(check, "inner", None), "json", {})
    return next((s for s in schema.get("anyOf", [schema])
                 if s.get("type") in ("integer", "number")), None)


def _choices(param) -> list:
    """The words a field accepts (its JSON Schema's enum), e.g. [same, valid] for pad."""
    check = param.check
    schema = getattr(check, "json", None) or getattr(getattr(check, "inner", None), "json", {})
    return [w for s in schema.get("anyOf", [schema]) for w in s.get("enum", [])
            if isinstance(w, str)]


def _pick(draw, pick):
    """A base spec and a path ``pick(spec)`` offers; the example is dropped if it offers none."""
    spec = copy.deepcopy(draw(st.sampled_from(BASES)))
    paths = [p for p in _paths(spec) if pick(spec, p)]
    assume(paths)
    return spec, draw(st.sampled_from(paths))


@st.composite
def misspelt_keys(draw):
    """A field's key, or a layer's name, with one letter dropped, doubled, swapped or replaced."""
    def pick(spec, p):
        if not p or not isinstance(p[-1], str) or not isinstance(_get(spec, p[:-1]), dict):
            return False
        if len(p) == 3 and p[0] == "layers" and isinstance(p[1], int):
            return True  # {conv1d: {...}}: its one key is the layer's name
        if p[-1] == "name" and p[:-1] in ((k,) for k in NAMED):
            return True  # {name: adam}: the name key itself
        return p[-1] in (_fields_at(spec, p[:-1]) or {})
    spec, path = _pick(draw, pick)
    parent, key = _get(spec, path[:-1]), path[-1]
    known = LAYERS if len(path) == 3 and path[0] == "layers" else {
        *_fields_at(spec, path[:-1]), "name", "layers"}
    wrong = _misspell(draw, key)
    assume(wrong not in known and wrong not in parent)
    parent[wrong] = parent.pop(key)
    # one edit of a word of 3 or more letters keeps difflib's ratio >= 2/3, over the 0.6 cutoff
    return Case(spec, 2, [re.escape(repr(wrong))] + (["did you mean"] if len(key) >= 3 else []))


@st.composite
def misspelt_names(draw):
    """A name from a table (layer, loss, optimizer, ...) or a field's word (same, float64, ...)
    with one letter changed."""
    def known(spec, p):
        if not p or not isinstance(_get(spec, p), str):
            return ()
        if p[0] == "layers" and len(p) == 2:
            return LAYERS
        if p[-1] == "name" and p[:-1] in ((k,) for k in NAMED):
            return NAMED[p[0]]
        if len(p) == 1 and p[0] in NAMED:
            return NAMED[p[0]]
        param = _field(spec, p)
        return _choices(param) if param else ()
    spec, path = _pick(draw, lambda s, p: bool(known(s, p)))
    word, names = _get(spec, path), known(spec, path)
    wrong = _misspell(draw, word)
    assume(wrong not in names)
    _get(spec, path[:-1])[path[-1]] = wrong
    return Case(spec, 2, [re.escape(repr(wrong))] + (["did you mean"] if len(word) >= 3 else []))


@st.composite
def wrong_types(draw):
    """A mapping where a scalar field stands, or a word where a number or true/false stands."""
    def pick(spec, p):
        v = _get(spec, p)
        return _field(spec, p) is not None and not isinstance(v, (dict, list))
    spec, path = _pick(draw, pick)
    value = _get(spec, path)
    choices = [{"wrong": "type"}] + (["lots"] if isinstance(value, (bool, int, float)) else [])
    _get(spec, path[:-1])[path[-1]] = draw(st.sampled_from(choices))
    return Case(spec, 2, [_naming(spec, path)])


@st.composite
def out_of_range(draw):
    """A number just outside its field's range, as the field's JSON Schema states it."""
    def bounded(spec, p):
        param = _field(spec, p)
        schema = _number_schema(param) if param else None
        return bool(schema) and any(b in schema for b in
                                    ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"))
    spec, path = _pick(draw, bounded)
    s = _number_schema(_field(spec, path))
    step = 1 if s["type"] == "integer" else 0.5
    outside = ([s["minimum"] - step] if "minimum" in s else []) + (
        [s["exclusiveMinimum"]] if "exclusiveMinimum" in s else []) + (
        [s["maximum"] + step] if "maximum" in s else []) + (
        [s["exclusiveMaximum"]] if "exclusiveMaximum" in s else [])
    _get(spec, path[:-1])[path[-1]] = draw(st.sampled_from(outside))
    return Case(spec, 2, [_naming(spec, path)])


@st.composite
def missing_required(draw):
    """A required field deleted."""
    spec, path = _pick(draw, lambda s, p: bool(_field(s, p)) and _field(s, p).required)
    del _get(spec, path[:-1])[path[-1]]
    return Case(spec, 2, [re.escape(f"missing required key {path[-1]!r}")])


@st.composite
def unknown_keys(draw):
    """A key no mapping of a spec has, added to a mapping of fields."""
    spec, path = _pick(draw, lambda s, p: _fields_at(s, p) is not None)
    key = draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in KEYS and k not in NAMES
                                                      and k not in ("name", "layers")))
    _get(spec, path)[key] = draw(VALUES)
    return Case(spec, 2, [re.escape(f"unknown key {key!r}")])


@st.composite
def in_range(draw):
    """Another number inside its field's range where the network's shapes do not depend on it
    (not under input or layers): the spec stays valid and resolves to that number."""
    def numeric(spec, p):
        param = _field(spec, p) if p and p[0] not in ("input", "layers") else None
        v = _get(spec, p)
        return (param is not None and _number_schema(param) is not None
                and isinstance(v, (int, float)) and not isinstance(v, bool))
    spec, path = _pick(draw, numeric)
    s = _number_schema(_field(spec, path))
    low = s.get("minimum", s.get("exclusiveMinimum", -3))
    high = s.get("maximum", s.get("exclusiveMaximum", low + 5))
    if s["type"] == "integer":
        value = draw(st.integers(low + ("exclusiveMinimum" in s), min(high, low + 5)))
    else:
        # inside by a margin: a momentum of 0 would turn nesterov's own check on
        value = draw(st.floats(low + 0.01, min(high, low + 5) - 0.01))
    _get(spec, path[:-1])[path[-1]] = value
    return Case(spec, 0, resolves=[(path, value)])


@st.composite
def any_mutations(draw):
    """1 to 3 mutations of any kind: the outcome is unknown, but never exit 1."""
    return Case(draw(mutated_specs()), None)


CASES = st.one_of(misspelt_keys(), misspelt_names(), wrong_types(), out_of_range(),
                  missing_required(), unknown_keys(), in_range(), any_mutations())


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


def assert_clean(result, args, codes=(0, 1, 2)):
    """An exit code in ``codes``, no traceback, and exit 2 reading ``bpcli: error:``."""
    code, out, err = result
    where = f"bpcli {' '.join(map(str, args))}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert code in codes, where
    assert "Traceback" not in out and "Traceback" not in err, where
    if code == 2:
        assert err.startswith("bpcli: error: "), where
    return where


def _write(folder: Path, spec) -> Path:
    path = folder / "spec.yaml"
    path.write_text(spec if isinstance(spec, str) else
                    yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def verdict(path: Path) -> tuple[int, str]:
    """``bpcli validate``'s exit code and stderr: 0, or 2 with its errors, never 1."""
    result = bpcli("validate", path)
    assert_clean(result, ["validate", path], codes=(0, 2))
    return result[0], result[2]


def among_its_errors(err: str, errors: str) -> bool:
    """Whether each of a command's error lines (every problem of the spec, and their count when
    several) is one of those ``bpcli validate`` found."""
    lines = err.strip().split("\n")  # not splitlines(): a key may hold \x1e, a line break to it
    return all(line in errors.split("\n") for line in lines)


def refuses_the_data(err: str) -> bool:
    """Whether an error is about the data (missing, too few samples, labels that do not fit the
    loss), which validate cannot see: it reads the spec, not the data."""
    return re.search(r"data|sample|label", err) is not None


@pytest.fixture(autouse=True)
def _quiet_numpy():
    import numpy as np

    with np.errstate(all="ignore"):
        yield


@pytest.mark.slow
@fuzz_settings(250)
@given(CASES)
def test_validate_gives_each_kind_of_mutation_its_outcome(case):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), case.spec)
        code, err = verdict(path)
        where = f"spec: {case.spec}\nstderr: {err}"
        if case.code is not None:
            assert code == case.code, where
        for pattern in case.stderr:
            assert re.search(pattern, err), f"no {pattern!r} in stderr\n{where}"
        if case.resolves:
            shown, out, _ = bpcli("show", path, "--json")
            assert shown == 0, where
            resolved = json.loads(out)
            for key_path, value in case.resolves:
                assert _get(resolved, key_path) == value, where


def test_a_misspelt_name_key_gets_a_suggestion():
    # {nmae: adam} used to read "must be an optimizer name ... or a mapping with a name key",
    # without the did-you-mean every other key gets
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), {**BASES[0], "optimizer": {"nmae": "adam"}})
        code, err = verdict(path)
    assert code == 2 and "optimizer.nmae: unknown key 'nmae' (did you mean 'name'?)" in err


@pytest.mark.slow
@fuzz_settings(150)
@given(st.one_of(mangled_texts(), st.text(max_size=200),
                 VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
def test_validate_random_yaml_text(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), text)
        code, err = verdict(path)
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        # text that is not YAML: the error points at the line and column where it stops being so
        assert code == 2 and re.match(r"bpcli: error: \S+spec\.yaml:\d+:\d+: invalid YAML", err), err
        return
    if not isinstance(parsed, dict):
        assert code == 2 and "spec.yaml" in err, err


def run_on(spec, *command, compare_always=False):
    """Write the spec into a fresh folder, run ``bpcli COMMAND spec.yaml ...`` there:
    (exit code, stderr, validate's verdict on the same file, the failure message).

    The verdict is taken when the command exits 2, or always with ``compare_always``: a command
    that ran has loaded the spec through the very validation ``validate`` runs.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), spec)
        args = [command[0], path, *[str(a).replace("{tmp}", tmp) for a in command[1:]]]
        code, out, err = bpcli(*args)
        where = assert_clean((code, out, err), args)
        v_code, v_err = verdict(path) if compare_always or code == 2 else (0, "")
        return code, err, (v_code, v_err), f"{where}\nvalidate: exit {v_code}\n{v_err}"


@pytest.mark.slow
@fuzz_settings(200)
@given(mutated_specs())
def test_show_answers_as_validate(spec):
    code, err, (v_code, v_err), where = run_on(spec, "show", "--json", compare_always=True)
    assert (code, err) == (v_code, v_err), where


@pytest.mark.slow
@fuzz_settings(200)
@given(mutated_specs())
def test_train_refuses_what_validate_refuses_and_trains_the_rest(spec):
    code, err, (v_code, v_err), where = run_on(spec, "train", "--epochs", 1, "-q",
                                               "--out", "{tmp}/run")
    if v_code == 2:
        assert code == 2 and among_its_errors(err, v_err), where
    else:
        # a network without parameters is a valid spec (gradcheck, show) that train alone refuses
        assert (code == 0 or code == 1 and "training diverged" in err
                or code == 2 and (refuses_the_data(err) or "has no parameters" in err)), where


@pytest.mark.slow
@fuzz_settings(200)
@given(mutated_specs())
def test_gradcheck_refuses_what_validate_refuses_and_passes_the_rest(spec):
    code, err, (v_code, v_err), where = run_on(spec, "gradcheck", "--mode", "fast",
                                               "--samples", 2, "--directions", 2)
    if v_code == 2:
        assert code == 2 and among_its_errors(err, v_err), where
    else:
        assert code == 0, where  # every network validate accepts has the gradients it claims


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One finished run of a tiny base spec, whose recorded spec eval's fuzzing mutates."""
    root = tmp_path_factory.mktemp("fuzz-run")
    spec = _write(root, BASES[2])
    assert main(["train", str(spec), "--epochs", "1", "-q", "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.mark.slow
@fuzz_settings(200)
@given(data=st.data())
def test_eval_refuses_what_validate_refuses_and_weights_that_do_not_fit(trained_run, data):
    resolved = yaml.safe_load((trained_run / "spec.yaml").read_text())
    spec = copy.deepcopy(resolved)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(data.draw, spec)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(trained_run, run)
        _write(run, spec)
        args = ["eval", run, "--json"]
        code, out, err = bpcli(*args)
        where = assert_clean((code, out, err), args, codes=(0, 2))
        v_code, v_err = verdict(run / "spec.yaml") if code == 2 else (0, "")
    where += f"\nvalidate: exit {v_code}\n{v_err}"
    if v_code == 2:
        assert among_its_errors(err, v_err), where
    else:
        assert code == 0 or "model.npz" in err or refuses_the_data(err), where
