"""Diagnostics in the manner of diagnostic_updater: an Updater owned by a node runs
tasks on a timer and publishes a DiagnosticArray on /diagnostics.

Each task fills a DiagnosticStatus that starts as ERROR "No message was set",
so a task that forgets to report is visible. Times come from the node's clock.
"""
from __future__ import annotations

from typing import Callable, Dict, List

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor

OK, WARN, ERROR, STALE = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE


class Status:
    """What a task reports: a level, a message and key/value pairs."""

    def __init__(self) -> None:
        self.level = ERROR
        self.message = "No message was set"
        self.values: Dict[str, str] = {}

    def summary(self, level: int, message: str) -> None:
        self.level, self.message = level, message

    def merge(self, level: int, message: str) -> None:
        """Keep the worst level; join messages of non-OK reports."""
        if self.level == ERROR and self.message == "No message was set":
            self.level, self.message = level, message
            return
        if level > self.level:
            self.level = level
        if level != OK:
            self.message = message if self.message in ("", "OK") else f"{self.message}; {message}"

    def add(self, key: str, value) -> None:
        self.values[key] = str(value)

    def add_all(self, values: Dict[str, object]) -> None:
        for k, v in values.items():
            self.add(k, v)


PERIOD_PARAM = "diagnostic_updater.period"   # the name diagnostic_updater gives it
MIN_PERIOD_S, MAX_PERIOD_S = 0.01, 3600.0


class Updater:
    """Publishes its tasks' reports every `diagnostic_updater.period` seconds (a node parameter,
    default 1 s, read once at construction)."""

    def __init__(self, node, hardware_id: str = "", period_s: float = 1.0) -> None:
        self.node = node
        self.hardware_id = hardware_id or node.get_name()
        self._tasks: List[tuple] = []
        if not node.has_parameter(PERIOD_PARAM):
            node.declare_parameter(PERIOD_PARAM, float(period_s), ParameterDescriptor(
                description="seconds between two /diagnostics reports of this node",
                floating_point_range=[FloatingPointRange(from_value=MIN_PERIOD_S, to_value=MAX_PERIOD_S, step=0.0)]))
        period_s = node.get_parameter(PERIOD_PARAM).value
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(float(period_s), self.update)

    def add(self, name: str, task: Callable[[Status], None]) -> None:
        self._tasks.append((name, task))

    def update(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        prefix = self.node.get_fully_qualified_name().lstrip("/")
        for name, task in self._tasks:
            st = Status()
            try:
                task(st)
            except Exception as exc:  # a broken task must not take the node down
                st.summary(ERROR, f"diagnostic task failed: {type(exc).__name__}: {exc}")
            msg.status.append(DiagnosticStatus(
                level=st.level, name=f"{prefix}: {name}", message=st.message, hardware_id=self.hardware_id,
                values=[KeyValue(key=k, value=v) for k, v in st.values.items()]))
        self._pub.publish(msg)

    def destroy(self) -> None:
        self.node.destroy_timer(self._timer)
        self.node.destroy_publisher(self._pub)


def report_admission(st: Status, adm) -> None:
    """What a node's admission control (perception.cost_model.MeasuredAdmission) measured and
    did: the costs, the event rate it admits and why, and a WARN where it sheds or cannot help."""
    if adm.over_share:
        st.merge(WARN, f"the SNN steps alone keep this node busy {adm.fixed_load:.0%} of the time, over its share of "
                       f"{adm.cfg.busy_share:.0%}: this machine cannot take the model in real time; packets are "
                       "shed as stale")
    if adm.admitted_ev_s is not None and adm.admitted_ev_s < adm.events_per_sensor_s:
        st.merge(WARN, f"events over {adm.admitted_ev_s:,.0f} ev/s are shed at the sensor ({adm.events_per_sensor_s:,.0f} "
                       f"ev/s came in): {adm.reason}")
    if adm.contended:
        st.merge(WARN, f"decision latency p95 {adm.latency_p95_ms:.1f} ms over the {adm.cfg.decision_latency_ms:g} ms "
                       f"target while this node is busy {adm.busy:.0%} of the time, events {adm.event_share:.0%} of "
                       "that: it waits for a core (a contended machine), which fewer events would not shorten; give "
                       "it real-time priority or a core of its own")
    st.add_all(adm.diagnostics())
