"""Developer tooling: prerequisite checks, Azurite launcher, local runner and demo."""
