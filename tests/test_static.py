"""Static checks run by the test command: ruff (lint + format) and mypy, configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args[2:])} failed:\n{result.stdout}\n{result.stderr}"


def test_ruff_lint() -> None:
    _assert_clean(_run("ruff", "check", "--no-cache", "."))


def test_ruff_format() -> None:
    _assert_clean(_run("ruff", "format", "--check", "--no-cache", "."))


@pytest.mark.slow
def test_mypy() -> None:
    # The cache lives in .mypy_cache (gitignored) so reruns take seconds; files and options come from pyproject.toml.
    _assert_clean(_run("mypy", "--cache-dir", str(ROOT / ".mypy_cache")))
