"""Plug-ins: a package that declares an ``actlab.activations`` entry point has its specs in the CLI and the API of an
installed actlab; a broken or colliding plug-in is a clear error naming the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "plugin"


def _install(site: Path, dist: str, value: str) -> None:
    """A distribution as pip leaves it: the module on the path and a dist-info folder with its entry points."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "actlab_demo_plugin.py", site / "actlab_demo_plugin.py")
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[actlab.activations]\ndemo = {value}\n")


def _run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


def test_an_installed_plugin_joins_the_cli_and_the_api(tmp_path):
    _install(tmp_path, "actlab_demo", "actlab_demo_plugin:SPECS")
    shown = _run(tmp_path, "-m", "actlab", "show", "demo_bent_identity")
    assert shown.returncode == 0, shown.stderr
    assert "demo_bent_identity" in shown.stdout
    code = ("import actlab, torch; from actlab.catalog.registry import plugin_of; "
            "print(actlab.functional.demo_bent_identity(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist(), "
            "plugin_of('demo_bent_identity'), len(actlab.names()))")
    out = _run(tmp_path, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["[0.0,", "1.2071067811865475]"] and "actlab_demo" in out.stdout


def test_a_colliding_or_broken_plugin_is_refused_naming_the_package(tmp_path):
    _install(tmp_path / "a", "actlab_demo", "actlab_demo_plugin:SPECS")
    (tmp_path / "a" / "other-0.1.dist-info").mkdir()
    (tmp_path / "a" / "other-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: other\n"
                                                                     "Version: 0.1\n")
    (tmp_path / "a" / "other-0.1.dist-info" / "entry_points.txt").write_text(
        "[actlab.activations]\nzz = actlab_demo_plugin:bent_identity\n")
    out = _run(tmp_path / "a", "-c", "import actlab")
    assert out.returncode != 0
    assert "PluginError" in out.stderr and "'zz'" in out.stderr and "other" in out.stderr
    assert "already" in out.stderr
    _install(tmp_path / "b", "broken", "actlab_demo_plugin:NO_SUCH_NAME")
    out = _run(tmp_path / "b", "-c", "import actlab")
    assert "PluginError" in out.stderr and "failed to load" in out.stderr and "broken" in out.stderr
