"""The command line and the generated docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import actlab
from actlab.catalog.definitions import BUILTIN_SPECS
from actlab.cli import app
from actlab.report import catalog_docs
from actlab.report.text import latex_to_text

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_list_shows_every_activation():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in actlab.names():
        assert name in result.output
    assert "x/(1 + e^(-β x))" in result.output  # swish's formula, readable


def test_show_writes_an_overlaid_figure(tmp_path):
    out = tmp_path / "fig.svg"
    result = runner.invoke(app, ["show", "swish", "leaky_relu(0.2)", "swiglu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<?xml") and "swish" in text and "leaky_relu(negative_slope=0.2)" in text
    assert "gain" in result.output and "Ramachandran" in result.output


def test_real_entry_point_errors_exit_2_with_one_clear_line(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "actlab.cli", "show", "gelu", "-o", str(tmp_path / "g.png")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "-m", "actlab.cli", "show", "swihs"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "did you mean 'swish'" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "actlab.cli", "show", "softplus(beta=0)"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "softplus: parameter 'beta' = 0.0" in bad.stderr.replace("\n", " ")
    bad = subprocess.run([sys.executable, "-m", "actlab.cli", "show", "relu", "-o", "x.gif"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and ".png, .svg, .pdf" in bad.stderr


def test_show_softmax_prints_but_does_not_plot():
    result = runner.invoke(app, ["show", "softmax"])
    assert result.exit_code == 0 and "nothing to plot" in result.output


def test_docs_are_generated_from_the_catalogue_and_up_to_date():
    committed = (ROOT / "docs" / "activations.md").read_text(encoding="utf-8")
    builtins = [s.name for s in BUILTIN_SPECS]  # the tests' own spec-only activations are not documented
    assert committed == catalog_docs.render("figures", builtins), "docs/activations.md is stale: run `actlab docs`"
    for name in builtins:
        assert f"## {name}" in committed
        if actlab.spec(name).kind != "normalizing":
            assert (ROOT / "docs" / "figures" / f"{name}.png").exists()
    assert "max(0, x) + a * x" in committed and "x * gate + (1 - gate) * x" in committed
    # a gated kind's row shows its gate's properties as such (glu read "monotonic, bounded both" as its own)
    assert "| [glu](#glu) | gated | - | gate: yes | gate: yes | gate: both |" in committed


def test_docs_command_writes_files(tmp_path):
    result = runner.invoke(app, ["docs", "--out", str(tmp_path), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "activations.md").read_text().startswith("# Activation catalogue")


@pytest.mark.parametrize("latex,text", [
    (r"\frac{x}{1 + e^{-x}}", "x/(1 + e^(-x))"),
    (r"\max(0,x) + a\min(0,x)", "max(0,x) + a min(0,x)"),
    (r"\begin{cases} x & x > 0 \\ 0 & x \le 0 \end{cases}", "(x if x > 0; 0 if x ≤ 0)"),
    (r"\sqrt{2/\pi}", "√(2/π)"),
    (r"\frac{1}{\beta}\log(1 + e^{\beta x})", "(1/β) log(1 + e^(β x))"),
    (r"\mathrm{swish}_\beta(x)", "swish_β(x)"),
    (r"\frac{1}{1 + e^{-x}}", "1/(1 + e^(-x))"),
])
def test_latex_to_text(latex, text):
    assert latex_to_text(latex) == text


def test_readme_python_examples_run():
    """Every Python block of the README, in order, in one namespace, except two: the plug-ins' block needs
    transformers and timm set up (tests/test_integrations.py and tests/test_vision_models.py make the same calls),
    and the comparison block trains for minutes on the user's own data (tests/test_compare.py covers its calls)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```python\n")[1:]
    namespace: dict = {}
    ran = 0
    for block in blocks:
        code = block[: block.index("```")]
        if "actlab.integrations" in code or "actlab.compare(" in code:
            continue
        exec(compile(code, "README.md", "exec"), namespace)
        ran += 1
    assert ran >= 3


def test_json_output_of_list_show_and_claims(tmp_path):
    import json

    from typer.testing import CliRunner

    from actlab.cli import app

    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["list", "--json"]).output)
    assert {d["name"] for d in listed} == set(actlab.names())
    relu = next(d for d in listed if d["name"] == "relu")
    assert relu["properties"]["output_range"] == [0.0, "inf"] and relu["init"] == "kaiming"  # no bare Infinity
    shown = json.loads(runner.invoke(app, ["show", "swish(beta=1.5, trainable=True)", "--json"]).output)
    assert shown[0]["params"] == {"beta": 1.5} and shown[0]["kind"] == "elementwise"
    result = runner.invoke(app, ["claims", "vanishing-gradients", "--quick", "--json", "--store",
                                 str(tmp_path / "c.db")])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found[0]["study"] == "vanishing-gradients" and found[0]["verdict"] == "undecided"
    assert found[0]["declaration"]["min_seeds"] == 5
    clash = runner.invoke(app, ["claims", "vanishing-gradients", "--json", "-o", "-"])
    assert clash.exit_code != 0 and "both write to standard output" in str(clash.exception)


