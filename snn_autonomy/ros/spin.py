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
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ..config import ConfigError
from ..events.errors import EventFormatError
from .security import SecurityError, check_security

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


def exit_with(code: int) -> None:
    if code:
        sys.exit(code)
