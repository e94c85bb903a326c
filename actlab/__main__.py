"""``python -m actlab`` and the ``actlab`` command: the command line, which needs the ``lab`` extra."""

from __future__ import annotations

import sys

from actlab.errors import LAB_MODULES


def run() -> None:
    if sys.argv[1:] == ["--version"]:  # answered without the lab extra, which the rest of the command needs
        from actlab import __version__

        print(f"actlab {__version__}")
        return
    try:
        from actlab.cli import main
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in LAB_MODULES:
            raise
        sys.stderr.write(f"error: the actlab command needs the lab extra ({exc.name} is not installed): "
                         "pip install 'actlab[lab]'\n")
        raise SystemExit(1) from None
    main()


if __name__ == "__main__":
    run()
