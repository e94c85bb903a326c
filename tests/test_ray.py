"""The Ray backend against a real local Ray instance on loopback (started here with 2 CPUs, dashboard off):
same stored numbers as the in-process executor, a worker killed mid-group retried with its trials stored once,
a group that keeps failing recorded while the sweep goes on, and a clear error without Ray."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace

import pytest
from conftest import wait_for_trials

import actlab
from actlab.errors import ActlabError
from actlab.experiments.comparison.compare import run_comparison
from actlab.experiments.comparison.config import ConfigError, StudyConfig, config_from_mapping

try:
    import ray
except ImportError:  # pragma: no cover - CI installs the dev extras
    if os.environ.get("CI"):
        raise RuntimeError("ray is not installed; CI must run the Ray tests (pip install -e '.[dev]')") from None
    pytest.skip("ray is not installed (pip install 'actlab[ray]')", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("worker-cache")


@pytest.fixture(scope="module")
def cluster(worker_cache):
    env = {"PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(actlab.__file__)),
                                          os.environ.get("PYTHONPATH", "")]),
           "ACTLAB_CACHE": str(worker_cache)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield
    ray.shutdown()


def _config(store, **kw):
    base = dict(activations=("swish", "relu"), task="mnist1d", seeds=2, store=str(store), study="ray-test",
                recipe_overrides={"epochs": 2, "lr": 1e-2})
    return StudyConfig(**{**base, **kw})


def _rows(store):
    with sqlite3.connect(store) as db:
        return sorted(db.execute("SELECT trial_key, activation, seed_index, final_acc, auc FROM trials"))


def test_ray_gives_the_same_stored_numbers_as_in_process(cluster, tmp_path):
    local = run_comparison(_config(tmp_path / "local.db"))
    remote = run_comparison(_config(tmp_path / "ray.db", backend="ray"))
    assert not local.failures and not remote.failures and remote.ran == 4
    a, b = _rows(tmp_path / "local.db"), _rows(tmp_path / "ray.db")
    assert [r[:4] for r in a] == [r[:4] for r in b]
    for x, y in zip(a, b):
        assert x[4] == pytest.approx(y[4], rel=1e-5)
    again = run_comparison(_config(tmp_path / "ray.db", backend="ray"))  # resume: nothing left to train
    assert again.ran == 0 and again.skipped == 4
    assert [s.mean for s in again.summaries] == [s.mean for s in local.summaries]


def _group_worker_pids():
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ray::actlab_group" in line]


def test_a_worker_killed_mid_group_is_retried_and_stored_once(cluster, tmp_path):
    killed = []

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            pids = _group_worker_pids()
            if pids:
                time.sleep(0.5)  # let it get into the training loop
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = run_comparison(_config(tmp_path / "kill.db", backend="ray", max_retries=2,
                                    recipe_overrides={"epochs": 6, "lr": 1e-2}))
    thread.join()
    assert killed, "no actlab group worker was seen to kill"
    assert not result.failures
    rows = _rows(tmp_path / "kill.db")
    assert len(rows) == 4 and len({r[0] for r in rows}) == 4
    with sqlite3.connect(tmp_path / "kill.db") as db:
        epochs = db.execute("SELECT trial_id, COUNT(*) FROM epochs GROUP BY trial_id").fetchall()
    assert sorted(n for _, n in epochs) == [6, 6, 6, 6]  # no duplicated epoch rows from the killed attempt
    clean = run_comparison(_config(tmp_path / "clean.db", recipe_overrides={"epochs": 6, "lr": 1e-2}))
    assert [r[:4] for r in _rows(tmp_path / "clean.db")] == [r[:4] for r in rows]
    assert not clean.failures


def test_a_failing_group_is_recorded_and_the_sweep_goes_on(cluster, tmp_path):
    # Registered on the driver only: the workers do not know it, so its group fails there every time.
    spec = replace(actlab.spec("relu"), name="driver_only_relu", aliases=(), alias_presets={})
    actlab.register(spec)
    try:
        result = run_comparison(_config(tmp_path / "fail.db", backend="ray",
                                        activations=("swish", "driver_only_relu")))
    finally:
        actlab.unregister("driver_only_relu")
    assert [f.job.activation for f in result.failures] == ["driver_only_relu"]
    assert "driver_only_relu" in result.failures[0].error
    assert {r[1] for r in _rows(tmp_path / "fail.db")} == {"swish"}
    from actlab.experiments.results.store import Store

    with Store(str(tmp_path / "fail.db")) as store:
        logged = store.failures()
    assert [f["activation"] for f in logged] == ["driver_only_relu"] and len(logged[0]["trial_keys"]) == 2
    assert "driver_only_relu" in logged[0]["error"]


def test_local_data_files_travel_through_the_object_store(cluster, worker_cache, tmp_path):
    from test_data import write_idx_set

    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    write_idx_set(data_dir, n_train=200, n_test=50)
    kw = dict(activations=("relu",), task="mnist", data_dir=str(data_dir), recipe_overrides={"epochs": 1, "lr": 1e-3})
    local = run_comparison(_config(tmp_path / "local.db", **kw))
    remote = run_comparison(_config(tmp_path / "ray.db", backend="ray", **kw))
    assert not local.failures and not remote.failures
    assert [r[:4] for r in _rows(tmp_path / "local.db")] == [r[:4] for r in _rows(tmp_path / "ray.db")]
    shipped = [p for p in (worker_cache / "ray-data").iterdir() if (p / ".complete").exists()]
    assert len(shipped) == 1  # the workers read the copy written from the object store
    assert sorted(f.name for f in shipped[0].iterdir() if f.name != ".complete") == sorted(
        f.name for f in data_dir.iterdir())


def test_a_resource_the_cluster_lacks_is_an_error_not_a_hang(cluster, tmp_path):
    with pytest.raises(ActlabError, match=r"gpus_per_group = 1, but the Ray cluster has 0 GPU"):
        run_comparison(_config(tmp_path / "gpu.db", backend="ray", gpus_per_group=1.0))


def test_studies_run_their_trainings_on_ray(cluster, tmp_path):
    from actlab.experiments.studies import run_study

    finding = run_study("swish-beta", quick=True, store=str(tmp_path / "study.db"), backend="ray")
    assert finding.numbers
    with sqlite3.connect(tmp_path / "study.db") as db:
        assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] > 0


def test_interrupted_driver_resumes(tmp_path):
    """SIGINT to a driver (its own local Ray instance) mid-sweep, then the same command again: finished groups come
    from the store, the rest are trained, nothing is stored twice."""
    import sys

    store = tmp_path / "int.db"
    cmd = [sys.executable, "-m", "actlab.cli", "compare", "relu", "swish", "gelu", "mish", "elu", "tanh",
           "--seeds", "2", "--epochs", "20", "--lr", "0.01", "--backend", "ray", "--store", str(store), "--no-report",
           "-q"]
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(actlab.__file__))}
    # A shell without job control starts background jobs with SIGINT ignored: give the driver the default.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_trials(proc, store, 2, timeout=180)
    assert proc.poll() is None, "the sweep finished before it could be interrupted:\n" + proc.stdout.read()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    partial = len(_rows(store))
    assert 2 <= partial < 12
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = _rows(store)
    assert len(rows) == 12 and len({r[0] for r in rows}) == 12
    assert f"{12 - partial} trials trained, {partial} taken from the store" in " ".join(again.stdout.split())


def test_an_unreachable_address_fails_fast(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.time()
    with pytest.raises(ActlabError, match=rf"address = '127.0.0.1:{port}': no Ray cluster answers there"):
        run_comparison(_config(tmp_path / "x.db", backend="ray", address=f"127.0.0.1:{port}"))
    assert time.time() - start < 30


def test_backend_settings_are_validated():
    assert config_from_mapping({"activations": ["relu"], "backend": "ray", "address": "10.0.0.1:6379",
                                "gpus_per_group": 0.25}).gpus_per_group == 0.25
    with pytest.raises(ConfigError, match="backend = 'slurm'"):
        StudyConfig(activations=("relu",), backend="slurm")
    with pytest.raises(ConfigError, match="needs backend = 'ray'"):
        StudyConfig(activations=("relu",), address="x:1")
    with pytest.raises(ConfigError, match="gpus_per_group = -1"):
        StudyConfig(activations=("relu",), backend="ray", gpus_per_group=-1)


def test_missing_ray_gives_the_install_command(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ActlabError, match=r"pip install 'actlab\[ray\]'"):
        run_comparison(_config(tmp_path / "x.db", backend="ray"))
    assert not (tmp_path / "x.db").exists()
