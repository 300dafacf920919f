"""Developer tooling: prerequisite checks, Azurite launcher, local Functions host and demo."""
