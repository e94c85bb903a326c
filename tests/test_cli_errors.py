"""The CLI behaves like a CLI: usage errors are one message and exit 2 with no traceback, Ctrl-C exits 130 saying
what the store keeps, and names are printed as text (no rich markup, no terminal escapes). The name parser bounds
every number and refuses extra positional values. Each test reproduces a defect seen before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import actlab
from actlab.catalog.registry import resolve_trainable
from actlab.report.text import terminal_safe


def _actlab(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "actlab.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.mark.parametrize("args,fragment", [
    (["compare", "--seeds", "x"], "Invalid value for '--seeds'"),
    (["compare", "--no-such-option"], "No such option"),
    (["no-such-command"], "No such command"),
    (["show", "swihs"], "did you mean 'swish'"),
    (["show", "swish(beta=10**10**10)"], "beyond the range of a float"),
])
def test_usage_errors_exit_2_with_one_message_and_no_traceback(args, fragment):
    result = _actlab(*args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and "╭" not in result.stderr


def test_names_with_markup_or_escape_sequences_are_printed_as_text():
    assert terminal_safe("swish[/bold]") == "swish\\[/bold]"
    assert "\x1b" not in terminal_safe("swi\x1b[31msh") and "\ufffd" in terminal_safe("swi\x1b[31msh")
    result = _actlab("show", "swish[/bold]")
    assert result.returncode == 2 and "swish[/bold]" in result.stderr and "MarkupError" not in result.stderr
    result = _actlab("show", "swi\x1b[31msh")
    assert result.returncode == 2 and "\x1b" not in result.stderr


@pytest.mark.parametrize("text", ["swish(beta=10**10**10)", "swish(beta=2**10000)", "swish(beta=1e400)",
                                  "swish(beta=10**400)", "swish(beta=-(9**9**9))"])
def test_the_parser_bounds_every_number_at_once(text):
    start = time.perf_counter()
    with pytest.raises(actlab.ActivationSyntaxError, match="beyond the range of a float"):
        actlab.get(text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", ["relu(5)", "swish(1.5, 99)"])
def test_extra_positional_values_are_refused_everywhere(text):
    with pytest.raises(actlab.InvalidParameterError, match="positional"):
        resolve_trainable(text)
    with pytest.raises(actlab.InvalidParameterError, match="positional"):
        actlab.get(text)
    result = _actlab("compare", text, "relu", "--seeds", "2", "--epochs", "1", "--lr", "0.01", "--no-report")
    assert result.returncode == 2 and "positional" in result.stderr


def _default_sigint() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and Python then never turns it
    into KeyboardInterrupt: give the child the terminal's default, as a user's Ctrl-C would find it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_the_store_keeps_what_finished(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "actlab.cli", "compare", "relu", "swish", "--seeds", "4",
                             "--epochs", "200", "--no-report"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=_default_sigint)
    for line in proc.stdout:  # interrupt once trials are training (after imports, data and the plan)
        if line.startswith(("tuning lr:", "training:")):
            break
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "the store keeps every trial that finished" in err and "Traceback" not in err


def test_an_interrupt_inside_exec_of_a_string_still_exits_130(tmp_path):
    """The intermittent -SIGINT exit: a Ctrl-C that lands in code run by exec() of a string (dataclasses makes its
    methods so, and torch._dynamo is imported lazily mid-training) makes CPython 3.11 kill itself with SIGINT at exit,
    even after the interrupt was handled. Here the interrupt is raised there on purpose, every time."""
    (tmp_path / "interrupted_list.py").write_text(
        "import actlab.catalog as catalog, actlab.cli as cli\n"
        "def names():\n    exec('raise KeyboardInterrupt')\n"
        "catalog.names = names\ncli.main(['list'])\n")
    # run as a module, as `python -m actlab` runs: that is the path on which CPython checks the flag at exit
    proc = subprocess.run([sys.executable, "-m", "interrupted_list"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, preexec_fn=_default_sigint)
    assert proc.returncode == 130, (proc.stdout, proc.stderr)
    assert "the store keeps every trial that finished" in proc.stderr and "Traceback" not in proc.stderr


def test_a_ctrl_c_that_python_drops_is_raised_again(tmp_path):
    """CPython prints and drops an exception raised in a weakref callback: a Ctrl-C landing in importlib's module-lock
    callback during a lazy import was lost that way, and the run trained on (the Ctrl-C test above once timed out so).
    Here the interrupt lands in such a callback on purpose; the command must still stop, within about a second,
    with exit 130 and no traceback."""
    (tmp_path / "dropped_interrupt.py").write_text(
        "import os, signal, time, weakref\n"
        "import actlab.catalog as catalog, actlab.cli as cli\n"
        "class Box:\n    pass\n"
        "def interrupt_inside_a_callback(_):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(100000):\n        pass  # the handler runs here; CPython drops its KeyboardInterrupt\n"
        "def names():\n"
        "    box = Box()\n    ref = weakref.ref(box, interrupt_inside_a_callback)\n    del box\n"
        "    started = time.monotonic()\n    time.sleep(20)\n"
        "    print('slept', time.monotonic() - started)\n    return []\n"
        "catalog.names = names\ncli.main(['list'])\n")
    proc = subprocess.run([sys.executable, "-m", "dropped_interrupt"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, preexec_fn=_default_sigint)
    assert proc.returncode == 130 and "slept" not in proc.stdout, (proc.stdout, proc.stderr)
    assert "the store keeps every trial that finished" in proc.stderr and "Traceback" not in proc.stderr


def test_a_comparison_with_failed_groups_exits_1_and_names_them(tmp_path, monkeypatch, capsys):
    import torch

    from actlab.catalog import registry
    from actlab.cli import main

    def boom(x):  # fails where training runs it (float32); register()'s float64 probe passes
        if x.dtype == torch.float32:
            raise RuntimeError("this activation always fails in training")
        return x

    spec = actlab.ActivationSpec(name="test_boom", formula="x", references=(), torch_forward=boom,
                                 torch_derivative=lambda x: torch.ones_like(x), reference=lambda x: x,
                                 derivative=lambda x: x * 0 + 1)
    actlab.register(spec)
    monkeypatch.chdir(tmp_path)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", "test_boom", "relu", "--seeds", "2", "--epochs", "1", "--lr", "0.01", "--no-report",
                  "--quiet"])
    finally:
        registry.unregister("test_boom")
    assert exit_info.value.code == 1
    assert "test_boom" in capsys.readouterr().out


def test_version_and_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "actlab", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"actlab {actlab.__version__}"
    result = subprocess.run([sys.executable, "-m", "actlab", "show", "relu"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "relu" in result.stdout


def test_bad_inputs_are_clear_errors_before_training(tmp_path):
    """Each failed with a traceback (or after training, losing the results) before."""
    from actlab.experiments.comparison.config import load_study_file
    from actlab.experiments.workload.data import DataError, read_idx
    from actlab.experiments.workload.recipe import ConfigError

    result = _actlab("compare", "relu", "swish", "--base-seed", str(10**26), "--seeds", "2", "--epochs", "1",
                     "--lr", "0.01", "--no-report", cwd=tmp_path)
    assert result.returncode == 2 and "base_seed" in result.stderr and "2**63" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*.db-journal"))

    binary = tmp_path / "study.toml"
    binary.write_bytes(b"\xff\xfe\x00not text")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_study_file(binary)
    with pytest.raises(ConfigError, match="is a directory"):
        load_study_file(tmp_path)

    import gzip

    idx = tmp_path / "train-labels-idx1-ubyte.gz"
    idx.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(100))[:-12])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(idx, 1)


def test_unwritable_outputs_are_usage_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _actlab("bench", "kernels", "--names", "relu", "--size", "1024", "--rounds", "3",
                     "--min-block", "0.001", "-o", str(blocker / "sub" / "k.json"))
    assert result.returncode == 2 and "--output" in result.stderr and "cannot write there" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_library_is_quiet_and_the_cli_shows_its_log(tmp_path, caplog):
    import logging

    import torch

    import actlab

    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("actlab").handlers)
    with caplog.at_level(logging.INFO, logger="actlab"):
        actlab.swap(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2)), "gelu")
    assert any("swap: 1 site(s) replaced" in r.getMessage() for r in caplog.records)
    proc = subprocess.run([sys.executable, "-m", "actlab", "--log-level", "info", "study", "selu-fixed-point",
                           "--quick", "--store", str(tmp_path / "s.db")], capture_output=True, text=True)
    assert proc.returncode == 0 and "selu-fixed-point: supported" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "actlab", "--log-level", "loud", "list"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--log-level 'loud'" in bad.stderr and "Traceback" not in bad.stderr


def test_store_faults_exit_1_and_a_wrong_path_exits_2(tmp_path):
    """A corrupt store or one that is a directory is a failure (exit 1): what was typed may be right. They exited 2,
    as a usage error; a store path that does not exist is still a usage error."""
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    folder = tmp_path / "folder.db"
    folder.mkdir()
    for path in (corrupt, folder):
        result = _actlab("report", "--store", str(path))
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and str(path.name) in result.stderr
    missing = _actlab("report", "--store", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "no results store" in missing.stderr


def test_a_data_dir_is_checked_before_training(tmp_path):
    """mnist1d ignored a nonexistent --data-dir and trained (exit 0); now both a missing folder and a task that
    reads none are refused before anything runs."""
    ignored = _actlab("compare", "relu", "--data-dir", str(tmp_path / "nope"), "--seeds", "1", "--no-report")
    assert ignored.returncode == 2 and "reads no local files" in ignored.stderr
    missing = _actlab("compare", "relu", "--task", "lm", "--data-dir", str(tmp_path / "nope"), "--seeds", "1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_list_json_prints_json_and_findings_overwrite_nothing_by_default(tmp_path):
    import json

    for command in ("study", "claims"):
        result = _actlab(command, "--list", "--json")
        assert result.returncode == 0, result.stderr
        listed = json.loads(result.stdout)
        assert listed and {"name", "claim", "source", "min_seeds"} <= set(listed[0])
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "findings.md").write_text("hand-written")
    result = _actlab("findings", "--store", str(tmp_path / "none.db"), cwd=tmp_path)
    assert result.returncode != 0 and (docs / "findings.md").read_text() == "hand-written"


def test_counts_are_plural_only_when_more_than_one():
    from actlab.report.text import plural

    assert plural(1, "group") == "1 group" and plural(2, "group") == "2 groups"
    assert plural(1, "finding") == "1 finding" and plural(3, "study", "studies") == "3 studies"


def test_a_cuda_device_that_is_not_there_exits_2_before_training(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = _actlab("compare", "relu", "--device", "cuda", "--store", str(tmp_path / "x.db"))
    assert result.returncode == 2 and "no CUDA device" in result.stderr and not (tmp_path / "x.db").exists()
