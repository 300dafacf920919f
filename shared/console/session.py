"""What every command of the operator's console shares: the settings file named on the command
line, the two consoles, the services built once the settings are valid, and the common options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from shared.console.display import stderr_console, stdout_console
from shared.console.errors import ConsoleError, ExitCode
from shared.console.reachability import Endpoint, unreachable_local_endpoints
from shared.console.settings_file import LoadedSettings, load_settings

if TYPE_CHECKING:
    from shared.composition import AppServices
    from shared.hosting.hosted import HostedDeployment
    from shared.settings import AppSettings

PROG = "hosting"

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ModelArgument = Annotated[
    str, typer.Argument(metavar="MODEL", help="A hosted model's name (see `status`).")
]


@dataclass
class Session:
    """What every command shares: the settings file named, consoles, lazily built services."""

    settings_file: Path | None
    out: Console = field(default_factory=stdout_console)
    err: Console = field(default_factory=stderr_console)
    _loaded: LoadedSettings | None = None
    _services: AppServices | None = None

    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            self._loaded = load_settings(self.settings_file)
        return self._loaded

    def settings(self) -> AppSettings:
        return self.loaded().settings

    def services(self) -> AppServices:
        if self._services is None:
            settings = self.settings()
            refused = unreachable_local_endpoints(settings)
            if refused:
                raise ConsoleError(local_azure_down(refused, self.loaded()), ExitCode.FAILED)
            # Imported on first use: the SDKs take a second to import, which a mistyped
            # command or model name should not wait for.
            from shared.composition import build_services  # noqa: PLC0415

            self._services = build_services(settings)
        return self._services

    def hosted(self, model: str) -> HostedDeployment:
        """The hosted model by name; an unknown name is a usage error naming the known ones."""
        models = self.settings().catalog.models
        if model not in models:
            known = ", ".join(sorted(models))
            raise ConsoleError(
                f"unknown hosted model {model!r}; the hosted models are: {known}", ExitCode.USAGE
            )
        return self.services().hosted[model]


def local_azure_down(refused: list[Endpoint], loaded: LoadedSettings) -> str:
    """A stopped local Azure in words: what refused, from where, and how to start it."""
    listed = ", ".join(f"{endpoint.setting} {endpoint.url}" for endpoint in refused)
    where = f"the settings file {loaded.path}" if loaded.path else "the environment"
    return (
        f"the local Azure is not running: nothing answers at {listed} (from {where}). "
        "Start it with `make dev` in another terminal and pass the settings it writes: "
        f"`{PROG} --settings .local/dev.settings.json ...`"
    )


def session_of(ctx: typer.Context) -> Session:
    """The session the app's callback put on the context."""
    session = ctx.find_object(Session)
    assert session is not None, "set by the app's callback"
    return session
