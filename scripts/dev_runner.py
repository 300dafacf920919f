"""A local stand-in for the Azure Functions host: runs a `func.FunctionApp` without Core Tools.

Core Tools (`func start`) cannot be installed here, so this module plays the host's part for
local development, demos and integration tests. It owns:

- indexing: every trigger comes from `app.get_functions()`, so adding a function never needs a
  change here; `%SETTING%` expressions resolve from the environment (app settings);
- HTTP triggers: an aiohttp server serving `/<routePrefix>/<route>` with ASP.NET-style route
  templates, method checks (405), function/admin keys (`FUNCTIONS_LOCAL_KEY`) and a 500 with a
  short JSON body when a handler raises; sync handlers run in a thread pool;
- timer triggers: 6-field NCRONTAB (via croniter) or `hh:mm:ss` schedules, in UTC or
  `WEBSITE_TIME_ZONE`, `runOnStartup`, `past_due`, and no overlapping invocations;
- blob triggers: polling of the trigger's container (the host's scan, without Event Grid),
  delivery once per (blob, ETag), retries up to maxDequeueCount (5) then poison;
- a little of the host's admin API: `GET /admin/host/status`, and `POST /admin/functions/<timer>`
  to run a timer now (202), as the portal's "Test/Run" does;
- the CLI (`python -m scripts.dev_runner`, `make dev`): app settings come from the environment,
  then `local.settings.json` `Values` (never overriding the environment), or from the local
  Azure with `--local-azure` (Azurite + simulator, whose settings win); clean shutdown on
  SIGINT/SIGTERM; configuration errors, a busy port or an unimportable app exit 2 with one line.

Usage: `python -m scripts.dev_runner [--app function_app:app] [--port 7071] [--local-azure]
[--functions NAME ...] [--blob-poll-seconds 1] [--blob-concurrency 8] [--no-blob-receipts]`.
Tests and the demo use `LocalFunctionsHost` directly (`start()`, `stop()`, `fire_timer()`,
`wait_for_blob_idle()`).

Blob receipts (which (blob, ETag) pairs were delivered) are kept in memory and, by default,
also as empty blobs in the `azure-webjobs-hosts` container of the trigger's storage account,
named like the host's (`blobreceipts/<hostId>/Host.Functions.<name>/<etag>/<container>/<blob>`),
so a restart of the runner does not re-deliver documents that were already processed (which,
for this app, would mean provisioning a deployment again). `--no-blob-receipts` turns that off.

Output and input bindings other than the HTTP `$return` are not supplied; a function that
declares one is skipped at start-up with a logged error, as the host does for a function that
fails indexing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import errno
import hmac
import importlib
import inspect
import itertools
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
import zoneinfo
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobServiceClient, ContainerClient, LinearRetry
from azure.storage.queue.aio import QueueClient
from croniter import croniter
from multidict import CIMultiDict
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from scripts.interrupts import sigterm_as_keyboard_interrupt

logger = logging.getLogger(__name__)

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 7071
DEFAULT_ROUTE_PREFIX = "api"
# The host's defaults: blob-trigger maxDequeueCount and extensions.blobs.maxDegreeOfParallelism.
DEFAULT_BLOB_MAX_ATTEMPTS = 5
DEFAULT_BLOB_CONCURRENCY = 8
RECEIPTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
LOCAL_KEY_SETTING = "FUNCTIONS_LOCAL_KEY"
TIME_ZONE_SETTING = "WEBSITE_TIME_ZONE"
PAST_DUE_TOLERANCE = dt.timedelta(seconds=1)
HOST_REASON = "This function was programmatically called via the host APIs."

PrepareEnvironment = Callable[[], AbstractContextManager[dict[str, str]]]


class DevRunnerError(RuntimeError):
    """A configuration or start-up problem; the message is one line meant for the user."""


class MissingSettingError(DevRunnerError):
    """A binding needs an app setting that is not set."""


# --- App settings and loading ------------------------------------------------------------

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


def load_function_app(spec: str) -> func.FunctionApp:
    """Import `module:attribute` and return the FunctionApp it names."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        # The whole point is a one-line reason: the traceback is noise for a typo in --app.
        raise DevRunnerError(
            f"cannot import the function app module {module_name!r}: "
            f"{type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    app = getattr(module, attribute, None)
    if app is None or not callable(getattr(app, "get_functions", None)):
        raise DevRunnerError(f"{spec!r} does not name a func.FunctionApp")
    return app  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    """Enum members from the decorators (AuthLevel, HttpMethod) as their string values."""
    return getattr(value, "value", value)


@dataclasses.dataclass(frozen=True)
class IndexedFunction:
    """One function of the app as the runner sees it: name, trigger and the Python callable."""

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


SUPPORTED_TRIGGERS = frozenset({"httpTrigger", "timerTrigger", "blobTrigger"})


def index_functions(
    app: func.FunctionApp, only: Collection[str] | None = None
) -> list[IndexedFunction]:
    """List the app's functions the runner can host; log (and skip) the ones it cannot."""
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
        trigger_dict = {key: _plain(value) for key, value in trigger.get_dict_repr().items()}
        trigger_type = str(trigger_dict.get("type"))
        if trigger_type not in SUPPORTED_TRIGGERS:
            logger.error(
                "Function '%s' has a %s trigger, which the dev runner does not host; skipped",
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
                "Function '%s' declares bindings the dev runner does not supply (%s); skipped",
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
            raise DevRunnerError(f"no hostable function named {', '.join(missing)} in the app")
    return indexed


# --- HTTP route templates ----------------------------------------------------------------

_CONSTRAINT_PATTERNS = {
    "int": r"-?[0-9]+",
    "long": r"-?[0-9]+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"\{?[0-9A-Fa-f]{8}(?:-?[0-9A-Fa-f]{4}){3}-?[0-9A-Fa-f]{12}\}?",
    "float": r"-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?",
    "double": r"-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?",
    "decimal": r"-?[0-9]*\.?[0-9]+",
}
_TEMPLATE_PARAM = re.compile(r"\{([^{}]+)\}")


@dataclasses.dataclass(frozen=True)
class _RouteParam:
    name: str
    pattern: str
    optional: bool
    catch_all: bool
    default: str | None
    constrained: bool


def _parse_route_param(text: str, route: str) -> _RouteParam:
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    optional = text.endswith("?")
    text = text.removesuffix("?")
    default: str | None = None
    if "=" in text:
        text, default = text.split("=", 1)
        optional = True
    name, *constraints = re.split(r":(?![^(]*\))", text)
    if not name:
        raise DevRunnerError(f"route template {route!r} has an empty parameter name")
    pattern = ".*" if catch_all else "[^/]+"
    for constraint in constraints:
        regex = re.fullmatch(r"regex\((.*)\)", constraint)
        if regex:
            pattern = "(?:" + regex.group(1).removeprefix("^").removesuffix("$") + ")"
        elif constraint.lower() in _CONSTRAINT_PATTERNS:
            pattern = _CONSTRAINT_PATTERNS[constraint.lower()]
        # Range and length constraints (min, maxlength, ...) are not enforced: any value passes.
    return _RouteParam(name, pattern, optional, catch_all, default, bool(constraints))


class RouteTemplate:
    """An HTTP trigger route template (`jobs/{job_id}`, `{id:int}`, `{name?}`, `{*rest}`)."""

    def __init__(self, route: str, prefix: str = DEFAULT_ROUTE_PREFIX) -> None:
        self.route = route.strip("/")
        self.prefix = prefix.strip("/")
        self._params: dict[str, _RouteParam] = {}
        segments = [s for s in (self.prefix, self.route) if s]
        regex = ""
        rank: list[int] = []
        for segment in "/".join(segments).split("/") if segments else []:
            part, segment_rank = self._compile_segment(segment)
            regex += part
            rank.append(segment_rank)
        self._regex = re.compile("^" + (regex or "/") + "/?$", re.IGNORECASE)
        # ASP.NET routing prefers literal segments over parameters, constrained parameters
        # over plain ones, and catch-alls last; sorting by this tuple gives the same order.
        self.precedence: tuple[int, ...] = (*rank, 9)

    def _compile_segment(self, segment: str) -> tuple[str, int]:
        params = list(_TEMPLATE_PARAM.finditer(segment))
        if not params:
            return "/" + re.escape(segment), 0
        if len(params) == 1 and params[0].group(0) == segment:
            param = self._register(params[0].group(1))
            group = f"(?P<p{len(self._params) - 1}>{param.pattern})"
            if param.optional:
                return f"(?:/{group})?", 4
            if param.catch_all:
                return f"(?:/{group})?", 5
            return "/" + group, 2 if param.constrained else 3
        # A segment mixing literals and parameters, e.g. `{name}.{ext}`.
        regex, position = "/", 0
        for match in params:
            regex += re.escape(segment[position : match.start()])
            param = self._register(match.group(1))
            pattern = param.pattern if param.constrained else "[^/]+?"
            regex += f"(?P<p{len(self._params) - 1}>{pattern})"
            position = match.end()
        return regex + re.escape(segment[position:]), 1

    def _register(self, text: str) -> _RouteParam:
        param = _parse_route_param(text, self.route)
        if param.name.lower() in (n.lower() for n in self._params):
            raise DevRunnerError(f"route template {self.route!r} repeats parameter {param.name}")
        self._params[param.name] = param
        return param

    @property
    def display_path(self) -> str:
        return "/" + "/".join(s for s in (self.prefix, self.route) if s)

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters when the (decoded) URL path matches, else None."""
        found = self._regex.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for index, (name, param) in enumerate(self._params.items()):
            value = found.group(f"p{index}")
            if value is not None and value != "":
                values[name] = value
            elif param.default is not None:
                values[name] = param.default
        return values


@dataclasses.dataclass(frozen=True)
class _HttpRoute:
    function: IndexedFunction
    template: RouteTemplate
    methods: frozenset[str] | None
    auth_level: str


# --- Timer schedules ---------------------------------------------------------------------

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")


class TimerSchedule:
    """A timer trigger's schedule: 6-field NCRONTAB or a TimeSpan interval, in one time zone."""

    def __init__(self, expression: str, tz: dt.tzinfo = dt.UTC) -> None:
        self.expression = expression.strip()
        self.tz = tz
        self.interval: dt.timedelta | None = None
        span = _TIMESPAN.match(self.expression)
        if span:
            days, hours, minutes, seconds = (int(g or 0) for g in span.groups())
            self.interval = dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            if self.interval <= dt.timedelta(0):
                raise DevRunnerError(f"timer interval {expression!r} must be positive")
            return
        fields = self.expression.split()
        if len(fields) != 6 or not croniter.is_valid(self.expression, second_at_beginning=True):
            raise DevRunnerError(
                f"timer schedule {expression!r} is neither a 6-field NCRONTAB expression "
                "('{second} {minute} {hour} {day} {month} {day-of-week}') nor hh:mm:ss"
            )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first occurrence strictly after `moment` (aware), in UTC."""
        if self.interval is not None:
            return (moment + self.interval).astimezone(dt.UTC)
        local = moment.astimezone(self.tz)
        occurrence = croniter(self.expression, local, second_at_beginning=True).get_next(
            dt.datetime
        )
        return occurrence.astimezone(dt.UTC)


def timer_time_zone(environ: Mapping[str, str]) -> dt.tzinfo:
    """The zone timers run in: WEBSITE_TIME_ZONE (an IANA name) if set, else UTC."""
    name = environ.get(TIME_ZONE_SETTING, "").strip()
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise DevRunnerError(
            f"{TIME_ZONE_SETTING}={name!r} is not an IANA time zone name "
            "(Linux plans use names like Europe/London, not Windows names)"
        ) from exc


@dataclasses.dataclass
class _Timer:
    function: IndexedFunction
    schedule: TimerSchedule
    run_on_startup: bool
    running: bool = False
    last: dt.datetime | None = None


# --- Blob trigger paths ------------------------------------------------------------------


class BlobPathPattern:
    """A blob trigger path: `container/{name}`, `container/prefix/{name}`, `{name}.ext`..."""

    def __init__(self, path: str) -> None:
        self.path = path.strip("/")
        container, _, blob_pattern = self.path.partition("/")
        if not container or "{" in container:
            raise DevRunnerError(f"blob trigger path {path!r} must start with a literal container")
        self.container = container
        first_param = blob_pattern.find("{")
        self.prefix = blob_pattern if first_param < 0 else blob_pattern[:first_param]
        regex, position = "", 0
        for match in _TEMPLATE_PARAM.finditer(blob_pattern):
            regex += re.escape(blob_pattern[position : match.start()])
            # {name} spans virtual directories, as in the host (`a/b.txt` is one name).
            regex += f"(?P<{_group_name(match.group(1))}>.+)"
            position = match.end()
        regex += re.escape(blob_pattern[position:])
        self._regex = re.compile("^" + regex + "$") if blob_pattern else re.compile("^.+$")

    def match(self, blob_name: str) -> dict[str, str] | None:
        found = self._regex.match(blob_name)
        return None if found is None else found.groupdict()


def _group_name(param: str) -> str:
    name = re.sub(r"\W", "_", param)
    return name if name and not name[0].isdigit() else f"_{name}"


def _storage_connection(
    connection: str, environ: Mapping[str, str], *, where: str
) -> tuple[str, str]:
    """(setting name, connection string) for a binding's `connection`, as the host finds it."""
    names = [connection, f"AzureWebJobs{connection}"] if connection else ["AzureWebJobsStorage"]
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    if any(f"{name}__" in key for key in environ for name in names):
        raise DevRunnerError(
            f"{where} uses the identity-based connection {names[0]}__*; the dev runner needs a "
            f"connection string in the app setting {names[0]}"
        )
    raise MissingSettingError(
        f"{where} uses connection {names[0]!r}, but the app setting {names[0]} "
        "(a storage connection string) is not set"
    )


@dataclasses.dataclass
class _BlobWatch:
    function: IndexedFunction
    pattern: BlobPathPattern
    setting: str
    connection_string: str
    client: BlobServiceClient
    receipts_loaded: bool = False
    scans_started: int = 0
    scans_completed: int = 0
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    missing_container_logged: bool = False
    last_scan_error: str | None = None

    @property
    def function_id(self) -> str:
        return f"Host.Functions.{self.function.name}"


# --- Invocation context objects the worker would pass -------------------------------------


class _TraceContext:
    """Empty W3C trace context: there is no distributed tracing locally."""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext:
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> Any:
        return None


class _InvocationContext(func.Context):
    def __init__(self, invocation_id: str, function_name: str, retry: _RetryContext) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._retry = retry
        self._thread_local = threading.local()
        self._thread_local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(Path.cwd())

    @property
    def trace_context(self) -> Any:
        return _TraceContext()

    @property
    def retry_context(self) -> Any:
        return self._retry


@dataclasses.dataclass(frozen=True)
class InvocationRecord:
    """What the runner remembers of one invocation (for tests, the demo and logs)."""

    function_name: str
    invocation_id: str
    reason: str
    succeeded: bool
    duration_ms: float
    error: str | None = None


class _SyncCallTracker:
    """Counts sync handlers still running in worker threads (they cannot be cancelled)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def wrap(self, target: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
        context = contextvars.copy_context()

        def call() -> Any:
            with self._lock:
                self.running += 1
            try:
                return context.run(target, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return call


# --- The host ----------------------------------------------------------------------------


class LocalFunctionsHost:
    """Hosts one FunctionApp in-process: HTTP server, timer schedulers and blob pollers.

    Construction indexes the app and validates every binding (settings, schedules,
    connections) without I/O, so configuration errors surface before anything starts.
    """

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        http_host: str = DEFAULT_HTTP_HOST,
        http_port: int = DEFAULT_HTTP_PORT,
        environ: Mapping[str, str] | None = None,
        route_prefix: str = DEFAULT_ROUTE_PREFIX,
        blob_poll_seconds: float = 1.0,
        blob_concurrency: int = DEFAULT_BLOB_CONCURRENCY,
        blob_max_attempts: int = DEFAULT_BLOB_MAX_ATTEMPTS,
        blob_retry_delay: float = 0.5,
        persist_blob_receipts: bool = True,
        host_id: str = "dev-runner",
        functions: Collection[str] | None = None,
        shutdown_timeout: float = 10.0,
        thread_pool_size: int | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        http_socket: socket.socket | None = None,
    ) -> None:
        if blob_concurrency < 1 or blob_max_attempts < 1 or blob_poll_seconds <= 0:
            raise DevRunnerError(
                "blob concurrency and attempts must be >= 1 and the poll interval > 0"
            )
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._http_host = http_host
        self._requested_port = http_port
        # A socket bound by the caller (the CLI binds before starting the local Azure).
        self._http_socket = http_socket
        self._route_prefix = route_prefix
        self._blob_poll_seconds = blob_poll_seconds
        self._blob_concurrency = blob_concurrency
        self._blob_max_attempts = blob_max_attempts
        self._blob_retry_delay = blob_retry_delay
        self._persist_receipts = persist_blob_receipts
        self._host_id = host_id
        self._shutdown_timeout = shutdown_timeout
        self._thread_pool_size = thread_pool_size
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

        self.functions = index_functions(app, functions)
        self._routes: list[_HttpRoute] = []
        self._timers: dict[str, _Timer] = {}
        self._blob_watches: list[_BlobWatch] = []
        tz = timer_time_zone(self._environ)
        for function in self.functions:
            if function.trigger_type == "httpTrigger":
                self._routes.append(self._http_route(function))
            elif function.trigger_type == "timerTrigger":
                self._timers[function.name] = self._timer(function, tz)
            else:
                self._blob_watches.append(self._blob_watch(function))
        self._routes.sort(key=lambda route: route.template.precedence)

        self.invocations: deque[InvocationRecord] = deque(maxlen=10_000)
        self._receipts: set[tuple[str, str, str]] = set()
        self._blobs_in_flight: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._sync_calls = _SyncCallTracker()
        self._executor: ThreadPoolExecutor | None = None
        self._blob_slots: asyncio.Semaphore | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._started = False
        self._stopping = False

    # -- indexing helpers --

    def _http_route(self, function: IndexedFunction) -> _HttpRoute:
        trigger = function.trigger
        route = trigger.get("route")
        route = function.name if route is None else str(route)
        route = resolve_setting_expressions(
            route, self._environ, where=f"route of function '{function.name}'"
        )
        methods = trigger.get("methods")
        method_set = frozenset(str(_plain(m)).upper() for m in methods) if methods else None
        auth_level = str(trigger.get("authLevel") or "function").lower()
        return _HttpRoute(
            function, RouteTemplate(route, self._route_prefix), method_set, auth_level
        )

    def _timer(self, function: IndexedFunction, tz: dt.tzinfo) -> _Timer:
        where = f"schedule of timer function '{function.name}'"
        expression = resolve_setting_expressions(
            str(function.trigger.get("schedule", "")), self._environ, where=where
        )
        try:
            schedule = TimerSchedule(expression, tz)
        except DevRunnerError as exc:
            raise DevRunnerError(f"{where}: {exc}") from exc
        return _Timer(function, schedule, bool(function.trigger.get("runOnStartup")))

    def _blob_watch(self, function: IndexedFunction) -> _BlobWatch:
        where = f"blob trigger '{function.name}'"
        path = resolve_setting_expressions(
            str(function.trigger.get("path", "")), self._environ, where=f"path of {where}"
        )
        setting, connection_string = _storage_connection(
            str(function.trigger.get("connection") or ""), self._environ, where=where
        )
        if function.trigger.get("source") == "EventGrid":
            logger.info(
                "Function '%s' uses source=EventGrid; the dev runner polls the container instead",
                function.name,
            )
        try:
            # No I/O yet: the aio transport opens its session on the first request.
            client = BlobServiceClient.from_connection_string(
                connection_string,
                # Fail a scan in seconds, not minutes, when storage is down; the next poll retries.
                retry_policy=LinearRetry(backoff=1, retry_total=2, random_jitter_range=1),
            )
        except ValueError as exc:
            raise DevRunnerError(
                f"{where}: the app setting {setting} is not a valid storage connection string"
            ) from exc
        return _BlobWatch(function, BlobPathPattern(path), setting, connection_string, client)

    # -- public surface --

    @property
    def http_port(self) -> int:
        if self._port is None:
            raise RuntimeError("the host is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = self._http_host if ":" not in self._http_host else f"[{self._http_host}]"
        return f"http://{host}:{self.http_port}"

    def describe(self) -> list[str]:
        """One line per function, like the list `func start` prints."""
        lines = []
        for route in self._routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "all methods"
            url = f"{self.base_url if self._port else ''}{route.template.display_path}"
            lines.append(f"{route.function.name}: [{methods}] {url}")
        for timer in self._timers.values():
            lines.append(
                f"{timer.function.name}: timerTrigger ({timer.schedule.expression}"
                f"{', runOnStartup' if timer.run_on_startup else ''})"
            )
        for watch in self._blob_watches:
            lines.append(
                f"{watch.function.name}: blobTrigger ({watch.pattern.path} via {watch.setting})"
            )
        return lines

    async def start(self) -> None:
        """Bind the HTTP port, then start timers and blob pollers.

        The port is bound first so that a busy port fails before anything else runs.
        """
        if self._started:
            raise RuntimeError("the host is already started")
        sock = self._http_socket or bind_http(self._http_host, self._requested_port)
        web_app = web.Application(client_max_size=100 * 1024 * 1024)
        web_app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]
        self._started = True
        self._executor = ThreadPoolExecutor(
            max_workers=self._thread_pool_size, thread_name_prefix="dev-runner-fn"
        )
        self._blob_slots = asyncio.Semaphore(self._blob_concurrency)
        for watch in self._blob_watches:
            self._background.append(
                asyncio.create_task(self._poll_blobs(watch), name=f"blobs:{watch.function.name}")
            )
        for timer in self._timers.values():
            self._background.append(
                asyncio.create_task(self._run_schedule(timer), name=f"timer:{timer.function.name}")
            )
        if self._routes and not self._environ.get(LOCAL_KEY_SETTING):
            logger.info(
                "%s is not set: function- and admin-level routes accept requests without a key "
                "(as func start does locally)",
                LOCAL_KEY_SETTING,
            )

    async def stop(self) -> int:
        """Stop serving, cancel schedules and pollers, wait a bounded time for invocations.

        Returns how many sync handlers are still running in threads (they cannot be
        cancelled); the CLI exits the process without waiting for them.
        """
        if not self._started or self._stopping:
            return self._sync_calls.running
        self._stopping = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

        async def drain_invocations() -> None:
            if self._tasks:
                _, pending = await asyncio.wait(set(self._tasks), timeout=self._shutdown_timeout)
                if pending:
                    logger.warning(
                        "%d invocation(s) still running after %.0fs; cancelling",
                        len(pending),
                        self._shutdown_timeout,
                    )
                    for task in pending:
                        task.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)

        runner = self._runner
        await asyncio.gather(
            runner.cleanup() if runner is not None else asyncio.sleep(0), drain_invocations()
        )
        for watch in self._blob_watches:
            await watch.client.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        still_running = self._sync_calls.running
        if still_running:
            logger.warning("%d sync handler(s) still running in threads", still_running)
        return still_running

    async def __aenter__(self) -> LocalFunctionsHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def fire_timer(self, name: str, *, past_due: bool = False) -> InvocationRecord | None:
        """Run a timer function now and wait for it; None if it was still running (skipped)."""
        timer = self._timers.get(name)
        if timer is None:
            raise KeyError(f"no timer function named {name!r}")
        task = self._start_timer_invocation(timer, self._clock(), past_due, HOST_REASON)
        return None if task is None else await task

    async def wait_for_blob_idle(self, timeout: float = 10.0) -> None:
        """Return once every blob poller has scanned after this call and nothing is in flight.

        Pollers are woken at once, so this does not wait for the poll interval.
        """
        targets = {id(w): w.scans_started + 1 for w in self._blob_watches}
        for watch in self._blob_watches:
            watch.wake.set()
        deadline = time.monotonic() + timeout
        while True:
            scanned = all(w.scans_completed >= targets[id(w)] for w in self._blob_watches)
            if scanned and not self._blobs_in_flight:
                return
            if time.monotonic() > deadline:
                errors = [w.last_scan_error for w in self._blob_watches if w.last_scan_error]
                raise TimeoutError(
                    f"blob pollers not idle after {timeout:.1f}s "
                    f"({len(self._blobs_in_flight)} in flight; last errors: {errors or 'none'})"
                )
            await asyncio.sleep(0.02)

    # -- invocation core --

    async def _invoke(
        self,
        function: IndexedFunction,
        value: object,
        reason: str,
        *,
        retry_count: int = 0,
        max_retry_count: int = 0,
    ) -> tuple[InvocationRecord, Any]:
        invocation_id = str(uuid.uuid4())
        logger.info(
            "Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id
        )
        kwargs: dict[str, Any] = {function.trigger_arg: value}
        if function.wants_context:
            kwargs["context"] = _InvocationContext(
                invocation_id, function.name, _RetryContext(retry_count, max_retry_count)
            )
        started = time.perf_counter()
        result: Any = None
        error: BaseException | None = None
        try:
            if function.is_async:
                result = await function.callable(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(
                    self._executor, self._sync_calls.wrap(function.callable, **kwargs)
                )
        except Exception as exc:
            error = exc
        duration_ms = (time.perf_counter() - started) * 1000
        if error is None:
            logger.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
                function.name,
                invocation_id,
                duration_ms,
            )
        else:
            logger.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)\n%s",
                function.name,
                invocation_id,
                duration_ms,
                _user_traceback(error),
            )
        record = InvocationRecord(
            function.name,
            invocation_id,
            reason,
            error is None,
            duration_ms,
            None if error is None else f"{type(error).__name__}: {error}",
        )
        self.invocations.append(record)
        return record, result

    def _track(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Invocation errors are handled in _invoke; anything reaching here is a runner bug.
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("Internal error in %s", task.get_name(), exc_info=error)

    # -- HTTP --

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/admin/"):
            return await self._admin(request)
        allowed: set[str] = set()
        for route in self._routes:
            route_params = route.template.match(request.path)
            if route_params is None:
                continue
            if route.methods is not None and request.method.upper() not in route.methods:
                allowed |= route.methods
                continue
            if not self._authorized(request, route.auth_level):
                return _json_error(401, "a valid function key is required")
            return await self._serve_http(route, request, route_params)
        if allowed:
            return _json_error(
                405,
                f"method {request.method} is not allowed here",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        return _json_error(404, f"no function serves {request.path}")

    def _authorized(self, request: web.Request, auth_level: str) -> bool:
        if auth_level == "anonymous":
            return True
        expected = self._environ.get(LOCAL_KEY_SETTING, "")
        if not expected:
            return True  # as func start does; start() logged that once
        given = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return hmac.compare_digest(given.encode(), expected.encode())

    async def _serve_http(
        self, route: _HttpRoute, request: web.Request, route_params: dict[str, str]
    ) -> web.StreamResponse:
        body = await request.read()
        headers = {key: ", ".join(request.headers.getall(key)) for key in request.headers}
        params = {key: ",".join(request.query.getall(key)) for key in request.query}
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=headers,
            params=params,
            route_params=route_params,
            body=body,
        )
        task = self._track(
            self._invoke(route.function, http_request, HOST_REASON), f"http:{route.function.name}"
        )
        record, result = await task
        if not record.succeeded:
            return _invocation_failed(record)
        try:
            return _to_web_response(result)
        except TypeError as exc:
            logger.error(
                "Function '%s' returned an unusable response: %s", record.function_name, exc
            )
            return _invocation_failed(record)

    async def _admin(self, request: web.Request) -> web.StreamResponse:
        # The host's admin API subset that helps local work: status, and manual runs of timers.
        if request.path.rstrip("/") == "/admin/host/status" and request.method == "GET":
            return web.json_response({"state": "Running", "functions": len(self.functions)})
        if not self._authorized(request, "admin"):
            return _json_error(401, "a valid key is required")
        match = re.fullmatch(r"/admin/functions/([^/]+)/?", request.path)
        if match is None:
            return _json_error(404, f"no admin endpoint {request.path}")
        if request.method != "POST":
            return _json_error(405, "use POST", headers={"Allow": "POST"})
        timer = self._timers.get(match.group(1))
        if timer is None:
            return _json_error(404, f"no timer function named {match.group(1)}")
        self._start_timer_invocation(timer, self._clock(), False, HOST_REASON)
        return web.Response(status=202)

    # -- timers --

    def _start_timer_invocation(
        self, timer: _Timer, scheduled: dt.datetime, past_due: bool, reason: str
    ) -> asyncio.Task[InvocationRecord] | None:
        name = timer.function.name
        if timer.running:
            logger.warning(
                "Timer '%s' is still running; skipping the occurrence at %s",
                name,
                scheduled.isoformat(),
            )
            return None
        timer.running = True
        status = {
            "Last": (timer.last or dt.datetime.min.replace(tzinfo=dt.UTC)).isoformat(),
            "Next": timer.schedule.next_after(scheduled).isoformat(),
            "LastUpdated": self._clock().isoformat(),
        }
        timer.last = scheduled
        request = func.timer.TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )

        async def run() -> InvocationRecord:
            try:
                record, _ = await self._invoke(timer.function, request, reason)
                return record
            finally:
                timer.running = False

        return self._track(run(), f"timer-run:{name}")

    async def _run_schedule(self, timer: _Timer) -> None:
        if timer.run_on_startup:
            self._start_timer_invocation(timer, self._clock(), False, "Timer fired on startup")
        next_at = timer.schedule.next_after(self._clock())
        logger.debug("Timer '%s' next at %s", timer.function.name, next_at.isoformat())
        while True:
            delay = (next_at - self._clock()).total_seconds()
            if delay > 0:
                # Short sleeps re-read the clock, so a suspended laptop or a clock change is
                # noticed (and reported as past due) instead of sleeping on a stale delay.
                await asyncio.sleep(min(delay, 1.0))
                continue
            now = self._clock()
            past_due = now - next_at > PAST_DUE_TOLERANCE
            self._start_timer_invocation(
                timer, next_at, past_due, f"Timer fired at {now.isoformat()}"
            )
            # Missed occurrences collapse into this one firing, as in the host.
            next_at = timer.schedule.next_after(max(now, next_at))

    # -- blobs --

    async def _poll_blobs(self, watch: _BlobWatch) -> None:
        while True:
            watch.scans_started += 1
            try:
                await self._scan(watch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if message != watch.last_scan_error:
                    logger.warning("Blob scan for '%s' failed: %s", watch.function.name, message)
                watch.last_scan_error = message
            else:
                watch.last_scan_error = None
                watch.scans_completed += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.wake.wait(), self._blob_poll_seconds)
            watch.wake.clear()

    async def _scan(self, watch: _BlobWatch) -> None:
        container = watch.client.get_container_client(watch.pattern.container)
        if self._persist_receipts and not watch.receipts_loaded:
            await self._load_receipts(watch)
        try:
            async for blob in container.list_blobs(name_starts_with=watch.pattern.prefix or None):
                if watch.pattern.match(blob.name) is None:
                    continue
                etag = _etag_key(str(blob.etag))
                key = (watch.function.name, blob.name)
                if (*key, etag) in self._receipts or key in self._blobs_in_flight:
                    continue
                self._blobs_in_flight.add(key)
                self._track(
                    self._deliver(watch, container, blob.name, etag),
                    f"blob:{watch.function.name}:{blob.name}",
                )
        except ResourceNotFoundError:
            if not watch.missing_container_logged:
                watch.missing_container_logged = True
                logger.warning(
                    "Container '%s' for blob trigger '%s' does not exist yet; waiting for it",
                    watch.pattern.container,
                    watch.function.name,
                )
            return
        watch.missing_container_logged = False

    def _receipt_prefix(self, watch: _BlobWatch) -> str:
        return f"blobreceipts/{self._host_id}/{watch.function_id}/"

    async def _load_receipts(self, watch: _BlobWatch) -> None:
        receipts = watch.client.get_container_client(RECEIPTS_CONTAINER)
        prefix = self._receipt_prefix(watch)
        try:
            async for receipt in receipts.list_blobs(name_starts_with=prefix):
                etag, _, blob_path = receipt.name[len(prefix) :].partition("/")
                container, _, blob_name = blob_path.partition("/")
                if container == watch.pattern.container:
                    self._receipts.add((watch.function.name, blob_name, etag))
        except ResourceNotFoundError:
            pass
        watch.receipts_loaded = True

    async def _write_receipt(self, watch: _BlobWatch, blob_name: str, etag: str) -> None:
        self._receipts.add((watch.function.name, blob_name, etag))
        if not self._persist_receipts:
            return
        receipts = watch.client.get_container_client(RECEIPTS_CONTAINER)
        path = f"{self._receipt_prefix(watch)}{etag}/{watch.pattern.container}/{blob_name}"
        try:
            with contextlib.suppress(ResourceExistsError):
                await receipts.create_container()
            await receipts.upload_blob(path, b"", overwrite=True)
        except AzureError as exc:
            # The in-memory receipt still prevents redelivery in this run.
            logger.warning("Could not persist the blob receipt %s: %s", path, exc)

    async def _deliver(
        self, watch: _BlobWatch, container: ContainerClient, blob_name: str, etag: str
    ) -> None:
        key = (watch.function.name, blob_name)
        try:
            await self._deliver_with_retries(watch, container, blob_name, etag)
        finally:
            self._blobs_in_flight.discard(key)

    async def _deliver_with_retries(
        self, watch: _BlobWatch, container: ContainerClient, blob_name: str, etag: str
    ) -> None:
        slots = self._blob_slots
        assert slots is not None
        blob = container.get_blob_client(blob_name)
        full_name = f"{watch.pattern.container}/{blob_name}"
        try:
            async with slots:
                downloader = await blob.download_blob(
                    etag=f'"{etag}"', match_condition=MatchConditions.IfNotModified
                )
                data = await downloader.readall()
        except (ResourceModifiedError, ResourceNotFoundError):
            # Changed or deleted since the listing: the next scan sees its current state.
            logger.debug("Blob %s changed before delivery; rescanning", full_name)
            return
        except AzureError as exc:
            # No receipt is written, so a later scan tries this blob again.
            logger.warning(
                "Could not download %s for '%s': %s", full_name, watch.function.name, exc
            )
            return
        properties = downloader.properties
        blob_properties = {
            "ETag": f'"{etag}"',
            "ContentLength": properties.size,
            "ContentType": properties.content_settings.content_type,
            "LastModified": properties.last_modified.isoformat()
            if properties.last_modified
            else None,
            "BlobType": str(_plain(properties.blob_type)),
        }
        reason = f"New blob detected(LogsAndContainerScan): {full_name}"

        attempts = itertools.count(1)

        async def deliver() -> bool:
            attempt = next(attempts)
            stream = func.blob.InputStream(
                data=data,
                name=full_name,
                uri=blob.url,
                length=properties.size,
                blob_properties=blob_properties,
                metadata=dict(properties.metadata or {}),
            )
            async with slots:
                record, _ = await self._invoke(
                    watch.function,
                    stream,
                    reason,
                    retry_count=attempt - 1,
                    max_retry_count=self._blob_max_attempts - 1,
                )
            return record.succeeded

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda succeeded: not succeeded),
            stop=stop_after_attempt(self._blob_max_attempts),
            wait=wait_exponential(multiplier=self._blob_retry_delay, max=10.0),
        )
        try:
            await retrying(deliver)
        except RetryError:
            pass
        else:
            await self._write_receipt(watch, blob_name, etag)
            return
        logger.error(
            "Blob '%s' will be skipped for function '%s' because this blob with ETag %s failed "
            "%d times (poison)",
            full_name,
            watch.function.name,
            etag,
            self._blob_max_attempts,
        )
        await self._write_receipt(watch, blob_name, etag)
        await self._write_poison_message(watch, blob_name, etag)

    async def _write_poison_message(self, watch: _BlobWatch, blob_name: str, etag: str) -> None:
        message = json.dumps(
            {
                "Type": "BlobTrigger",
                "FunctionId": watch.function_id,
                "BlobType": "BlockBlob",
                "ContainerName": watch.pattern.container,
                "BlobName": blob_name,
                "ETag": f'"{etag}"',
            }
        )
        try:
            queue = QueueClient.from_connection_string(watch.connection_string, POISON_QUEUE)
            async with queue:
                with contextlib.suppress(ResourceExistsError):
                    await queue.create_queue()
                await queue.send_message(message)
        except (AzureError, ValueError) as exc:
            logger.warning("Poison message not queued to %s: %s (%s)", POISON_QUEUE, exc, message)


def bind_http(host: str, port: int) -> socket.socket:
    """The HTTP listening socket, or a one-line DevRunnerError saying why it cannot be had."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        # create_server appends the address to strerror; the errno text alone reads better.
        if isinstance(exc, socket.gaierror) or not exc.errno:
            reason = exc.strerror or str(exc)
        else:
            reason = os.strerror(exc.errno)
        hint = (
            " (is another host running? pick another port with --port)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise DevRunnerError(f"cannot listen on {host}:{port}: {reason}{hint}") from exc


def _user_traceback(error: BaseException) -> str:
    """The traceback from the first frame of user code, as the host shows it."""
    tb = error.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__
        or f"concurrent{os.sep}futures" in tb.tb_frame.f_code.co_filename
    ):
        tb = tb.tb_next
    return "".join(
        traceback.format_exception(type(error), error, tb or error.__traceback__)
    ).rstrip()


def _etag_key(etag: str) -> str:
    """ETags without quotes: listings and response headers disagree on quoting."""
    return etag.strip().strip('"')


def _json_error(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _invocation_failed(record: InvocationRecord) -> web.Response:
    return web.json_response(
        {
            "error": f"Exception while executing function: Functions.{record.function_name}",
            "invocationId": record.invocation_id,
        },
        status=500,
    )


def _to_web_response(result: object) -> web.Response:
    """The handler's return value as the host would send it (see azure.functions.http)."""
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str | bytes):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"expected func.HttpResponse or str, got {type(result).__name__}")
    headers: CIMultiDict[str] = CIMultiDict()
    for key, value in result.headers.items():
        headers.add(key, value)
    if "Content-Type" not in headers:
        mimetype = str(result.mimetype)
        text = mimetype.startswith("text/")
        headers["Content-Type"] = f"{mimetype}; charset={result.charset}" if text else mimetype
    return web.Response(status=int(result.status_code), body=result.get_body(), headers=headers)


# --- CLI ---------------------------------------------------------------------------------


def read_local_settings(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, as `func start` loads them."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DevRunnerError(f"cannot read {path}: {exc}") from exc
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    if not isinstance(values, dict):
        raise DevRunnerError(f"{path}: 'Values' must be an object")
    return {str(k): str(v) for k, v in values.items()}


def read_host_json(path: Path) -> tuple[str | None, int | None]:
    """(routePrefix, blobs maxDegreeOfParallelism) from host.json, when it sets them."""
    if not path.exists():
        return None, None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DevRunnerError(f"cannot read {path}: {exc}") from exc
    extensions = document.get("extensions", {}) if isinstance(document, dict) else {}
    prefix = extensions.get("http", {}).get("routePrefix")
    parallelism = extensions.get("blobs", {}).get("maxDegreeOfParallelism")
    return (
        None if prefix is None else str(prefix),
        None if parallelism is None else int(parallelism),
    )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.dev_runner",
        description="Run the function app locally, playing the Azure Functions host's part.",
    )
    parser.add_argument("--app", default="function_app:app", help="module:attribute")
    parser.add_argument("--host", default=DEFAULT_HTTP_HOST, help="HTTP listen address")
    parser.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP port")
    parser.add_argument("--functions", nargs="+", metavar="NAME", help="host only these functions")
    parser.add_argument(
        "--settings-file",
        type=Path,
        default=Path("local.settings.json"),
        help="app settings file; its Values never override the environment",
    )
    parser.add_argument("--host-json", type=Path, default=Path("host.json"))
    parser.add_argument("--blob-poll-seconds", type=float, default=1.0)
    parser.add_argument(
        "--blob-concurrency",
        type=int,
        default=None,
        help="default: host.json extensions.blobs.maxDegreeOfParallelism, else 8",
    )
    parser.add_argument(
        "--no-blob-receipts",
        action="store_true",
        help="keep blob receipts in memory only (a restart re-delivers every blob)",
    )
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument(
        "--local-azure",
        action="store_true",
        help="start Azurite and the simulator and use their settings",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


class _UtcFormatter(logging.Formatter):
    """Timestamps like the host's: ISO 8601 in UTC with milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("[%(asctime)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Like host.json's "Azure.Core": "Warning": the SDK logs every poll request at INFO.
    for noisy in ("azure", "aiohttp.access", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def _environment(
    args: argparse.Namespace, prepare_environment: PrepareEnvironment | None
) -> Iterator[dict[str, str]]:
    """Build the app settings and export them to os.environ, where the handlers read them."""
    settings = read_local_settings(args.settings_file)
    with contextlib.ExitStack() as stack:
        if args.local_azure:
            if prepare_environment is None:
                raise DevRunnerError(
                    "--local-azure is not wired up: main() needs a prepare_environment callable"
                )
            try:
                local_settings = stack.enter_context(prepare_environment())
            except Exception as exc:
                raise DevRunnerError(f"the local Azure failed to start: {exc}") from exc
            # The local Azure's endpoints win over local.settings.json: that is the flag's point.
            settings.update(local_settings)
        for name, value in settings.items():
            if args.local_azure or name not in os.environ:
                os.environ[name] = value
        yield dict(os.environ)


def _thread_pool_size(environ: Mapping[str, str]) -> int | None:
    """PYTHON_THREADPOOL_THREAD_COUNT, the worker's setting for sync handler threads."""
    value = environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise DevRunnerError(f"PYTHON_THREADPOOL_THREAD_COUNT={value!r} must be a positive integer")
    return int(value)


async def _serve(host: LocalFunctionsHost) -> int:
    loop = asyncio.get_running_loop()
    serving = asyncio.current_task()
    stop = asyncio.Event()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        if signals_seen == 1:
            logger.info("Received %s; stopping (again to force)", name)
            stop.set()
        elif serving is not None:
            # Cancelling (not os._exit) still runs the context managers that stop the local
            # Azure; main() then exits without joining handler threads.
            logger.warning("Received %s again; not waiting for running invocations", name)
            serving.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    await host.start()
    try:
        logger.info("Functions:")
        for line in host.describe():
            logger.info("    %s", line)
        logger.info("Host started on %s (Ctrl+C to stop)", host.base_url)
        await stop.wait()
    finally:
        still_running = await host.stop()
    logger.info("Host stopped")
    return 1 if still_running else 0


def main(
    argv: Sequence[str] | None = None, *, prepare_environment: PrepareEnvironment | None = None
) -> int:
    """CLI entry point; returns the process exit code (2 for configuration errors)."""
    args = _parse_args(argv)
    _configure_logging(args.verbose)
    # Until the event loop takes the signals over, SIGTERM unwinds like Ctrl-C, so the
    # context managers below still stop the local Azure they started.
    sigterm_as_keyboard_interrupt()
    try:
        # The port first: a busy port must fail before the local Azure is started.
        http_socket = bind_http(args.host, args.port)
        with _environment(args, prepare_environment) as environ:
            # `python -m` puts the working directory on sys.path; make that explicit for `main()`.
            if str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            app = load_function_app(args.app)
            route_prefix, parallelism = read_host_json(args.host_json)
            host = LocalFunctionsHost(
                app,
                http_host=args.host,
                http_port=args.port,
                environ=environ,
                route_prefix=DEFAULT_ROUTE_PREFIX if route_prefix is None else route_prefix,
                blob_poll_seconds=args.blob_poll_seconds,
                blob_concurrency=args.blob_concurrency or parallelism or DEFAULT_BLOB_CONCURRENCY,
                persist_blob_receipts=not args.no_blob_receipts,
                functions=args.functions,
                shutdown_timeout=args.shutdown_timeout,
                thread_pool_size=_thread_pool_size(environ),
                http_socket=http_socket,
            )
            try:
                code = asyncio.run(_serve(host))
            except asyncio.CancelledError:
                code = 130
    except DevRunnerError as exc:
        hint = ""
        if isinstance(exc, MissingSettingError) and not args.settings_file.exists():
            hint = f"; there is no {args.settings_file}: copy local.settings.sample.json"
            hint += " to it, or use --local-azure"
        print(f"dev_runner: {exc}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dev_runner: interrupted before the host started; stopped", file=sys.stderr)
        return 130
    if code:
        # Threads running sync handlers cannot be interrupted and would block interpreter exit.
        logging.shutdown()
        os._exit(code)
    return code


@contextlib.contextmanager
def local_azure_settings() -> Iterator[dict[str, str]]:
    """The `--local-azure` hook: start Azurite and the simulator, yield their app settings."""
    # Imported here so the runner works (without --local-azure) when the simulator is absent.
    from scripts.local_azure import local_azure  # noqa: PLC0415

    with local_azure() as running:
        yield running.app_settings()


if __name__ == "__main__":
    sys.exit(main(prepare_environment=local_azure_settings))
