"""Shared fixtures. Every test run gets its own ROS_DOMAIN_ID, so parallel runs
on one machine (or one network) never hear each other's nodes."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

if "SNN_TEST_DOMAIN_FIXED" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(10, 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from snn_autonomy.paths import data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def recordings() -> Path:
    """The real recordings directory (../shared/data); missing data is a failure, not a skip."""
    d = data_dir()
    if d is None:
        pytest.fail("recordings not found: set SNN_AUTONOMY_DATA or provide ../shared/data (see README)")
    return d


@pytest.fixture(scope="session")
def evt3_bag(recordings: Path) -> Path:
    return recordings / "evt3_trigger_bag"


@pytest.fixture(scope="session")
def raw_files(recordings: Path) -> dict:
    return {p.name: p for p in sorted((recordings / "raw").glob("*.raw"))}


@pytest.fixture(scope="session")
def open_floor_world(tmp_path_factory) -> str:
    """The default world with one robot at (1, 4) heading +x: about 2 m of open floor ahead."""
    import yaml

    from snn_autonomy.paths import config_path

    doc = yaml.safe_load(config_path("world_default.yaml").read_text())
    doc["world"]["robots"].update(count=1, start_poses=[[1.0, 4.0, 0.0]])
    path = tmp_path_factory.mktemp("world") / "open_floor.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)
