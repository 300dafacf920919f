"""The simulator's settings: command-line flags, `SIM_*` environment variables, runtime changes.

Every flag `--some-name` can also come from `SIM_SOME_NAME`; a flag given on the command line
wins over the environment, which wins over the default. Timing, quota, latency and context
settings can be changed while running through `POST /admin/config` (`apply_runtime_changes`);
identity settings (account names, key, port) are fixed for the life of the process.

Every numeric setting must be finite and within bounds, from the command line as from the admin
API: a NaN time scale or an infinite quota poisons every later computation, and a huge time scale
or duration pushes simulated instants past the years `datetime` can represent (the largest
time scale, 10^6, still leaves about 70 real hours before simulated time reaches year 9999).
A bad value at start-up is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

ENV_PREFIX = "SIM_"


@dataclass
class SimulatorConfig:
    """All settings; durations are simulated seconds unless the name says `_ms` (real)."""

    host: str = "127.0.0.1"
    port: int = 0
    state_dir: Path | None = None
    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "rg-local"
    account: str = "aoai-local"
    location: str = "eastus"
    api_key: str = "local-dev-key"
    time_scale: float = 60.0
    provisioning_seconds: float = 300.0
    accepted_seconds: float = 10.0
    warmup_seconds: float = 60.0
    deletion_seconds: float = 20.0
    recreate_cooldown_seconds: float = 20.0
    poll_retry_after_seconds: float = 10.0
    quota_capacity: int = 100
    max_fine_tuned_deployments: int = 5
    hourly_rate: float = 1.70
    token_latency_ms: float = 1.0
    base_latency_ms: float = 5.0
    context_tokens: int = 128_000
    default_max_tokens: int = 1024
    max_output_tokens: int = 32_768
    seed: int = 0
    log_level: str = "INFO"

    def public_view(self) -> dict[str, Any]:
        """The settings as JSON-ready values (what `GET /admin/config` shows)."""
        view: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            view[item.name] = str(value) if isinstance(value, Path) else value
        return view


# What a running simulator may change through POST /admin/config.
RUNTIME_SETTABLE = frozenset(
    {
        "time_scale",
        "provisioning_seconds",
        "accepted_seconds",
        "warmup_seconds",
        "deletion_seconds",
        "recreate_cooldown_seconds",
        "poll_retry_after_seconds",
        "quota_capacity",
        "max_fine_tuned_deployments",
        "hourly_rate",
        "token_latency_ms",
        "base_latency_ms",
        "context_tokens",
        "default_max_tokens",
        "max_output_tokens",
    }
)


class ConfigError(ValueError):
    """A setting was unknown, not changeable at runtime, or had a bad value."""


MAX_TIME_SCALE = 1e6
# Below this, converting a simulated wait to real seconds can overflow to infinity.
MIN_TIME_SCALE = 1e-3
# About 31 years: a simulated instant plus any duration stays far inside datetime's range.
MAX_SIM_SECONDS = 1e9
MAX_TOKENS_SETTING = 100_000_000

# Bounds per runtime setting: (minimum, maximum), both inclusive.
_INT_SETTINGS: dict[str, tuple[int, int]] = {
    "quota_capacity": (0, 1_000_000_000),
    "max_fine_tuned_deployments": (0, 1_000_000),
    "context_tokens": (1, MAX_TOKENS_SETTING),
    "default_max_tokens": (1, MAX_TOKENS_SETTING),
    "max_output_tokens": (1, MAX_TOKENS_SETTING),
}
# (minimum, minimum is exclusive, maximum inclusive).
_FLOAT_SETTINGS: dict[str, tuple[float, bool, float]] = {
    "time_scale": (0.0, True, MAX_TIME_SCALE),
    "provisioning_seconds": (0.0, False, MAX_SIM_SECONDS),
    "accepted_seconds": (0.0, False, MAX_SIM_SECONDS),
    "warmup_seconds": (0.0, False, MAX_SIM_SECONDS),
    "deletion_seconds": (0.0, False, MAX_SIM_SECONDS),
    "recreate_cooldown_seconds": (0.0, False, MAX_SIM_SECONDS),
    "poll_retry_after_seconds": (0.0, False, MAX_SIM_SECONDS),
    "hourly_rate": (0.0, False, 1e6),
    # Real milliseconds: a request must still be answered within a client's patience.
    "token_latency_ms": (0.0, False, 10_000.0),
    "base_latency_ms": (0.0, False, 600_000.0),
}


def validate_runtime_changes(config: SimulatorConfig, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check `changes` against what may change at runtime; return them coerced to their types."""
    coerced: dict[str, Any] = {}
    known = {item.name for item in dataclasses.fields(config)}
    for key, value in changes.items():
        if key not in known:
            raise ConfigError(f"unknown setting '{key}'")
        if key not in RUNTIME_SETTABLE:
            raise ConfigError(f"setting '{key}' cannot be changed while the simulator runs")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"setting '{key}' must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"setting '{key}' must be a finite number, got {value!r}")
        if key in _INT_SETTINGS:
            low, high = _INT_SETTINGS[key]
            if isinstance(value, float) and not value.is_integer():
                raise ConfigError(f"setting '{key}' must be a whole number, got {value!r}")
            if int(value) < low:
                raise ConfigError(f"setting '{key}' must be at least {low}")
            if int(value) > high:
                raise ConfigError(f"setting '{key}' must be at most {high}")
            coerced[key] = int(value)
        else:
            minimum, exclusive, maximum = _FLOAT_SETTINGS[key]
            if value < minimum or (exclusive and value == minimum):
                relation = "greater than" if exclusive else "at least"
                raise ConfigError(f"setting '{key}' must be {relation} {minimum:g}")
            if value > maximum:
                raise ConfigError(f"setting '{key}' must be at most {maximum:g}")
            if key == "time_scale" and value < MIN_TIME_SCALE:
                raise ConfigError(f"setting 'time_scale' must be at least {MIN_TIME_SCALE:g}")
            coerced[key] = float(value)
    return coerced


