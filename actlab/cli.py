"""The command line: ``actlab list | show | docs``.

Errors in what the user typed (unknown names, bad parameters) print one clear line and exit with status 2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from actlab import catalog
from actlab.atomic import atomic_path, write_text
from actlab.errors import ActlabError, ActlabFailure
from actlab.report.text import fmt_value, plural, terminal_safe

app = typer.Typer(add_completion=True, no_args_is_help=True,
                  help="actlab: a laboratory for neural-network activation functions.")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def _show_version(value: bool) -> None:
    if value:
        from actlab import __version__

        console.print(f"actlab {__version__}", highlight=False)
        raise typer.Exit()


LOG_LEVELS = ("debug", "info", "warning", "error")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit",
                                       callback=_show_version, is_eager=True),
          log_level: str = typer.Option("warning", "--log-level", help="the library's log messages shown on "
                                        "stderr: debug | info | warning | error")) -> None:
    """actlab: a laboratory for neural-network activation functions."""
    import logging

    if log_level not in LOG_LEVELS:
        raise ActlabError(f"--log-level {log_level!r}: expected one of {', '.join(LOG_LEVELS)}")
    from rich.logging import RichHandler

    logger = logging.getLogger("actlab")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, RichHandler)]
    logger.addHandler(RichHandler(console=err_console, show_time=False, show_path=False, markup=False))
    logger.setLevel(log_level.upper())

FIGURE_FORMATS = (".png", ".svg", ".pdf")


def _fmt(v) -> str:
    return fmt_value(v, 4)


def _json_safe(value: Any) -> Any:
    """JSON without NaN/Infinity tokens: non-finite floats become the strings "nan", "inf", "-inf"."""
    import dataclasses
    import math

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _print_json(value: Any) -> None:
    import json

    sys.stdout.write(json.dumps(_json_safe(value), indent=2) + "\n")


def _activation_record(resolved) -> dict[str, Any]:
    s = resolved.spec
    return {"name": s.name, "text": resolved.text, "kind": s.kind, "aliases": list(s.aliases),
            "params": resolved.params, "formula": s.formula, "init": s.init,
            "properties": s.measure(**resolved.params), "references": [str(r) for r in s.references]}


_JSON = typer.Option(False, "--json", help="print machine-readable JSON instead of the table")


def _complete_activations(incomplete: str) -> list[str]:
    """Shell completion: catalogue names and aliases (registered and plug-in specs included)."""
    from actlab import catalog

    words = set(catalog.names())
    for name in catalog.names():
        words.update(catalog.spec(name).aliases)
    return sorted(w for w in words if w.startswith(incomplete))


def _complete_tasks(incomplete: str) -> list[str]:
    from actlab.experiments.workload.tasks import task_names

    return [t for t in task_names() if t.startswith(incomplete)]


def _completer(kind: str) -> Any:
    def complete(incomplete: str) -> list[str]:
        from actlab.experiments.studies import study_names

        return [n for n in study_names(kind) if n.startswith(incomplete)]

    return complete


@app.command("list")
def list_activations(as_json: bool = _JSON) -> None:
    """Every activation in the catalogue: parameters, formula and key measured properties."""
    from actlab.report.text import latex_to_text

    if as_json:
        _print_json([_activation_record(catalog.resolve(n)) for n in catalog.names()])
        return
    out = console if console.is_terminal else Console(width=200)
    table = Table(title="actlab catalogue", show_lines=False, header_style="bold")
    for col in ("name", "kind", "parameters", "formula", "monotonic", "smooth", "range", "gain"):
        table.add_column(col, overflow="fold")
    for name in catalog.names():
        s = catalog.spec(name)
        p = s.properties
        params = ", ".join(f"{k}={v.default!r}" for k, v in s.params.items()) or "-"
        of = "gate: " if p.of == "gate" else ""  # a gated kind's properties are its gate's, and say so
        cells = (name, s.kind, params, latex_to_text(s.formula), of + _fmt(p.monotonic), of + _fmt(p.smooth),
                 of + _fmt(p.output_range), of + _fmt(p.gain))
        table.add_row(*(terminal_safe(c) for c in cells))
    out.print(table)
    out.print(f"{len(catalog.names())} activations. Aliases resolve too (e.g. SiLU, LeakyReLU, leaky-relu). "
              "`actlab show NAME` for one in full.")


def _show_learned(path: Path, output: Path | None, x_range: tuple[float, float]) -> None:
    import torch

    from actlab.analysis.plots import learned_sites, plot_learned

    if not path.is_file():
        raise ActlabError(f"--from-model {str(path)!r}: no such file")
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # an unreadable file: say what it is, not a traceback
        raise ActlabError(f"--from-model {str(path)!r}: not a file torch.load can read ({type(error).__name__}: "
                          f"{error})") from None
    if not isinstance(model, torch.nn.Module):
        raise ActlabError(f"--from-model {str(path)!r} holds a {type(model).__name__}, not a model: save the whole "
                          "module with torch.save(model, path) (a state_dict has no activations to draw)")
    sites = learned_sites(model)
    if not sites:
        raise ActlabError(f"--from-model {str(path)!r}: the model has no actlab activation with learned parameters")
    for site, module in sites:
        values = ", ".join(f"{k} = {_learned_summary(v)}" for k, v in module.named_parameters())
        console.print(f"{terminal_safe(site)}: {terminal_safe(module.spec.name)}  {terminal_safe(values)}")
    fig = plot_learned(model, x_range=x_range)
    output = output or Path(f"actlab-learned-{path.stem}.png")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    console.print(f"figure written to {output}")


def _learned_summary(tensor: Any) -> str:
    t = tensor.detach().float()
    if t.numel() == 1:
        return f"{float(t):.4g}"
    return f"[{', '.join(f'{v:.3g}' for v in t.flatten()[:6].tolist())}{', ...' if t.numel() > 6 else ''}]"


@app.command()
def show(
    activations: list[str] | None = typer.Argument(None, help="names or string forms, e.g. swish 'leaky_relu(0.2)'",
                                                   autocompletion=_complete_activations),
    output: Path | None = typer.Option(None, "-o", "--output", help="figure file: .png, .svg or .pdf"),
    x_min: float = typer.Option(-5.0, help="left end of the plotted range"),
    x_max: float = typer.Option(5.0, help="right end of the plotted range"),
    as_json: bool = typer.Option(False, "--json", help="print JSON (no figure unless -o is given)"),
    from_model: Path | None = typer.Option(
        None, "--from-model", help="a model saved whole with torch.save(model, path): draw the shapes its learnable "
        "activations learned (the file is unpickled: only load files you trust)"),
) -> None:
    """Formula, parameters, measured properties, and a plot of f and f' (several activations overlay); with
    --from-model, the shapes a trained model's learnable activations have taken."""
    from actlab.report.text import latex_to_text

    if output is not None and output.suffix.lower() not in FIGURE_FORMATS:
        raise ActlabError(f"--output {str(output)!r}: the file must end in one of {', '.join(FIGURE_FORMATS)}")
    if not x_min < x_max:
        raise ActlabError(f"--x-min {x_min} must be below --x-max {x_max}")
    if from_model is not None:
        if activations:
            raise ActlabError("give activation names or --from-model, not both")
        _show_learned(from_model, output, (x_min, x_max))
        return
    if not activations:
        raise ActlabError("give at least one activation name (actlab list shows them), or --from-model FILE")
    resolved = [catalog.resolve(a) for a in activations]
    if as_json:
        _print_json([_activation_record(r) for r in resolved])
        if output is None:
            return
    for r in resolved if not as_json else []:
        s = r.spec
        props = s.measure(**r.params)
        lines = [f"[bold]{terminal_safe(r.text)}[/bold]  ({s.kind})", terminal_safe(s.summary), "",
                 f"formula: {terminal_safe(latex_to_text(s.formula))}", f"LaTeX:   {terminal_safe(s.formula)}"]
        for k, p in s.params.items():
            lines.append(f"  {k} = {r.params[k]!r}   ({p.describe(k)}{'; trainable' if p.trainable_allowed else ''})")
        of = " of the gate" if props.of == "gate" else ""
        lines.append(f"measured properties{of}:")
        for key in ("monotonic", "continuous", "smooth", "bounded_below", "bounded_above", "output_range",
                    "value_at_0", "slope_at_0", "gain", "mean"):
            lines.append(f"  {key:14s} {_fmt(props[key])}")
        lines.append("references: " + terminal_safe("; ".join(str(ref) for ref in s.references)))
        console.print(Panel("\n".join(lines), expand=False))
    drawable = [r for r in resolved if r.spec.kind != "normalizing"]
    if not drawable:
        if not as_json:
            console.print("nothing to plot: softmax acts on a whole dimension, not elementwise")
        return
    if output is None:
        stem = "_".join("".join(c if c.isalnum() else "_" for c in r.text).strip("_") for r in drawable)
        output = Path(f"actlab-show-{stem[:80]}.png")
    from actlab.analysis.plots import plot_activations

    fig = plot_activations(drawable, x_range=(x_min, x_max))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    if not as_json:
        console.print(f"figure written to {output}")


