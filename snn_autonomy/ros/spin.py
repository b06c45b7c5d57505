"""The one `main()` body of every node: init, build, spin, clean shutdown.

Exit status 2 means a configuration error and nothing else: a bad parameter (ConfigError, or
rclpy's refusal of a value outside a declared range), a missing or corrupt model or recording
file, a bad node or topic name, DDS Security asked for but impossible. It ends the process with
one fatal log line, no traceback, and the launcher does not respawn it (it would fail again).
Any other exception while the node is built is a bug: Python's traceback and exit status 1,
and the launcher respawns the node where the plan says so. Ctrl-C, SIGTERM and external
shutdown end it quietly with status 0.

Why the signals are caught here: rclpy chains its SIGINT handler to Python's, which raises
KeyboardInterrupt at whatever bytecode the main thread is running. While the executor takes
a message, that is inside rclpy's conversion of the message to Python, and rclpy then
reports a RuntimeError ("Unable to convert call argument '0' to Python object") before its
own signal thread has shut the context down: the node would exit 1 on a plain Ctrl-C. So
once the node spins, a signal only records a stop request, and the loop ends between two
callbacks; a second signal during the shutdown (Ctrl-C twice, a launcher's SIGINT then
SIGTERM) changes nothing. What bounds the shutdown instead is a deadline from the stop request
(SHUTDOWN_DEADLINE_S): a node still alive then writes every thread's stack to its log and
exits 1.
"""
from __future__ import annotations

import faulthandler
import gc
import os
import signal
import sys
import threading
import time
from typing import Callable, List, Optional

import rclpy
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ..config import ConfigError
from ..events.errors import EventFormatError
from ..launcher import STACK_DUMP_SIGNAL
from ..perception.errors import ModelFileError
from ..realtime import PRIORITY_MAX, SCHEDULING_TASK, SchedulingResult, end_startup_boost, set_fifo_priority
from .diagnostics import OK, WARN
from .security import SecurityError, check_security

REALTIME_PARAM = "realtime_priority"
STOP_POLL_S = 0.1     # longest wait between two looks at the stop request
# A signal may be taken by any thread that does not block it (rclpy's own signal thread, a
# library's worker): Python's C handler then only marks it, and a main thread blocked in a
# system call (a sleep, a read) runs the Python handler when that call returns, which may be
# never. Seen once in 40 start-ups on a loaded machine. A watcher thread hears every signal
# through Python's wakeup fd; if the main thread has not run the handler this long after, it
# sends the main thread NUDGE_SIGNAL, whose no-op handler interrupts the call (EINTR), and
# Python then runs the pending handler. SIGURG's default action is to be ignored, so no one
# else's use of it changes.
NUDGE_AFTER_S = 0.2
NUDGE_SIGNAL = signal.SIGURG
# From the stop request to the process's end. A node shuts down in about a second (the world
# node gives its physics thread up to 2 s, a Lava-backed one its worker's orderly close); one
# that has not after this long is stuck (a callback that does not return, a DDS destructor
# waiting on a lock: rclpy's shutdown hangs are a known class), and deaf to further signals.
# It then writes every thread's stack to its log and exits 1 on its own, before a launcher
# kills it blind: ours sends SIGKILL 13 s after SIGINT, `ros2 launch` 10 s.
SHUTDOWN_DEADLINE_S = 8.0

# Configuration errors. rclpy raises ParameterException (a value outside a parameter's declared
# range or of the wrong type) and NameValidationException (a bad node or topic name) while the node
# declares its parameters and topics. ValueError and RuntimeError are not here: from a constructor
# they are bugs, and a bug gets its traceback.
CONFIG_ERRORS = (ConfigError, EventFormatError, ModelFileError, FileNotFoundError, ParameterException,
                 NameValidationException)


