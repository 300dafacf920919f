"""The deployed function app's settings as shell `export` lines, for the operator command.

The operator command (`.venv/bin/hosting`) reads the same settings as the app. To point it at
what `azd up` deployed, take them from the function app itself:

    eval "$(az functionapp config appsettings list -g "$RESOURCE_GROUP" \\
        -n "$AZURE_FUNCTION_APP_NAME" -o json | .venv/bin/python -m scripts.azure_app_settings)"

Only the settings the app reads are kept (the settings model's names and HOSTING_CONFIG_FILE),
so the host's own settings do not leak into your shell. AZURE_CLIENT_ID is left out on purpose:
it names the app's managed identity, which does not exist on your machine, and without it
DefaultAzureCredential uses your `az login`. None of these values is a secret (the templates
set no key), so printing them is safe.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from shared.settings import AppSettings

EXTRA_SETTINGS = frozenset({"HOSTING_CONFIG_FILE"})
LEFT_OUT = frozenset({"AZURE_CLIENT_ID"})


def app_setting_names() -> frozenset[str]:
    """Every name the settings model reads, aliases and alternative names included."""
    names: set[str] = set(EXTRA_SETTINGS)
    for field in AppSettings.model_fields.values():
        if field.alias:
            names.add(field.alias)
        choices = getattr(field.validation_alias, "choices", None)
        if choices:
            names.update(str(choice) for choice in choices)
    return frozenset(names)


def export_lines(settings: Iterable[Mapping[str, Any]]) -> list[str]:
    """`export NAME=value` for each of the app's settings in `az ... appsettings list` output."""
    wanted = app_setting_names() - LEFT_OUT
    lines = []
    for setting in settings:
        name = str(setting.get("name", ""))
        if name in wanted:
            value = setting.get("value")
            lines.append(f"export {name}={shlex.quote('' if value is None else str(value))}")
    return sorted(lines)


def main() -> int:
    try:
        settings = json.load(sys.stdin)
    except json.JSONDecodeError as exc:
        print(f"azure_app_settings: stdin is not JSON ({exc})", file=sys.stderr)
        return 2
    if not isinstance(settings, list):
        print("azure_app_settings: expected the JSON list `az ... -o json` prints", file=sys.stderr)
        return 2
    print("\n".join(export_lines(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
