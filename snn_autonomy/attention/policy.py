"""The attention policy: from the commanded motion, perception's confidence and what the
fleet shares, decide what to sense next (an AttentionCommand).

Four budgets, chosen per decision:

- alert: the model's calibrated confidence threshold, T_max capped at `alert_t_max` (8
  steps: 48 ms with the shipped model's 6 ms steps, half the control watchdog's 100 ms
  deadline). Used whenever the newest decision is not a confident `clear`, something
  approaches, the robot turns faster than `calm_turn_rps`, or the fleet reports an
  obstacle in this robot's path. The cap trades single-decision accuracy for decision
  rate: offline on the default model's test split, T_max 8 costs 3 points of accuracy,
  but the loop decides twice as often where the network is unsure, and in the closed
  loop (below) that did not add collisions.
- calm: driving straight (|w| <= 0.8 rad/s) after a `clear` at least `calm_confidence`
  (0.9) confident. T_max drops to `calm_t_max` (4 steps, 24 ms) and the threshold to
  `calm_threshold` (0.85); a new obstacle breaks calm on the next decision, at most 24 ms
  later (11 mm at 0.45 m/s). Confidence scales differ between models: the sector model's
  joint confidence (its least certain sector's) reaches 0.9 on 2 % of decisions, so with it
  calm hardly engages. Both can be set to 0, "the model's calibrated threshold": calm then
  engaged on a fifth of the (2 ms) sector model's decisions and halved its synaptic operations
  against attention off, but in `bench patrol` its robots were at fault in 2.1 collisions per
  100 m instead of 0.9 (fast obstacles of the unseen world met with 4-step decisions), so the
  fixed values stay the default. Detections the fleet
  shares beside the path (not in it) keep the robot calm: another agent has just
  observed them, so this one senses that part of the world less.
- open: alert only because the newest decision is not a confident `clear` (nothing
  approaches, not turning, nothing the fleet shares in the path), and a sector model's
  sectors within `open_half_angle_deg` (30) of the heading are all free to at least
  `open_free_m` (0.9 m). T_max drops to `open_t_max` (5 steps, 30 ms) at the model's
  threshold. 0.9 m is the class edge above the controller's `slow_range_m` (0.8 m, full
  cruise with at least that much free ahead): nothing there slows the robot yet, and at
  the 0.5 m/s cruise it is 1.8 s away, while a decision comes 18 ms sooner than at 8
  steps. Over the patrol benchmark's 16 runs (docs/control_and_fleet.md), measured before
  perception's temporal prior, this took 62 % of the decisions and brought the synaptic
  operations per decision to 2.1x below attention off (1.72x without it), with the same
  coverage and no collision at fault (with the prior on both sides, attention saves 1.57x);
  with 6 steps 1.97x; judged on 1.4 m instead of 0.9 (41 % of decisions, 6 steps), 1.85x
  and a wall's corner hit at fault. The sector model's joint confidence seldom allows
  calm, so this is where its savings come from.
- spin: turning on the spot (faster than `calm_turn_rps`, the commanded forward speed under
  `spin_speed_mps`, 0.05 m/s) with nothing approaching, whatever the newest decision saw.
  T_max drops to `spin_t_max` (2 steps, 12 ms) at the model's threshold, and the event rate
  to `spin_rate_cap_ev_s` (80 k events/s, about what the built-in world's camera produces
  driving on an open path; turning on the spot it produces about 290 k/s). A round body that
  turns on the spot moves no part of itself toward anything, so no decision made then can
  drive it into something; what they decide is when the turn ends, and the decisions after
  it, at the open or alert budget, see where the robot then drives. The temporal prior
  (perception/temporal_prior.py) is held and turned with the robot exactly then, so each
  decision starts from the last one's belief. Why thin the events: the image motion of a
  rotation is the same at every depth, so what a turn adds to the stream shows where edges
  are, not how far they are, yet every event costs the network alike (at full rate a spin
  step cost 301 k synaptic operations, an open-path step 135 k). Over the patrol
  benchmark's 16 runs (docs/control_and_fleet.md) 17 % of decisions took it; coverage and
  distance were the same as with 3 full-rate steps (64.2 % against 64.3 %), the robots were
  at fault 4 times (all of them moving obstacles) against 3, and the synaptic operations per
  decision went from 1.70x to 1.95x below attention off. What the reasoning above leaves
  out: the spin budget's decisions also feed the controller's local map, which clears what
  they see free. One of the four (the default world's seed 23) followed a turn whose thinned
  decisions called the leftmost sectors far over a mover 0.15 m away, and the robot, driving
  off, turned into it. Thinning every turn faster than
  `calm_turn_rps` the same way, while driving too, cost 6 points of coverage over 8 runs:
  driving, the robot moves toward what it sees.

Measured in the built-in world (README, `snn-autonomy closed-loop`), these budgets (and the
spin budget's event-rate cap) are what brings events and synaptic operations per decision
down; the region of interest and the general rate cap are guards, not the main saving.

Region of interest: while turning, the columns on the side the robot turns away from
leave the view within `lookahead_s`, so they are dropped: shift = |w| x lookahead x
pixels per radian, at most `max_shift_frac` of the width. The network keeps the whole
field of view on its grid (the ROI masks events, it does not zoom); masking more than
a few grid columns costs accuracy (offline, 4 columns each side: -2.3 points), hence
the cap. The event-rate cap guards against bursts (flicker, fast rotation): 1 M events/s
is about 6x what a 128x96 camera of the built-in world produces while driving (about
150 k events/s), so it never thins normal scenes; only the spin budget thins by choice
(thinning where the robot drives costs accuracy and, with more steps to decide, saved no
synaptic operations). Beneath it, the cap perception advertises (`admitted_event_rate`,
from what an event and a step cost on this machine: perception/cost_model.py) applies where
it is lower: on a slow or loaded machine a burst is thinned at the sensor before it costs
encoding, transport and decoding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

from ..config import spec
from ..perception.labels import CLEAR
from ..perception.sectors import SectorView, sector_angles

CALM, OPEN, SPIN, ALERT = "calm", "open", "spin", "alert"
REDUCED = (CALM, OPEN, SPIN)      # the budgets below alert, reported as shares of the decisions


def mode_fractions(counts: Mapping[str, int], decisions: int) -> Dict[str, float]:
    """`<mode>_fraction` of each reduced budget: its decisions among `decisions`."""
    return {f"{m}_fraction": round(counts.get(m, 0) / max(decisions, 1), 3) for m in REDUCED}


@dataclass(frozen=True)
class AttentionConfig:
    calm_threshold: float = spec(0.85, lo=0.0, hi=1.0,
                                 help="confidence threshold while calm (0 = the model's calibrated one)")
    calm_t_max: int = spec(4, lo=1, hi=1000, help="time-step budget while calm")
    calm_confidence: float = spec(0.9, lo=0.0, hi=1.0,
                                  help="a clear decision at least this confident lets the robot be calm "
                                       "(0 = the model's calibrated threshold)")
    alert_t_max: int = spec(8, lo=0, hi=1000, help="time-step budget while alert (0 = the model's T_max)")
    open_t_max: int = spec(5, lo=0, hi=1000,
                           help="time-step budget while the path ahead is open (0 = no open mode: the alert budget)")
    open_free_m: float = spec(0.9, lo=0.0, hi=100.0, unit="m",
                              help="the path is open when every sector within open_half_angle_deg of the heading "
                                   "is free to at least this")
    open_half_angle_deg: float = spec(30.0, lo=0.0, hi=180.0, unit="deg",
                                      help="half the width of the view the open path is judged on")
    spin_t_max: int = spec(2, lo=0, hi=1000,
                           help="time-step budget while turning on the spot (0 = no spin mode: the alert budget)")
    spin_speed_mps: float = spec(0.05, lo=0.0, hi=10.0, unit="m/s",
                                 help="commanded forward speed below which a turn is on the spot")
    spin_rate_cap_ev_s: float = spec(80_000.0, lo=0.0, hi=1e10, unit="ev/s",
                                     help="event-rate cap while turning on the spot, about what the built-in "
                                          "world's camera produces driving on an open path (0 = rate_cap_ev_s "
                                          "alone)")
    calm_turn_rps: float = spec(0.8, lo=0.0, hi=20.0, unit="rad/s", help="turning faster than this is alert (on the spot: spin)")
    lookahead_s: float = spec(0.25, lo=0.0, hi=5.0, unit="s", help="how far ahead the turn shifts the ROI")
    max_shift_frac: float = spec(0.1, lo=0.0, hi=0.5, help="at most this fraction of the width is dropped")
    rate_cap_ev_s: float = spec(1_000_000.0, lo=0.0, hi=1e10, unit="ev/s", help="0 = no cap")
    path_half_width_m: float = spec(0.3, lo=0.0, hi=10.0, unit="m",
                                    help="shared detections nearer than this to the path are 'in the path'")
    path_range_m: float = spec(1.5, lo=0.0, hi=100.0, unit="m")
    shared_fresh_s: float = spec(1.0, lo=0.0, hi=60.0, unit="s")

    def step_caps(self) -> Dict[str, int]:
        """Each budget's T_max cap (0: the mode is off, or for alert the model's T_max)."""
        return {CALM: self.calm_t_max, OPEN: self.open_t_max, SPIN: self.spin_t_max, ALERT: self.alert_t_max}


@dataclass
class AttentionInputs:
    linear: float                     # commanded m/s
    angular: float                    # commanded rad/s
    label: int                        # newest decision's class (-1 = none yet)
    confidence: float
    approaching: bool
    pose: Optional[Tuple[float, float, float]] = None
    shared: Sequence[Tuple[float, float, float, str]] = ()   # (x, y, age_s, source agent) of fleet detections
    agent_id: str = ""
    admitted_ev_s: float = 0.0        # what perception can take on this machine (its measured cost); 0 = unknown
    view: Optional[SectorView] = None  # the newest decision's sectors (a sector model's); None = none


@dataclass
class AttentionDecision:
    mode: str
    roi: Tuple[int, int, int, int]    # x, y, width, height; all zeros = the whole sensor
    rate_cap_ev_s: float
    t_max: int
    threshold: float
    reason: str


class AttentionPolicy:
    def __init__(self, width: int, height: int, hfov_deg: float, model_t_max: int, model_threshold: float,
                 cfg: AttentionConfig = AttentionConfig()) -> None:
        self.width, self.height = int(width), int(height)
        self.px_per_rad = width / math.radians(hfov_deg)
        self.model_t_max = int(model_t_max)
        self.model_threshold = float(model_threshold)
        self.cfg = cfg
        self.calm_confidence = cfg.calm_confidence or self.model_threshold
        self.calm_threshold = cfg.calm_threshold or self.model_threshold

    def _shared_in_path(self, inp: AttentionInputs) -> bool:
        if inp.pose is None:
            return False
        c = self.cfg
        x, y, yaw = inp.pose
        for ox, oy, age, source in inp.shared:
            if age > c.shared_fresh_s or source == inp.agent_id:
                continue
            dx, dy = ox - x, oy - y
            ahead = dx * math.cos(yaw) + dy * math.sin(yaw)
            side = -dx * math.sin(yaw) + dy * math.cos(yaw)
            if 0.0 < ahead < c.path_range_m and abs(side) < c.path_half_width_m:
                return True
        return False

    def _path_open(self, view: Optional[SectorView]) -> bool:
        """Whether every sector of `view` within open_half_angle_deg of the heading is free to
        open_free_m (False without a well-formed sector view)."""
        if view is None or view.problem():
            return False
        half = math.radians(self.cfg.open_half_angle_deg)
        ahead = [r for a, r in zip(sector_angles(len(view.free_m), view.fov_rad), view.free_m) if abs(a) <= half]
        return bool(ahead) and min(ahead) >= self.cfg.open_free_m

    def decide(self, inp: AttentionInputs) -> AttentionDecision:
        c = self.cfg
        turning = abs(inp.angular) > c.calm_turn_rps
        unsure = inp.label != CLEAR or inp.confidence < self.calm_confidence
        in_path = self._shared_in_path(inp)
        spinning = turning and abs(inp.linear) < c.spin_speed_mps
        if c.spin_t_max and spinning and not inp.approaching:
            mode, why = SPIN, f"turning on the spot at {inp.angular:+.2f} rad/s"
        elif unsure and c.open_t_max and not (inp.approaching or turning or in_path) and self._path_open(inp.view):
            mode, why = OPEN, (f"not a confident clear, but free to {c.open_free_m:g} m within "
                               f"{c.open_half_angle_deg:g} deg of the heading")
        elif unsure:
            mode, why = ALERT, "newest decision is not a confident clear"
        elif inp.approaching:
            mode, why = ALERT, "something approaches"
        elif turning:
            mode, why = ALERT, f"turning at {inp.angular:+.2f} rad/s"
        elif in_path:
            mode, why = ALERT, "the fleet reports an obstacle in the path"
        else:
            mode, why = CALM, "straight on open floor after a confident clear"
        shift = int(min(abs(inp.angular) * c.lookahead_s * self.px_per_rad, c.max_shift_frac * self.width))
        if shift > 0 and turning:
            # turning left (w > 0) brings the left of the image into view: drop the right edge
            x0 = 0 if inp.angular > 0 else shift
            roi = (x0, 0, self.width - shift, self.height)
            why += f"; ROI drops {shift} px on the {'right' if inp.angular > 0 else 'left'}"
        else:
            roi = (0, 0, 0, 0)
        cap = c.rate_cap_ev_s
        admitted = inp.admitted_ev_s if math.isfinite(inp.admitted_ev_s) and inp.admitted_ev_s > 0 else 0.0
        lower = [(admitted, "what perception takes on this machine")]
        if mode == SPIN:
            lower.append((c.spin_rate_cap_ev_s, "a turn on the spot's events tell little of range"))
        for other, because in lower:     # 0 is no cap, on either side
            if other and (cap == 0 or other < cap):
                cap = other
                why += f"; rate cap {other:,.0f} ev/s: {because}"
        if mode == CALM:
            return AttentionDecision(mode, roi, cap, min(c.calm_t_max, self.model_t_max), self.calm_threshold, why)
        if mode == OPEN:
            return AttentionDecision(mode, roi, cap, min(c.open_t_max, self.model_t_max), self.model_threshold, why)
        if mode == SPIN:
            return AttentionDecision(mode, roi, cap, min(c.spin_t_max, self.model_t_max), self.model_threshold, why)
        return AttentionDecision(mode, roi, cap, min(c.alert_t_max or self.model_t_max, self.model_t_max),
                                 self.model_threshold, why)
