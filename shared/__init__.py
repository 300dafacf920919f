"""The on-demand hosting engine: settings, pure decisions, adapters and the composition root."""
