"""Parse the string form of an activation: ``NAME`` or ``NAME(arg, key=value, ...)``.

Values are Python literals (numbers, strings, True/False), simple arithmetic on numbers (``1/8``), or a bare
word, read as a string (``gelu(approximate=tanh)``). Nothing is evaluated beyond that.
"""

from __future__ import annotations

import ast
import operator
import re
import sys
from typing import Any

from actlab.errors import ActivationSyntaxError

_SHAPE = re.compile(r"^\s*(?P<name>[^()\s][^()]*?)\s*(?:\((?P<args>.*)\))?\s*$", re.DOTALL)
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}


def parse_activation(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    """Split ``text`` into (name, positional values, keyword values). Raises :class:`ActivationSyntaxError`."""
    if not isinstance(text, str):
        raise ActivationSyntaxError(repr(text), f"expected a string, got {type(text).__name__}")
    m = _SHAPE.match(text)
    if m is None:
        problem = "unbalanced parentheses" if text.count("(") != text.count(")") else "unexpected characters"
        raise ActivationSyntaxError(text, problem)
    name, args = m.group("name").strip(), m.group("args")
    if not name:
        raise ActivationSyntaxError(text, "missing the activation name")
    if args is None or not args.strip():
        return name, [], {}
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except SyntaxError as exc:
        raise ActivationSyntaxError(text, f"malformed argument list ({exc.msg})") from None
    if not isinstance(call, ast.Call) or any(kw.arg is None for kw in call.keywords):
        raise ActivationSyntaxError(text, "malformed argument list")
    positional = [_value(node, text) for node in call.args]
    keywords: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:  # **mapping
            raise ActivationSyntaxError(text, "** arguments are not allowed")
        if kw.arg in keywords:
            raise ActivationSyntaxError(text, f"parameter {kw.arg!r} given twice")
        keywords[kw.arg] = _value(kw.value, text)
    return name, positional, keywords


_FLOAT_MAX = sys.float_info.max


def _bounded(value: Any, node: ast.AST, text: str) -> Any:
    """Numbers stay within float range: an int beyond it (``10**400``) is an error, not a hang or an overflow."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= _FLOAT_MAX:
        raise ActivationSyntaxError(text, f"{_source(node, text)!r} is beyond the range of a float")
    return value


def _source(node: ast.AST, text: str) -> str:
    """The value as the user wrote it (the arguments were parsed as ``f(<args>)``)."""
    args = text[text.index("(") + 1: text.rindex(")")]
    return ast.get_source_segment(f"f({args})", node) or ast.unparse(node)


def _value(node: ast.AST, text: str) -> Any:
    return _bounded(_raw_value(node, text), node, text)


def _raw_value(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, text)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _value(node.left, text), _value(node.right, text)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
            if isinstance(node.op, ast.Pow):  # in floats: 10**10**10 overflows at once instead of running for hours
                left, right = float(left), float(right)
            try:
                return _BINOPS[type(node.op)](left, right)
            except OverflowError:
                raise ActivationSyntaxError(text, f"{_source(node, text)!r} is beyond the range of a float") from None
            except ZeroDivisionError as exc:
                raise ActivationSyntaxError(text, f"cannot evaluate {ast.unparse(node)!r}: {exc}") from None
    raise ActivationSyntaxError(text, f"unsupported value {ast.unparse(node)!r} (use a number or a string)")
