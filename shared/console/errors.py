"""Exit codes of the operator's command, and the error that ends a command with one."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a script can rely on (documented in the README)."""

    OK = 0
    FAILED = 1  # the operation failed (Azure or storage said no, a job failed)
    USAGE = 2  # bad arguments or settings: nothing was done
    REFUSED = 3  # refused because something still needs the deployment
    TIMED_OUT = 4  # gave up waiting; the work goes on in the app
    NOT_BETTER = 5  # an evaluation ran: the candidate lost or tied (a CI gate fails on it)
    INTERRUPTED = 130  # Ctrl-C, like a shell


class ConsoleError(Exception):
    """Ends the command: `message` (one line unless it lists problems) and `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
