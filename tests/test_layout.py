"""The house's import rules (CONTRIBUTING.md): rooms import only rooms below them, and no two modules import
each other. Read from the source with ast, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import actlab

ROOT = Path(actlab.__file__).parent

# Lower rank = lower room. A module may import its own room or a lower one.
RANKS = [
    ("actlab.errors", 0), ("actlab.atomic", 0), ("actlab.catalog", 1), ("actlab.kernels", 2),
    ("actlab.functional", 3), ("actlab.nn", 3), ("actlab.swap", 4), ("actlab.swap_calls", 4),
    ("actlab.integrations", 4), ("actlab.analysis", 4), ("actlab.monitor", 4),
    ("actlab.experiments.workload", 5), ("actlab.experiments.training", 6), ("actlab.experiments.execution", 7),
    ("actlab.experiments.results", 7), ("actlab.experiments.stats", 7), ("actlab.experiments.comparison", 8),
    ("actlab.experiments.studies", 9), ("actlab.report", 10), ("actlab.cli", 11), ("actlab.__main__", 12),
]


def _rank(module: str) -> int | None:
    best = None
    for prefix, rank in RANKS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return None if best is None else best[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("actlab")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in ROOT.rglob("*.py")}


def test_imports_point_down():
    upward = []
    for module, imported in _graph().items():
        own = _rank(module)
        if own is None or module == "actlab":  # the package's own __init__ re-exports the public API
            continue
        for target in imported:
            rank = _rank(target)
            if rank is not None and rank > own:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that point up a room:\n" + "\n".join(sorted(upward))


def test_no_two_modules_import_each_other():
    graph = _graph()
    modules = set(graph)
    edges = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}
    cycles = sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if a in edges.get(b, ()) and a < b
                    and not b.startswith(a + ".") and not a.startswith(b + "."))
    assert not cycles, "\n".join(cycles)
