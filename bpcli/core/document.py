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


def differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(key path, value in a, value in b) for every key path whose values differ (a missing
    one counts as None), in the order the keys first appear in a, then b."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in dict.fromkeys([*fa, *fb]) if fa.get(k) != fb.get(k)]


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
    network: object = None    # the layers, typed and wired (bpcli.nn.network.Network)

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
        message, mark = yaml_problem(e, text_)
        raise InputError(message, file=str(path), line=mark.line + 1 if mark else None,
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


# what PyYAML's "while ..." contexts mean, in the words of a spec's author: (context start,
# problem start, the message, whether the culprit is where the construct began, what that
# place is)
_YAML_KINDS = (
    ("while parsing a flow mapping", "", "this flow mapping '{{' is not closed: no '}}' before "
     "line {pl}, column {pc}, where the parser gave up ({problem})", True, "opened here"),
    ("while parsing a flow sequence", "", "this flow sequence '[' is not closed: no ']' before "
     "line {pl}, column {pc}, where the parser gave up ({problem})", True, "opened here"),
    ("while scanning a quoted scalar", "found unexpected end", "this quoted string is not "
     "closed: no closing {quote} before the end of the file", True, "opened here"),
    ("while scanning a quoted scalar", "", "this quoted string is not closed: no closing {quote} "
     "before line {pl}, column {pc} ({problem})", True, "opened here"),
    ("while scanning a double-quoted scalar", "found unknown escape", "{problem} in this "
     "double-quoted string: write a backslash as \\\\, or use single quotes", False,
     "the string begins here"),
    ("while parsing a block mapping", "", "this line is indented to fit no key: a mapping's "
     "keys line up in one column, and the mapping begun at line {cl}, column {cc} ends before "
     "{found}", False, "the mapping begins here"),
    ("while parsing a block collection", "", "this line is indented to fit no item: a list's "
     "'- ' items line up in one column, and the list begun at line {cl}, column {cc} ends "
     "before {found}", False, "the list begins here"),
    ("while scanning for the next token", "found character '\\t'", "a tab character: YAML "
     "indents and separates with spaces only; replace the tab with spaces", False, ""),
    ("while scanning a simple key", "", "this key has no ':' after it (the parser looked as far "
     "as line {pl}, column {pc})", True, "the key begins here"),
    ("expected a single document", "", "a spec is one YAML document, but a second one starts "
     "here ('---')", False, "the first document"),
    ("", "mapping values are not allowed", "a ': ' where no key may start: quote a value that "
     "holds ': ' (\"a: b\"), or indent this line as its key's siblings are", False, ""),
    ("", "could not determine a constructor", "{problem}: only plain YAML is read (tags that "
     "build Python objects are refused)", False, ""),
)
_FOUND = {"'<block mapping start>'": "a key indented differently from its siblings",
          "'<block sequence start>'": "a '- ' item indented differently from its siblings",
          "'-'": "a '- ' item where a key should be", "'?'": "a key where a '- ' item should be",
          "'<scalar>'": "a value on a line of its own"}


def yaml_problem(e: yaml.MarkedYAMLError, text: str):
    """(message, mark) for a YAML syntax error: what is wrong in plain words, at the mark where
    the culprit is (where an unclosed construct began, else where the parser gave up), followed
    by each of the two places as its line with a caret under the column."""
    context, problem = (e.context or "").strip(), (e.problem or "").strip()
    cm, pm = e.context_mark, e.problem_mark
    kind = next((k for k in _YAML_KINDS if context.startswith(k[0]) and problem.startswith(k[1])
                 and (k[0] or k[1])), None)
    found = problem.rpartition("but found ")[2]
    fields = {"problem": problem, "pl": pm.line + 1 if pm else "?",
              "pc": pm.column + 1 if pm else "?", "cl": cm.line + 1 if cm else "?",
              "cc": cm.column + 1 if cm else "?", "found": _FOUND.get(found, found),
              "quote": _char_at(text, cm) or "quote"}
    if kind:
        message, at_context, begins = kind[2].format(**fields), kind[3], kind[4]
    else:
        message = problem + (f" ({context} at line {fields['cl']}, column {fields['cc']})"
                             if context and cm else f" ({context})" if context else "")
        at_context, begins = False, context
    mark = cm if at_context and cm else pm or cm
    places = [(m, label) for m, label in ((cm, begins or context), (pm, "the parser gave up here"))
              if m is not None]
    if len(places) == 2 and cm.index == pm.index:
        places = places[1:]
    shown = _carets(text, places)
    return f"invalid YAML: {message}:{shown}" if shown else f"invalid YAML: {message}", mark


def _char_at(text: str, mark) -> str:
    return text[mark.index] if mark is not None and 0 <= mark.index < len(text) else ""


def _carets(text: str, places) -> str:
    """'\n  4 | data: {builtin: x\n    |       ^ label': each place's line once, in order, a caret
    under each of its columns and the last place's label."""
    lines, out = text.splitlines(), ""
    for number in sorted({m.line for m, _ in places}):
        here = sorted((m.column, label) for m, label in places if m.line == number)
        line = lines[number] if number < len(lines) else "(the end of the file)"
        carets = "".join(" " * (c - prev - 1) + "^" for prev, c in
                         zip([-1] + [c for c, _ in here[:-1]], [c for c, _ in here]))
        width = len(str(number + 1))
        # a tab is shown as one visible character, so the caret stays under the column
        out += (f"\n  {number + 1} | {line.replace(chr(9), '→')}"
                f"\n  {' ' * width} | {carets} {here[-1][1]}".rstrip())
    return out
