"""`python -m simulator`: parse flags and `SIM_*` variables, then serve until signalled."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from simulator.config import parse_config
from simulator.server import EXIT_OK, serve


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(serve(config))
    except KeyboardInterrupt:
        # A second Ctrl-C during shutdown: still a deliberate stop, not a failure.
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
