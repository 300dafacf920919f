"""The host's own errors: configuration and start-up problems reported to the user in one line."""

from __future__ import annotations


class FunctionsHostError(RuntimeError):
    """A configuration or start-up problem; the message is one line meant for the user."""


class MissingSettingError(FunctionsHostError):
    """A binding needs an app setting that is not set."""
