"""Clock jumps of a node's clock (use_sim_time and a simulator reset or fast-forwarded)."""
from __future__ import annotations

import math
from typing import Callable

from rclpy.clock import JumpHandle, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.node import Node


def on_clock_jumps(node: Node, threshold_s: float, callback: Callable[[float, float], None]) -> JumpHandle:
    """Call `callback(now_s, delta_s)` after the node's clock jumps by more than `threshold_s` either
    way, or switches between system and ROS time. Keep the handle: dropping it unregisters the callback.

    Under use_sim_time the clock reads 0 until the first /clock message: that first step is the clock
    starting, not a jump. Jump callbacks run in the thread that takes /clock, the node's executor."""
    def post(jump: TimeJump) -> None:
        now_ns, delta_ns = node.get_clock().now().nanoseconds, jump.delta.nanoseconds
        if now_ns - delta_ns != 0:
            callback(now_ns * 1e-9, delta_ns * 1e-9)

    if not (math.isfinite(threshold_s) and threshold_s > 0.0):
        raise ValueError(f"clock_jump_threshold_s must be a positive number of seconds, got {threshold_s}")
    t = Duration(nanoseconds=max(1, int(threshold_s * 1e9)))
    return node.get_clock().create_jump_callback(
        JumpThreshold(min_forward=t, min_backward=Duration(nanoseconds=-t.nanoseconds)), post_callback=post)
