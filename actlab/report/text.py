"""Plain-text rendering of the catalogue's LaTeX formulas, for terminals (the LaTeX stays the one source)."""

from __future__ import annotations

import math
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: object) -> str:
    """Text for rich to print as it is: markup escaped (``swish[/bold]`` stays literal) and control characters,
    terminal escape sequences included, shown as U+FFFD instead of acted on."""
    from rich.markup import escape

    return escape(_CONTROL.sub("\ufffd", str(text)))


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """"1 group", "2 groups" ("1 study", "3 studies" with ``nouns``)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def fmt_value(v, digits: int = 6) -> str:
    """A property value for tables: yes/no, +-inf, short floats, ranges in brackets, '-' for None."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return ("+inf" if v > 0 else "-inf") if math.isinf(v) else f"{v:.{digits}g}"
    if isinstance(v, tuple):
        return "[" + ", ".join(fmt_value(x, digits) for x in v) + "]"
    return str(v)

_SYMBOLS = {
    r"\sigma": "σ", r"\Phi": "Φ", r"\alpha": "α", r"\beta": "β", r"\lambda": "λ", r"\theta": "θ", r"\pi": "π",
    r"\otimes": "⊗", r"\sum": "Σ", r"\le": "≤", r"\ge": "≥", r"\approx": "≈", r"\sim": "~", r"\quad": "  ", r"\tanh": "tanh",
    r"\log": "log", r"\max": "max", r"\min": "min", r"\left": "", r"\right": "", r"\,": " ", r"\!": "", r"\ ": " ",
    r"\tfrac": r"\frac", r"\text": r"\mathrm", r"\operatorname": r"\mathrm",
}


def _group(s: str, i: int) -> tuple[str, int]:
    """The brace group starting at s[i] == '{' and the index after it."""
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1 : j], j + 1
    return s[i + 1 :], len(s)


def _commands(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        for cmd, arity in ((r"\frac", 2), (r"\sqrt", 1), (r"\mathrm", 1)):
            if s.startswith(cmd + "{", i):
                args, k = [], i + len(cmd)
                for _ in range(arity):
                    g, k = _group(s, k)
                    args.append(_commands(g))
                if cmd == r"\frac":
                    wrap = lambda t: t if re.fullmatch(r"[\w.]+", t) else f"({t})"  # noqa: E731
                    fraction = f"{wrap(args[0])}/{wrap(args[1])}"
                    # a factor follows (\frac{1}{\beta} \log(...)): the fraction is parenthesised, or it would read
                    # as 1/(beta log(...))
                    follows = s[k:].lstrip()[:1]
                    out.append(f"({fraction})" if follows and (follows.isalnum() or follows in "(\\") else fraction)
                elif cmd == r"\sqrt":
                    out.append(f"√({args[0]})")
                else:
                    out.append(args[0])
                i = k
                break
        else:
            if s.startswith("^{", i) or s.startswith("_{", i):
                g, k = _group(s, i + 1)
                inner = _commands(g)
                out.append(s[i] + (inner if len(inner) == 1 else f"({inner})"))
                i = k
            elif s[i] in "{}":
                i += 1
            else:
                out.append(s[i])
                i += 1
    return "".join(out)


def latex_to_text(latex: str) -> str:
    """A readable one-line version: ``\\frac{x}{1 + e^{-x}}`` -> ``x/(1 + e^(-x))``; cases become ``a if c; ...``.

    Hand-written rather than pylatexenc's LatexNodes2Text, which writes ``\\frac{1}{1 + e^{-x}}`` as
    ``1/1 + e^-x`` (and ``e^{x/\\alpha}`` as ``e^x/α``): exactly the misread formulas actlab exists to correct."""
    s = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", latex)
    s = re.sub(r"(?<=[A-Za-z0-9)}])\\(min|max|log|tanh|sigma|Phi|alpha|beta|lambda|theta)\b", r" \\\1", s)
    s = re.sub(r"\\begin\{cases\}(.*?)\\end\{cases\}",
               lambda m: "(" + "; ".join(" if ".join(p.strip() for p in row.split("&")) for row in m.group(1).split(r"\\"))
               + ")", s, flags=re.DOTALL)
    for k in sorted(_SYMBOLS, key=len, reverse=True):
        s = s.replace(k, _SYMBOLS[k])
    s = _commands(s)
    s = s.replace("\\", "")
    return re.sub(r"\s+", " ", s).strip()
