"""Fused mode: sensor filter -> perception -> control -> attention of one robot, in one
process, with direct calls and no serialisation (the split mode runs the same stages as
nodes over topics; both use these classes).

`FusedAgent.on_events` takes the camera's raw events and returns the velocity command
to apply (or None when no decision completed); `on_tick` is the watchdog's clock between
decisions. The control stage is the same `ControlCore` the split `control` node drives:
odometry, assignments and clock jumps go to `agent.control` directly. Event time is the
sensor's (microseconds); control time is whatever clock the caller runs on, in seconds
(a node's ROS clock; sensor time in a headless simulation).

With `admission` (a node at the world's pace; not a headless simulation, which runs as fast as
it can and whose wall time says nothing of the robot's), the loop's own work is measured
(perception/cost_model.py) and the event-rate cap it affords applies to the filter, through
attention where it is on, directly where it is off.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Dict, Iterable, Optional, Sequence, Tuple

from ..attention.policy import AttentionConfig, AttentionDecision, AttentionInputs, AttentionPolicy
from ..control.core import ControlCore, Twist2
from ..control.frames import Pose2
from ..control.limits import LimitsConfig
from ..control.policy import PatrolConfig
from ..control.watchdog import WatchdogConfig
from ..events.batch import EventBatch
from ..perception.cost_model import AdmissionConfig, MeasuredAdmission
from ..perception.heads import check_field_of_view
from ..perception.runtime import Decision, StreamingPerception
from ..perception.sectors import SectorView
from ..perception.temporal_prior import OdometrySpeed
from ..sensors.controls import EventFilter


@dataclass
class LoopStats:
    decisions: int = 0
    steps: int = 0
    events_in: int = 0          # events the camera produced
    events_used: int = 0        # events the SNN consumed (after the sensor's ROI / cap and the perception ROI)
    synaptic_ops: float = 0.0
    decisions_by_mode: Counter = field(default_factory=Counter)   # by the attention budget in force
    steps_by_mode: Counter = field(default_factory=Counter)
    events_by_mode: Counter = field(default_factory=Counter)      # events the SNN consumed
    synops_by_mode: Counter = field(default_factory=Counter)

    @classmethod
    def total(cls, stats: Iterable["LoopStats"]) -> "LoopStats":
        """The sum of several loops' figures (a fleet's)."""
        out = cls()
        for s in stats:
            for f in fields(cls):
                setattr(out, f.name, getattr(out, f.name) + getattr(s, f.name))
        return out


def budget_costs(s: LoopStats) -> Dict[str, Dict[str, float]]:
    """What each attention budget cost: its share of the decisions, steps per decision, and
    events and synaptic operations per step (per step the network's work follows the events it
    is given, so steps alone do not say where the work goes)."""
    out: Dict[str, Dict[str, float]] = {}
    for mode, n in sorted(s.decisions_by_mode.items()):
        steps = max(s.steps_by_mode[mode], 1)
        out[mode] = {"fraction": round(n / max(s.decisions, 1), 3), "steps_per_decision": round(steps / n, 2),
                     "events_per_step": round(s.events_by_mode[mode] / steps, 1),
                     "synops_per_step": round(s.synops_by_mode[mode] / steps, 1)}
    return out


class FusedAgent:
    def __init__(self, perception: StreamingPerception, width: int, height: int, hfov_deg: float,
                 attention: bool = True, patrol: PatrolConfig = PatrolConfig(),
                 limits: LimitsConfig = LimitsConfig(), watchdog: WatchdogConfig = WatchdogConfig(),
                 attention_cfg: AttentionConfig = AttentionConfig(), agent_id: str = "",
                 origin: Pose2 = (0.0, 0.0, 0.0), admission: Optional[AdmissionConfig] = None) -> None:
        check_field_of_view(perception.head, hfov_deg)
        self.perception = perception
        self.admission = (MeasuredAdmission.for_model(admission, perception.bin_us)
                          if admission is not None else None)
        self.filter = EventFilter(width, height)
        self.control = ControlCore(origin, patrol, limits, watchdog)
        self.attention = (AttentionPolicy(width, height, hfov_deg, perception.model_t_max, perception.threshold,
                                          attention_cfg) if attention else None)
        self.agent_id = agent_id
        self.stats = LoopStats()
        self.last_decision: Optional[Decision] = None
        self.last_decisions: list = []    # every decision the last on_events completed
        self.last_attention: Optional[AttentionDecision] = None
        self.shared: Sequence[Tuple[float, float, float, str]] = ()
        self._speed = OdometrySpeed()     # what the temporal prior's hold judges by

    def on_events(self, batch: EventBatch, now_us: int, now_s: float) -> Optional[Twist2]:
        """Events up to sensor time `now_us`; the command when a decision completed, acted on at
        control time `now_s` (the clock `on_tick` runs on)."""
        self.stats.events_in += len(batch)
        if self.admission is not None:
            t0, steps = time.perf_counter(), self.perception.steps
        filtered = self.filter.apply(batch)
        # the temporal prior turns with the robot, and holds its ranges while the robot does not drive;
        # with odometry gone silent it does neither (the pose is the last known, not the robot's)
        if self.control.odometry_stale(now_s):
            self.perception.forget_odometry()
        else:
            x, y, yaw = self.control.pose
            self.perception.set_heading(yaw)
            self.perception.set_speed(self._speed.update(now_s, x, y, self.control.speed_mps))
        decisions = self.perception.push(filtered, now_us)
        if self.admission is not None:
            self._measure(t0, now_us, len(filtered), self.perception.steps - steps, bool(decisions))
        if not decisions:
            return None
        for d in decisions:
            self._account(d)
        d = decisions[-1]
        self.last_decisions, self.last_decision = decisions, d
        sectors = self.perception.head.sectors
        view = sectors.view(d.sectors) if sectors is not None else None
        cmd = self.control.on_decision(now_s, d.label, len(self.perception.classes), d.confidence, d.approaching,
                                       view)
        if cmd is not None and self.attention is not None:
            self._attend(d, view, cmd)
        return cmd

    def _measure(self, t0: float, now_us: int, events: int, steps: int, decided: bool) -> None:
        t1 = time.perf_counter()
        self.admission.observe(t1, now_us, t1 - t0, events, steps)
        if decided:
            self.admission.observe_latency((t1 - t0) * 1e3)
        cap = self.admission.admitted_ev_s
        if self.attention is None and cap and cap != self.filter.controls.rate_cap_ev_s:
            self.filter.set_controls(rate_cap_ev_s=cap)

    def on_tick(self, now_s: float) -> Optional[Twist2]:
        """The watchdog's check between decisions: a stop command when one is due."""
        return self.control.on_tick(now_s)

    def _account(self, d: Decision) -> None:
        s = self.stats
        s.decisions += 1
        s.steps += d.steps
        s.events_used += d.events_used
        s.synaptic_ops += d.synaptic_ops
        if self.last_attention is not None:
            mode = self.last_attention.mode
            s.decisions_by_mode[mode] += 1
            s.steps_by_mode[mode] += d.steps
            s.events_by_mode[mode] += d.events_used
            s.synops_by_mode[mode] += d.synaptic_ops

    def _attend(self, d: Decision, view: Optional[SectorView], cmd: Twist2) -> None:
        admitted = (self.admission.admitted_ev_s or 0.0) if self.admission is not None else 0.0
        a = self.attention.decide(AttentionInputs(cmd[0], cmd[1], d.label, d.confidence, d.approaching,
                                                  pose=self.control.pose, shared=self.shared, agent_id=self.agent_id,
                                                  admitted_ev_s=admitted, view=view))
        self.last_attention = a
        self.filter.set_controls(roi=a.roi, rate_cap_ev_s=a.rate_cap_ev_s)
        self.perception.set_budget(t_max=a.t_max, threshold=a.threshold)
