"""Scalar expressions such as ``ln(x1) + x1*x2 - sin(x2)`` -> a program of the engine's primitives.

A small recursive-descent parser (never ``eval``): numbers, variable names,
``+ - * / ^``, parentheses, and the scalar functions that primitives and
compositions offer by name (:func:`~bpcli.engine.functions.functions`). The program it
builds is the same kind a spec compiles to, so the primal, tangent and adjoint
traces of ``bpcli trace`` come from the real engine.

Grammar (``^`` binds tightest and to the right, as in maths)::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := "-" unary | power
    power := atom ("^" unary)?
    atom  := number | name | name "(" expr ("," expr)* ")" | "(" expr ")"

``a^b`` with a non-constant exponent is ``exp(b ln a)``, defined for ``a > 0``.
Arithmetic on numbers alone is done while parsing (an undefined one, such as
``1/0``, is an InputError at its column); a function of numbers alone stays an
equation, so a trace shows it as a step (``v1 = ln 2``).
"""

from __future__ import annotations

import math
import operator
import re

from .functions import functions
from .program import Builder, Program
from ..errors import InputError

_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
               "^": math.pow}

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_]\w*)|(\S))")


def _tokens(text: str):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        num, name, op = m.groups()
        start = m.start(1 if num else 2 if name else 3)
        if op is not None and op not in "+-*/^(),":
            raise _error(text, start, f"unexpected character {op!r}")
        if num and not math.isfinite(float(num)):
            raise _error(text, start, f"the number {num} is too large for float64")
        out.append((("num", float(num)) if num else ("name", name) if name else ("op", op), start))
        pos = m.end()
    out.append((("end", None), len(text)))
    return out


def _error(text, pos, message):
    return InputError(f"{message} at column {pos + 1}:\n    {text}\n    {' ' * pos}^", path="expression")


class _Parser:
    def __init__(self, text: str, variables: list[str]):
        self.text, self.toks, self.i = text, _tokens(text), 0
        self.b = Builder()
        self.vars = {n: self.b.input(n, ()) for n in variables}

    def peek(self):
        return self.toks[self.i][0]

    def take(self, kind=None, value=None):
        (k, v), pos = self.toks[self.i]
        if (kind and k != kind) or (value and v != value):
            want = value or kind
            got = "the end" if k == "end" else repr(v)
            raise _error(self.text, pos, f"expected {want!r}, found {got}")
        self.i += 1
        return v, pos

    def arithmetic(self, op, a, b, pos):
        """``a op b``; on two numbers computed now, an undefined result an error at ``pos``."""
        if hasattr(a, "id") or hasattr(b, "id"):
            return _ARITHMETIC[op](a, b)
        try:
            value = _ARITHMETIC[op](a, b)
        except (ZeroDivisionError, ValueError, OverflowError):
            value = math.nan
        if not math.isfinite(value):
            raise _error(self.text, pos, f"{a:g} {op} {b:g} is not a finite real number")
        return value

    def expr(self):
        x = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op, pos = self.take()
            x = self.arithmetic(op, x, self.term(), pos)
        return x

    def term(self):
        x = self.unary()
        while self.peek() in (("op", "*"), ("op", "/")):
            op, pos = self.take()
            x = self.arithmetic(op, x, self.unary(), pos)
        return x

    def unary(self):
        if self.peek() == ("op", "-"):
            self.take()
            return -self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == ("op", "^"):
            _, pos = self.take()
            p = self.unary()
            if isinstance(p, float):
                return (self.arithmetic("^", base, p, pos) if isinstance(base, float)
                        else self.b.apply("pow", base, p=p))
            # a variable exponent: a^b = exp(b ln a)
            return self.b.apply("exp", p * self.b.apply("log", base))
        return base

    def atom(self):
        (kind, v), pos = self.toks[self.i]
        if kind == "num":
            self.take()
            return v
        if kind == "op" and v == "(":
            self.take()
            x = self.expr()
            self.take("op", ")")
            return x
        if kind == "name":
            self.take()
            if self.peek() == ("op", "("):
                return self.call(v, pos)
            if v not in self.vars:
                raise _error(self.text, pos, f"unknown variable {v!r}; give its value with --at "
                                             f"{v}=... (known: {', '.join(self.vars) or 'none'})")
            return self.vars[v]
        got = "the end" if kind == "end" else repr(v)
        raise _error(self.text, pos, f"expected a number, a variable or '(', found {got}")

    def call(self, name, pos):
        table = functions()
        if name not in table:
            raise _error(self.text, pos, f"unknown function {name!r}; known: {', '.join(table)}")
        prim, arity = table[name]
        self.take("op", "(")
        args = [self.expr()]
        while self.peek() == ("op", ","):
            self.take()
            args.append(self.expr())
        self.take("op", ")")
        if len(args) != arity:
            raise _error(self.text, pos, f"{name} takes {arity} argument{'s' * (arity > 1)}, "
                                         f"got {len(args)}")
        return self.b.apply(prim, *args)


def variables_in(text: str) -> list[str]:
    """Variable names in order of first appearance (function names excluded)."""
    toks = _tokens(text)
    seen: list[str] = []
    for j, ((kind, v), _) in enumerate(toks):
        if kind == "name" and toks[j + 1][0] != ("op", "(") and v not in seen:
            seen.append(v)
    return seen


def parse(text: str, variables: list[str] | None = None) -> Program:
    """``text`` -> a program with one scalar input per variable and one output ``y``.

    Equations are put in level order (each as early as its inputs allow,
    ties in the order written), which is how the lecture numbers v1, v2, ...
    """
    if not text.strip():
        raise InputError("the expression is empty", path="expression")
    p = _Parser(text, variables if variables is not None else variables_in(text))
    y = p.expr()
    (kind, v), pos = p.toks[p.i]
    if kind != "end":
        raise _error(text, pos, f"unexpected {v!r} after a complete expression")
    if not hasattr(y, "id"):
        raise InputError("the expression has no variables", path="expression")
    p.b.output("y", y)
    return level_order(p.b.program(source=text))


def level_order(prog: Program) -> Program:
    """The same program, equations sorted by depth from the inputs (stable)."""
    depth = {v.id: 0 for v in prog.inputs.values()}
    for e in prog.eqns:
        depth[e.out.id] = 1 + max((depth[a.id] for a in e.inputs if hasattr(a, "id")), default=0)
    eqns = sorted(prog.eqns, key=lambda e: depth[e.out.id])  # sorted() is stable
    return Program(prog.inputs, eqns, prog.outputs, prog.n_vars, prog.meta)