@app.command()
def docs(
    out: Path = typer.Option(Path("docs"), "--out", help="folder for activations.md and figures/"),
    figures: bool = typer.Option(True, help="draw one figure per activation"),
) -> None:
    """Generate docs/activations.md (and its figures) from the catalogue."""
    from actlab.report.catalog_docs import write

    path = write(out, figures=figures)
    console.print(f"wrote {path}")


@app.command()
def tasks() -> None:
    """The tasks that `actlab compare --task` accepts, with their parameters."""
    from actlab.experiments.workload.tasks import task_names, task_spec

    table = Table(title="actlab tasks", header_style="bold")
    for col in ("task", "parameters", "target acc", "default recipe", "description"):
        table.add_column(col, overflow="fold")
    for name in task_names():
        t = task_spec(name)
        params = ", ".join(f"{k}={p.default!r}" for k, p in t.params.items()) or "-"
        r = t.recipe
        recipe = f"{r.optimizer} lr={r.lr:g} bs={r.batch_size} epochs={r.epochs} wd={r.weight_decay:g}"
        table.add_row(name, terminal_safe(params), f"{100 * t.target_accuracy:.0f}%", recipe,
                      terminal_safe(t.description))
    console.print(table)


# Where trial groups run; shared by compare and study.
_BACKEND = typer.Option(None, "--backend", help="local (default) | ray")
_ADDRESS = typer.Option(None, "--address", help="Ray cluster address (default: start a local one)")
_CPUS_PER_GROUP = typer.Option(None, "--cpus-per-group", help="Ray: CPUs per trial group")
_GPUS_PER_GROUP = typer.Option(None, "--gpus-per-group", help="Ray: GPUs (or a fraction) per group")


