"""The folder tree is the architecture: each layer imports only what lies below it.

    engine  ->  core (fields, document)  ->  nn  ->  explain  ->  train, spec  ->  export  ->  cli

An AST walk reads every import in ``bpcli/`` (those inside functions too, with relative
imports resolved) and checks it against the rules below, so a shortcut across layers fails
here rather than surfacing later as an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bpcli"

# module prefix -> the bpcli modules it may never import (prefixes)
FORBIDDEN = {
    "bpcli.engine": ["bpcli.core", "bpcli.spec", "bpcli.nn", "bpcli.train", "bpcli.explain",
                     "bpcli.cli", "bpcli.export"],
    "bpcli.core": ["bpcli.engine", "bpcli.spec", "bpcli.nn", "bpcli.train", "bpcli.explain",
                   "bpcli.cli", "bpcli.export"],
    # spec/ is one floor: above nn and train (it reads their tables), never below them
    "bpcli.nn": ["bpcli.spec", "bpcli.train", "bpcli.explain", "bpcli.cli", "bpcli.export"],
    "bpcli.explain": ["bpcli.spec", "bpcli.train", "bpcli.cli", "bpcli.export"],
    # train re-validates specs it changes (spec.validate), and spec reads train's tables
    # (optimizers, schedules, augmentations, builtin data): the two still share a floor
    "bpcli.train": ["bpcli.cli", "bpcli.export"],
    "bpcli.export": ["bpcli.spec", "bpcli.cli"],
    "bpcli.spec": ["bpcli.explain", "bpcli.cli", "bpcli.export"],
    "bpcli.errors": ["bpcli."],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # `from . import x` may import a submodule x: count it as target.x
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return [(line, t) for line, t in found if t == "bpcli" or t.startswith("bpcli.")]


def rules_for(module: str) -> list[str]:
    """The forbidden prefixes of the most specific rule that covers ``module``."""
    covering = [k for k in FORBIDDEN if module == k or module.startswith(k + ".")]
    return FORBIDDEN[max(covering, key=len)] if covering else []


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_each_module_imports_only_what_lies_below_it(path):
    module = module_name(path)
    bad = [f"line {line}: imports {target}" for line, target in imports(path)
           for prefix in rules_for(module)
           if target.startswith(prefix) and not target.startswith(module + ".")
           and target != module]
    assert not bad, f"{module} reaches above its layer: " + "; ".join(bad)


def test_every_module_sits_in_a_layer():
    """A new top-level module must be placed in a layer (or be one of the few shared ones)."""
    top_level = {module_name(p) for p in PACKAGE.glob("*.py")}
    assert top_level <= {"bpcli", "bpcli.errors"}, f"modules outside the layers: {top_level}"


def test_the_rules_catch_a_shortcut():
    """The walk sees imports inside functions and resolves relative ones."""
    source = "def f():\n    from ..train import loop\n"
    found = imports_in(source, "bpcli.engine.program")
    assert found == [(2, "bpcli.train.loop")]
    assert any(t.startswith(p) for _, t in found for p in rules_for("bpcli.engine.program"))


def underscored_uses(path: Path) -> list[str]:
    """Private names of other modules this file uses: ``from m import _x`` or ``m._x`` with
    ``m`` a bpcli module it imported."""
    tree = ast.parse(path.read_text())
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''} "
                                 f"import {a.name}")
                modules.add(a.asname or a.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_uses_another_modules_private_names(path):
    """What a module shares is public where it is defined; its underscored names are its own."""
    assert not underscored_uses(path), f"{module_name(path)}: {underscored_uses(path)}"


def test_the_private_name_check_sees_both_forms(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("from .fields import _show\nfrom .. import model\nx = model._values\n")
    assert [u.split(":")[0] for u in underscored_uses(sample)] == ["line 1", "line 3"]
