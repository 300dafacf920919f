"""The Makefile's prerequisite checks fail with one line saying what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_check(path: str, *checks: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_prereqs.py"), *checks],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        check=False,
    )


def fake_tool(folder: Path, name: str, output: str) -> None:
    tool = folder / name
    tool.write_text(f"#!/bin/sh\necho {output}\n")
    tool.chmod(0o755)


def test_node_missing(tmp_path: Path) -> None:
    result = run_check(str(tmp_path), "node")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "node is not installed" in result.stderr


def test_npm_missing(tmp_path: Path) -> None:
    fake_tool(tmp_path, "node", "v20.1.0")
    result = run_check(str(tmp_path), "node")
    assert result.returncode == 1
    assert "npm is not installed" in result.stderr


def test_node_too_old(tmp_path: Path) -> None:
    fake_tool(tmp_path, "node", "v16.20.2")
    fake_tool(tmp_path, "npm", "8.19.4")
    result = run_check(str(tmp_path), "node")
    assert result.returncode == 1
    assert "Node.js 16.20.2 is too old" in result.stderr


def test_supported_node_passes(tmp_path: Path) -> None:
    fake_tool(tmp_path, "node", "v20.20.2")
    fake_tool(tmp_path, "npm", "11.0.0")
    result = run_check(str(tmp_path), "node", "python")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_unknown_check_is_a_usage_error(tmp_path: Path) -> None:
    result = run_check(str(tmp_path), "java")
    assert result.returncode == 2
    assert "unknown check" in result.stderr