class ShutdownSignals:
    """SIGINT and SIGTERM as a stop request, from start-up to the process's exit. Installed before
    `rclpy.init`, so that rclpy's own handlers (which wake the executor and shut the context
    down) chain to it. Until the node spins, a signal interrupts start-up as Ctrl-C always does.
    Afterwards it is only recorded, and so is a second one while the node shuts down (Ctrl-C
    twice, or a launcher's SIGINT then SIGTERM); a third ends the process at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    FORCE_AFTER = 3

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self.count = 0
        self.spinning = False
        self.deadline_armed = False
        for sig in self.SIGNALS:
            signal.signal(sig, self._on_signal)
        self._main = threading.get_ident()       # built in the main thread, as signal handlers must be
        self._heard = 0                            # stop signals seen by the watcher
        signal.signal(NUDGE_SIGNAL, lambda *_: None)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._nudge_main, args=(read_fd,), name="stop-signal-nudge", daemon=True).start()
        # STACK_DUMP_SIGNAL writes every thread's Python stack to stderr (the node's log) from the
        # C signal handler, so it works even where the main thread is stuck in native code and
        # deaf to SIGINT: the launcher sends it before it kills a node that would not stop
        faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)

    def _on_signal(self, signum: int, frame) -> None:
        self.received = signum
        self.count += 1
        self.arm_deadline()
        if self.count >= self.FORCE_AFTER:
            os._exit(128 + signum)     # the status of a process killed by that signal
        if self.count == 1 and not self.spinning:
            raise KeyboardInterrupt

    def _nudge_main(self, read_fd: int) -> None:
        """Wake a main thread that has not run the stop signal's handler (see NUDGE_SIGNAL). Once the
        node spins, its executor's wait is woken by rclpy and looks at the stop request itself."""
        stops = {int(sig) for sig in self.SIGNALS}
        while True:
            heard = sum(b in stops for b in os.read(read_fd, 64))
            if not heard:
                continue
            self._heard += heard
            time.sleep(NUDGE_AFTER_S)
            if self.count < self._heard and not self.spinning:
                signal.pthread_kill(self._main, NUDGE_SIGNAL)

    def arm_deadline(self) -> None:
        """Start the shutdown deadline (once): faulthandler's watchdog is a C thread, so it fires
        even where the main thread never comes back to Python."""
        if not self.deadline_armed:
            self.deadline_armed = True
            faulthandler.dump_traceback_later(SHUTDOWN_DEADLINE_S, exit=True)

    def explain(self, context_ok: bool) -> bool:
        """Whether an error raised while spinning is part of a shutdown: a stop request came, or
        rclpy's own signal handler shut the context down (a callback that was publishing, or the
        executor's next wait, then fails with "context is not valid")."""
        return self.received is not None or not context_ok

    def ignore_further(self) -> None:
        """Once the node is shut down, what is left is the interpreter's exit, during which Python
        restores the default actions: a late signal would then kill the process with a signal
        status instead of letting it end with its own."""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


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
    signals = ShutdownSignals()
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        try:
            node = factory()
            end_startup_boost()
            scheduling = set_fifo_priority(_realtime_priority(node))
        except CONFIG_ERRORS as exc:
            if signals.received is not None or not rclpy.ok():   # SIGINT/SIGTERM while starting: a shutdown
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
        signals.spinning = True
        # rclpy's signal handler wakes the executor's wait, so a stop request is seen at once; the
        # timeout bounds the wait where that wake-up does not come (seen once: a SCHED_FIFO robot
        # node on a saturated machine ignored SIGINT for 11 s), at a wake-up every 100 ms
        while signals.received is None and node.context.ok():
            executor.spin_once(timeout_sec=STOP_POLL_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # After a stop request, or once SIGINT/SIGTERM has shut the context down (a callback
        # that was publishing then fails with "context is invalid"), an error is part of the
        # shutdown; anything else is not (nor any other error while the node was being built).
        if not signals.explain(node.context.ok() if node is not None else rclpy.ok()):
            raise
    finally:
        signals.arm_deadline()     # also where the context was shut down without a signal
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        signals.ignore_further()
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
