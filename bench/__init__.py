"""Benchmarks of the on-demand engine against the local Azure (see BENCHMARKS.md)."""
