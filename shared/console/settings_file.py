"""The command's settings: the app's own `AppSettings`, read the way the app reads them.

The app reads its settings from the environment (app settings). An operator usually has them
in a `local.settings.json`-shaped file instead (`{"Values": {...}}`: the one `func start` and
`make dev` use, or one copied from the Function App's configuration), named with `--settings`,
else `./local.settings.json` when it exists.

The file wins over the environment: naming a file is the more deliberate act, and a variable
left over in the shell must not quietly point a command at another account. Settings the file
leaves out (or leaves empty, which means "not set" as it does for an environment variable)
still come from the environment, so a secret can stay out of the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.catalog import CatalogError
from shared.console.errors import ConsoleError, ExitCode
from shared.settings import AppSettings

DEFAULT_SETTINGS_FILE = Path("local.settings.json")
NO_FILE_HINT = (
    "no settings file was read: pass one with --settings FILE (`make dev` writes "
    ".local/dev.settings.json for the local Azure), or create ./local.settings.json from "
    "local.settings.sample.json"
)


@dataclass(frozen=True)
class LoadedSettings:
    settings: AppSettings
    source: str  # in words, for messages: where the settings came from
    path: Path | None = None  # the settings file read, if any


def load_settings(path: Path | None) -> LoadedSettings:
    """`AppSettings` from the environment overlaid by `path` (or ./local.settings.json).

    Raises `ConsoleError` (exit 2) listing every problem found.
    """
    if path is None and DEFAULT_SETTINGS_FILE.is_file():
        path = DEFAULT_SETTINGS_FILE
    values: dict[str, Any] = read_values(path) if path is not None else {}
    source = f"{path} over the environment" if path is not None else "the environment"
    try:
        # Keyword arguments take precedence over the environment in pydantic-settings.
        settings = AppSettings(**values)
    except ValidationError as error:
        problems = [problem for detail in error.errors() for problem in _describe(detail)]
        message = settings_problems(source, problems)
        if path is None:
            message += f"\n{NO_FILE_HINT}"
        raise ConsoleError(message, ExitCode.USAGE) from None
    return LoadedSettings(settings, source, path)


def read_values(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json-shaped file, empty ones left out."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConsoleError(f"the settings file {path} does not exist", ExitCode.USAGE) from None
    except OSError as error:
        raise ConsoleError(
            f"the settings file {path} cannot be read: {error.strerror}", ExitCode.USAGE
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConsoleError(
            f"the settings file {path} is not valid JSON: {error}", ExitCode.USAGE
        ) from None
    values = data.get("Values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise ConsoleError(
            f'the settings file {path} has no "Values" object; it should look like '
            'local.settings.sample.json: {"Values": {"AZURE_SUBSCRIPTION_ID": "...", ...}}',
            ExitCode.USAGE,
        )
    return _plain_values(path, values)


def _plain_values(path: Path, values: Mapping[str, Any]) -> dict[str, str]:
    problems = [
        f"{name}: must be a string, number or boolean, not {type(value).__name__}"
        for name, value in values.items()
        if value is not None and not isinstance(value, str | int | float | bool)
    ]
    if problems:
        raise ConsoleError(settings_problems(str(path), problems), ExitCode.USAGE)
    return {
        name: _text(value) for name, value in values.items() if value is not None and value != ""
    }


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_problems(source: str, problems: list[str]) -> str:
    listed = "\n".join(f"  - {problem}" for problem in problems)
    return f"the settings from {source} are unusable ({len(problems)} problem(s)):\n{listed}"


def _describe(detail: ErrorDetails) -> list[str]:
    name = ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "missing":
        return [f"{name}: required, not set"]
    cause = detail.get("ctx", {}).get("error")
    if isinstance(cause, CatalogError):
        # The hosted-models declaration lists its own problems: one line each.
        return [f"{cause.source}: {problem}" for problem in cause.problems]
    message = detail["msg"].removeprefix("Value error, ")
    # A model-level problem (no storage, no hosted model) names its settings itself.
    return [f"{name}: {message}" if name else message]
