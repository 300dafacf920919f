"""Hosting cost: what deployments were billed, at which prices."""
