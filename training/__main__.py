"""`python -m training`: the command-line entry point (argument parsing only)."""

from training.cli import main

raise SystemExit(main())
