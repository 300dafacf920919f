"""`python -m scripts.functions_host`: the command line, with `--local-azure` wired up."""

from __future__ import annotations

import sys

from scripts.functions_host.cli import local_azure_settings, main

if __name__ == "__main__":
    sys.exit(main(prepare_environment=local_azure_settings))
