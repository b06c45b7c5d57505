"""The fleet coordinator's core: membership, liveness, planning and shared detections, without ROS.

Every call takes the time `now_s` from the caller (the node passes its clock), so the logic is
deterministic and unit tests run it in simulated seconds.

Liveness: an agent is lost at the first `tick` more than `heartbeat_timeout_s` after its last
accepted heartbeat; that tick publishes the plan without it. So the re-plan follows the last
heartbeat within timeout + tick period (1.0 s + 0.05 s by default), inside the 2 s budget.
A join waits `join_settle_s` for further joins (a fleet starting together gets one plan);
a loss or an availability change (health ERROR/STALE, too little energy, missing capability)
is planned at once. Every `replan_period_s` the plan is re-optimised for where the agents are
now and published only if the assignment changes.

Rejected heartbeats (`REJECT_REASONS`) are counted, never raised. Every field of a heartbeat or
detection is bounded (ids, texts and capability lists by length, numbers finite and in range), and
each agent id has a token bucket for heartbeats and one for detections (`*_rate_limit_hz`,
`*_burst`): what exceeds it is dropped as `rate_limited`, so one flooding agent costs the others
nothing. A restarted agent whose
sequence numbers start again is rejected (`seq_not_increasing`) until it is declared lost,
and then joins anew — at most one timeout later.

Clock jumps (simulation time reset or fast-forwarded): `on_clock_jump` rebases the time-dependent
state on the new time line — every member counts as seen at the jump, so a forward jump does not
lose the whole fleet and a backward one does not keep a silent agent alive; a dead agent is lost one
timeout after the jump. A clock seen going back between calls is taken as a jump too.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Dict, List, Optional, Tuple

from .assignment import optimal_assignment, travel_costs, with_keep_bonus
from .config import FleetConfig
from .detections import DetectionMerger, Sighting
from .state import MAX_ID_LENGTH
from .plan import Assignment, Plan
from .regions import partition
from .state import HEALTH_ERROR, AgentReport, id_problem, report_problem

REJECT_REASONS = ("empty_id", "bad_id", "not_allowed", "rate_limited", "non_finite_pose", "bad_orientation",
                  "out_of_arena", "non_finite_velocity", "bad_health", "bad_energy", "bad_seq", "bad_footprint",
                  "bad_text", "bad_capabilities", "bad_stamp", "seq_not_increasing", "fleet_full")
DETECTION_DROP_REASONS = ("empty_id", "bad_id", "not_allowed", "rate_limited", "bad_label", "non_finite",
                          "bad_confidence", "bad_radius", "stale", "from_future", "overflow", "clock_jump")
MAX_TEXT_LENGTH = 256          # health_message
MAX_CAPABILITIES = 32          # entries of AgentState.capabilities, each at most MAX_ID_LENGTH
MAX_SEQ = 2 ** 64 - 1          # heartbeat_seq is a uint64
LABEL_RANGE = (-(2 ** 31), 2 ** 31 - 1)


def _text_ok(text: str, limit: int) -> bool:
    return len(text) <= limit and text.isprintable()


def report_field_problem(r: AgentReport) -> Optional[str]:
    """Bounds of the fields `report_problem` does not check (texts, lists, seq range, stamp), or None."""
    if r.seq > MAX_SEQ:
        return "bad_seq"
    if not _text_ok(r.health_message, MAX_TEXT_LENGTH) or not _text_ok(r.assigned_region_id, MAX_ID_LENGTH):
        return "bad_text"
    if len(r.capabilities) > MAX_CAPABILITIES or any(not c or not _text_ok(c, MAX_ID_LENGTH) for c in r.capabilities):
        return "bad_capabilities"
    if not math.isfinite(r.stamp_s):
        return "bad_stamp"
    return None


def sighting_field_problem(s: Sighting) -> Optional[str]:
    """Bounds of the label fields (the numbers are checked by `sighting_problem`), or None."""
    if not LABEL_RANGE[0] <= s.label <= LABEL_RANGE[1] or not _text_ok(s.label_name, MAX_ID_LENGTH):
        return "bad_label"
    return None


class TokenBuckets:
    """One token bucket per key: `rate` tokens per second, at most `burst` saved; a call takes one.

    Keys unseen for long enough to have refilled are forgotten once more than `max_keys` are held,
    so ids made up by a flooder cannot grow it without bound. A clock going back refills nothing."""

    def __init__(self, rate_hz: float, burst: int, max_keys: int) -> None:
        self.rate_hz = float(rate_hz)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: Dict[str, List[float]] = {}    # key -> [tokens, last refill time]

    def take(self, key: str, now_s: float) -> bool:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now_s)
            b = self._buckets[key] = [self.burst, now_s]
        else:
            b[0] = min(self.burst, b[0] + max(0.0, now_s - b[1]) * self.rate_hz)
            b[1] = now_s
        if b[0] >= 1.0 - 1e-9:     # 0.1 s at 10 Hz is a whole token despite rounding
            b[0] -= 1.0
            return True
        return False

    def rebase(self, now_s: float) -> None:
        """The clock jumped to `now_s`: every bucket keeps its tokens and refills from there."""
        for b in self._buckets.values():
            b[1] = now_s

    def _prune(self, now_s: float) -> None:
        full_after = self.burst / self.rate_hz
        for k in [k for k, (_, t) in self._buckets.items() if now_s - t >= full_after]:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:      # still full: forget the longest idle
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class Member:
    report: AgentReport       # the newest accepted heartbeat
    last_seen_s: float        # when it was accepted (coordinator clock)
    available: bool           # may be assigned a region


@dataclass(frozen=True)
class Loss:
    """How fast a loss was acted on: silence = plan - last heartbeat, delay = plan - (last heartbeat + timeout)."""

    agent_id: str
    last_seen_s: float
    planned_s: float
    timeout_s: float

    @property
    def silence_s(self) -> float:
        return self.planned_s - self.last_seen_s

    @property
    def delay_s(self) -> float:
        return self.planned_s - (self.last_seen_s + self.timeout_s)


class Coordinator:
    def __init__(self, cfg: FleetConfig, arena_size_m: Tuple[float, float]) -> None:
        self.cfg = cfg
        self.arena_size_m = (float(arena_size_m[0]), float(arena_size_m[1]))
        self.members: Dict[str, Member] = {}
        self.plan: Optional[Plan] = None
        self.rejected: Counter = Counter()
        self.accepted = 0
        self.joins = 0
        self.losses = 0
        self.clock_jumps = 0
        self.last_loss: Optional[Loss] = None
        self.detections = self._new_merger()
        self._reasons: List[str] = []
        self._due_s: Optional[float] = None
        self._lost: List[Tuple[str, float]] = []   # (agent id, last seen) since the previous plan
        self._next_periodic_s = math.inf
        self._now_s = -math.inf
        self._beat_buckets = TokenBuckets(cfg.heartbeat_rate_limit_hz, cfg.heartbeat_burst, 4 * cfg.max_agents)
        self._detection_buckets = TokenBuckets(cfg.detection_rate_limit_hz, cfg.detection_burst, 4 * cfg.max_agents)

    def _new_merger(self) -> DetectionMerger:
        c = self.cfg
        return DetectionMerger(c.detection_horizon_s, c.merge_radius_m, c.future_tolerance_s, c.max_detections)

    # ------------------------------------------------------------------ inputs
    def allowed(self, agent_id: str) -> bool:
        return any(fnmatchcase(agent_id, pattern) for pattern in self.cfg.allowed_agents)

    def _admit(self, agent_id: str, buckets: TokenBuckets, now_s: float) -> Optional[str]:
        """Why a message from `agent_id` is refused before its fields are looked at, or None:
        a malformed id, an id off the allow-list, or over its rate limit."""
        self._observe_clock(now_s)
        why = id_problem(agent_id)
        if why is None and not self.allowed(agent_id):
            why = "not_allowed"
        if why is None and not buckets.take(agent_id, now_s):
            why = "rate_limited"
        return why

    def on_agent_state(self, r: AgentReport, now_s: float) -> Optional[str]:
        """Take a heartbeat; returns why it was rejected (also counted in `rejected`), or None."""
        why = self._admit(r.agent_id, self._beat_buckets, now_s) or report_problem(r, self.arena_size_m, self.cfg.arena_margin_m) or report_field_problem(r)
        m = self.members.get(r.agent_id)
        if why is None and m is not None and r.seq <= m.report.seq:
            why = "seq_not_increasing"
        if why is None and m is None and len(self.members) >= self.cfg.max_agents:
            why = "fleet_full"
        if why is not None:
            self.rejected[why] += 1
            return why
        self.accepted += 1
        available = self._available(r)
        if m is None:
            self.members[r.agent_id] = Member(r, now_s, available)
            self.joins += 1
            self._request("agent_joined", now_s + self.cfg.join_settle_s)
        else:
            changed = available != m.available
            m.report, m.last_seen_s, m.available = r, now_s, available
            if changed:
                self._request("availability", now_s)
        return None

    def on_sighting(self, s: Sighting, now_s: float) -> Optional[str]:
        """Take one shared detection; returns why it was dropped (counted in `detections.dropped`), or None."""
        why = self._admit(s.source_agent_id, self._detection_buckets, now_s) or sighting_field_problem(s)
        if why is not None:
            self.detections.dropped[why] += 1
            return why
        return self.detections.add(s, now_s)

    def merged_detections(self, now_s: float) -> List[Sighting]:
        return self.detections.merged(now_s)

    # ------------------------------------------------------------------ time
    def tick(self, now_s: float) -> Optional[Plan]:
        """Check liveness; return a new plan when one is due (join, loss, availability, periodic)."""
        self._observe_clock(now_s)
        for aid in sorted(self.members):
            m = self.members[aid]
            if now_s - m.last_seen_s > self.cfg.heartbeat_timeout_s:
                del self.members[aid]
                self.losses += 1
                self._lost.append((aid, m.last_seen_s))
                self._request("agent_lost", now_s)
        if self._due_s is not None and now_s >= self._due_s:
            return self._commit(self._make_plan(now_s, ",".join(self._reasons)))
        if now_s >= self._next_periodic_s:
            candidate = self._make_plan(now_s, "periodic")
            if self.plan is None or candidate.mapping() != self.plan.mapping():
                return self._commit(candidate)
            self._next_periodic_s = now_s + self.cfg.replan_period_s
        return None

    # ------------------------------------------------------------------ planning
    def _available(self, r: AgentReport) -> bool:
        if r.health >= HEALTH_ERROR:
            return False
        if not math.isnan(r.energy_budget_j) and r.energy_budget_j < self.cfg.min_energy_budget_j:
            return False
        return set(self.cfg.required_capabilities) <= set(r.capabilities)

    def _current_region(self, agent_id: str) -> str:
        """The region the agent works on: ours if we planned it, else what it reports (we restarted)."""
        if self.plan is not None:
            mine = self.plan.for_agent(agent_id)
            if mine is not None:
                return mine.region.region_id
        return self.members[agent_id].report.assigned_region_id

    def _make_plan(self, now_s: float, reason: str) -> Plan:
        agents = sorted(aid for aid, m in self.members.items() if m.available)
        n = self.cfg.region_count or len(agents)
        regions = partition(self.arena_size_m, n, self.cfg.waypoint_inset_m) if n else []
        costs = travel_costs([(self.members[a].report.x, self.members[a].report.y) for a in agents], regions)
        biased = with_keep_bonus(costs, regions, [self._current_region(a) for a in agents], self.cfg.keep_bonus_m)
        pairs = optimal_assignment(biased)
        used = {j for _, j in pairs}
        return Plan(
            plan_id=(self.plan.plan_id if self.plan else 0) + 1, stamp_s=now_s,
            assignments=tuple(Assignment(agents[i], regions[j], float(costs[i, j])) for i, j in pairs),
            unassigned_region_ids=tuple(r.region_id for j, r in enumerate(regions) if j not in used),
            lost_agent_ids=tuple(aid for aid, _ in self._lost), reason=reason)

    def _commit(self, plan: Plan) -> Plan:
        for aid, seen in self._lost:
            self.last_loss = Loss(aid, seen, plan.stamp_s, self.cfg.heartbeat_timeout_s)
        self.plan = plan
        self._reasons, self._due_s, self._lost = [], None, []
        self._next_periodic_s = plan.stamp_s + self.cfg.replan_period_s if self.cfg.replan_period_s > 0 else math.inf
        return plan

    def _request(self, reason: str, due_s: float) -> None:
        if reason not in self._reasons:
            self._reasons.append(reason)
        self._due_s = due_s if self._due_s is None else min(self._due_s, due_s)

    def on_clock_jump(self, now_s: float) -> None:
        """The clock jumped (either way) to `now_s`: rebase what was timed on the old time line.

        Members count as seen now (each gets one full timeout to be heard again); a pending plan
        and the periodic re-plan fall due from now; rate limits keep their tokens; sightings
        stamped on the old time line are dropped (counted as `clock_jump`)."""
        self.clock_jumps += 1
        for m in self.members.values():
            m.last_seen_s = now_s
        if self._due_s is not None:
            self._due_s = min(self._due_s, now_s)
        if math.isfinite(self._next_periodic_s):
            self._next_periodic_s = now_s + self.cfg.replan_period_s
        self._beat_buckets.rebase(now_s)
        self._detection_buckets.rebase(now_s)
        old, self.detections = self.detections, self._new_merger()
        self.detections.accepted, self.detections.dropped = old.accepted, old.dropped
        self.detections.dropped["clock_jump"] += len(old)
        self._now_s = now_s

    def _observe_clock(self, now_s: float) -> None:
        """A clock seen going back (simulation reset) is a jump, even if nobody said so: it must
        not make agents look alive for ages. (A jump forward looks like a pause: the caller says.)"""
        if now_s < self._now_s - 1e-6:
            self.on_clock_jump(now_s)
        self._now_s = now_s

    # ------------------------------------------------------------------ health
    def stats(self) -> Dict[str, object]:
        """Counters and state for /diagnostics (every reject reason listed, zeros included)."""
        out: Dict[str, object] = {
            "agents": ",".join(sorted(self.members)),
            "agents_available": sum(m.available for m in self.members.values()),
            "plan_id": self.plan.plan_id if self.plan else 0,
            "plan_reason": self.plan.reason if self.plan else "",
            "assignments": ",".join(f"{a}:{r}" for a, r in sorted(self.plan.mapping().items())) if self.plan else "",
            "unassigned_regions": ",".join(self.plan.unassigned_region_ids) if self.plan else "",
            "joins": self.joins, "losses": self.losses, "heartbeats_accepted": self.accepted,
            "rejected_total": sum(self.rejected.values()), "clock_jumps": self.clock_jumps,
            "detections_accepted": self.detections.accepted, "detections_kept": len(self.detections),
            "detections_dropped_total": sum(self.detections.dropped.values()),
        }
        out.update({f"rejected_{k}": self.rejected[k] for k in REJECT_REASONS})
        out.update({f"detections_dropped_{k}": self.detections.dropped[k] for k in DETECTION_DROP_REASONS})
        if self.last_loss is not None:
            out.update({"last_loss_agent": self.last_loss.agent_id,
                        "last_loss_silence_s": round(self.last_loss.silence_s, 3),
                        "last_loss_plan_delay_s": round(self.last_loss.delay_s, 3)})
        return out