@app.command()
def compare(
    activations: list[str] = typer.Argument(None, help="activations, e.g. swish leaky_relu 'swish(trainable=True)'",
                                            autocompletion=_complete_activations),
    task: str | None = typer.Option(None, "--task", "-t", help="task (actlab tasks), default mnist1d",
                                    autocompletion=_complete_tasks),
    seeds: int | None = typer.Option(None, "--seeds", "-n", help="seeds per activation (default 10)"),
    epochs: int | None = typer.Option(None, "--epochs", help="epochs (default: the task's recipe)"),
    lr: float | None = typer.Option(None, "--lr", help="pin one learning rate for every activation (default: "
                                       "each activation's own, chosen on a validation split)"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="examples per step (default: the task's recipe)"),
    optimizer: str | None = typer.Option(None, "--optimizer", help="adamw | adam | sgd"),
    weight_decay: float | None = typer.Option(None, "--weight-decay", help="decoupled weight decay (adamw) or L2 "
                                              "(adam, sgd) (default: the task's recipe)"),
    init: str | None = typer.Option(None, "--init", help="default | recommended (each activation's own) | "
                                       "kaiming | xavier | lecun"),
    tune_lr: str | None = typer.Option(None, "--tune-lr", help="the grid each activation's lr is chosen from on a "
                                          "validation split, e.g. 3e-4,1e-3,3e-3 (default: the task's lr /3, x1, x3)"),
    tune: list[str] = typer.Option([], "--tune", help="another recipe field chosen with the lr, per activation, on "
                                   "the validation split, e.g. --tune weight_decay=0,0.05 (repeatable)"),
    baseline: str | None = typer.Option(None, "--baseline", help="compare each activation with this one "
                                           "(default: the first named)"),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="test every pair instead of each against the baseline"),
    cost: bool = typer.Option(True, "--cost/--no-cost", help="time each activation's training step (interleaved)"),
    study_file: Path | None = typer.Option(None, "--study", help="a TOML study file (flags override it)"),
    study_name: str | None = typer.Option(None, "--name", help="name stored with the trials"),
    store: str | None = typer.Option(None, "--store", help="results database (default runs/actlab.db)"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="folder with local data files (mnist, cifar10)"),
    jobs: int | None = typer.Option(None, "-j", "--jobs", help="worker processes (default 1: in-process)"),
    base_seed: int | None = typer.Option(None, "--base-seed", help="the seed every trial's seeds derive from "
                                         "(default 0); another base seed draws other initial weights and data orders"),
    mode: str | None = typer.Option(None, "--mode", help="auto | vectorized | per-seed"),
    force: bool = typer.Option(False, "--force", help="retrain trials already in the store"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only the final table"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the HTML report next to the store"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON (no progress, no table); the "
                                 "report is still written and its path is in the JSON"),
    device: str | None = typer.Option(None, "--device", help="cpu (default) | cuda | cuda:N: where the groups train, "
                                      "seed-vectorized on one GPU"),
    backend: str | None = _BACKEND,
    address: str | None = _ADDRESS,
    cpus_per_group: float | None = _CPUS_PER_GROUP,
    gpus_per_group: float | None = _GPUS_PER_GROUP,
) -> None:
    """Train the same model with each activation over paired seeds, each at its own learning rate chosen on a
    validation split; report accuracy with calibrated intervals, convergence, cost, dead units and honest verdicts
    against a baseline."""
    from dataclasses import replace

    from actlab.experiments.comparison.compare import run_comparison
    from actlab.experiments.comparison.config import StudyConfig, load_study_file, merge
    from actlab.experiments.workload.recipe import ConfigError
    from actlab.report.tables import print_comparison

    rates = None
    if tune_lr is not None:
        try:
            rates = tuple(float(v) for v in tune_lr.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--tune-lr {tune_lr!r}: expected comma-separated numbers such as 3e-4,1e-3") from None
        if not rates:
            raise ConfigError("--tune-lr: give at least one learning rate")
    tuned = _parse_tune(tune)
    if study_file is not None:
        config = load_study_file(study_file)
        if activations:
            config = replace(config, activations=tuple(activations))
    else:
        if not activations:
            raise ConfigError("give at least one activation to compare (or --study FILE.toml)")
        config = StudyConfig(activations=tuple(activations))
    config = merge(config, task=task, seeds=seeds, tune_lr=rates, store=store, study=study_name, data_dir=data_dir,
                   jobs=jobs, base_seed=base_seed, mode=mode, epochs=epochs, lr=lr, batch_size=batch_size,
                   optimizer=optimizer, weight_decay=weight_decay, init=init, backend=backend, address=address,
                   cpus_per_group=cpus_per_group, gpus_per_group=gpus_per_group, baseline=baseline,
                   tune=tuned or None, device=device, force=force or None, all_pairs=all_pairs or None,
                   cost=None if cost else False)  # a flag left at its default leaves the study file's value
    reporter = _Reporter(quiet or as_json)
    with reporter:
        result = run_comparison(config, progress=reporter)
    if not as_json:
        print_comparison(result, console if console.is_terminal else Console(width=240))
    path = None
    if report and result.trials:
        from actlab.report.data import load_study
        from actlab.report.html import write_html

        path = write_html(load_study(result.config.store, result.study), default_report_path(result.config.store,
                                                                                               result.study))
        if not as_json:
            console.print(f"report: {path}", highlight=False, soft_wrap=True)
    if as_json:
        _print_json({**result.as_dict(), "report": None if path is None else str(path)})
    if result.failures:
        raise typer.Exit(1)


def _parse_tune(options: list[str]) -> dict[str, tuple[Any, ...]]:
    """``["weight_decay=0,0.05", "optimizer=adamw,sgd"]`` -> {field: values}; numbers become numbers."""
    from actlab.experiments.workload.recipe import ConfigError

    def value(text: str) -> Any:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    out: dict[str, tuple[Any, ...]] = {}
    for option in options:
        key, sep, values = option.partition("=")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not parts:
            raise ConfigError(f"--tune {option!r}: expected FIELD=V1,V2,... such as weight_decay=0,0.05")
        if key.strip() in out:
            raise ConfigError(f"--tune {option!r}: {key.strip()} is given twice")
        out[key.strip()] = tuple(value(v) for v in parts)
    return out


class _Reporter:
    """Progress: a rich bar (trials done/total, ETA) on a terminal, plain lines otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = None
        self.task_id = None
        self.done = 0

    def __enter__(self):
        if not self.quiet and console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("trials"), TimeRemainingColumn(), console=console)
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event, payload):
        if event == "warning":  # shown even with --quiet: it changes what the run can conclude
            err_console.print(f"[yellow]warning:[/yellow] {terminal_safe(payload)}", highlight=False)
        if self.quiet:
            return
        if event == "plan":
            phase = "tuning lr" if payload["phase"] == "tune" else "training"
            if self.progress is not None:
                self.task_id = self.progress.add_task(phase, total=max(payload["trials"], 1))
                if payload["trials"] == 0:
                    self.progress.update(self.task_id, completed=1)
            else:
                console.print(f"{phase}: {plural(payload['trials'], 'trial')} in {plural(payload['groups'], 'group')} "
                              f"({payload['skipped']} already in the store)")
        elif event == "group_done":
            if self.progress is not None:
                self.progress.advance(self.task_id, len(payload.keys))
            else:
                rates = ", ".join(f"{r:g}" for r in sorted(set(payload.lrs)))
                console.print(terminal_safe(f"  done: {payload.label} at lr {rates} "
                                            f"({plural(len(payload.keys), 'trial')})"), highlight=False)
        elif event == "cost":
            if self.progress is None:
                console.print("timing each activation's training step (interleaved rounds)")
        elif event == "group_failed":
            job, err = payload
            console.print(f"  [red]failed[/red]: {terminal_safe(job.label)}: {terminal_safe(str(err))}",
                          highlight=False)


def default_report_path(store: str | Path, study: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in study).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return Path(store).parent / f"report-{slug[:80] or 'study'}.html"


@app.command("report")
def report_command(
    store: Path = typer.Argument(Path("runs/actlab.db"), help="results database"),
    store_option: Path | None = typer.Option(None, "--store", help="results database, as compare names it (the same "
                                             "as the argument)"),
    output: list[Path] = typer.Option([], "-o", "--output", help="report.html and/or summary.md (repeatable; '-': "
                                      "the markdown summary on standard output)"),
    study: str | None = typer.Option(None, "--study", help="study name (default: the most recent)"),
    fmt: str | None = typer.Option(None, "--format", help="also write static figures: png | svg | pdf"),
    figures_dir: Path | None = typer.Option(None, "--figures-dir", help="folder for --format figures"),
    as_json: bool = typer.Option(False, "--json", help="print the study's summary as JSON (files only if -o or "
                                 "--format asks for them)"),
) -> None:
    """Build the self-contained HTML report (and a markdown summary, and static figures) from a results store."""
    from actlab.report.data import load_study
    from actlab.report.html import write_html
    from actlab.report.markdown import render_markdown
    from actlab.report.static import FORMATS, write_figures

    if fmt is not None and fmt not in FORMATS:
        raise ActlabError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if store_option is not None:
        if store != Path("runs/actlab.db") and store != store_option:
            raise ActlabError(f"two stores given: {str(store)!r} and --store {str(store_option)!r}; give one")
        store = store_option
    if as_json and any(str(out) == "-" for out in output):
        raise ActlabError("--json and -o - would both write to standard output; give -o a file")
    for out in output:
        if str(out) != "-" and out.suffix.lower() not in (".html", ".htm", ".md"):
            raise ActlabError(f"--output {str(out)!r}: the file must end in .html or .md ('-': the markdown summary "
                              "on standard output)")
    data = load_study(store, study)
    targets = output or ([] if as_json and fmt is None else [default_report_path(store, data.study)])
    say = err_console.print if as_json else console.print  # with --json, standard output is the JSON alone
    for out in targets:
        if str(out) == "-" or out.suffix.lower() == ".md":
            _write(out, render_markdown(data), "--output")
        else:
            with _guard(out, "--output"):
                write_html(data, out)
        if str(out) != "-":
            say(f"wrote {out}", highlight=False, soft_wrap=True)
    if fmt is not None:
        folder = figures_dir or (targets[0].parent / f"{targets[0].stem}-figures")
        paths = write_figures(data, folder, fmt)
        say(f"wrote {plural(len(paths), 'figure')} to {folder}", highlight=False, soft_wrap=True)
    if as_json:
        _print_json(data.as_dict())


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: actlab bench kernels")
app.add_typer(bench_app, name="bench")


@bench_app.command("kernels")
def bench_kernels_command(
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16 | float64"),
    size: int = typer.Option(1 << 22, "--size", help="elements per input"),
    names: str | None = typer.Option(None, "--names", help="comma-separated activations, e.g. "
                                        "'swish(beta=1.5),swish(trainable=True),gelu' (default: all)"),
    compile_: bool = typer.Option(False, "--compile", help="also compare torch.compile and the compiled block"),
    rounds: int = typer.Option(15, "--rounds", help="interleaved rounds (each times every candidate once)"),
    as_json: bool = typer.Option(False, "--json", help="print the results as JSON instead of the table (as --json "
                                 "does everywhere)"),
    json_path: Path | None = typer.Option(None, "-o", "--output", help="also write the results as JSON to this file"),
    min_block: float = typer.Option(0.02, "--min-block", help="seconds per timed block"),
) -> None:
    """Time actlab's activations against PyTorch's native (or closest) op, the eager composition and torch.compile,
    as interleaved ratios (actlab / other; below 1 is faster) with 95% intervals."""
    from actlab.speed import bench_kernels, to_json

    chosen = [n.strip() for n in _split_names(names)] if names else None
    if json_path is not None:
        _check_writable(json_path, "--output")
    try:
        copy_gbps, results = bench_kernels(chosen, device, dtype, size, compile_, rounds, min_block)
    except ValueError as exc:
        raise ActlabError(str(exc)) from None
    if json_path is not None:
        _write(json_path, to_json(copy_gbps, results), "--output")
    if as_json or (json_path is not None and str(json_path) == "-"):  # stdout holds the JSON alone
        sys.stdout.write(to_json(copy_gbps, results).rstrip("\n") + "\n")
        return
    from actlab.kernels import compiled

    lean = "built" if compiled.load() is not None else "not built (actlab build-ext)"
    table = Table(title=f"actlab kernels on {device}, {dtype}, {size:,} elements (copy: {copy_gbps:.1f} GB/s; compiled "
                        f"lean paths {lean}); ratios actlab / other, median of interleaved rounds [95% CI]",
                  header_style="bold")
    for col in ("activation", "fwd+bwd ms", "fwd+bwd % copy", "vs native fwd", "vs native fwd+bwd", "vs eager",
                "vs compile", "compiled block", "saved MB", "eager saved MB"):
        table.add_column(col, justify="right" if col != "activation" else "left")
    x = lambda v: "-" if v is None else str(v)  # noqa: E731
    for r in results:
        label = r.activation if r.baseline != "closest native" else f"{r.activation} (vs closest)"
        table.add_row(terminal_safe(label), f"{r.fwdbwd_ms:.3f}", f"{100 * r.fwdbwd_fraction_of_copy:.0f}%",
                      x(r.vs_native_fwd), x(r.vs_native), x(r.vs_eager), x(r.vs_compile),
                      x(r.compiled_block_vs_native), f"{r.saved_bytes / 2**20:.1f}",
                      f"{r.eager_saved_bytes / 2**20:.1f}")
    (console if console.is_terminal else Console(width=220)).print(table)
    if json_path is not None and str(json_path) != "-":
        console.print(f"wrote {json_path}")


@app.command("build-ext")
def build_ext_command(
    verbose: bool = typer.Option(False, "--verbose", help="show the compiler's output"),
) -> None:
    """Compile actlab's C++ lean paths for the installed torch (about a minute on two cores; needs a C++ compiler and
    ninja). CPU calls of swish at any beta, a trained beta, squared ReLU, hardsigmoid, softsign, SwiGLU and GEGLU
    then cost less: one fused pass forward and one backward, within the same numerics policy as the Python paths
    (though not their bits; a comparison's trial keys record which ran)."""
    from actlab.kernels import compiled

    console.print("compiling actlab's lean paths for this torch (about a minute)...")
    try:
        path = compiled.build(verbose)
    except RuntimeError as exc:  # build() reports every toolchain error so; a failure, not a usage error: exit 1
        err_console.print(f"[red]error:[/red] build-ext: the build failed ({terminal_safe(_first_line(exc))}); rerun "
                          "with --verbose for the compiler's output. actlab keeps running its Python paths",
                          highlight=False)
        raise typer.Exit(1) from None
    console.print(f"built {path}", highlight=False, soft_wrap=True)
    if compiled.load() is None:
        console.print("ACTLAB_COMPILED=0 is set: actlab does not use the build while it is", highlight=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _split_names(text: str) -> list[str]:
    """Split on commas outside parentheses: 'swish(beta=1.5),gelu' -> ['swish(beta=1.5)', 'gelu']."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_VERDICT_STYLE = {"supported": "[green]supported[/green]", "contradicted": "[red]contradicted[/red]",
                  "undecided": "[yellow]undecided[/yellow]"}


def _print_finding(name: str, finding, quick: bool) -> None:
    console.print(f"[bold]{terminal_safe(name)}[/bold]{' (quick)' if quick else ''}")
    console.print(f"claim:    {terminal_safe(finding.claim)}", soft_wrap=True)
    console.print(f"source:   {terminal_safe(finding.source)}", soft_wrap=True)
    console.print(f"protocol: {terminal_safe(finding.declaration.get('protocol', ''))}", soft_wrap=True)
    if quick:  # the numbers below come from the small version, not from the protocol above
        changes = finding.declaration.get("quick") or "a smaller run"
        console.print(f"quick:    {terminal_safe(changes)} (what --quick changes from the protocol above; the "
                      "measurement below is this run's)", soft_wrap=True)
    console.print("measured:", soft_wrap=True)
    for line in finding.lines:
        console.print("  " + terminal_safe(line), soft_wrap=True, highlight=False)
    console.print(f"verdict:  {_VERDICT_STYLE[finding.verdict]} ({finding.seeds} seeds): "
                  f"{terminal_safe(finding.summary.split(': ', 1)[-1])}", soft_wrap=True)
    console.print(f"would change it: {terminal_safe(finding.would_change)}", soft_wrap=True)


def _first_clause(text: str) -> str:
    """Text up to the first "; " outside parentheses: a protocol's short form."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth == 0:
            return text[:i]
    return text


def _list_studies(kind: str, title: str, as_json: bool = False) -> None:
    from actlab.experiments.studies import get_study, study_names

    if as_json:
        _print_json([{"name": n, "trains": get_study(n).trains, "min_seeds": get_study(n).min_seeds,
                      "claim": get_study(n).claim, "source": get_study(n).source} for n in study_names(kind)])
        return

    table = Table(title=title, header_style="bold")
    table.add_column("name", no_wrap=True)
    for col in ("trains", "min seeds", "claim", "source"):
        table.add_column(col, overflow="fold")
    for n in study_names(kind):
        s = get_study(n)
        table.add_row(n, "yes" if s.trains else "no", str(s.min_seeds), terminal_safe(s.claim),
                      terminal_safe(s.source))
    console.print(table)


@app.command("study")
def study_command(
    name: str | None = typer.Argument(None, help="study name (see --list)", autocompletion=_completer("paper")),
    seeds: int | None = typer.Option(None, "--seeds", "-n", help="seeds (default 10; --quick: 2)"),
    quick: bool = typer.Option(False, "--quick", help="a small version (seconds; what CI runs)"),
    store: str = typer.Option("runs/actlab.db", "--store", help="results database"),
    list_: bool = typer.Option(False, "--list", help="list the studies"),
    as_json: bool = typer.Option(False, "--json", help="print the finding as JSON"),
    backend: str | None = _BACKEND,
    address: str | None = _ADDRESS,
    cpus_per_group: float | None = _CPUS_PER_GROUP,
    gpus_per_group: float | None = _GPUS_PER_GROUP,
) -> None:
    """Check a published result with one command: the claim, the protocol and the rule declared before the run,
    the measurement, and a verdict (supported, contradicted or undecided)."""
    from actlab.experiments.studies import get_study, run_study

    if list_ or name is None:
        _list_studies("paper", "actlab studies (published results)", as_json)
        return
    get_study(name, "paper")  # unknown names fail before anything runs
    execution: dict[str, Any] = {k: v for k, v in dict(backend=backend, address=address, cpus_per_group=cpus_per_group,
                                                        gpus_per_group=gpus_per_group).items() if v is not None}
    finding = run_study(name, seeds=seeds, quick=quick, store=store, progress=_Reporter(quiet=True), kind="paper",
                        **execution)
    if as_json:
        _print_json(finding.as_dict())
        return
    _print_finding(name, finding, quick)


@app.command("claims")
def claims_command(
    names: list[str] = typer.Argument(None, help="claims to check (default: all; see --list)",
                                      autocompletion=_completer("tutorial")),
    seeds: int | None = typer.Option(None, "--seeds", "-n", help="seeds (default 10; --quick: 2)"),
    quick: bool = typer.Option(False, "--quick", help="small versions (what CI runs); too few seeds to decide"),
    store: str = typer.Option("runs/actlab.db", "--store", help="results database"),
    output: Path | None = typer.Option(None, "-o", "--output", help="also write the claims page (markdown), "
                                          "e.g. docs/claims.md"),
    list_: bool = typer.Option(False, "--list", help="list the claims"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="print each claim's measurement and rule"),
    as_json: bool = typer.Option(False, "--json", help="print the findings as JSON instead of the table"),
    backend: str | None = _BACKEND,
    address: str | None = _ADDRESS,
    cpus_per_group: float | None = _CPUS_PER_GROUP,
    gpus_per_group: float | None = _GPUS_PER_GROUP,
) -> None:
    """Fact-check the tutorials actlab grew from: each testable claim as a study declared before it runs, with a
    verdict (supported, contradicted, undecided), its effect and interval, and what would change it."""
    from actlab.experiments.studies import get_study, run_study, study_names

    if list_:
        _list_studies("tutorial", "the source tutorials' claims", as_json)
        return
    chosen = list(names) if names else study_names("tutorial")
    for n in chosen:
        get_study(n, "tutorial")  # unknown names fail before anything runs
    if seeds is not None and seeds < 1:
        raise ActlabError(f"--seeds {seeds!r}: expected an integer >= 1")
    if output is not None:
        _check_writable(output, "--output")
        if as_json and str(output) == "-":
            raise ActlabError("--json and -o - would both write to standard output; give -o a file")
    execution: dict[str, Any] = {k: v for k, v in dict(backend=backend, address=address, cpus_per_group=cpus_per_group,
                                                        gpus_per_group=gpus_per_group).items() if v is not None}
    table = Table(title="the tutorials' claims" + (" (quick: too few seeds to decide)" if quick else ""),
                  header_style="bold")
    for col in ("claim", "file", "verdict", "effect [95% CI]", "seeds", "protocol (short)", "what would change it"):
        table.add_column(col, overflow="fold")
    found = []
    for n in chosen:
        finding = run_study(n, seeds=seeds, quick=quick, store=store, progress=_Reporter(quiet=True),
                            kind="tutorial", **execution)
        found.append(finding.as_dict())
        if as_json:
            continue
        if verbose:
            _print_finding(n, finding, quick)
        table.add_row(terminal_safe(f"{n}: {finding.claim}"), terminal_safe(finding.source.split(" (")[0]
                                                                            .replace("tutorial ", "")),
                      _VERDICT_STYLE[finding.verdict], terminal_safe(finding.effect or finding.summary),
                      str(finding.seeds), terminal_safe(_first_clause(finding.declaration.get("protocol", ""))),
                      terminal_safe(finding.would_change))
    if as_json:
        _print_json(found)
    else:
        console.print(table)
    if output is not None:
        from actlab.experiments.results.store import Store
        from actlab.report.findings import render_claims

        with Store(store) as st:
            rows = [f for f in st.findings() if f["quick"] == quick]
        _write(output, render_claims(rows), "--output")
        if str(output) != "-" and not as_json:
            console.print(f"wrote {output}")


@app.command("findings")
def findings_command(
    store: str = typer.Option("runs/actlab.db", "--store", help="results database"),
    output: Path = typer.Option(Path("-"), "-o", "--output", help="where to write the page (default '-': standard "
                                "output; e.g. -o docs/findings.md)"),
    include_quick: bool = typer.Option(False, "--include-quick", help="also list --quick findings"),
) -> None:
    """Print the findings page (docs/findings.md with -o) from the published studies' stored findings (the full
    versions). Nothing is overwritten unless -o names the file."""
    from actlab.experiments.results.store import Store
    from actlab.report.findings import kind_of, render_findings

    if not Path(store).exists():  # opening would create an empty store (and its folders) at a mistyped path
        raise ActlabError(f"no results store at {store!r}")
    with Store(store) as st:
        rows = [f for f in st.findings() if (include_quick or not f["quick"]) and kind_of(f) == "paper"]
    if not rows:
        raise ActlabError(f"no {'' if include_quick else 'full '}study findings in {store!r}: run `actlab study NAME`")
    _write(output, render_findings(rows), "--output")
    if str(output) != "-":
        console.print(f"wrote {output} ({plural(len(rows), 'finding')})")


@app.command()
def export(
    store: str = typer.Option("runs/actlab.db", "--store", help="results database"),
    output: Path = typer.Option(..., "-o", "--output", help="file to write ('-': standard output, CSV or JSON)"),
    fmt: str = typer.Option("csv", "--format", help="csv | json (an array of records) | parquet"),
    epochs: bool = typer.Option(False, "--epochs", help="export the per-epoch rows instead of one row per trial"),
) -> None:
    """Export stored trials as CSV, JSON or Parquet."""
    from actlab.experiments.results.store import load_results

    if fmt not in ("csv", "json", "parquet"):
        raise ActlabError(f"--format {fmt!r}: expected csv, json or parquet")
    if str(output) == "-" and fmt == "parquet":
        raise ActlabError("-o -: standard output takes --format csv or json (parquet is binary)")
    frame = load_results(store, epochs=epochs)
    if str(output) == "-":
        if fmt == "csv":
            frame.to_csv(sys.stdout, index=False)
        else:
            sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
        return
    with _guard(output, "--output"), atomic_path(output) as tmp:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "json":
            frame.to_json(tmp, orient="records", indent=1)
        else:
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError as exc:
                raise ActlabError(f"--format parquet needs pyarrow: pip install 'actlab[parquet]' ({exc})") from None
    console.print(f"wrote {plural(len(frame), 'row')} to {output}")


def _click_exceptions() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(ClickException classes, Abort classes) of the click typer runs on: typer >= 0.29 vendors its own copy
    (typer._click, with Abort in typer.exceptions), older typer uses the click package; both are caught."""
    import importlib

    found: dict[str, list[Any]] = {"ClickException": [], "Abort": []}
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            continue
        for name, classes in found.items():
            if isinstance(getattr(loaded, name, None), type):
                classes.append(getattr(loaded, name))
    return tuple(found["ClickException"]), tuple(found["Abort"])


@contextlib.contextmanager
def _guard(path: Path, option: str):
    """An unwritable output is a usage error naming the option and the path, not a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):  # the path was right: the machine failed
            raise ActlabFailure(f"{option} {str(path)!r}: writing failed ({exc.strerror or exc})") from None
        raise ActlabError(f"{option} {str(path)!r}: cannot write there ({exc.strerror or exc})") from None


def _check_writable(path: Path, option: str) -> None:
    """Before a long run: an output that cannot be written fails now, not after the work."""
    if str(path) == "-":
        return
    if path.is_dir():
        raise ActlabError(f"{option} {str(path)!r} is a directory; give a file path")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ActlabError(f"{option} {str(path)!r}: cannot write there ({parent} is not a writable directory)")


def _write(path: Path, text: str, option: str) -> None:
    """Write a text output atomically; ``-`` is standard output."""
    if str(path) == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    with _guard(path, option):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)


