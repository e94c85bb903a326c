"""Packaging: the core runs without the lab extras, the command says which extra it needs, the version is
written once, and the wheel's metadata names its license."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import actlab

ROOT = Path(__file__).resolve().parents[1]

# Run with the lab extras' and mpmath's imports refused, as in an environment where they are not installed.
_BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    LAB = {"scipy", "pandas", "sklearn", "matplotlib", "plotly", "typer", "rich", "click", "mnist1d", "mpmath",
           "pytest", "onnx", "ray", "triton", "jinja2", "pydantic", "platformdirs", "transformers", "timm",
           "torchvision"}
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in LAB:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Refuse())
    for name in [m for m in sys.modules if m.split(".")[0] in LAB]:
        del sys.modules[name]
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT)


def test_the_core_runs_without_the_lab_extras():
    proc = _run("""
        import numpy as np, torch, actlab
        x = torch.randn(4, 8, requires_grad=True)
        y = actlab.get("swish(beta=1.5, trainable=True)")(x) + actlab.functional.gelu(x)
        y.sum().backward()
        assert x.grad is not None and actlab.spec("mish").reference(np.array([1.0]))[0] > 0.86
        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        assert actlab.swap(model, "gelu") == 1
        class Calls(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.silu(x)
        calls = Calls()
        assert actlab.swap_calls(calls, "mish", x.detach()) == 1 and isinstance(calls.swish_swapped, actlab.nn.Mish)
        assert len(actlab.names()) > 20 and actlab.spec("gelu").properties.gain > 1
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_command_names_the_extra_it_needs():
    proc = _run("""
        sys.argv = ["actlab", "list"]
        from actlab.__main__ import run
        run()
    """)
    assert proc.returncode == 1 and "pip install 'actlab[lab]'" in proc.stderr and "Traceback" not in proc.stderr


def test_without_the_lab_extra_every_entry_point_says_what_to_install():
    """The analysis room imports (its mean field's root finder loads scipy when asked), the monitor and a spec's
    notebook display work, and compare, load_results, plot and the monitor's DataFrame name the extra; the
    command's --version answers."""
    proc = _run("""
        import torch, actlab
        from actlab.analysis import propagate, edge_of_chaos, variance_map, unit_stats
        assert variance_map("tanh", 1.0, 1.0, 0.0) > 0
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        with actlab.monitor(model, every=1) as mon:
            model(torch.randn(3, 4)).sum().backward()
        assert mon.reports()[0].stats.units == 8 and "<svg" in actlab.spec("gelu")._repr_html_()
        calls = [lambda: actlab.compare("relu", "gelu"), lambda: actlab.load_results(), lambda: actlab.plot("relu"),
                 lambda: edge_of_chaos("tanh", 0.0), mon.summary]
        for call in calls:
            try:
                call()
            except ModuleNotFoundError as exc:
                assert "pip install 'actlab[lab]'" in str(exc), str(exc)
            else:
                raise AssertionError("no error")
        sys.argv = ["actlab", "--version"]
        from actlab.__main__ import run
        run()
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == f"actlab {actlab.__version__}", proc.stderr


def test_version_is_written_once_and_the_license_ships():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text.split("[tool.setuptools.dynamic]")[0]
    assert actlab.__version__.count(".") == 2
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert (ROOT / "actlab" / "py.typed").exists() and (ROOT / "CHANGELOG.md").exists()


def test_the_compiled_paths_source_ships_with_the_package():
    """`actlab build-ext` compiles the installed package's own C++ source: a wheel must carry it."""
    text = (ROOT / "pyproject.toml").read_text()
    package_data = text.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '"kernels/lean_ops.cpp"' in package_data
    from actlab.kernels import compiled

    assert compiled.SOURCE.is_file() and compiled.SOURCE.parent == ROOT / "actlab" / "kernels"
