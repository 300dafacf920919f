"""Finding (and, as root, installing) the Chromium the portal's browser tests drive."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from scripts import chromium


def test_the_setting_names_the_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    monkeypatch.setenv(chromium.EXECUTABLE_SETTING, str(browser))
    assert chromium.find_chromium() is None, "not executable"
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    assert chromium.find_chromium() == browser
    assert chromium.ensure_chromium() == f"chromium: {browser}"


def test_a_missing_browser_is_not_installed_without_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(chromium.EXECUTABLE_SETTING, raising=False)
    monkeypatch.setattr(chromium, "find_chromium", lambda: None)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    said = chromium.ensure_chromium()
    assert "needs root" in said and "will skip" in said and "\n" not in said
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "no apt-get" in chromium.ensure_chromium()


def test_a_named_executable_that_is_missing_is_said_and_nothing_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(chromium.EXECUTABLE_SETTING, "/nowhere/chromium")
    monkeypatch.setattr(chromium, "_apt_get", lambda *args: pytest.fail("apt-get was run"))
    assert "is not an executable" in chromium.ensure_chromium()
    assert chromium.main() == 0, "make test goes on: the tests decide"