@pytest.mark.parametrize("words, expected", [
    ("actlab compare si", {"sigmoid", "silu"}),
    ("actlab show leaky", {"leaky_relu"}),
    ("actlab compare relu --task mnist1d", {"mnist1d", "mnist1d-mlp"}),
    ("actlab study edge", {"edge-of-chaos"}),
    ("actlab claims swish-", {"swish-deep", "swish-vs-leaky"}),
])
def test_shell_completion_completes_names(words, expected):
    """The shell's completion protocol (what `actlab --install-completion` wires up), asked as bash asks it."""
    import os

    env = {**os.environ, "_ACTLAB_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1)}
    proc = subprocess.run([sys.executable, "-c", "from actlab.cli import app; app(prog_name='actlab')"], env=env,
                          capture_output=True, text=True)
    offered = set(proc.stdout.split())
    assert expected <= offered, (proc.stdout, proc.stderr)
    assert all(o.startswith(words.split()[-1]) for o in offered)


def test_readme_study_file_is_a_valid_study(tmp_path):
    """The README's TOML example loads as it stands (the file's schema and every range checked)."""
    from actlab.experiments.comparison.config import load_study_file

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    text = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "study.toml"
    path.write_text(text)
    config = load_study_file(path)
    assert config.activations == ("relu", "gelu", "swish", "mish") and config.seeds == 20
    assert config.baseline == "relu" and config.tune == {"weight_decay": (0.0, 0.05)}


def test_every_compare_option_maps_to_a_config_field():
    """The CLI is a shell over one configuration: each `actlab compare` option is a StudyConfig field or a recipe
    field under its own name, except those that only say how to show the result (and the file and name options,
    which say where the configuration comes from)."""
    import dataclasses
    import inspect

    from actlab.cli import compare
    from actlab.experiments.comparison.config import StudyConfig
    from actlab.experiments.workload.recipe import Recipe

    fields = {f.name for f in dataclasses.fields(StudyConfig)} | {f.name for f in dataclasses.fields(Recipe)}
    presentation = {"quiet", "as_json", "report"}  # what is printed, not what runs
    renamed = {"study_file": None, "study_name": "study"}  # --study FILE.toml loads the config; --name is its study
    unmapped = []
    for name in inspect.signature(compare).parameters:
        target = renamed.get(name, name)
        if name in presentation or (name in renamed and target is None):
            continue
        if target not in fields:
            unmapped.append(name)
    assert not unmapped, f"compare options with no config field: {unmapped}"


def test_the_lr_rule_is_the_librarys():
    """--lr with --tune-lr was refused by cli.py only; actlab.compare took both and silently tuned."""
    import pytest as _pytest

    from actlab.experiments.comparison.config import StudyConfig, merge
    from actlab.experiments.workload.recipe import ConfigError, Recipe

    with _pytest.raises(ConfigError, match="lr pins one learning rate .* tune_lr"):
        actlab.compare("relu", "gelu", lr=0.01, tune_lr=(0.003, 0.01))
    pinned = merge(StudyConfig(activations=("relu",), tune_lr=(0.003, 0.01)), lr=0.02)
    assert pinned.tune_lr is None and pinned.lr_grid(pinned.with_recipe(Recipe())) is None


def test_show_from_model_draws_what_the_learnable_activations_learned(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), actlab.get("acon", num_parameters=8), torch.nn.Linear(8, 2),
                                actlab.get("pau"))
    with torch.no_grad():
        model[3].numerator[5] += 1.0  # a "trained" coefficient, printed as learned
    torch.save(model, tmp_path / "m.pt")
    out = tmp_path / "learned.png"
    result = runner.invoke(app, ["show", "--from-model", str(tmp_path / "m.pt"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1: acon" in result.output and "3: pau" in result.output and "1.15" in result.output
    assert out.stat().st_size > 1000
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    for args, message in ((["--from-model", str(tmp_path / "sd.pt")], "not a model"),
                          (["--from-model", str(tmp_path / "none.pt")], "no such file"),
                          (["relu", "--from-model", str(tmp_path / "m.pt")], "not both"),
                          ([], "at least one activation")):
        result = runner.invoke(app, ["show", *args])  # the entry point turns an ActlabError into exit 2
        assert type(result.exception).__name__ == "ActlabError" and message in str(result.exception), args
    torch.save(torch.nn.Sequential(torch.nn.ReLU()), tmp_path / "plain.pt")
    proc = subprocess.run([sys.executable, "-m", "actlab", "show", "--from-model", str(tmp_path / "plain.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no actlab activation with learned parameters" in proc.stderr
    assert "Traceback" not in proc.stderr
