"""python -m scoring: score a file with a registered model (see scoring/cli.py)."""

import sys

from scoring.cli import main

if __name__ == "__main__":
    sys.exit(main())
