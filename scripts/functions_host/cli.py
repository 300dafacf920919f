"""The command line: `python -m scripts.functions_host` (and `make dev`).

Owns: the flags, the app settings (the environment, then local.settings.json `Values`, which
never override it, or the local Azure's with `--local-azure`, which win; `--settings-out`
writes the effective ones to a file while the host runs, for the operator's `hosting`
command), host.json, the
host's log format, serving until SIGINT/SIGTERM (a second signal stops waiting for running
invocations), and exit codes: configuration errors, a busy port or an unimportable app exit 2
with one line prefixed `functions_host:`.

Usage: `python -m scripts.functions_host [--app function_app:app] [--port 7071]
[--local-azure] [--settings-out FILE] [--functions NAME ...] [--blob-poll-seconds 1]
[--blob-concurrency 8] [--no-blob-receipts]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from scripts.functions_host.blobs import BlobOptions
from scripts.functions_host.errors import FunctionsHostError, MissingSettingError
from scripts.functions_host.host import LocalFunctionsHost
from scripts.functions_host.http import (
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_PORT,
    HttpOptions,
    bind_http,
)
from scripts.functions_host.indexing import load_function_app, read_host_json, read_local_settings
from scripts.interrupts import sigterm_as_keyboard_interrupt

logger = logging.getLogger(__name__)

PROG = "functions_host"

PrepareEnvironment = Callable[[], AbstractContextManager[dict[str, str]]]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.functions_host",
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
    parser.add_argument(
        "--settings-out",
        type=Path,
        metavar="FILE",
        help="write the effective app settings here (local.settings.json shape) while the "
        "host runs; removed when it stops",
    )
    parser.add_argument(
        "--log-idle-timers",
        action="store_true",
        help="log every timer firing; by default a firing that logged nothing and succeeded "
        "is logged at DEBUG only (-v shows it)",
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
    for noisy in ("azure", "aiohttp.access", "urllib3", "httpx", "httpx2"):
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
                raise FunctionsHostError(
                    "--local-azure is not wired up: main() needs a prepare_environment callable"
                )
            try:
                local_settings = stack.enter_context(prepare_environment())
            except Exception as exc:
                raise FunctionsHostError(f"the local Azure failed to start: {exc}") from exc
            # The local Azure's endpoints win over local.settings.json: that is the flag's point.
            settings.update(local_settings)
        for name, value in settings.items():
            if args.local_azure or name not in os.environ:
                os.environ[name] = value
        if args.settings_out is not None:
            effective = {name: os.environ[name] for name in sorted(settings)}
            stack.enter_context(_settings_file(args.settings_out, effective))
        yield dict(os.environ)


@contextlib.contextmanager
def _settings_file(path: Path, values: Mapping[str, str]) -> Iterator[None]:
    """The settings the app runs with, in a file that lives exactly as long as the host.

    Owner-only, since app settings hold connection strings; removed on the way out, since the
    local Azure's ports and keys are new every run and a stale file would point elsewhere.
    """
    document = json.dumps({"IsEncrypted": False, "Values": dict(values)}, indent=2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # also when the file was already there
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(document)
    except OSError as exc:
        raise FunctionsHostError(f"cannot write --settings-out {path}: {exc.strerror}") from exc
    logger.info("App settings written to %s", path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _thread_pool_size(environ: Mapping[str, str]) -> int | None:
    """PYTHON_THREADPOOL_THREAD_COUNT, the worker's setting for sync handler threads."""
    value = environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise FunctionsHostError(
            f"PYTHON_THREADPOOL_THREAD_COUNT={value!r} must be a positive integer"
        )
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
            host = LocalFunctionsHost(
                app,
                environ=environ,
                functions=args.functions,
                extensions=read_host_json(args.host_json),
                thread_pool_size=_thread_pool_size(environ),
                options=[
                    HttpOptions(host=args.host, port=args.port, listen_socket=http_socket),
                    BlobOptions(
                        poll_seconds=args.blob_poll_seconds,
                        # 0 means "not given", as it always has: host.json or the default.
                        concurrency=args.blob_concurrency or None,
                        persist_receipts=not args.no_blob_receipts,
                    ),
                ],
                shutdown_timeout=args.shutdown_timeout,
                quiet_timers=not args.log_idle_timers,
            )
            try:
                code = asyncio.run(_serve(host))
            except asyncio.CancelledError:
                code = 130
    except FunctionsHostError as exc:
        hint = ""
        if isinstance(exc, MissingSettingError) and not args.settings_file.exists():
            hint = f"; there is no {args.settings_file}: copy local.settings.sample.json"
            hint += " to it, or use --local-azure"
        print(f"{PROG}: {exc}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted before the host started; stopped", file=sys.stderr)
        return 130
    if code:
        # Threads running sync handlers cannot be interrupted and would block interpreter exit.
        logging.shutdown()
        os._exit(code)
    return code


@contextlib.contextmanager
def local_azure_settings() -> Iterator[dict[str, str]]:
    """The `--local-azure` hook: start Azurite and the simulator, yield their app settings."""
    # Imported here so the host works (without --local-azure) when the simulator is absent.
    from scripts.local_azure import local_azure  # noqa: PLC0415

    with local_azure() as running:
        settings = running.app_settings(HOSTING_CONFIG_FILE=DEV_HOSTING_FILE)
        del settings["FINE_TUNED_MODEL"]  # the file declares the models
        declared = Path(__file__).resolve().parents[2] / DEV_HOSTING_FILE
        for line in what_dev_serves(declared, settings["INPUT_CONTAINER"]):
            logger.info("%s", line)
        yield settings


# The hosted models `make dev` serves: the demo's two, so its documents and profiles work here.
DEV_HOSTING_FILE = "scripts/dev.hosting.toml"


def what_dev_serves(path: Path, input_container: str) -> list[str]:
    """The models and profiles of a hosted-models file, said plainly for the start of the log."""
    with path.open("rb") as handle:
        declared = tomllib.load(handle)
    models = declared.get("models", {})
    default_model = declared.get("default_model")
    profiles = {name: spec.get("model") for name, spec in declared.get("profiles", {}).items()}
    if default_model:
        profiles.setdefault("default", default_model)
    listed_models = ", ".join(
        f"{name} (deployment {spec.get('deployment')})" for name, spec in models.items()
    )
    listed_profiles = ", ".join(f"{name} -> {model}" for name, model in profiles.items())
    return [
        f"Hosted models ({DEV_HOSTING_FILE}, as in make demo): {listed_models}",
        f"Profiles -> model: {listed_profiles}. Upload to {input_container}/<profile>/<file> "
        'or POST /api/jobs with "profile"; a document naming none uses "default".',
    ]
