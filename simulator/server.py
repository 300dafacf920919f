"""The simulator's process: TLS set-up, the aiohttp application, start-up line and shutdown.

One HTTPS port serves all three path families (`/subscriptions` management, `/openai` data
plane, `/admin`). The certificate comes from a throwaway CA made at start (trustme) whose PEM
is written to `<state-dir>/ca.pem`, because azure-core refuses bearer tokens over plain http.
When listening, one JSON line (`{"event": "ready", ...}`) goes to stdout; SIGTERM or SIGINT
stops the server cleanly with exit status 0. A busy port is one line on stderr and status 2.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import ssl
import sys
import tempfile
from pathlib import Path

import trustme
from aiohttp import web

from simulator import admin_routes, dataplane, finetuning_routes, management
from simulator.clock import ScaledClock
from simulator.config import SimulatorConfig
from simulator.http_common import STATE_KEY, azure_answers_middleware
from simulator.state import SimulatorState

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 2
EXIT_CANNOT_START = 2
MAX_BODY_BYTES = 64 * 1024 * 1024
# aiohttp's default of 8190 bytes per header line answers a longer header (a large bearer
# token, say) with a plain-text 400 before any Azure-shaped handling can run.
MAX_HEADER_BYTES = 64 * 1024
_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def create_app(state: SimulatorState) -> web.Application:
    app = web.Application(middlewares=[azure_answers_middleware], client_max_size=MAX_BODY_BYTES)
    app[STATE_KEY] = state
    admin_routes.add_routes(app)
    finetuning_routes.add_routes(app)  # before the data plane's catch-all /openai route
    dataplane.add_routes(app)
    management.add_routes(app)
    return app


def make_tls(config: SimulatorConfig, state_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context from a fresh CA, and where that CA's PEM was written."""
    authority = trustme.CA(organization_name="Local Azure simulator")
    names = ["127.0.0.1", "localhost"]
    if config.host not in _WILDCARD_HOSTS and config.host not in names:
        names.append(config.host)
    certificate = authority.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca_path = state_dir / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_path))
    return context, ca_path


def _ready_line(config: SimulatorConfig, port: int, ca_path: Path) -> str:
    host = "127.0.0.1" if config.host in _WILDCARD_HOSTS else config.host
    return json.dumps(
        {
            "event": "ready",
            "base_url": f"https://{host}:{port}",
            "ca_path": str(ca_path),
            "pid": os.getpid(),
            "subscription_id": config.subscription_id,
            "resource_group": config.resource_group,
            "account": config.account,
            "api_key": config.api_key,
            "location": config.location,
            "time_scale": config.time_scale,
        },
        allow_nan=False,
    )


async def serve(config: SimulatorConfig) -> int:
    """Run until SIGTERM/SIGINT; return the process exit status."""
    try:
        state_dir = config.state_dir or Path(tempfile.mkdtemp(prefix="simulator-"))
        state_dir.mkdir(parents=True, exist_ok=True)
        ssl_context, ca_path = make_tls(config, state_dir)
    except OSError as error:
        print(
            f"simulator: cannot write the CA to the state dir: {error}", file=sys.stderr, flush=True
        )
        return EXIT_CANNOT_START
    state = SimulatorState(config, ScaledClock(config.time_scale))
    runner = web.AppRunner(
        create_app(state),
        access_log=None,
        shutdown_timeout=2.0,
        max_line_size=MAX_HEADER_BYTES,
        max_field_size=MAX_HEADER_BYTES,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as error:
        reason = "port is already in use" if error.errno == errno.EADDRINUSE else error.strerror
        print(
            f"simulator: cannot listen on {config.host}:{config.port}: {reason}",
            file=sys.stderr,
            flush=True,
        )
        await runner.cleanup()
        return EXIT_CANNOT_LISTEN
    port = int(runner.addresses[0][1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sys.stdout.write(_ready_line(config, port, ca_path) + "\n")
    sys.stdout.flush()
    logger.info("listening on https://%s:%s (time scale %s)", config.host, port, config.time_scale)
    await stop.wait()
    logger.info("stopping")
    await runner.cleanup()
    return EXIT_OK
