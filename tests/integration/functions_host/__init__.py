"""Tests of scripts/functions_host, one module per concern of the package."""
