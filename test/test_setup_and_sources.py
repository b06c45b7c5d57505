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


def test_live_cameras_without_a_camera_or_library_say_what_is_missing():
    """dv-processing is installed with the package (AEDAT4 files); no camera is connected here,
    and OpenEB is not installed: each says so."""
    assert available_backends() == ("dv_processing",)
    with pytest.raises(SourceUnavailable, match="needs the Python package metavision_core"):
        LiveCameraSource("metavision")
    with pytest.raises(SourceUnavailable, match="unknown camera backend"):
        LiveCameraSource("v4l2")
    with pytest.raises(SourceUnavailable, match="no iniVation camera could be opened") as err:
        next(iter(LiveCameraSource()))
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
