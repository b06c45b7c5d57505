"""Set-up failures name their step; unavailable sources say what to install."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from snn_autonomy.sensors.driver import LiveCameraSource, SourceUnavailable, available_backends


def test_setup_names_the_failing_step_and_its_cause(tmp_path):
    env = dict(os.environ, SNN_PYTHON=str(tmp_path / "no-such-python"))
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "setup_env.py"), "--venv", str(tmp_path / "venv"),
                        "--no-lava"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1
    assert "[setup 1/8] venv: FAILED" in p.stdout
    assert "no Python 3.10-3.12 found" in p.stdout and "SNN_PYTHON" in p.stdout


@pytest.mark.skipif(bool(available_backends()), reason="a camera library is installed here")
def test_live_camera_without_a_library_names_the_packages():
    with pytest.raises(SourceUnavailable, match="metavision_core.*dv-processing"):
        LiveCameraSource()
    with pytest.raises(SourceUnavailable, match="needs the Python package dv-processing"):
        LiveCameraSource("dv_processing")
