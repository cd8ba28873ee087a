"""The code stays ruff- and mypy-clean: checked on every test run, so CI enforces it.

mypy cannot follow setuptools' ``package-dir`` mapping (``frontdesk.agents`` lives in
``agents/``), so the check lays the shipped package out as it is installed, with symlinks in a
temporary folder, and type-checks ``frontdesk`` there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "workflows", "state")


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = _run(sys.executable, "-m", "ruff", "check", ".", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_code_is_ruff_formatted() -> None:
    done = _run(sys.executable, "-m", "ruff", "format", "--check", ".", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing_in_the_shipped_package(tmp_path: Path) -> None:
    package = tmp_path / "frontdesk"
    package.mkdir()
    for module in (ROOT / "frontdesk").glob("*.py"):
        (package / module.name).symlink_to(module)
    for name in PACKAGES:
        (package / name).symlink_to(ROOT / name, target_is_directory=True)
    (tmp_path / "bench").symlink_to(ROOT / "bench", target_is_directory=True)
    done = _run(
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / ".mypy_cache"),
        "-p",
        "frontdesk",
        "-p",
        "bench",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
