"""What a user reads points only at files in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_refers_to_files_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    this = Path(__file__).relative_to(ROOT).as_posix()
    outside = "../" + "shared"  # spelled apart so this file does not match itself
    found = [
        name
        for name in tracked
        if name != this
        and (ROOT / name).is_file()
        and outside in (ROOT / name).read_text(encoding="utf-8", errors="ignore")
    ]
    assert found == []
