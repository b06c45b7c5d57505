"""QoS profiles of the project's topics (one place, so publishers and subscribers match)."""
from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

# events, world state: high rate, newest matters, never block the sender
SENSOR = qos_profile_sensor_data
# commands and decisions: small, every one matters
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
# fleet plan: late joiners must get the latest one
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
# world state: every step matters to the renderers (their pixels remember history). A renderer
# that falls more than the depth behind misses states (counted); both the world's writer and the
# renderer's reader must hold a backlog for it to catch up instead, so both take the depth.
STATE_DEPTH = 200


def state(depth: int = STATE_DEPTH) -> QoSProfile:
    """The world state's profile with a history of `depth` states."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


STATE = state()
