"""The HTML report opened in a real headless Chromium (Debian's, driven by Python playwright)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import numpy as np
import pytest
import torch

import actlab
from actlab.catalog.spec import ActivationSpec
from actlab.report.data import load_study
from actlab.report.html import write_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _ensure_chromium() -> str | None:
    """Install Debian's chromium when missing (root, apt-get); the reason it is unavailable otherwise."""
    if shutil.which("chromium") or os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "chromium is not installed and this user cannot apt-get install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-300:]}"
    return None if os.path.exists(CHROMIUM) else "apt-get installed chromium but /usr/bin/chromium is missing"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Python playwright is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    problem = _ensure_chromium()
    if problem:
        if os.environ.get("CI"):  # CI's machine kind can install it: not running these tests there is a failure
            pytest.fail(problem)
        pytest.skip(problem)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, path, screenshot):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-rendered]", timeout=30000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshot), full_page=True)
    return page, seen


def test_report_renders_every_figure_offline_with_the_stored_numbers(browser, tmp_path):
    db = tmp_path / "actlab.db"
    result = actlab.compare("swish", "leaky_relu", seeds=3, store=str(db), epochs=2, batch_size=200)
    data = load_study(db, result.study)
    html_path = write_html(data, tmp_path / "report.html")
    page, seen = _open(browser, html_path, tmp_path / "report.png")
    n_figures = page.locator("div.js-plotly-plot").count()
    assert n_figures == 8 and page.locator("div.plot").count() == 8
    assert page.locator("div.js-plotly-plot .main-svg").count() >= 7  # drawn, not just created
    assert seen["errors"] == []
    assert all(u.startswith(("file://", "data:", "blob:", "about:")) for u in seen["requests"]), seen["requests"]
    with sqlite3.connect(db) as c:
        stored = {a: [v for (v,) in c.execute("SELECT final_acc FROM trials WHERE activation=? AND phase='test'",
                                               (a,))] for a in ("swish", "leaky_relu")}
    cells = page.locator("#summary td.acc").all_inner_texts()
    for act, cell in zip(("swish", "leaky_relu"), cells):
        assert cell.startswith(f"{100 * np.mean(stored[act]):.2f} ["), (act, cell)
    assert page.locator("#provenance").inner_text().count("torch") >= 1
    assert (tmp_path / "report.png").stat().st_size > 10_000


def _script_spec():
    return ActivationSpec(
        name="<script>alert(1)</script>",
        formula=r"f(x) = x",
        summary="an activation with a hostile name",
        references=(actlab.Reference("Test", "XSS check", 2026),),
        reference=lambda x: np.asarray(x, dtype=np.float64) * 1.0,
        derivative=lambda x: np.ones_like(np.asarray(x, dtype=np.float64)),
        torch_forward=lambda x: x * 1.0,
        torch_derivative=torch.ones_like,
    )


def test_hostile_activation_name_shows_as_text_and_runs_nothing(browser, tmp_path):
    spec = actlab.register(_script_spec())
    try:
        db = tmp_path / "x.db"
        result = actlab.compare("<script>alert(1)</script>", "relu", seeds=2, store=str(db), epochs=1,
                                batch_size=500)
        html_path = write_html(load_study(db, result.study), tmp_path / "x.html")
        page, seen = _open(browser, html_path, tmp_path / "x.png")
        assert seen["dialogs"] == []
        assert seen["errors"] == []
        assert "<script>alert(1)</script>" in page.locator("#summary").inner_text()
        assert page.locator("div.js-plotly-plot").count() == 8
        legend = " ".join(page.locator("g.legend text").all_text_contents())
        assert "<script>alert(1)</script>" in legend
    finally:
        actlab.unregister(spec.name)
