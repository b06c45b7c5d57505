"""Fused mode: sensor filter -> perception -> control -> attention of one robot, in one
process, with direct calls and no serialisation (the split mode runs the same stages as
nodes over topics; both use these classes).

`FusedAgent.on_events` takes the camera's raw events and returns the velocity command
to apply (or None when no decision completed); `on_tick` is the watchdog's clock. Time
is whatever clock the caller runs on (sensor time in the built-in world).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..attention.policy import AttentionConfig, AttentionDecision, AttentionInputs, AttentionPolicy
from ..control.limits import LimitsConfig
from ..control.loop import RobotController
from ..control.policy import PatrolConfig, Pose
from ..control.watchdog import WatchdogConfig
from ..events.batch import EventBatch
from ..perception.runtime import Decision, StreamingPerception
from ..sensors.controls import EventFilter


@dataclass
class LoopStats:
    decisions: int = 0
    steps: int = 0
    events_in: int = 0          # events the camera produced
    events_used: int = 0        # events the SNN consumed (after the sensor's ROI / cap and the perception ROI)
    synaptic_ops: float = 0.0
    calm_decisions: int = 0


class FusedAgent:
    def __init__(self, perception: StreamingPerception, width: int, height: int, hfov_deg: float,
                 attention: bool = True, patrol: PatrolConfig = PatrolConfig(),
                 limits: LimitsConfig = LimitsConfig(), watchdog: WatchdogConfig = WatchdogConfig(),
                 attention_cfg: AttentionConfig = AttentionConfig(), agent_id: str = "") -> None:
        self.perception = perception
        self.filter = EventFilter(width, height)
        self.control = RobotController(patrol, limits, watchdog)
        self.attention = (AttentionPolicy(width, height, hfov_deg, perception.model_t_max, perception.threshold,
                                          attention_cfg) if attention else None)
        self.agent_id = agent_id
        self.stats = LoopStats()
        self.last_decision: Optional[Decision] = None
        self.last_decisions: list = []    # every decision the last on_events completed
        self.last_attention: Optional[AttentionDecision] = None
        self.shared: Sequence[Tuple[float, float, float, str]] = ()

    def on_events(self, batch: EventBatch, now_us: int, pose: Pose,
                  control_now_s: Optional[float] = None) -> Optional[Tuple[float, float]]:
        """Events up to sensor time `now_us`; the command when a decision completed. The
        controller's clock is sensor time unless `control_now_s` is given (a node passes its
        monotonic clock, the one its watchdog ticks on)."""
        self.stats.events_in += len(batch)
        decisions = self.perception.push(self.filter.apply(batch), now_us)
        if not decisions:
            return None
        now_s = now_us * 1e-6 if control_now_s is None else control_now_s
        for d in decisions:
            self._account(d)
        d = decisions[-1]
        self.last_decisions, self.last_decision = decisions, d
        cmd = self.control.on_decision(now_s, pose, d.label, d.approaching)
        if self.attention is not None:
            self._attend(d, pose, cmd)
        return cmd

    def on_tick(self, now_us: int) -> Optional[Tuple[float, float]]:
        """The watchdog's check between decisions: a stop command when one is due."""
        return self.control.on_tick(now_us * 1e-6)

    def _account(self, d: Decision) -> None:
        s = self.stats
        s.decisions += 1
        s.steps += d.steps
        s.events_used += d.events_used
        s.synaptic_ops += d.synaptic_ops
        if self.last_attention is not None and self.last_attention.mode == "calm":
            s.calm_decisions += 1

    def _attend(self, d: Decision, pose: Pose, cmd: Tuple[float, float]) -> None:
        a = self.attention.decide(AttentionInputs(cmd[0], cmd[1], d.label, d.confidence, d.approaching,
                                                  pose=pose, shared=self.shared, agent_id=self.agent_id))
        self.last_attention = a
        self.filter.set_controls(roi=a.roi, rate_cap_ev_s=a.rate_cap_ev_s)
        self.perception.set_budget(t_max=a.t_max, threshold=a.threshold)
