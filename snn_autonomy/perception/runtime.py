"""Streaming perception: events in, decisions out, early exit on confidence.

A back end's stepper (`backends.base.Stepper`: `reset()`, `step(frame) -> StepResult`, explicit
state kept inside) runs the network. `StreamingPerception` turns an event stream into decisions:
each `bin_us` of events (inside the region of interest, pooled onto the model's grid) is one SNN
step; after each step the class confidence is checked, and when it reaches the
threshold, or after t_max steps, a Decision is emitted and the network starts
afresh from the next bin. Confident scenes therefore get decisions sooner and
cheaper. A model calibrated with a temporal prior (`temporal_prior.py`) carries each
decision's belief into the next one's confidence and classes, unless `temporal_prior=False`.
T_max, the threshold and the ROI can be changed between steps; events outside the ROI are
ignored (the grid still spans the whole sensor).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..backends import make_stepper
from ..backends.base import Stepper, confidence_of, softmax
from ..events.batch import EVENT_DTYPE, EventBatch
from ..events.representations import binned_frames
from ..events.roi import Roi, crop
from ..sensors.packetizer import Packetizer
from .early_exit import predict
from .heads import Head
from .labels import LabelConfig
from .model_io import load_model, verified_manifest
from .sectors import summary_label
from .temporal_prior import CarriedBelief, exit_threshold, prior_of


def load_stepper(path: Path, backend: str = "torch", **options) -> Tuple[Stepper, Dict]:
    """(stepper, manifest) of the model file at `path` on back end `backend` (options as
    `backends.make_stepper`); the file is checked against its manifest first. The model itself
    (and torch) is loaded only when the back end needs it."""
    manifest = verified_manifest(path)
    return make_stepper(backend, lambda: load_model(path)[0], manifest, **options), manifest


@dataclass
class Decision:
    t_end_us: int             # sensor time of the end of the last bin used
    label: int                # four-class label (for a sector model, derived from its sectors)
    scores: np.ndarray        # class probabilities (empty for a sector model: its label is derived)
    confidence: float
    approaching: bool
    approach_probability: float
    steps: int
    t_max: int
    early_exit: bool
    threshold: float
    events_in: int
    events_used: int
    synaptic_ops: float
    neuron_updates: int
    first_packet_seq: int = -1
    last_packet_seq: int = -1
    stamp_ns: int = 0         # header stamp of the newest packet that fed the decision
    sectors: Tuple[int, ...] = ()  # range class per sector, left to right (sector models only)
    with_prior: bool = False  # the previous decision's belief was carried into this one (temporal prior)
    decision_id: int = 0      # 1, 2, ... in the order the engine made them since its warm-up (0: not an engine's)


@dataclass
class _Accum:
    synops: float = 0.0
    events_in: int = 0
    events_used: int = 0
    first_seq: int = -1
    steps: int = 0
    belief: Optional[np.ndarray] = None   # weighted log prior added to the class logits (temporal prior)


MAX_TIME_JUMP_US = 1_000_000   # sensor time may not leap further in one push (else: stream restarted)


class StreamingPerception:
    def __init__(self, stepper: Stepper, manifest: Dict, roi: Optional[Roi] = None,
                 temporal_prior: bool = True) -> None:
        inp = manifest["input"]
        self.manifest = manifest
        self.stepper = stepper
        self.classes: List[str] = list(manifest["classes"])
        self.sensor = tuple(inp["sensor"])
        self.grid = tuple(inp["grid"])
        self.bin_us = int(inp["bin_us"])
        self.model_t_max = int(manifest["t_max"])
        self.t_max = self.model_t_max
        self.prior = prior_of(manifest) if temporal_prior else None
        self.threshold = exit_threshold(manifest, self.prior is not None)
        self.measure = manifest["early_exit"]["measure"]
        self.head = Head.of(manifest)
        self.near_m = LabelConfig(**manifest.get("labels", {})).near_m
        self.roi = roi
        self._bins: Optional[Packetizer] = None   # cuts the stream into bins of bin_us
        self._acc = _Accum()
        self._belief = (CarriedBelief(self.prior, self.head.groups, self.head.sector_rad)
                        if self.prior is not None else None)
        self._last_seq = -1
        self._last_stamp = 0
        self._last_now_us: Optional[int] = None
        self.time_jumps = 0
        self.loss_restarts = 0
        self.geometry_refused = 0     # packets of a camera size other than the model's
        self.geometry_problem = ""
        self.decisions = 0
        self.prior_decisions = 0      # decisions that carried the one before's belief
        self.steps = 0                # SNN steps taken, all decisions

    @classmethod
    def from_file(cls, path: Path, backend: str = "torch", temporal_prior: bool = True,
                  **options) -> "StreamingPerception":
        return cls(*load_stepper(path, backend, **options), temporal_prior=temporal_prior)

    # ------------------------------------------------------------------ run-time knobs
    def set_budget(self, t_max: Optional[int] = None, threshold: Optional[float] = None) -> List[str]:
        """Change T_max (1..10 x the model's T_max) and the confidence threshold ((0, 1]); None
        (also 0 for T_max, NaN for the threshold) keeps the value in force. Values out of range
        are refused with a message and the old ones kept."""
        problems = []
        if t_max is not None and t_max != 0:
            if 1 <= int(t_max) <= 10 * self.model_t_max:
                self.t_max = int(t_max)
            else:
                problems.append(f"t_max {t_max} outside 1..{10 * self.model_t_max}")
        if threshold is not None and not (isinstance(threshold, float) and math.isnan(threshold)):
            if 0.0 < float(threshold) <= 1.0:
                self.threshold = float(threshold)
            else:
                problems.append(f"confidence threshold {threshold} outside (0, 1]")
        return problems

    def set_roi(self, roi: Optional[Roi]) -> None:
        self.roi = roi

    def set_heading(self, yaw_rad: float) -> bool:
        """The robot's newest odometry heading (any fixed frame): a temporal prior that follows the
        heading turns the last decision's belief by the robot's turn since. Non-finite values are
        refused (False); without any, the belief stays at the bearings it was seen at."""
        return self._belief.set_heading(yaw_rad) if self._belief is not None else math.isfinite(yaw_rad)

    def set_speed(self, forward_mps: float) -> bool:
        """The robot's newest odometry forward speed (m/s): while it does not drive, the last
        decision's belief holds its ranges (`TemporalPrior.hold_speed_mps`). Non-finite values are
        refused (False); without any, the belief never holds."""
        return self._belief.set_speed(forward_mps) if self._belief is not None else math.isfinite(forward_mps)

    def forget_odometry(self) -> None:
        """Odometry went silent: the prior is neither turned nor held until heading and speed come
        again (the last ones are the robot's no longer)."""
        if self._belief is not None:
            self._belief.forget_odometry()

    @property
    def turned_decisions(self) -> int:
        """Decisions whose prior was turned with the robot."""
        return self._belief.turned if self._belief is not None else 0

    @property
    def held_decisions(self) -> int:
        """Decisions whose prior held its ranges because the robot did not drive."""
        return self._belief.held if self._belief is not None else 0

    def warm_up(self, steps: int = 4) -> None:
        """Run a few steps on a synthetic stream and forget them: first-run costs (the back end's
        allocations, kernel loads) are paid before real data flows, not on its first packet."""
        w, h = self.sensor
        rng = np.random.default_rng(0)
        ev = np.zeros(64, EVENT_DTYPE)
        ev["x"], ev["y"], ev["p"] = rng.integers(0, w, 64), rng.integers(0, h, 64), rng.integers(0, 2, 64)
        for k in range(steps):
            ev["t"] = np.sort(rng.integers(k * self.bin_us, (k + 1) * self.bin_us, 64))
            self.push(EventBatch(ev.copy(), w, h), (k + 1) * self.bin_us)
        self.restart()
        self.decisions = self.steps = self.prior_decisions = 0
        if self._belief is not None:
            self._belief.turned = self._belief.held = 0

    def restart(self) -> None:
        """Forget the stream's time line and the decision in progress (after a time jump)."""
        self._bins = None
        self._acc = _Accum()
        if self._belief is not None:
            self._belief.forget()
        self._last_now_us = None

    # ------------------------------------------------------------------ data
    def push(self, batch: EventBatch, now_us: int, packet_seq: int = -1, stamp_ns: int = 0,
             lost_before: int = 0) -> List[Decision]:
        """Add events up to sensor time `now_us`; returns the decisions completed.

        Events of a camera whose size is not the model's (manifest `input.sensor`) are refused,
        counted in `geometry_refused` with the reason in `geometry_problem`.

        Sensor time leaping more than MAX_TIME_JUMP_US from the last push, or a batch spanning
        more than that, would mean stepping the network through every bin of the gap: such a
        batch is dropped, counted in `time_jumps`, and the stream starts afresh. Small jitter
        backwards is clamped: the stream's time line never runs back.
        lost_before: packets lost in transport just before this one. When they took more than
        one time step of sensor time, that step was not seen, not empty: stepping it as empty
        would tell the network nothing happened, so the decision in progress is dropped and the
        stream starts afresh with this batch (counted in `loss_restarts`). Shorter losses thin
        one step's input, as the rate cap does."""
        if (batch.width, batch.height) != self.sensor:
            # the grid, the sectors and the range classes were learnt through one camera's optics
            self.geometry_refused += 1
            self.geometry_problem = (
                f"events of a {batch.width}x{batch.height} camera refused: the model was trained on a "
                f"{self.sensor[0]}x{self.sensor[1]} camera; train one on this camera's recordings "
                "(snn-autonomy train --bag ...)")
            return []
        last = self._last_now_us
        if (last is not None and abs(now_us - last) > MAX_TIME_JUMP_US) or \
                (len(batch) and now_us - batch.t_first > MAX_TIME_JUMP_US):
            self.time_jumps += 1
            self.restart()
            return []
        if lost_before and last is not None and now_us - last > self.bin_us:
            self.loss_restarts += 1
            self.restart()
            last = None
        if last is not None:
            now_us = max(now_us, last)
        self._last_now_us = now_us
        if packet_seq >= 0:
            if self._acc.first_seq < 0:
                self._acc.first_seq = packet_seq
            self._last_seq = packet_seq
        self._last_stamp = stamp_ns or self._last_stamp
        if self._bins is None:
            self._bins = Packetizer(batch.width, batch.height, self.bin_us)
        out = []
        for end, events in self._bins.push(batch, now_us):  # one SNN step per completed bin
            d = self._step_bin(events, end - self.bin_us)
            if d is not None:
                d.t_end_us = end
                out.append(d)
        return out

    def _step_bin(self, batch: EventBatch, t0: int) -> Optional[Decision]:
        acc = self._acc
        n_in = len(batch)
        if self.roi is not None:
            # Attention masks what lies outside the ROI; the network keeps the sensor's whole
            # field of view on its grid, as in training, so a narrow ROI is not a zoomed image.
            batch = crop(batch, self.roi)
        frame = binned_frames(batch, t0, self.bin_us, 1, out_size=self.grid)[0]
        if acc.steps == 0:
            self.stepper.reset()
            if self._belief is not None:
                acc.belief = self._belief.log_prior(t0)
        r = self.stepper.step(frame)
        acc.steps += 1
        self.steps += 1
        acc.synops += r.synops
        acc.events_in += n_in
        acc.events_used += int(frame.sum())
        cls_logits = r.logits[:-1] if acc.belief is None else r.logits[:-1] + acc.belief
        conf = confidence_of(cls_logits, self.measure, self.head.groups)
        steps_cap = min(self.t_max, 10 * self.model_t_max)
        if conf < self.threshold and acc.steps < steps_cap:
            return None
        if self.head.sectors is None:
            p, sectors = softmax(cls_logits[None])[0], ()
            label = int(p.argmax())
        else:
            sectors = tuple(int(c) for c in predict(np.asarray(cls_logits), self.head.groups))
            p, label = np.zeros(0), summary_label(self.head.sectors, sectors, self.near_m)
        p_app = 1.0 / (1.0 + math.exp(-float(r.logits[-1])))
        d = Decision(0, label, p, conf, p_app > 0.5, p_app, acc.steps, self.t_max,
                     acc.steps < steps_cap, self.threshold, acc.events_in, acc.events_used, acc.synops,
                     r.neuron_updates * acc.steps, acc.first_seq, self._last_seq, self._last_stamp, sectors,
                     acc.belief is not None)
        if self._belief is not None:
            self._belief.keep(cls_logits, t0 + self.bin_us)
        self._acc = _Accum()
        self.decisions += 1
        d.decision_id = self.decisions   # its own: one packet can complete several decisions
        self.prior_decisions += d.with_prior
        return d
