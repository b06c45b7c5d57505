"""package.xml declares every dependency the code imports (what rosdep installs on a robot)."""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET

from conftest import ROOT

# import name -> rosdep key
ROSDEP = {
    "numpy": "python3-numpy", "numba": "python3-numba", "scipy": "python3-scipy", "yaml": "python3-yaml",
    "rich": "python3-rich", "matplotlib": "python3-matplotlib", "torch": "python3-pytorch-pip",
    "onnx": "python3-onnx-pip", "onnxruntime": "python3-onnxruntime-pip", "rosbags": "python3-rosbags-pip",
    "mcap": "python3-mcap-pip", "mcap_ros2": "python3-mcap-ros2-support-pip", "nir": "python3-nir-pip",
}
# Optional at run time (benchmarks, hardware back ends): imported inside functions behind a check.
OPTIONAL = {"snntorch", "norse", "spikingjelly", "lava", "pynvml", "metavision_sdk_core",
            "metavision_hal", "metavision_core", "dv_processing", "launch", "launch_ros", "ros_gz_bridge"}


def _imports():
    for path in (ROOT / "snn_autonomy").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                yield path, n.split(".")[0]


def test_every_import_is_declared():
    xml = ET.parse(ROOT / "package.xml").getroot()
    declared = {e.text for tag in ("depend", "exec_depend") for e in xml.iter(tag)}
    missing = set()
    for path, mod in _imports():
        if mod in sys.stdlib_module_names or mod == "snn_autonomy" or mod in OPTIONAL:
            continue
        key = ROSDEP.get(mod, mod)  # ROS packages import under their own names
        if key not in declared:
            missing.add(f"{mod} ({path.relative_to(ROOT)}) -> <exec_depend>{key}</exec_depend>")
    assert not missing, "package.xml lacks:\n" + "\n".join(sorted(missing))
