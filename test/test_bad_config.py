"""Invalid configuration values given to real node processes: each refuses to start, with
exit status 2 and one line that names the parameter (never a traceback, never a silent exit 0)."""
from __future__ import annotations

import pytest

from ros_helpers import CONTROL, SENSOR, WORLD, NodeProcess

CASES = [
    (CONTROL, {"watchdog.deadline_s": -1.0}, "watchdog.deadline_s"),          # outside its declared range
    (CONTROL, {"limits.max_linear_mps": "fast"}, "limits.max_linear_mps"),     # wrong type
    (SENSOR, {"dvs.contrast_threshold": 5.0}, "dvs.contrast_threshold"),
    (WORLD, {"odom_rate_hz": "often"}, "odom_rate_hz"),
    (WORLD, {"diagnostic_updater.period": -1.0}, "diagnostic_updater.period"),
    (WORLD, {"realtime_priority": 100}, "realtime_priority"),                # SCHED_FIFO is 1..99
]


@pytest.mark.parametrize("module,params,name", CASES, ids=[c[2] for c in CASES])
def test_invalid_parameter_value_is_exit_2_with_one_line(module, params, name):
    node = NodeProcess(module, params, namespace="/bad_config").start()
    try:
        node.proc.wait(60)
    finally:
        code = node.stop()
    log = node.log()
    assert code == 2, log[-2000:]
    assert "Traceback" not in log, log[-2000:]
    fatal = [ln for ln in log.splitlines() if "cannot start" in ln]
    assert len(fatal) == 1 and name in fatal[0], log[-2000:]
