"""``python -m actlab`` and the ``actlab`` command: the command line, which needs the ``lab`` extra."""

from __future__ import annotations

import sys

_LAB = {"typer", "rich", "click", "matplotlib", "scipy", "pandas", "sklearn", "mnist1d", "plotly", "tomli", "jinja2",
        "pydantic", "platformdirs"}


def run() -> None:
    try:
        from actlab.cli import main
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _LAB:
            raise
        sys.stderr.write(f"error: the actlab command needs the lab extra ({exc.name} is not installed): "
                         "pip install 'actlab[lab]'\n")
        raise SystemExit(1) from None
    main()


if __name__ == "__main__":
    run()
