"""``python -m actlab``: the same command line as ``actlab``."""

from actlab.cli import main

main()
