"""``--set KEY.PATH=VALUE``: a change to the spec as written, its key path checked against the
keys the spec can have there (with a did-you-mean), its value read as YAML (never code)."""

from __future__ import annotations

import copy

import yaml

from ..errors import InputError
from ..nn.layers import LAYERS
from ..nn.network import WIRING
from ..core.document import format_path, parse_path
from ..core.fields import quoted, did_you_mean
from .sections import NAMED, SECTIONS, TOP


def with_sets(raw: dict, items) -> tuple[dict, tuple]:
    raw, sets = copy.deepcopy(raw), []
    for item in items:
        sets.append((_set(raw, item), item))
    return raw, tuple(sets)


def _set(raw: dict, item: str) -> tuple:
    """Apply one ``KEY.PATH=VALUE`` to ``raw`` (in place); the key path as errors name it."""
    text_path, eq, text_value = item.partition("=")
    text_path = text_path.strip()
    if not eq or not text_path:
        raise InputError("is not KEY.PATH=VALUE (e.g. --set optimizer.lr=0.01 or "
                         "--set layers[0].conv1d.kernel=5)", path=f"--set {item}")
    try:
        value = yaml.safe_load(text_value)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"the value is not YAML: {problem}", path=f"--set {item}") from None
    parts = _set_parts(text_path, item)
    node, here = raw, ()
    for depth, part in enumerate(parts):
        part = _step(node, here, part, item)
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node[part] = _container(node, here, part)
            node, here = node[part], here + (part,)
    return parse_path(text_path)


def _set_parts(text_path: str, item: str) -> list:
    """``layers[2].conv1d.kernel`` -> ["layers", 2, "conv1d", "kernel"]; refuses anything else."""
    parts = []
    for segment in text_path.split("."):
        name, *indices = segment.split("[")
        if (not name and not indices) or not all(i.endswith("]") and i[:-1].isdigit()
                                                 for i in indices):
            raise InputError(f"{text_path!r} is not a key path such as optimizer.lr or "
                             f"layers[2].conv1d.kernel", path=f"--set {item}")
        parts.extend([name] if name else [])
        parts.extend(int(i[:-1]) for i in indices)
    return parts


def _step(node, here: tuple, part, item: str):
    """``part`` if the spec can have it inside ``node`` (at ``here``); else a clear error."""
    where = format_path(here) or "the spec"
    if isinstance(node, list):
        if not isinstance(part, int) or not 0 <= part < len(node):
            valid = f"0..{len(node) - 1}" if node else "none: it is empty"
            raise InputError(f"{where} is a list; its indices are {valid}, got {part!r}",
                             path=f"--set {item}")
        return part
    if not isinstance(node, dict):
        raise InputError(f"{where} is {quoted(node)}, which has no key {part!r}",
                         path=f"--set {item}")
    if here == ("init", "layers") and isinstance(part, str) and part.isdigit():
        return int(part)  # init.layers.0: layer indices are the keys
    if len(here) == 2 and here[0] == "layers":
        lname = next(iter(node)) if len(node) == 1 else None
        if lname is not None and part != lname:
            article = "an" if lname[0] in "aeiou" else "a"
            raise InputError(f"{where} is {article} {lname} layer, not {part}; to replace the layer, "
                             f"--set '{where}={{{part}: {{...}}}}'", path=f"--set {item}")
        return part
    known = _keys_at(here, node)
    if known is not None and part not in known:
        raise InputError(f"unknown key {part!r} in {where}{did_you_mean(part, known)}; known keys: "
                         f"{', '.join(map(str, known)) or 'none'}", path=f"--set {item}")
    return part


def _container(node, here: tuple, part):
    """The mapping (or list) to descend into: the one written, a default, or a new one; a bare
    name becomes a mapping so that its fields can be set (``adam`` -> ``{name: adam}``)."""
    path = here + (part,)
    child = node[part] if isinstance(node, list) or part in node else None
    if child is None and not here:
        child = copy.deepcopy(next((p.default for p in TOP if p.name == part), None))
    if isinstance(child, str):
        if path in {(k,) for k in NAMED} or len(path) == 3 and path[:2] == ("init", "layers"):
            child = {"name": child}
        elif len(path) == 2 and path[0] == "layers":
            child = {child: {}}
    return {} if child is None else child


def _keys_at(here: tuple, node: dict):
    """The keys the spec can have in the mapping ``node`` at ``here``; None where validation
    alone can judge (a name it does not know, or a field that takes any mapping)."""
    if not here:
        return [p.name for p in TOP]
    if here in SECTIONS:
        return [p.name for p in SECTIONS[here]]
    if len(here) == 1 and here[0] in NAMED or len(here) == 3 and here[:2] == ("init", "layers"):
        table = NAMED[here[0]]
        name = node.get("name")
        if not isinstance(name, str) or name not in table:
            return None  # validation reports the unknown name, with its suggestion
        return ["name", *(["layers"] if here == ("init",) else []),
                *(p.name for p in table[name].params)]
    if len(here) == 3 and here[0] == "layers" and here[2] in LAYERS:
        return [*(p.name for p in WIRING), *(p.name for p in LAYERS[here[2]].params)]
    return None

