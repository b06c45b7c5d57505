"""The one `main()` body of every node: init, build, spin, clean shutdown.

Configuration and environment errors (a bad parameter, a missing file or
package) end the process with a one-line fatal log and exit status 2 instead of
a traceback; Ctrl-C and external shutdown end it quietly with status 0.
"""
from __future__ import annotations

import gc
import sys
from typing import Callable, List, Optional

import rclpy
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ..config import ConfigError
from ..events.errors import EventFormatError
from ..realtime import PRIORITY_MAX, SCHEDULING_TASK, SchedulingResult, set_fifo_priority
from .diagnostics import OK, WARN
from .security import SecurityError, check_security

REALTIME_PARAM = "realtime_priority"

# a value out of a parameter's declared range or of the wrong type, a bad node or topic name:
# configuration errors too, raised by rclpy while the node declares its parameters
STARTUP_ERRORS = (ConfigError, EventFormatError, FileNotFoundError, ValueError, RuntimeError, ParameterException,
                  NameValidationException)


def spin_node(factory: Callable[[], "rclpy.node.Node"], args: Optional[List[str]] = None) -> int:
    try:   # DDS Security requested but impossible: fail closed, before any participant exists
        status = check_security(args)
    except SecurityError as exc:
        from rclpy.logging import get_logger
        get_logger("snn_autonomy").fatal(f"cannot start: {exc}")
        return 2
    if status.warning:
        from rclpy.logging import get_logger
        get_logger("snn_autonomy").warning(status.warning)
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        try:
            node = factory()
            scheduling = set_fifo_priority(_realtime_priority(node))
        except STARTUP_ERRORS as exc:
            if not rclpy.ok():   # SIGINT/SIGTERM while starting: a shutdown, not a configuration error
                return code
            rclpy.logging.get_logger("snn_autonomy").fatal(f"cannot start: {exc}")
            code = 2
            return code
        # Everything built so far (modules, model, node) lives as long as the process: move it out
        # of the garbage collector's sight, so that its full collections, which would otherwise
        # walk those objects from a callback, stay short.
        gc.collect()
        gc.freeze()
        _report_scheduling(node, scheduling)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A callback that was publishing when SIGINT/SIGTERM shut the context down
        # fails with "context is invalid": that is a normal shutdown, anything else is not
        # (and neither is any other error while the node was being built).
        if node.context.ok() if node is not None else rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _realtime_priority(node) -> int:
    """The node's `realtime_priority` parameter (0, normal scheduling, by default); rclpy
    refuses a value outside the declared range, naming the parameter."""
    if not node.has_parameter(REALTIME_PARAM):
        node.declare_parameter(REALTIME_PARAM, 0, ParameterDescriptor(
            description=f"SCHED_FIFO priority of every thread of this process, 1..{PRIORITY_MAX} "
                        "(0: normal scheduling); needs CAP_SYS_NICE or an rtprio limit",
            integer_range=[IntegerRange(from_value=0, to_value=PRIORITY_MAX, step=1)]))
    return node.get_parameter(REALTIME_PARAM).value


def _report_scheduling(node, result: SchedulingResult) -> None:
    """Once in the log and on every diagnostics update: a refused priority is a WARN, since the
    latency budgets assume it."""
    if result.requested:
        log = node.get_logger().info if result.applied else node.get_logger().warning
        log(f"scheduling: {result.describe()}")
    diag = getattr(node, "diag", None)
    if diag is None:
        return

    def task(st) -> None:
        st.summary(WARN if result.requested and not result.applied else OK, result.describe())
        st.add(REALTIME_PARAM, result.requested)
    diag.add(SCHEDULING_TASK, task)


def exit_with(code: int) -> None:
    if code:
        sys.exit(code)
