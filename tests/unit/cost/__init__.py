"""Unit tests of the cost package."""
