"""SIGTERM handled as Ctrl-C by the project's command-line tools.

Python's default SIGTERM ends the process at once, skipping the `with` blocks that stop the
Azurite and simulator processes a tool started; raising KeyboardInterrupt instead unwinds
them. Inside a running event loop use `loop.add_signal_handler` instead: raising from a signal
handler mid-loop can leave a task waiting forever.
"""

from __future__ import annotations

import signal


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def sigterm_as_keyboard_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread from now on."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
