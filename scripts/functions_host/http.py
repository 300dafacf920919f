"""HTTP triggers and the bit of the host's admin API that helps local work.

Owns: the aiohttp server on `/<routePrefix>/<route>` (routePrefix from the options, else
host.json `extensions.http.routePrefix`, else `api`), ASP.NET-style route templates and their
precedence, method checks (405), function/admin keys (`FUNCTIONS_LOCAL_KEY`), turning a
handler's return value into a response (and a 500 with a short JSON body when it raises), and
`GET /admin/host/status` and `POST /admin/functions/<name>` (202), as the portal's
"Test/Run" does. The HTTP server always runs, even with no HTTP functions, for the admin API.
"""

from __future__ import annotations

import dataclasses
import errno
import hmac
import logging
import os
import re
import socket
from collections.abc import Mapping

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.indexing import (
    IndexedFunction,
    extension_setting,
    plain,
    resolve_setting_expressions,
)
from scripts.functions_host.invocation import HOST_REASON, InvocationRecord
from scripts.functions_host.triggers import HostContext, TriggerKind

logger = logging.getLogger(__name__)

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 7071
DEFAULT_ROUTE_PREFIX = "api"
LOCAL_KEY_SETTING = "FUNCTIONS_LOCAL_KEY"


@dataclasses.dataclass(frozen=True)
class HttpOptions:
    """Where the HTTP server listens and under which prefix routes live."""

    host: str = DEFAULT_HTTP_HOST
    port: int = DEFAULT_HTTP_PORT  # 0: any free port (tests)
    # None: host.json's extensions.http.routePrefix, else "api"; "" serves routes at the root.
    route_prefix: str | None = None
    # A socket the caller already bound: the CLI binds before starting the local Azure.
    listen_socket: socket.socket | None = None


def bind_http(host: str, port: int) -> socket.socket:
    """The HTTP listening socket, or a one-line FunctionsHostError saying why it cannot be had."""
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
            " (is another host running? Stop it, or pick another port: "
            "`make dev DEV_PORT=7072`, or --port 7072 here)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise FunctionsHostError(f"cannot listen on {host}:{port}: {reason}{hint}") from exc


# --- Route templates -----------------------------------------------------------------------

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
        raise FunctionsHostError(f"route template {route!r} has an empty parameter name")
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
            raise FunctionsHostError(
                f"route template {self.route!r} repeats parameter {param.name}"
            )
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


# --- Responses -----------------------------------------------------------------------------


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


# --- The trigger kind ----------------------------------------------------------------------


class HttpTriggers(TriggerKind):
    """`httpTrigger` functions and the admin API, served by one aiohttp server."""

    def __init__(self, context: HostContext) -> None:
        super().__init__(context)
        self._options = context.options_for(HttpOptions)
        prefix = self._options.route_prefix
        if prefix is None:
            configured = extension_setting(context.extensions, "http", "routePrefix")
            prefix = DEFAULT_ROUTE_PREFIX if configured is None else str(configured)
        self._route_prefix = prefix
        self._routes: list[_HttpRoute] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def add(self, function: IndexedFunction) -> None:
        self._routes.append(self._route(function))
        # A stable sort: routes of equal precedence keep the app's order.
        self._routes.sort(key=lambda route: route.template.precedence)

    def _route(self, function: IndexedFunction) -> _HttpRoute:
        trigger = function.trigger
        route = trigger.get("route")
        route = function.name if route is None else str(route)
        route = resolve_setting_expressions(
            route, self.context.environ, where=f"route of function '{function.name}'"
        )
        methods = trigger.get("methods")
        method_set = frozenset(str(plain(m)).upper() for m in methods) if methods else None
        auth_level = str(trigger.get("authLevel") or "function").lower()
        return _HttpRoute(
            function, RouteTemplate(route, self._route_prefix), method_set, auth_level
        )

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the host is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = self._options.host if ":" not in self._options.host else f"[{self._options.host}]"
        return f"http://{host}:{self.port}"

    def describe(self) -> list[str]:
        lines = []
        for route in self._routes:
            methods = ",".join(sorted(route.methods)) if route.methods else "all methods"
            url = f"{self.base_url if self._port else ''}{route.template.display_path}"
            lines.append(f"{route.function.name}: [{methods}] {url}")
        return lines

    async def start(self) -> None:
        sock = self._options.listen_socket or bind_http(self._options.host, self._options.port)
        web_app = web.Application(client_max_size=100 * 1024 * 1024)
        web_app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(
            web_app, access_log=None, shutdown_timeout=self.context.shutdown_timeout
        )
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]
        if self._routes and not self.context.environ.get(LOCAL_KEY_SETTING):
            logger.info(
                "%s is not set: function- and admin-level routes accept requests without a key "
                "(as func start does locally)",
                LOCAL_KEY_SETTING,
            )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

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
            return await self._serve(route, request, route_params)
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
        expected = self.context.environ.get(LOCAL_KEY_SETTING, "")
        if not expected:
            return True  # as func start does; start() logged that once
        given = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return hmac.compare_digest(given.encode(), expected.encode())

    async def _serve(
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
        invoker = self.context.invoker
        task = invoker.track(
            invoker.invoke(route.function, http_request, HOST_REASON),
            f"http:{route.function.name}",
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
        if request.path.rstrip("/") == "/admin/host/status" and request.method == "GET":
            return web.json_response({"state": "Running", "functions": len(self.context.functions)})
        if not self._authorized(request, "admin"):
            return _json_error(401, "a valid key is required")
        match = re.fullmatch(r"/admin/functions/([^/]+)/?", request.path)
        if match is None:
            return _json_error(404, f"no admin endpoint {request.path}")
        if request.method != "POST":
            return _json_error(405, "use POST", headers={"Allow": "POST"})
        name = match.group(1)
        if not self.context.run_now(name):
            # Names the kinds that do run on demand (today: "no timer function named X").
            kinds = " or ".join(self.context.on_demand_labels)
            return _json_error(404, f"no {kinds + ' ' if kinds else ''}function named {name}")
        return web.Response(status=202)
