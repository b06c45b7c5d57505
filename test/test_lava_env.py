"""The Python 3.10 Lava side environment, where set-up could create it."""
from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT

LAVA_PY = ROOT / ".venv-lava" / "bin" / "python"

pytestmark = pytest.mark.skipif(not LAVA_PY.exists(), reason="no Python 3.10 on this machine: no Lava environment")

SCRIPT = """
import sys
import numpy as np
from lava.magma.core.run_configs import Loihi2SimCfg
from snn_autonomy.events import make_decoder, encode
from snn_autonomy.events.synthetic import edge_stream
assert sys.version_info[:2] == (3, 10), sys.version
b = edge_stream(5000, width=320, height=240, seed=1)
out = make_decoder("evt3", 320, 240).decode(encode(b, "evt3"))
assert np.array_equal(out.events, b.events)
print("ok", np.__version__)
"""


def test_lava_env_runs_lava_and_the_event_core():
    p = subprocess.run([str(LAVA_PY), "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("ok 1.")  # numpy < 2, as Lava 0.10 requires
