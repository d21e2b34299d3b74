"""`python -m benchmarks` (make bench): see benchmarks/harness.py."""

from benchmarks.harness import main

raise SystemExit(main())
