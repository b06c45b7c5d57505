"""The README's robot install: a colcon workspace built from this tree (the interface packages and
snn_autonomy), sourced, with the console scripts, launch files, configuration and models where
`ros2 run` and `ros2 launch` look for them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def _copy_tracked_tree(dest: Path) -> None:
    """The working tree's tracked files (what a clone holds), not build outputs or the venv."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def test_colcon_builds_sources_and_installs_the_package(tmp_path):
    venv_bin = Path(sys.executable).parent
    colcon = venv_bin / "colcon"
    assert colcon.exists(), "colcon is installed by the set-up (requirements/build.txt)"
    ws = tmp_path / "ws"
    src = ws / "src" / "snn_autonomy"
    _copy_tracked_tree(src)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "AMENT_PREFIX_PATH": str(venv_bin.parent)}
    # the README's command: the interfaces sit inside the package's tree, where colcon's
    # discovery (which stops at a package) does not look by itself
    build = subprocess.run([str(colcon), "build", "--base-paths", "src", "src/snn_autonomy/interfaces",
                            "--cmake-args", "-DBUILD_TESTING=OFF"], cwd=ws, env=env, capture_output=True,
                           text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "3 packages finished" in build.stdout, build.stdout[-2000:]
    install = ws / "install"
    lib = install / "snn_autonomy" / "lib" / "snn_autonomy"
    share = install / "snn_autonomy" / "share" / "snn_autonomy"
    for exe in ("world", "event_sensor", "perception", "control", "attention", "robot", "fleet_agent",
                "coordinator", "snn-autonomy"):
        assert os.access(lib / exe, os.X_OK), f"{exe} not under lib/snn_autonomy"
    for f in ("launch/sim.launch.py", "launch/robot.launch.py", "launch/gazebo.launch.py", "config/robot.yaml",
              "config/world_default.yaml", "config/rig_builtin.yaml", "models/perception_default.npz",
              "models/perception_default.json", "package.xml"):
        assert (share / f).is_file(), f"{f} not under share/snn_autonomy"
    # sourced, the workspace's package and messages are the ones imported, and its CLI runs
    probe = ("import snn_autonomy, snn_autonomy_msgs.msg, event_camera_msgs.msg; "
             "print(snn_autonomy.__file__); print(snn_autonomy_msgs.msg.__file__)")
    run = subprocess.run(["bash", "-c", f"source install/setup.bash && {sys.executable} -c '{probe}' && "
                                        f"{lib / 'snn-autonomy'} events info --help >/dev/null && echo ran"],
                         cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    paths = run.stdout.split()
    assert paths[0].startswith(str(install)) and paths[1].startswith(str(install)) and paths[-1] == "ran", run.stdout
