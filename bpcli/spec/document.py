"""A spec file as a document: the YAML read safely, every key path's line and column, and
:class:`Spec`, the validated result that errors found later (shapes, data) still point into.

The YAML is parsed with PyYAML's safe loader only (a ``!!python/...`` tag is an
error, never code), and the node tree is kept so that a key path such as
``layers[2].conv1d.kernel`` maps back to the line it came from.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError


class _PositionLoader(yaml.SafeLoader):
    """The safe loader, remembering where each mapping key and sequence item starts."""


def _walk(node, path, out, dups, seen_nodes=None):
    # an alias reaches a node again (even itself): its first place is the one remembered
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key is not None and key in seen:
                dups.append((path + (key,), k.start_mark))
            seen.add(key)
            _walk(v, path + (key,), out, dups, seen_nodes)
            # errors about a key point at the key itself, not at its value
            out[path + (key,)] = (k.start_mark.line + 1, k.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _walk(v, path + (i,), out, dups, seen_nodes)


def format_path(path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def flatten(data, prefix: str = "") -> dict:
    """{"a": {"b": 1}, "layers": [...]} -> {"a.b": 1, "layers[0].conv1d.kernel": ...}: every
    value of a resolved spec by its key path (what --set and the diffs between specs name)."""
    out = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = data
    return out


def parse_path(text_path: str) -> tuple:
    out = []
    for part in text_path.replace("]", "").split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i) if i.isdigit() else i for i in idx)
    return tuple(out)


@dataclass
class Spec:
    """A validated spec: ``data`` is the resolved dict, every default filled in."""

    data: dict
    file: str | None = None
    positions: dict = field(default_factory=dict)
    raw: dict | None = None   # the mapping as written (before defaults), for --set
    sets: tuple = ()          # ((key path, "--set" item), ...) applied to raw

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent if self.file else Path.cwd()

    def error(self, path: str, message: str) -> InputError:
        """An InputError for key path ``path``, positioned at the nearest key the YAML had.

        A problem with a value given by --set names the --set instead of a line.
        """
        parts = parse_path(path)
        for set_parts, item in self.sets:
            n = min(len(parts), len(set_parts))
            if n and parts[:n] == set_parts[:n]:
                return InputError(f"{message} (from --set {item})", file=self.file,
                                  path=path or None)
        while parts and parts not in self.positions:
            parts = parts[:-1]
        line, col = self.positions.get(parts, (None, None))
        return InputError(message, file=self.file, line=line, column=col, path=path or None)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=None)

    def layer_list(self):
        """[(name, params)] in order."""
        return [next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                for entry in self.data["layers"]]



def read(source, name=None):
    """(raw mapping, file, positions, default name, duplicate-key errors) of a path or a dict."""
    if isinstance(source, dict):
        return copy.deepcopy(source), None, {}, name or "model", []
    path = Path(source)
    try:
        text_ = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("spec file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read spec file: {e}", file=str(path)) from None
    try:
        loader = _PositionLoader(text_)
    except yaml.reader.ReaderError as e:  # a control character: the reader refuses the text
        before = text_[:e.position]
        raise InputError(f"invalid YAML: character {e.character:#06x} is not allowed in YAML",
                         file=str(path), line=before.count("\n") + 1,
                         column=e.position - before.rfind("\n")) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError("spec file is empty", file=str(path))
        positions, dups = {}, []
        _walk(node, (), positions, dups)
        duplicates = [InputError(f"key {dpath[-1]!r} appears twice", file=str(path),
                                 line=mark.line + 1, column=mark.column + 1,
                                 path=format_path(dpath)) for dpath, mark in dups]
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or "").strip()
        if "python/" in str(e) or "could not determine a constructor" in problem:
            problem = (f"{problem}: only plain YAML is read (tags that build Python objects are "
                       f"refused)")
        raise InputError(f"invalid YAML: {problem or e}", file=str(path),
                         line=mark.line + 1 if mark else None,
                         column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {e}", file=str(path)) from None
    except RecursionError:
        raise InputError("invalid YAML: nested too deeply", file=str(path)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError(f"a spec is a mapping of keys (name, input, layers, loss, ...), got "
                         f"{type(data).__name__}", file=str(path), line=1)
    return data, str(path), positions, name or path.stem, duplicates

