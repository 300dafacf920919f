"""The port through which the reconciler starts a due batch run (implemented by `shared/batch/`).

The reconciler only decides that a batch occurrence is due and names its run; running it is
another package's job. It calls `start` on every tick while the occurrence is due (from its
start to its deadline), so the implementation must be idempotent per `run_id`: the first call
starts the run, later ones (doubled, concurrent or after a restart) find it and do nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class BatchStarter(Protocol):
    def start(
        self,
        model: str,
        run_id: str,
        input_prefix: str,
        output_prefix: str,
        deadline: datetime,
    ) -> None:
        """Start the run `run_id` of `model` unless it exists; `deadline` is aware UTC."""
