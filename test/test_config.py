"""The config loader: typed, validated, and every error names key, value and expectation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple

import pytest

from snn_autonomy.config import ConfigError, from_dict, load, spec, to_dict


@dataclass(frozen=True)
class Cam:
    width: int = spec(128, lo=1, hi=2048, help="image width", unit="px")
    fov_deg: float = spec(90.0, lo=1.0, hi=179.0)
    mode: Literal["rgb", "mono"] = "mono"


@dataclass(frozen=True)
class Robot:
    name: str
    start: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera: Cam = field(default_factory=Cam)
    tags: List[str] = field(default_factory=list)
    budget_j: Optional[float] = None
    extras: Dict[str, float] = field(default_factory=dict)
    ratio: float | None = None

    def validate(self) -> None:
        if self.name == "forbidden":
            raise ConfigError("name: 'forbidden' is reserved")


def test_valid_nested_config():
    r = from_dict({"name": "r0", "start": [1, 2, 0.5], "camera": {"width": 64}, "tags": ["a"],
                   "extras": {"k": 1}, "ratio": 0.5}, Robot)
    assert r.camera == Cam(width=64) and r.start == (1.0, 2.0, 0.5) and r.extras == {"k": 1.0}
    assert from_dict(to_dict(r), Robot) == r


@pytest.mark.parametrize("data,message", [
    ({"name": "r", "camra": {}}, "unknown key camra (expected one of: budget_j, camera"),
    ({"name": "r", "camera": {"width": 0}}, "camera.width: 0 is below the minimum 1 (image width, px)"),
    ({"name": "r", "camera": {"width": "wide"}}, "camera.width: expected an integer, got 'wide'"),
    ({"name": "r", "camera": {"mode": "ir"}}, "camera.mode: 'ir' is not one of 'rgb', 'mono'"),
    ({"name": "r", "start": [1, 2]}, "start: expected 3 items, got 2"),
    ({"name": "r", "budget_j": float("nan")}, "budget_j: expected a finite number"),
    ({"name": "r", "camera": {"width": True}}, "camera.width: expected an integer, got True"),
    ({}, "name: required"),
    ({"name": "forbidden"}, "'forbidden' is reserved"),
])
def test_errors_name_key_value_and_expectation(data, message):
    with pytest.raises(ConfigError) as exc:
        from_dict(data, Robot)
    assert message in str(exc.value)


def test_yaml_file_errors_name_the_file(tmp_path):
    p = tmp_path / "robot.yaml"
    p.write_text("robot:\n  name: r\n  camera: {fov_deg: 500}\n")
    with pytest.raises(ConfigError, match=r"robot.yaml: robot.camera.fov_deg: 500.0 is above the maximum 179.0"):
        load(p, Robot, section="robot")
    p.write_text("robot: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load(p, Robot, section="robot")
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "missing.yaml", Robot)


def test_a_file_that_extends_another_names_only_what_it_changes(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "robot.yaml").write_text(
        "robot:\n  name: r\n  tags: [a, b]\n  camera: {width: 64, fov_deg: 90}\n")
    wide = tmp_path / "wide.yaml"
    wide.write_text("extends: base/robot.yaml\nrobot:\n  tags: [c]\n  camera: {fov_deg: 140}\n")
    r = load(wide, Robot, section="robot")
    # mappings merge key by key; a list replaces the base's
    assert (r.name, r.tags, r.camera.width, r.camera.fov_deg) == ("r", ["c"], 64, 140.0)
    # a chain: the settings of the nearest file win
    (tmp_path / "wider.yaml").write_text("extends: wide.yaml\nrobot: {camera: {fov_deg: 170}}\n")
    assert load(tmp_path / "wider.yaml", Robot, section="robot").camera == Cam(64, 170.0)
    # a file's errors still name it; a missing base or a cycle is named too
    wide.write_text("extends: base/robot.yaml\nrobot: {camera: {fov_deg: 500}}\n")
    with pytest.raises(ConfigError, match=r"wide.yaml: robot.camera.fov_deg: 500.0 is above the maximum"):
        load(wide, Robot, section="robot")
    wide.write_text("extends: base/nothing.yaml\nrobot: {name: r}\n")
    with pytest.raises(ConfigError, match="cannot read config .*nothing.yaml"):
        load(wide, Robot, section="robot")
    wide.write_text("extends: wider.yaml\nrobot: {name: r}\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load(wide, Robot, section="robot")
    wide.write_text("extends: [base/robot.yaml]\nrobot: {name: r}\n")
    with pytest.raises(ConfigError, match="is not a file name"):
        load(wide, Robot, section="robot")
