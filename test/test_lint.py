"""Static checks: no unused imports or names, no syntax-level mistakes."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(ROOT / ".venv" / "bin")) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed; run make setup")
    p = subprocess.run([ruff, "check", "snn_autonomy", "test", "tools"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
