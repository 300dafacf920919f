"""Loading and indexing the function app, and the app settings its bindings read.

Owns: importing `module:attribute`, turning `app.get_functions()` into `IndexedFunction`s
(skipping, with a logged error, functions the host cannot run), `%SETTING%` expressions, the
storage `connection` lookup the host does for storage triggers, and reading
local.settings.json `Values` and host.json `extensions`.

Knows nothing of any one trigger kind: the host passes in which binding types it can run.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import azure.functions as func

from scripts.functions_host.errors import FunctionsHostError, MissingSettingError

logger = logging.getLogger(__name__)

_SETTING_EXPRESSION = re.compile(r"%([^%\s]+)%")


def resolve_setting_expressions(value: str, environ: Mapping[str, str], *, where: str) -> str:
    """Replace each `%NAME%` in a binding value with the app setting NAME, as the host does."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise MissingSettingError(
                f"{where} uses %{name}%, but the app setting {name} is not set "
                "(set it in the environment or local.settings.json)"
            )
        return environ[name]

    return _SETTING_EXPRESSION.sub(lookup, value)


def storage_connection(
    connection: str, environ: Mapping[str, str], *, where: str
) -> tuple[str, str]:
    """(setting name, connection string) for a binding's `connection`, as the host finds it."""
    names = [connection, f"AzureWebJobs{connection}"] if connection else ["AzureWebJobsStorage"]
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    if any(f"{name}__" in key for key in environ for name in names):
        raise FunctionsHostError(
            f"{where} uses the identity-based connection {names[0]}__*; functions_host needs a "
            f"connection string in the app setting {names[0]}"
        )
    raise MissingSettingError(
        f"{where} uses connection {names[0]!r}, but the app setting {names[0]} "
        "(a storage connection string) is not set"
    )


def load_function_app(spec: str) -> func.FunctionApp:
    """Import `module:attribute` and return the FunctionApp it names."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        # The whole point is a one-line reason: the traceback is noise for a typo in --app.
        raise FunctionsHostError(
            f"cannot import the function app module {module_name!r}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    app = getattr(module, attribute, None)
    if app is None or not callable(getattr(app, "get_functions", None)):
        raise FunctionsHostError(f"{spec!r} does not name a func.FunctionApp")
    return app  # type: ignore[no-any-return]


def plain(value: Any) -> Any:
    """Enum members from the decorators (AuthLevel, HttpMethod) as their string values."""
    return getattr(value, "value", value)


@dataclasses.dataclass(frozen=True)
class IndexedFunction:
    """One function of the app as the host sees it: name, trigger and the Python callable."""

    name: str
    trigger_type: str
    trigger: Mapping[str, Any]
    callable: Callable[..., Any]
    wants_context: bool

    @property
    def trigger_arg(self) -> str:
        return str(self.trigger["name"])

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.callable)


def index_functions(
    app: func.FunctionApp, hostable: Collection[str], only: Collection[str] | None = None
) -> list[IndexedFunction]:
    """List the app's functions whose trigger type is `hostable`; log (and skip) the others."""
    # get_functions() records the names it has seen and raises on a second call for the same
    # app object; the host calls it once per process, tests build several hosts per app.
    seen = getattr(app, "functions_bindings", None)
    app.functions_bindings = {}
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = seen
    indexed: list[IndexedFunction] = []
    for function in functions:
        name = function.get_function_name() or function.get_user_function().__name__
        if only is not None and name not in only:
            continue
        trigger = function.get_trigger()
        if trigger is None:
            logger.error("Function '%s' has no trigger; skipped", name)
            continue
        trigger_dict = {key: plain(value) for key, value in trigger.get_dict_repr().items()}
        trigger_type = str(trigger_dict.get("type"))
        if trigger_type not in hostable:
            logger.error(
                "Function '%s' has a %s trigger, which functions_host does not host; skipped",
                name,
                trigger_type,
            )
            continue
        extra = [
            binding.get_dict_repr()
            for binding in function.get_bindings()
            if binding.get_dict_repr().get("name") not in (trigger_dict["name"], "$return")
        ]
        if extra:
            kinds = ", ".join(f"{b.get('type')} '{b.get('name')}'" for b in extra)
            logger.error(
                "Function '%s' declares bindings functions_host does not supply (%s); skipped",
                name,
                kinds,
            )
            continue
        user_function = function.get_user_function()
        parameters = inspect.signature(user_function).parameters
        indexed.append(
            IndexedFunction(
                name=name,
                trigger_type=trigger_type,
                trigger=trigger_dict,
                callable=user_function,
                wants_context="context" in parameters,
            )
        )
    if only is not None:
        missing = sorted(set(only) - {f.name for f in indexed})
        if missing:
            raise FunctionsHostError(f"no hostable function named {', '.join(missing)} in the app")
    return indexed


def read_local_settings(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, as `func start` loads them."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FunctionsHostError(f"cannot read {path}: {exc}") from exc
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    if not isinstance(values, dict):
        raise FunctionsHostError(f"{path}: 'Values' must be an object")
    return {str(k): str(v) for k, v in values.items()}


def read_host_json(path: Path) -> dict[str, Any]:
    """host.json's `extensions` object (each trigger kind reads its own section), or {}."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FunctionsHostError(f"cannot read {path}: {exc}") from exc
    extensions = document.get("extensions", {}) if isinstance(document, dict) else {}
    return extensions if isinstance(extensions, dict) else {}


def extension_setting(extensions: Mapping[str, Any], section: str, name: str) -> Any:
    """`extensions.<section>.<name>` from host.json, or None when it is not set."""
    values = extensions.get(section)
    return values.get(name) if isinstance(values, Mapping) else None
