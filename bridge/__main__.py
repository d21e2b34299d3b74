"""`python -m bridge` is the `bridge` console script."""

from bridge.cli import main

raise SystemExit(main())
