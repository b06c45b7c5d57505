"""snn_autonomy: an ament_python package that also installs with pip."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "snn_autonomy"

# ROS 2 node executables (`ros2 run snn_autonomy <name>`); each is a thin
# wrapper in snn_autonomy/ros/ with its own main().
NODES = {
    "world": "snn_autonomy.ros.world_node:main",
    "event_sensor": "snn_autonomy.ros.event_sensor_node:main",
    "perception": "snn_autonomy.ros.perception_node:main",
    "control": "snn_autonomy.ros.control_node:main",
    "attention": "snn_autonomy.ros.attention_node:main",
    "robot": "snn_autonomy.ros.robot_node:main",
    "coordinator": "snn_autonomy.ros.coordinator_node:main",
    "fleet_agent": "snn_autonomy.ros.fleet_agent_node:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    python_requires=">=3.10",
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    include_package_data=True,
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="snn_autonomy maintainers",
    maintainer_email="maintainers@snn-autonomy.dev",
    description="Event-camera sensing-to-action runtime with early-exit spiking neural networks.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [f"{PACKAGE.replace('_', '-')}={PACKAGE}.cli:main"]
        + [f"{name}={target}" for name, target in NODES.items()],
    },
)
