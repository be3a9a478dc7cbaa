"""Command-line option values, checked before a command does any work, by the spec's own checks.

An option declared with :func:`option` carries a check from :mod:`bpcli.core.fields`
(``option(1, check=positive_int, help=...)``) or the check of a spec field
(``check=spec_check("training.epochs")``), so a rule is written once.
:func:`bpcli.cli.command` runs every declared check on the values given, before the command's
body, and a bad value reads ``bpcli: error: --epochs: must be a positive integer, got 0``
(exit code 2) whatever the command. A value found bad only later (a layer index past the last
layer) goes through :func:`check_option`, so it reads the same.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import typer

from ..errors import InputError
from ..core.fields import Invalid, positive_int


def option(default, *decls: str, check: Callable[[Any], Any], **kwargs):
    """``typer.Option(default, *decls, **kwargs)`` whose value ``check`` accepts (or raises
    :class:`~bpcli.core.fields.Invalid`); None, an option not given, is never checked."""
    info = typer.Option(default, *decls, **kwargs)
    info.check = check  # read by checks_of, when command registers the function
    return info


def threads_option(default: str = "every core"):
    """``--threads N``: the engine's batch-slice workers (BLAS and OpenMP at one thread each).
    The command runs under that setting (:func:`bpcli.cli.command`); the default is every core
    this process may use (:func:`bpcli.engine.threads.default`), or what ``default`` says (a
    sweep's variants: 1)."""
    return option(None, check=positive_int, help=f"threads a step's batch slices run on "
                  f"[default: {default}]; work under 4 MiB stays on one; any count gives the "
                  f"same bits")


def device_option(default: str = "cpu"):
    """``--device cpu|gpu``: where the command's model and arrays live (GPU: CuPy). Checked before
    the command starts, as every option: a device that is not there (no CuPy, no CUDA GPU) is an
    error naming --device. The command moves its model there itself (``Model.to``). ``default``
    is what the help says the command does without it."""
    return option(None, check=_device_here, help=f"cpu or gpu (CuPy on a CUDA GPU: pip install "
                  f"'bpcli[gpu]') [default: {default}]")


def _device_here(v):
    """The check of --device: a device the spec accepts and this machine has."""
    from ..engine.backend import check

    v = spec_check("training.device")(v)
    try:
        check(v)
    except InputError as e:
        raise Invalid(e.message) from None
    return v


def spec_check(path: str):
    """The check of the spec field at ``path`` (``seed``, ``training.epochs``): an option that
    overrides a field accepts exactly what the field does."""
    from ..spec.sections import SECTIONS, TOP

    *section, name = path.split(".")
    fields = SECTIONS[tuple(section)] if section else TOP
    return next(p.check for p in fields if p.name == name)


def int_between(low: int, high: int):
    """A check: an integer in [low, high]."""
    def check(v):
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise Invalid(f"must be an integer from {low} to {high}, got {v!r}")
        return v
    check.json = {"type": "integer", "minimum": low, "maximum": high}
    return check


def flag(param: inspect.Parameter) -> str:
    """The option's name as typed: its first ``--`` declaration, else ``--`` and the parameter's."""
    decls = [d for d in (getattr(param.default, "param_decls", None) or ()) if d.startswith("--")]
    return decls[0].split("/")[0] if decls else "--" + param.name.rstrip("_").replace("_", "-")


def checks_of(fn) -> dict[str, tuple[str, Callable]]:
    """{parameter: (--name, check)} for every option of ``fn`` declared with :func:`option`."""
    return {name: (flag(p), p.default.check) for name, p in inspect.signature(fn).parameters.items()
            if callable(getattr(p.default, "check", None))}


def check_option(name: str, value, check):
    """``check(value)``, or InputError naming the option ``name``; None passes unchecked."""
    if value is None:
        return None
    try:
        return check(value)
    except Invalid as e:
        raise InputError(str(e), path=name) from None


def check_all(checks: dict, kwargs: dict) -> dict:
    """``kwargs`` with every checked option's value checked (and converted, as the check does)."""
    return {k: check_option(checks[k][0], v, checks[k][1]) if k in checks else v
            for k, v in kwargs.items()}


def folder(v: Path) -> Path:
    """The check of a folder option (--targets): an existing folder."""
    if not Path(v).is_dir():
        raise Invalid(f"must be a folder, got {v} "
                      f"({'a file' if Path(v).exists() else 'no such folder'})")
    return v
