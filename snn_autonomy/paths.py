"""Where the project finds its data, models and configuration."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "perception_default.npz"    # the shipped perception model, in models/
NODELAY_MODEL = "perception_nodelay.npz"    # the same network without synaptic delays (for NIR peers)


def data_dir() -> Optional[Path]:
    """Directory of real event recordings (holds MANIFEST.md).

    $SNN_AUTONOMY_DATA if set, else `shared/data` next to the source checkout
    (the layout of the development tree and CI); None when neither exists.
    """
    env = os.environ.get("SNN_AUTONOMY_DATA")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" / "data" for p in PACKAGE_DIR.parents[:3]]
    for c in candidates:
        if (c / "MANIFEST.md").exists():
            return c
    return None


def cache_root() -> Path:
    """Where generated data and exported graphs are kept between runs: $SNN_AUTONOMY_CACHE, else
    ~/.cache/snn_autonomy (XDG's user cache). Everything under it can be deleted at any time."""
    return Path(os.environ.get("SNN_AUTONOMY_CACHE") or Path.home() / ".cache" / "snn_autonomy")


def config_path(name: str) -> Path:
    """A shipped configuration file: `config/` of the source tree, else the ROS share dir."""
    return _shipped("config", name)


def model_path(name: str) -> Path:
    """A shipped model file: `models/` of the source tree, else the ROS share dir."""
    return _shipped("models", name)


def resolve_model(path: Union[str, Path, None] = None) -> Path:
    """`path`, or the shipped model when it is empty or None."""
    return Path(path) if path else model_path(DEFAULT_MODEL)


def _shipped(kind: str, name: str) -> Path:
    local = PACKAGE_DIR.parent / kind / name
    if local.exists():
        return local
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        shared = Path(get_package_share_directory("snn_autonomy")) / kind / name
        if shared.exists():
            return shared
    except (ImportError, PackageNotFoundError):
        pass
    return local  # the caller's open() then names the missing file