def _env_default(name: str, fallback: Any) -> Any:
    return os.environ.get(ENV_PREFIX + name.upper(), fallback)


class _OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage dump), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_argument_parser() -> argparse.ArgumentParser:
    """Flags for `python -m simulator`; each default can come from `SIM_<NAME>`."""
    defaults = SimulatorConfig()
    parser = _OneLineErrorParser(
        prog="python -m simulator",
        description="Local Azure simulator: Cognitive Services management plane and Azure "
        "OpenAI data plane over HTTPS. Every flag can also be set as SIM_<FLAG_NAME>.",
    )

    def add(name: str, kind: type, help_text: str) -> None:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(
            flag,
            dest=name,
            type=kind,
            default=_env_default(name, getattr(defaults, name)),
            help=f"{help_text} (env {ENV_PREFIX}{name.upper()})",
        )

    add("host", str, "address to listen on")
    add("port", int, "port to listen on; 0 picks a free one")
    add("state_dir", Path, "where ca.pem is written; default a new temporary directory")
    add("subscription_id", str, "the one subscription that exists")
    add("resource_group", str, "the one resource group that exists")
    add("account", str, "the one Cognitive Services account that exists")
    add("location", str, "the account's region")
    add("api_key", str, "the data-plane api-key")
    add("time_scale", float, "simulated seconds per real second")
    add("provisioning_seconds", float, "simulated seconds from PUT to Succeeded")
    add("accepted_seconds", float, "simulated seconds in Accepted before Creating")
    add("warmup_seconds", float, "simulated seconds after Succeeded before the data plane serves")
    add("deletion_seconds", float, "simulated seconds a delete takes")
    add("recreate_cooldown_seconds", float, "simulated seconds a deleted name stays unusable")
    add("poll_retry_after_seconds", float, "simulated poll interval advertised on LROs")
    add("quota_capacity", int, "capacity units free per SKU across the account")
    add("max_fine_tuned_deployments", int, "fine-tuned deployments allowed per account")
    add("hourly_rate", float, "hosting price per deployment-hour")
    add("token_latency_ms", float, "real milliseconds of latency per output token")
    add("base_latency_ms", float, "real milliseconds of latency per chat request")
    add("context_tokens", int, "model context window in tokens")
    add("default_max_tokens", int, "max_tokens assumed when a request gives none")
    add("max_output_tokens", int, "largest max_tokens the model accepts (its maxOutputToken)")
    add("seed", int, "seed for fault-rate randomness")
    add("log_level", str, "logging level")
    return parser


def parse_config(argv: Sequence[str] | None = None) -> SimulatorConfig:
    """Build the configuration from flags and `SIM_*` variables; exits 2 on bad input."""
    parser = build_argument_parser()
    # argparse runs `type` over string defaults too, so SIM_* values arrive converted.
    config = SimulatorConfig(**vars(parser.parse_args(argv)))
    problems = _startup_problems(config)
    if problems:
        parser.error("; ".join(problems))
    return config


def _startup_problems(config: SimulatorConfig) -> list[str]:
    problems: list[str] = []
    if not 0 <= config.port <= 65535:
        problems.append(f"--port must be 0..65535, got {config.port}")
    runtime_values = {name: getattr(config, name) for name in RUNTIME_SETTABLE}
    try:
        validate_runtime_changes(config, runtime_values)
    except ConfigError as error:
        problems.append(f"invalid start-up value: {error}")
    if not config.api_key:
        problems.append("--api-key must not be empty")
    if config.log_level.upper() not in logging.getLevelNamesMapping():
        problems.append(f"--log-level {config.log_level!r} is not a logging level")
    return problems
