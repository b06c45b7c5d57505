"""Fleet coordination without ROS: patrol regions, optimal assignment, liveness, shared detections.

The ROS nodes (`ros/coordinator_node.py`, `ros/fleet_agent_node.py`) only convert messages and
drive these classes with the node's clock, so every fleet decision is unit-tested here directly.
"""
