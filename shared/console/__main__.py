"""`python -m shared.console ...`: the same as the installed `hosting` script."""

from __future__ import annotations

import sys

from shared.console.app import main

if __name__ == "__main__":
    sys.exit(main())