_INTERRUPTED = "interrupted; the store keeps every trial that finished (a rerun resumes)"
_RESEND_S = 0.5
_ctrl_c = {"handled": False}


@contextlib.contextmanager
def _ctrl_c_not_lost():
    """Ctrl-C raises KeyboardInterrupt as usual, and again every half second until the command has handled it.
    CPython prints and drops an exception raised in a weakref callback or a ``__del__``: a Ctrl-C that landed in
    importlib's module-lock callback during a lazy import was lost that way, and the run went on training. Unix
    only (a timer signal); elsewhere, and off the main thread, Python's default stands."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    _ctrl_c["handled"] = False

    def on_sigint(signum, frame):
        signal.setitimer(signal.ITIMER_REAL, _RESEND_S, _RESEND_S)
        raise KeyboardInterrupt

    def on_alarm(signum, frame):
        if not _ctrl_c["handled"]:
            raise KeyboardInterrupt

    def unraisable(info):  # the dropped interrupt is raised again: no traceback for it
        if not isinstance(info.exc_value, KeyboardInterrupt):
            old_hook(info)

    old_sigint, old_alarm = signal.signal(signal.SIGINT, on_sigint), signal.signal(signal.SIGALRM, on_alarm)
    old_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        _ctrl_c["handled"] = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGINT, old_sigint)
        sys.unraisablehook = old_hook


def _exit_interrupted() -> NoReturn:
    """Say so and exit 130. Not through sys.exit: CPython (3.11) ends the process by SIGINT at exit once a
    KeyboardInterrupt has left code run by exec() of a string (dataclasses builds its methods that way, and a Ctrl-C
    during a lazy import of torch._dynamo lands there), even when the interrupt was caught and handled since, as it is
    here. The exit functions (logging, Ray's shutdown) run first and the streams are flushed."""
    import atexit
    import os

    err_console.print(_INTERRUPTED, highlight=False, markup=False)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said there
            pass
    os._exit(130)


def main(argv: list[str] | None = None) -> None:
    """Exit codes: 0 done, 1 a failure (failed groups, a corrupt or locked store), 2 a usage error (one line, no
    traceback), 130 interrupted."""
    usage, abort = _click_exceptions()
    try:
        # Without standalone mode click *returns* the code of an Exit (typer.Exit(1) after failed groups, the
        # Exit(130) typer makes of Ctrl-C) instead of raising it.
        with _ctrl_c_not_lost():
            code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            raise typer.Exit(code)
    except ActlabError as exc:
        err_console.print(f"[red]error:[/red] {terminal_safe(str(exc))}", highlight=False, markup=True)
        sys.exit(1 if isinstance(exc, ActlabFailure) else 2)
    except typer.Exit as exc:
        if exc.exit_code == 130:
            _exit_interrupted()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, *abort):
        _exit_interrupted()
    except usage as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
