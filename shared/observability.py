"""Structured log fields (job, model, deployment, hold) and the export to Application Insights.

Every log record made while a job or a deployment is being worked on carries the ids as record
attributes (`job_id`, `model`, `deployment`, `hold_id`), whichever module logged it: a record
factory copies them from a context variable that `log_fields()` sets around the work. With
OpenTelemetry on (host.json `telemetryMode`, `APPLICATIONINSIGHTS_CONNECTION_STRING` and the
distro configured by `configure_telemetry`), record attributes become custom dimensions in
Application Insights, so a query can follow one job or one deployment across instances.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from typing import Any

from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

LOG_FIELDS = ("job_id", "model", "deployment", "hold_id")
# Pairs, not a dict: the default is shared by every context and must not be mutable.
_fields: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "log_fields", default=()
)
_installed = False


@contextlib.contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    """Add fields to every log record made inside the block (None leaves a field unset)."""
    merged = dict(_fields.get())
    merged.update({key: value for key, value in fields.items() if value is not None})
    token = _fields.set(tuple(merged.items()))
    try:
        yield
    finally:
        _fields.reset(token)


def current_log_fields() -> dict[str, str]:
    return dict(_fields.get())


def install_log_fields() -> None:
    """Make every record carry the current fields (once per process; idempotent)."""
    global _installed  # noqa: PLW0603 - one record factory per process
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        # Set before `extra=` is applied, so these names are for log_fields() only: logging
        # refuses an `extra` that would overwrite a record attribute.
        for key, value in _fields.get():
            setattr(record, key, value)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def configure_telemetry(credential: TokenCredential | None) -> bool:
    """Send logs to Application Insights with their fields as custom dimensions, if configured.

    Only when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set (it is in Azure, never locally).
    The credential authenticates the export, since the Bicep turns local auth off. Returns
    whether the exporter was configured.
    """
    if not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return False
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415
    except ImportError:  # pragma: no cover - it is in requirements.txt
        logger.warning("azure-monitor-opentelemetry is not installed; logs keep no dimensions")
        return False
    # The app's own loggers only: the host already reports invocations and its own logs.
    configure_azure_monitor(credential=credential, logger_name="shared")
    return True
