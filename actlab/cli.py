"""The command line: ``actlab list | show | docs``.

Errors in what the user typed (unknown names, bad parameters) print one clear line and exit with status 2.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from actlab import catalog
from actlab.errors import ActlabError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="actlab: a laboratory for neural-network activation functions.")
console = Console()
err_console = Console(stderr=True)

FIGURE_FORMATS = (".png", ".svg", ".pdf")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return ("+inf" if v > 0 else "-inf") if math.isinf(v) else f"{v:.4g}"
    if isinstance(v, tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


@app.command("list")
def list_activations() -> None:
    """Every activation in the catalogue: parameters, formula and key measured properties."""
    from rich.markup import escape

    from actlab.report.text import latex_to_text

    out = console if console.is_terminal else Console(width=200)
    table = Table(title="actlab catalogue", show_lines=False, header_style="bold")
    for col in ("name", "kind", "parameters", "formula", "monotonic", "smooth", "range", "gain"):
        table.add_column(col, overflow="fold")
    for name in catalog.names():
        s = catalog.spec(name)
        p = s.properties
        params = ", ".join(f"{k}={v.default!r}" for k, v in s.params.items()) or "-"
        cells = (name, s.kind, params, latex_to_text(s.formula), _fmt(p.monotonic), _fmt(p.smooth),
                 _fmt(p.output_range), _fmt(p.gain))
        table.add_row(*(escape(c) for c in cells))
    out.print(table)
    out.print(f"{len(catalog.names())} activations. Aliases resolve too (e.g. SiLU, LeakyReLU, leaky-relu). "
              "`actlab show NAME` for one in full.")


@app.command()
def show(
    activations: List[str] = typer.Argument(..., help="names or string forms, e.g. swish 'leaky_relu(0.2)'"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="figure file: .png, .svg or .pdf"),
    x_min: float = typer.Option(-5.0, help="left end of the plotted range"),
    x_max: float = typer.Option(5.0, help="right end of the plotted range"),
) -> None:
    """Formula, parameters, measured properties, and a plot of f and f' (several activations overlay)."""
    from rich.markup import escape

    from actlab.report.text import latex_to_text

    resolved = [catalog.resolve(a) for a in activations]
    if output is not None and output.suffix.lower() not in FIGURE_FORMATS:
        raise ActlabError(f"--output {str(output)!r}: the file must end in one of {', '.join(FIGURE_FORMATS)}")
    if not x_min < x_max:
        raise ActlabError(f"--x-min {x_min} must be below --x-max {x_max}")
    for r in resolved:
        s = r.spec
        props = s.measure(**r.params)
        lines = [f"[bold]{escape(r.text)}[/bold]  ({s.kind})", escape(s.summary), "",
                 f"formula: {escape(latex_to_text(s.formula))}", f"LaTeX:   {escape(s.formula)}"]
        for k, p in s.params.items():
            lines.append(f"  {k} = {r.params[k]!r}   ({p.describe(k)}{'; trainable' if p.trainable_allowed else ''})")
        of = " of the gate" if props.of == "gate" else ""
        lines.append(f"measured properties{of}:")
        for key in ("monotonic", "continuous", "smooth", "bounded_below", "bounded_above", "output_range",
                    "value_at_0", "slope_at_0", "gain", "mean"):
            lines.append(f"  {key:14s} {_fmt(props[key])}")
        lines.append("references: " + escape("; ".join(str(ref) for ref in s.references)))
        console.print(Panel("\n".join(lines), expand=False))
    drawable = [r for r in resolved if r.spec.kind != "normalizing"]
    if not drawable:
        console.print("nothing to plot: softmax acts on a whole dimension, not elementwise")
        return
    if output is None:
        stem = "_".join("".join(c if c.isalnum() else "_" for c in r.text).strip("_") for r in drawable)
        output = Path(f"actlab-show-{stem[:80]}.png")
    from actlab.analysis.plots import plot_activations

    fig = plot_activations(drawable, x_range=(x_min, x_max))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
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


def main(argv: Optional[List[str]] = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except ActlabError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
